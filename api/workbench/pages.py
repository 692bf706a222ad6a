"""The workbench's pages under /ui: about, sign-in, enrolment, the signed-in home and sign-out.

Plain HTML forms, posted and answered with a redirect (303) when they succeed, or the same form with an
error summary linked to its fields when they do not; no page needs a script. Every POST carries the
session's CSRF token (`CsrfRejected`: a 403 page otherwise). The language is the ``lang`` query parameter
when given (kept in a cookie), else the cookie's, else Chinese.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from api.ratelimit import AuthFailureLimiter
from api.settings import Settings
from api.workbench.accounts import Accounts, EnrolmentRefused, PasswordRejected, TotpRejected
from api.workbench.credentials import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    new_totp_secret,
    totp_provisioning_uri,
)
from api.workbench.i18n import language, translator
from api.workbench.lockout import Lockout
from api.workbench.sessions import Officer, Session, Sessions
from api.workbench.sign_in import SignIn
from api.workbench.templating import render
from domain.errors import DomainError

PREFIX = "/ui"
SESSION_COOKIE = "nocert_session"
FORM_COOKIE = "nocert_form"  # the nonce of an anonymous form's CSRF token (no session row: sessions.py)
LANGUAGE_COOKIE = "nocert_lang"
CSRF_FIELD = "csrf_token"
ADDRESS_WINDOW_SECONDS = 60.0  # the window of NOCERT_UI_ADDRESS_FAILURES
#: Messages a redirect may ask the next page to show (``?done=``): nothing else is echoed.
DONE_MESSAGES = (
    "signed_out", "enrolled", "expired", "raised", "accept", "request-info", "supply-info", "forward", "reply",
    "decline", "withdraw", "close", "revoke-proof", "urge", "operator", "totp_on",
)
#: The fields each form needs, with their labels' message keys, in the form's order.
SIGN_IN_REQUIRED = {"department": "field.department", "login": "field.login", "password": "field.password"}
ENROL_REQUIRED = {
    "department": "field.department",
    "login": "field.login",
    "enrolment_code": "field.enrolment_code",
    "password": "field.new_password",
    "repeat": "field.repeat_password",
}


class CsrfRejected(Exception):
    """A POST without the CSRF token of a live session of this browser."""


class _SignInNeeded(Exception):
    """A page for a signed-in officer asked without one (`api.workbench.desk.SignInNeeded` is this)."""

    def __init__(self, expired: bool) -> None:
        super().__init__("sign in")
        self.expired = expired


@dataclass
class FormErrors:
    """Errors of a form by field name (in the form's order), for the summary and the fields."""

    fields: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, message)

    def __bool__(self) -> bool:
        return bool(self.fields)


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields that are text; an unreadable body counts as no fields (then a 403, not a 500)."""
    try:
        form = await request.form()
    except (HTTPException, ValueError):  # a malformed body (Starlette answers 400): the CSRF check refuses it
        return {}
    return {name: value for name, value in form.items() if isinstance(value, str)}


Form = Annotated[dict[str, str], Depends(read_form)]


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(moment))


class Workbench:
    """The pages, over the workbench's stores."""

    def __init__(self, sessions: Sessions, accounts: Accounts, lockout: Lockout, settings: Settings) -> None:
        self.sessions = sessions
        self.accounts = accounts
        self.lockout = lockout
        self.settings = settings
        self.sign_in_service = SignIn(accounts, lockout, sessions)
        self.address_limiter = AuthFailureLimiter(limit=settings.ui_address_failures, window=ADDRESS_WINDOW_SECONDS)

    # -- request context ------------------------------------------------------------------------

    @staticmethod
    def lang(request: Request) -> str:
        return language(request.query_params.get("lang") or request.cookies.get(LANGUAGE_COOKIE))

    def page(
        self, request: Request, template: str, session: Session | None, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        lang = self.lang(request)
        done = request.query_params.get("done")
        response = render(
            template,
            lang=lang,
            status=status,
            path=request.url.path,
            officer=session.officer if session else None,
            csrf_field=CSRF_FIELD,
            csrf_token=session.csrf_token if session else "",
            done=done if done in DONE_MESSAGES else None,
            errors=context.pop("errors", FormErrors()),
            values=context.pop("values", {}),
            **context,
        )
        if "lang" in request.query_params:
            response.set_cookie(LANGUAGE_COOKIE, lang, path=PREFIX, secure=True, httponly=True, samesite="strict")
        return response

    @staticmethod
    def keep(response: Response, session: Session) -> Response:
        """Sets the cookie of ``session`` on ``response``: opaque, this browser's only, sent only to /ui (a
        stored session's id, or an anonymous form's nonce, which signing in then clears)."""
        name = SESSION_COOKIE if session.stored else FORM_COOKIE
        response.set_cookie(name, session.id, path=PREFIX, secure=True, httponly=True, samesite="strict")
        if session.stored and session.officer is not None:
            response.delete_cookie(FORM_COOKIE, path=PREFIX, secure=True, httponly=True, samesite="strict")
        return response

    def session_for_form(self, request: Request) -> tuple[Session, bool]:
        """The browser's live session, else an anonymous one of its form cookie (True: the cookie must be set)."""
        session = self.sessions.resume(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            return session, False
        nonce = request.cookies.get(FORM_COOKIE)
        session = self.sessions.anonymous(nonce)
        return session, session.id != nonce

    def checked(self, request: Request, form: Mapping[str, str]) -> Session:
        """The live session, or the anonymous one of the form cookie, whose CSRF token the form carries;
        `CsrfRejected` otherwise."""
        token = form.get(CSRF_FIELD)
        session = self.sessions.resume(request.cookies.get(SESSION_COOKIE))
        if session is not None and session.csrf_matches(token):
            return session
        nonce = request.cookies.get(FORM_COOKIE)
        anonymous = self.sessions.anonymous(nonce) if nonce else None
        if anonymous is None or anonymous.id != nonce or not anonymous.csrf_matches(token):
            raise CsrfRejected
        return anonymous

    def form_page(self, request: Request, template: str, **context: Any) -> Response:
        session, new = self.session_for_form(request)
        response = self.page(request, template, session, **context)
        return self.keep(response, session) if new else response

    # -- pages ----------------------------------------------------------------------------------

    def router(self) -> APIRouter:
        pages = APIRouter(prefix=PREFIX, include_in_schema=False)
        pages.add_api_route("/", self.about, methods=["GET"])
        pages.add_api_route("/sign-in", self.sign_in_form, methods=["GET"])
        pages.add_api_route("/sign-in", self.sign_in, methods=["POST"])
        pages.add_api_route("/enrol", self.enrol_form, methods=["GET"])
        pages.add_api_route("/enrol", self.enrol, methods=["POST"])
        pages.add_api_route("/home", self.home, methods=["GET"])
        pages.add_api_route("/sign-out", self.sign_out, methods=["POST"])
        pages.add_api_route("/totp", self.totp_form, methods=["GET"])
        pages.add_api_route("/totp", self.totp, methods=["POST"])
        from api.workbench.desk import Desk  # the desk builds on this module's forms

        Desk(self).routes(pages)
        return pages

    def about(self, request: Request) -> Response:
        return self.page(request, "about.html", self.sessions.resume(request.cookies.get(SESSION_COOKIE)))

    def sign_in_form(self, request: Request) -> Response:
        return self.form_page(request, "sign_in.html")

    def sign_in(self, request: Request, form: Form) -> Response:
        session = self.checked(request, form)
        lang = self.lang(request)
        values = {name: form.get(name, "").strip() for name in ("department", "login", "totp")}
        errors = self._required(form, SIGN_IN_REQUIRED, lang)
        if errors:
            return self.page(request, "sign_in.html", session, status=400, errors=errors, values=values)
        address = request.client.host if request.client else None
        wait = self.address_limiter.blocked_for(address)  # before the password is looked at
        if wait:
            return self._address_limited(request, session, values, wait)
        officer = Officer(values["department"], values["login"])
        outcome = self.sign_in_service.attempt(officer, form["password"], values["totp"], replacing=session)
        if isinstance(outcome, Session):
            return self.keep(RedirectResponse(f"{PREFIX}/home", status_code=303), outcome)
        wait = self.address_limiter.record_failure(address)
        if wait:
            return self._address_limited(request, session, values, wait)
        if outcome.locked_until is not None:
            errors.add("password", self._message(lang, "error.locked", until=_utc(outcome.locked_until)))
        else:
            errors.add("password", self._message(lang, "error.sign_in_failed"))
        status = 429 if outcome.locked_until is not None else 401
        return self.page(request, "sign_in.html", session, status=status, errors=errors, values=values)

    def _address_limited(self, request: Request, session: Session, values: dict[str, str], wait: float) -> Response:
        """429: too many failed sign-ins from this client address, whichever logins they named."""
        errors = FormErrors()
        errors.add("password", self._message(self.lang(request), "error.address_limited", seconds=math.ceil(wait)))
        response = self.page(request, "sign_in.html", session, status=429, errors=errors, values=values)
        response.headers["retry-after"] = self.address_limiter.retry_after_header(wait)
        return response

    def enrol_form(self, request: Request) -> Response:
        return self.form_page(request, "enrol.html", min_length=MIN_PASSWORD_LENGTH)

    def enrol(self, request: Request, form: Form) -> Response:
        session = self.checked(request, form)
        lang = self.lang(request)
        values = {name: form.get(name, "").strip() for name in ("department", "login", "enrolment_code")}
        errors = self._required(form, ENROL_REQUIRED, lang)
        if not errors and form["password"] != form["repeat"]:
            errors.add("repeat", self._message(lang, "error.password_mismatch"))
        if not errors:
            officer = Officer(values["department"], values["login"])
            try:
                self.accounts.enrol(officer, values["enrolment_code"], form["password"])
            except PasswordRejected as rejected:
                limits = {"min": MIN_PASSWORD_LENGTH, "max": MAX_PASSWORD_LENGTH}
                errors.add("password", self._message(lang, f"error.password.{rejected.problems[0]}", **limits))
            except EnrolmentRefused:
                errors.add("enrolment_code", self._message(lang, "error.enrolment_refused"))
            else:
                return RedirectResponse(f"{PREFIX}/sign-in?done=enrolled", status_code=303)
        return self.page(
            request, "enrol.html", session, status=400, errors=errors, values=values, min_length=MIN_PASSWORD_LENGTH
        )

    def home(self, request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = self.sessions.resume(cookie)
        if session is None or session.officer is None:
            ended = cookie is not None and session is None  # timed out, signed out elsewhere, or ended
            return RedirectResponse(f"{PREFIX}/sign-in" + ("?done=expired" if ended else ""), status_code=303)
        try:
            roles = sorted(request.app.state.services.platform.department(session.officer.department).roles)
        except DomainError:
            roles = []
        return self.page(
            request,
            "home.html",
            session,
            roles=roles,
            operator_nav=session.officer.department == self.settings.ui_operator_department,
            started=_utc(session.created_at),
            idle_minutes=f"{self.settings.ui_idle_minutes:g}",
            absolute_hours=f"{self.settings.ui_absolute_hours:g}",
        )

    def _signed_in(self, request: Request, session: Session | None = None) -> Session:
        session = session or self.sessions.resume(request.cookies.get(SESSION_COOKIE))
        if session is None or session.officer is None:
            raise CsrfRejected if session is not None else _SignInNeeded(True)
        return session

    def totp_form(self, request: Request) -> Response:
        return self._totp_page(request, None, None)

    def _totp_page(self, request: Request, secret: str | None, errors: FormErrors | None) -> Response:
        """Turning the second factor on: a new secret to put into an authenticator app, proved by a code."""
        session = self._signed_in(request)
        assert session.officer is not None
        secret = secret or new_totp_secret()
        uri = totp_provisioning_uri(secret, session.officer.department, session.officer.login)
        grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
        status = 400 if errors else 200
        return self.page(
            request, "totp.html", session, status=status, secret=secret, grouped=grouped, uri=uri,
            errors=errors or FormErrors(),
        )

    def totp(self, request: Request, form: Form) -> Response:
        session = self._signed_in(request, self.checked(request, form))
        assert session.officer is not None
        secret = form.get("secret", "")
        try:
            if not secret.isalnum() or not 16 <= len(secret) <= 64:
                raise TotpRejected("no secret of this page")
            self.accounts.enable_totp(session.officer, secret, form.get("totp", ""))
        except TotpRejected:
            errors = FormErrors()
            errors.add("totp", self._message(self.lang(request), "error.totp_rejected"))
            return self._totp_page(request, secret if secret.isalnum() else None, errors)
        return RedirectResponse(f"{PREFIX}/home?done=totp_on", status_code=303)

    def sign_out(self, request: Request, form: Form) -> Response:
        session = self.checked(request, form)
        self.sessions.end(session)
        response = RedirectResponse(f"{PREFIX}/sign-in?done=signed_out", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=True, httponly=True, samesite="strict")
        return response

    # -- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _message(lang: str, key: str, **fields: object) -> str:
        return translator(lang)(key, **fields)

    def _required(self, form: Mapping[str, str], labels: Mapping[str, str], lang: str) -> FormErrors:
        """An error for each field of ``labels`` (name → its label's message key) left empty."""
        errors = FormErrors()
        for name, label in labels.items():
            if not form.get(name, "").strip():
                errors.add(name, self._message(lang, "error.required", field=self._message(lang, label)))
        return errors

    def csrf_rejected(self, request: Request, error: Exception) -> Response:
        return self.page(request, "csrf.html", None, status=403)

    @staticmethod
    def sign_in_needed(request: Request, error: Exception) -> Response:
        """A page that needs a signed-in officer, asked without one (or after its session ended)."""
        return RedirectResponse(f"{PREFIX}/sign-in?done=expired", status_code=303)
