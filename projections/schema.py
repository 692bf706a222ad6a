"""The views' tables, created idempotently with portable SQL (SQLite and PostgreSQL).

Every view keeps its tracking position in ``view_tracking``, written in the same transaction as its
rows, so a view is always exactly the log up to its position.

========================  ==========  ======================================================================
table                     view        rows
========================  ==========  ======================================================================
``view_tracking``         (all)       ``view_name`` → ``position``: the last log position the view reflects
``view_departments``      directory   a department's ``id`` and ``region`` (from ``Department.Registered``)
``view_categories``       directory   a category's ``code``, ``name``, ``status`` and ``modes`` (JSON list)
``view_checks``           checks      one row per check: the columns lists filter and sort on + the document
                                      (applicant and claims sealed under the subject key); ``subject``: the
                                      applicant's blind index (null once erased)
``subject_lookups``       (none)      each access-log lookup (API.md §14): who, when, how many results
``subject_erasures``      (none)      each erasure's receipt (API.md §14), for the operator and the auditor
``view_coverage``         coverage    counters per (``category``, ``approver_region``)
``view_answers``          coverage    answer times per median scope, in order (`projections.medians`)
``view_medians``          coverage    per scope: the count of answers and the middle one or two
``ledger_leaves``         ledger      one leaf per event, in log order (``idx`` 0-based)
``ledger_nodes``          ledger      every perfect Merkle node ``(level, idx)`` (level 0 = leaf hashes)
``ledger_state``          ledger      one row: the tree ``size`` and its frontier (hex JSON list)
``ledger_checkpoints``    (none)      signed checkpoints: signed history, never deleted by a rebuild
``ledger_cosignatures``   (none)      witnesses' cosignature lines per checkpoint size (API.md §15): kept as well
``view_schema``           (none)      one row: the layout `VERSION` of the view tables
========================  ==========  ======================================================================

A rebuild fills a *shadow* of every table but the checkpoints (``rebuild_view_checks``, ...: the same DDL
with every view table and index name prefixed, `shadow_sql`), then swaps it in (`swap_shadow`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from tenacity import Retrying, retry_if_exception, wait_fixed

from domain.check_rules import CONCLUSIONS, OUTCOMES
from store.database import Cursor, Database

logger = logging.getLogger(__name__)

VIEWS = ("directory", "checks", "coverage", "ledger")
# The layout of the view tables. Views of another layout are dropped at start-up and built again from the
# log. 2: exact medians kept incrementally (``view_answers``, ``view_medians``). 3: check documents with
# ``overdue_since`` and ``urged``, rows with ``overdue_for`` (API.md §13). 4: ``view_checks.subject``
# (the applicant's blind index) and documents whose applicant and claims are sealed under the subject key.
VERSION = 4

# Tables a rebuild builds again from the log (checkpoints are signed history and stay).
VIEW_TABLES = (
    "view_departments",
    "view_categories",
    "view_checks",
    "view_coverage",
    "view_answers",
    "view_medians",
    "ledger_leaves",
    "ledger_nodes",
    "ledger_state",
)

# The tables a rebuild builds beside the live ones and swaps in: the views' and their tracking positions.
SWAPPED = ("view_tracking", *VIEW_TABLES)
SHADOW = "rebuild_"  # the prefix of the shadow's tables and indexes
# PostgreSQL: how long the swap waits for readers of the live views before it lets go and tries again.
SWAP_LOCK_WAIT = "250ms"

# The coverage counters (API.md §6), one column each of ``view_coverage``.
COUNTERS = (
    "raised",
    "open",
    *(f"replied_{conclusion}" for conclusion in CONCLUSIONS),
    "declined",
    "withdrawn",
    *(f"closed_{outcome}" for outcome in OUTCOMES),
    "answered",
    "answered_on_time",
)


def _statements(dialect: str) -> list[str]:
    postgres = dialect == "postgres"
    # Keys that lists sort and page on compare byte-wise (as Python does) on both stores.
    key = 'TEXT COLLATE "C"' if postgres else "TEXT"
    blob = "BYTEA" if postgres else "BLOB"
    without_rowid = "" if postgres else " WITHOUT ROWID"
    counters = ",\n    ".join(f"{name} BIGINT NOT NULL DEFAULT 0" for name in COUNTERS)
    return [
        """CREATE TABLE IF NOT EXISTS view_tracking (
    view_name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS view_departments (
    id {key} PRIMARY KEY,
    region {key} NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS view_categories (
    code {key} PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    modes TEXT NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS view_checks (
    id {key} PRIMARY KEY,
    approver {key} NOT NULL,
    issuer {key} NOT NULL,
    status {key} NOT NULL,
    category {key} NOT NULL,
    approver_region {key} NOT NULL,
    raised_at {key} NOT NULL,
    due_at {key} NOT NULL,
    answered_at {key},
    answer_seconds DOUBLE PRECISION,
    on_time INTEGER,
    answer TEXT,
    outcome TEXT,
    inbox_issuer {key},
    overdue_for {key},
    position BIGINT NOT NULL,
    subject TEXT,
    document TEXT NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS view_checks_by_subject ON view_checks (subject, raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_by_time ON view_checks (raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_by_approver ON view_checks (approver, raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_by_issuer ON view_checks (issuer, raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_inbox ON view_checks (inbox_issuer, due_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_open_due ON view_checks (status, due_at)",
        f"""CREATE TABLE IF NOT EXISTS view_coverage (
    category {key} NOT NULL,
    approver_region {key} NOT NULL,
    {counters},
    PRIMARY KEY (category, approver_region)
)""",
        # Keyed by their primary key only, which a table keeps when it is renamed (the shadow of a rebuild
        # needs its order while it fills, on SQLite too).
        f"""CREATE TABLE IF NOT EXISTS view_answers (
    category {key} NOT NULL,
    prefix {key} NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (category, prefix, seconds, position)
){without_rowid}""",
        f"""CREATE TABLE IF NOT EXISTS view_medians (
    category {key} NOT NULL,
    prefix {key} NOT NULL,
    n BIGINT NOT NULL,
    lower_seconds DOUBLE PRECISION NOT NULL,
    lower_position BIGINT NOT NULL,
    upper_seconds DOUBLE PRECISION NOT NULL,
    upper_position BIGINT NOT NULL,
    PRIMARY KEY (category, prefix)
)""",
        f"""CREATE TABLE IF NOT EXISTS ledger_leaves (
    idx BIGINT PRIMARY KEY,
    position BIGINT NOT NULL UNIQUE,
    stream_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    type TEXT NOT NULL,
    at TEXT NOT NULL,
    state_sha256 TEXT NOT NULL,
    leaf_hash {blob} NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS ledger_nodes (
    level INTEGER NOT NULL,
    idx BIGINT NOT NULL,
    hash {blob} NOT NULL,
    PRIMARY KEY (level, idx)
)""",
        """CREATE TABLE IF NOT EXISTS ledger_state (
    id INTEGER PRIMARY KEY,
    size BIGINT NOT NULL,
    frontier TEXT NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS view_schema (
    version INTEGER NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS subject_lookups (
    id {key} PRIMARY KEY,
    at {key} NOT NULL,
    principal {key} NOT NULL,
    results INTEGER NOT NULL
)""",
        f"""CREATE TABLE IF NOT EXISTS subject_erasures (
    id {key} PRIMARY KEY,
    erased_at {key} NOT NULL,
    checks INTEGER NOT NULL,
    receipt TEXT NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    jws TEXT NOT NULL
)""",
        """CREATE TABLE IF NOT EXISTS ledger_cosignatures (
    tree_size BIGINT NOT NULL,
    witness TEXT NOT NULL,
    key_id TEXT NOT NULL,
    line TEXT NOT NULL,
    cosigned_at BIGINT NOT NULL,
    PRIMARY KEY (tree_size, witness, key_id)
)""",
    ]


def _name(statement: str) -> str:
    """What a statement creates: "CREATE TABLE IF NOT EXISTS <name> (" or "CREATE INDEX IF NOT EXISTS <name> ON"."""
    return statement.split()[5]


def _is_index(statement: str) -> bool:
    return statement.split()[1] == "INDEX"


def _names(dialect: str) -> set[str]:
    """The tables and indexes the statements create."""
    return {_name(statement) for statement in _statements(dialect)}


def _existing(cursor: Cursor, dialect: str) -> set[str]:
    if dialect == "postgres":
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "UNION SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
    return {row[0] for row in cursor.execute(sql).fetchall()}


def _complete(cursor: Cursor, dialect: str) -> bool:
    existing = _existing(cursor, dialect)
    if not _names(dialect) <= existing or _version(cursor, existing) != VERSION:
        return False
    tracked = {row[0] for row in cursor.execute("SELECT view_name FROM view_tracking").fetchall()}
    state = cursor.execute("SELECT 1 FROM ledger_state WHERE id = 1").fetchone()
    return set(VIEWS) <= tracked and state is not None


def create_schema(database: Database) -> None:
    """Creates every table and index that is missing, and a tracking row (0) for every view.

    Looks first with a read, so a process starting beside a busy writer (SQLite has one write lock)
    does not wait for it when everything exists. Safe to run from several processes at once:
    PostgreSQL serialises it on an advisory lock (concurrent ``CREATE TABLE IF NOT EXISTS`` can
    otherwise fail there), SQLite on its write lock.
    """
    with database.reading() as cursor:
        if _complete(cursor, database.dialect):
            return
    with database.transaction() as cursor:
        if database.dialect == "postgres":
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('nocert:views:schema:' || current_schema()))")
        version = _version(cursor, _existing(cursor, database.dialect))
        if version not in (None, VERSION):
            # Views of another layout: dropped, so that the follower builds them again from the log.
            # Signed checkpoints stay (`nocert audit verify` checks them against the log).
            logger.warning("views: layout %s found, %s expected: the views are built again from the log", version, VERSION)
            drop_shadow(cursor)
            for table in SWAPPED:
                cursor.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _statements(database.dialect):
            cursor.execute(statement)
        _start(cursor)
        cursor.execute("DELETE FROM view_schema")
        cursor.execute("INSERT INTO view_schema (version) VALUES (?)", (VERSION,))


def _version(cursor: Any, existing: set[str]) -> int | None:
    """The layout version the stored views were made with: None for no views, 1 for views older than
    `VERSION` existed, else what ``view_schema`` holds."""
    if "view_schema" in existing:
        row = cursor.execute("SELECT version FROM view_schema").fetchone()
        if row is not None:
            return int(row[0])
    return 1 if "view_tracking" in existing else None


def _start(cursor: Any) -> None:
    """A tracking row (0) for every view and an empty ledger, where missing."""
    for view in VIEWS:
        cursor.execute(
            "INSERT INTO view_tracking (view_name, position) VALUES (?, 0) ON CONFLICT (view_name) DO NOTHING", (view,)
        )
    cursor.execute("INSERT INTO ledger_state (id, size, frontier) VALUES (1, 0, '[]') ON CONFLICT (id) DO NOTHING")


# -- the shadow of a rebuild ------------------------------------------------------------------


def _on_swapped(statement: str) -> bool:
    """Whether the statement creates a swapped table or an index on one ("... <name> ON <table> (")."""
    words = statement.split()
    return (words[7] if _is_index(statement) else words[5]) in SWAPPED


# The names a shadow renames: the swapped tables and their indexes (the same on both stores).
_SHADOWED = re.compile(r"\b(" + "|".join(_name(s) for s in _statements("sqlite") if _on_swapped(s)) + r")\b")


@lru_cache(maxsize=512)
def shadow_sql(sql: str) -> str:
    """`sql` about the live views made about the shadow: every swapped table and index name prefixed."""
    return _SHADOWED.sub(SHADOW + r"\1", sql)


class ShadowCursor:
    """A cursor that runs the views' SQL on the shadow tables (checkpoints stay the live ones)."""

    def __init__(self, cursor: Cursor) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> ShadowCursor:
        self.cursor.execute(shadow_sql(sql), params)
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]], /) -> None:
        self.cursor.executemany(shadow_sql(sql), rows)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount


def create_shadow(cursor: Any, dialect: str) -> None:
    """Drops any shadow a crashed rebuild left and creates an empty one, every view at position 0.

    Its tables come from the live DDL, renamed; on PostgreSQL its indexes too (renamed back at the swap).
    SQLite cannot rename an index: there the swap creates them, and the shadow fills faster without."""
    drop_shadow(cursor)
    for statement in _statements(dialect):
        if _on_swapped(statement) and (dialect == "postgres" or not _is_index(statement)):
            cursor.execute(shadow_sql(statement))
    _start(ShadowCursor(cursor))


def drop_shadow(cursor: Any) -> None:
    for table in SWAPPED:
        cursor.execute(f"DROP TABLE IF EXISTS {SHADOW}{table}")


def swap_shadow(cursor: Any, dialect: str) -> None:
    """Replaces the live views with the shadow in `cursor`'s transaction (DDL is transactional on both
    stores, so readers see the old views until it commits and the whole new ones after)."""
    if dialect == "postgres":
        _lock_live(cursor)
    for table in SWAPPED:
        cursor.execute(f"DROP TABLE {table}")
        cursor.execute(f"ALTER TABLE {SHADOW}{table} RENAME TO {table}")
    if dialect == "postgres":
        # Index names are per schema: the shadow's (its keys' included) take the live names back, so
        # the next rebuild's shadow can have its own.
        sql = "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema()"
        for table, index in cursor.execute(sql).fetchall():
            if table in SWAPPED and index.startswith(SHADOW):
                cursor.execute(f"ALTER INDEX {index} RENAME TO {index[len(SHADOW):]}")
    else:
        # SQLite renames a table's key indexes with it; the others are made here, under the live names.
        for statement in _statements(dialect):
            if _is_index(statement):
                cursor.execute(statement)


def _lock_live(cursor: Any) -> None:
    """Takes every live view table at once, before changing any. A reader that read one view and waits
    for another the swap holds would deadlock with it: the swap gives way (after `SWAP_LOCK_WAIT`, less
    than PostgreSQL's default deadlock_timeout of 1 s), lets the readers queued behind it through, and
    tries again; so it is never a reader that fails."""
    cursor.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_WAIT}'")

    def lock() -> None:
        cursor.execute("SAVEPOINT swap")
        try:
            cursor.execute(f"LOCK TABLE {', '.join(SWAPPED)} IN ACCESS EXCLUSIVE MODE")
        except Exception:
            cursor.execute("ROLLBACK TO SAVEPOINT swap")
            raise
        cursor.execute("RELEASE SAVEPOINT swap")

    Retrying(retry=retry_if_exception(_lock_not_available), wait=wait_fixed(0.05), reraise=True)(lock)
    cursor.execute("SET LOCAL lock_timeout = 0")


def _lock_not_available(error: BaseException) -> bool:
    return getattr(error, "sqlstate", None) == "55P03"
