"""The POST of one delivery (API.md §11) over a kept-alive connection of the worker thread sending it: no
retries (the outbox schedules them), no redirects followed (a 3xx is an answer like any other non-2xx),
connecting and every read bounded by the timeout setting, at most `READ_LIMIT` bytes of the answer's body
read (a connection whose body was left unread is closed, not reused). TLS is verified as httpx does it,
against certifi's bundle or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``. The proxies of the environment
(``HTTPS_PROXY``, ``HTTP_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, as httpx and urllib read them) are used: an
https URL through a CONNECT tunnel, an http URL by its absolute form.

The standard library's `http.client` opens the connections (TCP, the CONNECT tunnel, TLS); the request is
then written in one ``sendall`` (request line, headers and body in one buffer) and the answer read with
httptools' (llhttp's) parser: a 1xx interim answer (``100 Continue``, ``103 Early Hints``) is skipped; a
head longer than `MAX_HEAD`, a malformed or truncated answer, or one closed before its head ended, is
`Unanswered` (the attempt failed). An answer ends with its content-length or last chunk, or, when it
names neither, with the connection; the connection is kept only when the answer ended, asked for nothing
else (HTTP/1.1 without ``connection: close``, or HTTP/1.0 with ``keep-alive``) and nothing followed it.

Not httpx, urllib3 or `http.client`'s own requests and answers: against ``bench.receiver`` a POST costs
about 55 µs of CPU this way, 115 µs with `http.client` (half of it its answer parsing, the headers by
`email.parser`), 0.3 ms with urllib3 and 0.6 ms with httpx, and the dispatcher's workers share their
process's CPU (and GIL) with the requests. Each worker keeps at most `KEPT` connections (one per host),
the least recently used closed."""

from __future__ import annotations

import base64
import http.client
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment  # type: ignore[attr-defined]

import httptools
import httpx

READ_LIMIT = 4096
MAX_HEAD = 65536  # bytes read before the answer's head ends (http.client's limit of one header line)
RECV = 8192  # bytes asked of one read
USER_AGENT = "nocert-webhooks/1"  # receivers and their firewalls may refuse a request that names no client
KEPT = 16  # connections kept per worker thread
_TARGET = re.compile(r"[\x21-\x7e]+")  # a request target: printable ASCII, no spaces (as http.client checks)
_NAMES = re.compile(r"(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:)*")  # header names (tokens), each followed by ":"
_VALUES = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")  # header values joined by tabs: no controls but tabs

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


def _host_header(key: Key) -> str:
    scheme, host, port = key
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    if ":" in host:
        host = f"[{host}]"
    return host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"


def _request(target: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """The request's bytes; ValueError for a target or header that would break the request's framing."""
    names = {name.lower() for name in headers}
    fields = {} if "host" in names else {"Host": host}
    if "accept-encoding" not in names:
        fields["Accept-Encoding"] = "identity"  # as http.client asks: no compressed answers
    fields.update(headers)
    if "content-length" not in names:
        fields["Content-Length"] = str(len(body))
    if not _TARGET.fullmatch(target):
        raise ValueError(f"the request target {target[:100]!r} has spaces, controls or non-ASCII characters")
    if not _NAMES.fullmatch("".join([f"{name}:" for name in fields])) or not _VALUES.fullmatch("\t".join(fields.values())):
        raise ValueError("a header name or value has a character that is not allowed")
    lines = "".join([f"{name}: {value}\r\n" for name, value in fields.items()])
    return f"POST {target} HTTP/1.1\r\n{lines}\r\n".encode("latin-1") + body


class _Reading:
    """What the parser has seen of one answer: `status` once its final (non-1xx) head ended, `done` once the
    answer ended, `extra` when more bytes followed it."""

    __slots__ = ("parser", "status", "retry_after", "framed", "body", "done", "keep", "extra")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.status: int | None = None
        self.retry_after: bytes | None = None
        self.framed = False  # a content-length or chunked answer: it ends there, not with the connection
        self.body = 0
        self.done = self.keep = self.extra = False

    def on_message_begin(self) -> None:
        self.extra = self.done

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.done:  # of what follows the answer
            return
        name = name.lower()
        if name == b"retry-after":
            self.retry_after = value
        elif name == b"content-length" or (name == b"transfer-encoding" and b"chunked" in value.lower()):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.done:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # interim: the answer follows (101 is one: nothing follows)
            self.retry_after, self.framed = None, False
        else:
            self.status = status

    def on_body(self, chunk: bytes) -> None:
        self.body += len(chunk)

    def on_message_complete(self) -> None:
        if self.done:
            return
        self.done = self.status is not None
        self.keep = self.parser.should_keep_alive()  # here: llhttp forgets it once the answer has ended


def _read_answer(sock: socket.socket) -> tuple[Answer, bool]:
    """The answer read from `sock` (each read bounded by its timeout); whether the connection can be reused."""
    reading = _Reading()
    feed = reading.parser.feed_data
    received = 0
    broken = False  # the parser refused what followed the answer
    while True:
        data = sock.recv(RECV)
        if not data:  # the receiver closed the connection
            if reading.status is None:
                raise Unanswered("the receiver closed the connection without answering")
            if reading.framed and not reading.done:
                raise Unanswered("the receiver closed the connection before the answer's end")
            broken = True
            break
        received += len(data)
        try:
            feed(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            if not reading.done:
                raise Unanswered(f"malformed answer: {type(error).__name__}: {error}"[:300]) from None
            broken = True
        if reading.status is not None and reading.status < 100:
            raise Unanswered(f"malformed answer: status {reading.status}")
        if reading.done or broken:
            break
        if reading.status is None:
            if received > MAX_HEAD:
                raise Unanswered(f"malformed answer: its head is longer than {MAX_HEAD} bytes")
        elif reading.body >= READ_LIMIT or received > MAX_HEAD + 2 * READ_LIMIT:
            broken = True  # the rest is left unread
            break
    status = reading.status
    assert status is not None
    value = reading.retry_after
    answer = Answer(status, retry_after(value.decode("latin-1") if value is not None else None, time.time()))
    return answer, reading.keep and not broken and not reading.extra


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
            request = _request(target, _host_header(key), {"User-Agent": USER_AGENT, **headers, **extra}, body)
        except ValueError as error:  # a URL or header http.client would have refused too (nothing was sent)
            raise Unanswered(f"{type(error).__name__}: {error}"[:300]) from None
        try:
            if connection.sock is None:
                connection.connect()  # TCP, the CONNECT tunnel, TLS and its checks
            sock = connection.sock
            sock.sendall(request)
            answer, reusable = _read_answer(sock)
        except TimeoutError:
            self._drop(key, connection)
            raise Unanswered(f"no answer within {self.timeout:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            self._drop(key, connection)
            raise Unanswered(f"{type(error).__name__}: {error}"[:300]) from None
        except Unanswered:
            self._drop(key, connection)
            raise
        if not reusable:
            connection.close()  # kept: the next POST opens a new one
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
