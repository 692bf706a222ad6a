"""The webhook receiver of bench.webhooks reads HTTP/1.1 requests however TCP cuts them: split at any byte,
several in one read, and answers each one 204 on the same connection from its own process."""

from __future__ import annotations

import socket
import time

import pytest

from bench.receiver import BadRequest, Receiver, Request, RequestParser


def delivery(path: str, webhook_id: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: application/json\r\n"
        f"webhook-id: {webhook_id}\r\nwebhook-timestamp: 1764720000\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


FIRST = delivery("/s0", "17", '{"type":"check.raised","data":{"name":"林某某"}}'.encode())
SECOND = delivery("/s3", "18", b'{"type":"check.closed"}')


def test_one_request_split_at_every_byte_boundary() -> None:
    for cut in range(1, len(FIRST)):
        parser = RequestParser()
        assert parser.feed(FIRST[:cut]) == []
        [request] = parser.feed(FIRST[cut:])
        assert (request.method, request.target, request.headers["webhook-id"]) == ("POST", "/s0", "17")
        assert request.body == '{"type":"check.raised","data":{"name":"林某某"}}'.encode()
        assert parser.buffer == bytearray()


def test_one_byte_at_a_time() -> None:
    parser = RequestParser()
    requests: list[Request] = []
    for byte in FIRST + SECOND:
        requests += parser.feed(bytes([byte]))
    assert [(r.target, r.headers["webhook-id"]) for r in requests] == [("/s0", "17"), ("/s3", "18")]


def test_two_requests_in_one_read_and_pipelined_across_a_cut() -> None:
    both = FIRST + SECOND
    assert [r.target for r in RequestParser().feed(both)] == ["/s0", "/s3"]
    for cut in range(1, len(both)):
        parser = RequestParser()
        requests = parser.feed(both[:cut]) + parser.feed(both[cut:])
        assert [(r.target, r.headers["webhook-id"], r.body) for r in requests] == [
            ("/s0", "17", FIRST.split(b"\r\n\r\n", 1)[1]),
            ("/s3", "18", b'{"type":"check.closed"}'),
        ]


def test_a_request_without_a_body_and_empty_lines_between_requests() -> None:
    bare = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    requests = RequestParser().feed(bare + b"\r\n" + SECOND)
    assert [(r.method, r.target, r.body) for r in requests] == [("GET", "/health", b""), ("POST", "/s3", b'{"type":"check.closed"}')]


@pytest.mark.parametrize(
    "head",
    [
        b"POST /s0\r\n\r\n",
        b"POST /s0 HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /s0 HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /s0 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_what_it_cannot_read_is_refused(head: bytes) -> None:
    with pytest.raises(BadRequest):
        RequestParser().feed(head)


def read_answers(sock: socket.socket, count: int) -> bytes:
    answer = b""
    while answer.count(b"\r\n\r\n") < count:
        chunk = sock.recv(4096)
        assert chunk, "the receiver closed the connection"
        answer += chunk
    return answer


def test_the_receiver_process_answers_204_on_a_kept_alive_connection_and_returns_first_sights() -> None:
    receiver = Receiver()
    try:
        port = int(receiver.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(FIRST + SECOND)  # pipelined
            assert read_answers(sock, 2) == b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n" * 2
            sock.sendall(FIRST[:10])
            sock.sendall(FIRST[10:])  # a redelivery of 17 on the same connection
            assert read_answers(sock, 1).startswith(b"HTTP/1.1 204 ")
        assert receiver.count() == 2
        seen = receiver.first_seen()
        assert set(seen) == {("/s0", "17"), ("/s3", "18")}
        assert all(isinstance(moment, float) for moment in seen.values())
    finally:
        receiver.close()
    assert not receiver.process.is_alive()


@pytest.mark.timeout(60)  # a half-sent table leaves the read hanging
def test_first_sights_larger_than_a_pipe_buffer_come_back_whole() -> None:
    """A benchmark's table of deliveries larger than the pipe's buffers once failed half sent (EAGAIN)."""
    receiver = Receiver()
    count = 30000  # ~600 KB pickled: over both socket buffers of the pipe (~200 KiB each)
    try:
        port = int(receiver.base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            for start in range(0, count, 500):
                sock.sendall(b"".join(delivery(f"/s{number % 4}", str(number), b"{}") for number in range(start, start + 500)))
                read_answers(sock, 500)
        receiver.control.send("collect")
        time.sleep(0.5)  # a busy benchmark reads late: the receiver fills the pipe meanwhile (not a timing assertion)
        assert receiver.control.poll(30), "the receiver sent no table (its send failed)"
        seen = receiver.control.recv()
        assert len(seen) == count
        assert receiver.count() == count  # and it still answers
    finally:
        receiver.close()
