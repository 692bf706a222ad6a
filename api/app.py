"""The FastAPI application: routers, the gateway and one place that maps errors to problem details."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from api import docs, workbench
from api.assets import STATIC_PATH, Assets
from api.bootstrap import Services, build
from api.gateway import PUBLIC_PATHS, Gateway, build_authenticator
from api.idempotency import render_recorded
from api.metrics import Metrics
from api.problems import PROBLEM_MEDIA_TYPE, Problem, problem_response, problem_responses
from api.routers import audit, categories, checks, coverage, departments, health, log, proofs, trust
from api.schemas import BODY_MODELS
from api.schemas import Problem as ProblemModel
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
            headers = dict(error.headers) if error.headers else None
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


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated description, plus the body models handlers read themselves and Problem."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    models: tuple[type[BaseModel], ...] = (*BODY_MODELS, ProblemModel)
    for model in models:
        definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(definition.pop("$defs", {}))
        components[model.__name__] = definition
    schema["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    schema["security"] = [{"bearer": []}]
    _document_problems(schema)
    app.openapi_schema = schema
    return schema


# Problems any authenticated call can answer, and those of any call with a body (API.md §1).
GENERIC_PROBLEMS = ("unauthenticated", "too_many_requests", "validation_error", "unavailable")
BODY_PROBLEMS = (
    "malformed_json", "payload_too_large", "unsupported_media_type", "idempotency_in_progress", "idempotency_mismatch",
)


def _document_problems(schema: dict[str, Any]) -> None:
    """Every error answer is a problem (FastAPI documents its own 422 otherwise); public operations need
    no key; every other operation documents the problems the gateway and body parsing can answer."""
    problem_content = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation.setdefault("responses", {})
            for status, answer in responses.items():
                if status.startswith(("4", "5")):
                    answer["content"] = problem_content
            if not path.startswith("/v1") or path in PUBLIC_PATHS:
                operation["security"] = []
                continue
            codes = GENERIC_PROBLEMS + (BODY_PROBLEMS if method in ("post", "patch") else ())
            for status, answer in problem_responses(*codes).items():
                responses.setdefault(str(status), answer)
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)


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
        services.witnessing.stop()
        services.views.stop()

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
    modules = (departments, categories, checks, proofs, trust, log, coverage, audit, health)
    for module in modules:
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]  # FastAPI's documented way to extend its schema
    app.include_router(docs.router(app.openapi_url or "/openapi.json", app.title))
    app.mount(STATIC_PATH, Assets(), name="static")
    workbench.mount(app, workbench.build(services.database, services.settings))
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
        routes=[route for module in modules for route in module.router.routes],
    )
    return app
