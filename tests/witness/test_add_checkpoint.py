"""``POST /add-checkpoint``: every answer C2SP tlog-witness defines, in its order, and what is remembered."""

from __future__ import annotations

import base64
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from signing.note import EMPTY_TREE_ROOT, Checkpoint, open_note, parse_note, parse_vkey, sign_note
from tests.witness.conftest import ORIGIN, Log, origin_hash
from witness.app import MAX_BODY_BYTES
from witness.core import Witness, render_add_checkpoint


def post(http: TestClient, body: bytes):  # type: ignore[no-untyped-def]
    return http.post("/add-checkpoint", content=body)


def cosigned_size(witness: Witness) -> int | None:
    latest = witness.state.latest(ORIGIN)
    return latest.size if latest else None


def test_first_checkpoint_is_cosigned_and_served_to_monitors(http: TestClient, witness: Witness, log: Log) -> None:
    response = post(http, log.request(0))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    lines = response.text
    assert lines.startswith("— audit.example/witness ") and lines.endswith("\n") and lines.count("\n") == 1
    served = log.note() + lines  # the client appends the lines to its note
    opened = open_note(served, [parse_vkey(witness.vkey), parse_vkey(log.vkey)])
    assert len(opened.verified) == 2
    assert cosigned_size(witness) == 10

    monitored = http.get(f"/{origin_hash()}/checkpoint")
    assert monitored.status_code == 200
    assert len(open_note(monitored.text, [parse_vkey(witness.vkey), parse_vkey(log.vkey)]).verified) == 2
    assert parse_note(monitored.text).text == parse_note(log.note()).text


def test_later_checkpoints_need_a_consistency_proof_from_the_size_cosigned(http: TestClient, witness: Witness, log: Log) -> None:
    assert post(http, log.request(0)).status_code == 200
    for grow in (1, 5, 17, 100):
        old = log.size
        log.grow(grow)
        response = post(http, log.request(old))
        assert response.status_code == 200, response.text
        assert cosigned_size(witness) == log.size
    # The same checkpoint again (old size = size, same root, no proof) is cosigned afresh.
    assert post(http, log.request(log.size)).status_code == 200


def test_an_empty_tree_is_cosigned_and_then_extended(http: TestClient, witness: Witness) -> None:
    log = Log(size=0)
    witness.log_keys = (parse_vkey(log.vkey),)
    assert post(http, log.request(0)).status_code == 200 and cosigned_size(witness) == 0
    log.grow(3)
    assert post(http, log.request(0)).status_code == 200 and cosigned_size(witness) == 3


@pytest.mark.parametrize(
    "body",
    [
        b"old 0\n",  # no empty line, no checkpoint
        b"old 01\n\n",  # a leading zero
        b"old -1\n\n",
        b"Old 0\n\n",
        b"old  0\n\n",
        b"old 0 \n\n",
        b"old\n\n",
        b"\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + base64.b64encode(bytes(31)) + b"\n\n",  # not a 32-byte hash
        b"old 0\n" + (base64.b64encode(bytes(32)) + b"\n") * 64 + b"\n",  # 64 proof lines
        b"\xffold 0\n\n",
    ],
)
def test_malformed_bodies_are_400(http: TestClient, witness: Witness, log: Log, body: bytes) -> None:
    response = post(http, body + log.note().encode() if body.endswith(b"\n\n") else body)
    assert response.status_code == 400, response.text
    assert cosigned_size(witness) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda note: note[:-1],  # no final newline
        lambda note: note.replace("\n\n", "\n"),  # no blank line before the signatures
        lambda note: note.replace("\n10\n", "\n010\n"),  # not a checkpoint (and no longer signed)
        lambda note: note.replace("\n10\n", "\n\n10\n", 1),  # an empty line inside the checkpoint
        lambda note: note + "trailing\n",
    ],
)
def test_malformed_checkpoints_are_400(http: TestClient, witness: Witness, log: Log, mangle) -> None:  # type: ignore[no-untyped-def]
    response = post(http, render_add_checkpoint(0, [], mangle(log.note())))
    assert response.status_code == 400, response.text
    assert cosigned_size(witness) is None


def test_the_old_size_may_not_exceed_the_checkpoint_size(http: TestClient, witness: Witness, log: Log) -> None:
    response = post(http, render_add_checkpoint(11, [bytes(32)], log.note()))
    assert response.status_code == 400
    assert cosigned_size(witness) is None


def test_an_unknown_origin_is_404(http: TestClient, witness: Witness) -> None:
    other = Log(origin="elsewhere.example/log", size=3)
    assert post(http, other.request(0)).status_code == 404
    assert witness.state.latest("elsewhere.example/log") is None


def test_checkpoints_not_signed_by_the_trusted_key_are_403(http: TestClient, witness: Witness, log: Log) -> None:
    impostor = Log(origin=ORIGIN, size=10)  # the same origin, another key
    assert post(http, impostor.request(0)).status_code == 403
    # A signature line that names the trusted key and id but does not verify: the note is refused whole,
    # even beside the impostor's.
    forged = log.note().replace("\n10\n", "\n11\n")
    assert post(http, render_add_checkpoint(0, [], forged)).status_code == 403
    both = sign_note(parse_note(forged).text, impostor.signer) + parse_note(forged).signatures[0].line
    assert post(http, render_add_checkpoint(0, [], both)).status_code == 403
    assert cosigned_size(witness) is None


def test_unknown_signatures_beside_the_logs_are_ignored(http: TestClient, witness: Witness, log: Log) -> None:
    stranger = Log(origin="someone.example/key").signer
    note = log.note() + stranger.signature(parse_note(log.note()).text).line
    response = post(http, render_add_checkpoint(0, [], note))
    assert response.status_code == 200
    served = http.get(f"/{origin_hash()}/checkpoint").text
    assert "someone.example/key" not in served  # only the signatures the witness verified are served


def test_a_stale_old_size_is_409_with_the_size_cosigned(http: TestClient, witness: Witness, log: Log) -> None:
    assert post(http, log.request(0)).status_code == 200
    log.grow(5)
    for old in (0, 3, 12):
        response = post(http, log.request(old))
        assert response.status_code == 409
        assert response.headers["content-type"] == "text/x.tlog.size"
        assert response.text == "10\n"
    assert cosigned_size(witness) == 10
    assert witness.state.evidence(ORIGIN) == []  # a stale old size is no evidence of anything


def test_a_size_zero_checkpoint_needs_the_empty_root(http: TestClient, witness: Witness, log: Log) -> None:
    bad = sign_note(Checkpoint(ORIGIN, 0, bytes(32)).text(), log.signer)
    assert post(http, render_add_checkpoint(0, [], bad)).status_code == 422
    good = sign_note(Checkpoint(ORIGIN, 0, EMPTY_TREE_ROOT).text(), log.signer)
    assert post(http, render_add_checkpoint(0, [], good)).status_code == 200


def test_a_proof_from_old_size_zero_is_422(http: TestClient, witness: Witness, log: Log) -> None:
    assert post(http, render_add_checkpoint(0, [bytes(32)], log.note())).status_code == 422
    assert cosigned_size(witness) is None


def test_a_proof_that_does_not_verify_is_422_and_kept_as_evidence(http: TestClient, witness: Witness, log: Log) -> None:
    assert post(http, log.request(0)).status_code == 200
    log.grow(6)
    proof = log.proof(10, 16)
    for wrong in ([], proof[:-1], [bytes(32)] + proof[1:], proof + [bytes(32)]):
        assert post(http, render_add_checkpoint(10, wrong, log.note())).status_code == 422
    assert cosigned_size(witness) == 10
    assert [e.witnessed_size for e in witness.state.evidence(ORIGIN)] == [10]  # once per checkpoint


def test_a_forked_log_is_refused(http: TestClient, witness: Witness, log: Log) -> None:
    """A log that rewrote history: at the size cosigned another root, beyond it a tree that does not extend
    the one cosigned (its own consistency proof cannot help it), and a rolled-back, smaller tree."""
    assert post(http, log.request(0)).status_code == 200
    fork = Log(size=10, seed="rewritten ")
    fork.signer = log.signer  # signed by the same log key
    assert post(http, fork.request(10, 10)).status_code == 422
    fork.grow(4)
    assert post(http, render_add_checkpoint(10, fork.proof(10, 14), fork.note())).status_code == 422
    assert post(http, render_add_checkpoint(10, [], log.note(10))).status_code == 200  # the true one is fine
    assert post(http, render_add_checkpoint(10, [bytes(32)], log.note(10))).status_code == 422  # no proof at equal sizes
    rolled_back = log.note(7)
    assert post(http, render_add_checkpoint(10, [], rolled_back)).status_code == 400
    assert post(http, render_add_checkpoint(0, [], rolled_back)).status_code == 409
    assert cosigned_size(witness) == 10
    reasons = [e.reason for e in witness.state.evidence(ORIGIN)]
    assert len(reasons) == 3 and "smaller tree" in reasons[2]
    assert parse_note(witness.state.evidence(ORIGIN)[2].checkpoint).text == parse_note(rolled_back).text


def test_bodies_over_the_limit_are_413(http: TestClient, log: Log) -> None:
    response = post(http, b"old 0\n\n" + log.note().encode() + b"x" * MAX_BODY_BYTES)
    assert response.status_code == 413


def test_other_methods_and_paths(http: TestClient) -> None:
    assert http.get("/add-checkpoint").status_code == 405
    assert http.get(f"/{origin_hash()}/checkpoint").status_code == 404  # nothing cosigned yet
    assert http.get("/not-a-hash/checkpoint").status_code == 404
    assert http.get(f"/{origin_hash('elsewhere.example/log')}/checkpoint").status_code == 404


def test_check_and_update_hold_the_write_lock(witness: Witness) -> None:
    """Between reading the latest checkpoint and storing the next, no other writer may start."""
    with witness.state.updating(ORIGIN) as update:
        assert update.latest is None
        other = sqlite3.connect(witness.state.path, timeout=0, isolation_level=None)
        try:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        finally:
            other.close()


def test_concurrent_submissions_from_the_same_size_cosign_one(http: TestClient, witness: Witness, log: Log) -> None:
    """Eight submissions that all claim old size 0, for eight growing sizes: exactly one wins, the others
    learn the size it stored."""
    log.grow(8)
    bodies = [log.request(0, size) for size in range(11, 19)]
    start = threading.Barrier(len(bodies))

    def submit(body: bytes) -> int:
        start.wait(timeout=30)
        return post(http, body).status_code

    with ThreadPoolExecutor(len(bodies)) as pool:
        statuses = list(pool.map(submit, bodies))
    assert sorted(statuses) == [200] + [409] * 7
    winner = 11 + statuses.index(200)
    assert cosigned_size(witness) == winner
