"""API.md §1, issue #11.2/#11.3: the idempotency record commits with the command's events, so that a
command whose events were recorded is never answered 5xx and a repeat returns the recorded outcome
whatever failed between the commit and the answer; stored answers are encrypted, keep no secret shown
once, and are forgotten after ``NOCERT_IDEMPOTENCY_HOURS``.

On today's main before this change each fault case here failed: the first answer was 503 and the
repeat, running the command again, 409 ``invalid_transition``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import api.routers.checks as checks_router
from store.database import DatabaseUnavailable
from store.idempotency import IdempotencyStore
from tests.api.conftest import Province


@pytest.fixture
def p(shared_province: Province) -> Province:
    return shared_province


DECLINE_REASON = "no_record"


def key() -> str:
    return f"atomic-{uuid.uuid4()}"


def history_types(p: Province, check_id: str) -> list[str]:
    return [e["type"] for e in p.as_("auditor").get(f"/v1/checks/{check_id}/history").json()["events"]]


@pytest.fixture
def answer_fails(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every check command's answer fails after its events were committed, as when the database goes away
    between the commit and the answer (the store error the handler meets is answered 503 by the app)."""
    calls: list[int] = []

    def failing_answer(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise DatabaseUnavailable("connection lost after the commit (injected)")

    monkeypatch.setattr(checks_router, "answer", failing_answer)
    yield calls


def test_a_failure_after_the_commit_answers_the_recorded_outcome(p: Province, answer_fails: list[int]) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}
    first = p.as_("gulou").post(f"/v1/checks/{check['id']}/decline", json={"reason_code": DECLINE_REASON}, headers=headers)
    assert answer_fails, "the fault was not injected"
    assert first.status_code == 200, first.text  # never 5xx: the decline was recorded
    document = first.json()
    assert document["id"] == check["id"] and document["status"] == "declined"
    assert int(first.headers["X-Event-Position"]) > 0
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/decline", json={"reason_code": DECLINE_REASON}, headers=headers)
    assert again.status_code == 200 and again.json() == document
    assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
    assert history_types(p, check["id"]) == ["Raised", "Declined"]


def test_a_raise_that_failed_after_its_commit_is_not_raised_twice(p: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    """The raise answers through `created`, not `answer`: fail the save's caller instead."""
    headers = {"Idempotency-Key": key()}
    body = p.check_body()
    original = checks_router.created

    def failing_created(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise DatabaseUnavailable("connection lost after the commit (injected)")

    monkeypatch.setattr(checks_router, "created", failing_created)
    first = p.as_("approver").post("/v1/checks", json=body, headers=headers)
    monkeypatch.undo()
    assert first.status_code == 201, first.text
    again = p.as_("approver").post("/v1/checks", json=body, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    assert again.json()["applicant"] == first.json()["applicant"]  # the approver sees what it raised


def test_an_answer_that_could_not_be_kept_is_replayed_from_the_record(
    p: Province, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}

    def complete_fails(self: IdempotencyStore, *args: Any) -> None:
        raise DatabaseUnavailable("database gone after the commit (injected)")

    monkeypatch.setattr(IdempotencyStore, "complete", complete_fails)
    first = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert first.status_code == 200, first.text
    monkeypatch.undo()
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert again.status_code == 200, again.text  # not 409 invalid_transition: the accept is not run again
    assert again.json()["status"] == "accepted" and again.json()["version"] == first.json()["version"]
    assert again.headers["X-Event-Position"] == first.headers["X-Event-Position"]
    assert history_types(p, check["id"]) == ["Raised", "Accepted"]


def test_an_unconfirmed_outcome_is_503_and_the_repeat_finds_what_was_recorded(
    p: Province, monkeypatch: pytest.MonkeyPatch, answer_fails: list[int]
) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}

    def unreachable(self: IdempotencyStore, *args: Any) -> None:
        raise DatabaseUnavailable("database unreachable (injected)")

    monkeypatch.setattr(IdempotencyStore, "settled", unreachable)
    first = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert first.status_code == 503 and first.json()["code"] == "unavailable"  # cannot tell: may retry
    monkeypatch.undo()  # the database is back, the answer's fault is gone too
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "accepted"
    assert history_types(p, check["id"]) == ["Raised", "Accepted"]


def test_a_command_that_recorded_nothing_runs_again_on_retry(p: Province, monkeypatch: pytest.MonkeyPatch) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}
    platform = p.services.platform

    def down(*args: Any, **kwargs: Any) -> Any:
        raise DatabaseUnavailable("database down before the commit (injected)")

    monkeypatch.setattr(platform, "accept", down)
    first = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert first.status_code == 503
    monkeypatch.undo()
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert again.status_code == 200 and again.json()["status"] == "accepted"


def _rows(p: Province) -> list[tuple[Any, ...]]:
    with p.services.database.transaction() as cursor:
        return cursor.execute("SELECT principal, path, idem_key, state, body, headers FROM idempotency_keys").fetchall()


def test_stored_answers_are_encrypted_and_keep_no_secret(p: Province) -> None:
    raised = p.as_("approver").post("/v1/checks", json=p.check_body(), headers={"Idempotency-Key": key()}, expect=201)
    applicant = raised.json()["applicant"]
    created = p.admin.post(
        f"/v1/departments/{p.approver.id}/api-keys", json={}, headers={"Idempotency-Key": key()}, expect=201
    ).json()
    secret = created["api_key"]
    for _, _, _, state, body, headers in _rows(p):
        stored = bytes(body) if body is not None else b""
        for clear in (applicant["id_number"].encode(), applicant["name"].encode(), secret.encode()):
            assert clear not in stored
        assert state in ("in_progress", "committed", "done")
        assert secret not in (headers or "")


def test_a_replayed_api_key_creation_withholds_the_key(p: Province) -> None:
    headers = {"Idempotency-Key": key()}
    first = p.admin.post(f"/v1/departments/{p.approver.id}/api-keys", json={}, headers=headers, expect=201).json()
    again = p.admin.post(f"/v1/departments/{p.approver.id}/api-keys", json={}, headers=headers, expect=201).json()
    assert first["api_key"] and again["api_key"] is None
    assert again["withheld"] == ["api_key"] and again["api_key_id"] == first["api_key_id"]


def test_records_are_forgotten_after_their_time(p: Province) -> None:
    check = p.raise_check()
    headers = {"Idempotency-Key": key()}
    p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers, expect=200)
    with p.services.database.transaction() as cursor:  # the record is older than NOCERT_IDEMPOTENCY_HOURS
        cursor.execute("UPDATE idempotency_keys SET updated_at = updated_at - ? WHERE idem_key = ?",
                       (24 * 3600 + 60, headers["Idempotency-Key"]))
    again = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"  # forgotten: run anew
    with p.services.database.transaction() as cursor:
        assert cursor.execute("SELECT COUNT(*) FROM idempotency_keys WHERE updated_at < ?",
                              (time.time() - 24 * 3600,)).fetchone() == (0,)


def test_the_record_and_the_events_commit_together(p: Province) -> None:
    """The committed record names the position of the command's last event, written in its transaction."""
    check = p.raise_check()
    k = key()
    accepted = p.as_("gulou").post(f"/v1/checks/{check['id']}/accept", json={}, headers={"Idempotency-Key": k})
    with p.services.database.transaction() as cursor:
        row = cursor.execute("SELECT state, position, stream, version FROM idempotency_keys WHERE idem_key = ?",
                             (k,)).fetchone()
    assert row is not None
    state, position, stream, version = row
    assert state == "done"
    assert position == int(accepted.headers["X-Event-Position"])
    assert (stream, version) == (check["id"], accepted.json()["version"])
    assert json.loads(accepted.content)["status"] == "accepted"
