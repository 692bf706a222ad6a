"""Compact JWS: serialisation, strict parsing, tamper evidence (interoperability: test_proofs)."""

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signing.certificates import to_der
from signing.jws import MalformedJWS, certificate_of, parse_compact, seal, sign_compact, verify_signature

PAYLOAD = {"type": "nocert.proof.v1", "subject": {"name": "张三"}, "n": 1}
HEADER = {"alg": "EdDSA"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(header, payload, signature=b"\x00" * 64) -> str:
    def part(value):
        return b64url(value if isinstance(value, bytes) else json.dumps(value).encode())

    return f"{part(header)}.{part(payload)}.{b64url(signature)}"


@pytest.fixture(scope="module")
def token(dept_seal):
    return seal(dept_seal, "nocert-proof+jws", PAYLOAD)


def test_seal_header_names_the_certificate_in_standard_base64(dept_seal, token):
    parsed = parse_compact(token)
    assert list(parsed.header) == ["alg", "typ", "kid", "x5c"]
    assert parsed.header["alg"] == "EdDSA"
    assert parsed.header["typ"] == "nocert-proof+jws"
    assert parsed.header["kid"] == dept_seal.kid
    assert parsed.header["x5c"] == [base64.b64encode(to_der(dept_seal.certificate)).decode()]
    assert certificate_of(parsed.header) == dept_seal.certificate
    assert parsed.payload == PAYLOAD
    assert verify_signature(parsed, dept_seal.certificate.public_key())


def test_serialisation_is_compact_utf8_json(dept_seal):
    token = sign_compact({"typ": "t"}, {"name": "张三"}, dept_seal)
    header, payload, _ = token.split(".")
    assert base64.urlsafe_b64decode(header + "==") == b'{"alg":"EdDSA","typ":"t"}'
    assert base64.urlsafe_b64decode(payload + "==") == '{"name":"张三"}'.encode()
    assert "=" not in token


def test_sign_refuses_other_algorithms(dept_seal):
    with pytest.raises(ValueError):
        sign_compact({"alg": "HS256"}, {}, dept_seal)


def test_signature_by_another_key_does_not_verify(make_seal, token):
    assert not verify_signature(parse_compact(token), make_seal().certificate.public_key())


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(compact({"alg": "none"}, PAYLOAD), id="alg none"),
        pytest.param(compact({"alg": "HS256"}, PAYLOAD), id="alg HS256"),
        pytest.param(compact({"alg": "eddsa"}, PAYLOAD), id="alg lower-case"),
        pytest.param(compact({"typ": "JWT"}, PAYLOAD), id="alg missing"),
        pytest.param(compact({"alg": ["EdDSA"]}, PAYLOAD), id="alg not a string"),
        pytest.param(compact(["EdDSA"], PAYLOAD), id="header array"),
        pytest.param(compact("EdDSA", PAYLOAD), id="header string"),
        pytest.param(compact(HEADER, [1, 2]), id="payload array"),
        pytest.param(compact(HEADER, 42), id="payload number"),
        pytest.param(compact(HEADER, None), id="payload null"),
        pytest.param(compact(HEADER, b"not json"), id="payload not json"),
        pytest.param(compact(HEADER, b"\xff\xfe{}"), id="payload not utf-8"),
        pytest.param(compact(HEADER, b'{"a":NaN}'), id="payload NaN"),
        pytest.param(compact(b'{"alg":"none","alg":"EdDSA"}', PAYLOAD), id="duplicate member"),
        pytest.param(compact({"alg": "EdDSA", "crit": ["exp"]}, PAYLOAD), id="crit"),
        pytest.param(compact(HEADER, PAYLOAD).rsplit(".", 1)[0], id="2 parts"),
        pytest.param(compact(HEADER, PAYLOAD) + ".e30", id="4 parts"),
        pytest.param(compact(HEADER, PAYLOAD) + "==", id="padding"),
        pytest.param(compact(HEADER, PAYLOAD).replace(".", ".+", 1), id="standard alphabet"),
        pytest.param(compact(HEADER, PAYLOAD) + " ", id="whitespace"),
        pytest.param("..", id="empty parts"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_rejects(text):
    with pytest.raises(MalformedJWS):
        parse_compact(text)


def test_parse_rejects_non_canonical_base64url(token):
    header, payload, signature = token.split(".")
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".index(signature[-1])
    sibling = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last ^ 1]
    with pytest.raises(MalformedJWS):
        parse_compact(f"{header}.{payload}.{signature[:-1]}{sibling}")


def test_parse_rejects_non_text():
    with pytest.raises(MalformedJWS):
        parse_compact(b"a.b.c")


@pytest.mark.parametrize(
    "x5c", [None, [], "MIIB", ["not base64!"], ["TUlJQg=="], [42], ["bm90IGEgY2VydA"]]
)
def test_certificate_of_refuses_bad_x5c(x5c):
    assert certificate_of({"alg": "EdDSA", "x5c": x5c}) is None


@given(data=st.data())
def test_flipping_any_byte_never_verifies(dept_seal, token, data):
    raw = bytearray(token.encode("ascii"))
    position = data.draw(st.sampled_from([i for i, byte in enumerate(raw) if byte != ord(".")]))
    raw[position] ^= data.draw(st.integers(1, 255))
    try:
        parsed = parse_compact(raw.decode("latin-1"))
    except MalformedJWS:
        return
    assert not verify_signature(parsed, dept_seal.certificate.public_key())
