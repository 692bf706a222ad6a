"""Symmetric secrets kept as files in ``NOCERT_KEY_DIR`` (32 random bytes, mode 0600), created once: the
first process makes the file with ``O_EXCL``, the others read what it wrote."""

from __future__ import annotations

import os
import secrets as random
import tempfile
from pathlib import Path

SIZE = 32


def load_or_create(path: Path) -> bytes:
    """The secret in `path`, created (written whole, then linked into place) when missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-")
        try:
            os.write(descriptor, random.token_bytes(SIZE))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        try:
            os.link(temporary, path)  # fails when another process was first: its secret is kept
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    secret = path.read_bytes()
    if len(secret) != SIZE:
        raise ValueError(f"{path.name}: a secret file holds exactly {SIZE} bytes")
    return secret


def write_atomically(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` whole (temporary file, fsync, rename), mode 0600."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-")
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)
