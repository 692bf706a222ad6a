"""API.md §15 over HTTP on both stores: the checkpoint note and vkey, witnessing by `nocert witness serve`
processes (two cosign, a dead one blocks nothing), and the root's CRL checked by openssl."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import build
from signing.keystore import KeyStore
from signing.note import NoteSigner, open_checkpoint, open_note, parse_vkey
from tests.api.conftest import Province, free_port, settings_for
from tests.signing import test_note
from tests.witness.nocert_process import NOCERT, nocert_witness, wait_until

ORIGIN = "nocert.localhost/ledger"


def served_note(province: Province) -> tuple[str, str]:
    """The served checkpoint note and vkey, once a checkpoint covers a few checks."""
    for _ in range(3):
        province.replied_check()
    province.settle()
    auditor = province.as_("auditor")
    wait_until(lambda: auditor.get("/v1/audit/checkpoints/latest").status_code == 200, "a checkpoint")
    return province.anonymous.get("/v1/log/checkpoint", expect=200).text, province.anonymous.get("/v1/log/vkey").text.strip()


def test_the_checkpoint_note_has_the_jws_checkpoints_size_and_root(province: Province) -> None:
    anonymous = province.anonymous
    for _ in range(3):
        province.replied_check()
    province.settle()
    auditor = province.as_("auditor")
    jws = wait_until(lambda: auditor.get("/v1/audit/checkpoints/latest").json().get("tree_size"), "a checkpoint")
    response = anonymous.get("/v1/log/checkpoint", expect=200)
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    vkey = anonymous.get("/v1/log/vkey", expect=200).text
    assert vkey.startswith(ORIGIN + "+") and vkey.endswith("\n")
    checkpoint, verified = open_checkpoint(response.text, [parse_vkey(vkey.strip())])
    assert checkpoint.size >= jws
    signed = auditor.get("/v1/audit/checkpoints", params={"tree_size": checkpoint.size}, expect=200).json()
    assert (checkpoint.origin, checkpoint.size, checkpoint.root_hash.hex()) == (ORIGIN, signed["tree_size"], signed["root_hash"])
    assert [s.name for s in verified.verified] == [ORIGIN]
    assert province.anonymous.get("/v1/log/checkpoint").text == response.text  # the same bytes each time


go_verifier = test_note.go_verifier  # the fixture building Go's verifier


def test_go_verifies_the_served_note(sqlite_province: Province, go_verifier: Path) -> None:  # noqa: F811
    """An independent verifier: Go's golang.org/x/mod/sumdb/note."""
    note, vkey = served_note(sqlite_province)
    assert test_note.go_open(go_verifier, note, vkey) == (0, f"verified {ORIGIN}\n")


def test_two_witness_processes_cosign_and_a_dead_one_blocks_nothing(durable_database_url: str, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    log_vkey = NoteSigner.from_signer(ORIGIN, KeyStore(key_dir).ledger_signer()).vkey
    with (
        nocert_witness(tmp_path / "w1", log_vkey, "audit.fujian.example/witness") as (vkey1, url1),
        nocert_witness(tmp_path / "w2", log_vkey, "court.fujian.example/witness") as (vkey2, url2),
    ):
        dead_vkey = subprocess.run(
            [NOCERT, "witness", "vkey", "--state", str(tmp_path / "w3"), "--name", "down.example/witness"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        witnesses = f"{vkey1}={url1},{dead_vkey}=http://127.0.0.1:{free_port()},{vkey2}={url2}"
        services = build(settings_for(durable_database_url, key_dir, witnesses=witnesses))
        try:
            with TestClient(create_app(services)) as client:
                province = Province.standard(client, services)
                for _ in range(3):  # commands answer while a witness is down
                    province.replied_check()
                province.settle()
                keys = [parse_vkey(log_vkey), parse_vkey(vkey1), parse_vkey(vkey2)]

                def cosigned_by_both() -> str | None:
                    note = province.anonymous.get("/v1/log/checkpoint", expect=200).text
                    names = {s.name for s in open_note(note, keys).verified}
                    size = int(note.split("\n")[1])
                    latest = services.views.latest_checkpoint()
                    assert latest is not None
                    done = len(names) == 3 and size == latest["tree_size"]
                    return note if done else None

                note = wait_until(cosigned_by_both, "both witnesses cosigning the latest checkpoint")
                (tmp_path / "cosigned-note.txt").write_text(note)
                print("cosigned checkpoint served at /v1/log/checkpoint:\n" + note)
                # The witnesses serve what they cosigned, matching the platform's note.
                seen = httpx.get(f"{url1}/{__import__('hashlib').sha256(ORIGIN.encode()).hexdigest()}/checkpoint").text
                assert seen.split("\n\n")[0] == note.split("\n\n")[0]

                ready = province.anonymous.get("/readyz", expect=200).json()["witnessing"]
                assert ready["cosigned_tree_size"] == int(note.split("\n")[1]) and ready["cosigned_age_seconds"] >= 0
                assert {w["witness"] for w in ready["witnesses"]} == {
                    "audit.fujian.example/witness", "court.fujian.example/witness", "down.example/witness"
                }

                def dead_reported() -> bool:
                    answer = province.anonymous.get("/readyz", expect=200).json()["witnessing"]["witnesses"]
                    return {w["witness"]: w["last_status"] for w in answer}["down.example/witness"] == "unreachable"

                wait_until(dead_reported, "the dead witness reported unreachable")
                metrics = province.anonymous.get("/metrics", expect=200).text
                assert "nocert_cosigned_checkpoint_age_seconds" in metrics
                assert "nocert_cosigned_checkpoint_age_seconds -1.0" not in metrics
        finally:
            services.close()


# -- the root's CRL ------------------------------------------------------------------------------


def _openssl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_openssl_validates_seal_certificates_with_the_crl_and_reports_a_revoked_one(
    durable_database_url: str, tmp_path: Path
) -> None:
    services = build(settings_for(durable_database_url, tmp_path / "keys", public_url="https://nocert.example.gov.cn/"))
    try:
        with TestClient(create_app(services)) as client:
            province = Province.standard(client, services)
            admin = province.admin
            old = province.gulou.document["signing"]
            assert admin.post(f"/v1/departments/{province.gulou.id}/keys").status_code in (200, 201)
            admin.post(
                f"/v1/departments/{province.gulou.id}/keys/{old['kid']}/revoke",
                json={"effective_at": "2025-01-01T00:00:00Z", "reason": "key leaked"},
                expect=200,
            )
            current = province.city.document["signing"]
            response = province.anonymous.get("/v1/trust/crl", expect=200)
            assert response.headers["content-type"] == "application/pkix-crl"
            (tmp_path / "crl.der").write_bytes(response.content)
            (tmp_path / "root.pem").write_text(province.anonymous.get("/v1/trust/root", expect=200).text)
            (tmp_path / "revoked.pem").write_text(old["certificate_pem"])
            (tmp_path / "valid.pem").write_text(current["certificate_pem"])
    finally:
        services.close()
    os.chdir(tmp_path)
    converted = _openssl("crl", "-inform", "DER", "-in", "crl.der", "-out", "crl.pem")
    assert converted.returncode == 0, converted.stderr
    listing = _openssl("crl", "-in", "crl.pem", "-noout", "-text")
    assert "Revocation Date: Jan  1 00:00:00 2025 GMT" in listing.stdout, listing.stdout
    valid = _openssl("verify", "-crl_check", "-CAfile", "root.pem", "-CRLfile", "crl.pem", "-purpose", "any", "valid.pem")
    assert valid.returncode == 0 and "valid.pem: OK" in valid.stdout, valid.stdout + valid.stderr
    revoked = _openssl("verify", "-crl_check", "-CAfile", "root.pem", "-CRLfile", "crl.pem", "-purpose", "any", "revoked.pem")
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    text = _openssl("x509", "-in", "valid.pem", "-noout", "-text").stdout
    assert "URI:https://nocert.example.gov.cn/v1/trust/crl" in text


@pytest.mark.parametrize("setting", ["nonsense", "audit.example/w+00000000+AAAA=http://x", "{vkey}=ftp://witness.example", "{vkey}=http://witness.example"])
def test_a_wrong_witness_setting_is_refused_in_one_line(tmp_path: Path, setting: str) -> None:
    from api.settings import ConfigurationError

    log_vkey = NoteSigner.from_signer(ORIGIN, KeyStore(tmp_path / "keys").ledger_signer()).vkey  # a note key, not 0x04
    with pytest.raises(ConfigurationError, match="^NOCERT_WITNESSES: ") as refused:
        build(settings_for(f"sqlite:///{tmp_path}/nocert.db", tmp_path / "keys", witnesses=setting.format(vkey=log_vkey)))
    assert "\n" not in str(refused.value)
    assert not (tmp_path / "nocert.db").exists()  # refused before the store is opened
