"""The ledger as a C2SP transparency log (API.md §15): its latest checkpoint note and its verifier key."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import ServicesDep
from api.problems import Problem

router = APIRouter(prefix="/v1/log", tags=["transparency log"])
NOTE_MEDIA_TYPE = "text/plain; charset=utf-8"


@router.get("/checkpoint", response_class=Response, responses={200: {"content": {NOTE_MEDIA_TYPE: {}}}, 404: {}})
def checkpoint(services: ServicesDep) -> Response:
    """The latest signed checkpoint as a C2SP ``tlog-checkpoint`` note by the ledger key, followed by the
    witnesses' cosignature lines; the same tree size and root as the latest JWS checkpoint. No authentication."""
    note = services.views.checkpoint_note()
    if note is None:
        raise Problem("not_found", "no checkpoint has been signed yet")
    return Response(note, media_type=NOTE_MEDIA_TYPE)


@router.get("/vkey", response_class=Response, responses={200: {"content": {NOTE_MEDIA_TYPE: {}}}})
def vkey(services: ServicesDep) -> Response:
    """The ledger's note verifier key ``<origin>+<hex key id>+<base64(0x01 ‖ public key)>``, with a newline.
    No authentication."""
    return Response(services.views.note_signer.vkey + "\n", media_type=NOTE_MEDIA_TYPE)
