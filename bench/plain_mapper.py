"""Benchmarks only: the "before" of per-subject field encryption (API.md §14, issue 17).

`PlainMapper` is `privacy.mapper.SubjectMapper` with eventsourcing's plain mapper on the event path (no field
sealed, no subject key created or read; `NOCERT_CIPHER_KEY`'s whole-state cipher still applies when set) and
the views' documents in clear, as before privacy landed. It replaces the composition root's mapper only in a
process that asked for it with ``BENCH_PLAIN_MAPPER=1``: the benchmarks' own process, their spawned workers
(`bench.bulk`), and ``python -m bench.plain_mapper <nocert arguments>``, which runs the nocert CLI with it
(uvicorn's spawned workers import this module again as their main module, so they install it too).

`bench/` is not part of the installed package and the service reads no setting for this: production always
runs `SubjectMapper`.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

import api.bootstrap
from privacy.mapper import SubjectMapper

ASKED = "BENCH_PLAIN_MAPPER"


class PlainMapper(SubjectMapper):
    """No per-subject encryption: events and view documents as eventsourcing's plain mapper leaves them."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        return Mapper.to_stored_event(self, domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return Mapper.to_domain_event(self, stored_event)

    def seal_field(self, check_id: UUID, field: str, value: Any) -> Any:
        return value


def asked() -> bool:
    return os.environ.get(ASKED) == "1"


def ask() -> None:
    """This process and every process it starts use the plain mapper."""
    os.environ[ASKED] = "1"
    install_if_asked()


def install_if_asked() -> None:
    if asked():
        api.bootstrap.SubjectMapper = PlainMapper  # type: ignore[attr-defined]  # what build_platform constructs


def command(nocert: str | None) -> list[str]:
    """How a benchmark runs the nocert CLI: the plain mapper's runner when asked, else `nocert`."""
    if asked():
        return [sys.executable, "-m", "bench.plain_mapper"]
    return [nocert] if nocert else [sys.executable, "-m", "api.cli"]


install_if_asked()

if __name__ == "__main__":
    if not asked():
        raise SystemExit(f"python -m bench.plain_mapper runs only with {ASKED}=1 (benchmarks)")
    from api.cli import main

    sys.exit(main())
