"""The aggregates of one process, cached safely under threads and under other processes on the same store.

eventsourcing's own cache fast-forwards the cached aggregate *in place* and copies it for the caller
after releasing its lock, so a caller may copy an object another thread is changing. Here the cache is
copy on write: an entry, once stored, is never changed; a fast-forward projects the new events onto a
copy and stores that copy as the next entry, and every caller gets its own copy. So a command that fails
half way (or whose save is refused) never leaves a mutated aggregate behind.

Two ways to read:

- ``get`` (fresh): the cached copy brought up to date with the events recorded after its version (one
  query, usually answering no rows), or the whole stream when nothing is cached. ``refresh`` does that
  for several streams in **one** query, when the recorder can (`StreamReader`).
- ``refresh(..., copy=False)``: the entries themselves, for what is only read (no copying).
- ``cached`` (unverified): the cached copy as it is, no query. Only for an aggregate the command then
  saves: the save is version-checked (another process that moved the stream makes the save fail as a
  conflict), the entry is dropped, and the caller decides again on a fresh read.

Saves put their aggregates in (`record_saved`); a refused save drops them (`forget`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from typing import Any, Protocol, TypeVar, runtime_checkable
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import EventStore, IntegrityError, StoredEvent

from domain.errors import ConcurrentUpdate, NotFound
from domain.ports import Attachment, SaveHook

Found = TypeVar("Found", bound=Aggregate)
Result = TypeVar("Result")


@runtime_checkable
class StreamReader(Protocol):
    """A recorder that reads the events of several streams after given versions in one query."""

    def select_streams(self, after: Sequence[tuple[UUID, int]]) -> list[StoredEvent]:
        """The events of each (stream, version) pair with a higher version, ordered by stream and version."""


class AggregateCache:
    """At most ``maxsize`` aggregates, least recently used evicted; entries are never changed in place."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._entries: OrderedDict[UUID, Aggregate] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def entry(self, aggregate_id: UUID) -> Aggregate | None:
        """The stored entry itself (never to be changed nor handed out) or None."""
        with self._lock:
            found = self._entries.get(aggregate_id)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(aggregate_id)
            return found

    def store(self, aggregate: Aggregate) -> None:
        """Stores ``aggregate`` (the caller gives it up) unless a newer version is held already."""
        with self._lock:
            held = self._entries.get(aggregate.id)
            if held is not None and held.version > aggregate.version:
                return
            self._entries[aggregate.id] = aggregate
            self._entries.move_to_end(aggregate.id)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def forget(self, aggregate_id: UUID) -> None:
        with self._lock:
            self._entries.pop(aggregate_id, None)

    def holds(self, aggregate: Aggregate) -> bool:
        """Whether ``aggregate`` is an entry itself (not a copy of one)."""
        with self._lock:
            return self._entries.get(aggregate.id) is aggregate

    def __len__(self) -> int:
        return len(self._entries)


def _project(aggregate: Aggregate | None, events: Iterable[Any]) -> Aggregate | None:
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class CachingRepository(Repository[UUID]):
    """eventsourcing's repository with the copy-on-write cache above (its own cache stays off)."""

    def __init__(
        self, event_store: EventStore[UUID], *, snapshot_store: EventStore[UUID] | None = None, maxsize: int = 256
    ) -> None:
        super().__init__(event_store, snapshot_store=snapshot_store)
        self.aggregates = AggregateCache(maxsize)
        # Once: an isinstance against a runtime Protocol inspects the class's attributes on every call.
        self._stream_reader = isinstance(event_store.recorder, StreamReader)

    def get(self, aggregate_id: UUID, *, version: int | None = None, **kwargs: Any) -> Any:
        if version is not None or kwargs:
            return super().get(aggregate_id, version=version, **kwargs)
        found = self.refresh([aggregate_id])
        if aggregate_id not in found:
            raise AggregateNotFoundError(aggregate_id)
        return found[aggregate_id]

    def cached(self, aggregate_id: UUID) -> Any | None:
        """A copy of the cached aggregate without asking the store (see the module: for saves only)."""
        entry = self.aggregates.entry(aggregate_id)
        return deepcopy(entry) if entry is not None else None

    def refresh(self, aggregate_ids: Sequence[UUID], *, copy: bool = True) -> dict[UUID, Any]:
        """Fresh copies of the aggregates that exist, read in one query where the recorder can. With
        ``copy=False`` the entries themselves, to be read and never changed (no copying: cheaper)."""
        wanted = list(dict.fromkeys(aggregate_ids))
        entries = {aggregate_id: self.aggregates.entry(aggregate_id) for aggregate_id in wanted}
        after = [(aggregate_id, entry.version if entry is not None else 0) for aggregate_id, entry in entries.items()]
        new_events = self._events_after(after)
        fresh: dict[UUID, Any] = {}
        for aggregate_id, entry in entries.items():
            events = new_events.get(aggregate_id, [])
            if not events:
                if entry is not None:
                    fresh[aggregate_id] = deepcopy(entry) if copy else entry
                continue
            projected = _project(deepcopy(entry) if entry is not None else None, events)
            if projected is None:
                continue
            self.aggregates.store(projected)
            fresh[aggregate_id] = deepcopy(projected) if copy else projected
        return fresh

    def _events_after(self, after: Sequence[tuple[UUID, int]]) -> dict[UUID, list[Any]]:
        recorder = self.event_store.recorder
        found: dict[UUID, list[Any]] = {}
        if len(after) > 1 and self._stream_reader:
            assert isinstance(recorder, StreamReader)
            for stored in recorder.select_streams(after):
                event = self.event_store.mapper.to_domain_event(stored)
                found.setdefault(event.originator_id, []).append(event)
            return found
        for aggregate_id, version in after:
            found[aggregate_id] = list(self.event_store.get(aggregate_id, gt=version or None))
        return found

    def record_saved(self, aggregates: Iterable[Aggregate]) -> None:
        """Caches aggregates whose pending events were just recorded. They become entries themselves (no
        copy): the saver may read them on but must not change them again (`owned` copies them first)."""
        for aggregate in aggregates:
            self.aggregates.store(aggregate)

    def owned(self, aggregate: Found) -> Found:
        """``aggregate`` itself, or a copy of it if it is a cache entry: what a command may change."""
        return deepcopy(aggregate) if self.aggregates.holds(aggregate) else aggregate

    def forget(self, aggregate_ids: Iterable[UUID]) -> None:
        for aggregate_id in aggregate_ids:
            self.aggregates.forget(aggregate_id)


class CachedApplication(Application[UUID]):
    """An eventsourcing application reading through `CachingRepository` and saving with its save hooks'
    attachments in the events' transaction (the persistence helpers of `domain.platform.Platform`)."""

    retry_conflicts = 5
    save_hooks: list[SaveHook]

    def construct_repository(self) -> CachingRepository:  # eventsourcing's, with the cache above
        maxsize = int(self.env.get(self.AGGREGATE_CACHE_MAXSIZE) or 256)
        return CachingRepository(self.events, snapshot_store=self.snapshots, maxsize=maxsize)

    @property
    def caching(self) -> CachingRepository:
        assert isinstance(self.repository, CachingRepository)
        return self.repository

    def _save(self, *aggregates: Aggregate, extra: Sequence[Attachment] = ()) -> int:
        """Records the aggregates' pending events, with whatever the save hooks (and the command: ``extra``)
        attach to them, in one transaction; returns the position of the last event."""
        events = [event for aggregate in aggregates for event in aggregate.pending_events]
        attachments = [attachment for hook in self.save_hooks for attachment in hook(aggregates, events)]
        attachments += extra
        try:
            recordings = self.save(*aggregates, attachments=attachments) if attachments else self.save(*aggregates)
        except IntegrityError:
            self.caching.forget(aggregate.id for aggregate in aggregates)  # read it afresh next time
            raise ConcurrentUpdate("another command changed this object first; retry") from None
        except BaseException:
            self.caching.forget(aggregate.id for aggregate in aggregates)
            raise
        self.caching.record_saved(aggregates)
        return recordings[-1].notification.id if recordings else 0

    def _get(self, aggregate_id: UUID, kind: type[Found], what: str, version: int | None = None) -> Found:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFound.of(what) from None
        if not isinstance(aggregate, kind):
            raise NotFound.of(what)
        return aggregate

    def _read(self, *stream_ids: UUID) -> dict[UUID, Any]:
        """The aggregates of these streams that exist, read afresh in one query (`CachingRepository.refresh`),
        **to be read only**: they are the cache's entries, not copies (use `_get` for what a command changes)."""
        return self.caching.refresh(stream_ids, copy=False)

    @staticmethod
    def _found(found: Mapping[UUID, Any], stream_id: UUID, kind: type[Found], what: str) -> Found:
        aggregate = found.get(stream_id)
        if not isinstance(aggregate, kind):
            raise NotFound.of(what)
        return aggregate

    def _retrying(self, command: Callable[[], Result]) -> Result:
        """Runs an admin command again when a concurrent admin command moved an index first."""
        for attempt in range(self.retry_conflicts):
            try:
                return command()
            except ConcurrentUpdate:
                if attempt == self.retry_conflicts - 1:
                    raise
        raise AssertionError("unreachable")

