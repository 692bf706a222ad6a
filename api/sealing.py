"""The domain's Sealer port backed by the key directory (file keys; an HSM can take its place)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.ports import SealCertificate
from signing.certificates import to_pem
from signing.keystore import KeyStore
from signing.proofs import seal_proof


class KeyStoreSealer:
    """Creates department seals in the key directory and seals proofs with them."""

    def __init__(self, keystore: KeyStore) -> None:
        self.keystore = keystore
        # When new certificates begin (None: now, less clock skew). The demo's clock sets it (api.demo_clock).
        self.not_before: Callable[[], datetime | None] = lambda: None

    def create_seal(self, department_id: str, name: str, uscc: str) -> SealCertificate:
        signer = self.keystore.new_department_seal(department_id, name, uscc, self.not_before())
        certificate = signer.certificate
        return SealCertificate(
            kid=signer.kid,
            certificate_pem=to_pem(certificate),
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )

    def seal(self, kid: str, payload: dict[str, Any]) -> str:
        return seal_proof(self.keystore.seal_signer(kid), payload)
