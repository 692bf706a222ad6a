"""Ledger checkpoints signed by the ledger key and checked against the root."""

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.timefmt import format_time
from signing.certificates import create_root, issue_ledger_certificate
from signing.checkpoints import InvalidCheckpoint, sign_checkpoint, verify_checkpoint
from signing.jws import parse_compact, seal, sign_compact
from signing.key import FileKey

from .conftest import EPOCH

ROOT_HASH = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
ISSUED_AT = format_time(datetime.now(UTC))


def ledger_signer(root):
    key = Ed25519PrivateKey.generate()
    return FileKey(key, issue_ledger_certificate(*root, key.public_key(), not_before=EPOCH))


@pytest.fixture(scope="module")
def ledger(root):
    return ledger_signer(root)


def test_round_trip(root, ledger):
    text = sign_checkpoint(ledger, 8, ROOT_HASH, ISSUED_AT)
    header = parse_compact(text).header
    assert header["typ"] == "nocert-checkpoint+jws" and header["kid"] == ledger.kid
    payload = verify_checkpoint(text, root[1])
    assert payload == {"tree_size": 8, "root_hash": ROOT_HASH, "issued_at": ISSUED_AT}


def test_a_department_seal_cannot_sign_checkpoints(root, dept_seal):
    with pytest.raises(InvalidCheckpoint, match="ledger"):
        verify_checkpoint(sign_checkpoint(dept_seal, 8, ROOT_HASH, ISSUED_AT), root[1])


def test_a_ledger_key_of_another_root_is_refused(root):
    with pytest.raises(InvalidCheckpoint, match="root"):
        verify_checkpoint(sign_checkpoint(ledger_signer(create_root()), 8, ROOT_HASH, ISSUED_AT), root[1])


def test_tampered_checkpoints_are_refused(root, ledger):
    good = sign_checkpoint(ledger, 8, ROOT_HASH, ISSUED_AT)
    other = sign_checkpoint(ledger, 9, ROOT_HASH, ISSUED_AT)
    header, _, signature = good.split(".")
    payload = {"tree_size": 8, "root_hash": ROOT_HASH, "issued_at": ISSUED_AT}
    cases = {
        "bad signature": f"{header}.{other.split('.')[1]}.{signature}",
        "kid": sign_compact({**parse_compact(good).header, "kid": "0" * 64}, payload, ledger),
        "typ": seal(ledger, "nocert-proof+jws", payload),
        "x5c": sign_compact({"typ": "nocert-checkpoint+jws", "kid": ledger.kid}, payload, ledger),
        "EdDSA": "eyJhbGciOiJub25lIn0.e30.",
        "root_hash": seal(ledger, "nocert-checkpoint+jws", payload | {"root_hash": ROOT_HASH.upper()}),
        "tree_size": seal(ledger, "nocert-checkpoint+jws", payload | {"tree_size": -1}),
        "issued_at": seal(ledger, "nocert-checkpoint+jws", payload | {"issued_at": "today"}),
        "validity": seal(ledger, "nocert-checkpoint+jws", payload | {"issued_at": "2001-01-01T00:00:00Z"}),
    }
    for expected, text in cases.items():
        with pytest.raises(InvalidCheckpoint, match=expected):
            verify_checkpoint(text, root[1])


def test_sign_refuses_malformed_fields(ledger):
    for arguments in ((True, ROOT_HASH, ISSUED_AT), (8, "abc", ISSUED_AT), (8, ROOT_HASH, "now")):
        with pytest.raises(ValueError):
            sign_checkpoint(ledger, *arguments)
