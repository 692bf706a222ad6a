"""Reading a request body strictly: media type (415), JSON (400), then the model (422)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.offload import threaded
from api.problems import Problem, problem_responses
from signing import strictjson

Model = TypeVar("Model", bound=BaseModel)
Handler = TypeVar("Handler", bound=Callable[..., Any])


def parse_json(raw: bytes, content_type: str | None) -> Any:
    """The JSON value of a body; an empty body is ``{}`` (commands whose fields are all optional)."""
    if not raw.strip():
        return {}
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem("unsupported_media_type", "request bodies must be application/json")
    try:
        return strictjson.loads(raw)
    except strictjson.TooDeep as error:  # valid JSON, but input no part of the service accepts
        raise Problem("validation_error", f"the body is not accepted: {error}") from None
    except strictjson.InvalidJSON as error:
        raise Problem("malformed_json", f"the body is not accepted: {error}") from None


def read_body(request: Request, model: type[Model]) -> Model:
    """Parses the body the gateway buffered into ``model``, after authorization has been decided."""
    raw: bytes = request.scope.get("nocert.body", b"")
    value = parse_json(raw, request.headers.get("content-type"))
    if request.scope.get("nocert.invalid_idempotency_key"):
        raise Problem("validation_error", "Idempotency-Key must be 1-255 printable ASCII characters")
    if not isinstance(value, dict):
        raise Problem("validation_error", "the body must be a JSON object")
    try:
        return model.model_validate(value)
    except ValidationError as error:
        raise Problem("validation_error", "the body does not match the schema", errors=_errors(error)) from None


def _errors(error: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in error.errors(include_url=False, include_input=False)
    ]


def body_openapi(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a body that the handler reads itself (see ``read_body``)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


def body_route(
    route: Callable[..., Callable[[Callable[..., Any]], Any]], path: str, model: type[BaseModel], *codes: str, **options: Any
) -> Callable[[Handler], Handler]:
    """The route of a handler that reads ``model`` itself (``read_body``, after its own access checks): ``route``
    is ``router.post`` or ``router.patch``, ``codes`` the problems it can answer, ``options`` go to ``route``.
    The handler runs in a worker thread (`api.offload.threaded`); the decorated name stays the plain handler."""
    register = route(path, openapi_extra=body_openapi(model), responses=problem_responses(*codes), **options)

    def decorate(handler: Handler) -> Handler:
        register(threaded(handler))
        return handler

    return decorate
