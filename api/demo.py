"""``nocert demo``: a demo province (Fuzhou, Quanzhou, Xiamen) with a catalogue of real proof
categories and N checks taken through varied lives, so that every view has data."""

from __future__ import annotations

import heapq
import itertools
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from api.demo_clock import DemoClock, running
from domain.errors import DomainError
from domain.identifiers import sample_id_number, sample_uscc
from domain.platform import Platform
from domain.timefmt import utcnow

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


def keys_file(key_dir: Path) -> Path:
    """Where the demo keeps its departments' API keys: beside the key directory (not in it: backups and the
    key store hold only keys and certificates), e.g. ./var/demo-keys.txt."""
    return Path(key_dir).absolute().parent / "demo-keys.txt"


def write_keys_file(path: Path, lines: Sequence[str]) -> None:
    """The keys, readable by the owner only (0600), so that `make run` can show them again."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# nocert demo: department, roles, API key (mode 0600)\n")
        out.writelines(line + "\n" for line in lines)


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


# The lives checks have; the first of each kind come first, so that even a small demo fills every view.
FATES = (
    "waiting", "accepted", "info_requested", "forwarded", "replied_closed", "revoked", "declined", "withdrawn",
    "commitment", "replied_open", "info_supplied_replied", "forwarded_replied",
)
WEIGHTS = (12, 5, 4, 4, 30, 4, 10, 5, 6, 8, 8, 4)
SPAN = timedelta(hours=72)  # the demo's life begins this long ago
OPEN_FATES = frozenset({"waiting", "accepted", "info_requested", "forwarded"})

Step = Callable[[], object]


class _Life:
    """Schedules one check's commands at moments of the demo clock (`_Simulation` runs them in time order)."""

    def __init__(self, simulation: _Simulation, approver: str, category: str, fate: str) -> None:
        self.simulation = simulation
        self.app = simulation.app
        self.rng = simulation.rng
        self.approver = approver
        self.category = category
        self.fate = fate
        self.check_id: Any = None
        self.issuer = ""

    def hours(self, low: float, high: float) -> timedelta:
        return timedelta(hours=self.rng.uniform(low, high))

    def then(self, after: timedelta, step: Step) -> None:
        self.simulation.at(self.simulation.clock.now() + after, step)

    def raise_(self) -> None:
        rng = self.rng
        check, _ = self.app.raise_check(
            self.approver,
            category=self.category,
            matter=dict(zip(("code", "name"), rng.choice(MATTERS), strict=True)),
            applicant={
                "name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "id_number": sample_id_number(rng.randrange(365 * 55 * 1000), rng.choice(APPLICANT_REGIONS)),
            },
            claims={"question": "申请人所述信息是否属实"},
            purpose="办理事项所需证明的在线协查",
            consent={"method": rng.choice(["face", "signature", "app"]), "reference": f"CONSENT-{rng.randrange(10**8):08d}"},
        )
        self.check_id, self.issuer = check.id, check.issuer
        fate = self.fate
        if fate == "waiting":
            return
        if fate == "withdrawn":
            self.then(self.hours(1, 12), lambda: self.app.withdraw(self.check_id, self.approver, "申请人撤回申请"))
        elif fate == "commitment":
            self.then(self.hours(0.2, 2), lambda: self.app.close_check(self.check_id, self.approver, "commitment"))
        elif fate == "declined":
            self.then(self.hours(1, 20), self.decline)
        elif fate.startswith("forwarded"):
            self.then(self.hours(0.5, 4), self.forward)
        else:
            self.then(self.hours(0.2, 3), self.accept)

    def accept(self) -> None:
        self.app.accept(self.check_id, self.issuer)
        if self.fate == "accepted":
            return
        if self.fate in ("info_requested", "info_supplied_replied"):
            self.then(self.hours(0.5, 4), self.request_info)
        else:
            self.then(self.hours(1, 20), self.reply)

    def request_info(self) -> None:
        self.app.request_info(self.check_id, self.issuer, "请补充申请人曾用名")
        if self.fate == "info_supplied_replied":
            self.then(self.hours(1, 10), self.supply_info)

    def supply_info(self) -> None:
        self.app.supply_info(self.check_id, self.approver, "申请人无曾用名")
        self.then(self.hours(1, 8), self.reply)

    def forward(self) -> None:
        kind = next(row[2] for row in CATEGORIES if row[0] == self.category)
        others = [row[0] for row in DEPARTMENTS if row[3] == kind and "issuer" in row[2] and row[0] != self.issuer]
        if not others:
            self.then(self.hours(0.2, 3), self.accept)
            return
        check, _ = self.app.forward(self.check_id, self.issuer, self.rng.choice(others), "属地管辖，转交辖区部门办理")
        self.issuer = check.issuer
        if self.fate == "forwarded_replied":
            self.then(self.hours(0.2, 3), self.accept)

    def decline(self) -> None:
        reason = self.rng.choice(["no_record", "insufficient_information"])
        self.app.decline(self.check_id, self.issuer, reason, "未查到相关记录")
        self.then(self.hours(0.5, 6), lambda: self.app.close_check(self.check_id, self.approver, "applicant_submitted"))

    def reply(self) -> None:
        confirmed = self.rng.random() < 0.85
        self.app.reply(self.check_id, self.issuer, "confirmed" if confirmed else "not_confirmed", {"note": "经核查"}, 90)
        if self.fate == "revoked":
            self.then(self.hours(1, 6), self.revoke)
        elif self.fate != "replied_open":
            outcome = "exempted" if confirmed else "applicant_submitted"
            self.then(self.hours(0.5, 5), lambda: self.app.close_check(self.check_id, self.approver, outcome))

    def revoke(self) -> None:
        proof = self.app.check(self.check_id).proof
        assert proof is not None  # replied
        self.app.revoke_proof(proof.id, self.issuer, "复核发现信息有误")
        self.then(self.hours(0.5, 4), lambda: self.app.close_check(self.check_id, self.approver, "applicant_submitted"))


class _Simulation:
    """Runs every scheduled command in time order on the demo clock; what would fall after the real now is
    never done, so checks are left in the states the views show (open, overdue, waiting for information)."""

    def __init__(self, app: Platform, rng: random.Random, clock: DemoClock, end: datetime) -> None:
        self.app, self.rng, self.clock, self.end = app, rng, clock, end
        self._queue: list[tuple[datetime, int, Step]] = []
        self._order = itertools.count()

    def at(self, moment: datetime, step: Step) -> None:
        if moment <= self.end:
            heapq.heappush(self._queue, (moment, next(self._order), step))

    def run(self, progress: Callable[[int], None], raises: int) -> None:
        done = 0
        while self._queue:
            moment, _, step = heapq.heappop(self._queue)
            self.clock.advance(moment)
            try:
                step()
            except DomainError as error:  # a life the rules refuse is a bug in the demo, not data
                raise RuntimeError(f"demo step at {moment} failed: {error.code}: {error.detail}") from error
            if isinstance(step, _Raise):
                done += 1
                progress(min(done, raises))


@dataclass
class _Raise:
    life: _Life

    def __call__(self) -> None:
        self.life.raise_()


def run_demo(app: Platform, checks: int, progress: Callable[[int], None] = lambda done: None, seed: int = 2026) -> list[DemoDepartment]:
    """Creates the province and ``checks`` checks on an empty store, their lives played over the last
    `SPAN` on the demo clock (api.demo_clock); StoreNotEmpty otherwise."""
    if app.recorder.max_notification_id():
        raise StoreNotEmpty("the store already holds events")
    rng = random.Random(seed)
    end = utcnow() - timedelta(minutes=1)
    clock = DemoClock(end - SPAN)
    with running(clock, app):
        departments = create_province(app)
        simulation = _Simulation(app, rng, clock, end)
        approvers = [d.id for d in departments if "approver" in d.roles]
        online = [(row[0], row[4]) for row in CATEGORIES if "collaboration" in row[3] and row[4] >= 1]
        promising = [code for code, *_ in CATEGORIES if "commitment" in _[2]]
        for index in range(checks):
            fate = FATES[index] if index < len(FATES) else rng.choices(FATES, WEIGHTS)[0]
            if index < len(FATES) and fate in OPEN_FATES:
                # Early, with a due time long past: the overdue list has these.
                category = rng.choice([code for code, sla in online if sla <= 48])
                raised = clock.now() + timedelta(hours=1 + index / 10)
            else:
                category = rng.choice(promising) if fate == "commitment" else rng.choice(online)[0]
                raised = clock.now() + timedelta(hours=rng.uniform(1, SPAN.total_seconds() / 3600 - 1))
            simulation.at(raised, _Raise(_Life(simulation, rng.choice(approvers), category, fate)))
        simulation.run(progress, checks)
    return departments
