"""The platform root certificate: the one thing an offline verifier needs (API.md §5)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from api.deps import ServicesDep
from signing.certificates import to_pem

router = APIRouter(prefix="/v1/trust", tags=["trust"])


@router.get("/root", response_class=Response, responses={200: {"content": {"application/x-pem-file": {}}}})
def root_certificate(services: ServicesDep) -> Response:
    """The self-signed Ed25519 root CA, PEM. No authentication."""
    return Response(to_pem(services.keystore.root()[1]), media_type="application/x-pem-file")
