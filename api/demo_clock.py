"""The demo's clock: the demo province's life is played over the last days, so answer times spread over hours
and due times pass, and every event is recorded as an ordinary event whose time is the clock's.

While `running`, the clock is what eventsourcing stamps new events with (``eventsourcing.domain`` reads its
``datetime_now_with_tzinfo`` when an event is created), what the platform reads as now (proof times, seal
validity) and where new seal certificates begin. It only moves forward, and never past the real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import eventsourcing.domain

from api.sealing import KeyStoreSealer
from domain.platform import Platform
from domain.timefmt import utcnow

CLOCK_SKEW = timedelta(minutes=1)


class DemoClock:
    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, to: datetime) -> None:
        if to < self.moment or to > utcnow():
            raise ValueError(f"the demo clock moves forward only, up to the real time (at {self.moment}, asked {to})")
        self.moment = to


@contextmanager
def running(clock: DemoClock, platform: Platform) -> Iterator[None]:
    stamp = eventsourcing.domain.datetime_now_with_tzinfo
    platform_clock = platform.clock
    sealer = platform.sealer if isinstance(platform.sealer, KeyStoreSealer) else None
    eventsourcing.domain.datetime_now_with_tzinfo = clock.now  # the one hook eventsourcing has
    platform.clock = clock.now
    if sealer is not None:
        sealer.not_before = lambda: clock.now() - CLOCK_SKEW
    try:
        yield
    finally:
        eventsourcing.domain.datetime_now_with_tzinfo = stamp
        platform.clock = platform_clock
        if sealer is not None:
            sealer.not_before = lambda: None
