"""Fixtures of the domain tests: Platforms on any store, a controllable clock, a small province."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from api.settings import parse_database_url, store_env
from domain.platform import Platform
from tests.domain.fakes import FakeClaims, FakeSealer


class Clock:
    """The platform's clock, moved by hand. It starts at the real time so that it agrees with the
    timestamps the event store gives events."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment


PlatformFactory = Callable[..., Platform]


@pytest.fixture
def make_platform() -> Iterator[PlatformFactory]:
    """Builds Platforms like the composition root does, and closes them afterwards."""
    made: list[Platform] = []

    def make(
        url: str = "memory://",
        *,
        clock: Callable[[], datetime] | None = None,
        cipher_key: str | None = None,
        sealer: FakeSealer | None = None,
    ) -> Platform:
        env = store_env(parse_database_url(url), cipher_key=cipher_key, pool_size=4)
        kwargs = {"clock": clock} if clock is not None else {}
        app = Platform(env, sealer=sealer or FakeSealer(), claims=FakeClaims(), **kwargs)
        made.append(app)
        return app

    yield make
    for app in made:
        app.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()
