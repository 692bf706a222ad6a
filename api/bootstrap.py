"""The composition root: builds the application, the views and the signer from settings."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr

from api.claims import JsonSchemaClaims
from api.sealing import KeyStoreSealer
from api.settings import ConfigurationError, Settings, StoreLocation, parse_database_url, store_env
from domain.platform import Platform
from projections.views import Views
from signing import crl
from signing.archive import CheckpointArchive
from signing.keystore import KeyStore
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
    witnessing: Publisher

    def start(self) -> None:
        """Starts the background work of a serving process: the views' follower and the witnessing."""
        self.views.start()
        self.witnessing.start()

    def close(self) -> None:
        self.witnessing.stop()
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
    witnesses = witness_endpoints(settings)
    keystore = KeyStore(
        settings.key_dir,
        (_secret(settings.key_passphrase) or "").encode() or None,
        crl_url=crl.crl_url(settings.public_url) if settings.public_url else None,
    )
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
        log_origin=settings.log_origin,
        archive=CheckpointArchive(settings.key_dir),
    )
    return Services(settings, location, platform, database, log, keystore, views, Publisher(witnesses, LedgerCheckpoints(views)))


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

