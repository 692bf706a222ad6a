"""The workbench as the composition root builds it: its settings (``NOCERT_UI_*``) and their defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api import workbench
from api.settings import Settings
from store.database import Database


def test_the_defaults_are_30_minutes_idle_12_hours_and_5_failures_for_15_minutes(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("IDLE_MINUTES", "ABSOLUTE_HOURS", "LOCKOUT_FAILURES", "LOCKOUT_MINUTES"):
        monkeypatch.delenv(f"NOCERT_UI_{name}", raising=False)
    built = workbench.build(database, Settings())
    assert (built.sessions.idle, built.sessions.absolute) == (30 * 60, 12 * 3600)
    assert (built.lockout.limit, built.lockout.duration) == (5, 15 * 60)


def test_the_settings_come_from_the_environment(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOCERT_UI_IDLE_MINUTES", "10")
    monkeypatch.setenv("NOCERT_UI_ABSOLUTE_HOURS", "8")
    monkeypatch.setenv("NOCERT_UI_LOCKOUT_FAILURES", "3")
    monkeypatch.setenv("NOCERT_UI_LOCKOUT_MINUTES", "30")
    monkeypatch.setenv("NOCERT_UI_ADDRESS_FAILURES", "7")
    built = workbench.build(database, Settings())
    assert (built.sessions.idle, built.sessions.absolute) == (600, 8 * 3600)
    assert (built.lockout.limit, built.lockout.duration) == (3, 1800)
    assert (built.address_limiter.limit, built.address_limiter.window) == (7, 60)


@pytest.mark.parametrize(
    "bad", [{"ui_idle_minutes": 0}, {"ui_absolute_hours": -1}, {"ui_lockout_failures": 0}, {"ui_lockout_minutes": 0},
            {"ui_address_failures": 0}]
)
def test_settings_out_of_range_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)  # type: ignore[arg-type]
