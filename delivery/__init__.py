"""Events to departments (API.md §11): the feed's index, the webhook outbox written with each command, the
CloudEvents they carry, and the dispatcher that signs and sends them."""
