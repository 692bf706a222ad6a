"""``nocert demo``: a demo province (Fuzhou, Quanzhou, Xiamen) with a catalogue of real proof
categories and N checks taken through varied lives, so that every view has data."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import DomainError
from domain.identifiers import sample_id_number, sample_uscc
from domain.platform import Platform

DepartmentRow = tuple[str, str, list[str], str, str]
"""(id, name, roles, kind, region)"""
CategoryRow = tuple[str, str, str, list[str], float] | tuple[str, str, str, list[str], float, dict[str, Any] | None]
"""(code, name, issuer_kind, modes, sla_hours[, claims_schema])"""

DEPARTMENTS: list[DepartmentRow] = [
    ("fz-real-estate", "福州市不动产登记中心", ["approver", "issuer"], "real-estate", "350100"),
    ("fz-admin-service", "福州市行政服务中心", ["approver"], "service-center", "350100"),
    ("qz-admin-service", "泉州市行政服务中心", ["approver"], "service-center", "350500"),
    ("xm-hrss-service", "厦门市人力资源和社会保障局服务大厅", ["approver"], "service-center", "350200"),
    ("fz-police", "福州市公安局", ["issuer"], "police", "350100"),
    ("fz-gulou-police", "福州市公安局鼓楼分局", ["issuer"], "police", "350102"),
    ("fz-taijiang-police", "福州市公安局台江分局", ["issuer"], "police", "350103"),
    ("qz-police", "泉州市公安局", ["issuer"], "police", "350500"),
    ("qz-licheng-police", "泉州市公安局鲤城分局", ["issuer"], "police", "350502"),
    ("xm-police", "厦门市公安局", ["issuer"], "police", "350200"),
    ("xm-siming-police", "厦门市公安局思明分局", ["issuer"], "police", "350203"),
    ("fj-civil-affairs", "福建省民政厅", ["issuer"], "civil-affairs", "350000"),
    ("fz-civil-affairs", "福州市民政局", ["issuer"], "civil-affairs", "350100"),
    ("fj-health", "福建省卫生健康委员会", ["issuer"], "health", "350000"),
    ("fj-social-security", "福建省社会保险中心", ["issuer"], "social-security", "350000"),
    ("fj-tax", "国家税务总局福建省税务局", ["issuer"], "tax", "350000"),
    ("fj-real-estate", "福建省自然资源厅不动产登记局", ["issuer"], "real-estate", "350000"),
    ("fj-market-regulation", "福建省市场监督管理局", ["issuer"], "market-regulation", "350000"),
    ("fj-education", "福建省教育厅", ["issuer"], "education", "350000"),
    ("fj-veterans", "福建省退役军人事务厅", ["issuer"], "veterans", "350000"),
    ("fj-disability", "福建省残疾人联合会", ["issuer"], "disability", "350000"),
    ("fj-audit", "福建省审计厅", ["auditor"], "audit", "350000"),
]

BOTH = ["collaboration", "commitment"]
CATEGORIES: list[CategoryRow] = [
    ("household-registration", "户籍证明", "police", BOTH, 24),
    ("kinship", "亲属关系证明", "police", BOTH, 48),
    ("criminal-record", "有无犯罪记录证明", "police", ["collaboration"], 72),
    ("marriage-record", "婚姻登记记录证明", "civil-affairs", BOTH, 24),
    ("identity-information", "居民身份信息证明", "police", ["collaboration", "data_sharing"], 8),
    ("death", "死亡证明", "health", ["collaboration"], 48),
    ("birth-medical", "出生医学证明", "health", ["collaboration", "data_sharing"], 24),
    ("social-insurance-payment", "社保缴费证明", "social-security", ["collaboration", "data_sharing"], 24),
    ("tax-payment", "完税证明", "tax", ["collaboration", "data_sharing"], 24),
    ("residence", "居住证明", "police", BOTH, 48),
    ("household-cancellation", "户口注销证明", "police", ["collaboration"], 48),
    ("former-name", "曾用名证明", "police", BOTH, 72),
    ("same-person", "同一人证明", "police", BOTH, 48),
    ("unemployment", "失业证明", "social-security", BOTH, 48),
    ("retirement", "退休证明", "social-security", ["collaboration", "data_sharing"], 48),
    ("subsistence-allowance", "最低生活保障证明", "civil-affairs", BOTH, 72),
    ("disability", "残疾人证明", "disability", ["collaboration"], 72),
    ("no-property", "无房证明", "real-estate", BOTH, 24),
    ("property-ownership", "不动产权属证明", "real-estate", ["collaboration", "data_sharing"], 24),
    ("business-registration", "营业执照信息证明", "market-regulation", ["collaboration", "data_sharing"], 24),
    ("vaccination", "预防接种证明", "health", ["collaboration"], 48),
    ("education-record", "学历证明", "education", ["collaboration", "commitment"], 72),
    ("veteran-status", "退役军人身份证明", "veterans", ["collaboration"], 72),
    # A short SLA so that a fresh demo already shows overdue checks after about a minute.
    ("urgent-household-check", "户籍加急核验（演示：SLA 1 分钟）", "police", ["collaboration"], 1 / 60),
    ("paper-only-example", "计划生育证明（已直接取消）", "civil-affairs", ["cancelled"], 24),
]

APPLICANT_REGIONS = ["350102", "350103", "350104", "350502", "350503", "350203", "350206", "350121", "350582"]
SURNAMES = "林陈黄张吴王李郑刘蔡杨许"
GIVEN = ["某某", "小明", "秀英", "建国", "丽华", "志强", "美玲", "文杰"]
MATTERS = [
    ("real-estate-deregistration", "不动产注销登记"),
    ("pension-claim", "养老保险待遇申领"),
    ("household-transfer", "户口迁移"),
    ("business-license", "个体工商户登记"),
    ("subsidy-application", "生活补贴申请"),
]


@dataclass(frozen=True)
class DemoDepartment:
    id: str
    roles: list[str]
    api_key: str


class StoreNotEmpty(Exception):
    pass


def create_province(
    app: Platform,
    departments: Sequence[DepartmentRow] = DEPARTMENTS,
    categories: Sequence[CategoryRow] = CATEGORIES,
) -> list[DemoDepartment]:
    """Registers `departments` and creates `categories` through the Platform's own commands, each
    department with a generated valid USCC: the demo's province, and the tests' and benchmarks' own
    (with their tables). Returns every department with its API key."""
    created = []
    for index, (dept_id, name, roles, kind, region) in enumerate(departments, start=1):
        _, issued, _ = app.register_department(dept_id, name, sample_uscc(index, f"11{region}"), roles, kind, region)
        created.append(DemoDepartment(dept_id, roles, issued.api_key))
    for code, name, kind, modes, sla, *schema in categories:
        app.create_category(code, name, kind, modes, sla, schema[0] if schema else None)
    return created


def _life(app: Platform, rng: random.Random, approver: str, category: str, modes: list[str]) -> None:
    """Raises one check and takes it through one of the lives checks really have."""
    check, _ = app.raise_check(
        approver,
        category=category,
        matter=dict(zip(("code", "name"), rng.choice(MATTERS), strict=True)),
        applicant={
            "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
            "id_number": sample_id_number(rng.randrange(365 * 55 * 1000), rng.choice(APPLICANT_REGIONS)),
        },
        claims={"question": "申请人所述信息是否属实"},
        purpose="办理事项所需证明的在线协查",
        consent={"method": rng.choice(["face", "signature", "app"]), "reference": f"CONSENT-{rng.randrange(10**8):08d}"},
    )
    issuer = check.issuer
    fate = rng.random()
    if fate < 0.12:
        return  # still waiting for the issuer
    if fate < 0.17:
        app.accept(check.id, issuer)
        return
    if fate < 0.22:
        app.withdraw(check.id, approver, "申请人撤回申请")
        return
    if fate < 0.32:
        app.decline(check.id, issuer, rng.choice(["no_record", "insufficient_information"]), "未查到相关记录")
        app.close_check(check.id, approver, "applicant_submitted")
        return
    if fate < 0.40 and "commitment" in modes:
        app.close_check(check.id, approver, "commitment")
        return
    app.accept(check.id, issuer)
    if fate < 0.50:
        app.request_info(check.id, issuer, "请补充申请人曾用名")
        app.supply_info(check.id, approver, "申请人无曾用名")
    confirmed = fate < 0.88
    app.reply(check.id, issuer, "confirmed" if confirmed else "not_confirmed", {"note": "经核查"}, 90)
    if 0.55 < fate < 0.60:
        proof = app.check(check.id).proof
        assert proof is not None  # just replied
        app.revoke_proof(proof.id, issuer, "复核发现信息有误")
        app.close_check(check.id, approver, "applicant_submitted")
        return
    if fate < 0.80:
        app.close_check(check.id, approver, "exempted" if confirmed else "applicant_submitted")


def run_demo(app: Platform, checks: int, progress: Callable[[int], None] = lambda done: None, seed: int = 2026) -> list[DemoDepartment]:
    """Creates the province and ``checks`` checks on an empty store; StoreNotEmpty otherwise."""
    if app.recorder.max_notification_id():
        raise StoreNotEmpty("the store already holds events")
    rng = random.Random(seed)
    departments = create_province(app)
    approvers = [d.id for d in departments if "approver" in d.roles]
    online = [(row[0], row[3]) for row in CATEGORIES if "collaboration" in row[3]]
    for done in range(1, checks + 1):
        category, modes = rng.choice(online)
        try:
            _life(app, rng, rng.choice(approvers), category, modes)
        except DomainError as error:  # a life the rules refuse is a bug in the demo, not data
            raise RuntimeError(f"demo check {done} failed: {error.code}: {error.detail}") from error
        progress(done)
    return departments
