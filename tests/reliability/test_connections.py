"""Issue #11.13, the connection budget: a process of ``nocert serve`` holds one pool for the event store,
the views and the idempotency records, at most ``NOCERT_DB_POOL_SIZE`` connections, opened as needed,
and one more connection for all its advisory (leader) locks. Before, an idle ``--workers 2`` held two
pools of ``NOCERT_DB_POOL_SIZE`` per process (49 connections with the default of 20)."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.bodies import check_body
from tests.reliability.support import Province, Server, server_env

POOL_SIZE = 4
WORKERS = 2


def connections(postgres_url: str, application: str) -> int:
    conninfo = postgres_url.split("?")[0]
    with psycopg.connect(conninfo, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (application,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.timeout(180)
def test_a_server_keeps_within_its_connection_budget(postgres_url: str, tmp_path: Path) -> None:
    application = f"nocert-budget-{uuid.uuid4().hex[:8]}"  # psycopg names every connection after PGAPPNAME
    env = server_env(postgres_url, tmp_path / "keys", NOCERT_DB_POOL_SIZE=str(POOL_SIZE), PGAPPNAME=application)
    server = Server(tmp_path / "server", env, workers=WORKERS)
    try:
        server.start()
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            province = Province.create(client)
            for _ in range(20):  # work in both workers: raises, reads, lists
                created = client.post("/v1/checks", json=check_body(), headers=province.headers("approver"))
                assert created.status_code == 201, created.text
                client.get("/v1/checks", headers=province.headers("auditor"))
        used = connections(postgres_url, application)
        assert 0 < used <= WORKERS * (POOL_SIZE + 1), f"{used} connections for {WORKERS} workers of pool {POOL_SIZE}"
    finally:
        server.kill9()
