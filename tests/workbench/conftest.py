"""Fixtures of the workbench's unit tests: its stores on both durable databases, and a clock to turn."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import argon2
import pytest

from api.bootstrap import _open_database
from api.settings import Settings, parse_database_url
from api.workbench.credentials import Passwords
from store.database import Database


@dataclass
class Clock:
    """A clock the test moves by hand (seconds since the epoch)."""

    now: float = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def database(durable_database_url: str) -> Iterator[Database]:
    """A fresh database (SQLite file, or PostgreSQL schema) per test and store."""
    db = _open_database(parse_database_url(durable_database_url), Settings(database_url=durable_database_url, db_pool_size=4))
    yield db
    db.close()


@pytest.fixture(scope="session")
def cheap_passwords() -> Passwords:
    """argon2id with the cheapest parameters: the same code path, milliseconds instead of a tenth of a second."""
    return Passwords(argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST))


# The API tests' province (through HTTP, on both stores), for the desk's pages.
from tests.api.conftest import province  # noqa: E402, F401
