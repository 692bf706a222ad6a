"""Command answers: the body, and the position of the last event the command recorded."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse, Response

from api.bootstrap import Services


def _answer(services: Services, document: Any, position: int, status: int) -> JSONResponse:
    services.views.nudge()
    return JSONResponse(document, status_code=status, headers={"X-Event-Position": str(position)})


def created(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 201)


def ok(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 200)


def no_content(services: Services, position: int) -> Response:
    """A command with nothing to answer (204): only the position of its event."""
    services.views.nudge()
    return Response(status_code=204, headers={"X-Event-Position": str(position)})
