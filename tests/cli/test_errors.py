"""Issue #12.4: every way the command line is used wrongly is one line naming what is wrong, exit 2, never a
traceback; ``proof verify`` exits 1 only for an invalid proof; the read-only commands never create a store
or keys where a path was mistyped."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.bootstrap import build
from api.settings import Settings

NOCERT = str(Path(sys.executable).with_name("nocert"))


def run(*args: str, env: dict[str, str] | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("NOCERT_")}
    base.update(env or {})
    base.update(extra)
    return subprocess.run([NOCERT, *args], env=base, capture_output=True, text=True, timeout=120)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit 2, one line on stderr naming ``words``, no traceback; returns the line."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An existing SQLite store with its unencrypted keys, as the environment names them."""
    where = tmp_path_factory.mktemp("store")
    env = {"NOCERT_DATABASE_URL": f"sqlite:///{where}/nocert.db", "NOCERT_KEY_DIR": str(where / "keys")}
    build(Settings(database_url=env["NOCERT_DATABASE_URL"], key_dir=where / "keys")).close()
    yield env


@pytest.fixture
def root_pem(store: dict[str, str]) -> str:
    return str(Path(store["NOCERT_KEY_DIR"]) / "root.pem")


def test_port_out_of_range() -> None:
    refused(run("serve", "--port", "80000"), "--port", "80000")


def test_no_workers() -> None:
    refused(run("serve", "--workers", "0"), "--workers", "0")


def test_unknown_command_is_one_line() -> None:
    refused(run("frobnicate"), "frobnicate")


def test_checkpoint_every_zero(store: dict[str, str]) -> None:
    refused(run("views", "rebuild", env=store, NOCERT_CHECKPOINT_EVERY="0"), "NOCERT_CHECKPOINT_EVERY")


def test_negative_pool_size(store: dict[str, str]) -> None:
    refused(run("audit", "verify", env=store, NOCERT_DB_POOL_SIZE="-1"), "NOCERT_DB_POOL_SIZE")


def test_setting_that_is_no_number(store: dict[str, str]) -> None:
    refused(run("audit", "verify", env=store, NOCERT_CHECKPOINT_EVERY="often"), "NOCERT_CHECKPOINT_EVERY")


def test_unsupported_database_url(tmp_path: Path) -> None:
    refused(run("views", "rebuild", NOCERT_DATABASE_URL="mysql://x/y", NOCERT_KEY_DIR=str(tmp_path)), "NOCERT_DATABASE_URL")


def test_passphrase_on_unencrypted_keys(store: dict[str, str]) -> None:
    refused(run("audit", "verify", env=store, NOCERT_KEY_PASSPHRASE="secret"), "NOCERT_KEY_PASSPHRASE")


def test_audit_verify_on_a_mistyped_sqlite_path_creates_nothing(store: dict[str, str], tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "nocert.db"
    env = {**store, "NOCERT_DATABASE_URL": f"sqlite:///{missing}"}
    refused(run("audit", "verify", env=env), "NOCERT_DATABASE_URL", str(missing))
    assert not missing.parent.exists()


def test_audit_verify_on_a_file_that_is_no_store(store: dict[str, str], tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    other.write_bytes(b"")
    refused(run("audit", "verify", env={**store, "NOCERT_DATABASE_URL": f"sqlite:///{other}"}), "NOCERT_DATABASE_URL")
    assert other.read_bytes() == b""


def test_audit_verify_on_an_empty_key_dir_makes_no_keys(store: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "keys"
    empty.mkdir()
    refused(run("audit", "verify", env={**store, "NOCERT_KEY_DIR": str(empty)}), "NOCERT_KEY_DIR", "root.pem")
    assert list(empty.iterdir()) == []


def test_audit_export_on_an_empty_key_dir_makes_no_keys(store: dict[str, str], tmp_path: Path) -> None:
    env = {**store, "NOCERT_KEY_DIR": str(tmp_path / "nokeys")}
    refused(run("audit", "export", "123e4567-e89b-12d3-a456-426614174000", env=env), "NOCERT_KEY_DIR")
    assert not (tmp_path / "nokeys").exists()


def test_audit_verify_on_a_missing_postgres_schema_creates_nothing(store: dict[str, str], postgres_url: str) -> None:
    import psycopg

    from api.settings import parse_database_url

    url = postgres_url.rsplit("=", 1)[0] + "=nocert_no_such_schema"
    refused(run("audit", "verify", env={**store, "NOCERT_DATABASE_URL": url}), "NOCERT_DATABASE_URL", "no nocert event store")
    with psycopg.connect(parse_database_url(url).conninfo()) as connection:
        found = connection.execute(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'nocert_no_such_schema'"
        ).fetchone()
    assert found is None


def test_audit_verify_on_an_empty_postgres_schema(store: dict[str, str], postgres_url: str) -> None:
    refused(run("audit", "verify", env={**store, "NOCERT_DATABASE_URL": postgres_url}), "no nocert event store")


def test_audit_export_to_a_directory(store: dict[str, str], tmp_path: Path) -> None:
    refused(run("audit", "export", "123e4567-e89b-12d3-a456-426614174000", "-o", str(tmp_path), env=store), "--output")


def test_audit_export_into_a_missing_directory(store: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "no" / "bundle.json"
    refused(run("audit", "export", "123e4567-e89b-12d3-a456-426614174000", "-o", str(target), env=store), "--output")


def test_audit_export_of_no_check_id(store: dict[str, str]) -> None:
    refused(run("audit", "export", "not-a-uuid", env=store), "not-a-uuid")


@pytest.mark.parametrize("case", ["missing", "directory", "binary", "unreadable"])
def test_proof_verify_unusable_proof_file(case: str, tmp_path: Path, root_pem: str) -> None:
    path = {
        "missing": tmp_path / "nothing.jws",
        "directory": tmp_path,
        "binary": tmp_path / "random.bin",
        "unreadable": tmp_path / "random.bin" / "below-a-file",
    }[case]
    (tmp_path / "random.bin").write_bytes(bytes(range(256)))
    refused(run("proof", "verify", str(path), "--root", root_pem), "proof", str(path))


@pytest.mark.parametrize("case", ["missing", "not-pem", "binary"])
def test_proof_verify_unusable_root(case: str, tmp_path: Path) -> None:
    proof = tmp_path / "proof.jws"
    proof.write_text("a.b.c")
    root = {"missing": tmp_path / "root.pem", "not-pem": proof, "binary": tmp_path / "bin"}[case]
    (tmp_path / "bin").write_bytes(b"\x00\xff" * 10)
    refused(run("proof", "verify", str(proof), "--root", str(root)), "--root", str(root))


def test_proof_verify_exits_1_only_for_an_invalid_proof(tmp_path: Path, root_pem: str) -> None:
    proof = tmp_path / "proof.jws"
    proof.write_text("eyJhbGciOiJFZERTQSJ9.e30.AAAA\n")
    result = run("proof", "verify", str(proof), "--root", root_pem)
    assert result.returncode == 1 and result.stdout.startswith("INVALID"), result
    assert "Traceback" not in result.stderr


def test_verify_bundle_binary(tmp_path: Path, root_pem: str) -> None:
    (tmp_path / "bundle.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    refused(run("audit", "verify-bundle", str(tmp_path / "bundle.json"), "--root", root_pem), "bundle")
