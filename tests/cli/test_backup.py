"""Issue #12.6: ``nocert backup`` then ``nocert restore`` into an empty store gives back the same events at
the same positions, the same signed checkpoints and the same keys, so ``nocert audit verify`` passes with the
same root; on both stores. Restore refuses a store or key directory that is not empty."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.audit.conftest import CHECKPOINT_EVERY, make_services, settle
from tests.audit.scenario import run_story
from tests.cli.test_errors import refused, run
from tests.conftest import postgres_schema_url


def _audit(env: dict[str, str]) -> dict:
    result = run("audit", "verify", "--json", env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_backup_restores_into_an_empty_store_and_audits_the_same(kind: str, tmp_path: Path, request) -> None:
    source_url = request.getfixturevalue(f"{kind}_url")
    services = make_services(source_url, tmp_path / "keys")
    try:
        run_story(services.platform)
        settle(services)
        with services.database.reading() as cursor:
            checkpoints = cursor.execute("SELECT tree_size, root_hash, jws FROM ledger_checkpoints ORDER BY tree_size").fetchall()
        events = services.log.max_position()
    finally:
        services.close()
    assert len(checkpoints) >= 2 and events >= 2 * CHECKPOINT_EVERY
    source = {"NOCERT_DATABASE_URL": source_url, "NOCERT_KEY_DIR": str(tmp_path / "keys")}
    before = _audit(source)

    archive = tmp_path / "backup.tar.gz"
    made = run("backup", str(archive), env=source)
    assert made.returncode == 0, made.stderr
    assert archive.stat().st_mode & 0o777 == 0o600
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "events.jsonl" in names and "tables/ledger_checkpoints.jsonl" in names
    assert "keys/root.key" in names and not any(name.startswith("tables/view_") for name in names)

    with postgres_schema_url() if kind == "postgres" else _nothing() as fresh:
        target_url = fresh if kind == "postgres" else f"sqlite:///{tmp_path}/restored/nocert.db"
        target = {"NOCERT_DATABASE_URL": target_url, "NOCERT_KEY_DIR": str(tmp_path / "restored-keys")}
        restored = run("restore", str(archive), env=target)
        assert restored.returncode == 0, restored.stderr
        assert (tmp_path / "restored-keys" / "root.key").read_bytes() == (tmp_path / "keys" / "root.key").read_bytes()
        assert (tmp_path / "restored-keys" / "root.key").stat().st_mode & 0o777 == 0o600
        after = _audit(target)
        assert after["ok"] and after["events"] == before["events"] == events
        assert after["checkpoints"] == before["checkpoints"] == len(checkpoints)

        services = make_services(target_url, tmp_path / "restored-keys")
        try:
            with services.database.reading() as cursor:
                again = cursor.execute("SELECT tree_size, root_hash, jws FROM ledger_checkpoints ORDER BY tree_size").fetchall()
            assert again == checkpoints
            assert services.log.max_position() == events
            # The views are rebuilt from the restored log; the next position follows the restored ones.
            settle(services)
            assert services.views.lag() == 0
        finally:
            services.close()

        # A second restore into the now full store and key directory is refused, changing nothing.
        refused(run("restore", str(archive), env=target), "not empty")
        refused(run("restore", str(archive), env={**target, "NOCERT_KEY_DIR": str(tmp_path / "k3")}), "already holds events")
        assert not (tmp_path / "k3" / "root.key").exists()


class _nothing:
    def __enter__(self) -> str:
        return ""

    def __exit__(self, *exc: object) -> None:
        return None


def test_restore_refuses_a_damaged_archive(tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    with tarfile.open(archive, "w") as tar:
        (tmp_path / "manifest.json").write_text(json.dumps({"format": "nocert-backup/1", "sha256": {"events.jsonl": "0" * 64}}))
        (tmp_path / "events.jsonl").write_text("[]\n")
        tar.add(tmp_path / "manifest.json", "manifest.json")
        tar.add(tmp_path / "events.jsonl", "events.jsonl")
    env = {"NOCERT_DATABASE_URL": f"sqlite:///{tmp_path}/r.db", "NOCERT_KEY_DIR": str(tmp_path / "keys")}
    refused(run("restore", str(archive), env=env), "damaged")
    refused(run("restore", str(tmp_path / "manifest.json"), env=env), "no nocert backup")
    refused(run("restore", str(tmp_path / "missing.tar"), env=env), "does not exist")
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "keys" / "root.key").exists()


def test_backup_of_a_mistyped_store_is_refused(tmp_path: Path) -> None:
    env = {"NOCERT_DATABASE_URL": f"sqlite:///{tmp_path}/typo.db", "NOCERT_KEY_DIR": str(tmp_path / "keys")}
    refused(run("backup", str(tmp_path / "b.tar"), env=env), "NOCERT_")
    assert not (tmp_path / "b.tar").exists()


def test_subject_keys_are_a_member_of_their_own(tmp_path: Path, sqlite_url: str) -> None:
    """The subject key store (`privacy.keys`: ``NOCERT_KEY_DIR/subjects``, nested) goes under ``subject-keys/``,
    apart from the platform's keys; ``--without-subject-keys`` leaves it out; restore puts it back."""
    from api.backup import backup, check_key_dirs_empty, key_stores, read_archive, restore_store, write_keys
    from api.bootstrap import build
    from api.settings import Settings

    settings = Settings(database_url=sqlite_url, key_dir=tmp_path / "keys")
    services = build(settings)
    try:
        run_story(services.platform)  # raises checks: each applicant gets a data key in the subject key store
        backup(services, tmp_path / "all.tar")
        backup(services, tmp_path / "apart.tar", subject_keys=False)
    finally:
        services.close()
    _, everything = read_archive(tmp_path / "all.tar")
    _, apart = read_archive(tmp_path / "apart.tar")
    subject_members = {name: data for name, data in everything.items() if name.startswith("subject-keys/")}
    assert subject_members and "keys/root.key" in everything
    assert not any(name.startswith("keys/subjects/") for name in everything)  # not twice
    assert not any(name.startswith("subject-keys/") for name in apart) and "keys/root.key" in apart

    target = Settings(database_url=f"sqlite:///{tmp_path}/restored.db", key_dir=tmp_path / "k2")
    stores = key_stores(target)
    assert set(stores) == {"keys", "subject-keys"}
    check_key_dirs_empty(stores)
    write_keys(stores, everything)
    for name, data in subject_members.items():
        assert (tmp_path / "k2" / "subjects" / name.removeprefix("subject-keys/")).read_bytes() == data
    restored = build(target)
    try:
        assert restore_store(restored, everything).events > 0
    finally:
        restored.close()
