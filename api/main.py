"""The ASGI entry point for ``nocert serve`` workers: each worker builds its services from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from api.app import create_app
from api.logs import configure_logging


def create() -> FastAPI:
    configure_logging()
    return create_app()
