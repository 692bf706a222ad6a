"""The views follower's CPU per event, against a floor measured on the same events in the same run.

On a fresh store (PostgreSQL by default; ``--store sqlite`` or ``both``) with a small province
(`bench.bulk.seed`), ``--clients`` simulated clients each walk checks through raise → accept → reply
(sealed) → close (exempted) with real ``Platform`` commands, in rounds of ``--batch`` events: the events
a live follower finds after its `GATHER_SECONDS` wait. After each round the follower takes one step
(``Follower.follow_once``, in this thread, nudged as after a command: the leader lock, the batch's read and write
transactions, the checkpoints due and the archive), timed with ``time.thread_time`` (CPU of this thread,
the follower's) and ``time.process_time``. The commands are not timed.

Then the same batches (same boundaries) are read again:

- floor: ``EventLog.read`` of each batch and nothing else (eventsourcing's plain notification-log read);
- decode: the same plus ``mapper.to_domain_event`` of each event (what any projector must do).

Reports CPU per event (µs) of each and the follower's ratio to both floors (lower is better). Rounds
alternate store-by-store; ``--repeat`` runs the whole measurement again on a fresh store.

    .venv/bin/python -m bench.projection --events 3000 --batch 12 --store both
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import bulk, report, stores
from bench.report import log, ratio

STAGES = 4  # raise, accept, reply, close
WARM_UP_BATCHES = 10


class Clients:
    """Simulated clients, each with a check in flight at some stage: one `step` records one event."""

    def __init__(self, app: Any, count: int) -> None:
        self.app = app
        self.serial = 0
        # (check id, issuer, approver, stage) per client; staggered so a batch mixes every stage
        self.flight: list[tuple[Any, str, str, int] | None] = [None] * count
        self.next = 0
        self.pending_stage = [i % STAGES for i in range(count)]

    def step(self) -> None:
        index = self.next
        self.next = (self.next + 1) % len(self.flight)
        current = self.flight[index]
        if current is None or current[3] == STAGES:
            approver = bulk.APPROVERS[self.serial % len(bulk.APPROVERS)]
            check, _ = self.app.raise_check(approver, **bulk._body(self.serial))
            self.serial += 1
            self.flight[index] = (check.id, check.issuer, approver, 1)
            return
        check_id, issuer, approver, stage = current
        if stage == 1:
            self.app.accept(check_id, issuer)
        elif stage == 2:
            self.app.reply(check_id, issuer, "confirmed", {"same_person": True}, 90)
        else:
            self.app.close_check(check_id, approver, "exempted")
        self.flight[index] = (check_id, issuer, approver, stage + 1)


def _timed(action: Callable[[], Any]) -> tuple[float, float]:
    thread, process = time.thread_time(), time.process_time()
    action()
    return time.thread_time() - thread, time.process_time() - process


def measure(kind: str, events: int, batch: int, clients: int) -> dict[str, Any]:
    with stores.key_dir() as keys, stores.store(kind, "bench_projection") as url:
        services = bulk.open_services(url, keys)
        try:
            bulk.seed(services)
            views = services.views
            follower = views.follower
            lock = services.database.leader_lock("views")
            views.position()  # creates the views' tables
            follower.follow_once(lock)  # the province
            simulated = Clients(services.platform, clients)
            # nudged as the live follower is after a command (where the follower knows the word)
            nudged = {"nudged": True} if "nudged" in inspect.signature(follower.follow_once).parameters else {}
            boundaries: list[tuple[int, int]] = []  # (after, size) of each counted batch
            follow_thread = follow_process = 0.0
            followed = 0
            total_batches = WARM_UP_BATCHES + max(1, events // batch)
            for number in range(total_batches):
                for _ in range(batch):
                    simulated.step()
                after = follower.position()
                thread, process = _timed(lambda: follower.follow_once(lock, **nudged))
                size = follower.position() - after
                if number >= WARM_UP_BATCHES:
                    boundaries.append((after, size))
                    follow_thread += thread
                    follow_process += process
                    followed += size
            lock.close()
            log(f"projection[{kind}]: followed {followed} events in {len(boundaries)} batches")
            mapper = services.platform.mapper

            def read_all(decode: bool) -> None:
                for after, size in boundaries:
                    notifications = services.log.read(after, size)
                    if decode:
                        for notification in notifications:
                            mapper.to_domain_event(notification)

            read_all(False)  # warms the same pages the follower read
            floor_thread, floor_process = _timed(lambda: read_all(False))
            decode_thread, decode_process = _timed(lambda: read_all(True))
        finally:
            services.close()

    def us(seconds: float) -> float:
        return round(seconds / followed * 1e6, 1)

    return {
        "events": followed,
        "batches": len(boundaries),
        "follower_thread_us_per_event": us(follow_thread),
        "follower_process_us_per_event": us(follow_process),
        "floor_read_thread_us_per_event": us(floor_thread),
        "floor_decode_thread_us_per_event": us(decode_thread),
        "floor_read_process_us_per_event": us(floor_process),
        "floor_decode_process_us_per_event": us(decode_process),
        "ratio_follower_to_read": ratio(follow_thread, floor_thread),
        "ratio_follower_to_decode": ratio(follow_thread, decode_thread),
    }


def human(summary: dict[str, Any]) -> str:
    lines = []
    for kind, runs in summary["stores"].items():
        for r in runs:
            lines.append(
                f"{kind}: {r['events']} events in {r['batches']} batches: follower {r['follower_thread_us_per_event']} µs/event "
                f"(thread CPU), floor read {r['floor_read_thread_us_per_event']}, read+decode {r['floor_decode_thread_us_per_event']}; "
                f"ratio to read {r['ratio_follower_to_read']}, to read+decode {r['ratio_follower_to_decode']}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.projection", description="The follower's CPU per event.")
    parser.add_argument("--events", type=int, default=3000, help="events followed and counted (default 3000)")
    parser.add_argument("--batch", type=int, default=12, help="events recorded between two follower steps (default 12)")
    parser.add_argument("--clients", type=int, default=16, help="checks in flight (default 16)")
    parser.add_argument("--store", choices=("postgres", "sqlite", "both"), default="both")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per store, each on a fresh store")
    parser.add_argument("--json-out", help="also write the JSON summary to this file")
    args = parser.parse_args(argv)
    kinds = ["postgres", "sqlite"] if args.store == "both" else [args.store]
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for _ in range(args.repeat):
        for kind in kinds:
            result, discarded = stores.undisturbed(
                lambda kind=kind: measure(kind, args.events, args.batch, args.clients), kind  # type: ignore[misc]
            )
            result["discarded_runs_postgres_restarted"] = discarded
            runs[kind].append(result)
    summary = {
        **report.header("projection", argv),
        "settings": {"events": args.events, "batch": args.batch, "clients": args.clients, "store": args.store},
        "stores": runs,
    }
    report.emit(summary, human(summary), args.json_out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
