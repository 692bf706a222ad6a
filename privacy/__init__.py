"""Personal data under a key per person (API.md §14): the blind index of identity numbers, the subject key
store in ``NOCERT_KEY_DIR``, field encryption of check events and of the views' documents, and erasure's
keys. Imports signing (for nothing but its keys' neighbours) and domain; knows nothing of HTTP."""
