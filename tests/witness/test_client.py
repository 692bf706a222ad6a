"""The platform's witness client: 409 recovery, bounded retries with back-off, and never raising."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.testclient import TestClient

from signing.note import open_note, parse_vkey
from tests.witness.conftest import ORIGIN, Log
from witness import client as wc
from witness.app import create_app
from witness.core import Witness


def endpoint(witness: Witness, url: str = "http://witness.test") -> wc.WitnessEndpoint:
    return wc.WitnessEndpoint(parse_vkey(witness.vkey), url)


def real(witness: Witness, **options) -> wc.WitnessClient:  # type: ignore[no-untyped-def]
    """A client of the witness's app in this process."""
    return wc.WitnessClient(endpoint(witness), http=TestClient(create_app(witness), base_url="http://witness.test"), **options)


def mocked(witness: Witness, handler: Callable[[httpx.Request], httpx.Response], sleeps: list[float], **options) -> wc.WitnessClient:  # type: ignore[no-untyped-def]
    return wc.WitnessClient(
        endpoint(witness), http=httpx.Client(transport=httpx.MockTransport(handler)), sleep=sleeps.append, **options
    )


def test_a_sequence_of_checkpoints_is_cosigned(witness: Witness, log: Log) -> None:
    client = real(witness)
    for grow in (0, 1, 7, 30):
        log.grow(grow)
        result = client.submit(log.note(), log.proof)
        assert result.ok and result.tree_size == log.size and result.requests == 1, result
        served = wc.with_cosignatures(log.note(), [result])
        assert len(open_note(served, [parse_vkey(witness.vkey), parse_vkey(log.vkey)]).verified) == 2


def test_a_client_that_forgot_the_size_recovers_from_409(witness: Witness, log: Log) -> None:
    assert real(witness).submit(log.note(), log.proof).ok
    log.grow(5)
    asked: list[tuple[int, int]] = []

    def proof(old: int, new: int) -> list[bytes]:
        asked.append((old, new))
        return log.proof(old, new)

    fresh = real(witness)  # e.g. after a restart of the platform
    result = fresh.submit(log.note(), proof)
    assert result.ok and result.requests == 2 and asked == [(10, 15)]
    # A wrong hint from the caller is corrected the same way.
    log.grow(1)
    result = fresh.submit(log.note(), proof, old_size=3)
    assert result.ok and result.requests == 2 and asked[-1] == (15, 16)


def test_a_witness_ahead_of_the_log_is_reported_as_such(witness: Witness, log: Log) -> None:
    assert real(witness).submit(log.note(), log.proof).ok
    rolled_back = Log(size=6)
    rolled_back.signer = log.signer
    rolled_back.leaves = log.leaves[:6]
    result = real(witness).submit(rolled_back.note(), rolled_back.proof)
    assert (result.status, result.witness_size, result.tree_size) == (wc.WITNESS_AHEAD, 10, 6)
    assert not result.ok and not result.cosignatures


def test_an_inconsistent_checkpoint_is_refused(witness: Witness, log: Log) -> None:
    client = real(witness)
    assert client.submit(log.note(), log.proof).ok
    fork = Log(size=12, seed="rewritten ")
    fork.signer = log.signer
    result = client.submit(fork.note(), fork.proof)
    assert (result.status, result.http_status) == (wc.REFUSED, 422)
    assert witness.state.latest(ORIGIN).size == 10


def test_transient_failures_are_retried_with_back_off_then_given_up(witness: Witness, log: Log) -> None:
    sleeps: list[float] = []
    calls: list[int] = []
    app = TestClient(create_app(witness), base_url="http://witness.test")

    def flaky(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(calls) == 2:
            return httpx.Response(503)
        return app.post("/add-checkpoint", content=request.content)

    result = mocked(witness, flaky, sleeps, attempts=3, backoff=(0.5, 8.0)).submit(log.note(), log.proof)
    assert result.ok and result.requests == 3 and len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 1.5  # 0.5 then 1.0, each plus up to 0.5 of jitter

    sleeps.clear()

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    result = mocked(witness, down, sleeps, attempts=4).submit(log.note(), log.proof)
    assert (result.status, result.requests, len(sleeps)) == (wc.UNREACHABLE, 4, 3)
    assert "ReadTimeout" in result.detail
    result = mocked(witness, lambda request: httpx.Response(429), sleeps, attempts=2).submit(log.note(), log.proof)
    assert (result.status, result.requests) == (wc.UNREACHABLE, 2)


def test_refusals_are_not_retried(witness: Witness, log: Log) -> None:
    sleeps: list[float] = []
    for status in (400, 403, 404, 413, 422):
        result = mocked(witness, lambda request, s=status: httpx.Response(s, text="no"), sleeps).submit(log.note(), log.proof)
        assert (result.status, result.http_status, result.requests) == (wc.REFUSED, status, 1)
    assert sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(409, text="10\n"),  # not text/x.tlog.size
        httpx.Response(409, text="10", headers={"content-type": "text/x.tlog.size"}),
        httpx.Response(409, text="010\n", headers={"content-type": "text/x.tlog.size"}),
        httpx.Response(409, text="ten\n", headers={"content-type": "text/x.tlog.size"}),
    ],
)
def test_a_409_without_a_size_is_an_invalid_answer(witness: Witness, log: Log, response: httpx.Response) -> None:
    result = mocked(witness, lambda request: response, []).submit(log.note(), log.proof)
    assert result.status == wc.INVALID_ANSWER


def test_endless_409s_stop(witness: Witness, log: Log) -> None:
    sizes = iter(range(1, 100))
    result = mocked(
        witness, lambda request: httpx.Response(409, text=f"{next(sizes)}\n", headers={"content-type": "text/x.tlog.size"}), [],
        max_conflicts=3,
    ).submit(log.note(), log.proof)
    assert result.status == wc.CONFLICT and result.requests == 4


def test_cosignatures_must_be_by_the_witness_key(witness: Witness, log: Log) -> None:
    other = Log(origin="someone.example/witness")
    bogus = other.signer.signature(log.note().partition("\n\n")[0] + "\n").line
    for body in (bogus, "not a signature line\n", ""):
        result = mocked(witness, lambda request, b=body: httpx.Response(200, text=b), []).submit(log.note(), log.proof)
        assert result.status == wc.INVALID_ANSWER, body
    good = real(witness).submit(log.note(), log.proof).cosignatures[0]
    tampered = good.line[:-6] + ("AAAA" if good.line[-6:-2] != "AAAA" else "BBBB") + good.line[-2:]
    log.grow(1)
    result = mocked(witness, lambda request: httpx.Response(200, text=tampered), []).submit(log.note(), log.proof)
    assert result.status == wc.INVALID_ANSWER


def test_submit_never_raises(witness: Witness, log: Log) -> None:
    assert real(witness).submit(log.note(), log.proof).ok
    log.grow(3)

    def broken(old: int, new: int) -> list[bytes]:
        raise RuntimeError("the ledger is unavailable")

    assert real(witness).submit(log.note(), broken, old_size=10).status == wc.NO_PROOF
    assert real(witness).submit("not a note", log.proof).status == wc.ERROR

    def explode(request: httpx.Request) -> httpx.Response:
        raise ValueError("a bug in a transport")

    assert mocked(witness, explode, []).submit(log.note(), log.proof).status == wc.ERROR


def test_the_witness_latest_checkpoint_is_read_and_verified(witness: Witness, log: Log) -> None:
    client = real(witness)
    keys = [parse_vkey(log.vkey)]
    assert client.latest(ORIGIN, keys).status == "none"
    assert client.submit(log.note(), log.proof).ok
    seen = client.latest(ORIGIN, keys)
    assert seen.status == "found" and (seen.checkpoint.size, seen.checkpoint.root_hash) == (10, log.root())
    assert client.latest(ORIGIN, [parse_vkey(Log().vkey)]).status == wc.INVALID_ANSWER  # not the log's key
    served = seen.note
    assert mocked(witness, lambda request: httpx.Response(200, text=served.replace("\n10\n", "\n11\n")), []).latest(ORIGIN, keys).status == wc.INVALID_ANSWER
    assert mocked(witness, lambda request: httpx.Response(500), [], attempts=2).latest(ORIGIN, keys).status == wc.UNREACHABLE


def test_parse_witnesses() -> None:
    w1 = "audit.example/w1+00000000+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    remora = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
    parsed = wc.parse_witnesses(f" {remora}=https://w.example/prefix/ , {remora}=http://127.0.0.1:7380?a=b ")
    assert [(e.name, e.url) for e in parsed] == [("remora.n621.de", "https://w.example/prefix"), ("remora.n621.de", "http://127.0.0.1:7380?a=b")]
    assert wc.parse_witnesses("") == []
    for bad in (w1 + "=https://w.example", remora, f"{remora}=ftp://w.example", Log().vkey + "=https://w.example"):
        with pytest.raises(ValueError):
            wc.parse_witnesses(bad)
