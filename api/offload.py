"""Blocking work of a request (authentication, the check commands) handed from the event loop to a thread.

FastAPI runs a plain ``def`` endpoint with ``anyio.to_thread.run_sync``, which costs the event loop two extra
turns (its checkpoints) and a ``threading.Condition`` wake-up per call. ``loop.run_in_executor`` on this
module's pool does the same hand-off with neither: the caller's context variables go along (as anyio's do),
the pool has anyio's default of 40 threads, and the result or exception comes back as the call's own.

One difference: if the awaiting task is cancelled (the server stopping), the await ends at once while the
thread finishes its call, where anyio would wait for it. A call is never started twice, nor stopped half way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

THREADS = 40  # anyio's default thread limit, which these calls shared before

Params = ParamSpec("Params")
Result = TypeVar("Result")

_pool: list[ThreadPoolExecutor] = []


def _executor() -> ThreadPoolExecutor:
    if not _pool:  # threads start on demand, in the process that serves (a worker is spawned, not forked)
        _pool.append(ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="nocert-request"))
    return _pool[0]


async def in_thread(func: Callable[Params, Result], /, *args: Params.args, **kwargs: Params.kwargs) -> Result:
    """``func(*args, **kwargs)`` in a worker thread, in a copy of the caller's context."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_executor(), call)


def threaded(handler: Callable[Params, Result]) -> Callable[Params, Awaitable[Result]]:
    """A plain ``def`` endpoint as an ``async`` one that runs it with `in_thread`: FastAPI reads its parameters
    (``functools.wraps`` keeps the signature) and awaits it instead of running it with anyio."""

    @functools.wraps(handler)
    async def run(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        return await in_thread(handler, *args, **kwargs)

    return run
