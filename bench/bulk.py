"""Bulk loading a store with valid events, without HTTP.

The province (departments, categories) is created with real ``Platform`` commands on the real store.
Checks are then produced in chunks by a ``Platform`` of nocert's own domain code running on an in-memory
store seeded with the province's stored events, sealed with the real department keys (so proofs verify),
and encoded by the same mapper settings (``api.settings.store_env``); the chunk's stored events are then
inserted into the real store with its own recorder (``insert_events``, one statement per batch). The
result is exactly what the commands would have recorded through the API: replayable by the views and
checkable by ``nocert audit verify``.

Lives (by serial, deterministic): 70 % raise → accept → reply (confirmed, sealed) → close (exempted);
10 % raised only; 10 % raise → accept; 10 % raise → decline → close (applicant_submitted).
That is 3.4 events per check on average. Generation runs in ``--jobs`` processes.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import StoredEvent

from api.demo import CategoryRow, create_province
from bench import report, servers
from domain import identifiers

# (id, name, roles, kind, region)
DEPARTMENTS = [
    ("bench-fz-service", "福州市行政服务中心", ["approver"], "service-center", "350100"),
    ("bench-qz-service", "泉州市行政服务中心", ["approver"], "service-center", "350500"),
    ("bench-xm-service", "厦门市行政服务中心", ["approver"], "service-center", "350200"),
    ("bench-gulou-police", "福州市公安局鼓楼分局", ["issuer"], "police", "350102"),
    ("bench-qz-police", "泉州市公安局", ["issuer"], "police", "350500"),
    ("bench-xm-police", "厦门市公安局", ["issuer"], "police", "350200"),
    ("bench-audit", "福建省审计厅", ["auditor"], "audit", "350000"),
]
APPROVERS = ["bench-fz-service", "bench-qz-service", "bench-xm-service"]
# applicant region → the issuer that routing picks for it
APPLICANT_REGIONS = {"350102": "bench-gulou-police", "350502": "bench-qz-police", "350203": "bench-xm-police"}
CATEGORIES = [
    ("household-registration", "户籍证明", 24),
    ("kinship", "亲属关系证明", 48),
    ("residence", "居住证明", 48),
    ("former-name", "曾用名证明", 72),
    ("same-person", "同一人证明", 48),
]
EVENTS_PER_CHECK = 3.4


@dataclass
class Province:
    api_keys: dict[str, str]  # department id → API key


def open_services(database_url: str, keys: Path) -> Any:
    from pydantic import SecretStr

    from api.bootstrap import build
    from api.settings import Settings

    return build(Settings(database_url=database_url, key_dir=keys, admin_key=SecretStr(servers.ADMIN_KEY)))


def seed(services: Any) -> Province:
    """The province, through real commands on the real store (the store must be empty)."""
    app = services.platform
    if services.log.max_position():
        raise RuntimeError("bulk.seed needs an empty store")
    categories: list[CategoryRow] = [(code, name, "police", ["collaboration", "commitment"], sla) for code, name, sla in CATEGORIES]
    created = create_province(app, DEPARTMENTS, categories)
    return Province({department.id: department.api_key for department in created})


def _stored(notifications: Sequence[Any]) -> list[StoredEvent]:
    return [StoredEvent(n.originator_id, n.originator_version, n.topic, n.state) for n in notifications]


def base_events(services: Any) -> list[StoredEvent]:
    out: list[StoredEvent] = []
    after = 0
    while page := services.log.read(after, 500):
        out.extend(_stored(page))
        after = page[-1].id
    return out


# -- generation (in worker processes) -------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(keys: str, base: list[StoredEvent], cipher_key: str | None) -> None:
    from api.claims import JsonSchemaClaims
    from api.sealing import KeyStoreSealer
    from bench import plain_mapper
    from signing.keystore import KeyStore

    plain_mapper.install_if_asked()  # a spawned worker: the benchmark's mapper, as its parent's
    _worker.update(keys=Path(keys), base=base, cipher=cipher_key, sealer=KeyStoreSealer(KeyStore(Path(keys))), claims=JsonSchemaClaims())


def _body(serial: int) -> dict[str, Any]:
    region = list(APPLICANT_REGIONS)[serial % len(APPLICANT_REGIONS)]
    return {
        "category": CATEGORIES[serial % len(CATEGORIES)][0],
        "matter": {"code": "real-estate-deregistration", "name": "不动产注销登记"},
        "applicant": {"name": "林某某", "id_number": identifiers.sample_id_number(serial, region)},
        "claims": {"question": "两个身份证号码是否为同一人", "other_id_number": identifiers.sample_id_number(serial + 10_000_000, region)},
        "purpose": "不动产注销登记身份一致性核验",
        "consent": {"method": "face", "reference": f"FACE-{serial:08d}"},
    }


def generate(span: tuple[int, int]) -> list[StoredEvent]:
    """The stored events of checks ``serial`` in [start, stop), from a fresh in-memory platform."""
    from api.bootstrap import build_platform
    from api.settings import StoreLocation, store_env

    start, stop = span
    # As the service stores them: personal fields sealed under subject keys of the bench's key directory.
    env = store_env(StoreLocation("memory"), _worker["cipher"])
    app, _ = build_platform(env, _worker["keys"], sealer=_worker["sealer"], claims=_worker["claims"])
    # Commands here never fail half-way, so the generator may skip the repository's defensive deep copy of
    # cached aggregates (it only changes how fast this in-memory platform runs, not the events it records).
    app.repository.deepcopy_from_cache = False
    base = _worker["base"]
    app.recorder.insert_events(base)
    for serial in range(start, stop):
        body = _body(serial)
        approver = APPROVERS[serial % len(APPROVERS)]
        check, _ = app.raise_check(approver, **body)
        issuer = check.issuer
        life = serial % 10
        if life == 7:  # raised only
            continue
        if life == 8:  # raise → decline → close
            app.decline(check.id, issuer, "no_record", "查无此人")
            app.close_check(check.id, approver, "applicant_submitted")
            continue
        app.accept(check.id, issuer)
        if life == 9:  # raise → accept
            continue
        app.reply(check.id, issuer, "confirmed", {"same_person": True}, 90)
        app.close_check(check.id, approver, "exempted")
    events = _stored(app.recorder.select_notifications(start=len(base) + 1, limit=10**9))
    app.close()
    return events


def load(
    services: Any,
    keys: Path,
    target_events: int,
    *,
    jobs: int = 2,
    chunk_checks: int = 1000,
    insert_batch: int = 5000,
    first_serial: int = 0,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Adds checks until the log holds at least ``target_events``. Returns what it did and how long it took."""
    started = time.monotonic()
    have = services.log.max_position()
    need_checks = max(0, int((target_events - have) / EVENTS_PER_CHECK) + 1)
    spans = [(s, min(s + chunk_checks, first_serial + need_checks)) for s in range(first_serial, first_serial + need_checks, chunk_checks)]
    cipher = services.settings.cipher_key.get_secret_value() if services.settings.cipher_key else None
    inserted = retries = 0
    generate_seconds = insert_seconds = 0.0
    context = multiprocessing.get_context("spawn")
    with context.Pool(jobs, initializer=_init_worker, initargs=(str(keys), base_events(services), cipher)) as pool:
        waited = time.monotonic()
        for events in pool.imap(generate, spans):
            generate_seconds += time.monotonic() - waited
            began = time.monotonic()
            for offset in range(0, len(events), insert_batch):
                retries += _insert(services, events[offset : offset + insert_batch])
            insert_seconds += time.monotonic() - began
            inserted += len(events)
            if progress is not None:
                progress(have + inserted)
            waited = time.monotonic()
    seconds = time.monotonic() - started
    return {
        "checks_added": need_checks,
        "events_added": inserted,
        "events_in_log": services.log.max_position(),
        "seconds": round(seconds, 1),
        "events_per_s": round(inserted / seconds, 1) if seconds else None,
        "waiting_for_generation_s": round(generate_seconds, 1),
        "inserting_s": round(insert_seconds, 1),
        "next_serial": first_serial + need_checks,
        "insert_retries_after_database_outages": retries,
    }


def _insert(services: Any, events: list[StoredEvent], patience: float = 180.0) -> int:
    """Inserts one batch (one transaction), waiting out a PostgreSQL restart (other suites on this machine
    stop it now and then). A batch found already stored after a lost answer is not inserted twice."""
    from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

    deadline = time.monotonic() + patience
    retried = 0
    while True:
        try:
            services.platform.recorder.insert_events(events)
            return retried
        except IntegrityError:
            if retried:
                return retried  # the first attempt committed before its answer was lost
            raise
        except (OperationalError, InterfaceError) as error:
            if time.monotonic() > deadline:
                raise
            report.log(f"bulk: insert failed ({str(error).splitlines()[0]}); waiting for the database")
            retried += 1
            time.sleep(2)


def catch_up_views(services: Any, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Lets the views follow the log in this process (the follower's own code path: `Views.follow_once`,
    batches of `BATCH_SIZE` in one transaction each) until they reflect every event."""
    views = services.views
    lock = services.database.leader_lock("views")
    before = views.position()
    started = time.monotonic()
    retries = 0
    try:
        while True:
            try:
                head = services.log.max_position()
                if views.position() >= head:
                    break
                views.follow_once(lock)
                if progress is not None:
                    progress(views.position(), head)
            except Exception as error:  # a PostgreSQL restart under us: the batch rolled back; go on after it
                if time.monotonic() - started > 3600:
                    raise
                retries += 1
                report.log(f"bulk: views batch failed ({str(error).splitlines()[0] if str(error) else type(error).__name__}); retrying")
                time.sleep(2)
    finally:
        with contextlib.suppress(Exception):
            lock.release()
            close = getattr(lock, "close", None)
            if close is not None:
                close()
    seconds = time.monotonic() - started
    applied = views.position() - before
    return {
        "events_applied": applied,
        "seconds": round(seconds, 1),
        "events_per_s": round(applied / seconds, 1) if seconds else None,
        "retries_after_database_outages": retries,
    }
