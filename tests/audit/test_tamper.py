"""`nocert audit verify` on both durable stores: a clean store passes; each kind of tampering done directly in
SQL is found, of the right kind, at the right position, and nothing else is reported."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest

from signing.leaf import event_leaf
from signing.merkle import leaf_hash
from tests.audit.conftest import World, cli_json, problems_of, run_cli


def positions(world: World, check: str) -> dict[int, int]:
    """Version → position of one of the story's checks."""
    return world.services.log.stream_positions(world.story.checks[check])


def assert_found(world: World, monkeypatch, capsys, expected: set[tuple[int | None, str]]) -> dict:
    """The audit, called directly and through the CLI, reports exactly `expected` (position, kind) pairs."""
    report = world.audit().to_dict()
    assert report["ok"] is False
    assert problems_of(report) == expected, json.dumps(report["problems"], indent=1, ensure_ascii=False)
    code, document = cli_json(monkeypatch, capsys, world)
    assert code == 1
    assert set(document) == {"ok", "events", "checkpoints", "proofs", "erased_proofs", "problems"}
    assert document["ok"] is False
    assert problems_of(document) == expected
    for problem in document["problems"]:
        assert set(problem) == {"position", "kind", "detail"} and problem["detail"]
    return report


def test_a_clean_store_passes(world: World, monkeypatch, capsys) -> None:
    report = world.audit()
    assert report.ok, report.problems
    events = world.services.log.max_position()
    assert (report.events, report.proofs) == (events, 2)
    assert report.checkpoints == len(world.store().checkpoints()) >= events // 5
    code, document = cli_json(monkeypatch, capsys, world)
    assert code == 0
    assert document == {"ok": True, "events": events, "checkpoints": report.checkpoints, "proofs": 2, "erased_proofs": 0, "problems": []}
    code, text = run_cli(monkeypatch, capsys, world, "audit", "verify")
    assert code == 0
    assert text.strip().splitlines() == [report.summary()]
    assert text.startswith("audit: OK")


def test_an_edited_state_is_a_leaf_mismatch_at_its_position(world: World, monkeypatch, capsys) -> None:
    """A backdated event: one digit of its time changed; the state still decodes."""
    store = world.store()
    position = positions(world, "exempted")[2]  # Accepted
    state = store.row(position)[3]
    match = re.search(rb'"_data_":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{5}(\d)', state)
    assert match is not None
    digit = match.start(1)
    store.set_state(position, state[:digit] + (b"1" if state[digit : digit + 1] != b"1" else b"2") + state[digit + 1 :])
    report = assert_found(world, monkeypatch, capsys, {(position, "leaf_mismatch"), (position, "checkpoint_mismatch")})
    (leaf,) = [p for p in report["problems"] if p["kind"] == "leaf_mismatch"]
    assert "stored state hashed" in leaf["detail"]


def test_an_edited_actor_also_breaks_the_status_machine(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    position = positions(world, "declined")[2]  # Accepted by fz-gulou-police
    state = store.row(position)[3]
    assert b'"actor":"fz-gulou-police"' in state
    store.set_state(position, state.replace(b'"actor":"fz-gulou-police"', b'"actor":"fz-gulou-policf"'))
    report = assert_found(
        world,
        monkeypatch,
        capsys,
        {(position, "leaf_mismatch"), (position, "checkpoint_mismatch"), (position, "invalid_transition")},
    )
    (transition,) = [p for p in report["problems"] if p["kind"] == "invalid_transition"]
    assert "fz-gulou-policf" in transition["detail"]


def test_a_state_that_no_longer_decodes_is_undecodable(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    position = positions(world, "revoked")[2]  # Forwarded
    state = store.row(position)[3]
    store.set_state(position, b"[" + state[1:])
    assert_found(
        world,
        monkeypatch,
        capsys,
        {(position, "leaf_mismatch"), (position, "checkpoint_mismatch"), (position, "undecodable_event")},
    )


def test_a_deleted_event(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    versions = positions(world, "declined")
    deleted, next_of_stream = versions[3], versions[4]  # InfoRequested; InfoSupplied follows it
    store.delete(deleted)
    report = assert_found(
        world,
        monkeypatch,
        capsys,
        {
            (deleted, "position_order"),
            (deleted, "checkpoint_mismatch"),
            (next_of_stream, "version_gap"),
            (next_of_stream, "invalid_transition"),  # InfoSupplied without the question it answers
        },
    )
    assert report["events"] == world.services.log.max_position() - 1


def test_the_last_event_deleted(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    last = store.positions()[-1]
    store.delete(last)
    assert_found(world, monkeypatch, capsys, {(last, "position_order"), (last, "checkpoint_mismatch")})


@pytest.mark.parametrize("same_type", [True, False], ids=["same-type", "other-types"])
def test_two_states_swapped(world: World, monkeypatch, capsys, same_type: bool) -> None:
    store = world.store()
    if same_type:  # the Accepted events of two checks, both by the same issuer: each still decodes
        first, second = positions(world, "exempted")[2], positions(world, "declined")[2]
    else:  # a Replied and a Closed: neither state fits its type any more
        first, second = positions(world, "exempted")[3], positions(world, "declined")[6]
    state_first, state_second = store.row(first)[3], store.row(second)[3]
    assert state_first != state_second
    store.set_state(first, state_second)
    store.set_state(second, state_first)
    expected = {(first, "leaf_mismatch"), (second, "leaf_mismatch"), (first, "checkpoint_mismatch")}
    if not same_type:
        expected |= {(first, "undecodable_event"), (second, "undecodable_event")}
    report = assert_found(world, monkeypatch, capsys, expected)
    assert report["proofs"] == (2 if same_type else 1)  # an undecodable reply has no proof to verify


def test_a_forged_event_inserted(world: World, monkeypatch, capsys) -> None:
    """A second copy of a check's Raised event (valid JSON, a real topic) slipped in at a position in the
    middle of the log, every later event moved one position on."""
    store = world.store()
    source = positions(world, "withdrawn")[1]
    _, _, topic, state = store.row(source)
    at = positions(world, "declined")[1]
    events_before = world.services.log.max_position()
    store.insert_at(at, uuid.uuid4(), 1, topic, state)
    # Its sealed fields are bound to the stream they were sealed for: under another stream id they do not open.
    expected = {(at, "position_order"), (at, "checkpoint_mismatch"), (at, "undecodable_event")}
    report = assert_found(world, monkeypatch, capsys, expected)
    assert report["events"] == events_before + 1
    (order,) = [p for p in report["problems"] if p["kind"] == "position_order"]
    assert f"positions {at}..{events_before}" in order["detail"]


def test_a_changed_topic(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    position = positions(world, "exempted")[4]  # Closed
    store.execute(f"UPDATE {store.table} SET topic = ? WHERE {store.position_column} = ?", ("nocert:check:Accepted", position))
    assert_found(
        world,
        monkeypatch,
        capsys,
        {
            (position, "leaf_mismatch"),
            (position, "checkpoint_mismatch"),
            (position, "invalid_transition"),
            (position, "undecodable_event"),
        },
    )


def test_a_changed_version(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    position = positions(world, "revoked")[6]  # Closed, the stream's last event
    store.execute(f"UPDATE {store.table} SET originator_version = 7 WHERE {store.position_column} = ?", (position,))
    assert_found(
        world,
        monkeypatch,
        capsys,
        {(position, "leaf_mismatch"), (position, "checkpoint_mismatch"), (position, "version_gap")},
    )


def test_a_forged_proof_signature(world: World, monkeypatch, capsys) -> None:
    position = positions(world, "exempted")[3]  # Replied
    jws = world.sealed_event(position).jws
    signature = jws.rsplit(".", 1)[1]
    middle = len(signature) // 2
    forged = jws[: len(jws) - len(signature) + middle] + ("A" if signature[middle] != "A" else "B") + signature[middle + 1 :]
    world.reseal(position, jws=forged)  # an insider holding the subject keys
    report = assert_found(
        world,
        monkeypatch,
        capsys,
        {(position, "leaf_mismatch"), (position, "checkpoint_mismatch"), (position, "proof_invalid")},
    )
    (proof,) = [p for p in report["problems"] if p["kind"] == "proof_invalid"]
    assert proof["detail"].endswith("bad_signature")


def test_events_reordered(world: World, monkeypatch, capsys) -> None:
    """Two events of one check swap positions."""
    store = world.store()
    versions = positions(world, "revoked")
    first, second = versions[2], versions[4]  # Forwarded and Replied
    column = store.position_column
    store.execute(f"UPDATE {store.table} SET {column} = ? WHERE {column} = ?", (10_000_000, first))
    store.execute(f"UPDATE {store.table} SET {column} = ? WHERE {column} = ?", (first, second))
    store.execute(f"UPDATE {store.table} SET {column} = ? WHERE {column} = ?", (second, 10_000_000))
    report = world.audit().to_dict()
    found = problems_of(report)
    assert {(first, "position_order"), (second, "position_order"), (first, "checkpoint_mismatch")} <= found
    assert (first, "version_gap") in found and (second, "version_gap") in found
    assert {position for position, _ in found} <= set(versions.values())  # the check's later events break §4 too


@pytest.mark.parametrize("what", ["signature", "row"])
def test_a_checkpoint_altered(world: World, monkeypatch, capsys, what: str) -> None:
    store = world.store()
    tree_size, jws = store.checkpoints()[3]
    if what == "signature":
        signature = jws.rsplit(".", 1)[1]
        middle = len(jws) - len(signature) + len(signature) // 2
        store.set_checkpoint_jws(tree_size, jws[:middle] + ("A" if jws[middle] != "A" else "B") + jws[middle + 1 :])
    else:
        store.execute("UPDATE ledger_checkpoints SET root_hash = ? WHERE tree_size = ?", ("0" * 64, tree_size))
    last_covered = store.positions()[tree_size - 1]
    report = assert_found(world, monkeypatch, capsys, {(last_covered, "checkpoint_signature")})
    detail = report["problems"][0]["detail"]
    assert f"tree size {tree_size}" in detail
    assert ("bad signature" in detail) if what == "signature" else ("root_hash" in detail)


def test_a_ledger_view_rebuilt_from_altered_events(world: World, monkeypatch, capsys) -> None:
    """Someone edits an event and the ledger view to match: only the signed checkpoints still tell, and the
    audit names the first one that fails."""
    store = world.store()
    position = positions(world, "declined")[5]  # Declined
    state = store.row(position)[3]
    edited = state.replace(b'"reason_code":"no_record"', b'"reason_code":"other"')
    assert edited != state
    store.set_state(position, edited)
    notification = world.services.log.read(position - 1, 1, stop=position)[0]
    store.execute(
        "UPDATE ledger_leaves SET leaf_hash = ?, state_sha256 = ? WHERE position = ?",
        (leaf_hash(event_leaf(position, str(notification.originator_id), notification.originator_version, notification.topic, edited)), hashlib.sha256(edited).hexdigest(), position),
    )
    report = assert_found(world, monkeypatch, capsys, {(None, "checkpoint_mismatch")})
    index = store.positions().index(position)
    first_failing = (index // 5 + 1) * 5
    detail = report["problems"][0]["detail"]
    assert detail.startswith(f"checkpoint at tree size {first_failing} ")
    assert f"leaves {first_failing - 5}..{first_failing - 1} changed" in detail


def test_text_output_names_position_and_kind(world: World, monkeypatch, capsys) -> None:
    store = world.store()
    position = positions(world, "withdrawn")[2]
    store.delete(position)
    code, text = run_cli(monkeypatch, capsys, world, "audit", "verify")
    assert code == 1
    lines = text.strip().splitlines()
    assert lines[0].startswith(f"position {position}: position_order: ")
    assert lines[1].startswith(f"position {position}: checkpoint_mismatch: ")
    assert lines[-1].startswith("audit: FAILED") and "2 problem(s)" in lines[-1]
