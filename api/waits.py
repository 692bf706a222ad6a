"""``?min_position=`` waits (API.md §1) on the event loop, holding no thread of the request pool.

A reader asking for a position its data does not reflect yet waits here, as an asyncio future. One watcher
task per event loop and kind (views, event store) reads the position for all of them: when the views'
follower in this process says they moved, and every `SLICE_SECONDS` otherwise (another process's follower
may be the one that projects). The reads run in threads of their own, at most `READ_THREADS` at a time, so
60 waiting readers cost one short read per slice, not 60 threads blocked for up to 5 s: the calls that
serve everyone else (``/healthz``, ``/v1/trust/root``, ordinary reads) never queue behind them.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
from anyio import to_thread

SLICE_SECONDS = 0.05
READ_THREADS = 2


@dataclass
class _Watch:
    """The readers of one event loop waiting for positions of one kind, and the task reading it for them."""

    waiters: list[tuple[int, asyncio.Future[bool]]] = field(default_factory=list)
    moved: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class PositionWaits:
    """Waits for ``read_position()`` (a blocking read) to reach a position; see the module's docstring.

    `nudge` is called once per wait that has to wait (the views' follower then works at once);
    `subscribe`, if given, registers a callback (called from any thread) for when the position may have moved.
    """

    def __init__(
        self,
        read_position: Callable[[], int],
        nudge: Callable[[], None] = lambda: None,
        subscribe: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._read_position = read_position
        self._nudge = nudge
        self._limiter: anyio.CapacityLimiter | None = None
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch] = weakref.WeakKeyDictionary()
        if subscribe is not None:
            subscribe(self._moved)

    async def wait(self, position: int, timeout: float) -> bool:
        """True once the position is at least `position`; False after `timeout` seconds."""
        if await self._read() >= position:
            return True
        self._nudge()
        loop = asyncio.get_running_loop()
        watch = self._watches.setdefault(loop, _Watch())
        future: asyncio.Future[bool] = loop.create_future()
        entry = (position, future)
        watch.waiters.append(entry)
        if watch.task is None or watch.task.done():
            watch.task = loop.create_task(self._watch(watch))
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            return False
        finally:
            if entry in watch.waiters:
                watch.waiters.remove(entry)

    async def _read(self) -> int:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(READ_THREADS)
        return await to_thread.run_sync(self._read_position, limiter=self._limiter)

    async def _watch(self, watch: _Watch) -> None:
        while watch.waiters:
            watch.moved.clear()
            try:
                current = await self._read()
            except Exception:  # the store is unreachable for now: the waits time out unless it comes back
                current = -1
            for position, future in list(watch.waiters):
                if position <= current and not future.done():
                    future.set_result(True)
            watch.waiters[:] = [entry for entry in watch.waiters if not entry[1].done()]
            if not watch.waiters:
                return
            try:
                await asyncio.wait_for(watch.moved.wait(), SLICE_SECONDS)
            except TimeoutError:
                pass

    def _moved(self) -> None:
        """From any thread: the position may have moved; the watchers read it again now."""
        for loop, watch in list(self._watches.items()):
            if watch.waiters and not loop.is_closed():
                try:
                    loop.call_soon_threadsafe(watch.moved.set)
                except RuntimeError:  # the loop closed meanwhile
                    pass
