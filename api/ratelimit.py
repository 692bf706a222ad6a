"""Failed-authentication limiting per client address (brute force and credential stuffing).

A sliding window per address: the timestamps of its last ``limit`` failures. Once an address has failed
``limit`` times within ``window`` seconds, further *failed* attempts from it are answered 429
``too_many_requests`` with ``Retry-After`` instead of 401, until its oldest failure in the window ages
out. Valid keys are never slowed: the gateway still checks every presented key, and a valid one succeeds
from a limited address (one misconfigured client behind a NAT must not lock out its colleagues).

API keys carry 256 random bits, so online guessing cannot succeed either way; the limit bounds the cost
and noise of guessing (every attempt is a store lookup) and makes it visible (one warning per episode,
``nocert_auth_failures_total``).

Memory is bounded: at most ``max_addresses`` addresses (least recently failing evicted first), each with
at most ``limit`` timestamps. IPv6 addresses count per /64 network, since one host usually owns a whole
/64. The state is in-process: each worker of ``nocert serve --workers N`` limits on its own, so an
address may fail up to ``N × limit`` times per window across the deployment.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

LOG = logging.getLogger("nocert.ratelimit")

FAILURE_LIMIT = 100  # per address and window: room for a conformance run probing 401 on every endpoint
WINDOW_SECONDS = 60.0
MAX_ADDRESSES = 10_000


def client_key(host: str | None) -> str:
    """The unit an address is limited as: an IPv4 address, an IPv6 /64, or the raw text otherwise."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class AuthFailureLimiter:
    """Sliding-window counts of failed authentications per client address; thread-safe."""

    def __init__(
        self,
        limit: int = FAILURE_LIMIT,
        window: float = WINDOW_SECONDS,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_addresses < 1:
            raise ValueError("limit, window and max_addresses must be positive")
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._limited: set[str] = set()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._failures)

    def record_failure(self, host: str | None) -> float:
        """Records a failed authentication from ``host``. Returns 0 while the address is within its
        allowance (answer 401), else the seconds until it may fail again (answer 429 with Retry-After)."""
        key = client_key(host)
        now = self.clock()
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                failures = self._failures[key] = deque(maxlen=self.limit + 1)
                while len(self._failures) > self.max_addresses:
                    evicted, _ = self._failures.popitem(last=False)
                    self._limited.discard(evicted)
            else:
                self._failures.move_to_end(key)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            failures.append(now)
            if len(failures) <= self.limit:
                self._limited.discard(key)
                return 0.0
            # Over the limit: the window is full of recent failures; the oldest one frees a slot.
            retry_after = failures[1] + self.window - now if len(failures) > 1 else self.window
            if key not in self._limited:
                self._limited.add(key)
                LOG.warning(
                    "authentication failures from %s exceed %d in %.0f s: answering 429 to its failing attempts",
                    key,
                    self.limit,
                    self.window,
                )
            return max(retry_after, 0.001)

    def blocked_for(self, host: str | None) -> float:
        """Seconds until ``host`` may try again when it has already failed ``limit`` times within the window
        (0 when it may try now), recording nothing: for secrets weak enough to refuse before checking them
        (the workbench's passwords), where `record_failure` alone would let a limited address keep guessing."""
        key = client_key(host)
        now = self.clock()
        with self._lock:
            recent = [moment for moment in self._failures.get(key, ()) if moment > now - self.window]
        if len(recent) < self.limit:
            return 0.0
        return max(recent[-self.limit] + self.window - now, 0.001)

    def retry_after_header(self, seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
