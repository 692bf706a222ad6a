"""Property: after any sequence of commands (erasures of applicants included, API.md §14), every view equals
a brute-force recount from the event store and the aggregates (app.check(id) for every check), and a rebuild
gives the same tables."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.errors import DomainError
from domain.identifiers import make_id_number
from domain.proof import proof_id_of
from domain.timefmt import utcnow
from signing import merkle
from tests.domain.world import (
    APPLICANT_ID,
    APPROVER,
    CITY_POLICE,
    GULOU_CIVIL,
    GULOU_POLICE,
    HOUSEHOLD,
    KINSHIP,
    NO_RECORD,
    OTHER_APPROVER,
    OTHER_ID,
    PROVINCE_POLICE,
    XIAMEN_POLICE,
    build_province,
    raise_check,
)
from tests.projections import recount
from tests.projections.conftest import build_stack
from tests.projections.test_follower import assert_views_match_the_log

FAST = "fast-proof"
APPROVERS = (APPROVER, OTHER_APPROVER, GULOU_CIVIL)
POLICE = (GULOU_POLICE, CITY_POLICE, PROVINCE_POLICE, XIAMEN_POLICE)
CATEGORIES = (HOUSEHOLD, NO_RECORD, FAST, KINSHIP)
ISSUERS = (*POLICE, GULOU_CIVIL)
KINDS = (  # raise weighs more, so that an example holds many checks
    "raise",
    "raise",
    "raise",
    "raise",
    "accept",
    "accept",
    "request_info",
    "supply_info",
    "forward",
    "reply",
    "decline",
    "withdraw",
    "close",
    "revoke_proof",
    "category",
    "sync",
    "erase",
)
# The applicants (all registered in Gulou, so that routing is the same for each).
PEOPLE = (APPLICANT_ID, make_id_number("35010219800303111"), make_id_number("35010219700404222"))

command = st.tuples(st.sampled_from(KINDS), st.integers(0, 1000), st.integers(0, 1000))


def run(app: Any, views: Any, checks: list[Any], kind: str, a: int, b: int) -> None:
    if kind == "raise":
        approver = APPROVERS[a % len(APPROVERS)]
        category = CATEGORIES[b % len(CATEGORIES)]
        if category == KINSHIP:
            checks.append(
                raise_check(
                    app,
                    approver=approver,
                    category=KINSHIP,
                    issuer=GULOU_CIVIL,
                    claims={"relation": "spouse", "other_id_number": OTHER_ID},
                    id_number=PEOPLE[b % len(PEOPLE)],
                )[0].id
            )
        else:
            issuer = (None, *POLICE)[b % (len(POLICE) + 1)]
            person = PEOPLE[(a + b) % len(PEOPLE)]
            checks.append(raise_check(app, approver=approver, category=category, issuer=issuer, id_number=person)[0].id)
        return
    if kind == "erase":
        person = PEOPLE[a % len(PEOPLE)]
        theirs = [check_id for check_id in checks if app.check(check_id).applicant.get("id_number") == person]
        views.personal.keys.erase(views.personal.subject_of(person))
        app.erase_subject(theirs, "@admin", f"erasure-{a}")
        return
    if kind == "sync":
        views.wait_for(app.recorder.max_notification_id(), 10)
        return
    if kind == "category":
        code = CATEGORIES[a % len(CATEGORIES)]
        if b % 3 == 0:
            app.change_category(code, {}, "retired" if app.category(code).status == "active" else "active")
        elif b % 3 == 1:
            modes = app.category(code).modes
            app.change_category(code, {"modes": ["collaboration"] if "commitment" in modes else ["collaboration", "commitment"]}, None)
        else:
            app.change_category(code, {"name": f"名称{a % 7}"}, None)
        return
    if not checks:
        return
    # Mostly one of the last few checks, so that lifecycles go deep; sometimes any.
    recent = checks[-(1 + a % min(len(checks), 3))]
    check = app.check(recent if a % 4 else checks[a % len(checks)])
    if kind == "accept":
        app.accept(check.id, check.issuer)
    elif kind == "request_info":
        app.request_info(check.id, check.issuer, f"问题{b}")
    elif kind == "supply_info":
        app.supply_info(check.id, check.approver, f"回答{b}")
    elif kind == "forward":
        app.forward(check.id, check.issuer, ISSUERS[b % len(ISSUERS)], "转办")
    elif kind == "reply":
        app.reply(check.id, check.issuer, ("confirmed", "not_confirmed")[b % 2], {"n": b}, 1 + b % 90)
    elif kind == "decline":
        app.decline(check.id, check.issuer, ("no_record", "other")[b % 2], "")
    elif kind == "withdraw":
        app.withdraw(check.id, check.approver, "撤回")
    elif kind == "close":
        app.close_check(check.id, check.approver, ("exempted", "commitment", "applicant_submitted")[b % 3])
    elif kind == "revoke_proof":
        sealer = check.proof.sealer if check.proof else check.issuer
        app.revoke_proof(proof_id_of(check.id), sealer, "误出具")


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(commands=st.lists(command, min_size=20, max_size=60), batch_size=st.sampled_from([1, 3, 8, 500]))
def test_every_view_equals_a_recount(commands: list[tuple[str, int, int]], batch_size: int, tmp_path_factory, ledger_keys) -> None:
    url = f"sqlite:///{tmp_path_factory.mktemp('property')}/nocert.db"
    now = utcnow() + timedelta(minutes=10)  # fast-proof checks (1.08 s) are past due, the others not
    stack = build_stack(url, ledger_keys.signer, key_dir=ledger_keys.key_dir, checkpoint_every=7, clock=lambda: now, batch_size=batch_size)
    try:
        app = stack.app
        build_province(app)
        app.create_category(FAST, "加急证明", "police", ["collaboration"], 0.0003, None)
        checks: list[Any] = []
        for kind, a, b in commands:
            try:
                run(app, stack.views, checks, kind, a, b)
            except DomainError:
                pass  # a command the state machine refuses records nothing
        stack.sync()

        # lists, inbox and coverage, against the aggregates
        views = stack.views
        aggregates = recount.all_checks(app, stack.log)
        everything = sorted(
            (recount.list_item(c, now) for c in aggregates), key=lambda i: (i["raised_at"], i["id"]), reverse=True
        )
        assert views.list_checks(limit=500)[0] == everything
        for approver in APPROVERS:
            assert views.list_checks(approver=approver, limit=500)[0] == [i for i in everything if i["approver"] == approver]
        for issuer in ISSUERS:
            inbox = sorted(
                (i for i in everything if i["issuer"] == issuer and i["status"] in ("raised", "accepted", "info_requested")),
                key=lambda i: (i["due_at"], i["id"]),
            )
            assert views.inbox(issuer, limit=500)[0] == inbox
        assert [i["id"] for i in views.list_checks(overdue=True, limit=500)[0]] == [i["id"] for i in everything if i["overdue"]]
        for category in (None, HOUSEHOLD, FAST):
            for region in (None, "350100", "350200"):
                got = views.coverage(category=category, region=region)
                assert got["as_of_position"] == stack.head()
                del got["as_of_position"]
                assert recount.json_equal(got, recount.coverage(app, stack.log, now, category=category, region=region, checks=aggregates))
        assert_views_match_the_log(stack)
        for person in PEOPLE:  # the access log: exactly the person's checks not erased, newest first
            theirs = [i["id"] for i in everything if i["id"] in {str(c.id) for c in aggregates if c.applicant.get("id_number") == person}]
            assert [i["check_id"] for i in views.accesses(views.personal.subject_of(person), limit=500)[0]] == theirs

        # checkpoints: every checkpoint_every leaves (or by time: the clock says leaves are 10 minutes old)
        hashes = [recount.leaf_hash(n) for n in recount.notifications(stack.log)]
        checkpoints = [cp for n in range(1, len(hashes) + 1) if (cp := views.checkpoint(n))]
        assert checkpoints
        for cp in checkpoints:
            assert cp["root_hash"] == recount.merkle_root(hashes[: cp["tree_size"]]).hex()
        sizes = [cp["tree_size"] for cp in checkpoints]
        assert all(b - a <= 7 for a, b in zip([0, *sizes], sizes, strict=False))
        last = len(hashes) - 1
        proof = views.inclusion_proof(last, len(hashes))
        assert merkle.verify_inclusion(
            last, len(hashes), hashes[last], [bytes.fromhex(p) for p in proof["path"]], recount.merkle_root(hashes)
        )

        # a rebuild gives the same tables (once the follower has signed the checkpoint of the tail, which
        # it does by time, asynchronously: not a rebuild's difference)
        stack.views.wait_for(stack.head(), 10)
        for _ in range(400):
            if (latest := views.latest_checkpoint()) is not None and latest["tree_size"] == len(hashes):
                break
            time.sleep(0.025)
        live = recount.dump(stack.database)
        views.rebuild()
        assert recount.dump(stack.database) == live
    finally:
        stack.close()
