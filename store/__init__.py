"""Storage: the SQL layer shared by the views and the idempotency records, the event-log reader and the
write-side event recorder. Knows the domain's event store, nothing of HTTP or views."""
