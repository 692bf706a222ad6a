"""A small province to run stories in: departments of Fuzhou and Xiamen and a few categories.

Issuers of kind ``police`` sit at three levels of Fuzhou (province 350000, city 350100, district
350102), so that routing has a longest prefix to find.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from api.demo import CategoryRow, DepartmentRow, create_province
from domain.check import Check
from domain.identifiers import make_id_number, make_uscc
from domain.platform import Platform

APPROVER = "fz-housing"  # approver, Fuzhou city
OTHER_APPROVER = "xm-housing"  # approver, Xiamen: unrelated to Fuzhou's checks
PROVINCE_POLICE = "fj-police"  # issuer police 350000
CITY_POLICE = "fz-police"  # issuer police 350100
GULOU_POLICE = "fz-gulou-police"  # issuer police 350102
XIAMEN_POLICE = "xm-police"  # issuer police 350200
GULOU_CIVIL = "fz-gulou-civil"  # issuer civil-affairs 350102
AUDITOR = "fj-audit"  # auditor

DEPARTMENTS: list[DepartmentRow] = [
    (APPROVER, "福州市不动产登记中心", ["approver"], "natural-resources", "350100"),
    (OTHER_APPROVER, "厦门市不动产登记中心", ["approver"], "natural-resources", "350200"),
    (PROVINCE_POLICE, "福建省公安厅", ["issuer"], "police", "350000"),
    (CITY_POLICE, "福州市公安局", ["issuer"], "police", "350100"),
    (GULOU_POLICE, "福州市公安局鼓楼分局", ["issuer"], "police", "350102"),
    (XIAMEN_POLICE, "厦门市公安局", ["issuer"], "police", "350200"),
    (GULOU_CIVIL, "福州市鼓楼区民政局", ["issuer", "approver"], "civil-affairs", "350102"),
    (AUDITOR, "福建省审计厅", ["auditor"], "audit", "350000"),
]

HOUSEHOLD = "household-registration"  # police, collaboration + commitment, 24 h
NO_RECORD = "no-criminal-record"  # police, collaboration only, 48 h
KINSHIP = "kinship"  # civil-affairs, collaboration + data_sharing, 72 h, with a claims schema

KINSHIP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["relation", "other_id_number"],
    "properties": {
        "relation": {"enum": ["parent", "child", "spouse"]},
        "other_id_number": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$"},
    },
}

APPLICANT_NAME = "林某某"
APPLICANT_ID = make_id_number("35010219900101123")  # household registered in Gulou, 350102
OTHER_ID = make_id_number("35010219650202456")

_uscc_serial = iter(range(1, 10_000_000))


def new_uscc() -> str:
    return make_uscc(f"91350100MA{next(_uscc_serial):07d}")


CATEGORIES: list[CategoryRow] = [
    (HOUSEHOLD, "户籍证明", "police", ["collaboration", "commitment"], 24),
    (NO_RECORD, "无犯罪记录证明", "police", ["collaboration"], 48),
    (KINSHIP, "亲属关系证明", "civil-affairs", ["collaboration", "data_sharing"], 72, KINSHIP_SCHEMA),
]


def build_province(app: Platform) -> None:
    create_province(app, DEPARTMENTS, CATEGORIES)


def raise_check(
    app: Platform,
    *,
    category: str = HOUSEHOLD,
    issuer: str | None = GULOU_POLICE,
    id_number: str = APPLICANT_ID,
    approver: str = APPROVER,
    claims: dict[str, Any] | None = None,
    idempotency_key: str | None = None,
) -> tuple[Check, int | None]:
    return app.raise_check(
        approver,
        category=category,
        matter={"code": "real-estate-deregistration", "name": "不动产注销登记"},
        applicant={"name": APPLICANT_NAME, "id_number": id_number},
        claims={"question": "两个身份证号码是否为同一人", "other_id_number": OTHER_ID} if claims is None else claims,
        purpose="不动产注销登记身份一致性核验",
        consent={"method": "face", "reference": "face-2024-0001"},
        issuer=issuer,
        idempotency_key=idempotency_key,
    )


def new_check_id(app: Platform, **kwargs: Any) -> UUID:
    check, _ = raise_check(app, **kwargs)
    return check.id
