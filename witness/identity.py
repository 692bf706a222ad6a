"""The witness's identity: its Ed25519 key (``witness.key``, PKCS#8 PEM, mode 0600) and its key name
(``witness.name``) in the state directory, both created on first use.

The name is part of the witness's verifier key, so it is fixed when the key is made: a later ``--name``
that differs is refused rather than silently producing another vkey. Files are written whole (a temporary
file, then a hard link that fails if the name exists) under an exclusive lock, so that two processes
starting together agree on one key.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing.note import NoteSigner, is_valid_key_name

KEY_FILE = "witness.key"
NAME_FILE = "witness.name"


class IdentityError(Exception):
    """The state directory's key or name cannot be used as asked; the message says why."""


def default_name() -> str:
    """``<host name>/witness``: a schema-less URL-like name, as the specifications recommend."""
    host = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"
    return f"{host}/witness"


def load_or_create(state_dir: Path, name: str | None = None) -> NoteSigner:
    """The witness's cosigner (key type 0x04), created with `name` (default `default_name()`) on first use."""
    if name is not None and not is_valid_key_name(name):
        raise IdentityError(f"--name {name!r}: a key name is non-empty, without spaces or plus signs")
    state_dir = Path(state_dir)
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _locked(state_dir):
        key_path, name_path = state_dir / KEY_FILE, state_dir / NAME_FILE
        if not key_path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            _write(name_path, ((name or default_name()) + "\n").encode("utf-8"), exclusive=False)
            _write(key_path, pem, exclusive=True)  # last: a key on disk means its name is there too
        return _load(key_path, name_path, name)


def _load(key_path: Path, name_path: Path, wanted: str | None) -> NoteSigner:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), None)
        stored = name_path.read_text(encoding="utf-8").strip()
    except (OSError, ValueError, TypeError) as error:
        raise IdentityError(f"cannot read the witness key in {key_path.parent}: {error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{key_path} is not an Ed25519 private key")
    if not is_valid_key_name(stored):
        raise IdentityError(f"{name_path} does not hold a valid key name")
    if wanted is not None and wanted != stored:
        raise IdentityError(
            f"this witness is named {stored!r} (its vkey depends on it); --name {wanted!r} would need a new "
            "state directory"
        )
    return NoteSigner.cosigner(stored, key)


def _write(path: Path, data: bytes, exclusive: bool) -> None:
    """Write `path` whole; `exclusive`: fail rather than replace an existing file."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if exclusive:
            os.link(temp, path)  # raises FileExistsError rather than replace a key
        else:
            os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)


@contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
