"""Command answers: the body, and the position of the last event the command recorded."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.responses import JSONResponse, Response

from api.bootstrap import Services


def _answer(services: Services, document: Any, position: int, status: int) -> JSONResponse:
    services.views.nudge()
    services.webhooks.nudge()  # the command's outbox rows are committed: a round now, not at the next poll
    return JSONResponse(document, status_code=status, headers={"X-Event-Position": str(position)})


def created(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 201)


def ok(services: Services, document: Any, position: int) -> JSONResponse:
    return _answer(services, document, position, 200)


def last_position(services: Services, stream_id: UUID) -> int:
    """The position of the stream's last event: what a command that recorded nothing (nothing changed, or an
    earlier request with its key did it) answers."""
    return max(services.log.stream_positions(stream_id).values())


def no_content(services: Services, position: int) -> Response:
    """A command with nothing to answer (204): only the position of its event."""
    services.views.nudge()
    return Response(status_code=204, headers={"X-Event-Position": str(position)})
