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
``view_coverage``         coverage    counters per (``category``, ``approver_region``)
``ledger_leaves``         ledger      one leaf per event, in log order (``idx`` 0-based)
``ledger_nodes``          ledger      every perfect Merkle node ``(level, idx)`` (level 0 = leaf hashes)
``ledger_state``          ledger      one row: the tree ``size`` and its frontier (hex JSON list)
``ledger_checkpoints``    (none)      signed checkpoints: signed history, never deleted by a rebuild
========================  ==========  ======================================================================
"""

from __future__ import annotations

from projections.database import Database

VIEWS = ("directory", "checks", "coverage", "ledger")

# Tables whose rows a rebuild deletes and replays (checkpoints are signed history and stay).
VIEW_TABLES = (
    "view_departments",
    "view_categories",
    "view_checks",
    "view_coverage",
    "ledger_leaves",
    "ledger_nodes",
    "ledger_state",
)

COUNTERS = (
    "raised",
    "open",
    "replied_confirmed",
    "replied_not_confirmed",
    "declined",
    "withdrawn",
    "closed_exempted",
    "closed_commitment",
    "closed_applicant_submitted",
    "answered",
    "answered_on_time",
)


def _statements(dialect: str) -> list[str]:
    postgres = dialect == "postgres"
    # Keys that lists sort and page on compare byte-wise (as Python does) on both stores.
    key = 'TEXT COLLATE "C"' if postgres else "TEXT"
    blob = "BYTEA" if postgres else "BLOB"
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
    position BIGINT NOT NULL,
    document TEXT NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS view_checks_by_time ON view_checks (raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_by_approver ON view_checks (approver, raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_by_issuer ON view_checks (issuer, raised_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_inbox ON view_checks (inbox_issuer, due_at, id)",
        "CREATE INDEX IF NOT EXISTS view_checks_open_due ON view_checks (status, due_at)",
        # Medians read only answered checks, in answer-time order, per category and over all.
        "CREATE INDEX IF NOT EXISTS view_checks_answered ON view_checks (category, answer_seconds) "
        "WHERE answer_seconds IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS view_checks_answer_times ON view_checks (answer_seconds) "
        "WHERE answer_seconds IS NOT NULL",
        f"""CREATE TABLE IF NOT EXISTS view_coverage (
    category {key} NOT NULL,
    approver_region {key} NOT NULL,
    {counters},
    PRIMARY KEY (category, approver_region)
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
        """CREATE TABLE IF NOT EXISTS ledger_checkpoints (
    tree_size BIGINT PRIMARY KEY,
    root_hash TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    jws TEXT NOT NULL
)""",
    ]


def _names(dialect: str) -> set[str]:
    """The tables and indexes the statements create."""
    # "CREATE TABLE IF NOT EXISTS <name> (" and "CREATE INDEX IF NOT EXISTS <name> ON"
    return {statement.split()[5] for statement in _statements(dialect)}


def _existing(cursor: object, dialect: str) -> set[str]:
    if dialect == "postgres":
        sql = (
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "UNION SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')"
    return {row[0] for row in cursor.execute(sql).fetchall()}  # type: ignore[attr-defined]


def _complete(cursor: object, dialect: str) -> bool:
    if not _names(dialect) <= _existing(cursor, dialect):
        return False
    tracked = {row[0] for row in cursor.execute("SELECT view_name FROM view_tracking").fetchall()}  # type: ignore[attr-defined]
    state = cursor.execute("SELECT 1 FROM ledger_state WHERE id = 1").fetchone()  # type: ignore[attr-defined]
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
        for statement in _statements(database.dialect):
            cursor.execute(statement)
        for view in VIEWS:
            cursor.execute(
                "INSERT INTO view_tracking (view_name, position) VALUES (?, 0) ON CONFLICT (view_name) DO NOTHING",
                (view,),
            )
        cursor.execute(
            "INSERT INTO ledger_state (id, size, frontier) VALUES (1, 0, '[]') ON CONFLICT (id) DO NOTHING"
        )


def reset_views(cursor: object) -> None:
    """Empties every view (not the checkpoints) and sets every tracking position to 0, in `cursor`'s
    transaction: the start of a rebuild."""
    for table in VIEW_TABLES:
        cursor.execute(f"DELETE FROM {table}")  # type: ignore[attr-defined]
    cursor.execute("UPDATE view_tracking SET position = 0")  # type: ignore[attr-defined]
    cursor.execute("INSERT INTO ledger_state (id, size, frontier) VALUES (1, 0, '[]')")  # type: ignore[attr-defined]
