"""`nocert audit verify` beyond tampering: proofs in worker processes, revocations and expiry that are not
integrity problems, encrypted stores, stores without views, and auditing while the service runs."""

from __future__ import annotations

import base64
import threading
from datetime import timedelta
from pathlib import Path

import audit.bundle
import audit.proof_workers
from domain.check_rules import TRANSITIONS
from domain.timefmt import utcnow
from tests.audit.conftest import World, make_services, problems_of, settle
from tests.audit.scenario import APPROVER, GULOU_POLICE, raise_check, run_story


def test_the_bundle_verifier_knows_the_domain_status_machine() -> None:
    assert audit.bundle.TRANSITIONS is TRANSITIONS  # replayed, not restated


def forge_proof_signature(world: World) -> int:
    """An insider holding the subject keys re-seals a Replied event with a forged JWS (without the keys, any
    change to the sealed field is an undecodable event)."""
    position = world.services.log.stream_positions(world.story.checks["revoked"])[4]  # Replied
    jws = world.sealed_event(position).jws
    world.reseal(position, jws=jws[:-20] + ("A" if jws[-20] != "A" else "B") + jws[-19:])
    return position


def test_proofs_verified_in_worker_processes(world: World, monkeypatch) -> None:
    monkeypatch.setattr(audit.proof_workers, "PROOF_CHUNK", 1)  # every proof a task of its own
    monkeypatch.setattr(audit.proof_workers, "PARALLEL_FROM", 1)
    clean = world.audit(workers=2)
    assert clean.ok and clean.proofs == 2
    position = forge_proof_signature(world)
    in_workers = world.audit(workers=2).to_dict()
    in_process = world.audit(workers=1).to_dict()
    assert in_workers == in_process
    assert (position, "proof_invalid") in problems_of(in_workers)


def test_later_revocations_are_not_integrity_problems(world: World) -> None:
    """A proof revoked by its issuer, or whose key is revoked later (even with an effective time before the
    proof was sealed), is the proof's later life: the audit reports nothing."""
    app = world.app
    kid = app.department(GULOU_POLICE).current_seal(utcnow()).kid
    app.revoke_seal(GULOU_POLICE, kid, "key lost", utcnow() - timedelta(days=1))
    settle(world.services)
    report = world.audit()
    assert report.ok, report.problems
    assert report.proofs == 2


def test_a_proof_that_expired_is_not_a_problem(world: World) -> None:
    app = world.app
    app.rotate_seal(GULOU_POLICE)
    check_id = raise_check(app)
    app.reply(check_id, GULOU_POLICE, "confirmed", {}, 1)
    settle(world.services)
    report = world.audit()  # proofs are judged as of their issue, never "now"
    assert report.ok and report.proofs == 3


def test_exempted_needs_a_confirmed_reply(world: World) -> None:
    """The §4 rule on `close exempted` is checked from the recorded events: a forged outcome is found."""
    store = world.store()
    position = world.services.log.stream_positions(world.story.checks["declined"])[6]  # Closed
    state = store.row(position)[3]
    store.set_state(position, state.replace(b'"outcome":"applicant_submitted"', b'"outcome":"exempted"'))
    found = problems_of(world.audit().to_dict())
    assert (position, "invalid_transition") in found and (position, "leaf_mismatch") in found


def test_an_encrypted_store(sqlite_url: str, tmp_path: Path) -> None:
    services = make_services(sqlite_url, tmp_path / "keys", cipher_key=base64.b64encode(b"c" * 32).decode())
    try:
        story = run_story(services.platform)
        settle(services)
        world = World(services, story, sqlite_url, tmp_path / "keys")
        assert world.audit().ok
        store = world.store()
        position = services.log.stream_positions(story.checks["exempted"])[2]
        state = store.row(position)[3]
        store.set_state(position, state[:20] + bytes([state[20] ^ 1]) + state[21:])
        found = problems_of(world.audit().to_dict())
        assert found == {(position, "leaf_mismatch"), (position, "checkpoint_mismatch"), (position, "undecodable_event")}
    finally:
        services.close()


def test_a_store_whose_views_never_ran(sqlite_url: str, tmp_path: Path) -> None:
    services = make_services(sqlite_url, tmp_path / "keys")
    try:
        world = World(services, None, sqlite_url, tmp_path / "keys")  # type: ignore[arg-type]
        empty = world.audit()
        assert empty.ok and (empty.events, empty.checkpoints, empty.proofs) == (0, 0, 0)
        run_story(services.platform)
        report = world.audit()
        assert report.ok and report.checkpoints == 0 and report.events == services.log.max_position()
    finally:
        services.close()


def test_progress_is_reported(world: World) -> None:
    calls: list[tuple[int, int]] = []
    report = world.audit(progress=lambda done, total: calls.append((done, total)), page_size=10)
    total = world.services.log.max_position()
    assert calls[0] == (0, total) and calls[-1] == (total, total) and len(calls) >= total // 10
    assert report.ok


def test_audit_while_the_service_runs(durable_database_url: str, tmp_path: Path) -> None:
    """The audit only reads: with the follower signing checkpoints and commands recording events meanwhile,
    it still finds nothing wrong."""
    services = make_services(durable_database_url, tmp_path / "keys")
    stop = threading.Event()
    errors: list[BaseException] = []

    def busy() -> None:
        try:
            while not stop.is_set():
                check_id = raise_check(services.platform)
                services.platform.accept(check_id, GULOU_POLICE)
                services.platform.reply(check_id, GULOU_POLICE, "confirmed", {}, 30)
                services.platform.close_check(check_id, APPROVER, "exempted")
                services.views.nudge()
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    try:
        story = run_story(services.platform)
        world = World(services, story, durable_database_url, tmp_path / "keys")
        services.views.start()
        worker = threading.Thread(target=busy)
        worker.start()
        try:
            reports = [world.audit(page_size=7) for _ in range(3)]
        finally:
            stop.set()
            worker.join()
        assert not errors
        for report in reports:
            assert report.ok, report.problems
        assert reports[-1].events > reports[0].events or reports[-1].checkpoints >= reports[0].checkpoints
        assert services.views.wait_for(services.log.max_position(), timeout=30)
    finally:
        services.close()


def test_a_proof_sealed_for_a_department_the_platform_does_not_know(world: World) -> None:
    """A proof re-sealed under a genuine root-issued certificate of a department that was never registered
    (what a leaked root key would allow): unknown_issuer, and the proof no longer matches its event."""
    from signing import jws as jws_module
    from signing.proofs import seal_proof

    position = world.services.log.stream_positions(world.story.checks["exempted"])[3]  # Replied
    original = world.sealed_event(position).jws
    payload = jws_module.parse_compact(original).payload
    payload["issuer"] = {"id": "ghost-police", "name": "不存在的派出所", "uscc": payload["issuer"]["uscc"]}
    signer = world.services.keystore.new_department_seal("ghost-police", "不存在的派出所", payload["issuer"]["uscc"])
    world.reseal(position, jws=seal_proof(signer, payload))
    report = world.audit().to_dict()
    details = [p["detail"] for p in report["problems"] if (p["position"], p["kind"]) == (position, "proof_invalid")]
    assert any(detail.endswith("unknown_issuer") for detail in details), details
    assert any("kid, issuer differ" in detail for detail in details), details
    assert (position, "leaf_mismatch") in problems_of(report)
