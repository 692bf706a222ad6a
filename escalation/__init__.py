"""Escalation (督办, API.md §13) run by the platform itself: the timer that records ``Overdue``."""
