"""A small province and checks taken through varied lives, for the audit tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from api.demo import CategoryRow, DepartmentRow, create_province
from domain.identifiers import make_id_number
from domain.platform import Platform

APPROVER = "fz-housing"
GULOU_POLICE = "fz-gulou-police"
CITY_POLICE = "fz-police"
AUDITOR = "fj-audit"
HOUSEHOLD = "household-registration"
APPLICANT_ID = make_id_number("35010219900101123")
OTHER_ID = make_id_number("35010219650202456")

DEPARTMENTS: list[DepartmentRow] = [
    (APPROVER, "福州市不动产登记中心", ["approver"], "natural-resources", "350100"),
    (GULOU_POLICE, "福州市公安局鼓楼分局", ["issuer"], "police", "350102"),
    (CITY_POLICE, "福州市公安局", ["issuer"], "police", "350100"),
    (AUDITOR, "福建省审计厅", ["auditor"], "audit", "350000"),
]
CATEGORIES: list[CategoryRow] = [(HOUSEHOLD, "户籍证明", "police", ["collaboration", "commitment"], 24)]


@dataclass
class Story:
    """The checks a scenario raised, by what happened to them."""

    checks: dict[str, UUID] = field(default_factory=dict)


def build_province(app: Platform) -> None:
    create_province(app, DEPARTMENTS, CATEGORIES)


def raise_check(app: Platform, issuer: str | None = GULOU_POLICE) -> UUID:
    check, _ = app.raise_check(
        APPROVER,
        category=HOUSEHOLD,
        matter={"code": "real-estate-deregistration", "name": "不动产注销登记"},
        applicant={"name": "林某某", "id_number": APPLICANT_ID},
        claims={"question": "两个身份证号码是否为同一人", "other_id_number": OTHER_ID},
        purpose="不动产注销登记身份一致性核验",
        consent={"method": "face", "reference": "face-2024-0001"},
        issuer=issuer,
    )
    return check.id


def run_story(app: Platform) -> Story:
    """Four checks: exempted, declined after a question, forwarded and revoked, withdrawn."""
    build_province(app)
    story = Story()

    exempted = story.checks["exempted"] = raise_check(app)
    app.accept(exempted, GULOU_POLICE)
    app.reply(exempted, GULOU_POLICE, "confirmed", {"same_person": True}, 90)
    app.close_check(exempted, APPROVER, "exempted")

    declined = story.checks["declined"] = raise_check(app)
    app.accept(declined, GULOU_POLICE)
    app.request_info(declined, GULOU_POLICE, "请提供曾用名")
    app.supply_info(declined, APPROVER, "林小某")
    app.decline(declined, GULOU_POLICE, "no_record", "查无此人")
    app.close_check(declined, APPROVER, "applicant_submitted")

    revoked = story.checks["revoked"] = raise_check(app)
    app.forward(revoked, GULOU_POLICE, CITY_POLICE, "户籍在市局")
    app.accept(revoked, CITY_POLICE)
    check, _ = app.reply(revoked, CITY_POLICE, "not_confirmed", {"note": "不是同一人"}, 30)
    app.revoke_proof(check.proof.id, CITY_POLICE, "误发")
    app.close_check(revoked, APPROVER, "commitment")

    withdrawn = story.checks["withdrawn"] = raise_check(app)
    app.withdraw(withdrawn, APPROVER, "申请人撤回")
    return story
