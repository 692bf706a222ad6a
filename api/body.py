"""Reading a request body strictly: media type (415), JSON (400), then the model (422)."""

from __future__ import annotations

import json
import math
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from api.problems import Problem

Model = TypeVar("Model", bound=BaseModel)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    """A JSON number as a float; one beyond the double range (``1e309``) would become infinity, which
    no JSON document (a sealed proof's payload included) can carry."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def parse_json(raw: bytes, content_type: str | None) -> Any:
    """The JSON value of a body; an empty body is ``{}`` (commands whose fields are all optional)."""
    if not raw.strip():
        return {}
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise Problem("unsupported_media_type", "request bodies must be application/json")
    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_reject_constant, parse_float=_finite_float
        )
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # an escaped lone surrogate ("\\ud800") fails here
        return value
    except UnicodeEncodeError:
        raise Problem("malformed_json", "the body holds a string that is no Unicode text (a lone surrogate)") from None
    except UnicodeDecodeError:
        raise Problem("malformed_json", "the body is not valid UTF-8") from None
    except RecursionError:
        raise Problem("malformed_json", "the body nests too deeply") from None
    except ValueError as error:
        raise Problem("malformed_json", f"the body is not valid JSON: {error}") from None


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
