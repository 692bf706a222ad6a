"""The subject key store: one data key per person (AES-256-GCM), wrapped by the key in
``NOCERT_KEY_DIR/subject-wrap.key`` and kept as files under ``NOCERT_KEY_DIR/subjects/``:

* ``keys/<key id>.json`` — ``{"subject": <blind index>, "created_at", "wrapped": <base64 nonce+ciphertext>}``;
  after erasure the same file with ``"wrapped": null`` and ``"erased_at"`` (the *tombstone*: "erased" is
  never confused with "never seen", a key that is missing altogether is an error);
* ``by-subject/<blind index>/<key id>`` — an empty marker per key of that person.

Erasing a person replaces each of their key files by its tombstone: the data encrypted under the key is then
unreadable everywhere, backups of the event store included. Backups of *this directory* are what erasure
must reach (SECURITY.md). A person's next check after an erasure gets a new key.

Unwrapped keys are cached per process for `cache_seconds`; an erasure drops them from its own process's cache
at once, other processes stop using them within `cache_seconds`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.timefmt import format_time, utcnow
from privacy.secrets import load_or_create, write_atomically

STORE_DIR = "subjects"
WRAP_KEY_FILE = "subject-wrap.key"
KEY_ID = re.compile(r"[0-9a-f]{32}", re.ASCII)
SUBJECT = re.compile(r"[0-9a-f]{64}", re.ASCII)
NONCE = 12


class SubjectKeyError(Exception):
    """A subject key that cannot be used."""


class SubjectKeyErased(SubjectKeyError):
    """The key was destroyed by an erasure: what it encrypted is forgotten."""


class SubjectKeyMissing(SubjectKeyError):
    """No key and no tombstone under that id: the key store is incomplete (a restore without it?)."""


@dataclass(frozen=True)
class DataKey:
    """An unwrapped data key: its AEAD, and the key of its synthetic nonces (`privacy.fields.seal`)."""

    key_id: str
    aead: AESGCM
    nonce_key: bytes

    @classmethod
    def of(cls, key_id: str, secret: bytes) -> DataKey:
        return cls(key_id, AESGCM(secret), hmac.new(secret, b"nocert:synthetic-nonce", hashlib.sha256).digest())


class SubjectKeys:
    def __init__(self, key_dir: Path, cache_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        key_dir = Path(key_dir)
        self.root = key_dir / STORE_DIR
        self._keys = self.root / "keys"
        self._subjects = self.root / "by-subject"
        for directory in (self.root, self._keys, self._subjects):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._wrap = AESGCM(load_or_create(key_dir / WRAP_KEY_FILE))
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, DataKey]] = {}
        self._generation = 0  # erasures so far in this process: a key read before one is not cached
        self._lock = threading.Lock()

    # -- keys by subject ------------------------------------------------------------------------

    def active(self, subject: str) -> DataKey:
        """A live key of `subject` (its blind index), created when it has none (never had, or erased)."""
        _require(SUBJECT, subject, "subject")
        markers = self._subjects / subject
        if markers.is_dir():
            for marker in sorted(markers.iterdir()):
                if KEY_ID.fullmatch(marker.name):
                    key = self._read(marker.name, strict=False)
                    if key is not None:
                        return key
        return self._create(subject)

    def key_ids(self, subject: str) -> list[str]:
        _require(SUBJECT, subject, "subject")
        markers = self._subjects / subject
        return sorted(m.name for m in markers.iterdir() if KEY_ID.fullmatch(m.name)) if markers.is_dir() else []

    def erase(self, subject: str) -> list[str]:
        """Destroys every key of `subject` (tombstones stay); returns the ids of the keys it destroyed now."""
        erased = []
        erased_at = format_time(utcnow())
        for key_id in self.key_ids(subject):
            path = self._keys / f"{key_id}.json"
            record = json.loads(path.read_bytes()) if path.exists() else {"subject": subject}
            if record.get("wrapped") is not None or not path.exists():
                tombstone = {"subject": subject, "created_at": record.get("created_at"), "erased_at": erased_at, "wrapped": None}
                write_atomically(path, json.dumps(tombstone).encode())
                erased.append(key_id)
            with self._lock:  # after the tombstone: a read racing with it cannot cache the key again
                self._generation += 1
                self._cache.pop(key_id, None)
        return erased

    # -- keys by id -----------------------------------------------------------------------------

    def get(self, key_id: str) -> DataKey:
        """The unwrapped key; raises `SubjectKeyErased` after an erasure, `SubjectKeyMissing` for no key."""
        _require(KEY_ID, key_id, "key id")
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
            generation = self._generation
        if cached is not None and cached[0] > now:
            return cached[1]
        key = self._read(key_id, strict=True)
        assert key is not None
        with self._lock:
            if generation == self._generation:
                self._cache[key_id] = (now + self._cache_seconds, key)
        return key

    def _read(self, key_id: str, *, strict: bool) -> DataKey | None:
        path = self._keys / f"{key_id}.json"
        try:
            record = json.loads(path.read_bytes())
        except FileNotFoundError:
            if strict:
                raise SubjectKeyMissing(f"no subject key {key_id} in the key store") from None
            return None
        if record.get("wrapped") is None:
            if strict:
                raise SubjectKeyErased(f"subject key {key_id} was erased")
            return None
        blob = base64.b64decode(record["wrapped"])
        try:
            data_key = self._wrap.decrypt(blob[:NONCE], blob[NONCE:], _wrap_ad(key_id, record["subject"]))
        except InvalidTag:
            raise SubjectKeyError(f"subject key {key_id} does not open with {WRAP_KEY_FILE}") from None
        return DataKey.of(key_id, data_key)

    def _create(self, subject: str) -> DataKey:
        key_id = secrets.token_hex(16)
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = secrets.token_bytes(NONCE)
        wrapped = nonce + self._wrap.encrypt(nonce, data_key, _wrap_ad(key_id, subject))
        record = {"subject": subject, "created_at": format_time(utcnow()), "wrapped": base64.b64encode(wrapped).decode()}
        write_atomically(self._keys / f"{key_id}.json", json.dumps(record).encode())
        markers = self._subjects / subject
        markers.mkdir(mode=0o700, exist_ok=True)
        (markers / key_id).touch(mode=0o600)
        return DataKey.of(key_id, data_key)


def _wrap_ad(key_id: str, subject: str) -> bytes:
    return f"nocert:subject-key:{key_id}:{subject}".encode()


def _require(pattern: re.Pattern[str], value: str, what: str) -> None:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise SubjectKeyError(f"not a {what}: {value!r}")
