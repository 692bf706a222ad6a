"""The webhook receiver of ``bench.webhooks``: a process of its own (spawned, so it shares neither the GIL
nor the CPU time of the load client) running one asyncio server that answers ``204`` with
``content-length: 0`` to every request on kept-alive connections and remembers the first ``time.time()``
at which each (path, ``webhook-id``) arrived.

It parses HTTP/1.1 requests just enough for that (request line, headers, a ``content-length`` body), from
bytes that may hold several pipelined requests or a part of one. The parent talks to it over a pipe:
``count`` (how many (path, webhook-id) were seen), ``collect`` (the dict) and ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, cast

NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
MAX_HEAD = 64 * 1024

FirstSeen = dict[tuple[str, str], float]


class BadRequest(ValueError):
    """Bytes the receiver cannot read as an HTTP/1.1 request with a content-length body."""


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: dict[str, str]  # names in lower case
    body: bytes


class RequestParser:
    """Feed it the bytes of one connection as they come; it returns the requests they complete."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.head: tuple[str, str, dict[str, str], int] | None = None  # parsed, waiting for its body
        self.body_at = 0

    def feed(self, data: bytes) -> list[Request]:
        self.buffer += data
        requests: list[Request] = []
        while True:
            if self.head is None:
                while self.buffer[:2] == b"\r\n":  # empty lines before a request line are allowed (RFC 9112 2.2)
                    del self.buffer[:2]
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    if len(self.buffer) > MAX_HEAD:
                        raise BadRequest("request head too long")
                    return requests
                self.head = self._head(bytes(self.buffer[:end]).decode("latin-1"))
                self.body_at = end + 4
            method, target, headers, length = self.head
            if len(self.buffer) < self.body_at + length:
                return requests
            body = bytes(self.buffer[self.body_at : self.body_at + length])
            del self.buffer[: self.body_at + length]
            self.head = None
            requests.append(Request(method, target, headers, body))

    @staticmethod
    def _head(text: str) -> tuple[str, str, dict[str, str], int]:
        request_line, *lines = text.split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise BadRequest(f"request line {request_line[:80]!r}")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon or not name or name != name.strip():
                raise BadRequest(f"header line {line[:80]!r}")
            headers[name.lower()] = value.strip(" \t")
        if "transfer-encoding" in headers:
            raise BadRequest("transfer-encoding is not supported (the dispatcher sends content-length)")
        length = headers.get("content-length", "0")
        if not length.isdigit():
            raise BadRequest(f"content-length {length[:20]!r}")
        return parts[0], parts[1], headers, int(length)


class ReceiverProtocol(asyncio.Protocol):
    """One connection: every complete request is answered 204 at once and its first sight recorded (the
    time of the read that completed it)."""

    def __init__(self, first_seen: FirstSeen) -> None:
        self.first_seen = first_seen
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        seen = time.time()
        try:
            requests = self.parser.feed(data)
        except BadRequest:
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            return
        for request in requests:
            self.first_seen.setdefault((request.target, request.headers.get("webhook-id", "")), seen)
        if requests:
            self.transport.write(NO_CONTENT * len(requests))
            if requests[-1].headers.get("connection", "").lower() == "close":
                self.transport.close()


async def serve(control: Connection) -> None:
    """Serves on 127.0.0.1 (a free port, sent to the parent first) until the parent says ``stop``."""
    loop = asyncio.get_running_loop()
    first_seen: FirstSeen = {}
    server = await loop.create_server(lambda: ReceiverProtocol(first_seen), "127.0.0.1", 0)
    control.send(server.sockets[0].getsockname()[1])
    stopped = loop.create_future()

    def command() -> None:
        try:
            what = control.recv()
        except EOFError:  # the parent is gone
            what = "stop"
        if what == "count":
            control.send(len(first_seen))
        elif what == "collect":
            # The loop's reader made the pipe non-blocking: a table larger than the pipe's buffer would fail
            # (EAGAIN) half written. The parent reads it at once; send it whole.
            os.set_blocking(control.fileno(), True)
            try:
                control.send(dict(first_seen))
            finally:
                os.set_blocking(control.fileno(), False)
        elif not stopped.done():
            stopped.set_result(None)

    loop.add_reader(control.fileno(), command)
    try:
        await stopped
    finally:
        loop.remove_reader(control.fileno())
        server.close()


def main(control: Connection) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(control))
    else:
        uvloop.run(serve(control))


class Receiver:
    """The receiver process, seen from the benchmark: its base URL, the count and the dict of first sights."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.control, child = context.Pipe()
        self.process: Any = context.Process(target=main, args=(child,), name="bench-webhook-receiver", daemon=True)
        self.process.start()
        child.close()
        try:
            if not self.control.poll(60):
                raise EOFError
            port = self.control.recv()
        except EOFError:
            self.close()
            raise RuntimeError("the webhook receiver did not start within 60 s (or died starting)") from None
        self.base = f"http://127.0.0.1:{port}"

    def _ask(self, what: str) -> Any:
        self.control.send(what)
        return self.control.recv()

    def count(self) -> int:
        count: int = self._ask("count")
        return count

    def first_seen(self) -> FirstSeen:
        seen: FirstSeen = self._ask("collect")
        return seen

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.control.send("stop")
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout=10)
        self.control.close()
