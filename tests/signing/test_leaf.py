"""`signing.leaf.leaf_bytes` (the leaf bytes of API.md §7) is byte for byte what ``rfc8785.dumps``
gives for the leaf's object, over many varied values: the shortcut may only ever be faster, never different.
Where rfc8785 refuses a value (a lone surrogate, NaN, an integer beyond 2**53 - 1), so does the shortcut."""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from signing.leaf import event_leaf, leaf_bytes

SAFE = 2**53 - 1


def reference(position: Any, stream_id: Any, version: Any, topic: Any, state_sha256: Any) -> bytes:
    return rfc8785.dumps(
        {"position": position, "stream_id": stream_id, "version": version, "type": topic, "state_sha256": state_sha256}
    )


def outcome(function: Any, *values: Any) -> bytes | str:
    try:
        return function(*values)
    except rfc8785.CanonicalizationError as error:
        return f"refused: {type(error).__name__}"


def assert_same(*values: Any) -> None:
    assert outcome(leaf_bytes, *values) == outcome(reference, *values), values


INTEGERS = [0, 1, -1, 7, 10**6, 2**31, 2**32 + 5, SAFE, -SAFE, SAFE + 1, -SAFE - 1, 2**64, -(2**70)]
FLOATS = [
    0.0, -0.0, 1.0, -1.0, 0.1, 1.5, -2.75, 1e-7, 1e-6, 1.23e-5, 1e20, 1e21, 1.5e22, 9007199254740993.0,
    5e-324, 1.7976931348623157e308, 123456789.125, float("nan"), float("inf"), float("-inf"),
]
STRINGS = [
    "", "a", "nocert:check:Raised", "nocert:department:Registered", str(uuid.uuid4()), "0" * 64,
    'quote " inside', "back\\slash", "tab\there", "new\nline", "\x00\x01\x1f", "\x7f del", "~ tilde",
    "福州市公安局鼓楼分局", "nocert:检查:Raised", "emoji 🙂 and é", "\u2028\u2029", "\ud800 lone", "\udfff",
    "mixed \"福\"\\\t", " leading space", "[]{}:,",
]
OTHERS = [None, True, False, [], {}, [1, "a"], {"k": 1}, uuid.UUID(int=5)]


def test_fixed_examples_match() -> None:
    digest = hashlib.sha256(b"state").hexdigest()
    stream = str(uuid.uuid4())
    assert leaf_bytes(1, stream, 1, "nocert:check:Raised", digest) == reference(1, stream, 1, "nocert:check:Raised", digest)
    assert leaf_bytes(1, stream, 1, "t", digest).startswith(b'{"position":1,"state_sha256":"')


@pytest.mark.parametrize("value", INTEGERS + FLOATS + STRINGS + OTHERS, ids=repr)
def test_each_value_in_each_member(value: Any) -> None:
    base = [12, str(uuid.uuid4()), 3, "nocert:check:Replied", hashlib.sha256(b"x").hexdigest()]
    for member in range(5):
        values = list(base)
        values[member] = value
        assert_same(*values)
        assert_same(*values)  # a second time: the topic's cached rendering


def test_many_random_leaves() -> None:
    rng = random.Random(8785)
    pool = INTEGERS + FLOATS + STRINGS + OTHERS
    for _ in range(20_000):
        values = [
            rng.choice(pool) if rng.random() < 0.3 else rng.randrange(1, 10**9),
            rng.choice(pool) if rng.random() < 0.3 else str(uuid.UUID(int=rng.getrandbits(128))),
            rng.choice(pool) if rng.random() < 0.3 else rng.randrange(1, 10**4),
            rng.choice(pool) if rng.random() < 0.5 else f"nocert:{rng.choice(['check', '部门'])}:{rng.choice(STRINGS)}",
            rng.choice(pool) if rng.random() < 0.3 else hashlib.sha256(rng.randbytes(8)).hexdigest(),
        ]
        assert_same(*values)


JSON_SCALARS = (
    st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.booleans()
    | st.none()
)


@settings(max_examples=3000, deadline=None)
@given(JSON_SCALARS, JSON_SCALARS, JSON_SCALARS, JSON_SCALARS, JSON_SCALARS)
def test_any_scalars(position: Any, stream_id: Any, version: Any, topic: Any, state_sha256: Any) -> None:
    assert_same(position, stream_id, version, topic, state_sha256)


@settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=1, max_value=2**40), st.uuids(), st.integers(min_value=1, max_value=10**6), st.text(), st.binary())
def test_leaf_bytes_of_stored_states(position: int, stream_id: uuid.UUID, version: int, topic: str, state: bytes) -> None:
    expected = outcome(reference, position, str(stream_id), version, topic, hashlib.sha256(state).hexdigest())
    assert outcome(event_leaf, position, str(stream_id), version, topic, state) == expected


def test_floats_render_as_rfc8785() -> None:
    rng = random.Random(53)
    for _ in range(5000):
        value = rng.choice([rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-30, 30), math.ldexp(rng.random(), rng.randint(-1000, 1000))])
        assert_same(1, "s", value, "t", "h")
