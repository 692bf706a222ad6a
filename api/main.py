"""The ASGI entry points: each builds its services from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.background import serve_requests_only
from api.bootstrap import build
from api.logs import configure_logging


def create() -> FastAPI:
    """An application that runs the background jobs in threads of its own too (``uvicorn api.main:create``)."""
    configure_logging()
    return create_app()


def create_worker() -> FastAPI:
    """A worker of ``nocert serve``: requests only; the node's background process runs the jobs and hears of
    the worker's commits and waits (api.background)."""
    configure_logging()
    services = build()
    serve_requests_only(services, services.settings.wake_socket)
    return create_app(services, start_views=False)
