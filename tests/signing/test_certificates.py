"""X.509 certificates of the platform root, department seals and the ledger key."""

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from signing.certificates import (
    create_root,
    department_id_of,
    is_issued_by,
    is_ledger_certificate,
    is_valid_at,
    issue_ledger_certificate,
    kid_of,
    load_der,
    load_pem,
    to_der,
    to_pem,
    validity,
)

from .conftest import DEPARTMENT_ID, DEPARTMENT_NAME, DEPARTMENT_USCC


def test_root_is_a_self_signed_ca():
    _, cert = create_root()
    assert is_issued_by(cert, cert)
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    not_before, not_after = validity(cert)
    assert not_before <= datetime.now(UTC) < not_before + timedelta(minutes=2)
    assert not_after - not_before >= timedelta(days=365 * 20)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "nocert platform root"


def test_department_certificate_names_its_department(root, dept_seal):
    cert = dept_seal.certificate
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DEPARTMENT_NAME
    assert cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)[0].value == DEPARTMENT_USCC
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris == [f"urn:nocert:department:{DEPARTMENT_ID}"]
    assert department_id_of(cert) == DEPARTMENT_ID
    assert kid_of(cert) == hashlib.sha256(to_der(cert)).hexdigest() == dept_seal.kid
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = root[1].extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert is_issued_by(cert, root[1])
    assert not is_ledger_certificate(cert)


def test_chinese_names_round_trip_through_pem_and_der(dept_seal):
    cert = dept_seal.certificate
    for copy in (load_pem(to_pem(cert)), load_pem(to_pem(cert).encode()), load_der(to_der(cert))):
        assert copy == cert
        assert copy.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == DEPARTMENT_NAME
    assert "BEGIN CERTIFICATE" in to_pem(cert)


def test_validity_follows_not_before_and_years_but_never_outlives_the_root(root, make_seal):
    start = datetime(2030, 2, 28, 8, 0, tzinfo=UTC)
    cert = make_seal(not_before=start, years=2).certificate
    assert validity(cert) == (start, datetime(2032, 2, 28, 8, 0, tzinfo=UTC))
    assert is_valid_at(cert, start) and not is_valid_at(cert, start - timedelta(seconds=1))
    long_lived = make_seal(years=50).certificate
    assert validity(long_lived)[1] == validity(root[1])[1]


def test_ledger_certificate(root):
    key = Ed25519PrivateKey.generate()
    cert = issue_ledger_certificate(*root, key.public_key())
    assert is_ledger_certificate(cert)
    assert department_id_of(cert) is None
    assert is_issued_by(cert, root[1])


def test_certificate_of_another_root_is_not_issued_by_ours(root, make_seal):
    other = create_root("another root")
    foreign = make_seal(by=other).certificate
    assert not is_issued_by(foreign, root[1])
    assert is_issued_by(foreign, other[1])


def test_same_name_different_key_is_not_issued_by_ours(root, make_seal):
    impostor = create_root()  # same default subject name as ours
    assert impostor[1].subject == root[1].subject
    assert not is_issued_by(make_seal(by=impostor).certificate, root[1])


def test_root_certificate_does_not_issue_itself_for_a_seal(root, dept_seal):
    assert not is_issued_by(root[1], dept_seal.certificate)
    assert not is_issued_by(dept_seal.certificate, dept_seal.certificate)


def test_openssl_verifies_the_chain(tmp_path, root, dept_seal):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    (tmp_path / "root.pem").write_text(to_pem(root[1]))
    (tmp_path / "dept.pem").write_text(to_pem(dept_seal.certificate))
    result = subprocess.run(
        ["openssl", "verify", "-CAfile", "root.pem", "dept.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dept.pem: OK" in result.stdout
