"""The Platform application (API.md §3, §4 and the conventions of §1 and §7): departments, keys,
categories, routing, raising checks, idempotent creation, positions, pinned topics and masking."""

from __future__ import annotations

import math
from datetime import timedelta
from uuid import UUID

import pytest

from api.presenters import category_document
from domain.errors import DomainError
from domain.identifiers import make_id_number
from domain.platform import Platform
from domain.privacy import mask_check, mask_claims
from domain.proof import proof_id_of
from projections.checks import check_document
from tests.domain.world import (
    APPLICANT_ID,
    APPLICANT_NAME,
    APPROVER,
    AUDITOR,
    CITY_POLICE,
    GULOU_CIVIL,
    GULOU_POLICE,
    HOUSEHOLD,
    KINSHIP,
    OTHER_APPROVER,
    OTHER_ID,
    PROVINCE_POLICE,
    XIAMEN_POLICE,
    build_province,
    new_check_id,
    new_uscc,
    raise_check,
)


@pytest.fixture
def app(make_platform, clock) -> Platform:
    platform = make_platform(clock=clock)
    build_province(platform)
    return platform


@pytest.fixture
def empty(make_platform, clock) -> Platform:
    return make_platform(clock=clock)


def error_code(call) -> str:
    with pytest.raises(DomainError) as caught:
        call()
    return caught.value.code


def stored(app: Platform):
    return app.recorder.select_notifications(start=1, limit=1_000_000)


def position(app: Platform) -> int:
    return app.recorder.max_notification_id() or 0


# -- departments --------------------------------------------------------------------------------


@pytest.mark.parametrize("department_id", ["abc", "fz-gulou-police", "0-9", "a" * 64, "---"])
def test_department_ids_of_3_to_64_of_a_z_0_9_dash(empty, department_id):
    department, issued, _ = empty.register_department(department_id, "部门", new_uscc(), ["approver"], "x", "350100")
    assert department.department_id == department_id
    assert empty.department(department_id).department_id == department_id


@pytest.mark.parametrize("department_id", ["ab", "a" * 65, "Abc", "a_b", "a b", "abc\n", "部门部门", "a.b", ""])
def test_other_department_ids_are_refused(empty, department_id):
    assert error_code(lambda: empty.register_department(department_id, "部门", new_uscc(), ["approver"], "x", "350100")) == (
        "validation_error"
    )
    assert position(empty) == 0
    assert error_code(lambda: empty.department(department_id)) == "not_found"


@pytest.mark.parametrize("roles", [[], ["approver", "approver"], ["admin"], ["issuer", "reader"]])
def test_roles_are_distinct_values_of_the_three(empty, roles):
    assert error_code(lambda: empty.register_department("abc", "部门", new_uscc(), roles, "x", "350100")) == (
        "validation_error"
    )
    assert position(empty) == 0


def test_department_uscc_and_region_are_validated(empty):
    assert error_code(lambda: empty.register_department("abc", "部门", "91350100M000100Y44", ["approver"], "x", "350100")) == (
        "invalid_uscc"
    )
    assert error_code(lambda: empty.register_department("abc", "部门", new_uscc(), ["approver"], "x", "3501")) == (
        "validation_error"
    )
    department, _, _ = empty.register_department("abc", "部门", "91350100m000100y43", ["approver"], "x", "350100")
    assert department.uscc == "91350100M000100Y43"


def test_all_roles_at_once_and_a_seal_only_for_issuers(empty):
    everything, _, _ = empty.register_department("all", "全能", new_uscc(), ["approver", "issuer", "auditor"], "police", "350100")
    approver, _, _ = empty.register_department("appr", "审批", new_uscc(), ["approver"], "police", "350100")
    assert everything.roles == ["approver", "issuer", "auditor"]
    assert everything.current_kid is not None and list(everything.seals) == [everything.current_kid]
    assert everything.seals[everything.current_kid].status(empty.clock()) == "active"
    assert approver.current_kid is None and approver.seals == {}
    assert [created[1] for created in empty.sealer.created] == ["all"]


def test_duplicate_department_id_or_uscc_is_a_conflict(app):
    uscc = app.department(CITY_POLICE).uscc
    before = position(app)
    assert error_code(lambda: app.register_department(CITY_POLICE, "又一个", new_uscc(), ["issuer"], "police", "350100")) == (
        "conflict"
    )
    assert error_code(lambda: app.register_department("fz-new", "又一个", uscc, ["issuer"], "police", "350100")) == "conflict"
    assert error_code(lambda: app.register_department("fz-new", "又一个", uscc.lower(), ["approver"], "x", "350100")) == (
        "conflict"
    )
    assert position(app) == before
    assert error_code(lambda: app.department("fz-new")) == "not_found"
    assert app.department(CITY_POLICE).name == "福州市公安局"


def test_api_keys_authenticate_until_revoked(app):
    department, first, _ = app.register_department("fz-tax", "福州市税务局", new_uscc(), ["approver"], "tax", "350100")
    second, _ = app.issue_api_key("fz-tax")
    assert first.api_key != second.api_key and first.api_key_id != second.api_key_id
    assert len(first.api_key) >= 43  # 32 random bytes at least
    assert app.authenticate(first.api_key).department_id == "fz-tax"
    assert app.authenticate(second.api_key).department_id == "fz-tax"

    app.revoke_api_key("fz-tax", first.api_key_id)
    assert app.authenticate(first.api_key) is None
    assert app.authenticate(second.api_key).department_id == "fz-tax"
    assert error_code(lambda: app.revoke_api_key("fz-tax", first.api_key_id)) == "not_found"
    assert error_code(lambda: app.revoke_api_key("fz-tax", "0123456789abcdef")) == "not_found"
    assert error_code(lambda: app.issue_api_key("no-such")) == "not_found"


def test_forged_api_keys_do_not_authenticate(app):
    _, issued, _ = app.register_department("fz-tax", "福州市税务局", new_uscc(), ["approver"], "tax", "350100")
    prefix, department_id, key_id, secret = issued.api_key.split("_", 3)
    forged = [
        "",
        "garbage",
        f"{prefix}_{department_id}_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",
        f"{prefix}_{APPROVER}_{key_id}_{secret}",  # another department's id
        f"{prefix}_{department_id}_0000000000000000_{secret}",
        f"xyz_{department_id}_{key_id}_{secret}",
        f"{prefix}_{department_id}\n_{key_id}_{secret}",
    ]
    for key in forged:
        assert app.authenticate(key) is None, key
    # Only the hash is recorded.
    assert not any(issued.api_key.encode() in n.state or secret.encode() in n.state for n in stored(app))


def test_seal_rotation_retires_the_previous_key(app, clock):
    old_kid = app.department(GULOU_POLICE).current_kid
    seal, rotated_at = app.rotate_seal(GULOU_POLICE)
    department = app.department(GULOU_POLICE)
    assert department.current_kid == seal.kid != old_kid
    assert department.seals[old_kid].status(clock()) == "retired"
    assert department.seals[seal.kid].status(clock()) == "active"
    assert rotated_at == position(app)
    check_id = new_check_id(app)
    assert app.reply(check_id, GULOU_POLICE, "confirmed", {}, 90)[0].proof.kid == seal.kid
    assert error_code(lambda: app.rotate_seal(APPROVER)) == "conflict"
    assert error_code(lambda: app.rotate_seal("no-such")) == "not_found"


def test_revoked_current_key_stops_replies_until_rotated(app, clock):
    kid = app.department(GULOU_POLICE).current_kid
    seal, _ = app.revoke_seal(GULOU_POLICE, kid, "密钥泄露", None)  # effective now
    assert seal.revoked_at == clock() and seal.revocation_reason == "密钥泄露"
    assert seal.status(clock()) == "revoked"
    check_id = new_check_id(app)
    assert error_code(lambda: app.reply(check_id, GULOU_POLICE, "confirmed", {}, 90)) == "no_signing_key"
    assert app.check(check_id).status == "raised"
    # Declining needs no seal.
    assert app.decline(new_check_id(app), GULOU_POLICE, "no_record", "")[0].status == "declined"
    app.rotate_seal(GULOU_POLICE)
    assert app.reply(check_id, GULOU_POLICE, "confirmed", {}, 90)[0].status == "replied"


def test_future_revocation_leaves_the_key_usable_until_then(app, clock):
    kid = app.department(GULOU_POLICE).current_kid
    effective = clock() + timedelta(hours=1)
    seal, _ = app.revoke_seal(GULOU_POLICE, kid, "计划停用", effective)
    assert seal.revoked_at == effective and seal.status(clock()) == "active"
    first = new_check_id(app)
    assert app.reply(first, GULOU_POLICE, "confirmed", {}, 90)[0].proof.kid == kid
    clock.set(effective)
    assert app.department(GULOU_POLICE).seals[kid].status(clock()) == "revoked"
    second = new_check_id(app)
    assert error_code(lambda: app.reply(second, GULOU_POLICE, "confirmed", {}, 90)) == "no_signing_key"
    # The proof sealed before the revocation stays valid.
    assert app.proof_valid(app.check(first), clock())


def test_revoking_keys_is_checked(app, clock):
    old_kid = app.department(GULOU_POLICE).current_kid
    app.rotate_seal(GULOU_POLICE)
    seal, _ = app.revoke_seal(GULOU_POLICE, old_kid, "旧钥停用", None)  # a retired key may be revoked
    assert seal.status(clock()) == "revoked"
    first = seal.revoked_at
    clock.advance(hours=1)
    again, position = app.revoke_seal(GULOU_POLICE, old_kid, "again", None)  # later: changes nothing (#11.7)
    assert again.revoked_at == first and position == 0
    assert error_code(lambda: app.revoke_seal(GULOU_POLICE, "ab" * 32, "none", None)) == "not_found"
    assert error_code(lambda: app.revoke_seal(APPROVER, "ab" * 32, "none", None)) == "conflict"
    # The current key is untouched.
    assert app.reply(new_check_id(app), GULOU_POLICE, "confirmed", {}, 90)[0].status == "replied"


# -- categories ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "modes", [["collaboration", "collaboration"], ["collaboration", "online"], ["Collaboration"], ["cancel"]]
)
def test_modes_are_distinct_values_of_the_four(empty, modes):
    assert error_code(lambda: empty.create_category("c1", "证明", "police", modes, 24, None)) == "validation_error"
    assert position(empty) == 0


def test_every_mode_combination_of_the_four_is_accepted(empty):
    category, _ = empty.create_category("c1", "证明", "police", ["collaboration", "data_sharing", "commitment", "cancelled"], 24, None)
    assert category.modes == ["collaboration", "data_sharing", "commitment", "cancelled"]


@pytest.mark.parametrize("sla_hours", [0, -1, -0.5, math.nan])
def test_sla_hours_must_be_greater_than_zero(empty, sla_hours):
    assert error_code(lambda: empty.create_category("c1", "证明", "police", ["collaboration"], sla_hours, None)) == (
        "validation_error"
    )
    empty.create_category("c1", "证明", "police", ["collaboration"], 1, None)
    assert error_code(lambda: empty.change_category("c1", {"sla_hours": sla_hours}, None)) == "validation_error"
    assert empty.category("c1").sla_hours == 1


def test_claims_schema_must_be_a_json_schema(empty):
    assert error_code(lambda: empty.create_category("c1", "证明", "police", ["collaboration"], 24, {"type": "nonsense"})) == (
        "validation_error"
    )
    assert error_code(
        lambda: empty.create_category("c1", "证明", "police", ["collaboration"], 24, {"properties": {"a": {"minLength": -1}}})
    ) == "validation_error"
    category, _ = empty.create_category("c1", "证明", "police", ["collaboration"], 24, {"type": "object"})
    assert category.claims_schema == {"type": "object"}
    assert error_code(lambda: empty.change_category("c1", {"claims_schema": {"type": 5}}, None)) == "validation_error"


def test_duplicate_category_code_is_a_conflict(app):
    before = position(app)
    assert error_code(lambda: app.create_category(HOUSEHOLD, "户籍证明二", "police", ["collaboration"], 24, None)) == (
        "conflict"
    )
    assert position(app) == before and app.category(HOUSEHOLD).name == "户籍证明"


def test_category_changes_and_status(app):
    category, _ = app.change_category(HOUSEHOLD, {"name": "户口证明", "sla_hours": 12.5, "modes": ["collaboration"]}, None)
    assert category_document(category) == {
        "code": HOUSEHOLD,
        "name": "户口证明",
        "issuer_kind": "police",
        "modes": ["collaboration"],
        "sla_hours": 12.5,
        "claims_schema": None,
        "status": "active",
    }
    assert error_code(lambda: app.change_category(HOUSEHOLD, {"issuer_kind": "civil-affairs"}, None)) == "validation_error"
    assert error_code(lambda: app.change_category(HOUSEHOLD, {"code": "other"}, None)) == "validation_error"
    assert error_code(lambda: app.change_category(HOUSEHOLD, {}, "deleted")) == "validation_error"
    assert error_code(lambda: app.change_category("no-such", {"name": "x"}, None)) == "not_found"

    check, _ = raise_check(app)
    assert check.due_at == check.created_on + timedelta(hours=12.5)

    app.change_category(HOUSEHOLD, {}, "retired")
    assert app.category(HOUSEHOLD).status == "retired"
    assert error_code(lambda: raise_check(app)) == "category_unavailable"
    app.change_category(HOUSEHOLD, {}, "active")
    assert raise_check(app)[0].status == "raised"


def test_new_checks_need_the_collaboration_mode(app):
    app.change_category(HOUSEHOLD, {"modes": ["data_sharing", "commitment"]}, None)
    assert error_code(lambda: raise_check(app)) == "category_unavailable"
    app.change_category(HOUSEHOLD, {"modes": []}, None)
    assert error_code(lambda: raise_check(app)) == "category_unavailable"
    app.change_category(HOUSEHOLD, {"modes": ["commitment", "collaboration"]}, None)
    assert raise_check(app)[0].status == "raised"


def test_an_unknown_category_is_unknown_category(app):
    assert error_code(lambda: raise_check(app, category="no-such-category")) == "unknown_category"
    assert error_code(lambda: raise_check(app, category="")) == "unknown_category"


def test_a_category_change_that_changes_nothing_records_nothing(app):
    before = position(app)
    app.change_category(HOUSEHOLD, {"name": "户籍证明", "sla_hours": 24}, "active")
    assert position(app) == before


# -- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "issuer"),
    [
        ("350102", GULOU_POLICE),  # 350102 beats 3501 and 35
        ("350105", CITY_POLICE),  # 3501 beats 35
        ("350181", CITY_POLICE),
        ("350300", PROVINCE_POLICE),  # 35 only
        ("350203", XIAMEN_POLICE),  # 3502 beats 35
    ],
)
def test_routing_takes_the_longest_region_prefix(app, region, issuer):
    check, _ = raise_check(app, issuer=None, id_number=make_id_number(region + "19900101123"))
    assert check.issuer == issuer


def test_routing_considers_only_issuers_of_the_categorys_kind(app):
    # GULOU_CIVIL is an issuer at 350102 too, but of civil-affairs.
    assert raise_check(app, issuer=None)[0].issuer == GULOU_POLICE
    check, _ = raise_check(app, category="kinship", issuer=None, claims={"relation": "parent", "other_id_number": OTHER_ID})
    assert check.issuer == GULOU_CIVIL
    # An approver-only department at a longer prefix is no candidate.
    app.register_department("fz-gulou-housing", "鼓楼区住建局", new_uscc(), ["approver"], "police", "350102")
    assert raise_check(app, issuer=None)[0].issuer == GULOU_POLICE


def test_no_issuer_covering_the_region_is_no_route(app):
    assert error_code(lambda: raise_check(app, issuer=None, id_number=make_id_number("11010519491231002"))) == "no_route"
    # A civil-affairs applicant from Xiamen: only Gulou has a civil-affairs issuer.
    assert error_code(
        lambda: raise_check(
            app,
            category="kinship",
            issuer=None,
            id_number=make_id_number("35020319900101123"),
            claims={"relation": "parent", "other_id_number": OTHER_ID},
        )
    ) == "no_route"


def test_two_issuers_at_the_same_prefix_length_are_ambiguous(app):
    app.register_department("xm-police-2", "厦门市公安局二", new_uscc(), ["issuer"], "police", "350200")
    assert error_code(lambda: raise_check(app, issuer=None, id_number=make_id_number("35020319900101123"))) == (
        "ambiguous_route"
    )
    # A longer prefix still wins over the tie.
    app.register_department("xm-siming-police", "思明分局", new_uscc(), ["issuer"], "police", "350203")
    assert raise_check(app, issuer=None, id_number=make_id_number("35020319900101123"))[0].issuer == "xm-siming-police"


@pytest.mark.parametrize("issuer", ["no-such-police", APPROVER, AUDITOR, GULOU_CIVIL, "Bad Id"])
def test_a_named_issuer_must_exist_have_the_role_and_the_kind(app, issuer):
    before = position(app)
    assert error_code(lambda: raise_check(app, issuer=issuer)) == "invalid_issuer"
    assert position(app) == before


def test_a_named_issuer_overrides_routing(app):
    assert raise_check(app, issuer=PROVINCE_POLICE)[0].issuer == PROVINCE_POLICE


# -- raising checks -----------------------------------------------------------------------------


def test_raise_check_records_the_request(app):
    check, recorded = raise_check(app, id_number=APPLICANT_ID.lower())
    assert recorded == position(app)
    document = check_document(check, check.created_on)
    assert document["status"] == "raised" and document["version"] == 1
    assert document["approver"] == APPROVER and document["issuer"] == GULOU_POLICE
    assert document["applicant"] == {"name": APPLICANT_NAME, "id_number": APPLICANT_ID.upper()}
    assert document["raised_at"].endswith("Z") and document["due_at"].endswith("Z")
    assert check.due_at - check.created_on == timedelta(hours=24)
    assert document["proof"] is None and document["decline"] is None and document["forwarded_from"] == []
    assert document["info_requests"] == [] and document["outcome"] is None and document["overdue"] is False
    assert UUID(document["id"]) == check.id


def test_due_at_follows_fractional_sla_hours(app):
    app.create_category("quick", "快速证明", "police", ["collaboration"], 0.25, None)
    check, _ = raise_check(app, category="quick")
    assert check.due_at == check.created_on + timedelta(minutes=15)


@pytest.mark.parametrize("id_number", ["11010519491231002Y", "3501021990010112", "35010219900230123X", None])
def test_the_applicants_id_number_is_validated(app, id_number):
    assert error_code(lambda: raise_check(app, id_number=id_number)) == "invalid_id_number"


@pytest.mark.parametrize(
    "claims",
    [{}, {"relation": "cousin", "other_id_number": OTHER_ID}, {"relation": "parent", "other_id_number": "123"}],
)
def test_claims_must_validate_against_the_categorys_schema(app, claims):
    before = position(app)
    assert error_code(lambda: raise_check(app, category=KINSHIP, issuer=GULOU_CIVIL, claims=claims)) == "invalid_claims"
    assert position(app) == before


def test_claims_are_free_without_a_schema(app):
    assert raise_check(app, claims={"anything": [1, 2, {"x": None}]})[0].claims == {"anything": [1, 2, {"x": None}]}


def test_idempotent_creation_returns_the_first_check(app):
    first, first_position = raise_check(app, idempotency_key="req-0001")
    second, second_position = raise_check(app, idempotency_key="req-0001")
    assert second.id == first.id and first_position is not None and second_position is None
    raised = [n for n in stored(app) if n.originator_id == first.id]
    assert [(n.originator_version, n.topic) for n in raised] == [(1, "nocert:check:Raised")]
    # Another key, or the same key of another approver, is another check.
    third, _ = raise_check(app, idempotency_key="req-0002")
    fourth, _ = raise_check(app, approver=GULOU_CIVIL, idempotency_key="req-0001")
    assert len({first.id, third.id, fourth.id}) == 3
    # Without a key every request is a new check.
    assert raise_check(app)[0].id != raise_check(app)[0].id


def test_idempotent_repeat_after_a_change_returns_the_check_as_it_is(app):
    first, _ = raise_check(app, idempotency_key="req-0003")
    app.accept(first.id, GULOU_POLICE)
    again, recorded = raise_check(app, idempotency_key="req-0003")
    assert recorded is None and again.id == first.id and again.status == "accepted"


# -- positions and topics -----------------------------------------------------------------------

PINNED_TOPICS = {
    "nocert:directory:Opened",
    "nocert:directory:Listed",
    "nocert:catalogue:Opened",
    "nocert:catalogue:Listed",
    "nocert:department:Registered",
    "nocert:department:ApiKeyIssued",
    "nocert:department:ApiKeyRevoked",
    "nocert:department:SealRegistered",
    "nocert:department:SealRevoked",
    "nocert:category:Created",
    "nocert:category:Changed",
    "nocert:category:Retired",
    "nocert:category:Reactivated",
    "nocert:check:Raised",
    "nocert:check:Accepted",
    "nocert:check:InfoRequested",
    "nocert:check:InfoSupplied",
    "nocert:check:Forwarded",
    "nocert:check:Replied",
    "nocert:check:Declined",
    "nocert:check:Withdrawn",
    "nocert:check:Closed",
    "nocert:check:ProofRevoked",
}


def full_story(app: Platform) -> list[int]:
    """Every kind of command once; returns the positions the commands answered."""
    positions = []
    for department_id, roles, kind, region in (
        ("fz-approver", ["approver"], "housing", "350100"),
        ("fz-police", ["issuer"], "police", "350100"),
        ("fz-gulou-police", ["issuer"], "police", "350102"),
    ):
        positions.append(app.register_department(department_id, department_id, new_uscc(), roles, kind, region)[2])
    issued, recorded = app.issue_api_key("fz-approver")
    positions += [recorded, app.revoke_api_key("fz-approver", issued.api_key_id)]
    old_kid = app.department("fz-police").current_kid
    positions.append(app.rotate_seal("fz-police")[1])
    positions.append(app.revoke_seal("fz-police", old_kid, "旧钥", None)[1])
    positions.append(app.create_category("hh", "户籍证明", "police", ["collaboration"], 24, None)[1])
    positions.append(app.change_category("hh", {"modes": ["collaboration", "commitment"]}, "retired")[1])
    positions.append(app.change_category("hh", {}, "active")[1])

    def new_check() -> UUID:
        check, recorded = app.raise_check(
            "fz-approver",
            category="hh",
            matter={"code": "m", "name": "事项"},
            applicant={"name": APPLICANT_NAME, "id_number": APPLICANT_ID},
            claims={"other_id_number": OTHER_ID},
            purpose="核验",
            consent={"method": "app", "reference": "r"},
        )
        positions.append(recorded)
        return check.id

    first = new_check()
    positions.append(app.accept(first, "fz-gulou-police")[1])
    positions.append(app.request_info(first, "fz-gulou-police", "?")[1])
    positions.append(app.supply_info(first, "fz-approver", "!")[1])
    positions.append(app.forward(first, "fz-gulou-police", "fz-police", "市局")[1])
    positions.append(app.reply(first, "fz-police", "confirmed", {"a": 1}, 90)[1])
    positions.append(app.close_check(first, "fz-approver", "exempted")[1])
    positions.append(app.revoke_proof(proof_id_of(first), "fz-police", "误")[1])
    second = new_check()
    positions.append(app.decline(second, "fz-gulou-police", "other", "")[1])
    positions.append(app.close_check(second, "fz-approver", "commitment")[1])
    positions.append(app.withdraw(new_check(), "fz-approver", "撤回")[1])
    return positions


def test_every_command_returns_its_increasing_global_position(empty, clock):
    app = empty
    answered: list[int] = []
    original = app._save

    def spy(*aggregates):
        recorded = original(*aggregates)
        answered.append(recorded)
        assert recorded == position(app)  # the last event it recorded
        return recorded

    app._save = spy
    positions = full_story(app)
    assert positions == answered
    assert all(isinstance(p, int) and p > 0 for p in positions)
    assert positions == sorted(set(positions))  # strictly increasing
    assert [n.id for n in stored(app)] == list(range(1, position(app) + 1))


def test_stored_topics_are_the_pinned_names(empty, clock):
    app = empty
    full_story(app)
    topics = [n.topic for n in stored(app)]
    assert set(topics) == PINNED_TOPICS
    # The history of a check names its events as the contract does.
    check_id = next(n.originator_id for n in stored(app) if n.topic == "nocert:check:Raised")
    assert [type(e).__name__ for e in app.check_events(check_id)] == [
        "Raised", "Accepted", "InfoRequested", "InfoSupplied", "Forwarded", "Replied", "Closed", "ProofRevoked",
    ]
    assert all(e.actor for e in app.check_events(check_id))
    assert [e.actor for e in app.check_events(check_id)][:3] == ["fz-approver", "fz-gulou-police", "fz-gulou-police"]


# -- masking ------------------------------------------------------------------------------------


def test_masking_hides_identity_numbers_from_other_readers(app):
    check, _ = raise_check(
        app,
        claims={
            "question": "同一人？",
            "other_id_number": OTHER_ID,
            "parents": [{"name": "林父", "id_number": APPLICANT_ID}],
            "id_number_note": "not masked: the name does not end in id_number",
            "count": 2,
        },
    )
    document = check_document(check, check.created_on)
    masked = mask_check(document)
    assert masked["applicant"] == {"name": APPLICANT_NAME, "id_number": APPLICANT_ID[:6] + "********" + APPLICANT_ID[-4:]}
    assert masked["claims"]["other_id_number"] == OTHER_ID[:6] + "********" + OTHER_ID[-4:]
    assert masked["claims"]["parents"][0] == {"name": "林父", "id_number": APPLICANT_ID[:6] + "********" + APPLICANT_ID[-4:]}
    assert masked["claims"]["id_number_note"] == document["claims"]["id_number_note"]
    assert masked["claims"]["count"] == 2 and masked["claims"]["question"] == "同一人？"
    assert {k: v for k, v in masked.items() if k not in ("applicant", "claims")} == {
        k: v for k, v in document.items() if k not in ("applicant", "claims")
    }
    # The original is untouched.
    assert document["applicant"]["id_number"] == APPLICANT_ID and document["claims"]["other_id_number"] == OTHER_ID
    assert APPLICANT_ID not in repr(masked) and OTHER_ID not in repr(masked)


def test_mask_claims_masks_every_type_under_id_number_names_and_leaves_other_names():
    assert mask_claims(
        {"id_number": None, "x_id_number": 5, "X_ID_Number": [350104197002027817], "a": "11010519491231002X"}
    ) == {
        "id_number": None,
        "x_id_number": "*",
        "X_ID_Number": ["350104********7817"],
        "a": "11010519491231002X",
    }


def test_readers_of_a_check(app):
    check_id = new_check_id(app)
    app.forward(check_id, GULOU_POLICE, CITY_POLICE, "市局")
    check = app.check(check_id)
    readers_in_full = {d for d in (APPROVER, CITY_POLICE, GULOU_POLICE, OTHER_APPROVER, AUDITOR) if check.sees_personal_data(d)}
    parties = {d for d in (APPROVER, CITY_POLICE, GULOU_POLICE, OTHER_APPROVER, AUDITOR) if check.is_party(d)}
    assert readers_in_full == {APPROVER, CITY_POLICE}
    assert parties == {APPROVER, CITY_POLICE, GULOU_POLICE}


# -- reading versions ---------------------------------------------------------------------------


def test_check_versions_beyond_the_last_are_not_found(app):
    check_id = new_check_id(app)
    app.accept(check_id, GULOU_POLICE)
    assert app.check(check_id, version=1).status == "raised"
    assert app.check(check_id, version=2).status == "accepted"
    for version in (0, 3, 100):
        assert error_code(lambda: app.check(check_id, version=version)) == "not_found"


def test_a_command_acts_on_the_check_its_caller_read_and_refuses_it_once_stale(app: Platform) -> None:
    """The HTTP layer reads a check (to decide visibility) and hands it to the command, which then
    does not read it again; a check another command changed in between is refused at saving."""
    check_id = new_check_id(app)
    read = app.check(check_id)
    accepted, position = app.accept(read, GULOU_POLICE)
    assert accepted is read and accepted.status == "accepted" and position > 0

    stale = app.check(check_id)
    app.withdraw(check_id, APPROVER, "申请人撤回")
    with pytest.raises(DomainError) as refused:
        app.decline(stale, GULOU_POLICE, "no_record", "查无此人")
    assert refused.value.code == "concurrent_update"
    assert [type(e).__name__ for e in app.events.get(check_id)] == ["Raised", "Accepted", "Withdrawn"]
