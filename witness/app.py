"""The witness's HTTP interface (C2SP tlog-witness): ``POST /add-checkpoint`` and the monitoring read
``GET /<lowercase hex SHA-256 of the origin>/checkpoint``, both plain text.

Bodies over `MAX_BODY_BYTES` are refused with 413 before they are read whole; the work itself (SQLite and
signing) runs in Starlette's thread pool.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from witness.core import SIZE_CONTENT_TYPE, Conflict, Witness, WitnessError

MAX_BODY_BYTES = 256 * 1024
"""Room for 63 proof lines and a checkpoint with MAX_SIGNATURES signature lines, post-quantum ones included."""

_ORIGIN_HASH = re.compile(r"[0-9a-f]{64}", re.ASCII)


class _TooLarge(Exception):
    pass


def create_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _bounded_body(request)
        except _TooLarge:
            return _text(f"the body exceeds {MAX_BODY_BYTES} bytes", 413)
        try:
            cosignatures = await run_in_threadpool(witness.add_checkpoint, body)
        except Conflict as conflict:
            # exactly this type, without the charset Starlette adds to text/*: clients compare it whole
            return Response(f"{conflict.latest_size}\n", 409, headers={"content-type": SIZE_CONTENT_TYPE})
        except WitnessError as error:
            return _text(str(error), error.status)
        return PlainTextResponse(cosignatures)

    async def checkpoint(request: Request) -> Response:
        origin_hash = request.path_params["origin_hash"]
        note = await run_in_threadpool(witness.latest, origin_hash) if _ORIGIN_HASH.fullmatch(origin_hash) else None
        if note is None:
            return _text("this witness has cosigned no checkpoint of that log", 404)
        return PlainTextResponse(note)

    return Starlette(
        routes=[
            Route("/add-checkpoint", add_checkpoint, methods=["POST"]),
            Route("/{origin_hash}/checkpoint", checkpoint, methods=["GET"]),
        ]
    )


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


def _text(message: str, status: int) -> Response:
    return PlainTextResponse(message.rstrip("\n") + "\n", status)
