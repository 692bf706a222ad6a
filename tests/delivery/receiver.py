"""A webhook receiver for the tests, answering on script: each request takes the next step of `script`
(``200``, ``500``, ``410``, ``("429", seconds)``, ``"timeout"`` = answer too late, ``"down"`` = 503),
then ``default``; `slow(body)` gives the seconds to think before answering (0: none). It records every
attempt (headers, body, the answer given, when it arrived and when it was answered) in arrival order."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Attempt:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    answer: str
    at: float = field(default_factory=time.time)
    ended: float = 0.0  # when the answer was written


class Receiver:
    def __init__(
        self,
        script: list[Any] | None = None,
        default: Any = 200,
        hang_seconds: float = 1.5,
        slow: Callable[[bytes], float] | None = None,
    ) -> None:
        self.script = list(script or [])
        self.default = default
        self.hang_seconds = hang_seconds
        self.down_until = 0.0  # answers 503 ("down") to every request before this time.time()
        self.attempts: list[Attempt] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    if time.time() < receiver.down_until:
                        step: Any = "down"
                    else:
                        step = receiver.script.pop(0) if receiver.script else receiver.default
                    attempt = Attempt(self.headers.get("webhook-id", ""), dict(self.headers), body, str(step))
                    receiver.attempts.append(attempt)
                if slow is not None:
                    time.sleep(slow(body))
                if step == "timeout":
                    time.sleep(receiver.hang_seconds)
                    step = 200
                if step == "down":
                    step = 503
                if isinstance(step, tuple):
                    self.send_response(int(step[0]))
                    self.send_header("Retry-After", str(step[1]))
                else:
                    self.send_response(int(step))
                self.send_header("content-length", "2")
                self.end_headers()
                try:
                    self.wfile.write(b"ok")
                    self.wfile.flush()
                except OSError:
                    pass
                attempt.ended = time.time()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def delivered(self) -> list[Attempt]:
        """The attempts answered 2xx (a timed-out one counts: the receiver got it)."""
        with self.lock:
            return [a for a in self.attempts if a.answer in ("200", "timeout", "204")]

    def delivered_ids(self) -> list[str]:
        return [a.webhook_id for a in self.delivered()]

    def wait_for(self, ids: set[str], timeout: float = 60.0) -> None:
        """Waits (not a timing assertion: the deadline only stops a hung test) until every id arrived."""
        deadline = time.monotonic() + timeout
        while not ids <= set(self.delivered_ids()):
            assert time.monotonic() < deadline, f"missing {sorted(ids - set(self.delivered_ids()))}; got {self.log()}"
            time.sleep(0.05)

    def log(self) -> str:
        with self.lock:
            start = self.attempts[0].at if self.attempts else 0.0
            return "\n".join(f"+{a.at - start:7.2f}s  webhook-id {a.webhook_id:>6}  {_what(a.body):<28} answered {a.answer}" for a in self.attempts)


def _what(body: bytes) -> str:
    """``Raised of 1b2c3d4e``: the event type and the check, from a CloudEvent body."""
    try:
        event = json.loads(body)
        return f"{event['data']['type']} of check {event['subject'][:8]}"
    except (ValueError, KeyError, TypeError):
        return "?"
