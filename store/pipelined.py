"""One transaction in one pipeline, on an autocommit connection of eventsourcing's pool.

psycopg's ``connection.transaction()`` inside ``connection.pipeline()`` nests two more pipelines around
its BEGIN and its COMMIT, and entering the inner one syncs: a round trip for the BEGIN alone, and the
generator machinery of a sync and a fetch, before the first statement is sent. Here BEGIN and COMMIT
are statements of the pipeline like the others (the connections are in autocommit mode, where psycopg
leaves transaction control to the statements): about a third less of psycopg's CPU per save
(0.57 → 0.39 ms in a five-statement micro-benchmark) and one round trip less.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus


@contextmanager
def pipelined_transaction(connection: psycopg.Connection[Any]) -> Iterator[None]:
    """BEGIN, the block's statements and COMMIT in one pipeline; on any error (a statement's, the
    block's own or the COMMIT's) nothing of it remains: the transaction is rolled back, the error raised."""
    assert connection.autocommit, "transaction control by statements needs an autocommit connection"
    try:
        with connection.pipeline():
            with connection.cursor() as cursor:
                cursor.execute(b"BEGIN")
            yield
            with connection.cursor() as cursor:
                cursor.execute(b"COMMIT")
    except BaseException:
        if not connection.broken and connection.info.transaction_status != TransactionStatus.IDLE:
            with suppress(psycopg.Error):  # a connection that fails here is the pool's to discard
                connection.execute(b"ROLLBACK")
        raise
