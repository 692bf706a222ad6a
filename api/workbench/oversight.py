"""The auditor's ledger page and the province dashboard under /ui.

As on the desk (`api.workbench.desk`), the signed-in officer is its department's principal and every
figure comes from the API's own read functions (`api.routers.audit`, `api.routers.coverage`, the views),
after the same role rules; the page adds only the verification an auditor would do by hand: the
checkpoint's signature and an event's inclusion proof recomputed against its signed root.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.access import list_scope
from api.deps import require_role
from api.problems import Problem
from api.routers.audit import events, inclusion, latest_checkpoint
from api.routers.coverage import coverage
from api.trust import PlatformTrust
from api.workbench.charts import Bar, Scale, bar_chart
from api.workbench.i18n import translator
from api.workbench.pages import Form
from audit.verify import verify_ledger
from domain.errors import DomainError
from domain.timefmt import parse_time
from projections import ledger
from signing import merkle
from signing.checkpoints import InvalidCheckpoint, verify_checkpoint
from signing.leaf import leaf_bytes

if TYPE_CHECKING:
    from api.workbench.desk import Desk

#: The coverage figures the dashboard shows, in its columns' order.
FIGURES = (
    "raised", "open", "overdue_open", "replied_confirmed", "replied_not_confirmed", "declined", "withdrawn",
    "closed_exempted", "closed_commitment", "closed_applicant_submitted", "exemption_rate", "median_answer_seconds",
    "on_time_rate",
)


@dataclass(frozen=True)
class Inclusion:
    """An event's inclusion in the ledger, as the page verified it."""

    index: int
    position: int
    type: str
    leaf_hash: str
    recomputed: bool  # the leaf hash recomputed from the event's stored bytes matches
    tree_size: int
    path: list[str]
    verified: bool  # the path leads from the leaf to the signed root


class Oversight:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def routes(self, pages: APIRouter) -> None:
        pages.add_api_route("/audit", self.audit_page, methods=["GET"])
        pages.add_api_route("/audit/verify", self.audit_verify, methods=["POST"])
        pages.add_api_route("/dashboard", self.dashboard, methods=["GET"])

    # -- the auditor ----------------------------------------------------------------------------

    def audit_page(self, request: Request, index: str | None = None) -> Response:
        return self.show_audit(request, index)

    def show_audit(self, request: Request, index: str | None, report: dict[str, Any] | None = None) -> Response:
        """The ledger page; ``index``: a leaf whose inclusion to verify; ``report``: an audit's result."""
        session, principal = self.desk.signed_in(request)
        services = self.desk.services(request)
        try:
            require_role("auditor").check(principal)
            checkpoint = latest_checkpoint(principal, services)
        except Problem as error:
            if error.code != "not_found":
                return self.desk.refused(request, session, principal, error)
            checkpoint = None
        signature_ok, age = None, None
        if checkpoint is not None:
            try:
                verify_checkpoint(checkpoint["jws"], services.keystore.root()[1])
                signature_ok = True
            except InvalidCheckpoint:
                signature_ok = False
            age = int((services.platform.clock() - parse_time(checkpoint["issued_at"])).total_seconds())
        recent = events(principal, services, after=max(0, services.log.max_position() - 20), limit=20)["items"]
        proof, wrong = None, None
        if index is not None and checkpoint is not None:
            try:
                proof = self.inclusion_of(principal, services, int(index), checkpoint)
            except (ValueError, Problem, DomainError):
                wrong = index
        return self.desk.render(
            request, "audit.html", session, principal, checkpoint=checkpoint, signature_ok=signature_ok, age=age,
            recent=list(reversed(recent)), proof=proof, wrong_index=wrong, report=report,
        )

    @staticmethod
    def inclusion_of(principal: Any, services: Any, index: int, checkpoint: dict[str, Any]) -> Inclusion:
        """Leaf ``index`` of the ledger, recomputed from its stored bytes and proved into the checkpoint."""
        size = int(checkpoint["tree_size"])
        if not 0 <= index < size:
            raise ValueError("index outside the checkpoint")
        answer = inclusion(principal, services, index, size)
        page = events(principal, services, after=0 if index == 0 else _position_before(services, index), limit=1)
        item = page["items"][0]
        if item["index"] != index:
            raise ValueError("the ledger's page does not start at that leaf")
        leaf = merkle.leaf_hash(_leaf_bytes(item))
        path = [bytes.fromhex(step) for step in answer["path"]]
        verified = merkle.verify_inclusion(index, size, leaf, path, bytes.fromhex(checkpoint["root_hash"]))
        return Inclusion(
            index, item["position"], item["type"], item["leaf_hash"], leaf.hex() == item["leaf_hash"], size,
            answer["path"], verified,
        )

    def audit_verify(self, request: Request, form: Form) -> Response:
        """Runs `nocert audit verify` in the service (reading only) and shows its report."""
        session = self.desk.workbench.checked(request, form)
        session, principal = self.desk.signed_in(request, session)
        services = self.desk.services(request)
        try:
            require_role("auditor").check(principal)
        except Problem as error:
            return self.desk.refused(request, session, principal, error)
        report = verify_ledger(
            services.platform, services.database, services.log, services.keystore.root()[1],
            trust=PlatformTrust(services.platform), workers=1,
        )
        return self.show_audit(request, None, report.to_dict())

    # -- the province dashboard -----------------------------------------------------------------

    def dashboard(self, request: Request) -> Response:
        session, principal = self.desk.signed_in(request)
        services = self.desk.services(request)
        region = request.query_params.get("region") or None
        category = request.query_params.get("category") or None
        try:
            figures = coverage(principal, services, category, region)
        except (Problem, DomainError) as error:
            return self.desk.refused(request, session, principal, error)
        t = translator(self.desk.workbench.lang(request))
        rows = figures["categories"]
        charts = [
            bar_chart(
                f"chart-{name}", t(f"dash.chart.{name}"), t("dash.chart_desc"),
                [Bar(row["name"], row[name]) for row in rows], scale, no_data=t("chart.no_data"),
            )
            for name, scale in (("exemption_rate", Scale.RATE), ("on_time_rate", Scale.RATE), ("overdue_open", Scale.COUNT))
        ]
        regions = sorted({d.region for d in (services.platform.department(i) for i in services.platform.directory().listings)
                          if d.has_role("approver")})
        by_region = [(code, coverage(principal, services, category, code)["totals"]) for code in regions]
        overdue, lag, age = None, None, None
        if principal.has_role("auditor"):
            overdue = sorted(_overdue_by_issuer(services, principal).items())
            lag = services.views.lag()
            checkpoint = services.views.latest_checkpoint()
            if checkpoint is not None:
                age = int((services.platform.clock() - parse_time(checkpoint["issued_at"])).total_seconds())
        return self.desk.render(
            request, "dashboard.html", session, principal, figures=figures, figure_names=FIGURES, charts=charts,
            by_region=by_region, overdue=overdue, lag=lag, checkpoint_age=age, region=region or "",
            category=category or "", categories=sorted(services.platform.catalogue().codes),
        )


def _overdue_by_issuer(services: Any, principal: Any) -> Counter[str]:
    """Open overdue checks per current issuer, over every page of the auditor's list."""
    counts: Counter[str] = Counter()
    cursor = None
    while True:
        items, cursor = services.views.list_checks(**list_scope(principal), overdue=True, limit=500, cursor=cursor)
        counts.update(item["issuer"] for item in items)
        if cursor is None:
            return counts


def _position_before(services: Any, index: int) -> int:
    """The global position of leaf ``index - 1`` (leaves are the log's events in order)."""
    with services.database.reading() as cursor:
        position = ledger.position_of_leaf(cursor, index - 1)
    if position is None:
        raise ValueError("no such leaf")
    return position


def _leaf_bytes(item: dict[str, Any]) -> bytes:
    """The RFC 8785 bytes of a leaf (API.md §7) from an audit event item, its state's digest recomputed
    from the stored bytes themselves."""
    state_sha256 = hashlib.sha256(base64.b64decode(item["state_b64"])).hexdigest()
    return leaf_bytes(item["position"], item["stream_id"], item["version"], item["type"], state_sha256)
