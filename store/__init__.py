"""The store: the event log, its SQL layer and the write path."""
