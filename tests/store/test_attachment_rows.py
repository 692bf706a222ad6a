"""The attachments of a lifecycle save write each table's rows in one statement (issue #14): the feed rows and
the outbox rows of every (event, department) told, and the idempotency record marked ``committed`` without
reading a row count between two statements. Here, on both stores, they leave exactly the rows the statements
they replace left (those are kept below as the reference), and a save through the recorder writes them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url, store_env
from delivery.routing import DeliveryRows, Told, delivery_hook
from delivery.schema import create_tables
from domain.platform import Platform
from store import idempotency
from store.database import Database
from store.idempotency import COMMITTED, DONE, IN_PROGRESS, BodyCipher, CommittedAttachment, IdempotencyStore, RecordId
from tests.domain.fakes import FakeClaims, FakeSealer
from tests.domain.world import APPROVER, CITY_POLICE, GULOU_POLICE, OTHER_APPROVER, build_province, new_check_id

# -- the statements replaced, as they were -------------------------------------------------------------------

OLD_OUTBOX = (
    "INSERT INTO webhook_deliveries (subscription_id, position, department, check_id, version, status, attempts)"
    " SELECT id, ?, department, ?, ?, 'pending', 0 FROM webhook_subscriptions"
    " WHERE department = ? AND deleted = 0 AND (types IS NULL OR types LIKE ?)"
)
OLD_FEED = "INSERT INTO feed_entries (department, position, check_id, version, type) VALUES (?, ?, ?, ?, ?)"


def old_delivery_write(rows: DeliveryRows, cursor: Any, positions: Sequence[object]) -> None:
    for item in rows.told:
        position = positions[item.index]
        for department in item.departments:
            cursor.execute(OLD_FEED, (department, position, item.check_id, item.version, item.type))
            cursor.execute(OLD_OUTBOX, (position, item.check_id, item.version, department, f"%,{item.type},%"))


def old_commit_write(attachment: CommittedAttachment, cursor: Any, positions: Sequence[object]) -> None:
    position = positions[-1] if positions else None
    record, now = attachment.record, time.time()
    cursor.execute(
        "UPDATE idempotency_keys SET state = ?, position = ?, stream = ?, version = ?, updated_at = ?"
        " WHERE principal = ? AND path = ? AND idem_key = ? AND fingerprint = ?",
        (COMMITTED, position, attachment.stream, attachment.version, now, record.principal, record.path, record.key,
         attachment.fingerprint),
    )
    if cursor.rowcount == 0:
        cursor.execute(
            "INSERT INTO idempotency_keys (principal, path, idem_key, fingerprint, state, position, stream,"
            " version, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (principal, path, idem_key) DO UPDATE SET fingerprint = excluded.fingerprint,"
            " state = excluded.state, position = excluded.position, stream = excluded.stream,"
            " version = excluded.version, status = NULL, body = NULL, headers = NULL,"
            " updated_at = excluded.updated_at",
            (record.principal, record.path, record.key, attachment.fingerprint, COMMITTED, position,
             attachment.stream, attachment.version, now),
        )


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture
def database(durable_database_url: str) -> Iterator[Database]:
    """The store's own database with delivery's tables and the idempotency records."""
    db = _open_database(parse_database_url(durable_database_url), Settings(database_url=durable_database_url, db_pool_size=2))
    create_tables(db)
    IdempotencyStore(db, BodyCipher(os.urandom(32)))
    yield db
    db.close()


# (id, department, types, deleted): who takes what, told of a forward to the city police and an acceptance.
SUBSCRIPTIONS = [
    ("s-approver-all", APPROVER, None, 0),
    ("s-approver-replied", APPROVER, ",Replied,", 0),
    ("s-gulou-forwarded", GULOU_POLICE, ",Forwarded,", 0),
    ("s-gulou-deleted", GULOU_POLICE, None, 1),
    ("s-city-some", CITY_POLICE, ",Accepted,Forwarded,Replied,", 0),
    ("s-city-prefix", CITY_POLICE, ",Forward,", 0),
    ("s-other", OTHER_APPROVER, None, 0),
]


def subscribe(database: Database) -> None:
    with database.transaction() as cursor:
        cursor.executemany(
            "INSERT INTO webhook_subscriptions (id, department, url, types, status, created_at, secret, deleted)"
            " VALUES (?, ?, 'https://example.test/hook', ?, 'active', '2026-01-01T00:00:00Z', 'sealed', ?)",
            SUBSCRIPTIONS,
        )


def delivery_rows(database: Database) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with database.reading() as cursor:
        feed = cursor.execute(
            "SELECT department, position, check_id, version, type FROM feed_entries ORDER BY department, position"
        ).fetchall()
        outbox = cursor.execute(
            "SELECT subscription_id, position, department, check_id, version, status, attempts, streak,"
            " next_attempt_at FROM webhook_deliveries ORDER BY subscription_id, position"
        ).fetchall()
    return [tuple(row) for row in feed], [tuple(row) for row in outbox]


def forget_deliveries(database: Database) -> None:
    with database.transaction() as cursor:
        cursor.execute("DELETE FROM feed_entries")
        cursor.execute("DELETE FROM webhook_deliveries")


# -- delivery rows ---------------------------------------------------------------------------------------------


def test_one_feed_and_one_outbox_statement_leave_the_rows_of_one_per_event_and_department(database: Database) -> None:
    subscribe(database)
    check_id = str(uuid.uuid4())
    rows = DeliveryRows((
        Told(0, check_id, 3, "Forwarded", (APPROVER, CITY_POLICE, GULOU_POLICE)),
        Told(1, check_id, 4, "Accepted", (APPROVER, CITY_POLICE)),
    ))
    positions = [41, 42]
    with database.transaction() as cursor:
        old_delivery_write(rows, cursor, positions)
    before = delivery_rows(database)
    forget_deliveries(database)

    statements: list[str] = []
    with database.transaction() as cursor:
        rows.write(Counting(cursor, statements), positions)
    assert delivery_rows(database) == before
    assert len(statements) == 2, statements

    feed, outbox = before
    assert [(department, position) for department, position, *_ in feed] == sorted(
        [(APPROVER, 41), (CITY_POLICE, 41), (GULOU_POLICE, 41), (APPROVER, 42), (CITY_POLICE, 42)]
    )
    assert [(subscription, position) for subscription, position, *_ in outbox] == [
        ("s-approver-all", 41), ("s-approver-all", 42), ("s-city-some", 41), ("s-city-some", 42),
        ("s-gulou-forwarded", 41),
    ]
    assert {row[2:] for row in outbox} >= {(CITY_POLICE, check_id, 4, "pending", 0, 0, None)}


class Counting:
    """A cursor that notes the statements executed through it."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor, self.statements = cursor, statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self.statements.append(sql)
        return self._cursor.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


# -- the idempotency record ------------------------------------------------------------------------------------

RECORD = RecordId("gulou", "/v1/checks/x/accept", "key-1")
PRIOR = {  # the record's row when the command's events commit (fingerprint, state, status, body, headers)
    "none": None,
    "in progress": ("fp", IN_PROGRESS, None, None, None),
    "taken by another request": ("other", IN_PROGRESS, None, None, None),
    "answered": ("fp", DONE, 200, b"sealed body", '{"ETag": "\\"3\\""}'),
    "answered another request": ("other", DONE, 201, b"their body", "{}"),
    "committed": ("fp", COMMITTED, None, None, None),
}


def record_row(database: Database) -> tuple[Any, ...] | None:
    with database.reading() as cursor:
        row = cursor.execute(
            "SELECT fingerprint, state, status, body, headers, updated_at, position, stream, version"
            " FROM idempotency_keys WHERE principal = ? AND path = ? AND idem_key = ?",
            (RECORD.principal, RECORD.path, RECORD.key),
        ).fetchone()
    return None if row is None else (*row[:3], None if row[3] is None else bytes(row[3]), *row[4:])


def put_prior(database: Database, prior: tuple[Any, ...] | None) -> None:
    with database.transaction() as cursor:
        cursor.execute("DELETE FROM idempotency_keys")
        if prior is not None:
            cursor.execute(
                "INSERT INTO idempotency_keys (principal, path, idem_key, fingerprint, state, status, body, headers,"
                " updated_at, position, stream, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1.0, 7, 'old', 1)",
                (RECORD.principal, RECORD.path, RECORD.key, *prior),
            )


@pytest.mark.parametrize("case", list(PRIOR))
def test_the_record_is_committed_in_one_statement_as_by_the_update_and_the_upsert(
    database: Database, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency.time, "time", lambda: 1234.5)
    attachment = CommittedAttachment(RECORD, "fp", "stream-1", 5)
    put_prior(database, PRIOR[case])
    with database.transaction() as cursor:
        old_commit_write(attachment, cursor, [10, 11])
    expected = record_row(database)
    put_prior(database, PRIOR[case])
    statements: list[str] = []
    with database.transaction() as cursor:
        attachment.write(Counting(cursor, statements), [10, 11])
    assert record_row(database) == expected
    assert len(statements) == 1
    kept = PRIOR[case] if case == "answered" else None  # this request's answer stays; another's is dropped
    assert expected == (
        "fp", COMMITTED, *(kept[2:] if kept else (None, None, None)), 1234.5, 11, "stream-1", 5
    )


# -- through the recorder --------------------------------------------------------------------------------------


@pytest.fixture
def platform(durable_database_url: str, database: Database) -> Iterator[Platform]:
    app = Platform(
        store_env(parse_database_url(durable_database_url), pool_size=2), sealer=FakeSealer(), claims=FakeClaims()
    )
    build_province(app)
    yield app
    app.close()


def test_a_save_writes_its_rows_in_three_statements_with_its_positions(platform: Platform, database: Database) -> None:
    """A forward (approver, the new issuer and the former one told) and its idempotency record, whose
    in_progress row was taken away meanwhile: before, on PostgreSQL, the pipelined save read the UPDATE's row
    count before it was known (-1, not 0) and left no record at all."""
    subscribe(database)
    check_id = new_check_id(platform)
    platform.accept(check_id, GULOU_POLICE)
    statements: list[str] = []

    def hook(aggregates: Any, events: Any) -> list[Any]:
        attachments = [*delivery_hook(aggregates, events), CommittedAttachment(RECORD, "fp", str(check_id), 3)]
        return [Written(attachment, statements) for attachment in attachments]

    platform.save_hooks.append(hook)
    _, position = platform.forward(check_id, GULOU_POLICE, CITY_POLICE, "属市局管辖")
    feed, outbox = delivery_rows(database)
    assert sorted((department, at) for department, at, *_ in feed) == sorted(
        [(APPROVER, position), (CITY_POLICE, position), (GULOU_POLICE, position)]
    )
    assert {(subscription, at) for subscription, at, *_ in outbox} == {
        ("s-approver-all", position), ("s-city-some", position), ("s-gulou-forwarded", position)
    }
    row = record_row(database)
    assert row is not None
    assert (row[1], row[6], row[7], row[8]) == (COMMITTED, position, str(check_id), 3)
    assert len(statements) == 3, statements  # were 2 per department told, and 1 or 2 for the record


class Written:
    """An attachment whose statements are noted."""

    def __init__(self, attachment: Any, statements: list[str]) -> None:
        self.attachment, self.statements = attachment, statements

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        self.attachment.write(Counting(cursor, self.statements), positions)


def test_references_are_sent_as_the_positions_the_server_kept(postgres_url: str) -> None:
    import psycopg
    from psycopg.rows import tuple_row

    from store.positions import SETTING, At, ResolvingCursor, references

    assert references(2, 2) == [At(3), At(4)]
    with psycopg.connect(parse_database_url(postgres_url).conninfo(), autocommit=True) as connection:
        with connection.transaction(), connection.cursor(row_factory=tuple_row) as plain:
            plain.execute("SELECT set_config(%s, '{41,42}', true)", (SETTING,))
            cursor = ResolvingCursor(plain)
            row = cursor.execute("SELECT ?, ?, 'a%' || ?, ?", (At(2), "x", "b", At(1))).fetchone()
            assert row == (42, "x", "a%b", 41)
            assert cursor.execute("SELECT ? || '%'", ("plain",)).fetchone() == ("plain%",)
            plain.execute("CREATE TEMP TABLE noted (position BIGINT, note TEXT)")
            cursor.executemany("INSERT INTO noted VALUES (?, ?)", [(At(1), "one"), (At(2), "two")])
            assert cursor.execute("SELECT * FROM noted ORDER BY position").fetchall() == [(41, "one"), (42, "two")]
            with pytest.raises(ValueError):
                cursor.execute("SELECT ?", (At(1), 2))
