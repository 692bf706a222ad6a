"""Fixtures of the view tests: the application and its views on a durable store, wired like the
composition root (api.bootstrap) does, with the domain tests' fake sealer (proof JWS are not verified
here) and a real ledger key (checkpoints are)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from api.bootstrap import _open_database, build_platform
from api.settings import Settings, parse_database_url, store_env
from domain.platform import Platform
from projections.views import Views
from signing.key import SigningKey
from signing.keystore import KeyStore
from store.database import Database
from store.eventlog import EventLog
from tests.domain.fakes import FakeClaims, FakeSealer


def platform_env(url: str, cipher_key: str | None = None) -> dict[str, str]:
    location = parse_database_url(url)
    env = store_env(location, cipher_key=cipher_key, pool_size=4)
    if location.kind == "postgres":
        # store_env drops empty values, but eventsourcing requires POSTGRES_PASSWORD even when the
        # server trusts the user (the local test server does); give it the URL's (empty) password.
        env.setdefault("POSTGRES_PASSWORD", location.password)
    return env


@dataclass
class Stack:
    """One process's worth of nocert on a store: application, views database, log and views."""

    url: str
    app: Platform
    database: Database
    log: EventLog
    views: Views

    def head(self) -> int:
        return self.log.max_position()

    def sync(self, timeout: float = 20.0) -> int:
        """Waits until the views reflect the whole log (the follower must be running)."""
        head = self.head()
        assert self.views.wait_for(head, timeout), f"views stuck at {self.views.position()} of {head}"
        return head

    def close(self) -> None:
        self.views.stop()
        self.database.close()
        self.app.close()


@dataclass
class LedgerKeys:
    key_dir: Path
    signer: SigningKey
    root_certificate: Any


@pytest.fixture(scope="session")
def ledger_keys(tmp_path_factory: pytest.TempPathFactory) -> LedgerKeys:
    key_dir = tmp_path_factory.mktemp("keys")
    keystore = KeyStore(key_dir)
    _, root = keystore.root()
    return LedgerKeys(key_dir, keystore.ledger_signer(), root)


StackFactory = Callable[..., Stack]


def build_stack(
    url: str,
    signer: SigningKey,
    *,
    key_dir: Path,
    checkpoint_every: int = 1000,
    clock: Callable[[], datetime] | None = None,
    app_clock: Callable[[], datetime] | None = None,
    batch_size: int = 500,
    start: bool = True,
    cipher_key: str | None = None,
) -> Stack:
    location = parse_database_url(url)
    database = _open_database(location, Settings(db_pool_size=4))
    kwargs = {"clock": app_clock} if app_clock is not None else {}
    app, subjects = build_platform(platform_env(url, cipher_key), key_dir, sealer=FakeSealer(), claims=FakeClaims(), **kwargs)
    log = EventLog(app, database)
    view_kwargs = {"clock": clock} if clock is not None else {}
    views = Views(
        database, app, log, ledger_signer=signer, personal=subjects, checkpoint_every=checkpoint_every,
        batch_size=batch_size, **view_kwargs
    )
    stack = Stack(url, app, database, log, views)
    if start:
        views.start()
    return stack


@pytest.fixture
def make_stack(ledger_keys: LedgerKeys) -> Iterator[StackFactory]:
    """Builds stacks (closed afterwards); the same URL twice is two processes on one store."""
    made: list[Stack] = []

    def make(url: str, **kwargs: Any) -> Stack:
        stack = build_stack(url, ledger_keys.signer, key_dir=ledger_keys.key_dir, **kwargs)
        made.append(stack)
        return stack

    yield make
    for stack in reversed(made):
        stack.close()


class Clock:
    """A clock moved by hand; it starts at the real time, so it agrees with the events' timestamps."""

    def __init__(self) -> None:
        from domain.timefmt import utcnow

        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(**delta)
        return self.now
