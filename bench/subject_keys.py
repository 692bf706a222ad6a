"""The cost of per-subject field encryption (API.md §14) on the event path, in one process, no database:
a check lifecycle's events (Raised, Accepted, Replied with a sealed proof, Closed) encoded to stored events
and decoded again, with eventsourcing's plain mapper and with `privacy.mapper.SubjectMapper` (keys in a
temporary key directory), each with and without ``NOCERT_CIPHER_KEY``. Reports events/s for encoding and
for decoding (decoding is what `nocert audit verify` and `nocert views rebuild` do per event).

    .venv/bin/python -m bench.subject_keys --seconds 3
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from pathlib import Path
from typing import Any

from api.bootstrap import build_platform
from api.claims import JsonSchemaClaims
from api.demo import create_province
from api.sealing import KeyStoreSealer
from api.settings import StoreLocation, store_env
from bench.bulk import APPROVERS, CATEGORIES, DEPARTMENTS, _body
from domain.platform import Platform
from signing.keystore import KeyStore


def lifecycle_events(app: Platform) -> list[Any]:
    create_province(app, DEPARTMENTS, [(code, name, "police", ["collaboration"], sla) for code, name, sla in CATEGORIES])
    check, _ = app.raise_check(APPROVERS[0], **_body(0))
    app.accept(check.id, check.issuer)
    app.reply(check.id, check.issuer, "confirmed", {"same_person": True}, 90)
    app.close_check(check.id, APPROVERS[0], "exempted")
    return list(app.events.get(check.id))


def rate(work: Any, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        work()
        done += 1
    return done / elapsed


def measure(app: Platform, seconds: float) -> dict[str, float]:
    events = lifecycle_events(app)
    stored = [app.mapper.to_stored_event(event) for event in events]
    encode = rate(lambda: [app.mapper.to_stored_event(event) for event in events], seconds) * len(events)
    decode = rate(lambda: [app.mapper.to_domain_event(item) for item in stored], seconds) * len(events)
    return {"encode": encode, "decode": decode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default 3)")
    args = parser.parse_args()
    cipher = base64.b64encode(b"b" * 32).decode()
    print(f"{'mapper':<16} {'cipher key':<10} {'encode ev/s':>12} {'decode ev/s':>12}")
    for cipher_key in (None, cipher):
        env = store_env(StoreLocation("memory"), cipher_key)
        with tempfile.TemporaryDirectory() as keys:
            sealer, claims = KeyStoreSealer(KeyStore(Path(keys))), JsonSchemaClaims()
            plain = measure(Platform(env, sealer=sealer, claims=claims), args.seconds)
            subject, _ = build_platform(env, Path(keys), sealer=sealer, claims=claims)
            sealed = measure(subject, args.seconds)
        for name, figures in (("plain", plain), ("subject keys", sealed)):
            print(f"{name:<16} {'set' if cipher_key else 'unset':<10} {figures['encode']:>12,.0f} {figures['decode']:>12,.0f}")


if __name__ == "__main__":
    main()
