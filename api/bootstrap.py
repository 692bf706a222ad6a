"""The composition root: builds the application, the views and the signer from settings."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from api.claims import JsonSchemaClaims
from api.sealing import KeyStoreSealer
from api.settings import ConfigurationError, Settings, StoreLocation, parse_database_url, store_env
from domain.platform import Platform
from projections.views import Views
from signing.keystore import KeyStore, KeyStoreError
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

    def close(self) -> None:
        self.views.stop()
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
    try:
        keystore = KeyStore(
            settings.key_dir, (_secret(settings.key_passphrase) or "").encode() or None, escrow_dir=settings.key_escrow_dir
        )
    except KeyStoreError as error:
        raise ConfigurationError(f"NOCERT_KEY_ESCROW_DIR: {error}") from None
    keystore.root()
    database = _open_database(location, settings)
    env = store_env(location, _secret(settings.cipher_key), pool_size=settings.db_pool_size)
    platform = Platform(env, sealer=KeyStoreSealer(keystore), claims=JsonSchemaClaims())
    _check_cipher(platform)
    log = EventLog(platform, database)
    views = Views(
        database,
        platform,
        log,
        ledger_signer=keystore.ledger_signer(),
        checkpoint_every=settings.checkpoint_every,
    )
    return Services(settings, location, platform, database, log, keystore, views)
