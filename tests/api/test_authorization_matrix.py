"""Every endpoint × every kind of caller × own/other object, against the table of what API.md allows.

Callers:
- ``admin``: the platform operator;
- ``approver``: the approver of the own check (fz-estate);
- ``issuer``: the own check's current issuer (fz-police), which sealed the own proof;
- ``former``: the own check's former issuer (fz-gulou-police), which forwarded it;
- ``auditor``: a department with the auditor role;
- ``unrelated``: an approver that is party to nothing here (xm-estate);
- ``nokey``: no Authorization header; ``revoked``: a department's deleted API key.

Objects: ``own`` is the check (or proof) above; ``other`` was raised by another approver and answered by
another issuer (fz-civil-affairs), so that none of the callers is its party. For admin endpoints ``own``
is an existing department, key or category and ``other`` one that does not exist.

An expected 2xx cell gets a fresh object (the command changes it); refusals share one, since a refused
call changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from domain.identifiers import make_id_number
from tests.api.conftest import Caller, Member, Province, new_uscc
from tests.bodies import APPLICANT

NOBODY = make_id_number("35010219600606222")  # no check has this applicant

ROLES = ("admin", "approver", "issuer", "former", "auditor", "unrelated", "nokey", "revoked")
A, R = 401, 401  # columns nokey and revoked, named for readability below


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {placeholders} filled from the object
    obj: str | None = None  # the kind of object in the path
    body: Callable[[], Any] | None = None
    params: Callable[[World], dict[str, Any]] | None = None


def _department_body() -> dict[str, Any]:
    return {
        "id": f"m-{uuid.uuid4().hex[:10]}",
        "name": "矩阵测试部门",
        "uscc": new_uscc(),
        "roles": ["approver"],
        "kind": "test",
        "region": "350111",
    }


def _category_body() -> dict[str, Any]:
    return {"code": f"m-{uuid.uuid4().hex[:10]}", "name": "矩阵证明", "issuer_kind": "police", "modes": ["collaboration"], "sla_hours": 24}


def _empty() -> dict[str, Any]:
    return {}


def _const(value: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: dict(value)


E = Endpoint
WEBHOOK_URL = "https://8.8.8.8/nocert-hook"  # a public address: no name to resolve
# name -> (endpoint, {object: expected statuses in ROLES order})
TABLE: dict[str, tuple[Endpoint, dict[str | None, tuple[int, ...]]]] = {
    # §3 departments and keys ------------------------------------------ admin appr iss  form aud  unrel nokey revoked
    "create department": (E("POST", "/v1/departments", body=_department_body),
                          {None: (201, 403, 403, 403, 403, 403, A, R)}),
    "list departments": (E("GET", "/v1/departments"),
                         {None: (200, 200, 200, 200, 200, 200, A, R)}),
    "patch department": (E("PATCH", "/v1/departments/{dept}", "dept", _const({"name": "矩阵测试部门（改名）"})),
                         {"own": (200, 403, 403, 403, 403, 403, A, R),
                          "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "issue api key": (E("POST", "/v1/departments/{dept}/api-keys", "dept", _empty),
                      {"own": (201, 403, 403, 403, 403, 403, A, R),
                       "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "delete api key": (E("DELETE", "/v1/departments/{dept}/api-keys/{key_id}", "api_key"),
                       {"own": (204, 403, 403, 403, 403, 403, A, R),
                        "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "rotate seal": (E("POST", "/v1/departments/{dept}/keys", "dept", _empty),
                    {"own": (201, 403, 403, 403, 403, 403, A, R),
                     "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "revoke seal": (E("POST", "/v1/departments/{dept}/keys/{kid}/revoke", "kid", _const({"reason": "矩阵"})),
                    {"own": (200, 403, 403, 403, 403, 403, A, R),
                     "other": (404, 403, 403, 403, 403, 403, A, R)}),
    # §12 officers
    "add officer": (E("POST", "/v1/departments/{dept}/officers", "dept", lambda: {"login": f"o.{uuid.uuid4().hex[:8]}", "name": "矩阵警员"}),
                    {"own": (201, 403, 403, 403, 403, 403, A, R),
                     "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "list officers": (E("GET", "/v1/departments/{dept}/officers", "dept"),
                      {"own": (200, 403, 403, 403, 403, 403, A, R),
                       "other": (404, 403, 403, 403, 403, 403, A, R)}),
    "remove officer": (E("DELETE", "/v1/departments/{dept}/officers/{login}", "officer"),
                       {"own": (204, 403, 403, 403, 403, 403, A, R),
                        "other": (404, 403, 403, 403, 403, 403, A, R)}),
    # §3 categories
    "create category": (E("POST", "/v1/categories", body=_category_body),
                        {None: (201, 403, 403, 403, 403, 403, A, R)}),
    "list categories": (E("GET", "/v1/categories"),
                        {None: (200, 200, 200, 200, 200, 200, A, R)}),
    "patch category": (E("PATCH", "/v1/categories/{code}", "category", _const({"name": "改名"})),
                       {"own": (200, 403, 403, 403, 403, 403, A, R),
                        "other": (404, 403, 403, 403, 403, 403, A, R)}),
    # §4 checks -------------------------------------------------------- admin appr iss  form aud  unrel nokey revoked
    "raise check": (E("POST", "/v1/checks", body=lambda: Province.check_body()),
                    {None: (403, 201, 403, 403, 403, 201, A, R)}),
    "list checks": (E("GET", "/v1/checks"),
                    {None: (403, 200, 200, 200, 200, 200, A, R)}),
    "inbox": (E("GET", "/v1/inbox"),
              {None: (403, 403, 200, 200, 403, 403, A, R)}),
    "read check": (E("GET", "/v1/checks/{check}", "check:raised"),
                   {"own": (403, 200, 200, 200, 200, 404, A, R),
                    "other": (403, 404, 404, 404, 200, 404, A, R)}),
    "read check version": (E("GET", "/v1/checks/{check}", "check:raised", params=lambda w: {"version": 1}),
                           {"own": (403, 200, 200, 200, 200, 404, A, R),
                            "other": (403, 404, 404, 404, 200, 404, A, R)}),
    "check history": (E("GET", "/v1/checks/{check}/history", "check:raised"),
                      {"own": (403, 200, 200, 200, 200, 404, A, R),
                       "other": (403, 404, 404, 404, 200, 404, A, R)}),
    "accept": (E("POST", "/v1/checks/{check}/accept", "check:raised", _empty),
               {"own": (403, 403, 200, 403, 403, 403, A, R),
                "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "request info": (E("POST", "/v1/checks/{check}/request-info", "check:accepted", _const({"question": "?"})),
                     {"own": (403, 403, 200, 403, 403, 403, A, R),
                      "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "supply info": (E("POST", "/v1/checks/{check}/supply-info", "check:info_requested", _const({"answer": "!"})),
                    {"own": (403, 200, 403, 403, 403, 404, A, R),
                     "other": (403, 404, 403, 403, 403, 404, A, R)}),
    "forward": (E("POST", "/v1/checks/{check}/forward", "check:raised", _const({"to": "fz-gulou-police", "reason": "退回"})),
                {"own": (403, 403, 200, 403, 403, 403, A, R),
                 "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "reply": (E("POST", "/v1/checks/{check}/reply", "check:raised", _const({"conclusion": "confirmed"})),
              {"own": (403, 403, 200, 403, 403, 403, A, R),
               "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "decline": (E("POST", "/v1/checks/{check}/decline", "check:raised", _const({"reason_code": "other"})),
                {"own": (403, 403, 200, 403, 403, 403, A, R),
                 "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "withdraw": (E("POST", "/v1/checks/{check}/withdraw", "check:raised", _const({"reason": "x"})),
                 {"own": (403, 200, 403, 403, 403, 404, A, R),
                  "other": (403, 404, 403, 403, 403, 404, A, R)}),
    "close": (E("POST", "/v1/checks/{check}/close", "check:raised", _const({"outcome": "applicant_submitted"})),
              {"own": (403, 200, 403, 403, 403, 404, A, R),
               "other": (403, 404, 403, 403, 403, 404, A, R)}),
    "urge": (E("POST", "/v1/checks/{check}/urge", "check:raised", _const({"note": "督办"})),
             {"own": (403, 200, 403, 403, 403, 404, A, R),
              "other": (403, 404, 403, 403, 403, 404, A, R)}),
    # §11 feed and subscriptions (a department principal, for itself) - admin appr iss  form aud  unrel nokey revoked
    "feed": (E("GET", "/v1/feed"), {None: (403, 200, 200, 200, 200, 200, A, R)}),
    "subscribe": (E("POST", "/v1/subscriptions", body=_const({"url": WEBHOOK_URL})),
                  {None: (403, 201, 201, 201, 201, 201, A, R)}),
    "list subscriptions": (E("GET", "/v1/subscriptions"), {None: (403, 200, 200, 200, 200, 200, A, R)}),
    "read subscription": (E("GET", "/v1/subscriptions/{subscription}", "subscription"),
                          {"own": (403, 200, 404, 404, 404, 404, A, R),
                           "other": (403, 404, 404, 404, 404, 404, A, R)}),
    "delete subscription": (E("DELETE", "/v1/subscriptions/{subscription}", "subscription"),
                            {"own": (403, 204, 404, 404, 404, 404, A, R),
                             "other": (403, 404, 404, 404, 404, 404, A, R)}),
    "resume subscription": (E("POST", "/v1/subscriptions/{subscription}/resume", "subscription", _empty),
                            {"own": (403, 200, 404, 404, 404, 404, A, R),
                             "other": (403, 404, 404, 404, 404, 404, A, R)}),
    "deliveries": (E("GET", "/v1/subscriptions/{subscription}/deliveries", "subscription"),
                   {"own": (403, 200, 404, 404, 404, 404, A, R),
                    "other": (403, 404, 404, 404, 404, 404, A, R)}),
    "webhook key": (E("GET", "/v1/trust/webhook-key"), {None: (200,) * 8}),
    # §5 proofs and trust ---------------------------------------------- admin appr iss  form aud  unrel nokey revoked
    "read proof": (E("GET", "/v1/proofs/{proof}", "proof"),
                   {"own": (404, 200, 200, 404, 200, 404, A, R),
                    "other": (404, 404, 404, 404, 200, 404, A, R)}),
    "revoke proof": (E("POST", "/v1/proofs/{proof}/revoke", "proof", _const({"reason": "撤销"})),
                     {"own": (403, 403, 200, 404, 403, 403, A, R),
                      "other": (403, 403, 404, 404, 403, 403, A, R)}),
    "verify proof": (E("POST", "/v1/proofs/verify", body=_const({"jws": "a.b.c"})),
                     {None: (200, 200, 200, 200, 200, 200, A, R)}),
    "trust root": (E("GET", "/v1/trust/root"),
                   {None: (200, 200, 200, 200, 200, 200, 200, 200)}),
    "trust crl": (E("GET", "/v1/trust/crl"),
                  {None: (200, 200, 200, 200, 200, 200, 200, 200)}),
    # §15 transparency log
    "log checkpoint": (E("GET", "/v1/log/checkpoint"),
                       {None: (200, 200, 200, 200, 200, 200, 200, 200)}),
    "log vkey": (E("GET", "/v1/log/vkey"),
                 {None: (200, 200, 200, 200, 200, 200, 200, 200)}),
    # §6 coverage
    "coverage": (E("GET", "/v1/coverage"),
                 {None: (200, 200, 200, 200, 200, 200, A, R)}),
    # §7 audit
    "audit events": (E("GET", "/v1/audit/events", params=lambda w: {"min_position": w.setup_position}),
                     {None: (403, 403, 403, 403, 200, 403, A, R)}),
    "latest checkpoint": (E("GET", "/v1/audit/checkpoints/latest", params=lambda w: {"min_position": w.setup_position}),
                          {None: (403, 403, 403, 403, 200, 403, A, R)}),
    "checkpoint at size": (E("GET", "/v1/audit/checkpoints", params=lambda w: {"tree_size": w.checkpoint_size}),
                           {None: (403, 403, 403, 403, 200, 403, A, R)}),
    "inclusion proof": (E("GET", "/v1/audit/proofs/inclusion", params=lambda w: {"index": 0, "tree_size": 2, "min_position": w.setup_position}),
                        {None: (403, 403, 403, 403, 200, 403, A, R)}),
    "consistency proof": (E("GET", "/v1/audit/proofs/consistency", params=lambda w: {"first": 1, "second": 2, "min_position": w.setup_position}),
                          {None: (403, 403, 403, 403, 200, 403, A, R)}),
    # §14 subjects (the citizen_portal role: tests/api/test_subjects.py)
    "subject accesses": (E("POST", "/v1/subjects/accesses", body=_const({"id_number": APPLICANT})),
                         {None: (403, 403, 403, 403, 200, 403, A, R)}),
    "erase subject": (E("POST", "/v1/subjects/erase", body=_const({"id_number": NOBODY, "legal_basis": "矩阵"})),
                      {None: (404, 403, 403, 403, 403, 403, A, R)}),
    "list erasures": (E("GET", "/v1/subjects/erasures"),
                      {None: (200, 403, 403, 403, 200, 403, A, R)}),
    # §8 operations: no key needed, and a key changes nothing
    "healthz": (E("GET", "/healthz"), {None: (200,) * 8}),
    "readyz": (E("GET", "/readyz"), {None: (200,) * 8}),
    "metrics": (E("GET", "/metrics"), {None: (200,) * 8}),
    "openapi": (E("GET", "/openapi.json"), {None: (200,) * 8}),
    "docs": (E("GET", "/docs"), {None: (200,) * 8}),
}


class World:
    """The province of the matrix and the objects its cells act on."""

    def __init__(self, province: Province) -> None:
        self.p = province
        p = province
        kinship = "kinship"
        p.category(kinship, issuer_kind="civil-affairs", modes=["collaboration"], sla_hours=48)
        self.other_approver = p.department("other-approver", id="pt-estate", roles=["approver"], kind="real-estate", region="350300")
        self.keyring = p.department("keyring", id="m-keyring", roles=["issuer"], kind="registry", region="350111")
        revoked = p.department("revoked", id="m-revoked", roles=["approver", "issuer", "auditor"], kind="police", region="350111")
        p.admin.delete(f"/v1/departments/{revoked.id}/api-keys/{revoked.key_id}", expect=204)
        self.category_code = p.category(f"m-{uuid.uuid4().hex[:6]}")["code"]
        other = p.raise_check(by="other-approver", category=kinship, applicant={"name": "张某", "id_number": APPLICANT})
        self.other_check = other["id"]
        other_replied = p.raise_check(by="other-approver", category=kinship)
        self.other_proof = p.act(other_replied["id"], "reply", "civil")["proof"]["id"]
        self.shared: dict[str, dict[str, str]] = {}
        self.setup_position = p.settle()
        latest = p.as_("auditor").get("/v1/audit/checkpoints/latest", expect=200).json()
        self.checkpoint_size = latest["tree_size"]
        self.callers: dict[str, Caller] = {
            "admin": p.admin,
            "approver": p.as_("approver"),
            "issuer": p.as_("city"),
            "former": p.as_("gulou"),
            "auditor": p.as_("auditor"),
            "unrelated": p.as_("stranger"),
            "nokey": p.anonymous,
            # Failed authentications are limited per client address: each attempt from a new one.
            "revoked": p.roaming(revoked.key, "revoked"),
        }

    def own_check(self, state: str) -> str:
        """A check of the approver, forwarded by gulou to city, then brought to ``state`` by city."""
        p = self.p
        check = p.raise_check()
        p.act(check["id"], "forward", "gulou", {"to": "fz-police", "reason": "辖区"})
        steps = {"raised": [], "accepted": ["accept"], "info_requested": ["accept", "request-info"], "replied": ["reply"]}
        for action in steps[state]:
            p.act(check["id"], action, "city")
        return check["id"]

    def make(self, kind: str, which: str) -> dict[str, str]:
        """Substitutions for the path, for a fresh ``own`` object or the shared ``other`` one."""
        p = self.p
        if kind.startswith("check:"):
            return {"check": self.own_check(kind.split(":")[1]) if which == "own" else self.other_check}
        if kind == "proof":
            if which == "other":
                return {"proof": self.other_proof}
            check_id = self.own_check("replied")
            return {"proof": p.as_("approver").get(f"/v1/checks/{check_id}").json()["proof"]["id"]}
        if kind == "dept":
            return {"dept": self.keyring.id if which == "own" else "no-such-dept"}
        if kind == "api_key":
            if which == "other":
                return {"dept": self.keyring.id, "key_id": "0000000000000000"}
            issued = p.admin.post(f"/v1/departments/{self.keyring.id}/api-keys", json={}, expect=201).json()
            return {"dept": self.keyring.id, "key_id": issued["api_key_id"]}
        if kind == "kid":
            if which == "other":
                return {"dept": self.keyring.id, "kid": "f" * 64}
            rotated = p.admin.post(f"/v1/departments/{self.keyring.id}/keys", json={}, expect=201).json()
            return {"dept": self.keyring.id, "kid": rotated["kid"]}
        if kind == "subscription":
            who = "approver" if which == "own" else "other-approver"
            return {"subscription": p.as_(who).post("/v1/subscriptions", json={"url": WEBHOOK_URL}, expect=201).json()["id"]}
        if kind == "officer":
            if which == "other":
                return {"dept": self.keyring.id, "login": "no.such.officer"}
            login = f"o.{uuid.uuid4().hex[:8]}"
            p.admin.post(f"/v1/departments/{self.keyring.id}/officers", json={"login": login, "name": "警员"}, expect=201)
            return {"dept": self.keyring.id, "login": login}
        if kind == "category":
            return {"code": self.category_code if which == "own" else "no-such-category"}
        raise AssertionError(kind)

    def object_for(self, kind: str | None, which: str | None, expected: int) -> dict[str, str]:
        if kind is None or which is None:
            return {}
        if which == "own" and expected < 300:
            return self.make(kind, which)  # fresh: the call changes it
        key = f"{kind}/{which}"
        if key not in self.shared:
            self.shared[key] = self.make(kind, which)
        return self.shared[key]


@pytest.fixture(scope="module")
def world(shared_province: Province) -> World:
    return World(shared_province)


CELLS = [(name, which) for name, (_, columns) in TABLE.items() for which in columns]


@pytest.mark.parametrize(("name", "which"), CELLS, ids=[f"{n}-{w or 'none'}" for n, w in CELLS])
def test_authorization(world: World, name: str, which: str | None) -> None:
    endpoint, columns = TABLE[name]
    expected_row = columns[which]
    assert len(expected_row) == len(ROLES)
    mismatches = []
    for role, expected in zip(ROLES, expected_row, strict=True):
        substitutions = world.object_for(endpoint.obj, which, expected)
        path = endpoint.path.format(**substitutions)
        params = endpoint.params(world) if endpoint.params else None
        body = endpoint.body() if endpoint.body else None
        response = world.callers[role].request(endpoint.method, path, json=body, params=params)
        if response.status_code != expected:
            mismatches.append(f"{role}: expected {expected}, got {response.status_code} {response.text[:200]}")
        elif expected >= 400:
            codes = {401: "unauthenticated", 403: "forbidden", 404: "not_found"}
            assert response.json()["code"] == codes[expected], (role, response.text)
    assert not mismatches, f"{endpoint.method} {endpoint.path} ({which}):\n" + "\n".join(mismatches)


def test_the_table_covers_every_operation_of_the_app(world: World) -> None:
    """Every operation the app serves appears in the table (so a new endpoint needs a row)."""
    schema = world.p.client.get("/openapi.json").json()
    served = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    tabled = {(endpoint.method, endpoint.path) for endpoint, _ in TABLE.values()}
    normalise = {
        "{dept}": "{department_id}", "{key_id}": "{api_key_id}", "{check}": "{check_id}", "{proof}": "{proof_id}",
        "{subscription}": "{subscription_id}",
    }

    def canonical(path: str) -> str:
        for short, long in normalise.items():
            path = path.replace(short, long)
        return path

    tabled = {(method, canonical(path)) for method, path in tabled}
    missing = served - tabled
    assert not missing, missing


def test_a_revoked_member_key_is_401_everywhere(world: World) -> None:
    revoked: Member = world.p.members["revoked"]
    for path in ("/v1/checks", "/v1/departments", "/v1/audit/events", "/v1/inbox"):
        response = world.p.roaming(revoked.key).get(path)
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
