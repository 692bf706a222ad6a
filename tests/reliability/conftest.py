"""Reliability tests: crash, database outage, storage faults, hostile input, brute force, secrets.

Tests marked ``outage`` stop a PostgreSQL server for a few seconds: a throw-away cluster of their own
(`tests.reliability.cluster`), never the shared one. They still run after every other test of the session
(whatever was selected), so that their load does not slow the others.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "outage: stops a throw-away PostgreSQL cluster of its own for a few seconds (runs last)"
    )


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    outages = [item for item in items if item.get_closest_marker("outage") is not None]
    if outages:
        items[:] = [item for item in items if item.get_closest_marker("outage") is None] + outages
