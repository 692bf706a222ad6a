"""The composition root: builds the application, the views and the signer from settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import SecretStr

from api.claims import JsonSchemaClaims
from api.cloudevents import render_delivery
from api.sealing import KeyStoreSealer
from api.settings import ConfigurationError, Settings, StoreLocation, parse_database_url, parse_retry, store_env
from delivery.address import allowed_prefixes
from delivery.backfill import index_feed
from delivery.dispatcher import Dispatcher
from delivery.routing import delivery_hook
from delivery.schema import create_tables as create_delivery_tables
from delivery.secrets import WebhookKeys
from domain.platform import Platform
from escalation.timer import OverdueTimer
from projections.views import Views
from signing.keystore import KeyStore
from store.database import Database, PostgresDatabase, SQLiteDatabase
from store.eventlog import EventLog


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
    overdue: OverdueTimer
    webhook_keys: WebhookKeys
    webhooks: Dispatcher

    def start(self) -> None:
        """Starts the process's workers: the view follower, the Overdue timer and the webhook dispatcher."""
        self.views.start()
        self.overdue.start()
        self.webhooks.start()

    def stop(self) -> None:
        self.webhooks.stop()
        self.overdue.stop()
        self.views.stop()

    def close(self) -> None:
        self.stop()
        self.database.close()
        self.platform.close()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


def _open_database(location: StoreLocation, settings: Settings) -> Database:
    if location.kind == "sqlite":
        assert location.sqlite_path is not None
        return SQLiteDatabase(location.sqlite_path)
    if location.kind == "postgres":
        import psycopg

        try:
            with psycopg.connect(location.conninfo(), autocommit=True, connect_timeout=5) as connection:
                if location.schema:
                    connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{location.schema}"')
        except psycopg.Error as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigurationError(f"NOCERT_DATABASE_URL: cannot connect to PostgreSQL: {first_line}") from None
        return PostgresDatabase(location.conninfo(), location.schema, pool_size=settings.db_pool_size)
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


def build(settings: Settings | None = None) -> Services:
    """Builds the services from settings (the environment when none are given)."""
    settings = settings or Settings()
    location = parse_database_url(settings.database_url)
    keystore = KeyStore(settings.key_dir, (_secret(settings.key_passphrase) or "").encode() or None)
    keystore.root()
    database = _open_database(location, settings)
    env = store_env(location, _secret(settings.cipher_key), pool_size=settings.db_pool_size)
    create_delivery_tables(database)  # before the first save: its attachments write them
    platform = Platform(env, sealer=KeyStoreSealer(keystore), claims=JsonSchemaClaims(), save_hooks=[delivery_hook])
    _check_cipher(platform)
    log = EventLog(platform, database)
    index_feed(database, log, platform.mapper)
    views = Views(
        database,
        platform,
        log,
        ledger_signer=keystore.ledger_signer(),
        checkpoint_every=settings.checkpoint_every,
    )
    overdue = OverdueTimer(platform, views, database)
    webhook_keys = WebhookKeys(settings.key_dir, (_secret(settings.key_passphrase) or "").encode() or None)
    webhooks = build_dispatcher(settings, platform, database, webhook_keys)
    return Services(settings, location, platform, database, log, keystore, views, overdue, webhook_keys, webhooks)


def build_dispatcher(settings: Settings, platform: Platform, database: Database, keys: WebhookKeys, **overrides: Any) -> Dispatcher:
    """The webhook dispatcher of these settings (tests give a transport or a poll interval)."""
    return Dispatcher(
        database,
        keys,
        lambda due: render_delivery(platform, due.department, due.position, due.check_id, due.version),
        lambda subscription, position, status, error: platform.subscription_failing(UUID(subscription), position, status, error),
        retry=parse_retry(settings.webhook_retry),
        timeout=settings.webhook_timeout,
        allow=allowed_prefixes(settings.webhook_allow),
        workers=settings.webhook_workers,
        **overrides,
    )
