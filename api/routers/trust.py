"""The platform root certificate: the one thing an offline verifier needs (API.md §5)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import ServicesDep
from api.trust import seal_revocations
from domain.timefmt import utcnow
from signing import crl
from signing.certificates import to_pem

router = APIRouter(prefix="/v1/trust", tags=["trust"])
PEM = "application/x-pem-file"


@router.get("/root", response_class=Response, responses={200: {"content": {PEM: {}}}})
def root_certificate(request: Request, services: ServicesDep) -> Response:
    """The self-signed Ed25519 root CA, PEM. No authentication. ``application/x-pem-file``, or the same text as
    ``text/plain`` for a client that accepts only that (generated clients read text answers so)."""
    accept = request.headers.get("accept", "")
    media_type = "text/plain" if "text/plain" in accept and PEM not in accept and "*/*" not in accept else PEM
    return Response(to_pem(services.keystore.root()[1]), media_type=media_type)


@router.get("/crl", response_class=Response, responses={200: {"content": {crl.MEDIA_TYPE: {}}}})
def revocation_list(services: ServicesDep) -> Response:
    """The root's CRL (RFC 5280, DER as an HTTP distribution point serves it): every seal certificate revoked
    by now, with its revocation time. No authentication."""
    issued = services.keystore.root_crl(seal_revocations(services.platform), utcnow())
    return Response(crl.to_der(issued), media_type=crl.MEDIA_TYPE)
