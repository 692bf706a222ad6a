"""The commands of a check's page: each form's API request model, the role it needs, how its fields become
that model's body, and the Platform command it runs, as the API's handler runs it (with the officer), so
that a command posted from the workbench and one sent to /v1 take the same code path (API.md §4, §13)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from api import schemas
from api.bootstrap import Services
from api.principal import Principal
from api.problems import Problem

#: Each command's form: the API request model it is validated by, the role it needs, and how the
#: form's fields become that model's body.
COMMANDS: dict[str, tuple[type[BaseModel], str, Callable[[Mapping[str, str]], dict[str, Any]]]] = {
    "accept": (schemas.Empty, "issuer", lambda f: {}),
    "request-info": (schemas.InfoRequest, "issuer", lambda f: {"question": f.get("question", "")}),
    "supply-info": (schemas.InfoSupply, "approver", lambda f: {"answer": f.get("answer", "")}),
    "forward": (schemas.Forward, "issuer", lambda f: {"to": f.get("to", ""), "reason": f.get("reason", "")}),
    "reply": (
        schemas.Reply,
        "issuer",
        lambda f: {
            "conclusion": f.get("conclusion", ""),
            "statements": {"remark": f["remark"]} if f.get("remark", "").strip() else {},
            "valid_days": int(f["valid_days"]) if f.get("valid_days", "").isdigit() else f.get("valid_days") or 90,
        },
    ),
    "decline": (schemas.Decline, "issuer", lambda f: {"reason_code": f.get("reason_code", ""), "note": f.get("note", "")}),
    "withdraw": (schemas.Withdraw, "approver", lambda f: {"reason": f.get("reason", "")}),
    "close": (schemas.Close, "approver", lambda f: {"outcome": f.get("outcome", "")}),
    "urge": (schemas.Urge, "approver", lambda f: {"note": f.get("note", "")}),
    "revoke-proof": (schemas.ProofRevocation, "issuer", lambda f: {"reason": f.get("reason", "")}),
}


def run(services: Services, principal: Principal, check_id: UUID, command: str, body: Any) -> None:
    """The Platform command of ``command``, as the API's handler calls it (with the officer)."""
    platform, actor, officer = services.platform, principal.id, principal.officer
    if command == "accept":
        platform.accept(check_id, actor, officer)
    elif command == "request-info":
        platform.request_info(check_id, actor, body.question, officer)
    elif command == "supply-info":
        platform.supply_info(check_id, actor, body.answer, officer)
    elif command == "forward":
        platform.forward(check_id, actor, body.to, body.reason, officer)
    elif command == "reply":
        platform.reply(check_id, actor, body.conclusion, body.statements, body.valid_days, officer)
    elif command == "decline":
        platform.decline(check_id, actor, body.reason_code, body.note, officer)
    elif command == "withdraw":
        platform.withdraw(check_id, actor, body.reason, officer)
    elif command == "close":
        platform.close_check(check_id, actor, body.outcome, officer)
    elif command == "urge":
        platform.urge(check_id, actor, body.note, officer)  # the API's urge: the escalation's one command
    elif command == "revoke-proof":
        check = platform.check(check_id)
        if check.proof is None:
            raise Problem("invalid_transition", "the check has no proof")
        platform.revoke_proof(check.proof.id, actor, body.reason, officer)
    services.views.nudge()
