"""The officers' desk under /ui: the issuer's inbox, the approver's checks and new check, a check's page
with its timeline and the forms of every command on it.

Nothing here decides who may do or see what: the signed-in officer becomes the `Principal` of its
department (with ``officer`` set, as ``X-Officer`` sets it), reads go through the API's own read functions
(`api.routers.checks`, the views, `api.access`, `api.presenters`), forms are validated by the API's own
request models and commands are the Platform's, so every rule and mask is the API's (API.md §14).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from api import schemas
from api.access import list_scope
from api.bootstrap import Services
from api.deps import require_known_category, require_role
from api.principal import Principal
from api.problems import STATUS_OF_CODE, Problem
from api.routers.checks import check_history, raise_from, read_check, visible_check
from api.trust import PlatformTrust
from api.workbench.commands import COMMANDS, run
from api.workbench.i18n import CATALOGUE
from api.workbench.pages import Form, FormErrors, _SignInNeeded
from api.workbench.sessions import Session
from domain.errors import DomainError, NotFound
from domain.identifiers import validate_id_number
from domain.timefmt import format_time, parse_time
from domain.vocabulary import CheckStatus
from signing.proofs import verify_proof

if TYPE_CHECKING:
    from api.workbench.pages import Workbench

SignInNeeded = _SignInNeeded  # no signed-in officer (or no longer an active one): go and sign in


def remaining(due_at: str, now: datetime) -> dict[str, Any]:
    """The SLA countdown of a check due at ``due_at``: whole hours and minutes left, or overdue by."""
    seconds = (parse_time(due_at) - now).total_seconds()
    minutes = int(abs(seconds) // 60)
    return {"overdue": seconds < 0, "hours": minutes // 60, "minutes": minutes % 60}


class Desk:
    def __init__(self, workbench: Workbench) -> None:
        self.workbench = workbench

    def routes(self, pages: APIRouter) -> None:
        pages.add_api_route("/inbox", self.inbox, methods=["GET"])
        pages.add_api_route("/checks", self.checks, methods=["GET"])
        pages.add_api_route("/checks/new", self.new_check_form, methods=["GET"])
        pages.add_api_route("/checks/new", self.new_check, methods=["POST"])
        pages.add_api_route("/checks/{check_id}", self.check_page, methods=["GET"])
        from api.workbench.downloads import Downloads  # these build on the desk

        Downloads(self).routes(pages)
        pages.add_api_route("/checks/{check_id}/{command}", self.command, methods=["POST"])
        from api.workbench.operator import Operator
        from api.workbench.oversight import Oversight

        Oversight(self).routes(pages)
        Operator(self).routes(pages)

    # -- who is signed in -----------------------------------------------------------------------

    def signed_in(self, request: Request, session: Session | None = None) -> tuple[Session, Principal]:
        """The session and the principal of its officer: its department's, acting as that officer."""
        cookie = request.cookies.get("nocert_session")
        session = session or self.workbench.sessions.resume(cookie)
        if session is None or session.officer is None:
            raise SignInNeeded(expired=cookie is not None)
        services = self.services(request)
        try:
            department = services.platform.department(session.officer.department)
        except NotFound:
            department = None
        if department is None or not department.has_active_officer(session.officer.login):
            self.workbench.sessions.end(session)
            raise SignInNeeded(expired=True)
        principal = Principal(department.department_id, frozenset(department.roles), department, session.officer.login)
        return session, principal

    @staticmethod
    def services(request: Request) -> Services:
        services: Services = request.app.state.services
        return services

    def render(
        self, request: Request, template: str, session: Session, principal: Principal, status: int = 200, **context: Any
    ) -> Response:
        return self.workbench.page(
            request, template, session, status=status, roles=sorted(principal.roles), department=principal.department,
            operator_nav=principal.id == self.workbench.settings.ui_operator_department, **context,
        )

    def refused(self, request: Request, session: Session, principal: Principal, error: Exception) -> Response:
        code, detail = (
            (error.code, error.detail) if isinstance(error, (Problem, DomainError)) else ("validation_error", str(error))
        )
        known = f"code.{code}" in CATALOGUE[self.workbench.lang(request)]
        message = self.workbench._message(self.workbench.lang(request), f"code.{code if known else 'validation_error'}")
        return self.render(
            request, "desk_error.html", session, principal, status=STATUS_OF_CODE.get(code, 400), message=message,
            detail=detail,
        )

    # -- lists ----------------------------------------------------------------------------------

    def inbox(self, request: Request, cursor: str | None = None) -> Response:
        session, principal = self.signed_in(request)
        services = self.services(request)
        try:
            require_role("issuer").check(principal)
            items, next_cursor = services.views.inbox(principal.id, limit=50, cursor=cursor)
        except (Problem, ValueError) as error:
            return self.refused(request, session, principal, error)
        now = services.platform.clock()
        rows = [{**item, "due": remaining(item["due_at"], now)} for item in items]
        return self.render(request, "inbox.html", session, principal, items=rows, next_cursor=next_cursor)

    def checks(self, request: Request) -> Response:
        session, principal = self.signed_in(request)
        services = self.services(request)
        query = request.query_params
        filters = {name: query.get(name) or None for name in ("status", "category", "overdue")}
        try:
            require_role("approver", "issuer", "auditor").check(principal)
            if filters["status"] is not None and filters["status"] not in {s.value for s in CheckStatus}:
                raise Problem("validation_error", f"unknown status {filters['status']!r}")
            if filters["overdue"] not in (None, "true", "false"):
                raise Problem("validation_error", "overdue is true or false")
            require_known_category(services, filters["category"])
            items, next_cursor = services.views.list_checks(
                **list_scope(principal),
                status=filters["status"],
                category=filters["category"],
                overdue=None if filters["overdue"] is None else filters["overdue"] == "true",
                limit=50,
                cursor=query.get("cursor"),
            )
        except (Problem, ValueError) as error:
            return self.refused(request, session, principal, error)
        now = services.platform.clock()
        rows = [{**item, "due": remaining(item["due_at"], now)} for item in items]
        return self.render(
            request, "checks.html", session, principal, items=rows, next_cursor=next_cursor, filters=filters,
            statuses=[s.value for s in CheckStatus], categories=sorted(services.platform.catalogue().codes),
        )

    # -- one check ------------------------------------------------------------------------------

    def check_page(self, request: Request, check_id: str) -> Response:
        return self.show_check(request, check_id)

    def show_check(self, request: Request, check_id: str, **extra: Any) -> Response:
        """The check's page; ``extra``: a refused form's ``errors`` and the ``status`` to answer with."""
        session, principal = self.signed_in(request)
        services = self.services(request)
        query = request.query_params
        try:
            require_role("approver", "issuer", "auditor").check(principal)
            document = read_check(check_id, principal, services, query.get("version") or None, query.get("as_of") or None)
            history = check_history(check_id, principal, services)
        except (Problem, DomainError) as error:
            return self.refused(request, session, principal, error)
        verdict = None
        jws = (document.get("proof") or {}).get("jws")
        if jws:
            root = services.keystore.root()[1]
            verdict = asdict(verify_proof(jws, root, PlatformTrust(services.platform), services.platform.clock()))
        current = visible_check(services, check_id, principal)
        return self.render(
            request, "check.html", session, principal, status=extra.pop("status", 200), check=document,
            events=history["events"], verdict=verdict, latest=current.version,
            is_approver=principal.id == current.approver, is_issuer=principal.id == current.issuer,
            is_sealer=current.proof is not None and current.proof.sealer == principal.id,
            now=format_time(services.platform.clock()), **extra,
        )

    def command(self, request: Request, check_id: str, command: str, form: Form) -> Response:
        session = self.workbench.checked(request, form)
        session, principal = self.signed_in(request, session)
        services = self.services(request)
        if command not in COMMANDS:
            return self.refused(request, session, principal, Problem("not_found", "no such action"))
        model, role, body_of = COMMANDS[command]
        errors = FormErrors()
        try:
            require_role(role).check(principal)
            check = visible_check(services, check_id, principal)
            try:
                body: Any = model.model_validate(body_of(form))
            except ValidationError as invalid:
                for problem in invalid.errors():
                    errors.add(str(problem["loc"][0]) if problem["loc"] else "form", problem["msg"])
                return self.show_check(request, check_id, status=422, errors=errors, failed=command)
            run(services, principal, check.id, command, body)
        except (Problem, DomainError) as error:
            code = error.code
            if code in ("forbidden", "not_found", "unauthenticated"):
                return self.refused(request, session, principal, error)
            errors.add("form", self.workbench._message(self.workbench.lang(request), f"code.{code}"))
            errors.add("detail", error.detail)
            return self.show_check(request, check_id, status=STATUS_OF_CODE[code], errors=errors, failed=command)
        return RedirectResponse(f"/ui/checks/{check_id}?done={command}", status_code=303)

    # -- a new check ----------------------------------------------------------------------------

    def new_check_form(self, request: Request) -> Response:
        session, principal = self.signed_in(request)
        return self._new_check_page(request, session, principal, {}, FormErrors(), None)

    def _new_check_page(
        self, request: Request, session: Session, principal: Principal, values: Mapping[str, str],
        errors: FormErrors, route: dict[str, Any] | None, status: int = 200,
    ) -> Response:
        try:
            require_role("approver").check(principal)
        except Problem as error:
            return self.refused(request, session, principal, error)
        services = self.services(request)
        categories = [services.platform.category(code) for code in sorted(services.platform.catalogue().codes)]
        return self.render(
            request, "new_check.html", session, principal, status=status, values=values, errors=errors, route=route,
            categories=[c for c in categories if c.online],
        )

    def new_check(self, request: Request, form: Form) -> Response:
        """Two steps: ``preview`` validates the check and shows where it will be routed; ``send`` raises
        it, once, whatever the number of clicks (the preview's idempotency key)."""
        session = self.workbench.checked(request, form)
        session, principal = self.signed_in(request, session)
        services = self.services(request)
        values = {name: form.get(name, "").strip() for name in NEW_CHECK_FIELDS}
        values["id_number"] = values["id_number"].upper()
        errors = FormErrors()
        try:
            require_role("approver").check(principal)
            body = schemas.CheckCreate.model_validate(_check_body(values))
        except Problem as error:
            return self.refused(request, session, principal, error)
        except ValidationError as invalid:
            for problem in invalid.errors():
                errors.add(_field_of(problem["loc"]), problem["msg"])
            return self._new_check_page(request, session, principal, values, errors, None, status=422)
        try:
            validate_id_number(body.applicant.id_number)
            category = services.platform.category(body.category)
            issuer = body.issuer or services.platform.directory().route(category.issuer_kind, body.applicant.id_number[:6])
            if body.issuer:
                services.platform.directory().require_issuer(issuer, category.issuer_kind)
            route = {"issuer": issuer, "name": services.platform.department(issuer).name, "sla_hours": category.sla_hours}
            if form.get("step") != "send":
                values["idempotency_key"] = secrets.token_urlsafe(18)
                return self._new_check_page(request, session, principal, values, errors, route)
            check, _ = raise_from(
                services, principal, body, f"ui:{values.get('idempotency_key') or secrets.token_urlsafe(18)}"
            )
        except DomainError as error:
            field = {"invalid_id_number": "id_number", "unknown_category": "category"}.get(error.code, "issuer")
            errors.add(field, self.workbench._message(self.workbench.lang(request), _message_key(error)))
            return self._new_check_page(request, session, principal, values, errors, None, status=STATUS_OF_CODE[error.code])
        services.views.nudge()
        return RedirectResponse(f"/ui/checks/{check.id}?done=raised", status_code=303)


NEW_CHECK_FIELDS = (
    "category", "matter_code", "matter_name", "applicant_name", "id_number", "question", "purpose",
    "consent_method", "consent_reference", "issuer", "idempotency_key",
)


def _check_body(values: Mapping[str, str]) -> dict[str, Any]:
    """The API's `CheckCreate` body of the new-check form."""
    return {
        "category": values["category"],
        "matter": {"code": values["matter_code"], "name": values["matter_name"]},
        "applicant": {"name": values["applicant_name"], "id_number": values["id_number"]},
        "claims": {"question": values["question"]} if values["question"] else {},
        "purpose": values["purpose"],
        "consent": {"method": values["consent_method"], "reference": values["consent_reference"]},
        "issuer": values["issuer"] or None,
    }


def _field_of(location: tuple[Any, ...]) -> str:
    """The form field of a `CheckCreate` validation error's location."""
    names = {("matter", "code"): "matter_code", ("matter", "name"): "matter_name", ("applicant", "name"): "applicant_name",
             ("applicant", "id_number"): "id_number", ("consent", "method"): "consent_method",
             ("consent", "reference"): "consent_reference"}
    return names.get(tuple(location[:2]), str(location[0]) if location else "form")


def _message_key(error: DomainError) -> str:
    """The message of a refused new check: for an identity number, which of its rules it breaks."""
    if error.code != "invalid_id_number":
        return f"code.{error.code}"
    if "check character" in error.detail:
        return "error.id_number.check_char"
    return "error.id_number.birth" if "birth" in error.detail else "error.id_number.format"

