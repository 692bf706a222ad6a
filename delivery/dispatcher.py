"""The webhook dispatcher (API.md §11): one per deployment sends at a time, the others wait to take over.

It holds the database's ``webhooks`` leader lock (an advisory lock on PostgreSQL, a file lock beside the
SQLite file; both are released when the holder dies) for as long as it runs. Every `poll` seconds it looks
for active subscriptions with due deliveries and drains each in a worker of its own pool, one delivery at a
time per subscription: a slow receiver holds one worker, never a command (the outbox rows were written by
the commands' transactions) nor another subscription. A delivery is the head of its check's queue (see
`delivery.outbox.due_heads`), checked against the SSRF rules again (`delivery.address`), signed
(`delivery.signature`), POSTed without following redirects, the answer read at most `READ_LIMIT` bytes.
A 2xx is delivered; anything else is retried after the next delay of the schedule (or Retry-After when
longer); after the last retry, or at once on 410, the subscription becomes failing (an event) until resumed.
A dispatcher killed mid-send leaves the delivery pending: the next one sends it again under the same
``webhook-id`` (at least once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from email.utils import parsedate_to_datetime

import httpx

from delivery import outbox, signature
from delivery.address import check_url
from delivery.outbox import Due
from delivery.secrets import WebhookKeys
from domain.errors import InvalidUrl
from domain.timefmt import format_time, utcnow
from store.database import Database, LeaderLock

logger = logging.getLogger(__name__)

LOCK = "webhooks"
READ_LIMIT = 4096
HEADS_PER_ROUND = 50
MAX_BACKOFF_SECONDS = 10.0

Render = Callable[[Due], bytes]  # the CloudEvent of a delivery, as its department may see it
GiveUp = Callable[[str, int, int | None, str], object]  # (subscription, position, status code, error)


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Dispatcher:
    def __init__(
        self,
        database: Database,
        keys: WebhookKeys,
        render: Render,
        give_up: GiveUp,
        *,
        retry: Sequence[float],
        timeout: float,
        allow: Sequence[str],
        workers: int = 8,
        poll: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.database = database
        self.keys = keys
        self.render = render
        self.give_up = give_up
        self.retry = tuple(retry)
        self.timeout = timeout
        self.allow = tuple(allow)
        self.poll = poll
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nocert-webhook")
        self._busy: dict[str, Future[None]] = {}
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, transport=transport)
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: LeaderLock | None = None

    # -- running ----------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="nocert-webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        if thread is not None:
            thread.join(timeout=30)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def nudge(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            pause = self.poll
            try:
                self.dispatch()
                failures = 0
            except Exception:  # the store is away: log, back off, try again
                failures += 1
                pause = min(self.poll * 2**failures, MAX_BACKOFF_SECONDS)
                logger.error("webhook dispatcher failed (%d times); retrying in %.1f s", failures, pause, exc_info=failures == 1)
            self._wake.wait(pause)
            self._wake.clear()

    def dispatch(self) -> int:
        """Hands every subscription with due deliveries to a worker, if this process holds the lock;
        returns how many were handed over."""
        if self._lock is None:
            self._lock = self.database.leader_lock(LOCK)
        if not self._lock.try_acquire():
            return 0
        self._busy = {key: future for key, future in self._busy.items() if not future.done()}
        started = 0
        for subscription_id in outbox.busy_subscriptions(self.database, time.time()):
            if subscription_id not in self._busy:
                self._busy[subscription_id] = self._pool.submit(self._drain, subscription_id)
                started += 1
        return started

    def drain_all(self) -> None:
        """Dispatches and waits until no delivery is due (tests)."""
        while self.dispatch() or self._busy:
            for future in list(self._busy.values()):
                future.result()
            self._busy = {key: future for key, future in self._busy.items() if not future.done()}
            if not outbox.busy_subscriptions(self.database, time.time()):
                return

    def _drain(self, subscription_id: str) -> None:
        try:
            while not self._stopping.is_set():
                heads = outbox.due_heads(self.database, subscription_id, time.time(), HEADS_PER_ROUND)
                if not heads or self._lock is None or not self._lock.try_acquire():
                    return
                done: list[tuple[Due, int, str]] = []
                try:
                    for due in heads:
                        if self._stopping.is_set():
                            return
                        status = self.send(due)
                        if status is not None:
                            done.append((due, status, format_time(utcnow())))
                finally:  # one transaction for the round's deliveries (a crash before it: sent again)
                    outbox.delivered(self.database, done)
        except Exception:
            logger.exception("webhook worker of subscription %s failed; the next round tries again", subscription_id)

    # -- one delivery -----------------------------------------------------------------------------

    def send(self, due: Due) -> int | None:
        """Attempts one delivery; the 2xx status when it was delivered (the caller records it), else None
        (the failure is recorded here)."""
        now = time.time()
        try:
            check_url(due.url, self.allow)
        except InvalidUrl as refused:
            self._failed(due, None, f"refused: {refused.detail}", None)
            return None
        body = self.render(due)
        webhook_id = str(due.position)
        headers = signature.headers(webhook_id, int(now), body, self.keys.unseal(due.secret), self.keys.signing_key())
        try:
            with self._client.stream("POST", due.url, content=body, headers=headers) as response:
                received = 0
                for chunk in response.iter_raw():
                    received += len(chunk)
                    if received >= READ_LIMIT:
                        break
                status, wait = response.status_code, retry_after(response.headers.get("retry-after"), now)
        except httpx.TimeoutException:
            self._failed(due, None, f"no answer within {self.timeout:g} s", None)
            return None
        except httpx.HTTPError as error:
            self._failed(due, None, f"{type(error).__name__}: {error}"[:300], None)
            return None
        if 200 <= status < 300:
            logger.debug("webhook %s delivered to subscription %s (HTTP %d, attempt %d)", webhook_id, due.subscription_id, status, due.attempts + 1)
            return status
        if status == 410:
            self._give_up(due, status, "the receiver answered 410 Gone")
        else:
            self._failed(due, status, f"HTTP {status}", wait)
        return None

    def _failed(self, due: Due, status: int | None, error: str, wait: float | None) -> None:
        if due.streak >= len(self.retry):
            self._give_up(due, status, f"{error} (after the last retry)")
            return
        delay = max(self.retry[due.streak], wait or 0.0)
        outbox.retry_later(self.database, due, status, error, time.time() + delay)
        logger.warning(
            "webhook %s to subscription %s failed (%s, attempt %d); retrying in %g s",
            due.position, due.subscription_id, error, due.attempts + 1, delay,
        )

    def _give_up(self, due: Due, status: int | None, error: str) -> None:
        outbox.retry_later(self.database, due, status, error, None)
        self.give_up(due.subscription_id, due.position, status, error)
        logger.warning("subscription %s is failing: webhook %s: %s; nothing is sent until it is resumed", due.subscription_id, due.position, error)
