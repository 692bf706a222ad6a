"""`nocert audit verify` on hostile rows (issue #11.11): a row of the event store rewritten by hand into
something eventsourcing cannot read (a state stored as TEXT instead of BLOB, an empty or non-UTF-8 state,
a topic naming no event class, an id that is no UUID, a version that is no number) is a problem at its
position, in the plain and the ``--json`` output, never a traceback. Before the fix the TEXT state crashed
the audit with a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.audit.conftest import EventStore, World, run_cli_full
from tests.audit.test_tamper import positions


def _text_state(store: EventStore, position: int) -> None:
    if store.postgres:
        pytest.skip("PostgreSQL types its columns: a bytea state cannot hold TEXT")
    store.execute(f"UPDATE {store.table} SET state = CAST(state AS TEXT) WHERE rowid = ?", (position,))


def _id_not_a_uuid(store: EventStore, position: int) -> None:
    if store.postgres:
        pytest.skip("PostgreSQL types its columns: a uuid column holds only UUIDs")
    store.execute(f"UPDATE {store.table} SET originator_id = 'not-a-uuid' WHERE rowid = ?", (position,))


def _version_text(store: EventStore, position: int) -> None:
    if store.postgres:
        pytest.skip("PostgreSQL types its columns: an integer column holds only integers")
    store.execute(f"UPDATE {store.table} SET originator_version = 'abc' WHERE rowid = ?", (position,))


HOSTILE: dict[str, Callable[[EventStore, int], None]] = {
    "state as TEXT": _text_state,
    "empty state": lambda store, position: store.set_state(position, b""),
    "state not UTF-8": lambda store, position: store.set_state(position, b"\xff\xfe\x00garbage"),
    "state deep JSON": lambda store, position: store.set_state(position, b"[" * 100_000 + b"]" * 100_000),
    "topic of no class": lambda store, position: store.execute(
        f"UPDATE {store.table} SET topic = ? WHERE {store.position_column} = ?", ("nowhere.module:Nothing", position)
    ),
    "topic of a builtin": lambda store, position: store.execute(
        f"UPDATE {store.table} SET topic = ? WHERE {store.position_column} = ?", ("builtins:eval", position)
    ),
    "id not a UUID": _id_not_a_uuid,
    "version not a number": _version_text,
}


@pytest.mark.parametrize("hostile", list(HOSTILE))
def test_a_hostile_row_is_a_problem_at_its_position(world: World, monkeypatch, capsys, hostile: str) -> None:
    store = world.store()
    position = positions(world, "revoked")[2]
    HOSTILE[hostile](store, position)

    code, out, err = run_cli_full(monkeypatch, capsys, world, "audit", "verify", "--json")
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert code == 1, (code, out[-2000:], err[-2000:])
    document = json.loads(out)
    assert document["ok"] is False
    assert position in {problem["position"] for problem in document["problems"]}, document["problems"]

    code, out, err = run_cli_full(monkeypatch, capsys, world, "audit", "verify")
    assert "Traceback" not in out + err, (out + err)[-3000:]
    assert code == 1 and f"position {position}" in out, out[-2000:]
