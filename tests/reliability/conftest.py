"""Reliability tests: crash, database outage, storage faults, hostile input, brute force, secrets.

Tests marked ``outage`` stop the shared PostgreSQL server for a few seconds; they run after every other
test of the session (whatever was selected), so that concurrent PostgreSQL tests of this run are done.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "outage: stops the shared PostgreSQL server for a few seconds (runs last; needs root)"
    )


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    outages = [item for item in items if item.get_closest_marker("outage") is not None]
    if outages:
        items[:] = [item for item in items if item.get_closest_marker("outage") is None] + outages
