"""Evidence bundles: `nocert audit export` then `nocert audit verify-bundle`, offline, with the root only."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
import rfc8785

from audit.bundle import verify_bundle
from audit.evidence import FORMAT, content_digest, serialize
from audit.export import ExportError, NotCovered, export_bundle
from domain.timefmt import utcnow
from signing import certificates
from signing.leaf import event_leaf
from signing.merkle import leaf_hash
from tests.audit.conftest import World, make_services, project, run_cli, run_cli_full, settle
from tests.audit.scenario import AUDITOR, raise_check, run_story


def bundle_of(world: World, check: str) -> dict:
    root = world.services.keystore.root()[1]
    return export_bundle(world.app, world.services.database, world.services.log, root, world.story.checks[check], utcnow())


def verify(data: bytes, world: World, now=None):
    return verify_bundle(data, world.services.keystore.root()[1], now or utcnow())


def root_file(world: World, tmp_path: Path) -> Path:
    path = tmp_path / "root.pem"
    path.write_text(certificates.to_pem(world.services.keystore.root()[1]))
    return path


def reseal(bundle: dict) -> bytes:
    """A bundle edited by someone who also recomputes its digest: only the signatures can tell."""
    return serialize({k: v for k, v in bundle.items() if k != "content_sha256"})


@pytest.mark.parametrize(
    ("check", "status", "versions", "proof"),
    [("exempted", "closed", 4, True), ("declined", "closed", 6, False), ("revoked", "closed", 6, True), ("withdrawn", "withdrawn", 2, False)],
)
def test_an_exported_bundle_verifies(world: World, check: str, status: str, versions: int, proof: bool) -> None:
    bundle = bundle_of(world, check)
    assert bundle["format"] == FORMAT and bundle["summary"]["covered_by_proofs"] is False
    assert [event["version"] for event in bundle["events"]] == list(range(1, versions + 1))
    assert bundle["checkpoint"]["tree_size"] == world.services.log.max_position()
    verdict = verify(serialize(bundle), world)
    assert verdict.valid, verdict.reasons
    assert (verdict.check_id, verdict.status, verdict.events) == (str(world.story.checks[check]), status, versions)
    assert (verdict.proof is not None) == proof
    if proof:
        assert verdict.proof.valid_at_issue and not verdict.proof.expired
        assert (verdict.proof.revoked_at is not None) == (check == "revoked")
    # The summary masks identity numbers as auditors see them; the proof JWS carries them in full.
    assert "********" in bundle["summary"]["check"]["applicant"]["id_number"]


def test_export_and_verify_through_the_cli(world: World, monkeypatch, capsys, tmp_path: Path) -> None:
    check_id = str(world.story.checks["exempted"])
    code, out = run_cli(monkeypatch, capsys, world, "audit", "export", check_id, "--for", AUDITOR)
    assert code == 0
    path = tmp_path / "bundle.json"
    path.write_text(out, encoding="utf-8")
    assert json.loads(out)["check_id"] == check_id
    root = root_file(world, tmp_path)
    # Offline: nothing but the file and the root certificate (no database, no key directory).
    monkeypatch.setenv("NOCERT_DATABASE_URL", "sqlite:////nonexistent/nowhere.db")
    monkeypatch.setenv("NOCERT_KEY_DIR", str(tmp_path / "no-keys"))
    capsys.readouterr()
    from api.cli import main

    assert main(["audit", "verify-bundle", str(path), "--root", str(root), "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is True and verdict["check_id"] == check_id and verdict["proof"]["valid_at_issue"] is True
    assert main(["audit", "verify-bundle", str(path), "--root", str(root)]) == 0
    assert capsys.readouterr().out.startswith("VALID: check ")
    assert not (tmp_path / "no-keys").exists()

    other = tmp_path / "other-root.pem"
    other.write_text(certificates.to_pem(certificates.create_root("another platform")[1]))
    assert main(["audit", "verify-bundle", str(path), "--root", str(other)]) == 1
    assert "checkpoint does not verify" in capsys.readouterr().out

    tampered = tmp_path / "tampered.json"
    data = path.read_bytes()
    tampered.write_bytes(data[:100] + bytes([data[100] ^ 1]) + data[101:])
    assert main(["audit", "verify-bundle", str(tampered), "--root", str(root)]) == 1
    assert capsys.readouterr().out.startswith("INVALID")


@pytest.mark.parametrize("check", ["exempted", "declined"])
def test_any_single_byte_changed_fails(world: World, check: str) -> None:
    data = serialize(bundle_of(world, check))
    assert verify(data, world).valid
    samples = sorted({round(i * (len(data) - 1) / 59) for i in range(60)})  # evenly spread, ends included
    assert len(samples) >= 50
    for offset in samples:
        for changed in (data[offset] ^ 0x01, ord("0") if data[offset] != ord("0") else ord("1")):
            altered = data[:offset] + bytes([changed]) + data[offset + 1 :]
            verdict = verify(altered, world)
            assert not verdict.valid, f"byte {offset} ({data[offset:offset + 1]!r} -> {bytes([changed])!r}) went unnoticed"


def test_another_root_fails(world: World) -> None:
    data = serialize(bundle_of(world, "exempted"))
    _, other_root = certificates.create_root("someone else's root")
    verdict = verify_bundle(data, other_root, utcnow())
    assert not verdict.valid
    assert any("checkpoint does not verify" in reason for reason in verdict.reasons)


def test_a_forger_who_recomputes_the_digest_is_caught_by_the_signatures(world: World) -> None:
    bundle = bundle_of(world, "exempted")

    def edited(change) -> list[str]:
        copy = json.loads(json.dumps(bundle))
        change(copy)
        verdict = verify(reseal(copy), world)
        assert not verdict.valid
        return verdict.reasons

    def edit_state(b):  # the Accepted event now names another actor
        event = b["events"][1]
        state = base64.b64decode(event["state_b64"]).replace(b"fz-gulou-police", b"fz-gulou-policf")
        event["state_b64"] = base64.b64encode(state).decode()

    assert any("hash to leaf" in r or "SHA-256" in r for r in edited(edit_state))

    def edit_state_and_hashes(b):  # ... and its leaf hash, so only the inclusion proof can tell
        edit_state(b)
        event = b["events"][1]
        state = base64.b64decode(event["state_b64"])
        event["state_sha256"] = hashlib.sha256(state).hexdigest()
        event["leaf_hash"] = leaf_hash(event_leaf(event["position"], event["stream_id"], event["version"], event["type"], state)).hex()

    assert any("not leaf 35" in r or "not leaf" in r for r in edited(edit_state_and_hashes))

    def drop_event(b):
        del b["events"][2]

    assert any("versions" in r or "not allowed" in r for r in edited(drop_event))

    def other_root_hash(b):
        b["checkpoint"]["root_hash"] = "0" * 64

    assert any("checkpoint" in r for r in edited(other_root_hash))

    def forged_proof(b):
        jws = b["proof"]["jws"]
        b["proof"]["jws"] = jws[:-10] + ("A" if jws[-10] != "A" else "B") + jws[-9:]

    assert any("proof does not verify" in r or "another proof" in r for r in edited(forged_proof))

    def summary_status(b):
        b["summary"]["check"]["status"] = "replied"

    assert any("summary contradicts" in r for r in edited(summary_status))


def test_the_summary_is_marked_as_not_covered(world: World) -> None:
    """A resealed edit of a summary field the events cannot check passes: the summary is a convenience,
    and says so in the bundle."""
    bundle = bundle_of(world, "declined")
    bundle["summary"]["check"]["decline"]["note"] = "edited"
    verdict = verify(reseal(bundle), world)
    assert verdict.valid
    assert bundle["summary"]["covered_by_proofs"] is False
    assert "not covered" in bundle["summary"]["note"]


def test_expiry_is_reported_apart_from_integrity(world: World) -> None:
    bundle = bundle_of(world, "exempted")
    later = utcnow() + timedelta(days=400)
    verdict = verify(serialize(bundle), world, now=later)
    assert verdict.valid
    assert verdict.proof.valid_at_issue and verdict.proof.expired
    assert any("expired" in note for note in verdict.notes)


def test_a_file_that_is_not_a_bundle(world: World) -> None:
    for data in (b"", b"not json", b"[]", b'{"format": "other"}', b'{"a": 1, "a": 2}'):
        assert not verify(data, world).valid
    # Pretty-printing changes the bytes, not the content that the digest and the signatures cover (issue #18).
    pretty = json.dumps(json.loads(serialize(bundle_of(world, "withdrawn"))), indent=2).encode()
    verdict = verify(pretty, world)
    assert verdict.valid and any("canonical" in note for note in verdict.notes)


def test_export_needs_a_checkpoint_over_the_check(world: World, monkeypatch, capsys) -> None:
    app = world.app
    check_id = raise_check(app)
    root = world.services.keystore.root()[1]
    with pytest.raises(NotCovered, match="has not recorded"):
        export_bundle(app, world.services.database, world.services.log, root, check_id, utcnow())
    project(world.services)  # the ledger records the event; no checkpoint covers it yet
    with pytest.raises(NotCovered, match="no signed checkpoint covers"):
        export_bundle(app, world.services.database, world.services.log, root, check_id, utcnow())
    code, out, err = run_cli_full(monkeypatch, capsys, world, "audit", "export", str(check_id))
    assert (code, out) == (1, "")
    assert "no signed checkpoint covers" in err
    settle(world.services)
    assert verify(serialize(export_bundle(app, world.services.database, world.services.log, root, check_id, utcnow())), world).valid


def test_export_of_an_unknown_check(world: World, monkeypatch, capsys) -> None:
    import uuid

    with pytest.raises(ExportError, match="no check"):
        export_bundle(world.app, world.services.database, world.services.log, world.services.keystore.root()[1], uuid.uuid4(), utcnow())
    code, out = run_cli(monkeypatch, capsys, world, "audit", "export", "not-a-uuid")
    assert code == 2 and out == ""  # not a check id: refused (#12.4), not "a problem found"


def test_a_bundle_of_an_encrypted_store(sqlite_url: str, tmp_path: Path) -> None:
    """Stored states are encrypted at rest: hashes are over the stored bytes, so the bundle still verifies."""
    cipher_key = base64.b64encode(b"k" * 32).decode()
    services = make_services(sqlite_url, tmp_path / "keys", cipher_key=cipher_key)
    try:
        story = run_story(services.platform)
        settle(services)
        root = services.keystore.root()[1]
        bundle = export_bundle(services.platform, services.database, services.log, root, story.checks["exempted"], utcnow())
        assert b"fz-gulou-police" not in base64.b64decode(bundle["events"][1]["state_b64"])
        data = serialize(bundle)
        verdict = verify_bundle(data, root, utcnow())
        assert verdict.valid, verdict.reasons
        assert any("encrypted" in note for note in verdict.notes)
        assert rfc8785.dumps(json.loads(data)) + b"\n" == data
        assert content_digest(json.loads(data)) == json.loads(data)["content_sha256"]
    finally:
        services.close()


JSON_VALUES = [None, True, False, 0, -1, 2**53, 1.5, "", "x", "0" * 64, [], [1], {}, {"a": 1}]


def _paths(value, prefix=()):
    """Every (path, value) in a JSON document, containers included."""
    yield prefix, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, prefix + (index,))


def test_any_member_replaced_by_any_json_value_fails_cleanly(world: World) -> None:
    """Resealed (digest recomputed) bundles with one member replaced: a verdict, never a crash, and never
    valid unless the member is the uncovered summary."""
    bundle = bundle_of(world, "revoked")
    root = world.services.keystore.root()[1]
    paths = [path for path, _ in _paths(bundle) if path and path[0] != "content_sha256"]
    for number, path in enumerate(paths[:: max(1, len(paths) // 150)]):
        copy = json.loads(json.dumps(bundle))
        target = copy
        for key in path[:-1]:
            target = target[key]
        original = target[path[-1]]
        replacement = JSON_VALUES[number % len(JSON_VALUES)]
        if replacement == original:
            continue
        target[path[-1]] = replacement
        try:
            data = reseal(copy)
        except ValueError:  # not canonicalizable (2**53): write it as plain JSON
            data = json.dumps(copy).encode()
        verdict = verify_bundle(data, root, utcnow())
        if path[0] != "summary":
            assert not verdict.valid, path


def test_each_event_of_a_bundle_names_its_officer(world: World) -> None:
    """API.md §12 and issue 18: the bundle shows the officer of each event (null where none was named); a
    bundle whose officer is not text or null is refused; bundles made before officers (no member) verify."""
    from tests.audit.scenario import GULOU_POLICE

    world.app.add_officer(GULOU_POLICE, "wang.li", "王丽")
    check_id = raise_check(world.app)
    world.app.accept(check_id, GULOU_POLICE, "wang.li")
    settle(world.services)
    root = world.services.keystore.root()[1]
    bundle = export_bundle(world.app, world.services.database, world.services.log, root, check_id, utcnow())
    assert [(e["type"].rpartition(":")[2], e["officer"]) for e in bundle["events"]] == [
        ("Raised", None), ("Accepted", "wang.li"),
    ]
    assert verify(serialize(bundle), world).valid
    forged = {**bundle, "events": [{**bundle["events"][1], "officer": 7}, *bundle["events"][2:]]}
    forged["events"].insert(0, bundle["events"][0])
    assert not verify(reseal(forged), world).valid
    before_officers = {**bundle, "events": [{k: v for k, v in e.items() if k != "officer"} for e in bundle["events"]]}
    assert verify(reseal(before_officers), world).valid
