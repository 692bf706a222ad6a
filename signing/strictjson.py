"""The one strict JSON reader for everything nocert accepts: request bodies (`api.body`), JWS headers and
payloads (`signing.jws`) and evidence bundles (`audit.bundle`).

Refused: invalid UTF-8 (a byte-order mark included), a member name twice in one object, ``NaN`` and
``Infinity``, a number beyond the double range (``1e309`` would become infinity, which no JSON document, a
sealed proof's payload included, can carry), a lone surrogate escape (``"\\ud800"``: no Unicode text), and
nesting deeper than the parser can follow.
"""

from __future__ import annotations

import json
import math
from typing import Any

_RECHECK_BRACKETS = 200  # fewer "[" and "{" in all than this: JSON nests too little to hit the recursion limit


class InvalidJSON(ValueError):
    """The bytes are not JSON this reader accepts; the message says why."""


def loads(data: bytes) -> Any:
    """The JSON value of `data`, read strictly (see the module's docstring); raises InvalidJSON."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_unique_members, parse_constant=_reject_constant, parse_float=_finite_float
        )
        # A lone surrogate can only come from a \u escape (strict UTF-8 decoding refuses encoded ones), and
        # writing the value again fails on it; without one, writing it again can only fail by nesting.
        if "\\u" in text or text.count("[") + text.count("{") >= _RECHECK_BRACKETS:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJSON("it is not valid UTF-8") from None
    except UnicodeEncodeError:
        raise InvalidJSON("it holds a string that is no Unicode text (a lone surrogate)") from None
    except RecursionError:
        raise InvalidJSON("it nests too deeply") from None
    except ValueError as error:
        raise InvalidJSON(f"it is not valid JSON: {error}") from None
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
