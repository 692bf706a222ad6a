"""Retired seal keys (issue #11.8): at a rotation the previous key's private file leaves
``NOCERT_KEY_DIR`` (moved to ``NOCERT_KEY_ESCROW_DIR`` when set, deleted otherwise), so the service can
seal nothing more with it; its certificate stays and its proofs still verify. ``recorded`` tells a proof
the platform sealed from one signed with the key outside the platform. Before the fix the key file stayed
in the key directory (and ``recorded`` did not exist), on both stores."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import pytest

from api.bootstrap import build
from api.settings import ConfigurationError
from signing.keystore import SealNotFound
from signing.proofs import seal_proof
from tests.api.conftest import Province, new_uscc, settings_for
from tests.api.test_verify_rules import b64, unb64


def test_a_rotated_out_key_leaves_the_key_dir_and_signs_nothing(shared_province: Province, tmp_path: Path) -> None:
    p = shared_province
    name = f"rk-{uuid.uuid4().hex[:4]}"
    issuer = p.department(name, roles=["issuer"], kind="police", region="350122")
    old_kid = issuer.kid
    assert old_kid is not None
    keystore = p.services.keystore
    key_dir = keystore._dir
    outside_signer = keystore.seal_signer(old_kid)  # what a copy of the key file taken before would sign
    proof = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)["proof"]

    new_kid = p.admin.post(f"/v1/departments/{issuer.id}/keys", json={}, expect=201).json()["kid"]
    assert not (key_dir / f"{old_kid}.key").exists()
    assert (key_dir / f"{old_kid}.pem").exists() and (key_dir / f"{new_kid}.key").exists()
    with pytest.raises(SealNotFound):
        keystore.seal_signer(old_kid)

    # The proof it sealed still verifies, and the platform recorded it.
    verdict = p.as_("approver").post("/v1/proofs/verify", json={"jws": proof["jws"]}, expect=200).json()
    assert verdict["valid"] is True and verdict["recorded"] is True
    # A brand-new proof signed with the key outside the platform: the signature holds, recorded is false.
    payload = unb64(proof["jws"].split(".")[1]) | {"id": str(uuid.uuid4()), "statements": {"forged": True}}
    forged = seal_proof(outside_signer, payload)
    verdict = p.as_("stranger").post("/v1/proofs/verify", json={"jws": forged}, expect=200).json()
    assert verdict["recorded"] is False
    # The same recorded proof with a byte changed is not recorded either.
    header, body, signature = proof["jws"].split(".")
    assert p.as_("approver").post("/v1/proofs/verify", json={"jws": f"{header}.{b64(b'{}')}.{signature}"}).json()["recorded"] is False
    # Replies use the new key.
    assert p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)["proof"]["kid"] == new_kid


def test_with_an_escrow_dir_the_retired_key_moves_there(durable_database_url: str, tmp_path: Path) -> None:
    key_dir, escrow = tmp_path / "keys", tmp_path / "escrow"
    services = build(settings_for(durable_database_url, key_dir, key_escrow_dir=escrow))
    try:
        department, _, _ = services.platform.register_department(
            "esc-police", "托管测试派出所", new_uscc(), ["issuer"], "police", "350123"
        )
        old_kid = department.current_kid
        services.platform.rotate_seal("esc-police")
        assert not (key_dir / f"{old_kid}.key").exists()
        escrowed = escrow / f"{old_kid}.key"
        assert escrowed.exists() and stat.S_IMODE(escrowed.stat().st_mode) == 0o600
        assert b"PRIVATE KEY" in escrowed.read_bytes()
    finally:
        services.close()


def test_an_escrow_dir_inside_the_key_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NOCERT_KEY_ESCROW_DIR"):
        build(settings_for(f"sqlite:///{tmp_path}/n.db", tmp_path / "keys", key_escrow_dir=tmp_path / "keys" / "old"))
