"""The events of the checks a dispatcher round renders (API.md §11), read in one query for the round and
kept across rounds only in a form that holds no decrypted personal data.

A round needs every event of each check it delivers (the check at the event's version, and the check now for
`api.access`). Reading each check on its own cost a query per check, and reading all of it again each round
the same rows again: so a round reads the events of all its checks in **one** query (the recorder's
`domain.repository.StreamReader`), each check only *after* the version a previous round saw.

What is kept between rounds (`CheckStreams`), per check of the last round:

* an event whose type has no personal field (the `sealed` types the composition root gives, `privacy.mapper.SEALED`: not ``Raised``, not ``Replied``)
  decoded, as it is: it holds nothing that erasure must reach (the same fields are stored in clear);
* an event with personal fields as its *stored* record, still sealed under the applicant's subject key, and
  decoded again by every round that needs it: an erasure destroys the key (`privacy.keys`), and from then on
  the record decodes as forgotten exactly as a fresh read would; nothing decrypted outlives its round.

Only the checks of the last round's due heads are kept (those in flight included: their next event is due
soon; a check with nothing left due is dropped by the next round), so what is kept is bounded by a round's
heads. Reading is one query for all of them; decoding is each check's own, when a delivery first needs it. An erasure also records ``SubjectErased`` on the
check: the next round reads it as a new event like any other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import EventStore, StoredEvent
from eventsourcing.utils import get_topic

from domain.check import Check
from domain.repository import StreamReader

Kept = Any  # a decoded event (no personal field) or its StoredEvent (sealed, or not decoded yet)
Events = Callable[[str], "list[Check.Event] | None"]  # a round's: the events of one of its checks, None if no check


class CheckStreams:
    """The events of checks, read for a round in one query and kept as above between rounds."""

    def __init__(self, events: EventStore[UUID], sealed: Collection[type]) -> None:
        """`sealed`: the event types with personal fields (`privacy.mapper.SEALED`, given by the composition
        root: delivery does not depend on privacy), kept as their stored records."""
        self._store = events
        self._sealed_topics = frozenset(get_topic(kind) for kind in sealed)
        self._lock = threading.Lock()
        self._kept: dict[UUID, list[Kept]] = {}

    def read(self, check_ids: Iterable[str]) -> Events:
        """Reads the records of these checks after those kept (one query); these checks are what is kept
        for the next round. Returns how the round gets a check's events (decoded when first asked for)."""
        wanted = list(dict.fromkeys(UUID(check_id) for check_id in check_ids))
        with self._lock:
            versions = [(check_id, len(self._kept.get(check_id, ()))) for check_id in wanted]
        new = self._stored_after(versions)
        with self._lock:
            kept: dict[UUID, list[Kept]] = {}
            for check_id, version in versions:
                entries = self._kept.get(check_id, [])
                if len(entries) == version:  # else another read changed it meanwhile: read afresh next round
                    kept[check_id] = entries + new.get(check_id, [])
            self._kept = kept
            round_ = {check_id: list(entries) for check_id, entries in kept.items()}
        return lambda check_id: self._events(round_, UUID(check_id))

    def kept(self) -> dict[UUID, list[Kept]]:
        """What is kept for the next round (tests)."""
        with self._lock:
            return {check_id: list(entries) for check_id, entries in self._kept.items()}

    def _events(self, round_: dict[UUID, list[Kept]], check_id: UUID) -> list[Check.Event] | None:
        entries = round_.get(check_id)
        if not entries:
            return None
        decoded = [self._store.mapper.to_domain_event(entry) if isinstance(entry, StoredEvent) else entry for entry in entries]
        events = [event for event in decoded if isinstance(event, Check.Event)]
        if len(events) != len(decoded) or not isinstance(events[0], Check.Raised):
            return None  # not a check: `domain.platform.Platform.check_events` answers it (not found)
        with self._lock:  # what has no personal field is kept decoded from now on
            held = self._kept.get(check_id)
            for index, (entry, event) in enumerate(zip(entries, events, strict=True)):
                if isinstance(entry, StoredEvent) and entry.topic not in self._sealed_topics and held and index < len(held) and held[index] is entry:
                    held[index] = event
        return events

    def _stored_after(self, after: list[tuple[UUID, int]]) -> dict[UUID, list[StoredEvent]]:
        if not after:
            return {}
        recorder = self._store.recorder
        if isinstance(recorder, StreamReader):
            rows = recorder.select_streams(after)
        else:  # a recorder without the one query (eventsourcing's own): one per check
            rows = [row for check_id, version in after for row in recorder.select_events(check_id, gt=version or None)]
        found: dict[UUID, list[StoredEvent]] = {}
        for stored in rows:
            found.setdefault(UUID(str(stored.originator_id)), []).append(stored)
        return found
