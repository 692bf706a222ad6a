"""The "before" of per-subject encryption in the benchmarks (bench.plain_mapper) stores a check's personal
fields as eventsourcing's plain mapper does, and only when a benchmark asked for it."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
import json, sys, tempfile
from pathlib import Path
import bench.plain_mapper
from api.bootstrap import build_platform
from api.claims import JsonSchemaClaims
from api.sealing import KeyStoreSealer
from api.settings import StoreLocation, store_env
from bench.subject_keys import lifecycle_events
from signing.keystore import KeyStore
with tempfile.TemporaryDirectory() as keys:
    app, subjects = build_platform(store_env(StoreLocation("memory"), None), Path(keys),
                                   sealer=KeyStoreSealer(KeyStore(Path(keys))), claims=JsonSchemaClaims())
    stored = [app.mapper.to_stored_event(event) for event in lifecycle_events(app)]
    raised = stored[0].state.decode()
    print(json.dumps({"mapper": type(subjects).__name__, "clear": "350102" in raised,
                      "subject_keys": sorted(p.name for p in Path(keys).rglob("*") if "subjects" in p.parts and p.is_file())}))
"""


def run(env_extra: dict[str, str]) -> dict[str, object]:
    import os

    env = {key: value for key, value in os.environ.items() if key != "BENCH_PLAIN_MAPPER"} | env_extra
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run([sys.executable, "-c", SCRIPT], env=env, cwd=root, capture_output=True, text=True, timeout=120, check=True)
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def test_the_plain_mapper_only_when_a_benchmark_asks() -> None:
    asked = run({"BENCH_PLAIN_MAPPER": "1"})
    assert asked["mapper"] == "PlainMapper"
    assert asked["clear"] is True  # the applicant's region code of the identity number, in the stored state
    assert asked["subject_keys"] == []  # no subject key made or read
    default = run({})
    assert default["mapper"] == "SubjectMapper"
    assert default["clear"] is False


def test_the_runner_refuses_without_the_benchmark_setting() -> None:
    import os

    env = {key: value for key, value in os.environ.items() if key != "BENCH_PLAIN_MAPPER"}
    with tempfile.TemporaryDirectory() as cwd:
        root = Path(__file__).resolve().parents[2]
        completed = subprocess.run(
            [sys.executable, "-m", "bench.plain_mapper", "--help"], env=env | {"PYTHONPATH": str(root)}, cwd=cwd,
            capture_output=True, text=True, timeout=60,
        )
    assert completed.returncode != 0 and "BENCH_PLAIN_MAPPER=1" in completed.stderr


def test_the_servers_workers_store_with_the_plain_mapper_when_asked(tmp_path: Path) -> None:
    """`nocert serve` through bench.plain_mapper: its spawned workers (a fresh interpreter each) use the
    plain mapper too, so the benchmark's before is the whole server's."""
    import os
    import sqlite3

    import httpx

    from bench import lifecycle, servers

    os.environ["BENCH_PLAIN_MAPPER"] = "1"
    try:
        server = servers.nocert_server(f"sqlite:///{tmp_path}/nocert.db", tmp_path / "keys", workers=2)
        assert server.command[1:3] == ["-m", "bench.plain_mapper"]
        with server:
            keys = lifecycle.create_province(server.base_url)
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                for serial in range(8):  # over both workers
                    body = lifecycle.check_body(serial)
                    answer = client.post("/v1/checks", json=body, headers={"Authorization": f"Bearer {keys['approver']}"})
                    assert answer.status_code == 201, answer.text
    finally:
        del os.environ["BENCH_PLAIN_MAPPER"]
    with sqlite3.connect(tmp_path / "nocert.db") as db:
        states = [bytes(state) for (state,) in db.execute("SELECT state FROM stored_events WHERE topic LIKE '%Raised%'")]
    assert len(states) == 8
    numbers = [lifecycle.check_body(serial)["applicant"]["id_number"].encode() for serial in range(8)]
    assert all(any(number in state for number in numbers) for state in states)  # in clear, in every one
