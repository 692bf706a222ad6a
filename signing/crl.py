"""The root's certificate revocation list (RFC 5280 §5), served at ``GET /v1/trust/crl`` and named as the CRL
distribution point of every certificate the root issues.

It lists each revoked seal certificate by serial number with its revocation time (API.md §3: a revocation's
``effective_at``). A revocation that takes effect later is not listed yet (offline validators treat a listed
serial as revoked outright), and the CRL's next update is then no later than that moment, so that a
validator fetches the list that carries it. Signed by the root's Ed25519 key; served DER-encoded as
RFC 5280 §4.2.1.13 requires of an HTTP distribution point (``application/pkix-crl``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

CRL_PATH = "/v1/trust/crl"
MEDIA_TYPE = "application/pkix-crl"
DEFAULT_LIFETIME = timedelta(days=1)


def crl_url(public_url: str) -> str:
    """The CRL's address under the platform's public base URL (``NOCERT_PUBLIC_URL``)."""
    return public_url.rstrip("/") + CRL_PATH


@dataclass(frozen=True)
class Revocation:
    """A revoked certificate and the moment its revocation takes effect (an aware datetime)."""

    certificate: x509.Certificate
    revoked_at: datetime


def build_crl(
    root_key: Ed25519PrivateKey,
    root_cert: x509.Certificate,
    revocations: Iterable[Revocation],
    now: datetime,
    lifetime: timedelta = DEFAULT_LIFETIME,
    number: int | None = None,
) -> x509.CertificateRevocationList:
    """The CRL as of `now`: the revocations effective by then, valid until `now` + `lifetime` or the next
    pending revocation, whichever is first. `number` (the CRL number, which must grow with each CRL issued)
    defaults to `now` in POSIX seconds. Raises ValueError for a certificate the root did not issue."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: times must carry a time zone")
    next_update = now + lifetime
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root_cert.subject)
        .last_update(now)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .add_extension(x509.CRLNumber(int(now.timestamp()) if number is None else number), critical=False)
    )
    listed: set[int] = set()
    for revocation in sorted(revocations, key=lambda r: r.revoked_at):
        cert = revocation.certificate
        if cert.issuer != root_cert.subject:
            raise ValueError(f"certificate {cert.serial_number:x} was not issued by this root")
        if revocation.revoked_at > now:
            next_update = min(next_update, revocation.revoked_at)
        elif cert.serial_number not in listed:
            listed.add(cert.serial_number)
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(cert.serial_number)
                .revocation_date(revocation.revoked_at)
                .build()
            )
    return builder.next_update(next_update).sign(root_key, None)


def to_der(crl: x509.CertificateRevocationList) -> bytes:
    return crl.public_bytes(serialization.Encoding.DER)


def to_pem(crl: x509.CertificateRevocationList) -> str:
    return crl.public_bytes(serialization.Encoding.PEM).decode("ascii")
