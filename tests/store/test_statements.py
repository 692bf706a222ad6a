"""The PostgreSQL recorder's statements, composed once (`store.recorder.rendered`), are the statements
eventsourcing composes per call: the same text, the same rows, the same transaction-local settings and
the same notification on a save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier, Literal

from api.settings import parse_database_url, store_env
from domain.platform import Platform
from store.recorder import rendered
from tests.domain.fakes import FakeClaims, FakeSealer
from tests.domain.world import APPROVER, GULOU_POLICE, build_province, new_check_id


@pytest.fixture
def platform(postgres_url: str) -> Iterator[Platform]:
    app = Platform(store_env(parse_database_url(postgres_url), pool_size=2), sealer=FakeSealer(), claims=FakeClaims())
    build_province(app)
    yield app
    app.close()


def test_rendered_without_a_connection_is_what_libpq_quotes(postgres_url: str) -> None:
    conninfo = parse_database_url(postgres_url).conninfo()
    statements = [
        SQL("SELECT * FROM {0}.{1} WHERE x = %s").format(Identifier('Odd "schema"'), Identifier("table.name")),
        SQL("SELECT set_config('search_path', {0}, true), {1}").format(Literal('"a""b"'), Literal("0s")),
        SQL("SET LOCAL lock_timeout = '{0}s'").format(0),
    ]
    with psycopg.connect(conninfo) as connection:
        for statement in statements:
            assert rendered(statement) == statement.as_bytes(connection)
    assert rendered("SELECT 1") == rendered(b"SELECT 1") == b"SELECT 1"


def test_the_recorders_statements_are_eventsourcings(platform: Platform) -> None:
    recorder: Any = platform.recorder
    with recorder.datastore.get_connection() as connection:
        assert recorder._lock_statements == [s.as_bytes(connection) for s in recorder.lock_table_statements]
        assert recorder._notify == SQL("NOTIFY {0}").format(Identifier(recorder.channel_name)).as_bytes(connection)


def test_select_events_answers_as_eventsourcings_in_every_shape(platform: Platform) -> None:
    check_id = new_check_id(platform)
    platform.accept(check_id, GULOU_POLICE)
    recorder: Any = platform.recorder
    shapes: list[dict[str, Any]] = [
        {},
        {"gt": 1},
        {"lte": 1},
        {"gt": 0, "lte": 2},
        {"desc": True},
        {"desc": True, "limit": 1},
        {"gt": 1, "lte": 5, "desc": True, "limit": 3},
        {"limit": 1},
    ]
    for shape in shapes:
        ours = recorder.select_events(check_id, **shape)
        theirs = PostgresApplicationRecorder.select_events(recorder, check_id, **shape)
        assert ours == theirs, shape
        assert ours or shape == {"gt": 1, "lte": 1}
    assert [e.originator_version for e in recorder.select_events(check_id, desc=True)] == [2, 1]


def test_a_save_notifies_listeners_and_leaves_no_setting_behind(platform: Platform, postgres_url: str) -> None:
    recorder: Any = platform.recorder
    with psycopg.connect(parse_database_url(postgres_url).conninfo(), autocommit=True) as listener:
        listener.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
        check_id = new_check_id(platform)  # a lone save each: the short path
        platform.accept(check_id, GULOU_POLICE)
        ours = {c.info.backend_pid for c in recorder.datastore.pool._pool}  # idle again: every connection
        # The channel is named after the table, in every schema: other tests' saves notify it too.
        mine = next((n for n in listener.notifies(timeout=30) if n.pid in ours), None)
        assert mine is not None, "the save notified its channel"
        assert (mine.channel, mine.payload) == (recorder.channel_name, "")
    with recorder.datastore.get_connection() as connection:  # the pool's connections: session settings intact
        for _ in range(2):
            row = connection.execute(
                "SELECT current_setting('search_path') AS s, current_setting('lock_timeout') AS t"
            ).fetchone()
            assert row is not None
            assert list(row.values()) == ['"$user", public', "0"]


def test_a_pipelined_transaction_commits_whole_or_leaves_nothing(postgres_url: str) -> None:
    from psycopg.pq import TransactionStatus

    from store.pipelined import pipelined_transaction

    schema = parse_database_url(postgres_url)
    with psycopg.connect(schema.conninfo(), autocommit=True) as connection:
        connection.execute("CREATE TEMP TABLE noted (n INTEGER PRIMARY KEY)")

        def noted() -> list[int]:
            return [row[0] for row in connection.execute("SELECT n FROM noted ORDER BY n").fetchall()]

        with pipelined_transaction(connection), connection.cursor() as cursor:
            cursor.execute("INSERT INTO noted VALUES (1), (2) RETURNING n")
            assert [row[0] for row in cursor.fetchall()] == [1, 2]
        assert noted() == [1, 2]
        with pytest.raises(RuntimeError), pipelined_transaction(connection), connection.cursor() as cursor:
            cursor.execute("INSERT INTO noted VALUES (3)")
            raise RuntimeError("the block failed after writing")
        assert connection.info.transaction_status == TransactionStatus.IDLE
        with pytest.raises(psycopg.errors.UniqueViolation), pipelined_transaction(connection):
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO noted VALUES (4)")
                cursor.execute("INSERT INTO noted VALUES (1)")  # refused: nothing of the block remains
        assert connection.info.transaction_status == TransactionStatus.IDLE
        assert noted() == [1, 2]


def test_a_save_sends_its_whole_transaction_before_reading_a_result(
    platform: Platform, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue #14: a lifecycle save (its feed rows, outbox rows and idempotency record attached) is eight
    statements, BEGIN to COMMIT in one round trip: its positions are read after the COMMIT, the attachments
    find them on the server. Before, the positions were read under the table lock, in a round trip of their
    own, and the attachments took two statements per department told and one or two for the record."""
    from api.bootstrap import _open_database
    from api.settings import Settings
    from delivery.routing import delivery_hook
    from delivery.schema import create_tables
    from store.idempotency import BodyCipher, CommittedAttachment, IdempotencyStore, RecordId

    database = _open_database(parse_database_url(postgres_url), Settings(database_url=postgres_url, db_pool_size=1))
    create_tables(database)
    IdempotencyStore(database, BodyCipher(bytes(32)))
    database.close()
    check_id = new_check_id(platform)
    record = RecordId("gulou", f"/v1/checks/{check_id}/accept", "k")
    platform.save_hooks.append(delivery_hook)
    platform.save_hooks.append(lambda aggregates, events: [CommittedAttachment(record, "fp", str(check_id), 2)])
    sent: list[str] = []
    group: Any = platform.recorder.group  # type: ignore[attr-defined]
    commit, execute, fetchone, fetchall = group._commit, psycopg.Cursor.execute, psycopg.Cursor.fetchone, psycopg.Cursor.fetchall
    saving: list[bool] = []

    def noted_commit(writes: Any) -> Any:
        saving.append(True)
        try:
            return commit(writes)
        finally:
            saving.clear()

    def noted_execute(cursor: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if saving:
            text = query if isinstance(query, str) else bytes(query).decode()
            sent.append(" ".join(text.split()[:4]))
        return execute(cursor, query, *args, **kwargs)

    def noted(fetch: Any) -> Any:
        def fetched(cursor: Any, *args: Any, **kwargs: Any) -> Any:
            if saving:
                sent.append("(read)")
            return fetch(cursor, *args, **kwargs)

        return fetched

    group._commit = noted_commit
    monkeypatch.setattr(psycopg.Cursor, "execute", noted_execute)
    monkeypatch.setattr(psycopg.Cursor, "fetchone", noted(fetchone))
    monkeypatch.setattr(psycopg.Cursor, "fetchall", noted(fetchall))
    _, position = platform.accept(check_id, GULOU_POLICE)
    expected = [
        "BEGIN",
        "SELECT set_config('search_path',",
        "LOCK TABLE",
        "WITH inserted AS",
        "INSERT INTO feed_entries",
        "WITH told (position,",
        "INSERT INTO idempotency_keys",
        "COMMIT",
        "(read)",
    ]
    assert len(sent) == len(expected) and all(s.startswith(e) for s, e in zip(sent, expected, strict=True)), sent
    recorder: Any = platform.recorder
    schema = recorder.datastore.schema
    with recorder.datastore.get_connection() as connection:
        feed = connection.execute(f'SELECT department, position FROM "{schema}".feed_entries ORDER BY 1').fetchall()
        kept = connection.execute(f'SELECT state, position FROM "{schema}".idempotency_keys').fetchall()
    assert sorted(tuple(row.values()) for row in feed) == sorted([(APPROVER, position), (GULOU_POLICE, position)])
    assert [tuple(row.values()) for row in kept] == [("committed", position)]
