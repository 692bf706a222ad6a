"""The blind index of identity numbers: HMAC-SHA256 of the normalised number under a key of its own in
``NOCERT_KEY_DIR`` (``subject-index.key``). A plain hash of an 18-digit structured number is brute-forced
in minutes; without the key the index says nothing."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from domain.identifiers import validate_id_number
from privacy.secrets import load_or_create

INDEX_KEY_FILE = "subject-index.key"


class BlindIndex:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def in_key_dir(cls, key_dir: Path) -> BlindIndex:
        return cls(load_or_create(Path(key_dir) / INDEX_KEY_FILE))

    def of(self, id_number: str) -> str:
        """The subject's index entry (64 hex characters); raises ``invalid_id_number`` for a bad number."""
        return hmac.new(self._key, validate_id_number(id_number).encode("ascii"), hashlib.sha256).hexdigest()
