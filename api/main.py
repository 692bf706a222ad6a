"""The ASGI entry point for ``nocert serve`` workers: each worker builds its services from the environment."""

from __future__ import annotations

import os

from fastapi import FastAPI

from api.app import create_app
from api.background import REQUESTS_ONLY_VARIABLE, WAKE_VARIABLE, serve_requests_only
from api.bootstrap import build
from api.logs import configure_logging


def create() -> FastAPI:
    """A worker of ``nocert serve`` runs requests only (its background process runs the jobs, api.background);
    started otherwise (``uvicorn api.main:create``), it runs them in its own threads as well."""
    configure_logging()
    if os.environ.get(REQUESTS_ONLY_VARIABLE) != "1":
        return create_app()
    services = build()
    serve_requests_only(services, os.environ.get(WAKE_VARIABLE))
    return create_app(services, start_views=False)
