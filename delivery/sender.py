"""The POST of one delivery (API.md §11) over a kept-alive connection of the worker thread sending it (the
standard library's `http.client`; TLS verified as httpx does it, against certifi's bundle or
``SSL_CERT_FILE`` / ``SSL_CERT_DIR``): no retries (the outbox schedules them), no redirects followed (a 3xx
is an answer like any other non-2xx), connecting and every read bounded by the timeout setting, at most
`READ_LIMIT` bytes of the answer's body read (a connection whose body was left unread is closed, not reused). The proxies of the environment (``HTTPS_PROXY``,
``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as httpx and urllib read them) are used: an https URL through a
CONNECT tunnel, an http URL by its absolute form.

`http.client` rather than httpx or urllib3: a delivery's POST costs about 0.15 ms of CPU with it, 0.3 ms
with urllib3 and 0.6 ms with httpx, and the dispatcher's workers share their process's CPU (and GIL) with
the requests. Each worker keeps at most `KEPT` connections (one per host), the least recently used closed."""

from __future__ import annotations

import base64
import http.client
import select
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httpx

READ_LIMIT = 4096
USER_AGENT = "nocert-webhooks/1"  # receivers and their firewalls may refuse a request that names no client
KEPT = 16  # connections kept per worker thread

Key = tuple[str, str, int]  # scheme, host, port


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


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle kept-alive connection the receiver closed (or wrote to unasked): not to be reused."""
    sock = connection.sock
    if sock is None:
        return False  # closed by us after a "connection: close": http.client opens a new one
    try:
        poller = select.poll()  # not select.select: a process with many files has descriptors past 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    authorization: dict[str, str]  # Proxy-Authorization from the proxy URL's user and password, if any

    @staticmethod
    def of(url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// proxies are supported, not {url!r}")
        authorization = {}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}
        return Proxy(parts.hostname, parts.port or 80, authorization)


class Sender:
    def __init__(
        self, timeout: float, context: ssl.SSLContext | None = None, proxies: dict[str, str] | None = None
    ) -> None:
        """`proxies`: scheme (or ``all``, ``no``) to proxy URL, as `urllib.request.getproxies_environment`
        reads them (the default)."""
        self.timeout = timeout
        self.context = context if context is not None else httpx.create_ssl_context()  # certifi's, or SSL_CERT_FILE/DIR
        self.proxies = getproxies_environment() if proxies is None else proxies
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, for `close`

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The answer's status (its body read at most `READ_LIMIT` bytes); `Unanswered` when there is none."""
        try:
            parts = urlsplit(url)
            key: Key = (parts.scheme, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except ValueError as error:
            raise Unanswered(f"ValueError: {error}"[:300]) from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection, absolute, extra = self._connection(key)
        except ValueError as error:  # a proxy setting we cannot use
            raise Unanswered(f"ValueError: {error}"[:300]) from None
        if absolute:
            target = parts._replace(fragment="").geturl()
        try:
            connection.request("POST", target, body=body, headers={"User-Agent": USER_AGENT, **headers, **extra})
            response = connection.getresponse()
            response.read(READ_LIMIT)
            answer = Answer(response.status, retry_after(response.getheader("retry-after"), time.time()))
            if not response.isclosed():  # more body than we read: the connection cannot be reused
                response.close()
                self._drop(key, connection)
        except TimeoutError:
            self._drop(key, connection)
            raise Unanswered(f"no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            self._drop(key, connection)
            raise Unanswered(f"{type(error).__name__}: {error}"[:300]) from None
        return answer

    def _proxy(self, scheme: str, host: str) -> Proxy | None:
        url = self.proxies.get(scheme) or self.proxies.get("all")
        if not url:
            return None
        if "no" in self.proxies and proxy_bypass_environment(host, self.proxies):
            return None
        return Proxy.of(url)

    def _connection(self, key: Key) -> tuple[http.client.HTTPConnection, bool, dict[str, str]]:
        """The thread's connection for `key`; whether the request names the absolute URL (an http proxy);
        the headers the proxy needs."""
        scheme, host, port = key
        proxy = self._proxy(scheme, host)
        absolute = proxy is not None and scheme != "https"
        extra = proxy.authorization if absolute and proxy is not None else {}
        kept: dict[Key, http.client.HTTPConnection] | None = getattr(self._local, "kept", None)
        if kept is None:
            kept = self._local.kept = {}
        connection = kept.pop(key, None)
        if connection is not None and _dropped(connection):
            connection.close()
        if connection is None:
            at_host, at_port = (proxy.host, proxy.port) if proxy is not None else (host, port)
            if scheme == "https":
                connection = http.client.HTTPSConnection(at_host, at_port, timeout=self.timeout, context=self.context)
                if proxy is not None:  # a CONNECT tunnel to the receiver; TLS (and its checks) with the receiver
                    connection.set_tunnel(host, port, headers=proxy.authorization or None)
            else:
                connection = http.client.HTTPConnection(at_host, at_port, timeout=self.timeout)
            with self._lock:
                self._open.add(connection)
            while len(kept) >= KEPT:
                oldest = next(iter(kept))
                self._drop(oldest, kept.pop(oldest))
        kept[key] = connection  # the most recently used last
        return connection, absolute, extra

    def _drop(self, key: Key, connection: http.client.HTTPConnection) -> None:
        kept: dict[Key, http.client.HTTPConnection] = getattr(self._local, "kept", {})
        if kept.get(key) is connection:
            del kept[key]
        connection.close()
        with self._lock:
            self._open.discard(connection)

    def close(self) -> None:
        """Closes every worker's connections (the workers have stopped)."""
        with self._lock:
            open_, self._open = self._open, set()
        for connection in open_:
            connection.close()
