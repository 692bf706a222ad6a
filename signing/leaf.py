"""Ledger leaves (API.md §7): the bytes a leaf hashes, from an event's place in the log and its stored
state, used alike by the ledger view, the audit, the bundle export and the offline bundle verifier."""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

import rfc8785


def leaf_bytes(position: Any, stream_id: Any, version: Any, topic: Any, state_sha256: Any) -> bytes:
    """``rfc8785.dumps({"position", "stream_id", "version", "type", "state_sha256"})``, byte for byte.

    The members' names are fixed, so their RFC 8785 order is too (UTF-16 code units: position, state_sha256,
    stream_id, type, version) and only the values vary: each is rendered as ``rfc8785.dumps`` renders it
    (cached for a log's few topics), with a shortcut for what a log holds nearly always: an integer in
    JSON's safe range (its decimal digits) and a string of printable ASCII without ``"`` or ``\\`` (itself
    in quotes). Anything else (a float, a big integer, a non-ASCII or escaped string, a wrong type) goes
    through ``rfc8785.dumps`` itself, errors included. tests/signing/test_leaf.py compares the two
    over many varied values."""
    return (
        f'{{"position":{_value(position)},"state_sha256":{_value(state_sha256)},"stream_id":{_value(stream_id)},'
        f'"type":{_topic(topic)},"version":{_value(version)}}}'
    ).encode()


_PLAIN = re.compile(r'[ !#-\[\]-~]*', re.ASCII)  # printable ASCII but " and \
_SAFE_INT = 2**53 - 1


def _value(value: Any) -> str:
    if type(value) is int and -_SAFE_INT <= value <= _SAFE_INT:
        return str(value)
    if type(value) is str and _PLAIN.fullmatch(value):
        return f'"{value}"'
    return rfc8785.dumps(value).decode("utf-8")


def _topic(topic: Any) -> str:
    """`_value` of a topic, remembered for strings: a log has a few dozen topics."""
    return _topic_text(topic) if type(topic) is str else _value(topic)


@functools.lru_cache(maxsize=1024)
def _topic_text(topic: str) -> str:
    return rfc8785.dumps(topic).decode("utf-8")


def event_leaf(position: int, stream_id: str, version: int, topic: str, state: bytes) -> bytes:
    """`leaf_bytes` of the event at `position` whose stored state bytes (encrypted or not) are `state`."""
    return leaf_bytes(position, stream_id, version, topic, hashlib.sha256(state).hexdigest())
