"""Throwaway stores for benchmarks: a PostgreSQL schema of its own (dropped on exit, also on Ctrl-C) or a
SQLite file in a temporary directory, and a key directory; runs that PostgreSQL restarted under are redone."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench.report import log

PG_URL = os.environ.get("NOCERT_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


# -- stores -----------------------------------------------------------------------------------


def _pg_conninfo() -> str:
    from api.settings import parse_database_url

    return parse_database_url(PG_URL).conninfo()


@contextlib.contextmanager
def postgres_schema(prefix: str = "bench") -> Iterator[str]:
    """A fresh PostgreSQL schema; yields its ``NOCERT_DATABASE_URL``; drops it afterwards."""
    import psycopg

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conninfo = _pg_conninfo()
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in PG_URL else "?"
    try:
        with _drop_on_signal():
            yield f"{PG_URL}{separator}schema={schema}"
    finally:
        deadline = time.monotonic() + 120  # PostgreSQL may be restarting (other suites stop it)
        while True:
            try:
                with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as connection:
                    connection.execute("SET lock_timeout = '20s'")
                    connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                break
            except psycopg.Error as error:
                if time.monotonic() > deadline:
                    print(f"bench: could not drop schema {schema}: {error}", file=sys.stderr)
                    break
                print(f"bench: dropping schema {schema} failed ({str(error).splitlines()[0]}); retrying", file=sys.stderr)
                time.sleep(3)


def postgres_started_at() -> str | None:
    """When the PostgreSQL server last started: a change during a run means it was restarted under it."""
    import psycopg

    try:
        with psycopg.connect(_pg_conninfo(), autocommit=True, connect_timeout=5) as connection:
            row = connection.execute("SELECT pg_postmaster_start_time()::text").fetchone()
            return row[0] if row else None
    except psycopg.Error:
        return None


def wait_for_postgres(patience: float = 300.0) -> str | None:
    """Waits until PostgreSQL answers (other suites on this machine stop it now and then); returns its
    start time."""
    deadline = time.monotonic() + patience
    while True:
        started = postgres_started_at()
        if started is not None or time.monotonic() > deadline:
            return started
        time.sleep(2)


T = TypeVar("T")


def undisturbed(step: Callable[[], T], name: str, attempts: int = 3) -> tuple[T, int]:
    """Runs ``step``; runs it again (up to ``attempts`` times) when PostgreSQL restarted under it, since
    its figures would then measure the outage. Returns the result and how many runs were thrown away."""
    for attempt in range(attempts):
        before = wait_for_postgres()
        try:
            result = step()
        except Exception:
            if attempt + 1 < attempts and wait_for_postgres() != before:
                log(f"{name}: PostgreSQL restarted and the step failed; running it again")
                continue
            raise
        if wait_for_postgres() == before:
            return result, attempt
        if attempt + 1 < attempts:
            log(f"{name}: PostgreSQL restarted during the step; running it again")
    log(f"{name}: PostgreSQL restarted during every attempt; keeping the last (disturbed) figures")
    return result, attempts


@contextlib.contextmanager
def sqlite_store() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="nocert-bench-sqlite-"))
    try:
        with _drop_on_signal():
            yield f"sqlite:///{directory}/nocert.db"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def store(kind: str, prefix: str = "bench") -> Iterator[str]:
    if kind == "postgres":
        with postgres_schema(prefix) as url:
            yield url
    elif kind == "sqlite":
        with sqlite_store() as url:
            yield url
    else:
        raise ValueError(f"unknown store {kind!r}")


@contextlib.contextmanager
def _drop_on_signal() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C, so `finally` blocks (schema drop, server stop) run."""

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def key_dir() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="nocert-bench-keys-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
