"""The composition root: builds the application, the views and the signer from settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper
from eventsourcing.postgres import PostgresApplicationRecorder
from pydantic import SecretStr

from api.claims import JsonSchemaClaims
from api.cloudevents import Renderings
from api.idempotency import record_committed
from api.sealing import KeyStoreSealer
from api.settings import (
    ConfigurationError,
    Settings,
    StoreLocation,
    load_settings,
    parse_database_url,
    parse_retry,
    store_env,
)
from api.waits import PositionWaits
from delivery.address import allowed_prefixes
from delivery.backfill import index_feed
from delivery.dispatcher import Dispatcher
from delivery.routing import delivery_hook
from delivery.schema import create_tables as create_delivery_tables
from delivery.secrets import WebhookKeys
from delivery.streams import CheckStreams
from domain.platform import Platform
from escalation.timer import OverdueTimer
from privacy.index import BlindIndex
from privacy.keys import SubjectKeys
from privacy.mapper import SEALED, SubjectMapper
from projections.views import Views
from signing import crl
from signing.archive import CheckpointArchive
from signing.keystore import KeyPassphraseError, KeyStore, KeyStoreError
from signing.note import Signature
from store.database import Database, PostgresDatabase, SQLiteDatabase
from store.eventlog import EventLog
from witness.client import WitnessEndpoint, parse_witnesses
from witness.publisher import Publisher


@dataclass
class Services:
    """Everything a process of nocert uses, wired once."""

    settings: Settings
    location: StoreLocation
    platform: Platform
    database: Database
    log: EventLog
    keystore: KeyStore
    views: Views
    subjects: SubjectMapper  # the subject keys: blind index, field encryption, erasure's keys (`privacy`)
    overdue: OverdueTimer
    webhook_keys: WebhookKeys
    webhooks: Dispatcher
    witnessing: Publisher
    # ``?min_position=`` waits on the event loop (api.waits): for the views, and for the event store.
    view_waits: PositionWaits = field(init=False)
    store_waits: PositionWaits = field(init=False)

    def __post_init__(self) -> None:
        self.view_waits = PositionWaits(
            self.views.position, lambda: self.views.nudge(urgent=True), self.views.follower.on_advance
        )
        self.store_waits = PositionWaits(self.log.max_position)

    def start(self) -> None:
        """Starts the process's workers: the view follower, the Overdue timer, the webhook dispatcher and the
        witnessing of checkpoints."""
        self.views.start()
        self.overdue.start()
        self.webhooks.start()
        self.witnessing.start()

    def stop(self) -> None:
        self.witnessing.stop()
        self.webhooks.stop()
        self.overdue.stop()
        self.views.stop()

    def close(self) -> None:
        self.stop()
        self.database.close()
        self.platform.close()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# eventsourcing's table of events: its SQLite recorder's default name, its PostgreSQL one's for the app "nocert".
EVENTS_TABLE = {"sqlite": "stored_events", "postgres": "nocert_events"}
KEY_FILES = ("root.pem", "root.key", "ledger.pem", "ledger.key")


def _require_event_store(location: StoreLocation) -> None:
    """Read-only commands: the store must already hold nocert's event table (nothing is created)."""
    if location.kind == "sqlite":
        import sqlite3

        assert location.sqlite_path is not None
        try:
            with sqlite3.connect(f"file:{location.sqlite_path}?mode=ro", uri=True) as connection:
                found = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (EVENTS_TABLE["sqlite"],)
                ).fetchone()
        except sqlite3.DatabaseError as error:
            raise ConfigurationError(f"NOCERT_DATABASE_URL: {location.sqlite_path} is no SQLite database ({error})") from None
        if not found:
            raise ConfigurationError(f"NOCERT_DATABASE_URL: {location.sqlite_path} holds no nocert event store")
    elif location.kind == "postgres":
        import psycopg

        table = f'"{location.schema}".{EVENTS_TABLE["postgres"]}' if location.schema else EVENTS_TABLE["postgres"]
        with psycopg.connect(location.conninfo(), autocommit=True, connect_timeout=5) as connection:
            row = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if row is None or row[0] is None:
            where = f"schema {location.schema!r} of " if location.schema else ""
            raise ConfigurationError(f"NOCERT_DATABASE_URL: {where}database {location.dbname!r} holds no nocert event store")


def _require_keys(key_dir: Path) -> None:
    """Read-only commands: the key directory must hold the root and the ledger key (none is made)."""
    missing = [name for name in KEY_FILES if not (key_dir / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"NOCERT_KEY_DIR: {key_dir} lacks {', '.join(missing)}; no keys were created (is it the service's key directory?)"
        )


def _ensure_schema(location: StoreLocation, read_only: bool = False) -> None:
    """PostgreSQL: creates the store's schema if needed, or (``read_only``) requires its event store;
    one line naming the variable if it cannot."""
    import psycopg

    try:
        with psycopg.connect(location.conninfo(), autocommit=True, connect_timeout=5) as connection:
            if location.schema and not read_only:
                connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{location.schema}"')
        if read_only:
            _require_event_store(location)
    except psycopg.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(f"NOCERT_DATABASE_URL: cannot connect to PostgreSQL: {first_line}") from None


def _open_database(location: StoreLocation, settings: Settings, read_only: bool = False, *, pool: Any = None) -> Database:
    """The views' database; on PostgreSQL over ``pool`` (eventsourcing's datastore pool) when given."""
    if location.kind == "sqlite":
        assert location.sqlite_path is not None
        return SQLiteDatabase(location.sqlite_path)
    if location.kind == "postgres":
        if pool is None:
            _ensure_schema(location, read_only)
        return PostgresDatabase(location.conninfo(), location.schema, pool_size=settings.db_pool_size, pool=pool)
    raise ConfigurationError("NOCERT_DATABASE_URL: memory:// serves domain tests only; use sqlite:/// or postgresql://")


def _check_cipher(platform: Platform) -> None:
    """Fails fast when the stored events cannot be read with the configured cipher key."""
    first = platform.recorder.select_notifications(start=1, limit=1)
    if not first:
        return
    try:
        platform.mapper.to_domain_event(first[0])
    except Exception:  # a wrong key or no key for encrypted data: any decoding failure means that
        raise ConfigurationError(
            "NOCERT_CIPHER_KEY: the stored events cannot be decrypted with this key (or need one)"
        ) from None


def build(settings: Settings | None = None, *, read_only: bool = False) -> Services:
    """Builds the services from settings (the environment when none are given).

    ``read_only`` (audit verify, audit export): the store and the keys must exist already; a mistyped path
    is an error rather than a new empty store or a fresh root key.
    """
    settings = settings or load_settings()
    location = parse_database_url(settings.database_url, existing=read_only)
    witnesses = witness_endpoints(settings)
    if read_only:
        _require_keys(settings.key_dir)
        if location.kind == "sqlite":
            _require_event_store(location)
    try:
        keystore = KeyStore(
            settings.key_dir,
            (_secret(settings.key_passphrase) or "").encode() or None,
            crl_url=crl.crl_url(settings.public_url) if settings.public_url else None,
            escrow_dir=settings.key_escrow_dir,
        )
        keystore.root()
    except KeyPassphraseError as error:
        raise ConfigurationError(f"NOCERT_KEY_PASSPHRASE: {error}") from None
    except KeyStoreError as error:
        raise ConfigurationError(f"NOCERT_KEY_DIR: {error}") from None
    except OSError as error:
        raise ConfigurationError(f"NOCERT_KEY_DIR: cannot use {settings.key_dir}: {error.strerror or error}") from None
    except ValueError as error:  # a certificate file that is no PEM certificate
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(f"NOCERT_KEY_DIR: {settings.key_dir} holds a damaged certificate file ({first})") from None
    if location.kind == "postgres":
        _ensure_schema(location, read_only)
    elif location.kind != "sqlite":
        _open_database(location, settings)  # says which stores serve
    env = store_env(location, _secret(settings.cipher_key), pool_size=settings.db_pool_size)
    platform, subjects = build_platform(
        env,
        settings.key_dir,
        sealer=KeyStoreSealer(keystore),
        claims=JsonSchemaClaims(),
        save_hooks=[record_committed, delivery_hook],
    )
    _check_cipher(platform)
    # One pool per process: the views and idempotency records share the event store's connections.
    recorder = platform.recorder
    pool = recorder.datastore.pool if isinstance(recorder, PostgresApplicationRecorder) else None
    database = _open_database(location, settings, pool=pool)
    log = EventLog(platform, database)
    if not read_only:
        create_delivery_tables(database)  # before the first save: the delivery hook's attachments write them
        index_feed(database, log, platform.mapper)
    views = Views(
        database,
        platform,
        log,
        ledger_signer=keystore.ledger_signer(),
        personal=subjects,
        checkpoint_every=settings.checkpoint_every,
        log_origin=settings.log_origin,
        archive=CheckpointArchive(settings.key_dir),
    )
    overdue = OverdueTimer(platform, views, database)
    webhook_keys = WebhookKeys(settings.key_dir, (_secret(settings.key_passphrase) or "").encode() or None)
    webhooks = build_dispatcher(settings, platform, database, webhook_keys)
    witnessing = Publisher(witnesses, LedgerCheckpoints(views))
    return Services(
        settings, location, platform, database, log, keystore, views, subjects, overdue, webhook_keys, webhooks, witnessing
    )


def build_dispatcher(settings: Settings, platform: Platform, database: Database, keys: WebhookKeys, **overrides: Any) -> Dispatcher:
    """The webhook dispatcher of these settings (tests give a transport or a poll interval)."""
    streams = CheckStreams(platform.events, SEALED)  # the round's checks in one query, kept sealed between rounds
    return Dispatcher(
        database,
        keys,
        lambda heads: Renderings(platform, streams.read(due.check_id for due in heads)).body,  # each department once
        lambda subscription, position, status, error: platform.subscription_failing(UUID(subscription), position, status, error),
        retry=parse_retry(settings.webhook_retry),
        timeout=settings.webhook_timeout,
        allow=allowed_prefixes(settings.webhook_allow),
        workers=settings.webhook_workers,
        **overrides,
    )


def build_platform(env: dict[str, str], key_dir: Path, **kwargs: Any) -> tuple[Platform, SubjectMapper]:
    """The application with its check events' personal data under the subject keys of `key_dir`."""
    keys, index = SubjectKeys(key_dir), BlindIndex.in_key_dir(key_dir)

    class SubjectPlatform(Platform):
        """The platform whose mapper seals personal fields per subject (eventsourcing's hook for a mapper)."""

        name = Platform.name  # the library names tables and settings after it, not after the subclass

        def construct_mapper(self) -> Mapper[UUID]:
            return SubjectMapper(super().construct_mapper(), keys, index)

    platform = SubjectPlatform(env, **kwargs)
    subjects = platform.mapper
    assert isinstance(subjects, SubjectMapper)
    subjects.attach(lambda stream_id: next(iter(platform.recorder.select_events(stream_id, lte=1, limit=1)), None))
    return platform, subjects


class LedgerCheckpoints:
    """The views as the witnesses' `witness.publisher.CheckpointSource`."""

    def __init__(self, views: Views) -> None:
        self.views = views

    def latest_note(self) -> tuple[int, str] | None:
        return self.views.latest_note()

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        return self.views.consistency_nodes(old_size, new_size)

    def witnessed_size(self, witness: str, key_id: bytes) -> int:
        return self.views.witnessed_size(witness, key_id)

    def record(self, tree_size: int, signatures: list[Signature]) -> None:
        self.views.record_cosignatures(tree_size, signatures)


def witness_endpoints(settings: Settings) -> list[WitnessEndpoint]:
    """The witnesses of ``NOCERT_WITNESSES``, each new checkpoint is submitted to (none: no witnessing)."""
    try:
        return parse_witnesses(settings.witnesses)
    except ValueError as error:
        raise ConfigurationError(f"NOCERT_WITNESSES: {error}") from None

