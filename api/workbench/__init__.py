"""The web workbench under /ui (API.md §14): server-rendered pages for officers, signed in per officer.

`mount` adds it to the application: its pages, its stores (tables ``ui_sessions``, ``ui_accounts`` and
``ui_sign_in_failures`` in the views' database) and the 403 page of a refused CSRF token.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.settings import Settings
from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.desk import SignInNeeded
from api.workbench.lockout import Lockout
from api.workbench.pages import CsrfRejected, Workbench
from api.workbench.sessions import Sessions
from store.database import Database


def build(database: Database, settings: Settings, totp_key: bytes | None = None) -> Workbench:
    """The workbench over ``database`` with the ``NOCERT_UI_*`` settings; ``totp_key`` encrypts TOTP secrets."""
    return Workbench(
        Sessions(database, idle=settings.ui_idle_minutes * 60, absolute=settings.ui_absolute_hours * 3600),
        Accounts(
            database, Passwords(), enrolment_seconds=settings.ui_enrolment_hours * 3600, totp_key=totp_key
        ),
        Lockout(database, limit=settings.ui_lockout_failures, duration=settings.ui_lockout_minutes * 60),
        settings,
    )


def mount(app: FastAPI, workbench: Workbench) -> None:
    """Serves ``workbench`` under /ui; it is ``app.state.workbench`` for whoever records officers."""
    app.state.workbench = workbench
    app.include_router(workbench.router())
    app.add_exception_handler(CsrfRejected, workbench.csrf_rejected)
    app.add_exception_handler(SignInNeeded, workbench.sign_in_needed)
