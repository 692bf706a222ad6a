"""The web workbench under /ui (API.md §14): server-rendered pages for officers, signed in per officer.

`mount` adds it to the application: its pages, its stores (tables ``ui_sessions``, ``ui_accounts`` and
``ui_sign_in_failures`` in the views' database) and the 403 page of a refused CSRF token.
"""

from __future__ import annotations

from fastapi import FastAPI

from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.lockout import Lockout
from api.workbench.pages import CsrfRejected, Workbench
from api.workbench.sessions import Sessions
from api.workbench.settings import WorkbenchSettings
from projections.database import Database


def build(database: Database, settings: WorkbenchSettings | None = None) -> Workbench:
    """The workbench over ``database``, with settings from the environment unless given."""
    settings = settings or WorkbenchSettings()
    return Workbench(
        Sessions(database, idle=settings.idle_minutes * 60, absolute=settings.absolute_hours * 3600),
        Accounts(database, Passwords()),
        Lockout(database, limit=settings.lockout_failures, duration=settings.lockout_minutes * 60),
        settings,
    )


def mount(app: FastAPI, workbench: Workbench) -> None:
    """Serves ``workbench`` under /ui; it is ``app.state.workbench`` for whoever records officers."""
    app.state.workbench = workbench
    app.include_router(workbench.router())
    app.add_exception_handler(CsrfRejected, workbench.csrf_rejected)
