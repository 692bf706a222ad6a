"""A key revocation moved earlier (issue #11.7): revoking with ``effective_at`` = now + 1 h and then, a
leak found out later, with now - 1 h records a second ``SealRevoked`` and takes effect from the earlier
time: a proof sealed in between stops verifying (``key_revoked``). A revocation later than the one in
force changes nothing. Before the fix the second revocation answered 409 and the proof stayed valid."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.department import Department
from domain.timefmt import format_time
from tests.api.conftest import Province


def test_a_revocation_moved_earlier_takes_effect_and_a_later_one_changes_nothing(shared_province: Province) -> None:
    p = shared_province
    name = f"mv-{uuid.uuid4().hex[:4]}"
    issuer = p.department(name, roles=["issuer"], kind="police", region="350121")
    now = datetime.now(UTC).replace(microsecond=0)
    path = f"/v1/departments/{issuer.id}/keys/{issuer.kid}/revoke"
    p.admin.post(path, json={"reason": "计划停用", "effective_at": format_time(now + timedelta(hours=1))}, expect=200)
    replied = p.act(p.raise_check(issuer=issuer.id)["id"], "reply", name)
    jws = replied["proof"]["jws"]
    assert p.as_("approver").post("/v1/proofs/verify", json={"jws": jws}, expect=200).json()["valid"] is True

    earlier = format_time(now - timedelta(hours=1))
    moved = p.admin.post(path, json={"reason": "密钥泄露", "effective_at": earlier}, expect=200)
    assert moved.json()["revoked_at"] == earlier and moved.json()["status"] == "revoked"
    stream = p.services.log.stream_positions(Department.stream_id(issuer.id))
    assert int(moved.headers["X-Event-Position"]) == max(stream.values())
    events = p.services.platform.repository.get(Department.stream_id(issuer.id)).version
    verdict = p.as_("approver").post("/v1/proofs/verify", json={"jws": jws}, expect=200).json()
    assert verdict["valid"] is False and "key_revoked" in verdict["reasons"]

    later = p.admin.post(path, json={"reason": "再次", "effective_at": format_time(now + timedelta(days=1))}, expect=200)
    assert later.json()["revoked_at"] == earlier
    assert int(later.headers["X-Event-Position"]) == int(moved.headers["X-Event-Position"])
    assert p.services.platform.repository.get(Department.stream_id(issuer.id)).version == events
    listed = next(d for d in p.admin.get("/v1/departments", params={"limit": 500}).json()["items"] if d["id"] == issuer.id)
    assert listed["certificates"][0]["revoked_at"] == earlier
