"""The rollback attack of the security review (issue #11.12, API.md §15), on both stores: the last events are
deleted together with the checkpoint rows that cover them. `nocert views rebuild` refuses (the highest
checkpoint ever signed is archived in the key directory), and `nocert audit verify --checkpoint` with a
checkpoint archived earlier (note or JWS) reports kind ``rollback``, also once the archive is gone and the
views were rebuilt smaller."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.audit.conftest import World, make_services, run_cli_full
from tests.audit.scenario import run_story


@pytest.fixture
def followed(durable_database_url: str, tmp_path: Path) -> Iterator[World]:
    """The story, its views kept by the service's own follower (which archives what it signs)."""
    services = make_services(durable_database_url, tmp_path / "keys")
    try:
        story = run_story(services.platform)
        lock = services.database.leader_lock("views")
        try:
            while services.views.position() < services.log.max_position():
                services.views.follow_once(lock)
        finally:
            lock.close()
        yield World(services, story, durable_database_url, tmp_path / "keys")
    finally:
        services.close()


def kinds(out: str) -> list[tuple[object, str, str]]:
    return [(p["position"], p["kind"], p["detail"]) for p in json.loads(out)["problems"]]


def test_deleting_the_last_events_and_their_checkpoints_is_detected(
    followed: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    views = followed.services.views
    assert views.archive is not None
    archived = views.archive.read()
    latest = views.latest_checkpoint()
    assert archived is not None and latest is not None and archived["tree_size"] == latest["tree_size"] >= 5
    size = latest["tree_size"]
    (tmp_path / "old.note").write_text(views.checkpoint_note() or "")
    (tmp_path / "old.jws").write_text(latest["jws"] + "\n")
    code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--json",
                                "--checkpoint", str(tmp_path / "old.note"), "--checkpoint", str(tmp_path / "old.jws"))
    assert (code, kinds(out)) == (0, [])

    # The attack: the last three events of the ledger deleted, and every checkpoint row that covers them.
    store = followed.store()
    positions = store.positions()
    for position in positions[size - 3 :]:
        store.delete(position)
    store.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (size - 3,))

    code, out, err = run_cli_full(monkeypatch, capsys, followed, "views", "rebuild")
    assert code == 1
    assert err.count("\n") == 1 and "refused" in err and "rollback" in err and f"fewer than the {size}" in err, err
    assert views.ledger_size() == len(positions)  # the live views are kept

    code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--json",
                                "--checkpoint", str(tmp_path / "old.note"), "--checkpoint", str(tmp_path / "old.jws"))
    found = kinds(out)
    assert code == 1
    rollbacks = [detail for _, kind, detail in found if kind == "rollback"]
    assert any(detail.startswith(f"--checkpoint {tmp_path / 'old.note'}: ") for detail in rollbacks), rollbacks
    assert any(detail.startswith(f"--checkpoint {tmp_path / 'old.jws'}: ") for detail in rollbacks), rollbacks
    assert any(detail.startswith("the checkpoint archived in ") for detail in rollbacks), rollbacks

    # An operator who can also reach the key directory removes the archive and rebuilds: the rebuild goes
    # through, but a checkpoint archived by someone else still shows the ledger view went backwards.
    views.archive.path.unlink()
    code, _, err = run_cli_full(monkeypatch, capsys, followed, "views", "rebuild")
    assert code == 0, err
    assert views.ledger_size() == size - 3
    code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--checkpoint", str(tmp_path / "old.note"))
    assert code == 1
    lines = [line for line in out.splitlines() if ": rollback: " in line]
    assert any("ledger view has" in line and "went backwards" in line for line in lines), out
    assert any(f"fewer than the {size}" in line for line in lines), out


def test_a_rewritten_history_at_the_archived_size_is_a_rollback(
    followed: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    views = followed.services.views
    latest = views.latest_checkpoint()
    assert latest is not None
    (tmp_path / "old.jws").write_text(latest["jws"])
    store = followed.store()
    first = store.positions()[0]
    state = store.row(first)[3]
    store.set_state(first, state + b" ")
    code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--json", "--checkpoint", str(tmp_path / "old.jws"))
    assert code == 1
    assert any(kind == "rollback" and "history was rewritten" in detail for _, kind, detail in kinds(out))


def test_an_archived_file_that_does_not_verify_is_refused(
    followed: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "forged").write_text("nocert.localhost/ledger\n99\nAAAA\n\n— nocert.localhost/ledger AAAAAAAA\n")
    code, _, err = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--checkpoint", str(tmp_path / "forged"))
    assert code == 2 and err.startswith("nocert: ") and "checkpoint " in err and err.count("\n") == 1, err


def test_audit_verify_checks_the_ledger_against_each_witness(
    followed: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from api.bootstrap import LedgerCheckpoints
    from signing.note import parse_vkey
    from tests.witness.nocert_process import nocert_witness
    from witness.client import WitnessEndpoint
    from witness.publisher import Publisher

    views = followed.services.views
    size = views.ledger_size()
    with nocert_witness(tmp_path / "witness", views.note_signer.vkey, "audit.example/witness") as (vkey, url):
        publisher = Publisher([WitnessEndpoint(parse_vkey(vkey), url)], LedgerCheckpoints(views))
        assert publisher.publish_once(0)
        publisher.stop()
        monkeypatch.setenv("NOCERT_WITNESSES", f"{vkey}={url}")
        code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--json")
        assert (code, kinds(out)) == (0, [])

        store = followed.store()
        for position in store.positions()[size - 3 :]:
            store.delete(position)
        store.execute("DELETE FROM ledger_checkpoints WHERE tree_size > ?", (size - 3,))
        assert views.archive is not None
        views.archive.path.unlink()
        assert run_cli_full(monkeypatch, capsys, followed, "views", "rebuild")[0] == 0

        code, out, _ = run_cli_full(monkeypatch, capsys, followed, "audit", "verify", "--json")
        assert code == 1
        details = [detail for _, kind, detail in kinds(out) if kind == "rollback"]
        assert any(d.startswith(f"witness audit.example/witness ({url}): ") and "fewer than" in d for d in details), details
