"""Prometheus metrics (API.md §8): requests by route and status, latency, failed keys, and what an operator
alerts on, read from the store when scraped (view lag, checkpoint age, oldest unanswered check per issuer).

Requests are tallied per process in plain Python and added to the Prometheus values at most
``FLUSH_SECONDS`` later (from the event loop), when this process answers a scrape, and when the worker stops:
in multiprocess mode every ``inc`` of a value takes a lock, checks the pid and writes the mmapped file, three
times per request. A scrape may therefore miss the other workers' requests of the last ``FLUSH_SECONDS``.

Workers: ``nocert serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a directory it empties on every start
(`api.metrics_dir`); each worker's counters then live in files there, and ``/metrics`` adds up all
of them, so a scrape shows the same counters whichever worker answers. The store's gauges are computed by
the answering worker from the database, which every worker shares.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api.metrics_dir import MULTIPROC_VARIABLE
from store.database import STORE_ERRORS

LOG = logging.getLogger("nocert.metrics")

FLUSH_SECONDS = 0.5
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BOUNDS = (*LATENCY_BUCKETS, float("inf"))


class _Tally:
    """The requests of one (method, route, status) since the last flush: count, latency sum, per bucket."""

    __slots__ = ("count", "total", "buckets")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.buckets = [0] * len(_BOUNDS)


class Metrics:
    """The counters of one application instance (its own registry: tests and apps do not share state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "nocert_http_requests_total", "HTTP requests by route and status", ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "nocert_http_request_duration_seconds", "HTTP request latency by route and status",
            ["method", "route", "status"], registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.auth_failures = Counter(
            "nocert_auth_failures_total", "Requests refused for a missing or unknown API key", registry=self.registry
        )
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str, str], _Tally] = {}
        self._timer: asyncio.TimerHandle | None = None

    def record(self, method: str, route: str, status: str, seconds: float) -> None:
        """One answered request, in ``requests`` and ``latency`` after the next `flush` (at most
        ``FLUSH_SECONDS`` later when called on an event loop, at once otherwise)."""
        key = (method, route, status)
        with self._lock:
            tally = self._pending.get(key)
            if tally is None:
                tally = self._pending[key] = _Tally()
            tally.count += 1
            tally.total += seconds
            tally.buckets[bisect_left(_BOUNDS, seconds)] += 1  # the first bound >= seconds, as Histogram.observe
            if self._timer is not None:
                return
            try:
                self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
                return
            except RuntimeError:  # no event loop in this thread
                pass
        self.flush()

    def flush(self) -> None:
        """Adds the requests tallied since the last flush to the Prometheus values (the mmapped files of
        multiprocess mode), each series with one ``inc`` per value instead of one per request."""
        with self._lock:
            pending, self._pending = self._pending, {}
            self._timer = None  # a timer still due (this flush ran from a scrape) flushes what comes next
        for labels, tally in pending.items():
            self.requests.labels(*labels).inc(tally.count)
            child = self.latency.labels(*labels)
            # Histogram.observe adds the amount to ``_sum`` and 1 to the bucket; this adds a batch at once.
            child._sum.inc(tally.total)
            for bucket, count in zip(child._buckets, tally.buckets, strict=True):
                if count:
                    bucket.inc(count)

    def exposition(self, store: Collector) -> bytes:
        """The text a scrape gets: every worker's counters (multiprocess mode) or this one's, and the store's gauges."""
        self.flush()
        registry = CollectorRegistry()
        directory = os.environ.get(MULTIPROC_VARIABLE)
        if directory:
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Counters(self.registry))
        registry.register(store)
        return generate_latest(registry)


class _Counters(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


class StoreGauges(Collector):
    """Gauges read from the store at each scrape; none when the store is down (``nocert_store_up`` 0)."""

    def __init__(
        self, views: Any, log: Any, clock: Callable[[], datetime], webhook_backlog: Callable[[], int] = lambda: 0
    ) -> None:
        self.views = views
        self.log = log
        self.clock = clock
        self.webhook_backlog = webhook_backlog

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("nocert_store_up", "1 when the event store answered this scrape")
        try:
            gauges = list(self._gauges())
        except STORE_ERRORS as error:
            LOG.warning("metrics: the store did not answer: %s", error)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges

    def _gauges(self) -> Iterator[Metric]:
        now = self.clock()
        events = self.log.max_position()
        yield _gauge("nocert_events_recorded", "Events in the global log (its last position)", events)
        yield _gauge("nocert_view_lag_events", "Events recorded but not yet in the views", self.views.lag())
        latest = self.views.latest_checkpoint()
        size = latest["tree_size"] if latest else 0
        yield _gauge("nocert_checkpoint_tree_size", "Tree size of the latest signed ledger checkpoint", size)
        yield _gauge(
            "nocert_ledger_uncovered_leaves", "Ledger leaves no signed checkpoint covers yet", self.views.ledger_size() - size
        )
        yield _gauge(
            "nocert_webhook_backlog", "Webhook deliveries of live subscriptions not delivered yet (pending or failing)",
            self.webhook_backlog(),
        )
        if latest:
            age = (now - _parse(latest["issued_at"])).total_seconds()
            yield _gauge("nocert_checkpoint_age_seconds", "Seconds since the latest signed ledger checkpoint", age)
        cosigned = self.views.newest_cosigned()  # API.md §15: how fresh the witnesses' view of the ledger is
        yield _gauge(
            "nocert_cosigned_checkpoint_tree_size", "Tree size of the newest checkpoint a witness cosigned",
            cosigned[0] if cosigned else 0,
        )
        yield _gauge(
            "nocert_cosigned_checkpoint_age_seconds",
            "Seconds since the newest checkpoint a witness cosigned was signed (-1 before the first)",
            (now - _parse(cosigned[1])).total_seconds() if cosigned else -1,
        )
        oldest = GaugeMetricFamily(
            "nocert_oldest_unanswered_check_age_seconds",
            "Per issuer, seconds since its oldest check still waiting for an answer was raised",
            labels=["issuer"],
        )
        for issuer, raised_at in sorted(self.views.oldest_unanswered().items()):
            oldest.add_metric([issuer], (now - _parse(raised_at)).total_seconds())
        yield oldest


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))
