"""Fixtures of the webhook tests: a province whose dispatcher may send to 127.0.0.1 with short retry
delays, on both stores, and scripted receivers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bootstrap import build
from tests.api.conftest import Province, settings_for
from tests.delivery.receiver import Receiver

WEBHOOK_SETTINGS = {"webhook_allow": "http://127.0.0.1", "webhook_retry": "0.05,0.1,0.1,0.1", "webhook_timeout": 0.5}


@contextlib.contextmanager
def webhook_province(url: str, key_dir: Path, **overrides: Any) -> Iterator[Province]:
    services = build(settings_for(url, key_dir, **{**WEBHOOK_SETTINGS, **overrides}))
    try:
        app = create_app(services)
        with TestClient(app) as client:
            yield Province.standard(client, services, app)
    finally:
        services.close()


@pytest.fixture
def province(durable_database_url: str, tmp_path: Path) -> Iterator[Province]:
    with webhook_province(durable_database_url, tmp_path / "keys") as built:
        yield built


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        made.append(Receiver(*args, **kwargs))
        return made[-1]

    yield make
    for each in made:
        each.close()


def subscribe(province: Province, who: str, url: str, types: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": url} if types is None else {"url": url, "types": types}
    return province.as_(who).post("/v1/subscriptions", json=body, expect=201).json()


def story(province: Province) -> str:
    """A check through raise, accept, forward, reply, close: five events for the approver."""
    check = province.raise_check()
    province.act(check["id"], "accept", "gulou")
    province.act(check["id"], "forward", "gulou")
    province.act(check["id"], "reply", "city")
    province.act(check["id"], "close", "approver")
    return str(check["id"])


def feed_of(province: Province, who: str) -> list[dict[str, Any]]:
    return province.as_(who).get("/v1/feed", params={"limit": 1000}, expect=200).json()["items"]
