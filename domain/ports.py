"""What the domain needs from outside, as small protocols the composition root fills in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from eventsourcing.domain import Aggregate


@dataclass(frozen=True)
class SealCertificate:
    """A department's new seal: its certificate (the private key stays with the sealer)."""

    kid: str
    certificate_pem: str
    not_before: datetime
    not_after: datetime


class Sealer(Protocol):
    """Creates department seal keys and seals proof payloads with them (`api.sealing.KeyStoreSealer` over
    the key directory's `signing.key.SigningKey`s today, an HSM later)."""

    def create_seal(self, department_id: str, name: str, uscc: str) -> SealCertificate: ...

    def seal(self, kid: str, payload: dict[str, Any]) -> str:
        """Returns the compact JWS of ``payload`` sealed with key ``kid``."""
        ...

    def retire(self, kid: str) -> None:
        """Key ``kid`` seals nothing more: its private half leaves the service's reach (escrowed or
        destroyed). Its certificate stays, so that the proofs it sealed still verify."""
        ...


class ClaimsValidator(Protocol):
    """JSON Schema checks for category claims schemas and the claims of checks."""

    def check_schema(self, schema: dict[str, Any]) -> None:
        """Raises `InvalidInput` (``validation_error``) when ``schema`` is no valid JSON Schema."""
        ...

    def validate(self, schema: dict[str, Any], claims: dict[str, Any]) -> None:
        """Raises `InvalidClaims` when ``claims`` does not validate."""
        ...


class PersonalData(Protocol):
    """Personal data as the views keep it (`privacy.mapper.SubjectMapper`): the blind index of an applicant's
    identity number, and a document's personal fields sealed under the check's subject key."""

    def subject_of(self, id_number: str | None) -> str | None:
        """The applicant's blind index entry (None for an erased applicant)."""
        ...

    def seal_field(self, check_id: Any, field: str, value: Any) -> Any:
        """`value` as a view stores it: sealed under the check's key, or forgotten once that was erased."""
        ...

    def open_field(self, check_id: Any, field: str, value: Any) -> Any:
        """A stored field as the reader gets it (null once the key was erased)."""
        ...


class Attachment(Protocol):
    """Rows a save writes in the transaction of its events: the command's replayable outcome, its outbox
    rows. Opaque to the domain; the store calls `write` once the events have their positions."""

    def write(self, cursor: Any, positions: Sequence[object]) -> None:
        """Writes the rows with ``cursor`` (a `store.database.Cursor`, ``?`` placeholders); ``positions``
        are those of the save's events, in the order the save collected them, as statement parameters: they
        go to ``cursor`` only (on PostgreSQL they are references the server resolves, `store.positions`)."""
        ...


class SaveHook(Protocol):
    """Gives the attachments of a save from its aggregates and their pending events (in save order)."""

    def __call__(self, aggregates: Sequence[Aggregate], events: Sequence[Any]) -> Iterable[Attachment]: ...
