"""Shared fixtures: stores (in-memory, SQLite, PostgreSQL) and valid identifiers.

PostgreSQL tests read ``NOCERT_TEST_DATABASE_URL`` (default the local server), work in a schema of
their own that they drop afterwards, skip with a visible reason when no server answers, and fail
instead when ``NOCERT_REQUIRE_POSTGRES=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

# Each Services of a test holds up to two pools; keep them small, since every test shares one local
# PostgreSQL (max_connections 100 by default). Settings given explicitly still win.
os.environ.setdefault("NOCERT_DB_POOL_SIZE", "10")

POSTGRES_URL = os.environ.get("NOCERT_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("NOCERT_REQUIRE_POSTGRES") == "1"


def _postgres_unavailable_reason() -> str | None:
    try:
        import psycopg

        from api.settings import parse_database_url

        with psycopg.connect(parse_database_url(POSTGRES_URL).conninfo(), connect_timeout=3):
            return None
    except Exception as error:  # any failure to connect means "no server here"
        return f"PostgreSQL at {POSTGRES_URL} is not answering: {error}"


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = _postgres_unavailable_reason()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"NOCERT_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema of its own, dropped afterwards."""
    import psycopg

    from api.settings import parse_database_url

    schema = f"t_{uuid.uuid4().hex[:12]}"
    conninfo = parse_database_url(POSTGRES_URL).conninfo()
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}schema={schema}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    with postgres_schema_url() as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/nocert.db"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def database_url(request) -> str:
    """Every store the application runs on: the test runs once per store."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=["sqlite", "postgres"])
def durable_database_url(request) -> str:
    """The two durable stores (views, idempotency and the HTTP API need a real database)."""
    return request.getfixturevalue(f"{request.param}_url")
