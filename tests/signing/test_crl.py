"""Seal certificates for document signing (RFC 9336) naming the root's CRL, and that CRL (RFC 5280 §5),
checked by openssl as an offline validator would."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing import certificates, crl
from signing.keystore import KeyStore

from .conftest import DEPARTMENT_NAME, DEPARTMENT_USCC, EPOCH, Root

PUBLIC_URL = "http://127.0.0.1:8000"
CRL_URL = "http://127.0.0.1:8000/v1/trust/crl"


def seal_certificate(root: Root, department_id: str = "fz-gulou-police", crl_url: str | None = CRL_URL) -> x509.Certificate:
    return certificates.issue_department_certificate(
        *root, Ed25519PrivateKey.generate().public_key(), department_id=department_id, name=DEPARTMENT_NAME,
        uscc=DEPARTMENT_USCC, not_before=EPOCH, crl_url=crl_url,
    )


def test_the_crl_url_is_the_public_url_and_the_trust_path() -> None:
    assert crl.crl_url(PUBLIC_URL) == crl.crl_url(PUBLIC_URL + "/") == CRL_URL


def test_seal_certificates_are_for_document_signing_and_name_the_crl(root: Root) -> None:
    cert = seal_certificate(root)
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(usage.value) == [certificates.DOCUMENT_SIGNING] and not usage.critical
    assert certificates.DOCUMENT_SIGNING.dotted_string == "1.3.6.1.5.5.7.3.36"
    assert certificates.crl_url_of(cert) == CRL_URL
    assert certificates.crl_url_of(seal_certificate(root, crl_url=None)) is None
    # The ledger's certificate signs checkpoints, not documents, but is revocable the same way.
    ledger = certificates.issue_ledger_certificate(*root, Ed25519PrivateKey.generate().public_key(), crl_url=CRL_URL)
    assert certificates.crl_url_of(ledger) == CRL_URL
    with pytest.raises(x509.ExtensionNotFound):
        ledger.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_the_crl_lists_revocations_in_effect_signed_by_the_root(root: Root) -> None:
    now = datetime(2030, 1, 1, 12, tzinfo=UTC)
    past, soon, later = seal_certificate(root), seal_certificate(root), seal_certificate(root)
    revocations = [
        crl.Revocation(past, now - timedelta(days=3)),
        crl.Revocation(past, now - timedelta(days=1)),  # revoked twice: listed once, at its first time
        crl.Revocation(later, now + timedelta(days=30)),
        crl.Revocation(soon, now + timedelta(hours=2)),
    ]
    revocation_list = crl.build_crl(*root, revocations, now)
    assert revocation_list.is_signature_valid(root[1].public_key())
    assert revocation_list.issuer == root[1].subject
    assert revocation_list.last_update_utc == now
    assert revocation_list.next_update_utc == now + timedelta(hours=2)  # the next revocation to take effect
    entries = list(revocation_list)
    assert [(e.serial_number, e.revocation_date_utc) for e in entries] == [(past.serial_number, now - timedelta(days=3))]
    assert revocation_list.get_revoked_certificate_by_serial_number(soon.serial_number) is None
    number = revocation_list.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == int(now.timestamp())
    aki = revocation_list.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == root[1].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    # Two hours on, the pending revocation is in effect and listed.
    then = crl.build_crl(*root, revocations, now + timedelta(hours=2))
    assert {e.serial_number for e in then} == {past.serial_number, soon.serial_number}
    assert then.next_update_utc == now + timedelta(hours=2) + crl.DEFAULT_LIFETIME
    assert crl.build_crl(*root, [], now).next_update_utc == now + crl.DEFAULT_LIFETIME


def test_certificates_of_another_root_are_refused(root: Root) -> None:
    other = certificates.create_root("someone else's root")
    with pytest.raises(ValueError):
        crl.build_crl(*root, [crl.Revocation(seal_certificate(other), EPOCH)], datetime.now(UTC))
    with pytest.raises(ValueError):
        crl.build_crl(*root, [], datetime(2030, 1, 1))  # naive


def openssl_verify(directory: Path, root: x509.Certificate, revocation_list: x509.CertificateRevocationList, cert: x509.Certificate) -> subprocess.CompletedProcess[str]:
    (directory / "root.pem").write_text(certificates.to_pem(root))
    (directory / "crl.pem").write_text(crl.to_pem(revocation_list))
    (directory / "seal.pem").write_text(certificates.to_pem(cert))
    return subprocess.run(
        ["openssl", "verify", "-crl_check", "-CAfile", "root.pem", "-CRLfile", "crl.pem", "seal.pem"],
        cwd=directory, capture_output=True, text=True, check=False, timeout=60,
    )


@pytest.fixture
def openssl() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")


def test_openssl_accepts_a_good_seal_and_reports_a_revoked_one(openssl: None, tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys", crl_url=CRL_URL)
    root_cert = store.root()[1]
    good = store.new_department_seal("fz-gulou-police", DEPARTMENT_NAME, DEPARTMENT_USCC).certificate
    revoked = store.new_department_seal("xm-siming-police", "厦门市公安局思明分局", DEPARTMENT_USCC).certificate
    assert certificates.crl_url_of(good) == CRL_URL and certificates.crl_url_of(store.ledger_signer().certificate) == CRL_URL
    now = datetime.now(UTC)
    revocation_list = store.root_crl([crl.Revocation(revoked, now - timedelta(minutes=1))], now)

    result = openssl_verify(tmp_path, root_cert, revocation_list, good)
    assert result.returncode == 0 and "seal.pem: OK" in result.stdout, result.stdout + result.stderr
    result = openssl_verify(tmp_path, root_cert, revocation_list, revoked)
    assert result.returncode != 0 and "certificate revoked" in result.stdout + result.stderr, result.stdout + result.stderr

    # A CRL signed by another key under the root's name is not the root's: openssl finds no CRL to use.
    other_key, _ = certificates.create_root("nocert platform root")
    forged = crl.build_crl(other_key, root_cert, [], now)
    result = openssl_verify(tmp_path, root_cert, forged, good)
    assert result.returncode != 0 and "unable to get certificate CRL" in result.stderr, result.stdout + result.stderr
    # And a revocation still to come does not revoke the seal yet.
    pending = store.root_crl([crl.Revocation(revoked, now + timedelta(hours=1))], now)
    assert openssl_verify(tmp_path, root_cert, pending, revoked).returncode == 0
