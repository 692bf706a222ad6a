"""Command answers: the body, and the position of the last event the command recorded."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from api.bootstrap import Services


def _answer(services: Services, document: Any, position: int, status: int) -> JSONResponse:
    services.views.nudge()
    services.webhooks.nudge()  # the command's outbox rows are committed: a round now, not at the next poll
    return JSONResponse(document, status_code=status, headers={"X-Event-Position": str(position)})


def created(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 201)


def ok(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 200)
