"""The highest checkpoint the ledger key ever signed, kept outside the database (API.md §15, issue #11.12).

Deleting the last events together with the checkpoint rows that cover them leaves a database that agrees
with itself. The signer therefore also keeps, in ``NOCERT_KEY_DIR`` (beside the ledger key, which a
database operator cannot reach), the largest checkpoint it signed: ``ledger-checkpoint.json`` holding its
tree size, root hash, issue time and JWS. It only ever grows (written whole under a lock: temporary file,
then rename). ``nocert views rebuild`` refuses to rebuild a ledger smaller than it, or with another root at
its size, and ``nocert audit verify`` checks the store and the ledger view against it. Witnesses
(`witness`) remember the same thing on machines the platform's operator does not control.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from signing.rollback import TreeHead

FILE_NAME = "ledger-checkpoint.json"


class CheckpointArchive:
    """The highest signed checkpoint, in a file of `directory` (the key directory)."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / FILE_NAME
        self._known = -1  # the size archived, as far as this process knows (-1: not read yet)

    def read(self) -> dict[str, Any] | None:
        """The archived checkpoint ``{"tree_size", "root_hash", "issued_at", "jws"}``, or None before the first."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            raise ValueError(f"{self.path} cannot be read: {error}") from None
        if not isinstance(data, dict) or not isinstance(data.get("tree_size"), int) or not isinstance(data.get("jws"), str):
            raise ValueError(f"{self.path} is not an archived checkpoint")
        return data

    def head(self) -> TreeHead | None:
        """The archived checkpoint's tree size and root (unverified: `rollback.read_archived` checks its JWS)."""
        data = self.read()
        if data is None:
            return None
        return TreeHead(int(data["tree_size"]), bytes.fromhex(str(data["root_hash"])), "archived")

    def record(self, checkpoint: dict[str, Any]) -> bool:
        """Keeps `checkpoint` (a ``ledger_checkpoints`` row as a dict) if it is larger than the archived one;
        True when it was written."""
        size = int(checkpoint["tree_size"])
        if size <= self._known:
            return False
        fd = os.open(self.path.with_name(f".{FILE_NAME}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = self.read()
            if current is not None and int(current["tree_size"]) >= size:
                self._known = int(current["tree_size"])
                return False
            data = {name: checkpoint[name] for name in ("tree_size", "root_hash", "issued_at", "jws")}
            self._write(json.dumps(data, indent=1).encode("utf-8"))
            self._known = size
            return True
        finally:
            os.close(fd)

    def _write(self, data: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{FILE_NAME}.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, self.path)
        except BaseException:
            os.unlink(temp)
            raise
