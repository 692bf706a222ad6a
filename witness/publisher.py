"""Submitting every new checkpoint of the platform's ledger to its witnesses, in the background (API.md §15).

One daemon thread per witness (`Publisher.start`): it looks at the latest signed checkpoint every
`poll_seconds` (or at once when nudged); when it is larger than what the witness last cosigned, it submits it
(`WitnessClient.submit`: bounded timeouts, tenacity retries of transient failures, and the size of a 409
answer used to resend the right consistency proof) and stores the cosignature it gets with the checkpoint.
A witness that keeps failing is tried again after a growing pause (doubling from `poll_seconds` up to
`max_backoff_seconds`). Nothing here runs in a command's thread: a witness that is down delays nothing but
its own cosignatures.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from signing.note import Signature
from witness.client import COSIGNED, ConsistencyProof, WitnessClient, WitnessEndpoint

log = logging.getLogger("nocert.witness")


class CheckpointSource(Protocol):
    """What the publisher needs of the platform's ledger (implemented over the views)."""

    def latest_note(self) -> tuple[int, str] | None:
        """The latest checkpoint's tree size and its note signed by the log key, or None before the first."""
        ...

    def consistency(self, old_size: int, new_size: int) -> Sequence[bytes]: ...

    def witnessed_size(self, witness: str, key_id: bytes) -> int:
        """The largest size this witness cosigned, as stored (0 for none)."""
        ...

    def record(self, tree_size: int, signatures: list[Signature]) -> None: ...


@dataclass
class WitnessStatus:
    """What the publisher last saw of one witness (for /readyz)."""

    witness: str
    url: str
    cosigned_size: int = 0
    last_status: str = "pending"
    failures: int = 0


class Publisher:
    """The background submission of checkpoints to `endpoints`."""

    def __init__(
        self,
        endpoints: Sequence[WitnessEndpoint],
        source: CheckpointSource,
        *,
        poll_seconds: float = 1.0,
        max_backoff_seconds: float = 300.0,
        clients: Sequence[WitnessClient] | None = None,
    ) -> None:
        self.source = source
        self.poll_seconds = poll_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.clients = list(clients) if clients is not None else [WitnessClient(endpoint) for endpoint in endpoints]
        self.statuses = [WitnessStatus(c.endpoint.name, c.endpoint.url) for c in self.clients]
        self._stopping = threading.Event()
        self._wake = [threading.Event() for _ in self.clients]
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            return
        self._stopping.clear()
        for index in range(len(self.clients)):
            thread = threading.Thread(target=self._run, args=(index,), name=f"nocert-witness-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        for wake in self._wake:
            wake.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        for client in self.clients:
            client.close()

    def nudge(self) -> None:
        """Look at the latest checkpoint now (a new one was signed)."""
        for wake in self._wake:
            wake.set()

    def publish_once(self, index: int) -> bool:
        """Submits the latest checkpoint to witness `index` if it has not cosigned it; True when it did (or
        had). Never raises."""
        client, status = self.clients[index], self.statuses[index]
        try:
            if status.cosigned_size == 0:
                status.cosigned_size = self.source.witnessed_size(client.endpoint.name, client.endpoint.key.key_id)
            latest = self.source.latest_note()
            if latest is None or latest[0] <= status.cosigned_size:
                return True
            size, note = latest
            proof: ConsistencyProof = self.source.consistency
            submission = client.submit(note, proof, old_size=status.cosigned_size)
            status.last_status = submission.status
            if submission.status != COSIGNED:
                if submission.witness_size is not None and submission.witness_size <= size:
                    status.cosigned_size = submission.witness_size
                return False
            self.source.record(size, list(submission.cosignatures))
            status.cosigned_size = size
            log.info("witness %s cosigned the checkpoint at tree size %d", client.endpoint.url, size)
            return True
        except Exception as error:  # the store may be down: try again later
            status.last_status = f"error: {type(error).__name__}"
            log.warning("witness %s: could not publish the latest checkpoint: %s", client.endpoint.url, error)
            return False

    def _run(self, index: int) -> None:
        status, wake = self.statuses[index], self._wake[index]
        while not self._stopping.is_set():
            if self.publish_once(index):
                status.failures = 0
                pause = self.poll_seconds
            else:
                status.failures += 1
                pause = min(self.max_backoff_seconds, self.poll_seconds * 2 ** min(status.failures, 20))
            wake.wait(pause)
            wake.clear()
