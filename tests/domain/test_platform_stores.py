"""One application story on every store (in-memory, SQLite, PostgreSQL): the lifecycle of a check,
its past versions and points in time, encryption at rest, and concurrent commands on one check."""

from __future__ import annotations

import base64
import os
import threading
import time
from collections import Counter
from datetime import timedelta
from uuid import UUID

import pytest

from domain.errors import DomainError
from domain.platform import Platform
from domain.proof import proof_id_of
from projections.checks import check_document
from tests.domain.world import (
    APPLICANT_ID,
    APPLICANT_NAME,
    APPROVER,
    CITY_POLICE,
    GULOU_POLICE,
    OTHER_ID,
    build_province,
    new_check_id,
)

# (command, expected status after it), by their rightful parties.
LIFECYCLE = [
    ("raise", "raised"),
    ("accept", "accepted"),
    ("request_info", "info_requested"),
    ("supply_info", "accepted"),
    ("forward", "raised"),
    ("reply", "replied"),
    ("close", "closed"),
    ("revoke_proof", "closed"),
]


def run_lifecycle(app: Platform) -> tuple[UUID, list[int]]:
    """The lifecycle; returns the check id and the positions the commands answered."""
    check_id = new_check_id(app)
    positions = [app.recorder.max_notification_id()]
    steps = [
        lambda: app.accept(check_id, GULOU_POLICE),
        lambda: app.request_info(check_id, GULOU_POLICE, "请提供曾用名"),
        lambda: app.supply_info(check_id, APPROVER, "林某"),
        lambda: app.forward(check_id, GULOU_POLICE, CITY_POLICE, "属市局管辖"),
        lambda: app.reply(check_id, CITY_POLICE, "confirmed", {"household": "福州市鼓楼区"}, 90),
        lambda: app.close_check(check_id, APPROVER, "exempted"),
        lambda: app.revoke_proof(proof_id_of(check_id), CITY_POLICE, "误出具"),
    ]
    for step in steps:
        time.sleep(0.002)  # distinct event timestamps, so that every moment between two events exists
        positions.append(step()[1])
    return check_id, positions


def assert_history(app: Platform, check_id: UUID) -> None:
    expected_statuses = [status for _, status in LIFECYCLE]
    for version, status in enumerate(expected_statuses, start=1):
        past = app.check(check_id, version=version)
        assert (past.version, past.status) == (version, status)
    assert app.check(check_id, version=4).info_requests[0]["answer"] == "林某"
    assert app.check(check_id, version=4).issuer == GULOU_POLICE
    assert app.check(check_id, version=5).issuer == CITY_POLICE
    assert app.check(check_id, version=6).proof.status == "valid"
    assert app.check(check_id, version=8).proof.status == "revoked"
    assert app.check(check_id, version=7).outcome == "exempted"
    for beyond in (0, len(LIFECYCLE) + 1):
        with pytest.raises(DomainError) as caught:
            app.check(check_id, version=beyond)
        assert caught.value.code == "not_found"

    events = app.check_events(check_id)
    assert [e.originator_version for e in events] == list(range(1, len(LIFECYCLE) + 1))
    timestamps = [e.timestamp for e in events]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    for version, moment in enumerate(timestamps, start=1):
        assert app.check_as_of(check_id, moment).version == version  # at the event: after it
        following = timestamps[version] if version < len(timestamps) else moment + timedelta(days=1)
        between = moment + (following - moment) / 2
        assert app.check_as_of(check_id, between).version == version
        assert app.check_as_of(check_id, between).status == expected_statuses[version - 1]
    with pytest.raises(DomainError) as caught:
        app.check_as_of(check_id, timestamps[0] - timedelta(microseconds=1))
    assert caught.value.code == "not_found"


def test_lifecycle_history_and_points_in_time(database_url, make_platform):
    app = make_platform(database_url)
    build_province(app)
    check_id, positions = run_lifecycle(app)
    assert positions == sorted(set(positions)) and positions[-1] == app.recorder.max_notification_id()
    check = app.check(check_id)
    assert (check.status, check.outcome, check.proof.status, check.version) == ("closed", "exempted", "revoked", 8)
    assert check.forwarded_from == [GULOU_POLICE]
    assert_history(app, check_id)

    notifications = app.recorder.select_notifications(start=1, limit=10_000)
    assert [n.id for n in notifications] == list(range(1, positions[-1] + 1))
    assert all(n.topic.startswith("nocert:") for n in notifications)

    if not database_url.startswith("memory"):
        # A second application on the same store (another process, a restart) reads the same history.
        other = make_platform(database_url)
        assert check_document(other.check(check_id), check.created_on) == check_document(check, check.created_on)
        assert_history(other, check_id)
        assert other.department(CITY_POLICE).current_kid == app.department(CITY_POLICE).current_kid


def _contains_applicant(state: bytes) -> bool:
    escaped = APPLICANT_NAME.encode("unicode_escape")  # as JSON writes it with ensure_ascii
    return any(
        needle in state
        for needle in (APPLICANT_NAME.encode(), escaped, APPLICANT_ID.encode(), OTHER_ID.encode())
    )


def test_stored_states_are_encrypted_with_a_cipher_key(database_url, make_platform):
    cipher_key = base64.b64encode(os.urandom(32)).decode()
    app = make_platform(database_url, cipher_key=cipher_key)
    build_province(app)
    check_id, _ = run_lifecycle(app)

    states = [n.state for n in app.recorder.select_notifications(start=1, limit=10_000)]
    assert states and not any(_contains_applicant(state) for state in states)
    assert not any(b"fz-police" in state or "福州市公安局".encode() in state for state in states)
    # Read back through decryption, bypassing any cache.
    past = app.check(check_id, version=1)
    assert past.applicant == {"name": APPLICANT_NAME, "id_number": APPLICANT_ID}
    assert past.claims["other_id_number"] == OTHER_ID
    if not database_url.startswith("memory"):
        assert make_platform(database_url, cipher_key=cipher_key).check(check_id).applicant["name"] == APPLICANT_NAME
        with pytest.raises(Exception):  # another key cannot read it
            make_platform(database_url, cipher_key=base64.b64encode(os.urandom(32)).decode()).check(check_id)


def test_without_a_cipher_key_the_states_are_plain(make_platform):
    """The control of the test above: the needles it looks for are there when nothing encrypts."""
    app = make_platform("memory://")
    build_province(app)
    run_lifecycle(app)
    states = [n.state for n in app.recorder.select_notifications(start=1, limit=10_000)]
    assert any(_contains_applicant(state) for state in states)


# -- concurrency --------------------------------------------------------------------------------

ROUNDS = 20

# Pairs of commands that exclude each other in any order: whichever comes second is refused.
RIVALS = {
    "reply_vs_decline": (
        lambda app, check_id: app.reply(check_id, GULOU_POLICE, "confirmed", {}, 90),
        lambda app, check_id: app.decline(check_id, GULOU_POLICE, "no_record", ""),
        ("replied", "declined"),
    ),
    "withdraw_vs_decline": (
        lambda app, check_id: app.withdraw(check_id, APPROVER, "撤回"),
        lambda app, check_id: app.decline(check_id, GULOU_POLICE, "no_record", ""),
        ("withdrawn", "declined"),
    ),
}


@pytest.mark.parametrize("race", ["free", "both_loaded"])
@pytest.mark.parametrize("instances", ["one_app", "two_apps"])
@pytest.mark.parametrize("rivals", list(RIVALS))
def test_concurrent_commands_on_one_check(durable_database_url, make_platform, rivals, instances, race):
    """Exactly one of two rival commands wins. In a free race the loser either collides on saving
    (``concurrent_update``) or loaded the winner's state (``invalid_transition``); when both are held
    until both have loaded the check, the loser must collide."""
    first_command, second_command, statuses = RIVALS[rivals]
    app = make_platform(durable_database_url)
    build_province(app)
    apps = (app, app if instances == "one_app" else make_platform(durable_database_url))
    reader = make_platform(durable_database_url)  # reads only what the store holds
    tally: Counter[str] = Counter()

    for _ in range(ROUNDS):
        check_id = new_check_id(app)
        for each in apps:
            each.check(check_id)  # warm both caches, so that both load version 1 quickly
        start = threading.Barrier(2)
        loaded = threading.Barrier(2)
        results: list[tuple[str, str] | None] = [None, None]

        def attempt(index: int, target: Platform, command) -> None:
            start.wait()
            try:
                command(target, check_id)
                results[index] = ("ok", "")
            except DomainError as error:
                results[index] = ("error", error.code)
            except Exception as error:  # reported by the assertion below
                results[index] = ("exception", repr(error))

        if race == "both_loaded":
            for each in set(apps):
                each.check = _holding_read(each.check, loaded)  # the commands' read of the check
        threads = [
            threading.Thread(target=attempt, args=(0, apps[0], first_command)),
            threading.Thread(target=attempt, args=(1, apps[1], second_command)),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        for each in set(apps):
            each.__dict__.pop("check", None)
        assert not any(thread.is_alive() for thread in threads)

        winners = [i for i, result in enumerate(results) if result == ("ok", "")]
        assert len(winners) == 1, results
        loser = results[1 - winners[0]]
        allowed = ("concurrent_update",) if race == "both_loaded" else ("concurrent_update", "invalid_transition")
        assert loser[0] == "error" and loser[1] in allowed, results
        tally[loser[1]] += 1

        for each in (*apps, reader):
            assert [e.originator_version for e in each.events.get(check_id)] == [1, 2]
            assert each.check(check_id).status == statuses[winners[0]]

    assert sum(tally.values()) == ROUNDS


def _holding_read(read, barrier: threading.Barrier):
    """A read of the check that returns only once the rival thread has read it too."""

    def check(*args, **kwargs):
        found = read(*args, **kwargs)
        barrier.wait(timeout=10)
        return found

    return check
