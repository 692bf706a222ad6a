"""The FastAPI application: routers, the gateway and one place that maps errors to problem details."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match

from api import docs, workbench
from api.assets import STATIC_PATH, Assets
from api.bootstrap import Services, build
from api.gateway import Gateway, build_authenticator
from api.idempotency import render_recorded
from api.metrics import Metrics
from api.openapi import build_openapi
from api.problems import Problem, problem_response
from api.routers import (
    audit,
    categories,
    checks,
    coverage,
    departments,
    feed,
    health,
    log,
    officers,
    proofs,
    subjects,
    subscriptions,
    trust,
)
from domain.errors import DomainError
from store.database import STORE_ERRORS
from store.idempotency import BodyCipher, IdempotencyStore

LOG = logging.getLogger("nocert.api")


def _problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    def on_problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(error.code, error.detail, headers=error.headers, **error.extra)

    @app.exception_handler(DomainError)
    def on_domain_error(request: Request, error: DomainError) -> JSONResponse:
        return problem_response(error.code, error.detail)

    @app.exception_handler(RequestValidationError)
    def on_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(part) for part in item["loc"]], "msg": item["msg"], "type": item["type"]}
            for item in error.errors()
        ]
        return problem_response("validation_error", "the request does not match the schema", errors=errors)

    @app.exception_handler(HTTPException)
    def on_http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 405:
            # Starlette names the methods of the first route of the path only; a path has one route per method.
            routes: list[BaseRoute] = request.app.state.routes
            allowed = {method for route in routes if route.matches(request.scope)[0] != Match.NONE
                       for method in getattr(route, "methods", None) or ()}
            headers = {"Allow": ", ".join(sorted(allowed))} if allowed else dict(error.headers or {})
            return problem_response("method_not_allowed", "this method is not allowed here", headers=headers)
        if error.status_code == 404:
            return problem_response("not_found", "no such resource")
        if error.status_code == 400:
            return problem_response("malformed_json", str(error.detail))
        LOG.warning("unexpected HTTP error %s on %s", error.status_code, request.url.path)
        return problem_response("validation_error", str(error.detail))

    def on_store_error(request: Request, error: Exception) -> JSONResponse:
        LOG.error("store unavailable on %s %s: %s", request.method, request.url.path, error)
        return problem_response("unavailable", "the event store is unavailable; retry later", headers={"Retry-After": "1"})

    for error_class in STORE_ERRORS:
        app.add_exception_handler(error_class, on_store_error)

    @app.exception_handler(Exception)
    def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        LOG.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response("internal_error", "an internal error occurred; it has been logged")


def create_app(services: Services | None = None, *, start_views: bool = True) -> FastAPI:
    """The application; builds the services from the environment when none are given."""
    services = services or build()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if start_views:
            services.start()
        LOG.info("nocert serving on %s store", services.location.kind)
        yield
        metrics.flush()  # the worker's last requests, before it exits
        services.stop()

    app = FastAPI(
        title="nocert",
        version="1.0.0",
        description="No-certificate province: online checks (协查) answered with sealed, offline-verifiable proofs.",
        lifespan=lifespan,
        docs_url=None,  # served by api.docs from the vendored assets
        redoc_url=None,
    )
    app.state.services = services
    app.state.metrics = metrics
    _problem_handlers(app)
    modules = (
        departments, officers, categories, checks, proofs, trust, log, coverage, audit, health, feed, subscriptions,
        subjects,
    )
    # The router tries the routers in turn and each route's pattern in each: the checks' first, as they take
    # nearly all the traffic. No path matches routes of two modules (tests/api/test_openapi.py), so the order
    # decides nothing else; the documentation keeps the modules' order.
    for module in sorted(modules, key=lambda module: module is not checks):
        app.include_router(module.router)
    app.state.routes = [route for module in modules for route in module.router.routes]
    app.openapi = lambda: build_openapi(app, app.state.routes)  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
    app.include_router(docs.router(app.openapi_url or "/openapi.json", app.title))
    app.mount(STATIC_PATH, Assets(), name="static")
    workbench.mount(app, workbench.build(services.database, services.settings, services.keystore.secret("totp")))
    admin_key = services.settings.admin_key.get_secret_value() if services.settings.admin_key else None
    app.add_middleware(
        Gateway,
        authenticator=build_authenticator(services.platform, admin_key),
        idempotency=IdempotencyStore(
            services.database,
            BodyCipher(services.keystore.secret("idempotency")),
            expire_after=services.settings.idempotency_hours * 3600,
            stale_after=services.settings.idempotency_stale_seconds,
        ),
        replayer=partial(render_recorded, services),
        metrics=metrics,
        routes=app.state.routes,
    )
    return app
