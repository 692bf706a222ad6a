"""The floor: the least a command endpoint can cost on this machine and store.

One FastAPI endpoint, ``POST /floor``, that parses a JSON body, creates a one-event aggregate holding it
and saves it through an eventsourcing ``Application`` configured exactly as nocert's (``PERSISTENCE_MODULE``
and the store settings of ``api.settings.store_env`` for ``NOCERT_DATABASE_URL``), served by uvicorn with
the settings of ``nocert serve`` (same worker count, uvloop, httptools, no access log). The handler is a
plain ``def`` like nocert's, so it runs in the same thread pool. Nothing else: no authentication, no views.

    .venv/bin/python -m bench.floor --port 8100        # serve it (NOCERT_DATABASE_URL chooses the store)
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from fastapi import Body, FastAPI
from fastapi.responses import JSONResponse


class Record(Aggregate):
    """A tiny aggregate: one creation event carrying the request body."""

    class Created(Aggregate.Created):
        payload: dict[str, Any]

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload


class Floor(Application[Any]):
    name = "floor"


def floor_env() -> dict[str, str]:
    from api.settings import Settings, parse_database_url, store_env

    settings = Settings()
    cipher = settings.cipher_key.get_secret_value() if settings.cipher_key else None
    env = store_env(parse_database_url(settings.database_url), cipher, pool_size=settings.db_pool_size)
    # eventsourcing's own recorder: one transaction, and one table lock, per save (nocert's groups them).
    env.pop("APPLICATION_RECORDER_TOPIC", None)
    return env


def create() -> FastAPI:
    application = Floor(floor_env())
    app = FastAPI(title="nocert floor")

    @app.post("/floor", status_code=201)
    def record(payload: dict[str, Any] = Body(...)) -> JSONResponse:  # noqa: B008
        aggregate = Record(payload)
        recordings = application.save(aggregate)
        position = recordings[-1].notification.id
        return JSONResponse(
            {"id": str(aggregate.id), "position": position},
            status_code=201,
            headers={"X-Event-Position": str(position)},
        )

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    import uvicorn

    from bench.servers import SERVER_SETTINGS

    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--workers", type=int, default=SERVER_SETTINGS["workers"])
    args = parser.parse_args()
    Floor(floor_env()).close()  # creates the tables once, before the workers start (as `nocert serve` does)
    os.environ.setdefault("PYTHONPATH", os.getcwd())
    uvicorn.run(
        "bench.floor:create",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop=SERVER_SETTINGS["loop"],
        http=SERVER_SETTINGS["http"],
        access_log=SERVER_SETTINGS["access_log"],
        log_config=SERVER_SETTINGS["log_config"],
    )


if __name__ == "__main__":
    main()
