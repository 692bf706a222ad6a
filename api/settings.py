"""Configuration by environment (API.md §8), the same for the server and the command line."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(Exception):
    """A setting is wrong; the message is one line naming the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NOCERT_", extra="ignore")

    database_url: str = "sqlite:///./var/nocert.db"
    admin_key: SecretStr | None = None
    key_dir: Path = Path("./var/keys")
    key_passphrase: SecretStr | None = None
    key_escrow_dir: Path | None = None  # retired seal keys move here (outside key_dir); unset: they are deleted
    checkpoint_every: int = Field(default=1000, ge=1)
    cipher_key: SecretStr | None = None
    db_pool_size: int = Field(default=20, ge=1)
    # Idempotency records (API.md §1) are kept this long after their last change, then forgotten.
    idempotency_hours: float = Field(default=24, gt=0)
    # A key whose first request has run this long without being recorded or answered (its process died)
    # is taken over by a repeat; before that a repeat is 409 idempotency_in_progress.
    idempotency_stale_seconds: float = Field(default=60, gt=0)
    # The workbench (api.workbench): a session ends after ui_idle_minutes without a request or ui_absolute_hours
    # after sign-in; ui_lockout_failures failed sign-ins in a row lock a login for ui_lockout_minutes.
    ui_idle_minutes: float = Field(default=30, gt=0)
    ui_absolute_hours: float = Field(default=12, gt=0)
    ui_lockout_failures: int = Field(default=5, ge=1)
    ui_lockout_minutes: float = Field(default=15, gt=0)
    # ui_address_failures failed sign-ins within a minute from one client address (any logins) make /ui/sign-in
    # answer that address 429 until the oldest of them is a minute old (credential stuffing across logins).
    ui_address_failures: int = Field(default=30, ge=1)
    # Webhooks (API.md §11): URL prefixes allowed besides https:// (comma-separated), the retry delays in
    # seconds, the answer timeout, and how many subscriptions are sent to at once.
    webhook_allow: str = ""
    webhook_retry: str = "5,300,1800,7200,18000,36000,36000"
    webhook_timeout: float = Field(default=10, gt=0)
    webhook_workers: int = Field(default=8, ge=1)
    # An officer's enrolment code (API.md §12, shown once at its creation) works for ui_enrolment_hours.
    ui_enrolment_hours: float = Field(default=72, gt=0)
    # The officers of this department (if set) are the platform operator in the workbench: /ui/operator
    # manages departments, officers, categories and seal keys with the admin's rights (API.md §3, §12).
    ui_operator_department: str | None = None
    # Transparency (API.md §15): the base URL the platform is reached at (the CRL distribution point named in
    # new certificates), the origin of its checkpoint notes, and the witnesses (`<witness vkey>=<base URL>`,
    # comma-separated) each new checkpoint is submitted to.
    public_url: str | None = None
    log_origin: str = "nocert.localhost/ledger"
    witnesses: str = ""
    # The node's wake-up socket (api.background): serve's workers tell its background process of their commits
    # and waits there. Unset: serve makes one in its metrics directory. Set the same path for a
    # `nocert serve --no-background` and a `nocert work` on the same host.
    wake_socket: str | None = None
    # How much lower than serve's workers the CPU priority of the background process is (its niceness above
    # the one it was started with, api.background): under load it yields the cores to requests and catches up
    # after. 0 (the default): the same priority. At 10 the webhook dispatcher starved on PostgreSQL under load.
    background_nice: int = Field(default=0, ge=0, le=19)


def load_settings() -> Settings:
    """The settings from the environment; a wrong value is a ConfigurationError naming its variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        given = first.get("input")
        shown = f" (got {given!r})" if isinstance(given, str | int | float) and field not in SECRET_FIELDS else ""
        more = f"; and {error.error_count() - 1} more" if error.error_count() > 1 else ""
        raise ConfigurationError(f"NOCERT_{field.upper()}: {first['msg'].lower()}{shown}{more}") from None


def variables() -> list[tuple[str, str]]:
    """Every environment variable the service reads, with its default (``unset`` for none), in field order."""
    shown = []
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown.append((f"NOCERT_{name.upper()}", "unset" if default is None else str(default)))
    return shown


SECRET_FIELDS = frozenset({"admin_key", "key_passphrase", "cipher_key", "database_url"})


@dataclass(frozen=True)
class StoreLocation:
    """Where the event store and the views live, parsed from ``NOCERT_DATABASE_URL``."""

    kind: str  # "sqlite", "postgres" or "memory"
    sqlite_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = ""
    dbname: str = ""
    schema: str = ""

    def conninfo(self) -> str:
        """psycopg connection string (PostgreSQL only)."""
        parts = {"host": self.host, "port": str(self.port), "user": self.user, "dbname": self.dbname}
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{key}='{value}'" for key, value in parts.items())


def parse_database_url(url: str, *, existing: bool = False) -> StoreLocation:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``, ``postgresql://u:p@host:port/db?schema=s``
    or ``memory://`` (tests only). Parent directories of a SQLite file are created, unless ``existing``
    (the read-only commands): then the file must already be there."""
    parsed = urlsplit(url)
    if parsed.scheme == "memory":
        return StoreLocation("memory")
    if parsed.scheme == "sqlite":
        if parsed.netloc or not parsed.path.startswith("/") or len(parsed.path) < 2:
            raise ConfigurationError(
                f"NOCERT_DATABASE_URL: {url!r} is no sqlite URL (sqlite:///relative.db or sqlite:////abs/path.db)"
            )
        path = Path(unquote(parsed.path[1:]))
        if existing:
            if not path.is_file():
                what = "is a directory" if path.is_dir() else "does not exist"
                raise ConfigurationError(f"NOCERT_DATABASE_URL: the SQLite file {path} {what}; nothing was created")
            return StoreLocation("sqlite", sqlite_path=path.absolute())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(f"NOCERT_DATABASE_URL: cannot create {path.parent}: {error}") from None
        return StoreLocation("sqlite", sqlite_path=path.absolute())
    if parsed.scheme in ("postgresql", "postgres"):
        dbname = unquote(parsed.path.lstrip("/"))
        if not dbname or not parsed.hostname:
            raise ConfigurationError(f"NOCERT_DATABASE_URL: {url!r} needs a host and a database name")
        schema = parse_qs(parsed.query).get("schema", [""])[0]
        try:
            port = parsed.port or 5432
        except ValueError:
            raise ConfigurationError(f"NOCERT_DATABASE_URL: {url!r} has an invalid port") from None
        return StoreLocation(
            "postgres",
            host=parsed.hostname,
            port=port,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            dbname=dbname,
            schema=schema,
        )
    raise ConfigurationError(
        f"NOCERT_DATABASE_URL: unsupported scheme {parsed.scheme!r} (use sqlite:/// or postgresql://)"
    )


def cipher_env(cipher_key: str | None) -> dict[str, str]:
    """eventsourcing's settings for AES-GCM at rest through the ``cryptography`` package."""
    if not cipher_key:
        return {}
    try:
        size = len(base64.b64decode(cipher_key, validate=True))
    except (binascii.Error, ValueError):
        size = -1
    if size not in (16, 24, 32):
        raise ConfigurationError("NOCERT_CIPHER_KEY: must be 16, 24 or 32 bytes in base64 (e.g. `openssl rand -base64 32`)")
    return {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": cipher_key}


def store_env(location: StoreLocation, cipher_key: str | None = None, pool_size: int = 20) -> dict[str, str]:
    """eventsourcing's own settings for the chosen store (DESIGN.md: never the DB functions)."""
    # Hot aggregates (departments, categories, indexes, checks in flight) fit well within 256; a larger
    # cache only holds finished checks (about 10 KiB each, with the proof) and grows every worker.
    env: dict[str, str] = {"AGGREGATE_CACHE_MAXSIZE": "256", "COMPRESSOR_TOPIC": ""}
    if location.kind == "memory":
        env["PERSISTENCE_MODULE"] = "eventsourcing.popo"
    elif location.kind == "sqlite":
        env.update(
            PERSISTENCE_MODULE="eventsourcing.sqlite",
            SQLITE_DBNAME=str(location.sqlite_path),
            SQLITE_LOCK_TIMEOUT="10",
            APPLICATION_RECORDER_TOPIC="store.sqlite_recorder:GroupCommitSQLiteRecorder",
        )
    else:
        env.update(
            PERSISTENCE_MODULE="eventsourcing.postgres",
            POSTGRES_DBNAME=location.dbname,
            POSTGRES_HOST=location.host,
            POSTGRES_PORT=str(location.port),
            POSTGRES_USER=location.user,
            POSTGRES_PASSWORD=location.password,
            POSTGRES_SCHEMA=location.schema,
            # One pool per process for the events, the views and the idempotency records (api.bootstrap),
            # at most pool_size connections, opened as they are needed; one more holds the leader locks.
            POSTGRES_POOL_SIZE="1",
            POSTGRES_MAX_OVERFLOW=str(pool_size - 1),
            POSTGRES_CONNECT_TIMEOUT="3",
            POSTGRES_LOCK_TIMEOUT="5",
            POSTGRES_PRE_PING="n",  # dead connections fail quickly and are retried (store.recorder)
            # eventsourcing's own retries would hold a request for a minute while the database is down.
            APPLICATION_RECORDER_TOPIC="store.recorder:GroupCommitPostgresRecorder",
        )
    env.update(cipher_env(cipher_key))
    # eventsourcing requires POSTGRES_PASSWORD to be set, empty included (a server that trusts the user).
    keep_empty = {"POSTGRES_PASSWORD"} if location.kind == "postgres" else set()
    return {key: value for key, value in env.items() if value != "" or key in keep_empty}


def parse_retry(value: str) -> tuple[float, ...]:
    """``NOCERT_WEBHOOK_RETRY``: comma-separated delays in seconds, each 0 or more."""
    try:
        delays = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        delays = (-1.0,)
    if any(delay < 0 or delay != delay for delay in delays):
        raise ConfigurationError(f"NOCERT_WEBHOOK_RETRY: {value!r} is no comma-separated list of seconds (e.g. 5,300,1800)")
    return delays
