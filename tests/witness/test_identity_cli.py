"""The witness's own key and name, and ``nocert witness serve|vkey`` driven through `add_witness_commands`."""

from __future__ import annotations

import argparse
import stat
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from signing.note import COSIGNATURE_V1, open_note, parse_vkey
from tests.witness.conftest import Log
from witness import identity
from witness.cli import EXIT_OK, EXIT_REFUSED, add_witness_commands


def test_the_key_is_created_once_owner_only_and_keeps_its_vkey(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = identity.load_or_create(state, "audit.example/w1")
    key_file = state / identity.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600 and stat.S_IMODE(state.stat().st_mode) == 0o700
    assert key_file.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, unencrypted
    again = identity.load_or_create(state)
    assert again.vkey == first.vkey == identity.load_or_create(state, "audit.example/w1").vkey
    assert parse_vkey(first.vkey).key_type == COSIGNATURE_V1 and first.key.name == "audit.example/w1"


def test_another_name_for_an_existing_key_is_refused(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path, "audit.example/w1")
    with pytest.raises(identity.IdentityError, match="audit.example/w1"):
        identity.load_or_create(tmp_path, "audit.example/w2")


@pytest.mark.parametrize("name", ["", "two words", "a+b", "tab\there"])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(identity.IdentityError):
        identity.load_or_create(tmp_path, name)
    assert not (tmp_path / identity.KEY_FILE).exists()


def test_a_key_file_that_is_not_an_ed25519_key_is_refused(tmp_path: Path) -> None:
    identity.load_or_create(tmp_path, "audit.example/w1")
    (tmp_path / identity.KEY_FILE).write_text("not a key")
    with pytest.raises(identity.IdentityError):
        identity.load_or_create(tmp_path)


def test_the_default_name_is_a_valid_key_name(tmp_path: Path) -> None:
    assert identity.load_or_create(tmp_path).key.name == identity.default_name()
    assert identity.default_name().endswith("/witness")


def parser() -> argparse.ArgumentParser:
    """A command line like ``nocert``'s, with the witness commands added as api/cli.py will add them."""
    parser = argparse.ArgumentParser(prog="nocert")
    add_witness_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    return args.run(args)


def test_witness_vkey_prints_the_witness_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("witness", "vkey", "--state", str(tmp_path), "--name", "audit.example/w1") == EXIT_OK
    printed = capsys.readouterr().out.strip()
    assert parse_vkey(printed) == identity.load_or_create(tmp_path).key
    assert run("witness", "vkey", "--state", str(tmp_path)) == EXIT_OK
    assert capsys.readouterr().out.strip() == printed
    assert run("witness", "vkey", "--state", str(tmp_path), "--name", "audit.example/other") == EXIT_REFUSED
    assert "audit.example/w1" in capsys.readouterr().err


def test_witness_serve_builds_a_witness_of_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **options: served.update(app=app, **options))
    log = Log(size=4)
    state = tmp_path / "state"
    assert run("witness", "serve", "--log-vkey", log.vkey, "--state", str(state), "--port", "9999") == EXIT_OK
    assert (served["host"], served["port"]) == ("127.0.0.1", 9999)
    witness_vkey = identity.load_or_create(state).vkey
    assert witness_vkey in capsys.readouterr().err
    with TestClient(served["app"]) as http:
        response = http.post("/add-checkpoint", content=log.request(0))
    assert response.status_code == 200
    assert len(open_note(log.note() + response.text, [parse_vkey(witness_vkey), parse_vkey(log.vkey)]).verified) == 2


@pytest.mark.parametrize("vkey", ["not a vkey", "cosigner"])
def test_witness_serve_refuses_a_bad_log_vkey(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vkey: str) -> None:
    monkeypatch.setattr("uvicorn.run", lambda app, **options: pytest.fail("must not serve"))
    if vkey == "cosigner":  # a witness's own kind of key (type 0x04) is no log key
        vkey = identity.load_or_create(tmp_path / "other").vkey
    assert run("witness", "serve", "--log-vkey", vkey, "--state", str(tmp_path / "state")) == EXIT_REFUSED


def test_witness_serve_requires_the_log_vkey(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["witness", "serve", "--state", str(tmp_path)])
