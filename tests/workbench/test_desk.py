"""The desk's pages over HTTP on both stores: each action through the API's rules, with the signed-in
officer recorded; masking as the API masks; CSRF; a removed officer's session ended."""

from __future__ import annotations

import re
from typing import Any

from api.workbench.sessions import Officer, Sessions
from tests.api.conftest import Province, masked
from tests.bodies import APPLICANT


class Browser:
    """Requests of one signed-in officer, with its session cookie and CSRF token."""

    def __init__(self, p: Province, department: str, login: str, name: str = "警员") -> None:
        p.admin.post(f"/v1/departments/{department}/officers", json={"login": login, "name": name}, expect=201)
        sessions: Sessions = p.app.state.workbench.sessions
        self.session = sessions.start(Officer(department, login))
        self.client = p.client
        self.cookies = {"nocert_session": self.session.id}

    def get(self, path: str, **kwargs: Any) -> Any:
        self.client.cookies.clear()
        return self.client.get(path, cookies=self.cookies, follow_redirects=False, **kwargs)

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> Any:
        self.client.cookies.clear()
        form = {**data, "csrf_token": self.session.csrf_token} if csrf else data
        return self.client.post(path, data=form, cookies=self.cookies, follow_redirects=False)


NEW_CHECK = {
    "category": "household-registration",
    "matter_code": "real-estate-deregistration",
    "matter_name": "不动产注销登记",
    "applicant_name": "林某某",
    "id_number": APPLICANT,
    "question": "是否为同一人",
    "purpose": "不动产注销登记身份一致性核验",
    "consent_method": "face",
    "consent_reference": "face-0001",
    "issuer": "",
}


def _raise(clerk: Browser) -> str:
    preview = clerk.post("/ui/checks/new", {**NEW_CHECK, "step": "preview"})
    assert preview.status_code == 200, preview.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', preview.text).group(1)
    sent = clerk.post("/ui/checks/new", {**NEW_CHECK, "step": "send", "idempotency_key": key})
    assert sent.status_code == 303, sent.text
    again = clerk.post("/ui/checks/new", {**NEW_CHECK, "step": "send", "idempotency_key": key})  # a second click
    assert again.headers["location"] == sent.headers["location"]
    return sent.headers["location"].split("/")[-1].split("?")[0]


def test_a_clerk_raises_an_officer_answers_and_the_clerk_closes_as_exempted(province: Province) -> None:
    p = province
    clerk = Browser(p, p.approver.id, "chen.min", "陈敏")
    officer = Browser(p, p.gulou.id, "wang.li", "王力")
    preview = clerk.post("/ui/checks/new", {**NEW_CHECK, "step": "preview"})
    assert "fz-gulou-police" in preview.text and "福州市公安局鼓楼分局" in preview.text  # routing shown first
    assert p.as_("approver").get("/v1/checks", params={"min_position": p.position()}).json()["items"] == []
    check_id = _raise(clerk)
    p.settle()
    inbox = officer.get("/ui/inbox")
    assert inbox.status_code == 200 and check_id in inbox.text and "剩余 23 小时" in inbox.text
    assert officer.post(f"/ui/checks/{check_id}/accept", {}).status_code == 303
    replied = officer.post(f"/ui/checks/{check_id}/reply", {"conclusion": "confirmed", "remark": "一致", "valid_days": "90"})
    assert replied.status_code == 303
    page = officer.get(f"/ui/checks/{check_id}")
    assert 'class="verdict valid"' in page.text and APPLICANT in page.text
    assert clerk.post(f"/ui/checks/{check_id}/close", {"outcome": "exempted"}).status_code == 303
    history = p.as_("auditor").get(f"/v1/checks/{check_id}/history").json()["events"]
    assert [(e["type"], e["officer"]) for e in history] == [
        ("Raised", "chen.min"), ("Accepted", "wang.li"), ("Replied", "wang.li"), ("Closed", "chen.min"),
    ]
    assert p.as_("approver").get(f"/v1/checks/{check_id}").json()["outcome"] == "exempted"
    proof = clerk.get(f"/ui/checks/{check_id}/proof.jws")
    assert proof.status_code == 200 and proof.text == p.as_("approver").get(f"/v1/checks/{check_id}").json()["proof"]["jws"]


def test_refusals_are_the_apis(province: Province) -> None:
    p = province
    clerk = Browser(p, p.approver.id, "chen.min")
    officer = Browser(p, p.gulou.id, "wang.li")
    stranger = Browser(p, p.stranger.id, "zhang.san")
    check = p.raise_check()
    assert stranger.get(f"/ui/checks/{check['id']}").status_code == 404
    assert stranger.post(f"/ui/checks/{check['id']}/close", {"outcome": "applicant_submitted"}).status_code == 404
    assert clerk.post(f"/ui/checks/{check['id']}/accept", {}).status_code == 403  # the issuer's command
    assert officer.post(f"/ui/checks/{check['id']}/request-info", {"question": "?"}).status_code == 409
    assert officer.post(f"/ui/checks/{check['id']}/reply", {"conclusion": "maybe"}).status_code == 422
    assert officer.post(f"/ui/checks/{check['id']}/accept", {}, csrf=False).status_code == 403
    assert p.as_("approver").get(f"/v1/checks/{check['id']}").json()["status"] == "raised"
    bad = clerk.post("/ui/checks/new", {**NEW_CHECK, "id_number": APPLICANT[:-1] + ("0" if APPLICANT[-1] != "0" else "1"), "step": "preview"})
    assert bad.status_code == 422 and "身份证号码校验位（第 18 位）不正确" in bad.text


def test_a_former_issuer_sees_masked_data_and_a_removed_officer_is_signed_out(province: Province) -> None:
    p = province
    officer = Browser(p, p.gulou.id, "wang.li")
    check = p.raise_check()
    assert officer.post(f"/ui/checks/{check['id']}/forward", {"to": p.city.id, "reason": "辖区"}).status_code == 303
    page = officer.get(f"/ui/checks/{check['id']}")
    assert page.status_code == 200 and APPLICANT not in page.text and masked(APPLICANT) in page.text
    p.admin.delete(f"/v1/departments/{p.gulou.id}/officers/wang.li", expect=204)
    ended = officer.get("/ui/inbox")
    assert ended.status_code == 303 and ended.headers["location"] == "/ui/sign-in?done=expired"


def test_the_auditor_verifies_an_inclusion_and_runs_the_audit(province: Province) -> None:
    p = province
    auditor = Browser(p, p.auditor.id, "zhou.shen")
    p.replied_check()
    p.settle()
    latest = p.as_("auditor").get("/v1/audit/checkpoints/latest", params={"min_position": p.position()})
    while latest.status_code == 404 or latest.json()["tree_size"] < 3:  # signed within 10 s of a leaf (§7)
        latest = p.as_("auditor").get("/v1/audit/checkpoints/latest")
    page = auditor.get("/ui/audit", params={"index": "2"})
    assert page.status_code == 200 and 'id="inclusion-result" role="status" class="verdict valid"' in page.text
    assert str(latest.json()["tree_size"]) in page.text or "tree-size" in page.text
    report = auditor.post("/ui/audit/verify", {})
    assert report.status_code == 200 and 'id="audit-report" role="status" class="verdict valid"' in report.text
    assert Browser(p, p.gulou.id, "wang.li").get("/ui/audit").status_code == 403  # auditors only, as the API


def test_every_dashboard_figure_equals_the_apis_answer_for_the_same_scope(province: Province) -> None:
    p = province
    auditor = Browser(p, p.auditor.id, "zhou.shen")
    p.replied_check()
    closed = p.replied_check()
    p.act(closed["id"], "close", "approver", {"outcome": "exempted"})
    p.act(p.raise_check()["id"], "decline", "gulou")
    p.settle()
    for scope in ({}, {"region": "350102"}, {"category": "household-registration"}, {"region": "350200"}):
        expected = p.as_("auditor").get("/v1/coverage", params=scope, expect=200).json()
        page = auditor.get("/ui/dashboard", params=scope).text
        rows = {row["code"]: row for row in expected["categories"]} | {"": expected["totals"]}
        for code, row in rows.items():
            block = re.search(rf'<tr data-category="{re.escape(code)}"[^>]*>(.*?)</tr>', page, re.S).group(1)
            shown = dict(re.findall(r'data-figure="([a-z_]+)" data-value="([^"]*)"', block))
            assert shown.keys() == set(row) - {"code", "name"}, (code, shown)
            for name, value in shown.items():
                assert value == ("null" if row[name] is None else str(row[name])), (scope, code, name)


def test_the_operator_manages_the_platform_through_the_admin_commands(province: Province) -> None:
    p = province
    workbench = p.app.state.workbench
    workbench.settings = workbench.settings.model_copy(update={"ui_operator_department": p.auditor.id})
    operator = Browser(p, p.auditor.id, "op.li")
    assert Browser(p, p.gulou.id, "wang.li").get("/ui/operator").status_code == 403
    page = operator.get("/ui/operator")
    assert page.status_code == 200 and "household-registration" in page.text
    retired = operator.post("/ui/operator/category-status", {"code": "household-registration", "status": "retired"})
    assert retired.status_code == 303
    [category] = [c for c in p.admin.get("/v1/categories").json()["items"] if c["code"] == "household-registration"]
    assert category["status"] == "retired"
    assert p.as_("approver").post("/v1/checks", json=p.check_body(), expect=422).json()["code"] == "category_unavailable"
    added = operator.post("/ui/operator/officer", {"department": p.gulou.id, "login": "li.na", "name": "李娜"})
    assert added.status_code == 200 and 'id="shown-once"' in added.text
    code = re.search(r'<p class="mono secret">([^<]+)</p>', added.text).group(1)
    assert code not in operator.get("/ui/operator").text  # shown once
    listed = p.admin.get(f"/v1/departments/{p.gulou.id}/officers").json()["items"]
    assert [o["login"] for o in listed] == ["li.na", "wang.li"]
    assert operator.post("/ui/operator/officer", {"department": p.gulou.id, "login": "li.na", "name": "李娜"}).status_code == 409
    assert operator.post("/ui/operator/remove-officer", {"department": p.gulou.id, "login": "li.na"}).status_code == 303
    assert operator.post("/ui/operator/rotate-seal", {"department": p.gulou.id}).status_code == 303
    seals = [d for d in p.admin.get("/v1/departments").json()["items"] if d["id"] == p.gulou.id][0]["certificates"]
    assert [s["status"] for s in seals] == ["retired", "active"]


def test_an_officer_turns_two_factor_sign_in_on(province: Province) -> None:
    import pyotp

    p = province
    officer = Browser(p, p.gulou.id, "wang.li")
    page = officer.get("/ui/totp")
    assert page.status_code == 200
    secret = re.search(r'name="secret" value="([A-Z2-7]+)"', page.text).group(1)
    assert officer.post("/ui/totp", {"secret": secret, "totp": "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"}).status_code == 400
    assert officer.post("/ui/totp", {"secret": secret, "totp": pyotp.TOTP(secret).now()}).headers["location"] == "/ui/home?done=totp_on"
    accounts = p.app.state.workbench.accounts
    with p.services.database.transaction() as cursor:
        stored = cursor.execute("SELECT totp_secret FROM ui_accounts WHERE login = 'wang.li'").fetchone()[0]
    assert stored and secret not in stored and accounts.totp.open(p.gulou.id, "wang.li", stored) == secret
