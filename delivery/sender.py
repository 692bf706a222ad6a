"""The POST of one delivery (API.md §11), through a urllib3 pool of kept-alive connections: no retries (the
outbox schedules them), no redirects followed (a 3xx is an answer like any other non-2xx), connecting and
every read bounded by the timeout setting, the whole answer within it too, and at most `READ_LIMIT` bytes of
the answer's body read (a connection whose body was left unread is closed, not reused).

urllib3 rather than httpx: it costs a few times less CPU per request, and the dispatcher's workers share
their process's CPU (and GIL) with the requests."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import urllib3
from urllib3.exceptions import HTTPError, NewConnectionError
from urllib3.exceptions import TimeoutError as NoAnswerInTime

READ_LIMIT = 4096
POOLS = 64  # hosts whose connections are kept


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None  # seconds, from a Retry-After header


class Unanswered(Exception):
    """No answer: a connection error or the timeout; the text is the delivery's ``last_error``."""


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


def pool_manager(timeout: float, connections: int) -> urllib3.PoolManager:
    """The pool of the dispatcher's workers: `connections` kept per host (one per worker)."""
    return urllib3.PoolManager(
        num_pools=POOLS,
        maxsize=connections,
        block=False,
        retries=False,
        timeout=urllib3.Timeout(connect=timeout, read=timeout, total=timeout),
    )


class Sender:
    def __init__(self, timeout: float, connections: int, pool: urllib3.PoolManager | None = None) -> None:
        self.timeout = timeout
        self.pool = pool if pool is not None else pool_manager(timeout, connections)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The answer's status (its body read at most `READ_LIMIT` bytes); `Unanswered` when there is none."""
        try:
            response = self.pool.urlopen(
                "POST", url, body=body, headers=headers, redirect=False, retries=False, preload_content=False
            )
            try:
                response.read(READ_LIMIT, decode_content=False)
                answer = Answer(response.status, retry_after(response.headers.get("retry-after"), time.time()))
            finally:
                if not response.closed:  # more body than we read: the connection cannot be reused
                    response.close()
                response.release_conn()
        except NewConnectionError as error:  # a subclass of urllib3's TimeoutError, whatever the cause
            raise Unanswered(f"{type(error).__name__}: {error}"[:300]) from None
        except (NoAnswerInTime, TimeoutError):  # urllib3's, and a socket's should one get through
            raise Unanswered(f"no answer within {self.timeout:g} s") from None
        except (HTTPError, OSError) as error:
            raise Unanswered(f"{type(error).__name__}: {error}"[:300]) from None
        return answer

    def close(self) -> None:
        self.pool.clear()
