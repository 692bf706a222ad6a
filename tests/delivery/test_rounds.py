"""What one dispatcher round costs (issue 15), on both stores: the bodies of an event are rendered once per
*view* (departments that `check_document` shows it alike share one), each exactly as ``GET
/v1/checks/{id}?version=v`` shows it to that department, a former issuer's masked; and a round records all
its deliveries in one statement."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from standardwebhooks.webhooks import Webhook

from api.bootstrap import build_dispatcher
from api.cloudevents import Renderings
from delivery.outbox import Due
from delivery.secrets import new_secret, secret_bytes
from delivery.signature import Signatures, signed_headers
from tests.api.conftest import Province
from tests.delivery.conftest import subscribe


def forwarded_story(province: Province) -> str:
    check = province.raise_check()
    province.act(check["id"], "accept", "gulou")
    province.act(check["id"], "forward", "gulou")  # to fz-police ("city"): gulou becomes a former issuer
    province.act(check["id"], "reply", "city")
    province.act(check["id"], "close", "approver")
    return str(check["id"])


def test_each_view_is_rendered_once_and_as_get_shows_it(province: Province) -> None:
    check_id = forwarded_story(province)
    history = province.as_("approver").get(f"/v1/checks/{check_id}/history", expect=200).json()["events"]
    round_ = Renderings(province.services.platform)
    for event in history:
        bodies: dict[str, bytes] = {}
        for who in ("approver", "gulou", "city", "auditor"):
            due = Due(f"s-{who}", province.members[who].id, "http://127.0.0.1/", "", event["position"], check_id, event["version"], 0, 0)
            bodies[who] = round_.body(due)
            shown = province.as_(who).get(f"/v1/checks/{check_id}", params={"version": event["version"]}, expect=200).json()
            assert json.loads(bodies[who])["data"]["check"] == shown, (who, event["version"])
        assert bodies["approver"] is bodies["city"]  # the approver and the issuer now: one view, made once
        assert bodies["gulou"] != bodies["approver"] and bodies["auditor"] != bodies["approver"]
        assert "*" in json.loads(bodies["gulou"])["data"]["check"]["applicant"]["id_number"]  # the former issuer's masked view
        assert "*" not in json.loads(bodies["city"])["data"]["check"]["applicant"]["id_number"]


def test_workers_racing_for_one_check_read_it_once(province: Province) -> None:
    """The lanes of a department's subscriptions send the same checks at the same time: the first to need
    the check reads it, the others wait for it (and for its body) instead of reading it again."""
    check_id = forwarded_story(province)
    platform = province.services.platform
    reads: list[str] = []
    second = threading.Event()

    class Reading:
        def __getattr__(self, name: str) -> Any:
            return getattr(platform, name)

        def check_events(self, check_id: Any) -> list[Any]:
            reads.append(str(check_id))
            if len(reads) == 1:
                second.wait(1.0)  # a racing second reader would arrive meanwhile; a waiting one never does
            else:
                second.set()
            return platform.check_events(check_id)

    round_ = Renderings(Reading())  # type: ignore[arg-type]
    history = province.as_("approver").get(f"/v1/checks/{check_id}/history", expect=200).json()["events"]
    last = history[-1]
    due = Due("s", province.members["approver"].id, "http://127.0.0.1/", "", last["position"], check_id, last["version"], 0, 0)
    bodies: list[bytes] = []
    workers = [threading.Thread(target=lambda: bodies.append(round_.body(due))) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert reads == [check_id] and len(bodies) == 4 and all(body is bodies[0] for body in bodies)


class CountingCursor:
    """A cursor that notes each statement it runs (an executemany runs one per row)."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor, self._statements = cursor, statements

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._statements.append(sql)
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._statements.extend([sql] * len(rows))
        self._cursor.executemany(sql, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class CountingDatabase:
    """The database with the statements of each write transaction noted."""

    def __init__(self, database: Any) -> None:
        self._database = database
        self.transactions: list[list[str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[CountingCursor]:
        statements: list[str] = []
        self.transactions.append(statements)
        with self._database.transaction() as cursor:
            yield CountingCursor(cursor, statements)


def test_a_round_records_its_deliveries_in_one_statement(province: Province, receiver) -> None:
    hook = receiver()
    services = province.services
    services.webhooks.stop()  # this test's dispatcher sends instead
    subscribe(province, "approver", hook.url)
    subscribe(province, "approver", hook.url + "second")
    checks = [forwarded_story(province) for _ in range(3)]
    database = CountingDatabase(services.database)
    dispatcher = build_dispatcher(services.settings, services.platform, database, services.webhook_keys)  # type: ignore[arg-type]
    try:
        dispatcher.drain_all()
    finally:
        dispatcher.stop()
    assert len(hook.delivered()) == 2 * 5 * len(checks)
    recorded = [statements for statements in database.transactions if any("'delivered'" in sql for sql in statements)]
    assert recorded and all(len(statements) == 1 for statements in recorded)
    assert len(recorded) < 2 * 5 * len(checks)  # rounds recorded several deliveries each
    for subscription in province.as_("approver").get("/v1/subscriptions", expect=200).json()["items"]:
        deliveries = province.as_("approver").get(f"/v1/subscriptions/{subscription['id']}/deliveries", expect=200).json()["items"]
        assert len(deliveries) == 5 * len(checks) and {item["status"] for item in deliveries} == {"delivered"}


def test_subscriptions_getting_the_same_content_share_one_v1a_signature() -> None:
    key, signed = Ed25519PrivateKey.generate(), []

    class CountingKey:
        def sign(self, data: bytes) -> bytes:
            signed.append(data)
            return key.sign(data)

    signatures = Signatures(CountingKey)  # type: ignore[arg-type]
    body, now, secrets = b'{"id":"7"}', int(time.time()), [new_secret(), new_secret()]
    headers = [signed_headers("7", now, body, secret_bytes(secret), signatures) for secret in secrets]
    assert len(signed) == 1  # one Ed25519 signature for both
    for secret, each in zip(secrets, headers, strict=True):
        Webhook(secret).verify(body, each)  # each v1 under its own secret
    assert headers[0]["webhook-signature"].split(" ")[1] == headers[1]["webhook-signature"].split(" ")[1]
    key.public_key().verify(base64.b64decode(headers[0]["webhook-signature"].split(" ")[1][4:]), signed[0])
    signed_headers("8", now, body, secret_bytes(secrets[0]), signatures)
    signed_headers("7", now + 1, body, secret_bytes(secrets[0]), signatures)
    assert len(signed) == 3  # another id or second: another content
