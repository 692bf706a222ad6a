"""The domain's Sealer port backed by the key directory (file keys; an HSM can take its place)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from domain.errors import ConcurrentUpdate
from domain.ports import SealCertificate
from signing.certificates import to_pem
from signing.keystore import KeyStore, SealNotFound
from signing.proofs import seal_proof

log = logging.getLogger("nocert.keys")


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
        try:
            signer = self.keystore.seal_signer(kid)
        except SealNotFound:  # retired by a rotation since the department was read: the retry uses the new key
            raise ConcurrentUpdate("the department's seal key was just rotated; retry") from None
        return seal_proof(signer, payload)

    def retire(self, kid: str) -> None:
        try:
            self.keystore.retire_seal(kid)
        except OSError as error:  # the rotation is recorded; the next rotation of the department tries again
            log.error("the retired seal key %s could not be moved out of the key directory: %s", kid, error)
