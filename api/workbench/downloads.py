"""The files a check's page offers: its proof's compact JWS and its evidence bundle (docs/evidence-bundle.md).

Both are for whoever the API lets read the check (`api.routers.checks.visible_check`); the proof only for
those who see it (`api.access.sees_proof_jws`), the bundle to every reader but masked (hashes only, no
stored states, no proof) for those who may not see identity numbers (`api.access.sees_full_bundle`), as
``nocert audit export --for`` makes it: the same `audit.export.export_bundle`, verifiable offline with
``nocert audit verify-bundle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.access import sees_full_bundle, sees_proof_jws
from api.problems import Problem
from api.routers.checks import visible_check
from audit.evidence import serialize
from audit.export import ExportError, NotCovered, export_bundle_waiting
from domain.errors import DomainError

if TYPE_CHECKING:
    from api.workbench.desk import Desk

#: How long a download waits for the ledger to sign a checkpoint over the check's last event.
BUNDLE_WAIT_SECONDS = 5.0


class Downloads:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk

    def routes(self, pages: APIRouter) -> None:
        pages.add_api_route("/checks/{check_id}/proof.jws", self.proof, methods=["GET"])
        pages.add_api_route("/checks/{check_id}/evidence.json", self.bundle, methods=["GET"])

    def proof(self, request: Request, check_id: str) -> Response:
        """The proof's compact JWS as a file, for whoever the API shows it to."""
        session, principal = self.desk.signed_in(request)
        services = self.desk.services(request)
        try:
            check = visible_check(services, check_id, principal)
        except (Problem, DomainError) as error:
            return self.desk.refused(request, session, principal, error)
        if check.proof is None or not sees_proof_jws(check, principal):
            return self.desk.refused(request, session, principal, Problem("not_found", "proof not found"))
        headers = {"content-disposition": f'attachment; filename="proof-{check.proof.id}.jws"', "cache-control": "no-store"}
        return Response(check.proof.jws, media_type="application/jose", headers=headers)

    def bundle(self, request: Request, check_id: str) -> Response:
        """The check's evidence bundle as a file: full or masked by who is asking."""
        session, principal = self.desk.signed_in(request)
        services = self.desk.services(request)
        try:
            check = visible_check(services, check_id, principal)
            bundle = export_bundle_waiting(
                services.platform, services.database, services.log, services.keystore.root()[1], check.id,
                services.platform.clock, wait_seconds=BUNDLE_WAIT_SECONDS, poll_seconds=0.25,
                masked=not sees_full_bundle(check, principal), checkpoint_note=services.views.checkpoint_note,
            )
        except (Problem, DomainError) as error:
            return self.desk.refused(request, session, principal, error)
        except ExportError as error:
            lang = self.desk.workbench.lang(request)
            message = self.desk.workbench._message(lang, "check.bundle_pending") if isinstance(error, NotCovered) else str(error)
            return self.desk.render(
                request, "desk_error.html", session, principal, status=503, message=message, detail=str(error)
            )
        headers = {"content-disposition": f'attachment; filename="evidence-{check.id}.json"', "cache-control": "no-store"}
        return Response(serialize(bundle), media_type="application/json", headers=headers)
