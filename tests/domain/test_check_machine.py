"""The whole status machine of a check (API.md §4), driven through the Platform's commands.

The expected outcome of every (status, command, actor) is derived here from the contract's diagram,
copied verbatim below, never from domain.check.TRANSITIONS.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest

from api.settings import parse_database_url, store_env
from domain.errors import DomainError
from domain.platform import Platform
from domain.proof import proof_id_of
from projections.checks import check_document
from tests.domain.fakes import FakeClaims, FakeSealer
from tests.domain.world import (
    APPROVER,
    AUDITOR,
    CITY_POLICE,
    GULOU_CIVIL,
    GULOU_POLICE,
    HOUSEHOLD,
    NO_RECORD,
    OTHER_APPROVER,
    PROVINCE_POLICE,
    XIAMEN_POLICE,
    build_province,
    new_check_id,
    raise_check,
)

# API.md §4, verbatim.
CONTRACT_DIAGRAM = """
raised --accept--> accepted --request-info--> info_requested --supply-info--> accepted
raised|accepted --forward--> raised (addressed to the new issuer, new due time)
raised|accepted --reply--> replied        raised|accepted|info_requested --decline--> declined
raised|accepted|info_requested --withdraw--> withdrawn
replied|declined|raised|accepted|info_requested --close--> closed
"""
STATUSES = ("raised", "accepted", "info_requested", "replied", "declined", "withdrawn", "closed")


def parse_diagram(text: str) -> dict[str, tuple[frozenset[str], str]]:
    """command -> (statuses it may follow, status it leads to)."""
    table: dict[str, tuple[set[str], str]] = {}
    for sources, command, target in re.findall(r"([a-z_|]+) --([a-z-]+)--> (?=([a-z_]+))", text):
        allowed, previous_target = table.setdefault(command, (set(), target))
        assert previous_target == target
        allowed.update(sources.split("|"))
    return {command: (frozenset(allowed), target) for command, (allowed, target) in table.items()}


DIAGRAM = parse_diagram(CONTRACT_DIAGRAM)

# Who may give each command (API.md §4, "Commands"): the addressed (current) issuer or the approver;
# a proof is revoked by the issuer that sealed it (§5).
PARTY = {
    "accept": "issuer",
    "request-info": "issuer",
    "supply-info": "approver",
    "forward": "issuer",
    "reply": "issuer",
    "decline": "issuer",
    "withdraw": "approver",
    "close": "approver",
}


def test_the_diagram_is_read_completely():
    assert set(DIAGRAM) == set(PARTY)
    assert DIAGRAM["accept"] == (frozenset({"raised"}), "accepted")
    assert DIAGRAM["close"][0] == frozenset({"replied", "declined", "raised", "accepted", "info_requested"})
    terminal = {status for status in STATUSES if not any(status in allowed for allowed, _ in DIAGRAM.values())}
    assert terminal == {"withdrawn", "closed"}


# Each check is first forwarded from GULOU_POLICE to CITY_POLICE, so that every status has a former issuer.
FORMER, ISSUER, NEXT_ISSUER = GULOU_POLICE, CITY_POLICE, XIAMEN_POLICE
ACTORS = {"approver": APPROVER, "issuer": ISSUER, "former_issuer": FORMER, "unrelated": OTHER_APPROVER}


def command(app: Platform, check_id: UUID, name: str, actor: str) -> tuple[Any, int]:
    if name == "accept":
        return app.accept(check_id, actor)
    if name == "request-info":
        return app.request_info(check_id, actor, "请提供申请人曾用名")
    if name == "supply-info":
        return app.supply_info(check_id, actor, "曾用名：林某")
    if name == "forward":
        return app.forward(check_id, actor, NEXT_ISSUER, "户籍在厦门")
    if name == "reply":
        return app.reply(check_id, actor, "confirmed", {"household": "福州市鼓楼区"}, 90)
    if name == "reply-not-confirmed":
        return app.reply(check_id, actor, "not_confirmed", {}, 90)
    if name == "decline":
        return app.decline(check_id, actor, "no_record", "查无此人")
    if name == "withdraw":
        return app.withdraw(check_id, actor, "申请人撤回申请")
    if name.startswith("close:"):
        return app.close_check(check_id, actor, name.removeprefix("close:"))
    if name == "revoke-proof":
        return app.revoke_proof(proof_id_of(check_id), actor, "误出具")
    raise AssertionError(name)


# Scenario -> (steps after the forward, each by its rightful party; the status reached; the proof held).
SCENARIOS: dict[str, tuple[list[str], str, str | None]] = {
    "raised": ([], "raised", None),
    "accepted": (["accept"], "accepted", None),
    "info_requested": (["accept", "request-info"], "info_requested", None),
    "accepted_after_info": (["accept", "request-info", "supply-info"], "accepted", None),
    "replied": (["reply"], "replied", "confirmed"),
    "replied_not_confirmed": (["reply-not-confirmed"], "replied", "not_confirmed"),
    "replied_proof_revoked": (["accept", "reply", "revoke-proof"], "replied", "revoked"),
    "declined": (["decline"], "declined", None),
    "withdrawn": (["withdraw"], "withdrawn", None),
    "closed": (["close:applicant_submitted"], "closed", None),
    "closed_exempted": (["reply", "close:exempted"], "closed", "confirmed"),
}
STEP_PARTY = {
    "reply-not-confirmed": "issuer",
    "revoke-proof": "issuer",
    **PARTY,
    **{f"close:{outcome}": "approver" for outcome in ("exempted", "commitment", "applicant_submitted")},
}

COMMANDS = [
    "accept",
    "request-info",
    "supply-info",
    "forward",
    "reply",
    "decline",
    "withdraw",
    "close:exempted",
    "close:commitment",
    "close:applicant_submitted",
    "revoke-proof",
]


def expected(scenario: str, name: str, actor_role: str) -> tuple[str, str | None]:
    """('ok', status after) or ('error', code), from the contract alone."""
    _, status, proof = SCENARIOS[scenario]
    if name == "revoke-proof":
        # §5: the issuer that sealed the proof (here the current issuer) revokes it; without a proof the
        # proof id names nothing; a revoked proof cannot be revoked again.
        if proof is None:
            return "error", "not_found"
        if actor_role != "issuer":
            return "error", "forbidden"
        if proof == "revoked":
            return "error", "invalid_transition"
        return "ok", status
    diagram_name = name.split(":")[0]
    allowed, target = DIAGRAM[diagram_name]
    if actor_role != PARTY[diagram_name]:
        return "error", "forbidden"  # 403 comes before 409
    if status not in allowed:
        return "error", "invalid_transition"
    if name == "close:exempted" and not (status == "replied" and proof == "confirmed"):
        return "error", "invalid_transition"
    # close:commitment: the category HOUSEHOLD allows the commitment mode.
    return "ok", target


@pytest.fixture(scope="module")
def province() -> Platform:
    """One in-memory platform for the whole table: each case raises a check of its own."""
    app = Platform(store_env(parse_database_url("memory://")), sealer=FakeSealer(), claims=FakeClaims())
    build_province(app)
    yield app
    app.close()


def reach(app: Platform, scenario: str) -> UUID:
    check_id = new_check_id(app, issuer=FORMER)
    app.forward(check_id, FORMER, ISSUER, "属市局管辖")
    for step in SCENARIOS[scenario][0]:
        command(app, check_id, step, ACTORS[STEP_PARTY[step]])
    return check_id


def last_position(app: Platform) -> int:
    return app.recorder.max_notification_id() or 0


@pytest.mark.parametrize("actor_role", list(ACTORS))
@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_status_machine(province, scenario, name, actor_role):
    app = province
    check_id = reach(app, scenario)
    before = app.check(check_id)
    assert before.status == SCENARIOS[scenario][1]
    assert before.issuer == ISSUER and before.forwarded_from == [FORMER]
    position_before = last_position(app)
    outcome, detail = expected(scenario, name, actor_role)

    if outcome == "ok":
        check, position = command(app, check_id, name, ACTORS[actor_role])
        after = app.check(check_id)
        assert after.status == detail == check.status
        assert after.version == before.version + 1
        assert position == last_position(app) > position_before
        if name == "forward":
            assert after.issuer == NEXT_ISSUER and after.forwarded_from == [FORMER, ISSUER]
        if name.startswith("close:"):
            assert after.outcome == name.removeprefix("close:") and after.closed_at is not None
        if name == "revoke-proof":
            assert after.proof is not None and after.proof.status == "revoked"
    else:
        with pytest.raises(DomainError) as caught:
            command(app, check_id, name, ACTORS[actor_role])
        assert caught.value.code == detail, caught.value
        after = app.check(check_id)
        assert after.version == before.version and after.status == before.status
        assert last_position(app) == position_before


def test_auditors_and_departments_without_a_part_cannot_command(province):
    app = province
    check_id = reach(app, "raised")
    for actor in (AUDITOR, PROVINCE_POLICE, GULOU_CIVIL, "no-such-department"):
        for name in ("accept", "reply", "decline", "forward", "withdraw", "close:applicant_submitted"):
            with pytest.raises(DomainError) as caught:
                command(app, check_id, name, actor)
            assert caught.value.code == "forbidden"
    assert app.check(check_id).version == 2


# -- close preconditions ------------------------------------------------------------------------


@pytest.fixture
def clocked(make_platform, clock) -> Platform:
    app = make_platform(clock=clock)
    build_province(app)
    return app


def replied_check(app: Platform, valid_days: int = 90, conclusion: str = "confirmed") -> UUID:
    check_id = new_check_id(app)
    app.reply(check_id, GULOU_POLICE, conclusion, {"household": "福州市鼓楼区"}, valid_days)
    return check_id


def refused_close(app: Platform, check_id: UUID, outcome: str) -> None:
    with pytest.raises(DomainError) as caught:
        app.close_check(check_id, APPROVER, outcome)
    assert caught.value.code == "invalid_transition"
    assert app.check(check_id).status != "closed"


def test_exempted_needs_a_proof_that_has_not_expired(clocked, clock):
    app = clocked
    check_id = replied_check(app, valid_days=1)
    proof = app.check(check_id).proof
    assert proof.valid_until == proof.issued_at + timedelta(days=1)
    clock.set(proof.valid_until)  # "the current time is before valid_until": at it, no longer
    refused_close(app, check_id, "exempted")
    clock.set(proof.valid_until - timedelta(microseconds=1))
    check, _ = app.close_check(check_id, APPROVER, "exempted")
    assert check.outcome == "exempted"


def test_an_expired_proof_still_allows_the_other_outcomes(clocked, clock):
    app = clocked
    check_id = replied_check(app, valid_days=1)
    clock.advance(days=2)
    refused_close(app, check_id, "exempted")
    assert app.close_check(check_id, APPROVER, "applicant_submitted")[0].outcome == "applicant_submitted"


def test_exempted_needs_a_proof_that_is_not_revoked(clocked):
    app = clocked
    check_id = replied_check(app)
    app.revoke_proof(proof_id_of(check_id), GULOU_POLICE, "误出具")
    refused_close(app, check_id, "exempted")


def test_exempted_needs_a_confirmed_conclusion(clocked):
    app = clocked
    check_id = replied_check(app, conclusion="not_confirmed")
    refused_close(app, check_id, "exempted")


@pytest.mark.parametrize(
    ("revoked_relative_to_issue", "allowed"),
    [(timedelta(hours=-1), False), (timedelta(0), False), (timedelta(microseconds=1), True), (timedelta(hours=1), True)],
)
def test_exempted_needs_a_key_not_revoked_at_or_before_the_issue(clocked, clock, revoked_relative_to_issue, allowed):
    """§3: proofs signed at or after a key's effective revocation no longer verify; earlier ones do."""
    app = clocked
    check_id = replied_check(app)
    proof = app.check(check_id).proof
    clock.advance(hours=2)
    app.revoke_seal(GULOU_POLICE, proof.kid, "密钥泄露", proof.issued_at + revoked_relative_to_issue)
    if allowed:
        assert app.close_check(check_id, APPROVER, "exempted")[0].outcome == "exempted"
    else:
        refused_close(app, check_id, "exempted")


def test_a_rotated_key_still_makes_valid_proofs(clocked, clock):
    app = clocked
    check_id = replied_check(app)
    app.rotate_seal(GULOU_POLICE)
    clock.advance(hours=1)
    assert app.close_check(check_id, APPROVER, "exempted")[0].outcome == "exempted"


def test_commitment_needs_the_category_to_allow_it(clocked):
    app = clocked
    check_id = new_check_id(app, category=NO_RECORD)
    refused_close(app, check_id, "commitment")
    app.change_category(NO_RECORD, {"modes": ["collaboration", "commitment"]}, None)
    assert app.close_check(check_id, APPROVER, "commitment")[0].outcome == "commitment"


def test_commitment_is_refused_once_the_category_drops_it(clocked):
    app = clocked
    check_id = new_check_id(app, category=HOUSEHOLD)
    app.change_category(HOUSEHOLD, {"modes": ["collaboration"]}, None)
    refused_close(app, check_id, "commitment")


@pytest.mark.parametrize("outcome", ["", "approved", "EXEMPTED", None])
def test_close_outcome_must_be_one_of_the_three(clocked, outcome):
    app = clocked
    check_id = new_check_id(app)
    with pytest.raises(DomainError) as caught:
        app.close_check(check_id, APPROVER, outcome)
    assert caught.value.code == "validation_error"


# -- forwarding ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "no-such-police",  # does not exist
        GULOU_POLICE,  # the current issuer
        APPROVER,  # no issuer role
        AUDITOR,
        GULOU_CIVIL,  # an issuer, but of another kind
    ],
)
def test_forward_needs_another_issuer_of_the_categorys_kind(clocked, target):
    app = clocked
    check_id = new_check_id(app)
    with pytest.raises(DomainError) as caught:
        app.forward(check_id, GULOU_POLICE, target, "不属本局管辖")
    assert caught.value.code == "invalid_issuer"
    assert app.check(check_id).issuer == GULOU_POLICE and app.check(check_id).version == 1


def test_forward_restarts_the_due_time_and_grows_forwarded_from(clocked):
    app = clocked
    check_id = new_check_id(app)
    raised = app.check(check_id)
    assert raised.due_at == raised.created_on + timedelta(hours=24)
    app.accept(check_id, GULOU_POLICE)

    check, _ = app.forward(check_id, GULOU_POLICE, CITY_POLICE, "属市局管辖")
    forwarded = app.check_events(check_id)[-1]
    assert check.status == "raised" and check.issuer == CITY_POLICE
    assert check.due_at == forwarded.timestamp + timedelta(hours=24) > raised.due_at
    assert check.forwarded_from == [GULOU_POLICE]

    check, _ = app.forward(check_id, CITY_POLICE, PROVINCE_POLICE, "属省厅管辖")
    assert check.forwarded_from == [GULOU_POLICE, CITY_POLICE]
    # Back to a former issuer is another issuer too.
    check, _ = app.forward(check_id, PROVINCE_POLICE, GULOU_POLICE, "退回分局")
    assert check.issuer == GULOU_POLICE and check.forwarded_from == [GULOU_POLICE, CITY_POLICE, PROVINCE_POLICE]
    assert check_document(app.check(check_id), check.created_on)["forwarded_from"] == check.forwarded_from


def test_forward_to_an_invalid_issuer_is_a_422_before_a_409(clocked):
    """§1: when several rules fail, 422 (validation) decides before 409 (state)."""
    app = clocked
    check_id = replied_check(app)
    with pytest.raises(DomainError) as caught:
        app.forward(check_id, GULOU_POLICE, "no-such-police", "不属本局管辖")
    assert caught.value.code == "invalid_issuer"
    with pytest.raises(DomainError) as caught:
        app.forward(check_id, GULOU_POLICE, GULOU_POLICE, "不属本局管辖")
    assert caught.value.code == "invalid_issuer"
    with pytest.raises(DomainError) as caught:  # a valid target from a wrong status: 409
        app.forward(check_id, GULOU_POLICE, CITY_POLICE, "不属本局管辖")
    assert caught.value.code == "invalid_transition"
    with pytest.raises(DomainError) as caught:  # the wrong actor: 403 before 422
        app.forward(check_id, CITY_POLICE, "no-such-police", "不属本局管辖")
    assert caught.value.code == "forbidden"


def test_former_issuer_loses_every_command_after_forwarding(clocked):
    app = clocked
    check_id = new_check_id(app)
    app.forward(check_id, GULOU_POLICE, CITY_POLICE, "属市局管辖")
    for name in ("accept", "reply", "decline", "forward"):
        with pytest.raises(DomainError) as caught:
            command(app, check_id, name, GULOU_POLICE)
        assert caught.value.code == "forbidden"
    check = app.check(check_id)
    assert check.is_party(GULOU_POLICE) and not check.sees_personal_data(GULOU_POLICE)
    assert check.sees_personal_data(CITY_POLICE) and check.sees_personal_data(APPROVER)
    assert not check.is_party(OTHER_APPROVER)


# -- the other commands' records and arguments --------------------------------------------------


def test_info_requests_record_question_and_answer(clocked):
    app = clocked
    check_id = new_check_id(app)
    app.accept(check_id, GULOU_POLICE)
    app.request_info(check_id, GULOU_POLICE, "请提供曾用名")
    asked = check_document(app.check(check_id), app.clock())["info_requests"]
    assert asked == [{"question": "请提供曾用名", "answer": None, "asked_at": asked[0]["asked_at"], "answered_at": None}]
    app.supply_info(check_id, APPROVER, "林某")
    app.request_info(check_id, GULOU_POLICE, "请提供出生地")
    requests = check_document(app.check(check_id), app.clock())["info_requests"]
    assert [(r["question"], r["answer"]) for r in requests] == [("请提供曾用名", "林某"), ("请提供出生地", None)]
    assert requests[0]["answered_at"] is not None and requests[1]["answered_at"] is None


def test_reply_seals_a_proof_with_the_current_key(clocked, clock):
    app = clocked
    check_id = new_check_id(app)
    kid = app.department(GULOU_POLICE).current_kid
    check, _ = app.reply(check_id, GULOU_POLICE, "confirmed", {"household": "福州市鼓楼区"}, 30)
    proof = check.proof
    assert proof.id == proof_id_of(check_id) and proof.kid == kid and proof.sealer == GULOU_POLICE
    assert proof.issued_at == clock.now and proof.valid_until == clock.now + timedelta(days=30)
    assert proof.status == "valid" and check.replied_at is not None
    sealed_kid, payload = app.sealer.sealed[-1]
    assert sealed_kid == kid and proof.jws.count(".") == 2
    assert payload["type"] == "nocert.proof.v1" and payload["id"] == str(proof.id)
    assert payload["check_id"] == str(check_id) and payload["conclusion"] == "confirmed"
    assert payload["issuer"]["id"] == GULOU_POLICE and payload["requester"]["id"] == APPROVER
    assert payload["subject"]["id_number"] == check.applicant["id_number"]
    assert app.check_of_proof(proof.id).id == check_id


@pytest.mark.parametrize("valid_days", [0, 3651, -1, 1.5, "90", True, None])
def test_reply_valid_days_is_an_integer_from_1_to_3650(clocked, valid_days):
    app = clocked
    check_id = new_check_id(app)
    with pytest.raises(DomainError) as caught:
        app.reply(check_id, GULOU_POLICE, "confirmed", {}, valid_days)
    assert caught.value.code == "validation_error"
    assert app.check(check_id).status == "raised"


@pytest.mark.parametrize("valid_days", [1, 3650])
def test_reply_valid_days_bounds_are_accepted(clocked, valid_days):
    app = clocked
    check_id = new_check_id(app)
    check, _ = app.reply(check_id, GULOU_POLICE, "not_confirmed", {}, valid_days)
    assert check.proof.valid_until - check.proof.issued_at == timedelta(days=valid_days)


def test_reply_conclusion_and_decline_reason_are_checked(clocked):
    app = clocked
    check_id = new_check_id(app)
    for bad in ("yes", "", None):
        with pytest.raises(DomainError) as caught:
            app.reply(check_id, GULOU_POLICE, bad, {}, 90)
        assert caught.value.code == "validation_error"
        with pytest.raises(DomainError) as caught:
            app.decline(check_id, GULOU_POLICE, bad, "")
        assert caught.value.code == "validation_error"
    for reason in ("no_record", "out_of_jurisdiction", "insufficient_information", "other"):
        other_id = new_check_id(app)
        check, _ = app.decline(other_id, GULOU_POLICE, reason, "说明")
        assert check.declined == {"reason_code": reason, "note": "说明"} and check.replied_at is not None


def test_withdraw_and_close_record_closed_at(clocked):
    app = clocked
    withdrawn, _ = app.withdraw(new_check_id(app), APPROVER, "申请人撤回")
    assert withdrawn.closed_at is not None and withdrawn.replied_at is None and withdrawn.outcome is None
    closed, _ = app.close_check(new_check_id(app), APPROVER, "applicant_submitted")
    assert closed.closed_at is not None and closed.outcome == "applicant_submitted"


def test_overdue_only_while_open_and_unanswered(clocked):
    app = clocked
    open_id = new_check_id(app)
    replied_id = replied_check(app)
    declined_id = new_check_id(app)
    app.decline(declined_id, GULOU_POLICE, "no_record", "")
    info_id = new_check_id(app)
    app.accept(info_id, GULOU_POLICE)
    app.request_info(info_id, GULOU_POLICE, "?")
    due = app.check(open_id).due_at
    assert not app.check(open_id).is_overdue(due)  # "now > due_at"
    assert app.check(open_id).is_overdue(due + timedelta(microseconds=1))
    later = due + timedelta(days=1)
    assert check_document(app.check(info_id), later)["overdue"] is True
    assert check_document(app.check(replied_id), later)["overdue"] is False
    assert check_document(app.check(declined_id), later)["overdue"] is False


def test_unknown_check_is_not_found(clocked):
    app = clocked
    from uuid import uuid4

    for call in (
        lambda: app.accept(uuid4(), GULOU_POLICE),
        lambda: app.check(uuid4()),
        lambda: app.check(app.department(GULOU_POLICE).id),  # another kind of stream
        lambda: app.revoke_proof(uuid4(), GULOU_POLICE, "x"),
    ):
        with pytest.raises(DomainError) as caught:
            call()
        assert caught.value.code == "not_found"


def test_raise_check_is_the_approvers_own(clocked):
    app = clocked
    check, _ = raise_check(app)
    assert check.approver == APPROVER and check.status == "raised" and check.version == 1
