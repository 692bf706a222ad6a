"""API.md §6 and §7 through HTTP: exemption coverage, and the audit ledger checked independently
(leaf bytes, RFC 9162 tree hashes, inclusion and consistency proofs, signed checkpoints)."""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import uuid
from typing import Any

import pytest
import rfc8785
from cryptography import x509

from domain.timefmt import parse_time
from tests.api.conftest import APPLICANT_CITY, Province

ROW = {
    "raised", "open", "overdue_open", "replied_confirmed", "replied_not_confirmed", "declined", "withdrawn",
    "closed_exempted", "closed_commitment", "closed_applicant_submitted", "exemption_rate",
    "median_answer_seconds", "on_time_rate",
}


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


def coverage(p: Province, **params: Any) -> dict[str, Any]:
    document = p.as_("auditor").get("/v1/coverage", params={"min_position": p.position(), **params}, expect=200).json()
    assert set(document) == {"as_of_position", "categories_total", "categories_online", "totals", "categories"}
    assert set(document["totals"]) == ROW
    for row in document["categories"]:
        assert set(row) == ROW | {"code", "name"}
    return document


# -- §6 coverage ---------------------------------------------------------------------------------


def test_coverage_of_one_category(p: Province) -> None:
    code = f"cov-{uuid.uuid4().hex[:6]}"
    p.category(code, name="覆盖率测试")
    exempted = p.act(p.replied_check(category=code)["id"], "close", "approver", {"outcome": "exempted"})
    not_confirmed = p.act(p.raise_check(category=code)["id"], "reply", "gulou", {"conclusion": "not_confirmed"})
    p.act(not_confirmed["id"], "close", "approver", {"outcome": "applicant_submitted"})
    declined = p.act(p.raise_check(category=code)["id"], "decline", "gulou")
    p.act(p.raise_check(category=code)["id"], "withdraw", "approver")
    p.act(p.raise_check(category=code)["id"], "close", "approver", {"outcome": "commitment"})
    p.raise_check(category=code)
    answered = [exempted, not_confirmed, declined]
    median = statistics.median(
        (parse_time(c["replied_at"]) - parse_time(c["raised_at"])).total_seconds() for c in answered
    )

    document = coverage(p, category=code)
    assert [row["code"] for row in document["categories"]] == [code]
    row = document["categories"][0]
    assert row["name"] == "覆盖率测试"
    expected = {
        "raised": 6, "open": 2, "overdue_open": 0, "replied_confirmed": 1, "replied_not_confirmed": 1, "declined": 1,
        "withdrawn": 1, "closed_exempted": 1, "closed_commitment": 1, "closed_applicant_submitted": 1,
        "exemption_rate": pytest.approx(2 / 3), "median_answer_seconds": pytest.approx(median, abs=1e-3),
        "on_time_rate": 1.0,
    }
    assert {k: v for k, v in row.items() if k not in ("code", "name")} == expected
    assert document["totals"] == expected
    assert document["as_of_position"] >= p.position() - 0
    # ?category= does not change the catalogue's counts.
    everything = coverage(p)
    assert (document["categories_total"], document["categories_online"]) == (
        everything["categories_total"], everything["categories_online"]
    )
    listed = p.admin.get("/v1/categories", params={"limit": 500}).json()["items"]
    active = [c for c in listed if c["status"] == "active"]
    assert everything["categories_total"] == len(active)
    assert everything["categories_online"] == sum("collaboration" in c["modes"] for c in active)


def test_every_category_appears_with_zeros(p: Province) -> None:
    code = f"empty-{uuid.uuid4().hex[:6]}"
    p.category(code, modes=["commitment"])
    rows = {row["code"]: row for row in coverage(p)["categories"]}
    assert rows[code] == {
        "code": code, "name": f"证明 {code}", "raised": 0, "open": 0, "overdue_open": 0, "replied_confirmed": 0,
        "replied_not_confirmed": 0, "declined": 0, "withdrawn": 0, "closed_exempted": 0, "closed_commitment": 0,
        "closed_applicant_submitted": 0, "exemption_rate": None, "median_answer_seconds": None, "on_time_rate": None,
    }
    before = coverage(p)
    p.admin.patch(f"/v1/categories/{code}", json={"modes": ["collaboration"]}, expect=200)
    after = coverage(p)
    assert after["categories_online"] == before["categories_online"] + 1
    assert after["categories_total"] == before["categories_total"]
    p.admin.patch(f"/v1/categories/{code}", json={"status": "retired"}, expect=200)
    retired = coverage(p)
    assert retired["categories_total"] == before["categories_total"] - 1
    assert code in {row["code"] for row in retired["categories"]}


def test_coverage_by_the_approvers_region(p: Province) -> None:
    code = f"region-{uuid.uuid4().hex[:6]}"
    p.category(code)
    for _ in range(2):
        p.raise_check(category=code)  # fz-estate, region 350102
    p.raise_check(by="stranger", category=code, applicant={"name": "陈某", "id_number": APPLICANT_CITY})  # 350200
    raised = {region: coverage(p, category=code, region=region)["totals"]["raised"] for region in ("350102", "350200", "350100", "350000", "110000")}
    assert raised == {"350102": 2, "350200": 1, "350100": 2, "350000": 3, "110000": 0}


@pytest.mark.parametrize("params", [{"region": "35"}, {"region": "35010a"}, {"region": "3501020"}, {"category": "no-such"}])
def test_coverage_refuses_unknown_filters(p: Province, params: dict) -> None:
    assert p.as_("approver").get("/v1/coverage", params=params, expect=422).json()["code"] == "validation_error"


# -- §7 the audit ledger -------------------------------------------------------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def tree_hash(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH over leaf hashes."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node(tree_hash(leaves[:k]), tree_hash(leaves[k:]))


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def ledger(p: Province) -> list[dict[str, Any]]:
    position = p.position()
    items: list[dict[str, Any]] = []
    after = 0
    while True:
        page = p.as_("auditor").get("/v1/audit/events", params={"after": after, "limit": 1000, "min_position": position}, expect=200).json()
        items += page["items"]
        if page["next_after"] is None:
            return items
        after = page["next_after"]


def test_every_event_is_a_leaf_in_log_order(p: Province) -> None:
    p.replied_check()
    items = ledger(p)
    assert [item["index"] for item in items] == list(range(len(items)))
    assert [item["position"] for item in items] == sorted(item["position"] for item in items)
    assert len(items) >= p.position() - 1 and items[-1]["position"] >= p.position() - 1
    for item in items:
        assert set(item) == {"index", "position", "stream_id", "version", "type", "at", "state_b64", "state_sha256", "leaf_hash"}
        state = base64.b64decode(item["state_b64"])
        assert hashlib.sha256(state).hexdigest() == item["state_sha256"]
        leaf = rfc8785.dumps({k: item[k] for k in ("position", "stream_id", "version", "type", "state_sha256")})
        assert sha256(b"\x00" + leaf).hex() == item["leaf_hash"]
        assert not item["type"].startswith(("domain.", "api.", "projections."))  # pinned topics, no module paths
        uuid.UUID(item["stream_id"])
        assert item["at"].endswith("Z")
    assert {"nocert:check:Raised", "nocert:check:Replied"} <= {item["type"] for item in items}


def test_event_pages(p: Province) -> None:
    position = p.position()
    first = p.as_("auditor").get("/v1/audit/events", params={"limit": 3, "min_position": position}, expect=200).json()
    assert [item["index"] for item in first["items"]] == [0, 1, 2]
    assert first["next_after"] == first["items"][-1]["position"]
    second = p.as_("auditor").get("/v1/audit/events", params={"after": first["next_after"], "limit": 2}).json()
    assert [item["index"] for item in second["items"]] == [3, 4]
    last = p.as_("auditor").get("/v1/audit/events", params={"after": 10**12}).json()
    assert last == {"items": [], "next_after": None}
    for params in ({"limit": 0}, {"limit": 1001}, {"after": -1}, {"after": "x"}):
        assert p.as_("auditor").get("/v1/audit/events", params=params, expect=422).json()["code"] == "validation_error"


def test_checkpoints_are_signed_tree_heads(p: Province) -> None:
    items = ledger(p)
    leaves = [bytes.fromhex(item["leaf_hash"]) for item in items]
    latest = p.as_("auditor").get("/v1/audit/checkpoints/latest", expect=200).json()
    assert set(latest) == {"tree_size", "root_hash", "issued_at", "jws"}
    size = latest["tree_size"]
    assert 5 <= size <= len(leaves)
    assert latest["root_hash"] == tree_hash(leaves[:size]).hex()
    header_b64, payload_b64, signature_b64 = latest["jws"].split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    assert header["alg"] == "EdDSA" and header["typ"] == "nocert-checkpoint+jws"
    assert payload == {"tree_size": size, "root_hash": latest["root_hash"], "issued_at": latest["issued_at"]}
    certificate = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert hashlib.sha256(base64.b64decode(header["x5c"][0])).hexdigest() == header["kid"]
    root = x509.load_pem_x509_certificate(p.client.get("/v1/trust/root").content)
    certificate.verify_directly_issued_by(root)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "urn:nocert:ledger" in san.get_values_for_type(x509.UniformResourceIdentifier)
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    certificate.public_key().verify(signature, f"{header_b64}.{payload_b64}".encode())  # type: ignore[union-attr]
    # The same checkpoint by its size; a size nothing was signed at is 404.
    assert p.as_("auditor").get("/v1/audit/checkpoints", params={"tree_size": size}, expect=200).json() == latest
    assert p.as_("auditor").get("/v1/audit/checkpoints", params={"tree_size": 10**9}, expect=404).json()["code"] == "not_found"
    for params in ({}, {"tree_size": "x"}, {"tree_size": -1}):
        p.as_("auditor").get("/v1/audit/checkpoints", params=params, expect=422)


def test_inclusion_and_consistency_proofs(p: Province) -> None:
    items = ledger(p)
    leaves = [bytes.fromhex(item["leaf_hash"]) for item in items]
    n = len(leaves)
    sizes = sorted({1, 2, 3, 5, 7, 8, n // 2, n - 1, n} - {0})
    for size in sizes:
        root = tree_hash(leaves[:size])
        for index in sorted({0, size // 2, size - 1}):
            proof = p.as_("auditor").get("/v1/audit/proofs/inclusion", params={"index": index, "tree_size": size}, expect=200).json()
            assert proof["index"] == index and proof["tree_size"] == size
            assert proof["leaf_hash"] == items[index]["leaf_hash"]
            path = [bytes.fromhex(h) for h in proof["path"]]
            assert verify_inclusion(index, size, leaves[index], path, root), (index, size)
    for first in sizes:
        for second in sizes:
            if first > second:
                continue
            proof = p.as_("auditor").get("/v1/audit/proofs/consistency", params={"first": first, "second": second}, expect=200).json()
            assert (proof["first"], proof["second"]) == (first, second)
            path = [bytes.fromhex(h) for h in proof["path"]]
            assert verify_consistency(first, second, tree_hash(leaves[:first]), tree_hash(leaves[:second]), path), (first, second)


def test_proofs_out_of_range_are_422(p: Province) -> None:
    size = len(ledger(p))
    cases = [
        ("inclusion", {"index": 0, "tree_size": 0}),
        ("inclusion", {"index": 3, "tree_size": 3}),
        ("inclusion", {"index": 0, "tree_size": size + 1000}),
        ("inclusion", {"index": -1, "tree_size": 3}),
        ("consistency", {"first": 0, "second": 3}),
        ("consistency", {"first": 4, "second": 3}),
        ("consistency", {"first": 1, "second": size + 1000}),
        ("consistency", {"first": 1}),
    ]
    for kind, params in cases:
        problem = p.as_("auditor").get(f"/v1/audit/proofs/{kind}", params=params, expect=422).json()
        assert problem["code"] == "validation_error", (kind, params)
