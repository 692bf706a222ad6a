"""``nocert witness serve`` as separate processes on free ports, driven by the platform's client: a
sequence of checkpoints cosigned, recovery after the client forgets the size (409), a rolled-back log and a
forked one refused, a restarted witness that remembers, and two witnesses cosigning the same note."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signing.note import open_note, parse_vkey
from tests.api.conftest import free_port
from tests.witness.conftest import ORIGIN, Log
from tests.witness.nocert_process import serving
from witness import client as wc
from witness import identity


@contextmanager
def witness_process(state: Path, log: Log, name: str) -> Iterator[wc.WitnessEndpoint]:
    """A witness serving on a free port until the block ends; yields its endpoint once it answers."""
    vkey = identity.load_or_create(state, name).vkey  # as `nocert witness vkey` prints it for the platform
    command = [sys.executable, "-m", "witness.cli", "witness", "serve", "--log-vkey", log.vkey, "--state", str(state)]
    with serving(command) as url:
        yield wc.WitnessEndpoint(parse_vkey(vkey), url)


def test_a_witness_process_cosigns_recovers_and_refuses(tmp_path: Path) -> None:
    log = Log(size=3)
    with witness_process(tmp_path / "w1", log, "audit.example/w1") as endpoint:
        client = wc.WitnessClient(endpoint, timeout=10)
        for grow in (0, 1, 4, 9, 64):
            log.grow(grow)
            result = client.submit(log.note(), log.proof)
            assert result.ok and result.requests == 1, result
        cosigned = wc.with_cosignatures(log.note(), [result])
        assert len(open_note(cosigned, [endpoint.key, parse_vkey(log.vkey)]).verified) == 2

        # The platform restarts and has forgotten what the witness cosigned: one 409, then the right proof.
        log.grow(5)
        restarted = wc.WitnessClient(endpoint, timeout=10)
        result = restarted.submit(log.note(), log.proof)
        assert result.ok and result.requests == 2

        # An operator deletes the last events and rebuilds: a smaller, validly signed tree.
        rolled_back = Log(size=0)
        rolled_back.signer, rolled_back.leaves = log.signer, log.leaves[:50]
        result = wc.WitnessClient(endpoint, timeout=10).submit(rolled_back.note(), rolled_back.proof)
        assert (result.status, result.witness_size) == (wc.WITNESS_AHEAD, log.size)
        # ... and grows it past the old size with other events: no consistency proof can exist.
        rolled_back.seed = "other events "
        rolled_back.grow(log.size)
        result = restarted.submit(rolled_back.note(), rolled_back.proof, old_size=log.size)
        assert (result.status, result.http_status) == (wc.REFUSED, 422)

        seen = restarted.latest(ORIGIN, [parse_vkey(log.vkey)])
        assert seen.status == "found" and seen.checkpoint.size == log.size and seen.checkpoint.root_hash == log.root()

    # Restarted on the same state directory, the witness remembers what it cosigned.
    with witness_process(tmp_path / "w1", log, "audit.example/w1") as endpoint:
        result = wc.WitnessClient(endpoint, timeout=10).submit(rolled_back.note(), rolled_back.proof)
        assert (result.status, result.http_status, result.requests) == (wc.REFUSED, 422, 2)
        log.grow(1)
        assert wc.WitnessClient(endpoint, timeout=10).submit(log.note(), log.proof).ok


def test_two_witnesses_both_cosign(tmp_path: Path) -> None:
    log = Log(size=20)
    with witness_process(tmp_path / "w1", log, "audit.example/w1") as first, witness_process(tmp_path / "w2", log, "court.example/w2") as second:
        clients = [wc.WitnessClient(first, timeout=10), wc.WitnessClient(second, timeout=10)]
        for grow in (0, 13):
            log.grow(grow)
            results = wc.submit_to_all(clients, log.note(), log.proof)
            assert [r.status for r in results] == [wc.COSIGNED, wc.COSIGNED]
        served = wc.with_cosignatures(log.note(), results)
        verified = open_note(served, [first.key, second.key, parse_vkey(log.vkey)]).verified
        assert sorted(s.name for s in verified) == ["audit.example/w1", "court.example/w2", ORIGIN]

        # One witness down: the other still cosigns, and the failure is a result, not an exception.
        dead = wc.WitnessClient(wc.WitnessEndpoint(first.key, f"http://127.0.0.1:{free_port()}"), timeout=2, attempts=2, backoff=(0.01, 0.02))
        log.grow(1)
        results = wc.submit_to_all([dead, clients[1]], log.note(), log.proof)
        assert [r.status for r in results] == [wc.UNREACHABLE, wc.COSIGNED]
        assert wc.with_cosignatures(log.note(), results).count("\n— ") == 2
