"""One delivery's POST (`delivery.sender`, API.md §11) against raw local servers: the answer's body is read at
most `READ_LIMIT` bytes (a receiver that sends more, then stalls, still answers in time), redirects are not
followed, Retry-After is read, no answer within the timeout and a refused connection are `Unanswered`, a
kept-alive connection is reused and one the receiver dropped is not, TLS verifies the receiver's
certificate and host name; and a round (`Round`) resolves a URL's
host once, the next round again."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from delivery.dispatcher import Round
from delivery.sender import READ_LIMIT, Sender, Unanswered

Answer = Callable[[socket.socket, bytes], bool]  # writes the answer to a request; True: keep the connection


class RawServer:
    """Reads one request at a time per connection and lets `answer` write whatever it likes."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request head and body)
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(connection, self.connections), daemon=True).start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        if self.tls is not None:
            try:
                connection = self.tls.wrap_socket(connection, server_side=True)
            except (OSError, ssl.SSLError):
                connection.close()
                return
        with connection:
            buffered = b""
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                length = next(
                    (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
                )
                while len(buffered) < length:
                    buffered += connection.recv(65536)
                body, buffered = buffered[:length], buffered[length:]
                self.requests.append((number, head + b"\r\n\r\n" + body))
                try:
                    if not self.answer(connection, head):
                        return
                except OSError:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server() -> Iterator[Callable[[Answer], RawServer]]:
    made: list[RawServer] = []

    def make(answer: Answer) -> RawServer:
        made.append(RawServer(answer))
        return made[-1]

    yield make
    for each in made:
        each.close()


def plain(status: int, *headers: str, body: bytes = b"ok") -> Answer:
    def answer(connection: socket.socket, head: bytes) -> bool:
        lines = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", *headers]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        return True

    return answer


def post(sender: Sender, url: str) -> Any:
    return sender.post(url, b'{"a":1}', {"content-type": "application/cloudevents+json", "webhook-id": "7"})


def test_the_body_is_read_at_most_read_limit_bytes(server: Callable[[Answer], RawServer]) -> None:
    def huge_then_stall(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 10000000\r\n\r\n" + b"x" * (2 * READ_LIMIT))
        time.sleep(3)  # longer than the timeout: reading past READ_LIMIT would wait for this
        return False

    receiver = server(huge_then_stall)
    sender = Sender(timeout=1.0)
    assert post(sender, receiver.url).status == 200
    assert post(sender, receiver.url).status == 200
    assert receiver.connections == 2  # the half-read connection was closed, not reused


def test_kept_alive_connections_are_reused_and_a_dropped_one_is_not(server: Callable[[Answer], RawServer]) -> None:
    keep = server(plain(204, body=b""))
    sender = Sender(timeout=2.0)
    for _ in range(3):
        assert post(sender, keep.url).status == 204
    assert keep.connections == 1 and [n for n, _ in keep.requests] == [1, 1, 1]

    def answer_then_drop(connection: socket.socket, head: bytes) -> bool:
        plain(200)(connection, head)
        return False  # closes the connection without saying so (no "connection: close")

    dropping = server(answer_then_drop)
    assert post(sender, dropping.url).status == 200
    time.sleep(0.2)  # the close has arrived
    assert post(sender, dropping.url).status == 200
    assert dropping.connections == 2


def test_redirects_are_answers_not_followed(server: Callable[[Answer], RawServer]) -> None:
    target = server(plain(200))
    redirecting = server(plain(302, f"location: {target.url}"))
    answer = post(Sender(timeout=2.0), redirecting.url)
    assert answer.status == 302
    assert target.requests == []


def test_retry_after_is_read(server: Callable[[Answer], RawServer]) -> None:
    answer = post(Sender(timeout=2.0), server(plain(503, "Retry-After: 7")).url)
    assert (answer.status, answer.retry_after) == (503, 7.0)
    assert post(Sender(timeout=2.0), server(plain(500)).url).retry_after is None


def test_no_answer_and_no_connection_are_unanswered(server: Callable[[Answer], RawServer]) -> None:
    def never(connection: socket.socket, head: bytes) -> bool:
        time.sleep(3)
        return False

    silent = server(never)
    with pytest.raises(Unanswered, match=r"no answer within 0\.3 s"):
        post(Sender(timeout=0.3), silent.url)
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(Unanswered, match="Connection"):
        post(Sender(timeout=2.0), f"http://127.0.0.1:{port}/hook")


def test_the_request_is_what_was_asked(server: Callable[[Answer], RawServer]) -> None:
    receiver = server(plain(200))
    post(Sender(timeout=2.0), receiver.url)
    (_, request), = receiver.requests
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hook HTTP/1.1" and body == b'{"a":1}'
    assert {"content-type: application/cloudevents+json", "webhook-id: 7", "content-length: 7"} <= {line.lower() for line in lines}
    assert "user-agent: nocert-webhooks/1" in {line.lower() for line in lines}  # named, as httpx named itself


def test_a_round_resolves_each_host_once_and_the_next_round_again(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"hook.example": "93.184.216.34"}
    asked: list[str] = []

    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list[Any]:
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], 443))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    def fresh() -> Round:
        return Round(lambda due: b"", keys=None, allow=("http://127.0.0.1",))  # type: ignore[arg-type]

    first = fresh()
    assert first.refusal("https://hook.example/a") is None
    answers["hook.example"] = "10.1.2.3"  # DNS changes within the round: this round keeps what it checked
    assert first.refusal("https://hook.example/a") is None
    assert asked == ["hook.example"]
    assert fresh().refusal("https://hook.example/a") == "the host 'hook.example' resolves to an internal address"
    assert asked == ["hook.example"] * 2
    assert first.refusal("http://127.0.0.1:9/x") is None and asked == ["hook.example"] * 2  # allowed: no DNS


def _certificate(tmp_path: Any, names: list[str]) -> tuple[str, str]:
    """A self-signed certificate for `names` (DNS names or IP addresses), as PEM files: (certificate, key)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"receiver {names[0]}")])
    alternatives: list[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / f"{names[0]}.pem", tmp_path / f"{names[0]}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls_verifies_the_receivers_certificate_and_name(tmp_path: Any) -> None:
    made = []
    for names in (["127.0.0.1"], ["elsewhere.test"]):
        cert, key = _certificate(tmp_path, names)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        made.append((RawServer(plain(200), tls=context), cert))
    try:
        (right, right_cert), (wrong, wrong_cert) = made
        with pytest.raises(Unanswered, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            post(Sender(timeout=2.0), right.url)  # the default trust store does not know it
        trusting = ssl.create_default_context(cafile=right_cert)
        trusting.load_verify_locations(wrong_cert)
        assert post(Sender(timeout=2.0, context=trusting), right.url).status == 200
        with pytest.raises(Unanswered, match="IP address mismatch|hostname mismatch|doesn't match"):
            post(Sender(timeout=2.0, context=trusting), wrong.url)  # a trusted certificate of another name
        assert len(right.requests) == 1 and wrong.requests == []  # the refused ones never sent a request
    finally:
        for server, _ in made:
            server.close()


def test_the_environments_proxies_are_used(server: Callable[[Answer], RawServer]) -> None:
    receiver = server(plain(200))
    proxy = server(plain(200))
    proxy_url = proxy.url.removesuffix("/hook").replace("http://", "http://user:pa%20ss@")
    assert post(Sender(timeout=2.0, proxies={"http": proxy_url}), receiver.url).status == 200
    (_, request), = proxy.requests
    lines = request.partition(b"\r\n\r\n")[0].decode().split("\r\n")
    assert lines[0] == f"POST {receiver.url} HTTP/1.1"  # the absolute form, to the proxy
    assert "proxy-authorization: basic dxnlcjpwysbzcw==" in {line.lower() for line in lines}  # user:pa ss
    assert receiver.requests == []
    assert post(Sender(timeout=2.0, proxies={"http": proxy_url, "no": "127.0.0.1"}), receiver.url).status == 200
    assert len(receiver.requests) == 1 and len(proxy.requests) == 1  # NO_PROXY: straight to the receiver

    def refuse_tunnels(connection: socket.socket, head: bytes) -> bool:
        connection.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
        return False

    tunnels = server(refuse_tunnels)
    https_url = receiver.url.replace("http://", "https://")
    with pytest.raises(Unanswered, match="Tunnel connection failed: 403"):
        post(Sender(timeout=2.0, proxies={"https": tunnels.url.removesuffix("/hook")}), https_url)
    (_, connect), = tunnels.requests
    assert connect.startswith(f"CONNECT {https_url.split('/')[2]} HTTP/1.".encode())
    assert len(receiver.requests) == 1
