"""The closed-loop HTTP load driver of benchmarks: clients, a tally of answers and latencies, and the
flows they run."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from bench.report import latency_summary

T = TypeVar("T")

# -- the closed-loop load driver -----------------------------------------------------------------


@dataclass
class Tally:
    """Requests that completed inside the measured window [start, end)."""

    start: float = math.inf
    end: float = math.inf
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    warmup_errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    flows: int = 0

    def in_window(self, moment: float) -> bool:
        return self.start <= moment < self.end

    def record(self, kind: str, began: float, ended: float, error: str | None) -> None:
        """A request counts when it *began* inside the window, however long it took (so a slow request
        that ends after the window still weighs in the percentiles and the errors)."""
        if error is not None and len(self.first_errors) < 5:
            self.first_errors.append(f"{kind}: {error}")
        if not self.in_window(began):
            if error is not None and began < self.start:
                self.warmup_errors[f"{kind}: {error.split(':')[0]}"] += 1
            return
        if error is not None:
            self.errors[f"{kind}: {error.split(':')[0]}"] += 1
        else:
            self.latencies[kind].append(ended - began)

    def flow_done(self, last_began: float) -> None:
        """A flow counts when its last request began inside the window."""
        if self.in_window(last_began):
            self.flows += 1

    def summary(self, seconds: float) -> dict[str, Any]:
        every = [value for values in self.latencies.values() for value in values]
        errors = sum(self.errors.values())
        return {
            "requests": len(every) + errors,
            "requests_per_s": round((len(every) + errors) / seconds, 1),
            "flows": self.flows,
            "flows_per_s": round(self.flows / seconds, 2),
            "latency": latency_summary(every),
            "latency_by_request": {kind: latency_summary(values) for kind, values in sorted(self.latencies.items())},
            "errors": errors,
            "errors_by_kind": dict(self.errors),
            "warmup_errors": dict(self.warmup_errors),
            "first_errors": self.first_errors,
        }


class Http:
    """One closed-loop client's requests, timed into a tally, on the run's aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, tally: Tally) -> None:
        self.session = session
        self.tally = tally
        self.last_began = 0.0

    async def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        key: str | None = None,
        json_body: Any = None,
        expect: int = 200,
        on_answer: Callable[[Mapping[str, str]], None] | None = None,
    ) -> dict[str, Any] | None:
        """The request's answer as JSON when its status is ``expect`` (else an error of the tally with the
        first 300 characters of the body). ``on_answer(headers)`` runs as soon as an expected answer has
        been read, before its JSON is parsed; an exception in it is an error of the request."""
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        data = None
        if json_body is not None:
            # Encoded as httpx encoded it (the figures before aiohttp): compact UTF-8.
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
            headers["Content-Type"] = "application/json"
        began = self.last_began = time.perf_counter()
        error: str | None = None
        document: dict[str, Any] | None = None
        try:
            async with self.session.request(method, path, data=data, headers=headers) as response:
                body = await response.read()
            if response.status != expect:
                error = f"HTTP {response.status}: {body.decode(errors='replace')[:300]}"
            else:
                if on_answer is not None:
                    on_answer(response.headers)
                document = json.loads(body)
        except Exception as exc:  # a transport failure is an error of the run, whatever it is
            error = f"{type(exc).__name__}: {exc}"
        self.tally.record(kind, began, time.perf_counter(), error)
        return document


Flow = Callable[[Http, int], Awaitable[bool]]


async def closed_loop(
    base_url: str,
    flow: Flow,
    *,
    clients: int,
    seconds: float,
    warmup: float,
    on_window_start: Callable[[], None] | None = None,
    on_window_end: Callable[[], None] | None = None,
    on_tick: Callable[[float], None] | None = None,
    tick_seconds: float = 1.0,
    tally: Tally | None = None,
) -> Tally:
    """``clients`` concurrent loops of ``flow`` (each on its own keep-alive connection) for ``warmup``
    seconds unmeasured, then ``seconds`` measured; every client stops by itself at the window's end
    (a flow in progress is abandoned). ``flow(http, serial)`` returns True when the flow completed.
    ``on_tick(seconds into the window)`` runs every ``tick_seconds`` during the window."""
    tally = tally if tally is not None else Tally()
    serials = iter(range(10**9))
    async with session(base_url, clients) as client:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        tally.start = began + warmup
        tally.end = tally.start + seconds

        async def one_client() -> None:
            http = Http(client, tally)
            while time.perf_counter() < tally.end:
                if await flow(http, next(serials)):
                    tally.flow_done(http.last_began)

        async def window() -> None:
            await asyncio.sleep(max(0.0, tally.start - time.perf_counter()))
            if on_window_start is not None:
                on_window_start()
            next_tick = tally.start
            while True:
                now = time.perf_counter()
                if now >= tally.end:
                    break
                if on_tick is not None and now >= next_tick:
                    on_tick(now - tally.start)
                    next_tick += tick_seconds
                wake = min(next_tick, tally.end) if on_tick is not None else tally.end
                await asyncio.sleep(max(0.0, wake - time.perf_counter()))
            if on_window_end is not None:
                on_window_end()
            if on_tick is not None:
                on_tick(time.perf_counter() - tally.start)

        tasks = [loop.create_task(one_client()) for _ in range(clients)]
        await asyncio.gather(window(), *tasks)
    return tally


def session(base_url: str, clients: int) -> aiohttp.ClientSession:
    """A session of at most ``clients`` kept-alive connections (a closed loop never waits for one), 30 s
    to connect and between reads as httpx had, no cookie jar (the API sets none)."""
    return aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=clients, limit_per_host=clients, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(total=None, connect=30.0, sock_connect=30.0, sock_read=30.0),
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)
