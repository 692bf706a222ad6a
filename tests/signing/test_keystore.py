"""Key files: permissions, encryption, concurrent creation, and signers that never show their keys."""

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from signing.certificates import department_id_of, is_issued_by, is_ledger_certificate
from signing.keystore import PASSPHRASE_VARIABLE, KeyPassphraseError, KeyStore, SealNotFound

PASSPHRASE = b"correct horse battery staple"
REPO = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_root_is_created_once_and_reloaded(tmp_path):
    signer, cert = KeyStore(tmp_path / "keys").root()
    again, again_cert = KeyStore(tmp_path / "keys").root()
    assert again.kid == signer.kid and again_cert == cert
    assert is_issued_by(cert, cert)


def test_files_are_private(tmp_path):
    store = KeyStore(tmp_path / "keys", PASSPHRASE)
    store.root()
    store.ledger_signer()
    seal = store.new_department_seal("d-1", "福州市民政局", "11350100003595127K")
    assert mode(tmp_path / "keys") == 0o700
    names = sorted(path.name for path in (tmp_path / "keys").iterdir())
    expected = [".lock", "root.key", "root.pem", "ledger.key", "ledger.pem"]
    expected += [f"{seal.kid}.key", f"{seal.kid}.pem"]
    assert names == sorted(expected)
    for name in names:
        assert mode(tmp_path / "keys" / name) == 0o600, name


def test_keys_are_encrypted_with_the_passphrase(tmp_path):
    KeyStore(tmp_path, PASSPHRASE).root()
    text = (tmp_path / "root.key").read_text()
    assert "BEGIN ENCRYPTED PRIVATE KEY" in text
    assert "BEGIN PRIVATE KEY" not in text


def test_keys_without_passphrase_are_plain_pkcs8(tmp_path):
    KeyStore(tmp_path, None).root()
    assert (tmp_path / "root.key").read_text().startswith("-----BEGIN PRIVATE KEY-----")


@pytest.mark.parametrize("passphrase", [b"wrong", None])
def test_wrong_or_missing_passphrase_is_a_clear_error(tmp_path, passphrase):
    KeyStore(tmp_path, PASSPHRASE).root()
    with pytest.raises(KeyPassphraseError, match=PASSPHRASE_VARIABLE):
        KeyStore(tmp_path, passphrase).root()


def test_passphrase_on_plain_keys_is_a_clear_error(tmp_path):
    KeyStore(tmp_path, None).root()
    with pytest.raises(KeyPassphraseError, match=PASSPHRASE_VARIABLE):
        KeyStore(tmp_path, PASSPHRASE).root()


def test_ledger_signer_is_certified_by_the_root_and_stable(tmp_path):
    store = KeyStore(tmp_path, PASSPHRASE)
    ledger = store.ledger_signer()
    assert is_ledger_certificate(ledger.certificate)
    assert is_issued_by(ledger.certificate, store.root()[1])
    assert KeyStore(tmp_path, PASSPHRASE).ledger_signer().kid == ledger.kid


def test_department_seals_are_stored_by_kid(tmp_path):
    store = KeyStore(tmp_path, PASSPHRASE)
    seal = store.new_department_seal("d-1", "福州市民政局", "11350100003595127K")
    assert department_id_of(seal.certificate) == "d-1"
    assert is_issued_by(seal.certificate, store.root()[1])
    loaded = KeyStore(tmp_path, PASSPHRASE).seal_signer(seal.kid)
    assert loaded.kid == seal.kid
    loaded.certificate.public_key().verify(loaded.sign(b"data"), b"data")


@pytest.mark.parametrize("kid", ["0" * 64, "root", "../root", "A" * 64])
def test_unknown_seal_is_a_clear_error(tmp_path, kid):
    store = KeyStore(tmp_path)
    store.root()
    with pytest.raises(SealNotFound, match="no seal key") as raised:
        store.seal_signer(kid)
    assert isinstance(raised.value, KeyError)


def test_reprs_show_no_key_material(tmp_path):
    store = KeyStore(tmp_path, PASSPHRASE)
    signer, _ = store.root()
    seal = store.new_department_seal("d-1", "name", "11350100003595127K")
    for value in (signer, seal, store.ledger_signer()):
        assert repr(value) == f"FileKey(kid={value.kid!r})"
    assert "horse" not in repr(store)


CREATE_ROOT = """
import sys, time
from pathlib import Path
from signing.keystore import KeyStore
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
print(KeyStore(Path(sys.argv[1]), b"pass").root()[0].kid)
"""


def test_processes_starting_together_create_one_root(tmp_path):
    start = str(time.time() + 1.5)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE_ROOT, str(tmp_path / "keys"), start],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [child.communicate(timeout=60) for child in children]
    assert all(child.returncode == 0 for child in children), results
    kids = {out.strip() for out, _ in results}
    assert len(kids) == 1
    assert sorted(path.name for path in (tmp_path / "keys").iterdir()) == [".lock", "root.key", "root.pem"]
