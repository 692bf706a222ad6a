"""Submitting the platform's checkpoints to witnesses (C2SP tlog-witness), and reading what they cosigned.

Nothing here raises into its caller: a witness that is down, slow, refusing or answering nonsense yields a
`Submission` (or `Observation`) whose ``status`` says so, so that signing a checkpoint never waits on, or
fails with, a witness. Each HTTP request has a bounded timeout; connection errors, timeouts, 429 and 5xx
answers are retried a bounded number of times with jittered exponential back-off (tenacity). A 409 answer
names the size the witness last cosigned: the client resends from that size with the consistency proof
the caller's `ConsistencyProof` gives for it.

``NOCERT_WITNESSES`` (`parse_witnesses`) lists ``<witness vkey>=<base URL>`` pairs, comma-separated.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import tenacity

from signing.note import (
    COSIGNATURE_V1,
    Checkpoint,
    NoteError,
    Signature,
    VerifierKey,
    add_signatures,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_note,
    parse_vkey,
)
from witness.core import SIZE_CONTENT_TYPE, render_add_checkpoint
from witness.state import origin_sha256

log = logging.getLogger("nocert.witness")

ConsistencyProof = Callable[[int, int], Sequence[bytes]]
"""``proof(old_size, new_size)``: the RFC 9162 consistency proof between two sizes of the caller's log."""

COSIGNED = "cosigned"
WITNESS_AHEAD = "witness_ahead"  # it cosigned a larger tree than this checkpoint: a rollback, or a stale checkpoint
REFUSED = "refused"  # 400, 403, 404, 413 or 422: the witness will not cosign this checkpoint as sent
CONFLICT = "conflict"  # 409s went on after resending from the sizes they named
UNREACHABLE = "unreachable"  # no answer, or 429/5xx, after every retry
INVALID_ANSWER = "invalid_answer"  # an answer that breaks the protocol (no valid cosignature by its key, ...)
NO_PROOF = "no_proof"  # the caller could not give the consistency proof the witness needs
ERROR = "error"  # anything else (logged with its traceback)


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness: its cosigning verifier key (type 0x04) and the base URL its calls are under."""

    key: VerifierKey
    url: str

    @property
    def name(self) -> str:
        return self.key.name


def parse_witnesses(setting: str) -> list[WitnessEndpoint]:
    """``<vkey>=<base URL>,...`` (a vkey holds no ``=``: its base64 of 33 bytes is unpadded); raises ValueError."""
    endpoints = []
    for item in filter(None, (part.strip() for part in setting.split(","))):
        text, equals, url = item.partition("=")
        if not equals or not url.startswith(("http://", "https://")):
            raise ValueError(f"{item!r} is not <witness vkey>=<http(s) base URL>")
        try:
            key = parse_vkey(text)
        except NoteError as error:
            raise ValueError(f"{text!r}: {error}") from None
        if key.key_type != COSIGNATURE_V1:
            raise ValueError(f"{text!r} is not a cosignature (type 0x04) vkey")
        endpoints.append(WitnessEndpoint(key, url.rstrip("/")))
    return endpoints


@dataclass(frozen=True)
class Submission:
    """The outcome of submitting one checkpoint to one witness."""

    witness: str
    url: str
    status: str
    tree_size: int | None
    cosignatures: tuple[Signature, ...] = ()
    witness_size: int | None = None  # the size the witness said it last cosigned (from a 409)
    http_status: int | None = None
    requests: int = 0
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == COSIGNED


@dataclass(frozen=True)
class Observation:
    """The latest checkpoint a witness serves for a log (``status`` ``found``), or why there is none."""

    witness: str
    url: str
    status: str  # "found", "none" (it cosigned nothing of the log), or UNREACHABLE, INVALID_ANSWER, ERROR
    checkpoint: Checkpoint | None = None
    note: str | None = None
    detail: str = ""


class _Transient(Exception):
    """A failure worth retrying: no answer, or 429/5xx."""


class WitnessClient:
    """Talks to one witness over a kept-alive HTTP connection; safe to share between threads."""

    def __init__(
        self,
        endpoint: WitnessEndpoint,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: tuple[float, float] = (0.5, 8.0),  # first wait, longest wait (plus up to the first in jitter)
        max_conflicts: int = 3,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.endpoint = endpoint
        self._http = http or httpx.Client(timeout=timeout, follow_redirects=False)
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=backoff[0], max=backoff[1]) + tenacity.wait_random(0, backoff[0]),
            retry=tenacity.retry_if_exception_type(_Transient),
            sleep=sleep,
            reraise=True,
        )
        self._max_conflicts = max_conflicts
        self._lock = threading.Lock()
        self._known_size = 0  # the size this witness last cosigned, as far as this client knows

    def submit(self, note: str, proof: ConsistencyProof, old_size: int | None = None) -> Submission:
        """Ask the witness to cosign the checkpoint `note` (signed by the log), resending on 409.

        `old_size` is the size the witness last cosigned as the caller knows it (default: what this client
        last saw, 0 at first). Never raises."""
        try:
            return self._submit(note, proof, old_size)
        except Exception as error:  # the caller's command path must never fail because of a witness
            log.exception("witness %s: submitting a checkpoint failed", self.endpoint.url)
            return self._result(ERROR, None, detail=f"{type(error).__name__}: {error}")

    def latest(self, origin: str, log_keys: Iterable[VerifierKey]) -> Observation:
        """The latest checkpoint of `origin` the witness serves (``GET <url>/<sha256(origin)>/checkpoint``),
        verified with the log's keys and the witness's. Never raises."""
        url = f"{self.endpoint.url}/{origin_sha256(origin)}/checkpoint"
        seen = Observation(self.endpoint.name, self.endpoint.url, ERROR)
        try:
            response = self._retrying.copy()(self._request, "GET", url)
            if response.status_code == 404:
                return Observation(seen.witness, seen.url, "none")
            if response.status_code != 200:
                return Observation(seen.witness, seen.url, INVALID_ANSWER, detail=f"HTTP {response.status_code}")
            checkpoint, _ = open_checkpoint(response.text, log_keys)
            open_note(response.text, [self.endpoint.key])
            if checkpoint.origin != origin:
                raise NoteError(f"a checkpoint of {checkpoint.origin!r}, not of {origin!r}")
            return Observation(seen.witness, seen.url, "found", checkpoint, response.text)
        except _Transient as error:
            return Observation(seen.witness, seen.url, UNREACHABLE, detail=str(error))
        except NoteError as error:
            return Observation(seen.witness, seen.url, INVALID_ANSWER, detail=str(error))
        except Exception as error:
            log.exception("witness %s: reading its checkpoint failed", self.endpoint.url)
            return Observation(seen.witness, seen.url, ERROR, detail=f"{type(error).__name__}: {error}")

    def close(self) -> None:
        self._http.close()

    def _submit(self, note: str, proof: ConsistencyProof, old_size: int | None) -> Submission:
        try:
            parsed = parse_note(note)
            size = parse_checkpoint(parsed.text).size
        except NoteError as error:
            return self._result(ERROR, None, detail=f"not a checkpoint note: {error}")
        with self._lock:
            old = self._known_size if old_size is None else old_size
        requests, sent = 0, set[int]()
        while True:
            if old > size:
                return self._result(
                    WITNESS_AHEAD, size, witness_size=old, requests=requests,
                    detail=f"the witness cosigned a tree of {old} leaves, larger than this checkpoint's {size}",
                )
            if old in sent or len(sent) > self._max_conflicts:
                return self._result(CONFLICT, size, witness_size=old, requests=requests, detail="409 after 409")
            sent.add(old)
            try:
                nodes = list(proof(old, size)) if 0 < old < size else []
            except Exception as error:
                return self._result(NO_PROOF, size, witness_size=old, requests=requests, detail=f"{type(error).__name__}: {error}")
            counter = _Counter()
            try:
                response = self._retrying.copy()(self._request, "POST", f"{self.endpoint.url}/add-checkpoint",
                                          render_add_checkpoint(old, nodes, note), counter)
            except _Transient as error:
                return self._result(UNREACHABLE, size, requests=requests + counter.count, detail=str(error))
            requests += counter.count
            if response.status_code == 409:
                named = _conflict_size(response)
                if named is None:
                    return self._result(INVALID_ANSWER, size, http_status=409, requests=requests, detail="409 without a text/x.tlog.size body")
                old = named
                continue
            if response.status_code != 200:
                return self._result(REFUSED, size, http_status=response.status_code, requests=requests, detail=response.text[:300].strip())
            try:
                verified = open_note(parsed.text + "\n" + response.text, [self.endpoint.key]).verified
            except NoteError as error:
                return self._result(INVALID_ANSWER, size, http_status=200, requests=requests, detail=f"no valid cosignature: {error}")
            with self._lock:
                self._known_size = size
            return self._result(COSIGNED, size, cosignatures=verified, http_status=200, requests=requests)

    def _request(self, method: str, url: str, body: bytes | None = None, counter: _Counter | None = None) -> httpx.Response:
        if counter is not None:
            counter.count += 1
        try:
            response = self._http.request(method, url, content=body)
        except httpx.TransportError as error:
            raise _Transient(f"{type(error).__name__}: {error}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Transient(f"HTTP {response.status_code}")
        return response

    def _result(self, status: str, tree_size: int | None, **fields: object) -> Submission:
        if status != COSIGNED:
            log.warning("witness %s: %s (%s)", self.endpoint.url, status, fields.get("detail", ""))
        return Submission(self.endpoint.name, self.endpoint.url, status, tree_size, **fields)  # type: ignore[arg-type]


def submit_to_all(clients: Sequence[WitnessClient], note: str, proof: ConsistencyProof) -> list[Submission]:
    """Submit `note` to every witness at once (a slow one delays none of the others); in `clients`' order."""
    if not clients:
        return []
    with ThreadPoolExecutor(max_workers=len(clients), thread_name_prefix="witness") as pool:
        return list(pool.map(lambda client: client.submit(note, proof), clients))


def with_cosignatures(note: str, submissions: Iterable[Submission]) -> str:
    """The note with the cosignatures of every successful submission appended (the note to serve)."""
    return add_signatures(note, [s for submission in submissions if submission.ok for s in submission.cosignatures])


class _Counter:
    def __init__(self) -> None:
        self.count = 0


def _conflict_size(response: httpx.Response) -> int | None:
    """The size in a 409's ``text/x.tlog.size`` body (a decimal without leading zeroes and a newline)."""
    if response.headers.get("content-type", "").split(";")[0].strip() != SIZE_CONTENT_TYPE:
        return None
    text = response.text
    digits = text[:-1]
    if not text.endswith("\n") or not digits.isascii() or not digits.isdigit() or (len(digits) > 1 and digits[0] == "0"):
        return None
    return int(digits)
