"""Services on a durable store with a small checkpoint interval, the views driven synchronously, and direct
SQL on the event store for tampering."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from api.bootstrap import Services, build
from api.settings import Settings
from api.trust import PlatformTrust
from audit.report import AuditReport
from audit.verify import verify_ledger
from projections import ledger
from projections.views import Views
from tests.audit.scenario import Story, run_story

CHECKPOINT_EVERY = 5


def make_services(database_url: str, key_dir: Path, cipher_key: str | None = None) -> Services:
    return build(
        Settings(database_url=database_url, key_dir=key_dir, checkpoint_every=CHECKPOINT_EVERY, cipher_key=cipher_key)
    )


def project(services: Services) -> Views:
    """Runs a views follower in this thread until the views reflect the whole log (no checkpoint is signed
    for a tail of fewer than CHECKPOINT_EVERY leaves: the real follower waits 5 s for that)."""
    views = Views(
        services.database,
        services.platform,
        services.log,
        ledger_signer=services.keystore.ledger_signer(),
        personal=services.subjects,
        checkpoint_every=CHECKPOINT_EVERY,
    )
    views.position()  # creates the views' tables
    lock = services.database.leader_lock("views")
    try:
        while views.position() < services.log.max_position():
            views.follow_once(lock)
    finally:
        lock.release()
        getattr(lock, "close", lambda: None)()
    return views


def settle(services: Services) -> None:
    """`project`, then a checkpoint over any leaf none covers yet (what the follower signs once such a leaf
    is 5 s old), so that a signed checkpoint covers the whole log."""
    views = project(services)
    with services.database.transaction() as cursor:
        if ledger.uncovered_since(cursor) is not None:
            ledger.insert_checkpoints(cursor, [ledger.sign(views.ledger_signer, ledger.read_state(cursor), views.clock())])


@dataclass
class World:
    services: Services
    story: Story
    database_url: str
    key_dir: Path

    @property
    def app(self) -> Any:
        return self.services.platform

    def audit(self, **kwargs: Any) -> AuditReport:
        root = self.services.keystore.root()[1]
        kwargs.setdefault("trust", PlatformTrust(self.app))
        return verify_ledger(self.app, self.services.database, self.services.log, root, **kwargs)

    def store(self) -> EventStore:
        return EventStore(self.services)

    def sealed_event(self, position: int) -> Any:
        """The event at `position` decoded with the platform's mapper (its personal fields opened)."""
        stream_id, version, topic, state = self.store().row(position)
        return self.app.mapper.to_domain_event(StoredEvent(UUID(stream_id), version, topic, state))

    def reseal(self, position: int, **fields: Any) -> None:
        """An insider holding the subject keys rewrites fields of the event at `position` and seals them
        again (without the keys, any change to a sealed field is an undecodable event)."""
        event = self.sealed_event(position)
        vars(event).update(fields)
        self.store().set_state(position, self.app.mapper.to_stored_event(event).state)

    def env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("NOCERT_DATABASE_URL", self.database_url)
        monkeypatch.setenv("NOCERT_KEY_DIR", str(self.key_dir))
        monkeypatch.setenv("NOCERT_CHECKPOINT_EVERY", str(CHECKPOINT_EVERY))
        monkeypatch.delenv("NOCERT_CIPHER_KEY", raising=False)
        monkeypatch.delenv("NOCERT_KEY_PASSPHRASE", raising=False)


@pytest.fixture
def world(durable_database_url: str, tmp_path: Path) -> Iterator[World]:
    """The story recorded on a durable store, its ledger covered by a signed checkpoint."""
    services = make_services(durable_database_url, tmp_path / "keys")
    try:
        story = run_story(services.platform)
        settle(services)
        services.views.stop()  # no follower runs; stopping makes sure none races the tampering
        yield World(services, story, durable_database_url, tmp_path / "keys")
    finally:
        services.close()


class EventStore:
    """The event store's table, reached with plain SQL as someone with database access would."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.location = services.location
        self.table = services.platform.recorder.events_table_name
        self.postgres = self.location.kind == "postgres"
        self.position_column = "notification_id" if self.postgres else "rowid"

    def _connect(self) -> Any:
        if self.postgres:
            import psycopg

            connection = psycopg.connect(self.location.conninfo(), autocommit=True)
            connection.execute(f'SET search_path TO "{self.location.schema}"')
            return connection
        import sqlite3

        return sqlite3.connect(self.location.sqlite_path, isolation_level=None)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Runs one statement (``?`` placeholders) and returns its rows, if any."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        connection = self._connect()
        try:
            cursor = connection.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        finally:
            connection.close()
        return [tuple(row) for row in rows]

    def row(self, position: int) -> tuple[str, int, str, bytes]:
        """(stream id, version, topic, state) of the event at `position`."""
        (found,) = self.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {self.table} WHERE {self.position_column} = ?",
            (position,),
        )
        return str(found[0]), int(found[1]), found[2], bytes(found[3])

    def positions(self) -> list[int]:
        return [int(r[0]) for r in self.execute(f"SELECT {self.position_column} FROM {self.table} ORDER BY 1")]

    def set_state(self, position: int, state: bytes) -> None:
        self.execute(f"UPDATE {self.table} SET state = ? WHERE {self.position_column} = ?", (state, position))

    def delete(self, position: int) -> None:
        self.execute(f"DELETE FROM {self.table} WHERE {self.position_column} = ?", (position,))

    def insert_at(self, position: int, stream_id: Any, version: int, topic: str, state: bytes) -> None:
        """Inserts an event at `position`, moving it and every later event one position on."""
        column, shift = self.position_column, 1_000_000
        self.execute(f"UPDATE {self.table} SET {column} = {column} + {shift} WHERE {column} >= ?", (position,))
        self.execute(f"UPDATE {self.table} SET {column} = {column} - {shift - 1} WHERE {column} >= ?", (shift,))
        originator = stream_id if self.postgres else stream_id.hex
        self.execute(
            f"INSERT INTO {self.table} ({column}, originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?, ?)",
            (position, originator, version, topic, state),
        )

    def checkpoints(self) -> list[tuple[int, str]]:
        return [(int(size), jws) for size, jws in self.execute("SELECT tree_size, jws FROM ledger_checkpoints ORDER BY tree_size")]

    def set_checkpoint_jws(self, tree_size: int, jws: str) -> None:
        self.execute("UPDATE ledger_checkpoints SET jws = ? WHERE tree_size = ?", (jws, tree_size))


def problems_of(document: dict[str, Any]) -> set[tuple[int | None, str]]:
    return {(problem["position"], problem["kind"]) for problem in document["problems"]}


def run_cli_full(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], world: World, *argv: str
) -> tuple[int, str, str]:
    """`nocert <argv>` in this process with the world's settings: exit code, standard output and error."""
    from api.cli import main

    world.env(monkeypatch)
    capsys.readouterr()
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], world: World, *argv: str) -> tuple[int, str]:
    code, out, _ = run_cli_full(monkeypatch, capsys, world, *argv)
    return code, out


def cli_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], world: World) -> tuple[int, dict[str, Any]]:
    code, out = run_cli(monkeypatch, capsys, world, "audit", "verify", "--json")
    return code, json.loads(out)
