"""Evidence bundles for their reader (issue #18): identity numbers in full only for the approver, the issuer
that sealed the proof and auditors, a masked bundle for anyone else that still verifies; the checkpoint as a
C2SP note with the witnesses' cosignatures; a pretty-printed bundle verifies like the original."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit.evidence import FULL, MASKED
from signing import certificates
from signing.note import NoteSigner, parse_note
from tests.audit.conftest import World, run_cli_full
from tests.audit.scenario import APPLICANT_ID, APPROVER, AUDITOR, CITY_POLICE, GULOU_POLICE, OTHER_ID

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "verify_bundle_example.py"


def export(world: World, monkeypatch, capsys, *options: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return run_cli_full(monkeypatch, capsys, world, "audit", "export", str(world.story.checks["exempted"]), *options)


def verify_file(world: World, monkeypatch, capsys, path: Path, *options: str) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    root = path.with_name("root.pem")
    root.write_text(certificates.to_pem(world.services.keystore.root()[1]))
    code, out, _ = run_cli_full(monkeypatch, capsys, world, "audit", "verify-bundle", str(path), "--root", str(root), "--json", *options)
    return code, json.loads(out)


def full_numbers_in(bundle: dict) -> bool:
    states = b"".join(base64.b64decode(event["state_b64"]) for event in bundle["events"] if event["state_b64"])
    text = json.dumps(bundle, ensure_ascii=False).encode() + states + (bundle["proof"]["jws"] or "").encode()
    payload = (bundle["proof"]["jws"] or "..").split(".")[1]
    text += base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)) if payload else b""
    return APPLICANT_ID.encode() in text or OTHER_ID.encode() in text


@pytest.mark.parametrize(("reader", "disclosure"), [
    (APPROVER, FULL), (GULOU_POLICE, FULL), (AUDITOR, FULL), (CITY_POLICE, MASKED), (None, MASKED),
])
def test_identity_numbers_only_for_whom_may_see_them(
    world: World, monkeypatch, capsys, tmp_path: Path, reader: str | None, disclosure: str  # type: ignore[no-untyped-def]
) -> None:
    code, out, err = export(world, monkeypatch, capsys, *(("--for", reader) if reader else ()))
    assert code == 0, err
    bundle = json.loads(out)
    assert bundle["disclosure"] == disclosure
    assert full_numbers_in(bundle) == (disclosure == FULL)
    path = tmp_path / "bundle.json"
    path.write_text(out)
    code, verdict = verify_file(world, monkeypatch, capsys, path)
    assert (code, verdict["valid"]) == (0, True), verdict
    assert (verdict["proof"] is not None) == (disclosure == FULL)
    assert any("masked bundle" in note for note in verdict["notes"]) == (disclosure == MASKED)
    # The stand-alone script of the format's document agrees.
    script = subprocess.run([sys.executable, str(SCRIPT), str(path), str(path.with_name("root.pem"))], capture_output=True, text=True)
    assert script.stdout.splitlines()[0] == "valid", script.stdout


def test_a_masked_bundle_given_its_states_back_is_invalid(world: World, monkeypatch, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    full = json.loads(export(world, monkeypatch, capsys, "--for", AUDITOR)[1])
    masked = json.loads(export(world, monkeypatch, capsys)[1])
    masked["events"][0]["state_b64"] = full["events"][0]["state_b64"]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(masked))
    code, verdict = verify_file(world, monkeypatch, capsys, path)
    assert code == 1 and any("withholds the stored state" in reason for reason in verdict["reasons"])


def test_an_unknown_reader_is_refused(world: World, monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, err = export(world, monkeypatch, capsys, "--for", "nobody-here")
    assert (code, out) == (1, "") and "no department 'nobody-here'" in err and err.count("\n") == 1


def test_a_pretty_printed_bundle_verifies(world: World, monkeypatch, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = export(world, monkeypatch, capsys, "--for", AUDITOR)[1]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(json.loads(out), indent=2, ensure_ascii=False))
    code, verdict = verify_file(world, monkeypatch, capsys, path)
    assert (code, verdict["valid"]) == (0, True), verdict
    assert any("canonical form" in note for note in verdict["notes"])
    edited = json.loads(out)
    edited["summary"]["check"]["purpose"] = "something else"
    path.write_text(json.dumps(edited, indent=2))
    assert verify_file(world, monkeypatch, capsys, path)[0] == 1


def test_the_bundle_carries_the_cosigned_checkpoint_note(world: World, monkeypatch, capsys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    views = world.services.views
    latest = views.latest_checkpoint()
    assert latest is not None
    witness = NoteSigner.cosigner("audit.fujian.example/witness", Ed25519PrivateKey.generate())
    note = views.checkpoint_note(latest["tree_size"])
    assert note is not None
    views.record_cosignatures(latest["tree_size"], [witness.signature(parse_note(note).text)])

    bundle = json.loads(export(world, monkeypatch, capsys, "--for", AUDITOR)[1])
    assert bundle["checkpoint_note"] == views.checkpoint_note(latest["tree_size"])
    assert bundle["checkpoint_note"].split("\n")[:2] == [world.services.settings.log_origin, str(bundle["checkpoint"]["tree_size"])]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))
    code, verdict = verify_file(world, monkeypatch, capsys, path, "--witness", witness.vkey)
    assert (code, verdict["valid"]) == (0, True), verdict["reasons"]
    assert any("cosigned by the witnesses audit.fujian.example/witness (verified)" in n for n in verdict["notes"])
    other = NoteSigner.cosigner("court.example/witness", Ed25519PrivateKey.generate())
    code, verdict = verify_file(world, monkeypatch, capsys, path, "--witness", other.vkey)
    assert code == 1 and any("no valid cosignature of witness court.example/witness" in r for r in verdict["reasons"])
    script = subprocess.run([sys.executable, str(SCRIPT), str(path), str(path.with_name("root.pem"))], capture_output=True, text=True)
    assert script.stdout.splitlines()[0] == "valid" and "cosigned by audit.fujian.example/witness" in script.stdout

    bundle["checkpoint_note"] = bundle["checkpoint_note"].replace(f"\n{latest['tree_size']}\n", "\n1\n", 1)
    path.write_text(json.dumps(bundle))
    code, verdict = verify_file(world, monkeypatch, capsys, path)
    assert code == 1 and any("checkpoint_note" in reason for reason in verdict["reasons"])
