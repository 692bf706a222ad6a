"""`nocert demo` prints one workbench sign-in per demo department, and each signs in (both stores)."""

from __future__ import annotations

import re
from pathlib import Path

from api.demo import DEPARTMENTS
from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.sessions import Officer
from tests.reliability.support import run_cli, server_env
from tests.ui.conftest import open_database


def test_the_demo_prints_one_officer_sign_in_per_department(durable_database_url: str, tmp_path: Path) -> None:
    result = run_cli(server_env(durable_database_url, tmp_path / "keys"), "demo", "--checks", "3")
    assert result.returncode == 0, result.stderr
    section = result.stdout.split("Workbench sign-ins", 1)[1]
    lines = re.findall(r"^(\S+)\s+(demo\.officer)\s+(\S{16})$", section, re.M)
    assert [department for department, _, _ in lines] == [row[0] for row in DEPARTMENTS]
    database = open_database(durable_database_url)
    try:
        accounts = Accounts(database, Passwords())
        for department, login, password in lines:
            assert accounts.check(Officer(department, login), password)
    finally:
        database.close()
