"""The shortcuts of `signing.jws` parsing (remembered headers and certificates, canonical base64url from the
trailing bits, serialising again only when it can fail) accept and refuse exactly what the plain strict
parsing did: here against that plain parsing, written out again."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signing import jws
from signing.jws import MalformedJWS, certificate_of, parse_compact
from signing.strictjson import MAX_JSON_DEPTH

_BASE64URL = re.compile(r"[A-Za-z0-9_-]*", re.ASCII)


def plain_b64decode(part: str) -> bytes:
    if not _BASE64URL.fullmatch(part) or len(part) % 4 == 1:
        raise MalformedJWS("not unpadded base64url")
    data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != part:
        raise MalformedJWS("not canonical base64url")
    return data


def plain_json_object(data: bytes) -> dict[str, Any]:
    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        members = dict(pairs)
        if len(members) != len(pairs):
            raise ValueError("duplicate member name")
        return members

    def reject(name: str) -> None:
        raise ValueError(name)

    try:
        value = json.loads(data.decode("utf-8"), object_pairs_hook=unique, parse_constant=reject)
        json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except (UnicodeDecodeError, UnicodeEncodeError, ValueError, RecursionError):
        raise MalformedJWS("not JSON") from None
    if not isinstance(value, dict):
        raise MalformedJWS("not an object")
    if nesting(value) > MAX_JSON_DEPTH:  # the one nesting limit of everything the service accepts (#11.1)
        raise MalformedJWS("too deep")
    return value


def nesting(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((nesting(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((nesting(item) for item in value), default=0)
    return 0


def verdict(function: Any, *args: Any) -> Any:
    try:
        return ("ok", function(*args))
    except MalformedJWS:
        return ("refused",)


B64URL_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. ", max_size=12)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(B64URL_TEXT, st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode())))
def test_b64decode_refuses_what_re_encoding_refused(part: str) -> None:
    assert verdict(jws._b64decode, part) == verdict(plain_b64decode, part)


def test_b64decode_every_last_character() -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for prefix in ("", "A", "AB", "ABC", "ABCD", "ABCDE", "ABCDEF", "ABCDEFG"):
        for last in alphabet:
            part = prefix + last
            assert verdict(jws._b64decode, part) == verdict(plain_b64decode, part), part


JSON_TEXTS = [
    b'{"a":1}', b'{"a":1.5e3}', b'{"a":1e309}', b'{"a":-1e309}', b'{"a":1e308}', b'{"a":NaN}', b'{"a":Infinity}',
    b'{"a":"\\ud800"}', b'{"a":"\\udfff x"}', b'{"a":"\\ud83d\\ude00"}', b'{"a":"\\u0041"}', b'{"a":"\\\\ud800"}',
    b'{"a":"\xe7\xa6\x8f"}', b'{"a":"\xed\xa0\x80"}', b"[1]", b"1", b'"s"', b"null", b'{"a":1,"a":2}',
    b'{"a":{"b":[1,2,{"c":null}]}}', b"{" + b'"a":[' * 50 + b"]" * 50 + b"}", b"{" + b'"a":[' * 5000 + b"]" * 5000 + b"}",
    b'{"a":' + b"[" * 300 + b"]" * 300 + b"}",
    b'{"a":' + b"[" * 63 + b"]" * 63 + b"}", b'{"a":' + b"[" * 64 + b"]" * 64 + b"}", b'{"a":"' + b"x" * 5000 + b'"}', b"", b"{", b'{"a":1}x', b'{"a":0.1}',
    b'{"a":' + b"9" * 5000 + b"}", b'{"a":-0.0}', b'{"a":5e-324}', b'{"a":1E400}', b'{"a":"tab\tinside"}',
]


@pytest.mark.parametrize("data", JSON_TEXTS, ids=lambda d: repr(d[:40]))
def test_json_object_refuses_what_serialising_again_refused(data: bytes) -> None:
    mine = verdict(jws._json_object, data, "payload")
    plain = verdict(plain_json_object, data)
    assert mine[0] == plain[0]
    if mine[0] == "ok":
        assert mine[1] == plain[1]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=2000, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_json_object_on_generated_json(value: Any, ascii_only: bool) -> None:
    data = json.dumps({"v": value}, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    mine, plain = verdict(jws._json_object, data, "payload"), verdict(plain_json_object, data)
    assert mine[0] == plain[0]
    if mine[0] == "ok":
        assert mine[1] == plain[1]


def test_a_remembered_header_is_never_shared(dept_seal) -> None:
    token = jws.seal(dept_seal, "nocert-proof+jws", {"n": 1})
    first = parse_compact(token)
    first.header["kid"] = "changed"
    first.header["x5c"].append("more")
    second = parse_compact(token)
    assert second.header["kid"] == dept_seal.kid and len(second.header["x5c"]) == 1
    assert certificate_of(second.header) == dept_seal.certificate
    assert certificate_of(second.header) is certificate_of(parse_compact(token).header)


def test_an_invalid_header_is_refused_every_time() -> None:
    header = base64.urlsafe_b64encode(b'{"alg":"EdDSA","alg":"EdDSA"}').rstrip(b"=").decode()
    for _ in range(3):
        with pytest.raises(MalformedJWS):
            parse_compact(f"{header}.e30.AA")
