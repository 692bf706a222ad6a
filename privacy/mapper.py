"""Field-level encryption of check events between the domain event and its stored state: an eventsourcing
`Mapper` that seals the personal fields of a check's events under the applicant's subject key before the
usual transcoding (and `NOCERT_CIPHER_KEY`'s whole-state cipher, when set), and opens them when decoding.

Sealed: ``Raised.applicant``, ``Raised.claims``, ``Replied.jws``, ``Replied.statements`` (`SEALED`). The key
of a ``Raised`` is the applicant's live key (by the blind index of their identity number); later events of
the check take the key of its ``Raised``. A field whose key was erased decodes as forgotten (`FORGOTTEN`);
a field whose key is missing from the key store is an error, never silently null. Events stored before
subject keys existed decode as they were.

The stored bytes are what the ledger's leaves hash (API.md §7): they never change, erasure only destroys keys.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from domain.check import Check
from privacy.fields import event_context, is_sealed, key_id_of, open_sealed, seal, view_context
from privacy.index import BlindIndex
from privacy.keys import DataKey, SubjectKeyErased, SubjectKeys

SEALED: dict[type, tuple[str, ...]] = {
    Check.Raised: ("applicant", "claims"),
    Check.Replied: ("jws", "statements"),
}
FORGOTTEN_APPLICANT = {"name": None, "id_number": None}


def forgotten(field: str) -> Any:
    return dict(FORGOTTEN_APPLICANT) if field == "applicant" else None


class SubjectMapper(Mapper[UUID]):
    """`base`'s transcoder, compressor and cipher, with the personal fields sealed per subject."""

    def __init__(self, base: Mapper[UUID], keys: SubjectKeys, index: BlindIndex, remembered: int = 100_000) -> None:
        super().__init__(base.transcoder, base.compressor, base.cipher)
        self.keys = keys
        self.index = index
        self._first_event: Callable[[UUID], StoredEvent | None] = lambda _: None
        self._check_keys: OrderedDict[UUID, str] = OrderedDict()  # check id → key id, most recent last
        self._remembered = remembered
        self._lock = threading.Lock()

    def attach(self, first_event: Callable[[UUID], StoredEvent | None]) -> None:
        """How to read a stream's first stored event (the recorder's), to learn a check's key."""
        self._first_event = first_event

    # -- the mapper ---------------------------------------------------------------------------

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        fields = SEALED.get(type(domain_event))
        if fields:
            state = dict(vars(domain_event))
            if isinstance(domain_event, Check.Raised):
                key = self.keys.active(self.index.of(state["applicant"]["id_number"]))
                self._remember(domain_event.originator_id, key.key_id)
            else:
                key = self._key_of_check(domain_event.originator_id)
            for field in fields:
                context = event_context(domain_event.originator_id, domain_event.originator_version, field)
                state[field] = seal(key, context, state[field])
            sealed = object.__new__(type(domain_event))
            object.__setattr__(sealed, "__dict__", state)
            domain_event = sealed
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        fields = SEALED.get(type(domain_event))
        if fields:
            state = vars(domain_event)
            for field in fields:
                value = state.get(field)
                if not is_sealed(value):
                    continue
                if isinstance(domain_event, Check.Raised) and field == "applicant":
                    self._remember(domain_event.originator_id, key_id_of(value))
                context = event_context(domain_event.originator_id, domain_event.originator_version, field)
                try:
                    state[field] = open_sealed(self.keys, context, value)
                except SubjectKeyErased:
                    state[field] = forgotten(field)
        return domain_event

    # -- a check's key --------------------------------------------------------------------------

    def key_id_of_check(self, check_id: UUID) -> str | None:
        """The key of the check's personal data (None for a check stored before subject keys)."""
        with self._lock:
            known = self._check_keys.get(check_id)
        if known is not None:
            return known
        stored = self._first_event(check_id)
        if stored is None:
            return None
        raw = self._raw_state(stored)
        applicant = raw.get("applicant")
        if not is_sealed(applicant):
            return None
        key_id = key_id_of(applicant)
        self._remember(check_id, key_id)
        return key_id

    def _key_of_check(self, check_id: UUID) -> DataKey:
        key_id = self.key_id_of_check(check_id)
        if key_id is None:
            raise SubjectKeyErased(f"check {check_id} has no subject key")
        return self.keys.get(key_id)

    def _raw_state(self, stored: StoredEvent) -> dict[str, Any]:
        state = stored.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        decoded: dict[str, Any] = self.transcoder.decode(state)
        return decoded

    def _remember(self, check_id: UUID, key_id: str) -> None:
        with self._lock:
            self._check_keys[check_id] = key_id
            self._check_keys.move_to_end(check_id)
            while len(self._check_keys) > self._remembered:
                self._check_keys.popitem(last=False)

    # -- the views' documents (domain.ports.PersonalData) ---------------------------------------

    def subject_of(self, id_number: str | None) -> str | None:
        return None if id_number is None else self.index.of(id_number)

    def seal_field(self, check_id: UUID, field: str, value: Any) -> Any:
        """`value` sealed under the check's key for a view (None stays None); forgotten once the key is erased
        (the aggregate a projector holds may still know what the key no longer opens)."""
        if value is None:
            return None
        try:
            key = self._key_of_check(check_id)
        except SubjectKeyErased:
            return forgotten(field)
        return seal(key, view_context(check_id, field), value, synthetic=True)

    def open_field(self, check_id: UUID, field: str, value: Any) -> Any:
        if not is_sealed(value):
            return value
        try:
            return open_sealed(self.keys, view_context(check_id, field), value)
        except SubjectKeyErased:
            return forgotten(field)
