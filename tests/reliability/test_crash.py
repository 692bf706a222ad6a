"""Crash: ``kill -9`` of the server under lifecycle load loses no acknowledged command, and the views
and the ledger converge to exactly what a rebuild from the log gives.

Per store (SQLite, PostgreSQL): a fresh store, ``nocert serve --workers 1`` as a subprocess, three
client threads taking checks through every kind of life (each command with an Idempotency-Key), then
SIGKILL of the server's process group at a random moment, a restart on the same store, and:

- every command answered 2xx is in the store: the check's history has the command's event at the
  acknowledged version and at the acknowledged ``X-Event-Position``, and the check is in the
  acknowledged status unless a later (unanswered) command moved it on;
- the commands whose answer never came, retried with their Idempotency-Key, answer below 500;
- the views catch up with the whole log on their own, the check list (a view) agrees with the event
  store check by check, and ``nocert views rebuild`` (run while the service runs) gives exactly the same
  rows in every view table, ledger included; the rebuild also re-verifies every signed checkpoint
  against the recomputed ledger, so checkpoints signed before the crash still hold.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.bodies import check_body
from tests.reliability.support import (
    LifecycleLoad,
    Province,
    Server,
    converge_and_rebuild,
    server_env,
    verify_acks,
    wait_for_head,
)

LOAD_SECONDS = 3.0
MIN_ACKS = 30


def _list_all_checks(client: httpx.Client, province: Province) -> dict[str, dict]:
    found: dict[str, dict] = {}
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        response = client.get("/v1/checks", params=params, headers=province.headers("auditor"))
        assert response.status_code == 200, response.text
        page = response.json()
        found.update({item["id"]: item for item in page["items"]})
        cursor = page["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.timeout(240)
def test_kill_9_under_load_loses_no_acknowledged_command(durable_database_url: str, tmp_path: Path) -> None:
    key_dir = tmp_path / "keys"
    # Keys left in progress by the killed process are taken over after 1 s, so that the retries below
    # show what the first attempt recorded instead of 409 idempotency_in_progress.
    env = server_env(durable_database_url, key_dir, NOCERT_IDEMPOTENCY_STALE_SECONDS="1")
    server = Server(tmp_path / "server", env)
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            province = Province.create(client)

        load = LifecycleLoad(server.base_url, province, threads=3, retry=True)
        load.run_for(LOAD_SECONDS, MIN_ACKS, limit=60)
        time.sleep(random.uniform(0, 0.5))
        server.kill9()
        killed_at = time.monotonic()
        load.stop()
        acks = list(load.acks)

        server.start()
        restarted_in = time.monotonic() - killed_at
        time.sleep(max(0.0, 1.5 - restarted_in))  # past the takeover time of the killed process's keys
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            report = verify_acks(client, province, acks)
            retried: Counter[str] = Counter()
            for command, response in load.resend(client):
                code = response.json().get("code") if not response.is_success else "ok"
                retried[f"{response.status_code} {code}"] += 1
                assert response.status_code < 500, f"retry of {command} after the crash: {response.text}"
                # Each check is driven by one thread, so a retry refused by the status machine would mean a
                # second execution of a command whose first was recorded: it must replay instead (#11.2).
                assert code != "invalid_transition", f"retry of {command} ran it twice: {response.text}"
                assert code != "idempotency_in_progress", f"retry of {command} not taken over: {response.text}"
            # the restarted service takes new work
            response = client.post("/v1/checks", json=check_body(), headers=province.headers("approver"))
            assert response.status_code == 201, response.text

            head = wait_for_head(durable_database_url, key_dir)
            assert head >= max(ack.position for ack in acks)
            listed = _list_all_checks(client, province)
            for check_id in {ack.check_id for ack in acks}:
                stored = client.get(f"/v1/checks/{check_id}", headers=province.headers("auditor")).json()
                assert check_id in listed, f"check {check_id} is missing from the list view"
                assert (listed[check_id]["status"], listed[check_id]["version"]) == (
                    stored["status"],
                    stored["version"],
                ), f"list view and event store disagree on {check_id}"
            convergence = converge_and_rebuild(durable_database_url, key_dir, env)

        failures = Counter(f"{f.status} {f.code}" for f in load.failures)
        print(
            f"\n[crash {durable_database_url.split(':')[0]}] acknowledged={report.acknowledged} "
            f"checks={report.checks} lost={len(report.lost)} unanswered_at_kill={len(load.in_flight)} "
            f"retried_after_restart={dict(retried)} non_2xx={dict(failures)} log_head={convergence.head} "
            f"view_rows={convergence.view_rows} latest_checkpoint={convergence.latest_checkpoint} "
            f"restart_s={restarted_in:.1f} audit_verify_ok={convergence.audit.get('ok')} "
            f"audit_checkpoints={convergence.audit.get('checkpoints')} audit_proofs={convergence.audit.get('proofs')}"
        )
        assert not report.lost, "acknowledged commands lost:\n" + "\n".join(report.lost[:20])
        assert not convergence.differences, "live views differ from a rebuild:\n" + "\n".join(convergence.differences)
        assert convergence.audit.get("ok") is True, f"nocert audit verify: {convergence.audit}"
        assert "unhandled error" not in server.stderr(), server.stderr()[-3000:]
    finally:
        server.kill9()
