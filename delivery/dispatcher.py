"""The webhook dispatcher (API.md §11): one per deployment sends at a time, the others wait to take over.

It holds the database's ``webhooks`` leader lock (an advisory lock on PostgreSQL, a file lock beside the
SQLite file; both are released when the holder dies) for as long as it runs. A round runs when a local
command nudges it (`nudge`, after the command's commit), when a worker finishes, and otherwise every `poll`
seconds: it records what the workers delivered since the last round (one transaction for all
subscriptions), reads the due *heads* of all active subscriptions at once (per subscription and check the
earliest undelivered delivery, see `delivery.outbox.due_heads`) and hands each to a worker of its pool.

Per-check order: a (subscription, check) is *in flight* from the hand-over until its outcome is recorded, and
no head of a check in flight is handed over, so there are never two deliveries of one check of a
subscription in flight, and a later event of a check is a head only once the earlier one is recorded
delivered. A round deals a subscription's new heads (all of different checks) out to at most
`per_subscription` lanes, each a worker sending its share one after the other, so that different checks go
out concurrently while a slow receiver holds a few workers, never a command (the outbox rows were written by the
commands' transactions) nor all of the pool. The body of an event is rendered once per view and round
(the renderer's, `api.cloudevents.Renderings`), its v1a signature made once, a subscription's secret unsealed and a URL checked against the SSRF rules
(`delivery.address`, DNS included) once per round (`Round`). A delivery is signed (`delivery.signature`) and
POSTed (`delivery.sender`: without following redirects, the answer read at most `READ_LIMIT` bytes).
A 2xx is delivered; anything else is retried after the next delay of the schedule (or Retry-After when
longer); after the last retry, or at once on 410, the subscription becomes failing (an event) until resumed.
A dispatcher killed mid-send (or before a round recorded a 2xx) leaves the delivery pending: the next one
sends it again under the same ``webhook-id`` (at least once).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from delivery import outbox, signature
from delivery.address import check_url
from delivery.outbox import Due
from delivery.secrets import WebhookKeys, secret_bytes
from delivery.sender import Sender, Unanswered
from domain.errors import InvalidUrl
from domain.timefmt import format_time, utcnow
from store.database import Database, LeaderLock

logger = logging.getLogger(__name__)

LOCK = "webhooks"
HEADS_PER_ROUND = 50  # per subscription
PER_SUBSCRIPTION = 4  # lanes (workers) at once per subscription, each sending heads of different checks
MAX_BACKOFF_SECONDS = 10.0
ROUND_GAP = 0.03  # seconds at least between rounds: at most ~30 reads (and record transactions) a second

Render = Callable[[Due], bytes]  # the CloudEvent of a delivery, as its department may see it
Renderer = Callable[[Sequence[Due]], Render]  # a round's Render of these heads (what it reads and renders once, the round's deliveries share)
GiveUp = Callable[[str, int, int | None, str], object]  # (subscription, position, status code, error)


class Round:
    """What the deliveries of one round share: the round's `Render` (which renders each body once: the
    subscriptions of a department, and departments that see an event alike, share it), the ``v1a``
    signatures, each subscription's secret (unsealed once), and each URL's SSRF check (its DNS resolved once in the round: a later round checks again). Two workers may
    both work one out at the same time; they get the same result."""

    def __init__(self, render: Render, keys: WebhookKeys, allow: Sequence[str]) -> None:
        self.body = render
        self.signatures = signature.Signatures(lambda: keys.signing_key())
        self._keys = keys
        self._allow = allow
        self._secrets: dict[str, bytes] = {}
        self._refusals: dict[str, str | None] = {}  # URL: why it is refused now, None when it is not

    def secret(self, sealed: str) -> bytes:
        found = self._secrets.get(sealed)
        if found is None:
            found = self._secrets[sealed] = secret_bytes(self._keys.unseal(sealed))
        return found

    def refusal(self, url: str) -> str | None:
        if url not in self._refusals:
            try:
                check_url(url, self._allow)
                self._refusals[url] = None
            except InvalidUrl as refused:
                self._refusals[url] = refused.detail
        return self._refusals[url]


class Dispatcher:
    def __init__(
        self,
        database: Database,
        keys: WebhookKeys,
        renderer: Renderer,
        give_up: GiveUp,
        *,
        retry: Sequence[float],
        timeout: float,
        allow: Sequence[str],
        workers: int = 8,
        per_subscription: int = PER_SUBSCRIPTION,
        poll: float = 0.2,
        transport: Sender | None = None,
    ) -> None:
        self.database = database
        self.keys = keys
        self.renderer = renderer
        self.give_up = give_up
        self.retry = tuple(retry)
        self.timeout = timeout
        self.allow = tuple(allow)
        self.poll = poll
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nocert-webhook")
        self.per_subscription = per_subscription
        self._round = threading.Lock()  # one round at a time (the loop's, or a test's drain_all)
        self._guard = threading.Lock()  # the in-flight bookkeeping below, shared with the workers
        self._giving_up = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()  # (subscription, check) sent or sending, not yet recorded
        self._sending: Counter[str] = Counter()  # busy lanes per subscription
        self._done: list[tuple[Due, int, str]] = []  # delivered, to record
        self._settled: list[tuple[str, str]] = []  # finished (delivered or failure recorded), to free
        self._gave_up: set[str] = set()  # failing since their lanes were dealt: the rest of those is not sent
        self._sender = transport if transport is not None else Sender(timeout)  # tests may give their own
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: LeaderLock | None = None
        self.relay: Callable[[], None] | None = None

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
        try:  # what the workers delivered before the stop: recorded, not sent again by the next dispatcher
            self._record()
        except Exception:
            logger.exception("could not record the last deliveries; the next dispatcher sends them again")
        self._sender.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def nudge(self) -> None:
        """Wakes the dispatcher now (a local command committed events) instead of at its next poll; and the
        node's background process through `relay` when the dispatcher runs there (`api.background`)."""
        self._wake.set()
        if self.relay is not None:
            self.relay()

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
            self._stopping.wait(ROUND_GAP)  # nudges and finished sends within the gap make one round
            self._wake.wait(max(0.0, pause - ROUND_GAP))
            self._wake.clear()

    def dispatch(self) -> int:
        """One round, if this process holds the lock: records what the workers delivered since the last round
        (one transaction), then hands every due head whose check is not in flight to a worker; returns how
        many were handed over."""
        with self._round:
            if self._lock is None:
                self._lock = self.database.leader_lock(LOCK)
            if not self._lock.try_acquire():
                return 0
            self._record()
            with self._guard:  # once its lanes are done the heads query leaves a failing subscription out
                self._gave_up = {key for key in self._gave_up if self._sending[key] > 0}
            fresh: dict[str, list[Due]] = {}
            due_heads = outbox.due_heads(self.database, time.time(), HEADS_PER_ROUND)
            for due in due_heads:
                if (due.subscription_id, due.check_id) not in self._in_flight:
                    fresh.setdefault(due.subscription_id, []).append(due)
            shared = Round(self.renderer(due_heads), self.keys, self.allow)  # in flight too: due again soon
            started = 0
            for subscription_id, heads in fresh.items():
                with self._guard:
                    lanes = min(self.per_subscription - self._sending[subscription_id], len(heads))
                    if lanes <= 0:
                        continue
                    self._in_flight.update((due.subscription_id, due.check_id) for due in heads)
                    self._sending[subscription_id] += lanes
                for lane in range(lanes):  # heads of different checks, dealt out to the lanes oldest first
                    self._pool.submit(self._attempt, heads[lane::lanes], shared)
                started += len(heads)
            return started

    def in_flight(self) -> int:
        with self._guard:
            return len(self._in_flight)

    def drain_all(self) -> None:
        """Dispatches and waits until no delivery is due nor in flight (tests)."""
        while self.dispatch() or self.in_flight():
            self._wake.wait(0.02)
            self._wake.clear()

    def _attempt(self, heads: list[Due], shared: Round) -> None:
        """A worker: one lane of a subscription, its deliveries (each of a different check) one after the other.
        Each check stays in flight until its outcome is recorded (`_record`), so the next event of the check
        cannot be sent before it."""
        for due in heads:
            done: tuple[Due, int, str] | None = None
            try:
                with self._guard:
                    skip = due.subscription_id in self._gave_up or self._stopping.is_set()
                status = None if skip else self.send(due, shared)
                if status is not None:
                    done = (due, status, format_time(utcnow()))
            except Exception:
                logger.exception(
                    "webhook %s to subscription %s failed; the next round tries again", due.position, due.subscription_id
                )
            with self._guard:
                if done is not None:
                    self._done.append(done)
                self._settled.append((due.subscription_id, due.check_id))
        with self._guard:
            self._sending[heads[0].subscription_id] -= 1
        self._wake.set()

    def _record(self) -> None:
        """Marks the finished deliveries delivered in one transaction, then frees their checks."""
        with self._guard:
            done, self._done = self._done, []
            settled, self._settled = self._settled, []
        try:
            outbox.delivered(self.database, done)
        except BaseException:
            with self._guard:  # kept in flight: recorded by a later round
                self._done[:0] = done
                self._settled[:0] = settled
            raise
        with self._guard:
            for key in settled:
                self._in_flight.discard(key)

    # -- one delivery -----------------------------------------------------------------------------

    def send(self, due: Due, shared: Round | None = None) -> int | None:
        """Attempts one delivery; the 2xx status when it was delivered (the caller records it), else None
        (the failure is recorded here). `shared`: what the round's deliveries share (a fresh one if none)."""
        if shared is None:
            shared = Round(self.renderer([due]), self.keys, self.allow)
        refused = shared.refusal(due.url)
        if refused is not None:
            self._failed(due, None, f"refused: {refused}", None)
            return None
        body = shared.body(due)
        webhook_id = str(due.position)
        headers = signature.signed_headers(webhook_id, int(time.time()), body, shared.secret(due.secret), shared.signatures)
        try:
            answer = self._sender.post(due.url, body, headers)
        except Unanswered as error:
            self._failed(due, None, str(error), None)
            return None
        status = answer.status
        if 200 <= status < 300:
            logger.debug("webhook %s delivered to subscription %s (HTTP %d, attempt %d)", webhook_id, due.subscription_id, status, due.attempts + 1)
            return status
        if status == 410:
            self._give_up(due, status, "the receiver answered 410 Gone")
        else:
            self._failed(due, status, f"HTTP {status}", answer.retry_after)
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
        with self._giving_up:  # one at a time: the subscription's events are saved one after the other
            with self._guard:
                self._gave_up.add(due.subscription_id)  # its heads still waiting in this round are not sent
            outbox.retry_later(self.database, due, status, error, None)
            self.give_up(due.subscription_id, due.position, status, error)
        logger.warning("subscription %s is failing: webhook %s: %s; nothing is sent until it is resumed", due.subscription_id, due.position, error)
