"""``nocert backup`` / ``nocert restore``: one tar archive an operator can keep and restore into an empty store.

Members of the archive (format ``nocert-backup/1``)::

    manifest.json            format, when, which store, counts and the SHA-256 of every other member
    events.jsonl             every stored event with its global position, its state as stored (encrypted
                             when NOCERT_CIPHER_KEY is set: restore with the same key)
    tables/<name>.jsonl      every other table that is not derived from the events: the signed ledger
                             checkpoints, workbench accounts, idempotency records ... (header line: columns)
    keys/<file>              the key directory (NOCERT_KEY_DIR): root, ledger and seal keys and certificates
    subject-keys/<file>      the subject key store, when one exists: a member of its own, so that it can be
                             left out (``--without-subject-keys``) and kept under a shorter retention than
                             the rest (destroying a subject's key is how its data is erased)

Left out: the views (``projections.schema``: the service rebuilds them from the events on start), and
transient rows (sign-in sessions and lockout counters). Restore refuses a store that holds events and a
key directory that holds a root key, so it can never mix two provinces.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from api.bootstrap import EVENTS_TABLE, Services
from api.settings import ConfigurationError, Settings
from projections.schema import SHADOW, SWAPPED

FORMAT = "nocert-backup/1"
PAGE = 1000
# Derived from the events (rebuilt on start) or transient: never in a backup.
REBUILT = frozenset({*SWAPPED, "view_schema"})
TRANSIENT = frozenset({"ui_sessions", "ui_sign_in_failures"})
KEYS_MEMBER = "keys"
SUBJECT_KEYS_MEMBER = "subject-keys"


@dataclass
class Summary:
    """What a backup holds, or what a restore put back."""

    events: int = 0
    max_position: int = 0
    tables: dict[str, int] = field(default_factory=dict)
    key_files: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        tables = ", ".join(f"{name} {rows}" for name, rows in sorted(self.tables.items())) or "none"
        keys = ", ".join(f"{member} {files}" for member, files in sorted(self.key_files.items())) or "none"
        return f"{self.events} events (last position {self.max_position}); tables: {tables}; key files: {keys}"


def key_stores(settings: Settings) -> dict[str, Path]:
    """The archive member of each key directory. The subject key store (privacy) adds its own member here."""
    stores = {KEYS_MEMBER: Path(settings.key_dir)}
    subject_dir = getattr(settings, "subject_key_dir", None)
    if subject_dir is not None:
        stores[SUBJECT_KEYS_MEMBER] = Path(subject_dir)
    return stores


# -- values of rows as JSON ---------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$b64"}:
        return base64.b64decode(value["$b64"])
    return value


def _jsonl(rows: Iterator[Sequence[Any]]) -> bytes:
    return b"".join(json.dumps([_encode(v) for v in row], ensure_ascii=False).encode() + b"\n" for row in rows)


# -- backup -------------------------------------------------------------------------------------------


def _tables(services: Services) -> list[str]:
    database = services.database
    if database.dialect == "postgres":
        sql = "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    with database.reading() as cursor:
        names = [row[0] for row in cursor.execute(sql).fetchall()]
    skip = REBUILT | TRANSIENT | {EVENTS_TABLE[database.dialect]}
    return [name for name in names if name not in skip and not name.startswith(SHADOW)]


def _events(services: Services, stop: int) -> Iterator[list[Any]]:
    after = 0
    while page := services.log.read(after, PAGE, stop=stop):
        for n in page:
            yield [n.id, str(n.originator_id), n.originator_version, n.topic, n.state]
        after = page[-1].id


def _columns(cursor: Any, dialect: str, table: str) -> list[str]:
    if dialect == "postgres":
        sql = (
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND table_name = ? ORDER BY ordinal_position"
        )
        return [row[0] for row in cursor.execute(sql, (table,)).fetchall()]
    return [row[1] for row in cursor.execute(f'PRAGMA table_info("{table}")').fetchall()]


def _table_rows(services: Services, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with services.database.reading() as cursor:
        columns = _columns(cursor, services.database.dialect, table)
        names = ", ".join(f'"{column}"' for column in columns)
        rows = cursor.execute(f'SELECT {names} FROM "{table}"').fetchall()
    return columns, rows


def _files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def backup(services: Services, output: Path, *, subject_keys: bool = True) -> Summary:
    """Writes the archive to ``output`` (gzip when it ends in .gz), whole or not at all."""
    summary = Summary()
    members: dict[str, bytes] = {}
    # Events first, up to the position seen now; the checkpoints read afterwards cover at most what the
    # events hold once the views catch up, and a checkpoint beyond them is impossible (signed after them).
    summary.max_position = services.log.max_position()
    events = list(_events(services, summary.max_position))
    summary.events = len(events)
    members["events.jsonl"] = _jsonl(iter(events))
    for table in _tables(services):
        columns, rows = _table_rows(services, table)
        members[f"tables/{table}.jsonl"] = _jsonl(iter([columns, *rows]))
        summary.tables[table] = len(rows)
    for member, directory in key_stores(services.settings).items():
        if member == SUBJECT_KEYS_MEMBER and not subject_keys:
            continue
        files = _files(directory)
        for path in files:
            members[f"{member}/{path.name}"] = path.read_bytes()
        summary.key_files[member] = len(files)
    manifest = {
        "format": FORMAT,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": services.location.kind,
        "events": summary.events,
        "max_position": summary.max_position,
        "tables": summary.tables,
        "key_files": summary.key_files,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    _write_archive(output, {"manifest.json": json.dumps(manifest, indent=2).encode(), **members})
    return summary


def _write_archive(output: Path, members: dict[str, bytes]) -> None:
    temp = output.with_name(f".{output.name}.partial")
    mode = "w:gz" if output.name.endswith(".gz") else "w"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds private keys
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode=mode) as archive:  # type: ignore[call-overload]
            for name, data in members.items():
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
                archive.addfile(info, io.BytesIO(data))
        os.replace(temp, output)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise ConfigurationError(f"backup: cannot write {output}: {error.strerror or error}") from None


# -- restore ------------------------------------------------------------------------------------------


def read_archive(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and the members of an archive, every member checked against the manifest's hash."""
    try:
        with tarfile.open(path, mode="r:*") as archive:
            members = {
                info.name: archive.extractfile(info).read()  # type: ignore[union-attr]
                for info in archive.getmembers()
                if info.isfile()
            }
    except (OSError, tarfile.TarError) as error:
        raise ConfigurationError(f"restore: {path} is no nocert backup ({str(error).splitlines()[0]})") from None
    try:
        manifest = json.loads(members.pop("manifest.json"))
    except (KeyError, ValueError):
        raise ConfigurationError(f"restore: {path} has no readable manifest.json") from None
    if manifest.get("format") != FORMAT:
        raise ConfigurationError(f"restore: {path} is in format {manifest.get('format')!r}, not {FORMAT}")
    hashes: dict[str, str] = manifest.get("sha256", {})
    if set(hashes) != set(members):
        raise ConfigurationError(f"restore: {path} does not hold the members its manifest lists")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != hashes[name]:
            raise ConfigurationError(f"restore: member {name} of {path} is damaged (SHA-256 differs)")
    return manifest, members


def check_key_dirs_empty(stores: dict[str, Path]) -> None:
    for member, directory in stores.items():
        if _files(directory):
            raise ConfigurationError(f"restore: the key directory {directory} ({member}) is not empty; nothing was changed")


def write_keys(stores: dict[str, Path], members: dict[str, bytes]) -> dict[str, int]:
    """The key files back in place (0600 in a 0700 directory), before the services load them."""
    written: dict[str, int] = {}
    for name, data in members.items():
        member, _, file = name.partition("/")
        if member not in stores or not file or "/" in file or file.startswith("."):
            continue
        directory = stores[member]
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        written[member] = written.get(member, 0) + 1
    return written


def _rows(data: bytes) -> Iterator[list[Any]]:
    for line in data.splitlines():
        if line.strip():
            yield [_decode(value) for value in json.loads(line)]


def restore_store(services: Services, members: dict[str, bytes], progress: Callable[[int], None] = lambda n: None) -> Summary:
    """Events (with their positions) and the kept tables into the services' store, in one transaction."""
    from projections.schema import create_schema

    database = services.database
    if services.log.max_position():
        raise ConfigurationError("restore: the event store already holds events; restore only into an empty store")
    create_schema(database)  # the views' tables and the checkpoints' table: the views are rebuilt on start
    dialect = database.dialect
    kept_tables = {name.removeprefix("tables/").removesuffix(".jsonl") for name in members if name.startswith("tables/")}
    missing = kept_tables - set(_tables(services))
    if missing:
        raise ConfigurationError(f"restore: this version of nocert has no table {', '.join(sorted(missing))}; nothing was restored")
    table = EVENTS_TABLE[dialect]
    summary = Summary()
    if dialect == "sqlite":
        insert = f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
    else:
        insert = f"INSERT INTO {table} (notification_id, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)"
    with database.transaction() as cursor:
        batch: list[list[Any]] = []
        for position, originator, version, topic, state in _rows(members.get("events.jsonl", b"")):
            stream = UUID(originator).hex if dialect == "sqlite" else UUID(originator)
            batch.append([position, stream, version, topic, state])
            summary.max_position = max(summary.max_position, position)
            if len(batch) == PAGE:
                cursor.executemany(insert, batch)
                summary.events += len(batch)
                progress(summary.events)
                batch = []
        if batch:
            cursor.executemany(insert, batch)
            summary.events += len(batch)
        if dialect == "postgres" and summary.max_position:
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'notification_id'), ?)", (summary.max_position,))
        for name, data in sorted(members.items()):
            if not (name.startswith("tables/") and name.endswith(".jsonl")):
                continue
            kept = name.removeprefix("tables/").removesuffix(".jsonl")
            rows = _rows(data)
            columns = next(rows, [])
            values = list(rows)
            cursor.execute(f'DELETE FROM "{kept}"')
            if values:
                names = ", ".join(f'"{column}"' for column in columns)
                marks = ", ".join("?" for _ in columns)
                cursor.executemany(f'INSERT INTO "{kept}" ({names}) VALUES ({marks})', values)
            summary.tables[kept] = len(values)
    progress(summary.events)
    return summary
