"""How `delivery.sender` reads an answer (httptools' parser over the raw socket): split across any number
of reads, 1xx interim answers skipped, chunked or content-length or until-close bodies, keep-alive or not,
and every malformed, overlong, truncated or hostile answer an `Unanswered` (a failed attempt), never another
exception; the request is written whole and a header or target that would break its framing is refused."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.sender import MAX_HEAD, READ_LIMIT, Answer, Sender, Unanswered, _read_answer
from tests.delivery.test_sender import Answer as Script
from tests.delivery.test_sender import RawServer, plain, post

Make = Callable[[Script], RawServer]


@pytest.fixture
def raw() -> Iterator[Make]:
    made: list[RawServer] = []

    def make(answer: Script) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for each in made:
        each.close()


class Reads:
    """A socket whose reads return `chunks` one after the other, then the end of the stream."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = list(chunks)

    def recv(self, size: int) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


def read(*chunks: bytes) -> tuple[Answer, bool]:
    return _read_answer(Reads(list(chunks)))  # type: ignore[arg-type]


def bytewise(data: bytes) -> list[bytes]:
    return [data[i : i + 1] for i in range(len(data))]


def test_an_answer_split_byte_by_byte_is_read_whole() -> None:
    data = b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\ncontent-length: 2\r\n\r\nok"
    assert read(*bytewise(data)) == (Answer(503, 7.0), True)
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n3;x=y\r\nabc\r\n0\r\n\r\n"
    assert read(*bytewise(chunked)) == (Answer(200, None), True)


def test_interim_answers_are_skipped() -> None:
    continued = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\nretry-after: 99\r\n\r\n"
    assert read(continued, b"HTTP/1.1 204 No Content\r\n\r\n") == (Answer(204, None), True)
    assert read(continued + b"HTTP/1.1 503 X\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n") == (Answer(503, 7.0), True)


def test_keep_alive_follows_the_version_and_the_connection_header() -> None:
    assert read(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok") == (Answer(200, None), False)
    assert read(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\nok") == (Answer(200, None), False)
    assert read(b"HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\nok") == (Answer(200, None), True)
    assert read(b"HTTP/1.1 200 OK\r\n\r\nthe body ends with the connection") == (Answer(200, None), False)
    assert read(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\nconnection: upgrade\r\n\r\nxx") == (Answer(101, None), False)


def test_bytes_after_the_answer_spoil_the_connection() -> None:
    assert read(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n")[1] is False
    assert read(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\ngarbage") == (Answer(200, None), False)


def test_a_body_past_read_limit_is_left_unread() -> None:
    big = b"x" * READ_LIMIT
    reads = Reads([b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n", big, big, b"never read"])
    assert _read_answer(reads) == (Answer(200, None), False)  # type: ignore[arg-type]
    assert reads.chunks == [big, b"never read"]
    chunk = b"%x\r\n%s\r\n" % (READ_LIMIT, big)
    reads = Reads([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", chunk, chunk, b"never read"])
    assert _read_answer(reads) == (Answer(200, None), False)  # type: ignore[arg-type]
    assert reads.chunks == [chunk, b"never read"]
    extensions = Reads([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;", *[b"e" * 8192] * 100])
    assert _read_answer(extensions) == (Answer(200, None), False)  # type: ignore[arg-type]
    assert len(extensions.chunks) > 80  # stopped after MAX_HEAD + 2 READ_LIMIT bytes, not at the end


@pytest.mark.parametrize(
    ("chunks", "error"),
    [
        ([], "closed the connection without answering"),
        ([b"HTTP/1.1 200 OK\r\ncontent-"], "closed the connection without answering"),
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort"], "before the answer's end"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nab"], "before the answer's end"),
        ([b"garbage\r\n\r\n"], "malformed answer"),
        ([b"SSH-2.0-OpenSSH_9.6\r\n"], "malformed answer"),
        ([b"HTTP/1.1 099 Low\r\ncontent-length: 0\r\n\r\n"], "malformed answer: status 99"),
        ([b"HTTP/1.1 2000 OK\r\n\r\n"], "malformed answer"),
        ([b"HTTP/2 200\r\n\r\n"], "malformed answer"),
        ([b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"], "malformed answer"),
        ([b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n"], "malformed answer"),
        ([b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"], "malformed answer"),
        ([b"HTTP/1.1 200 OK\r\nx: " + b"a" * 8192] + [b"a" * 8192] * 10, f"longer than {MAX_HEAD} bytes"),
        ([b"HTTP/1.1 100 Continue\r\n\r\n" * 3000], f"longer than {MAX_HEAD} bytes"),
    ],
)
def test_malformed_truncated_and_overlong_answers_are_unanswered(chunks: list[bytes], error: str) -> None:
    with pytest.raises(Unanswered, match=error):
        read(*chunks)


VALID = b"HTTP/1.1 200 OK\r\nretry-after: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_answer_is_an_answer_or_unanswered(data: st.DataObject) -> None:
    """Mutations of a valid answer, in any split: no other exception escapes to the dispatcher."""
    raw = bytearray(VALID)
    for _ in range(data.draw(st.integers(0, 6))):
        at = data.draw(st.integers(0, len(raw)))
        raw[at:at + data.draw(st.integers(0, 3))] = data.draw(st.binary(max_size=4))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    chunks = [bytes(raw[a:b]) for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if b > a]
    try:
        answer, _ = read(*chunks)
    except Unanswered:
        return
    assert 100 <= answer.status <= 999


def test_the_request_is_one_write(raw: Make) -> None:
    receiver = raw(plain(204, body=b""))
    sender = Sender(timeout=2.0)
    post(sender, receiver.url)  # connects
    writes: list[bytes] = []
    kept = next(iter(sender._local.kept.values()))
    real = kept.sock

    class Counting:
        def sendall(self, data: bytes) -> None:
            writes.append(data)
            real.sendall(data)

        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

    kept.sock = Counting()
    assert post(sender, receiver.url).status == 204
    (write,) = writes
    assert write.startswith(b"POST /hook HTTP/1.1\r\n") and write.endswith(b'\r\n\r\n{"a":1}')
    assert receiver.connections == 1


def test_a_target_or_header_that_would_break_the_framing_is_refused(raw: Make) -> None:
    receiver = raw(plain(200))
    sender = Sender(timeout=2.0)
    with pytest.raises(Unanswered, match="header name or value"):
        sender.post(receiver.url, b"{}", {"webhook-id": "7\r\nx-injected: 1"})
    with pytest.raises(Unanswered, match="request target"):
        sender.post(receiver.url + "/a%20b c", b"{}", {})
    with pytest.raises(Unanswered, match="request target"):
        sender.post(receiver.url + "/caf\u00e9", b"{}", {})
    assert receiver.requests == []


def test_the_connection_is_reused_only_after_a_whole_kept_alive_answer(raw: Make) -> None:
    def chunked(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        return True

    def twice(connection: socket.socket, head: bytes) -> bool:  # a second, unasked answer after the first
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\nHTTP/1.1 500 X\r\ncontent-length: 0\r\n\r\n")
        return True

    for script, connections in ((chunked, 1), (plain(200, "connection: close"), 3), (twice, 3)):
        receiver = raw(script)
        sender = Sender(timeout=2.0)
        assert [post(sender, receiver.url).status for _ in range(3)] == [200, 200, 200]
        assert receiver.connections == connections


def test_a_receiver_closing_early_is_unanswered_and_the_next_post_reconnects(raw: Make) -> None:
    def half(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly part")
        return False

    receiver = raw(half)
    sender = Sender(timeout=2.0)
    for _ in range(2):
        with pytest.raises(Unanswered, match="before the answer's end"):
            post(sender, receiver.url)
    assert receiver.connections == 2
