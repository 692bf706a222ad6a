"""Key history over time (issue 4): rotate, seal, rotate again, revoke the middle key with an effective
time between two proofs → exactly the later proof fails with ``key_revoked``. And after the whole
scenario no private key is anywhere in the event store."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from domain.timefmt import format_time, parse_time
from tests.api.conftest import Province


def _payload_issued_at(jws: str) -> datetime:
    import json

    payload = jws.split(".")[1]
    return parse_time(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["issued_at"])


def _verify(province: Province, jws: str) -> dict:
    return province.as_("auditor").post("/v1/proofs/verify", json={"jws": jws}, expect=200).json()


def test_revoking_the_middle_key_between_two_proofs_fails_exactly_the_later_one(province: Province) -> None:
    first_kid = province.gulou.kid
    middle_kid = province.admin.post("/v1/departments/fz-gulou-police/keys", json={}, expect=201).json()["kid"]
    assert middle_kid != first_kid

    earlier = province.replied_check()["proof"]
    later = province.replied_check()["proof"]
    assert earlier["kid"] == later["kid"] == middle_kid
    proofs = {p["id"]: province.as_("approver").get(f"/v1/proofs/{p['id']}").json()["jws"] for p in (earlier, later)}
    earlier_jws, later_jws = proofs[earlier["id"]], proofs[later["id"]]
    issued_earlier, issued_later = _payload_issued_at(earlier_jws), _payload_issued_at(later_jws)
    assert issued_earlier < issued_later

    newest_kid = province.admin.post("/v1/departments/fz-gulou-police/keys", json={}, expect=201).json()["kid"]
    newest = province.replied_check()["proof"]
    assert newest["kid"] == newest_kid

    between = issued_earlier + (issued_later - issued_earlier) / 2
    revoked = province.admin.post(
        f"/v1/departments/fz-gulou-police/keys/{middle_kid}/revoke",
        json={"reason": "key compromised", "effective_at": format_time(between)},
        expect=200,
    ).json()
    assert revoked["status"] == "revoked" and parse_time(revoked["revoked_at"]) == between

    earlier_verdict = _verify(province, earlier_jws)
    assert earlier_verdict["valid"] is True and earlier_verdict["reasons"] == []
    later_verdict = _verify(province, later_jws)
    assert later_verdict["valid"] is False and later_verdict["reasons"] == ["key_revoked"]
    newest_jws = province.as_("approver").get(f"/v1/proofs/{newest['id']}").json()["jws"]
    assert _verify(province, newest_jws)["valid"] is True

    certificates = {
        c["kid"]: c["status"]
        for d in province.as_("auditor").get("/v1/departments?limit=500").json()["items"]
        if d["id"] == "fz-gulou-police"
        for c in d["certificates"]
    }
    assert certificates == {first_kid: "retired", middle_kid: "revoked", newest_kid: "active"}


def test_a_future_revocation_leaves_the_key_usable_until_then(province: Province) -> None:
    kid = province.gulou.kid
    when = datetime.now().astimezone() + timedelta(days=1)
    province.admin.post(
        f"/v1/departments/fz-gulou-police/keys/{kid}/revoke",
        json={"reason": "planned retirement", "effective_at": format_time(when)},
        expect=200,
    )
    proof = province.replied_check()["proof"]
    jws = province.as_("approver").get(f"/v1/proofs/{proof['id']}").json()["jws"]
    assert _verify(province, jws)["valid"] is True


def test_no_private_key_in_the_event_store(province: Province, tmp_path: Path) -> None:
    province.admin.post("/v1/departments/fz-gulou-police/keys", json={}, expect=201)
    check = province.replied_check()
    province.act(check["id"], "close", "approver", {"outcome": "exempted"})

    key_dir = Path(province.services.settings.key_dir)
    needles: list[bytes] = [b"PRIVATE KEY"]
    for key_file in key_dir.glob("*.key"):
        if not key_file.read_bytes().startswith(b"-----"):
            continue  # the subject keys' secrets (subject-index.key, subject-wrap.key): not private keys
        key = serialization.load_pem_private_key(key_file.read_bytes(), None)
        raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        needles += [raw, raw.hex().encode(), base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]
    assert len(needles) > 4 * 4  # root, ledger and several seals were found and searched for

    stored = b"".join(
        n.topic.encode() + bytes(n.state) for n in province.services.log.read(0, 1_000_000)
    )
    assert stored, "the store holds events"
    assert [needle for needle in needles if needle in stored] == []

