"""The dispatcher under faults (API.md §11), on both stores: two nodes send each delivery once and one
takes over from the other; a dispatcher killed with SIGKILL mid-send loses nothing (the next one sends the
delivery again under the same webhook-id); a receiver that was down catches up in order."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from api.bootstrap import build, build_dispatcher
from tests.api.conftest import Province, settings_for
from tests.delivery.conftest import WEBHOOK_SETTINGS, feed_of, story, subscribe
from tests.reliability.support import Server, server_env


def approver_ids(province: Province) -> set[str]:
    return {item["id"] for item in feed_of(province, "approver")}


def test_two_nodes_send_each_delivery_once_and_one_takes_over(province: Province, receiver) -> None:
    hook = receiver()
    settings = province.services.settings
    node_b = build(settings_for(settings.database_url, settings.key_dir, **WEBHOOK_SETTINGS))
    try:
        node_b.webhooks.start()
        subscribe(province, "approver", hook.url)
        for _ in range(3):
            story(province)
        hook.wait_for(approver_ids(province))
        assert set(Counter(hook.delivered_ids()).values()) == {1}  # each once, whichever node sent it
        province.services.webhooks.stop()  # node A goes away: B sends (or went on sending)
        story(province)
        hook.wait_for(approver_ids(province))
        assert set(Counter(hook.delivered_ids()).values()) == {1}
    finally:
        node_b.close()


def test_a_killed_dispatcher_loses_nothing(province: Province, receiver, tmp_path: Path) -> None:
    hook = receiver(script=["timeout"], hang_seconds=3.0)  # the first delivery is in flight when the kill comes
    settings = province.services.settings
    province.services.webhooks.stop()  # the server's dispatcher takes the lock
    env = server_env(
        settings.database_url, settings.key_dir,
        NOCERT_WEBHOOK_ALLOW="http://127.0.0.1", NOCERT_WEBHOOK_RETRY="0.05,0.1", NOCERT_WEBHOOK_TIMEOUT="30",
    )
    server = Server(tmp_path / "server", env)
    server.start()
    try:
        subscribe(province, "approver", hook.url)
        story(province)
        deadline = time.monotonic() + 60  # only stops a hung test
        while not hook.attempts:
            assert time.monotonic() < deadline, server.logs()[-3000:]
            time.sleep(0.02)
        in_flight = hook.attempts[0].webhook_id
        server.kill9()
    finally:
        server.stop()
    restarted = build_dispatcher(settings, province.services.platform, province.services.database, province.services.webhook_keys)
    restarted.start()
    try:
        hook.wait_for(approver_ids(province))
    finally:
        restarted.stop()
    ids = [attempt.webhook_id for attempt in hook.attempts]
    assert ids.count(in_flight) == 2  # sent again under the same webhook-id
    assert set(ids) == approver_ids(province)


def test_a_receiver_down_for_a_while_catches_up(durable_database_url: str, tmp_path: Path, receiver) -> None:
    """The evidence of issue 15 (docs/webhooks.md): run with ``-s`` to see the delivery log."""
    from tests.delivery.conftest import webhook_province

    hook = receiver(script=["timeout", 500], hang_seconds=1.0)  # after the outage: one too late, one 500, then 200
    with webhook_province(durable_database_url, tmp_path / "keys", webhook_retry="0.5,1,2,4,8") as province:
        subscribe(province, "approver", hook.url)
        hook.down_until = time.time() + 3.0  # 503 to everything for 3 s
        checks = [story(province) for _ in range(2)]
        hook.wait_for(approver_ids(province))
        known = {item["id"]: item for item in feed_of(province, "approver")}
        print(f"\ndelivery log ({durable_database_url.split(':')[0]}), timeout 0.5 s, retries 0.5,1,2,4,8 s:\n{hook.log()}")
        for check_id in checks:
            firsts = list(dict.fromkeys(i for i in hook.delivered_ids() if known[i]["subject"] == check_id))
            positions = [known[i]["data"]["position"] for i in firsts]
            print(f"check {check_id[:8]}: delivered in order {positions}")
            assert positions == sorted(positions) and len(positions) == 5
        lost = set(known) - set(hook.delivered_ids())
        print(f"{len(known)} events, {len(hook.attempts)} attempts, {len(set(hook.delivered_ids()))} delivered, lost: {sorted(lost)}")
        assert not lost
        answers = [a.answer for a in hook.attempts]
        assert "down" in answers and "timeout" in answers and "500" in answers


def test_the_demo_tells_how_to_subscribe(tmp_path: Path) -> None:
    from tests.reliability.support import run_cli

    env = server_env(f"sqlite:///{tmp_path}/demo.db", tmp_path / "keys")
    result = run_cli(env, "demo", "--checks", "2")
    assert result.returncode == 0, result.stderr
    assert "/v1/subscriptions" in result.stdout and "whsec_" in result.stdout
    services = build(settings_for(f"sqlite:///{tmp_path}/demo.db", tmp_path / "keys"))
    try:
        with services.database.reading() as cursor:
            assert cursor.execute("SELECT COUNT(*) FROM webhook_subscriptions").fetchone() == (0,)  # none created
    finally:
        services.close()
