"""One enrolled officer per demo department (`nocert demo`), so that every role's day can be tried in the
workbench at once: added through the Platform's officer command with its account in the same transaction,
then enrolled with a random password, which the demo prints once."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from api.workbench.accounts import Accounts
from api.workbench.credentials import Passwords
from api.workbench.sessions import Officer
from domain.platform import Platform
from store.database import Database

DEMO_LOGIN = "demo.officer"


@dataclass(frozen=True)
class DemoSignIn:
    department: str
    login: str
    password: str


def enrol_demo_officers(platform: Platform, database: Database, department_ids: list[str]) -> list[DemoSignIn]:
    accounts = Accounts(database, Passwords())
    signed: list[DemoSignIn] = []
    for department_id in department_ids:
        officer = Officer(department_id, DEMO_LOGIN)
        code, account = accounts.creation(officer)
        platform.add_officer(department_id, DEMO_LOGIN, f"{platform.department(department_id).name}演示人员", [account])
        password = secrets.token_urlsafe(12)  # 16 characters of 96 random bits
        accounts.enrol(officer, code, password)
        signed.append(DemoSignIn(department_id, DEMO_LOGIN, password))
    return signed
