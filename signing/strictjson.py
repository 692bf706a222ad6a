"""The one strict JSON reader for everything nocert accepts: request bodies (`api.body`), JWS headers and
payloads (`signing.jws`) and evidence bundles (`audit.bundle`).

Refused: invalid UTF-8 (a byte-order mark included), a member name twice in one object, ``NaN`` and
``Infinity``, a number beyond the double range (``1e309`` would become infinity, which no JSON document, a
sealed proof's payload included, can carry), a lone surrogate escape (``"\\ud800"``: no Unicode text), and
nesting deeper than `MAX_JSON_DEPTH` (`TooDeep`).

`MAX_JSON_DEPTH` is the one nesting limit of everything nocert accepts: a request body (and so the claims and
statements inside it), a JWS header or payload. A document that embeds such a body gives its own levels
on top (an evidence bundle: `BUNDLE_DEPTH`). Every reader, JSON encoders and pydantic included, follows
that depth with room to spare, so nothing the service stored from accepted input can make a read fail.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_DEPTH = 64
"""Arrays and objects nested at most this deep (``{"a": [1]}`` nests 2 deep; a scalar 0)."""

BUNDLE_DEPTH = MAX_JSON_DEPTH + 8
"""An evidence bundle: a check document (claims at most `MAX_JSON_DEPTH` deep) under the bundle's levels."""


class InvalidJSON(ValueError):
    """The bytes are not JSON this reader accepts; the message says why."""


class TooDeep(InvalidJSON):
    """The bytes are JSON nested deeper than the limit: valid JSON, but input the service does not accept."""


def depth(value: Any) -> int:
    """How deep arrays and objects nest in `value` (a scalar: 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


CUT = "…(nested too deeply to show)"
"""What `bounded` shows instead of an array or object nested deeper than the limit."""


def bounded(value: Any, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`value` with every array or object below `max_depth` levels replaced by `CUT`: how a reader shows
    data stored before the limit existed (or beyond it) without failing on its depth."""
    if not isinstance(value, (dict, list)):
        return value
    if max_depth <= 0:
        return CUT
    if isinstance(value, dict):
        return {key: bounded(item, max_depth - 1) for key, item in value.items()}
    return [bounded(item, max_depth - 1) for item in value]


def loads(data: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The JSON value of `data`, read strictly (see the module's docstring); raises InvalidJSON, and
    TooDeep for JSON nested deeper than `max_depth`."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_unique_members, parse_constant=_reject_constant, parse_float=_finite_float
        )
        # A lone surrogate can only come from a \u escape (strict UTF-8 decoding refuses encoded ones), and
        # writing the value again fails on it.
        if "\\u" in text:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("it is not valid UTF-8") from None
    except UnicodeEncodeError:
        raise InvalidJSON("it holds a string that is no Unicode text (a lone surrogate)") from None
    except RecursionError:
        raise TooDeep(f"it nests deeper than {max_depth} levels") from None
    except ValueError as error:
        raise InvalidJSON(f"it is not valid JSON: {error}") from None
    if text.count("[") + text.count("{") > max_depth and depth(value) > max_depth:
        raise TooDeep(f"it nests deeper than {max_depth} levels")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members = dict(pairs)
    if len(members) != len(pairs):
        raise ValueError("duplicate member name")
    return members


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
