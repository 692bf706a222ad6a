"""Database statements per lifecycle, by the line of nocert that issued them (no timing: a count).

Runs the app in-process (FastAPI TestClient, the views follower not started) on a fresh PostgreSQL
schema, creates the province through the admin API, runs ``--lifecycles`` raise → accept → reply →
close lifecycles, and counts every statement psycopg executes during them, attributed to the innermost
nocert frame that led to it and classed by its first SQL word (an empty statement is the connection
pool's pre-ping). Pipelined statements (eventsourcing's insert) are counted one by one.

    .venv/bin/python -m bench.roundtrips --lifecycles 50
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections import Counter
from typing import Any

from bench import lifecycle, report, stores

PROJECT = ("/api/", "/domain/", "/projections/", "/signing/")
PASS_THROUGH = ("/store/recorder.py", "/store/database.py")


def _site(depth: int = 3) -> str:
    """The innermost ``depth`` nocert frames that led to the statement, innermost first."""
    chain = []
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = frame.filename.replace("\\", "/")
        if any(part in path for part in PROJECT) and not any(path.endswith(p) for p in PASS_THROUGH):
            short = path.split("/main/", 1)[-1]
            chain.append(f"{frame.name} ({short}:{frame.lineno})")
            if len(chain) == depth:
                break
    return " <- ".join(chain) or "(library only)"


def _kind(query: Any, cursor: Any) -> str:
    text = query
    if not isinstance(text, str | bytes):
        try:
            text = query.as_string(cursor)
        except Exception:  # a statement psycopg cannot render here: name it by its type
            text = type(query).__name__
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    words: list[str] = text.strip().split()
    if not words:
        return "pre-ping (empty query)"
    first = words[0].upper()
    if first == "SELECT" and "FROM" in text.upper():
        table = text.upper().split("FROM", 1)[1].split()[0].strip('"')
        return f"SELECT ... FROM {table.lower()}"
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.roundtrips", description=__doc__.splitlines()[0])
    parser.add_argument("--lifecycles", type=int, default=50)
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)

    import psycopg
    from fastapi.testclient import TestClient

    from api.app import create_app
    from bench import bulk

    by_site: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    counting = [False]
    original_execute, original_executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if counting[0]:
            by_site[_site()] += 1
            by_kind[_kind(query, self)] += 1
        return original_execute(self, query, params, **kwargs)

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        if counting[0]:
            by_site[_site() + " [executemany]"] += 1
            by_kind[_kind(query, self) + " (executemany)"] += 1
        return original_executemany(self, query, params_seq, **kwargs)

    psycopg.Cursor.execute, psycopg.Cursor.executemany = execute, executemany  # type: ignore[method-assign]  # counting psycopg's statements in place
    with stores.key_dir() as keys, stores.store("postgres", "bench_rt") as url:
        services = bulk.open_services(url, keys)
        try:
            app = create_app(services, start_views=False)
            with TestClient(app, base_url="http://127.0.0.1") as client:
                keys_by_role = lifecycle.create_province("", client)
                approver = {"Authorization": f"Bearer {keys_by_role['approver']}"}
                issuer = {"Authorization": f"Bearer {keys_by_role['issuer']}"}

                def one(serial: int) -> None:
                    check = client.post("/v1/checks", json=lifecycle.check_body(serial), headers=approver).json()
                    path = f"/v1/checks/{check['id']}"
                    for action, headers, body in (
                        ("accept", issuer, {}), ("reply", issuer, lifecycle.REPLY), ("close", approver, lifecycle.CLOSE)
                    ):
                        response = client.post(f"{path}/{action}", json=body, headers=headers)
                        assert response.status_code == 200, response.text

                for serial in range(5):  # warm the caches
                    one(serial)
                counting[0] = True
                for serial in range(5, 5 + args.lifecycles):
                    one(serial)
                counting[0] = False
        finally:
            psycopg.Cursor.execute, psycopg.Cursor.executemany = original_execute, original_executemany  # type: ignore[method-assign]  # counting psycopg's statements in place
            services.close()
    n = args.lifecycles
    summary = {
        **report.header("roundtrips", argv),
        "lifecycles": n,
        "statements_per_lifecycle": round(sum(by_kind.values()) / n, 1),
        "per_lifecycle_by_kind": {kind: round(count / n, 2) for kind, count in by_kind.most_common()},
        "per_lifecycle_by_site": {site: round(count / n, 2) for site, count in by_site.most_common(25)},
    }
    report.emit(
        summary,
        f"{summary['statements_per_lifecycle']} database statements per lifecycle (4 requests), "
        f"{summary['per_lifecycle_by_kind'].get('pre-ping (empty query)', 0)} of them pool pre-pings",
        args.json_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
