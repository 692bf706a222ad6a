"""X.509 certificates of the platform: the root CA, department seals and the ledger's checkpoint key.

Every key is Ed25519. A department certificate names its department three ways (API.md section 5): subject
``CN`` = name, ``serialNumber`` = USCC, URI subject-alternative-name ``urn:nocert:department:<id>``, and
carries the extended key usage id-kp-documentSigning (RFC 9336). Certificates issued by the root name, when
a ``crl_url`` is given, the root's CRL (`signing.crl`) as their CRL distribution point (RFC 5280 §4.2.1.13),
so that offline validators learn of revoked seals.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import NameOID

DEPARTMENT_URI_PREFIX = "urn:nocert:department:"
LEDGER_URI = "urn:nocert:ledger"
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
"""id-kp-documentSigning (RFC 9336): the key signs documents, here sealed proofs."""

_CLOCK_SKEW = timedelta(minutes=1)
_ROOT_YEARS = 20


def kid_of(cert: x509.Certificate) -> str:
    """The certificate's fingerprint: lowercase hex SHA-256 of its DER encoding."""
    return hashlib.sha256(to_der(cert)).hexdigest()


def create_root(
    name: str = "nocert platform root", not_before: datetime | None = None
) -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """A new self-signed root CA, valid for 20 years from ``not_before`` (default: now, less clock skew)."""
    key = Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    not_before = not_before or datetime.now(UTC) - _CLOCK_SKEW
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(_add_years(not_before, _ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, None)
    )
    return key, cert


def issue_department_certificate(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    *,
    department_id: str,
    name: str,
    uscc: str,
    not_before: datetime | None = None,
    years: int = 10,
    crl_url: str | None = None,
) -> x509.Certificate:
    """A department's seal certificate, signed by the root, for document signing (RFC 9336)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, name),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, uscc),
        ]
    )
    return _issue(
        root_key,
        root_cert,
        public_key,
        subject,
        DEPARTMENT_URI_PREFIX + department_id,
        not_before,
        years,
        crl_url,
        [x509.ExtendedKeyUsage([DOCUMENT_SIGNING])],
    )


def issue_ledger_certificate(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    not_before: datetime | None = None,
    crl_url: str | None = None,
) -> x509.Certificate:
    """The certificate of the key that signs ledger checkpoints, signed by the root."""
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "nocert audit ledger")])
    return _issue(root_key, root_cert, public_key, subject, LEDGER_URI, not_before, 10, crl_url)


def department_id_of(cert: x509.Certificate) -> str | None:
    """The department a certificate names in its URI SAN, or None if it names none."""
    for uri in _san_uris(cert):
        if uri.startswith(DEPARTMENT_URI_PREFIX):
            return uri.removeprefix(DEPARTMENT_URI_PREFIX)
    return None


def crl_url_of(cert: x509.Certificate) -> str | None:
    """The first URI of the certificate's CRL distribution points, or None if it names none."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return None
    uris = [name.value for point in points for name in point.full_name or [] if isinstance(name, x509.UniformResourceIdentifier)]
    return uris[0] if uris else None


def is_ledger_certificate(cert: x509.Certificate) -> bool:
    """Whether the certificate carries the ledger's URI SAN."""
    return LEDGER_URI in _san_uris(cert)


@functools.lru_cache(maxsize=4096)
def is_issued_by(cert: x509.Certificate, root_cert: x509.Certificate) -> bool:
    """Whether `cert` names `root_cert`'s subject as issuer and carries a valid signature by its key.

    Cached by the two certificates (they hash and compare by their DER bytes): thousands of proofs
    share a handful of seal certificates, and the verdict for the same bytes never changes."""
    try:
        cert.verify_directly_issued_by(root_cert)
    except (ValueError, TypeError, InvalidSignature):  # wrong issuer name, key type or signature
        return False
    return True


def validity(cert: x509.Certificate) -> tuple[datetime, datetime]:
    """The certificate's (not before, not after), as aware UTC datetimes."""
    return cert.not_valid_before_utc, cert.not_valid_after_utc


def is_valid_at(cert: x509.Certificate, moment: datetime) -> bool:
    """Whether the aware datetime `moment` lies within the certificate's validity (both ends included)."""
    not_before, not_after = validity(cert)
    return not_before <= moment <= not_after


def to_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def to_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_pem(data: str | bytes) -> x509.Certificate:
    """Parse one PEM certificate; raises ValueError if it is not one."""
    return x509.load_pem_x509_certificate(data.encode("ascii") if isinstance(data, str) else data)


def load_der(data: bytes) -> x509.Certificate:
    """Parse one DER certificate; raises ValueError if it is not one."""
    return x509.load_der_x509_certificate(data)


def _issue(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    public_key: Ed25519PublicKey,
    subject: x509.Name,
    san_uri: str,
    not_before: datetime | None,
    years: int,
    crl_url: str | None,
    extra: list[x509.ExtensionType] | None = None,
) -> x509.Certificate:
    """An end-entity signing certificate; it never outlives the root."""
    not_before = not_before or datetime.now(UTC) - _CLOCK_SKEW
    not_after = min(_add_years(not_before, years), root_cert.not_valid_after_utc)
    extensions = list(extra or [])  # all non-critical
    if crl_url is not None:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(crl_url)], None, None, None)
        extensions.append(x509.CRLDistributionPoints([point]))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(root_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(san_uri)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False
        )
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(root_key, None)


def _key_usage(**granted: bool) -> x509.KeyUsage:
    usages = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    return x509.KeyUsage(**(usages | granted))


def _san_uris(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February into a common year
        return moment.replace(year=moment.year + years, day=28)
