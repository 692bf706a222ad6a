"""Issue #12.7: the demo fills every view (API.md §8): overdue checks, checks waiting for information,
forwarded checks, revoked proofs, answer times spread over hours, all recorded as ordinary events in time
order by the demo clock, and audited clean; its keys are kept in a 0600 file and shown again on a store
that already holds events (what `make run` does on its second run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.audit.conftest import make_services, project
from tests.cli.test_errors import refused, run


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_demo_fills_every_view(kind: str, tmp_path: Path, request) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    env = {"NOCERT_DATABASE_URL": url, "NOCERT_KEY_DIR": str(tmp_path / "var" / "keys")}
    made = run("demo", "--checks", "30", "--url", "http://127.0.0.1:8123", env=env)
    assert made.returncode == 0, made.stderr
    assert "http://127.0.0.1:8123/docs" in made.stdout
    keys = tmp_path / "var" / "demo-keys.txt"
    assert keys.stat().st_mode & 0o777 == 0o600
    listed = [line for line in keys.read_text().splitlines() if not line.startswith("#")]
    assert len(listed) == 22 and all(line.split()[-1] in made.stdout for line in listed)

    audit = run("audit", "verify", "--json", env=env)
    assert audit.returncode == 0, audit.stdout[-2000:]
    assert json.loads(audit.stdout)["proofs"] > 0

    services = make_services(url, tmp_path / "var" / "keys")
    try:
        project(services)
        with services.database.reading() as cursor:
            rows = cursor.execute("SELECT status, due_at, answer_seconds, document FROM view_checks").fetchall()
            times = [row[0] for row in cursor.execute("SELECT at FROM ledger_leaves ORDER BY idx").fetchall()]
            medians = cursor.execute("SELECT MAX(n) FROM view_medians").fetchone()
    finally:
        services.close()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    documents = [json.loads(row[3]) for row in rows]
    statuses = {row[0] for row in rows}
    assert {"raised", "accepted", "info_requested", "replied", "closed"} <= statuses
    assert any(row[0] in ("raised", "accepted", "info_requested") and row[1] < now for row in rows), "no overdue check"
    assert any(document["forwarded_from"] for document in documents), "no forwarded check"
    assert any(document["proof"] and document["proof"]["status"] == "revoked" for document in documents), "no revoked proof"
    answers = [row[2] for row in rows if row[2] is not None]
    assert len(answers) >= 5 and max(answers) - min(answers) > 3 * 3600, "answer times are not spread over hours"
    assert medians[0] and medians[0] >= 5
    # Ordinary events, in time order, in the past, spread over days.
    assert times == sorted(times) and times[-1] < now + "Z"
    assert (datetime.fromisoformat(times[-1].replace("Z", "+00:00")) - datetime.fromisoformat(times[0].replace("Z", "+00:00"))).days >= 2

    again = run("demo", "--keep-existing", env=env)
    assert again.returncode == 0 and all(line in again.stdout for line in listed), again.stdout
    assert "/docs" in again.stdout
    refused(run("demo", env=env), "already holds events", "demo-keys.txt")
