from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing.certificates import create_root, issue_department_certificate
from signing.key import FileKey

DEPARTMENT_ID = "4f1c2b8e-0d51-4e0a-9d6b-2a7c3e5f8a10"
DEPARTMENT_NAME = "福州市鼓楼区公安分局温泉派出所"
DEPARTMENT_USCC = "11350102MB1234567X"

Root = tuple[Ed25519PrivateKey, x509.Certificate]

# Certificates made by these fixtures are valid from an hour before the session: module constants such
# as a test's ISSUED_AT are taken at import, possibly long before a fixture first runs in a full suite.
EPOCH = datetime.now(UTC) - timedelta(hours=1)


@pytest.fixture(scope="session")
def root() -> Root:
    return create_root(not_before=EPOCH)


@pytest.fixture(scope="session")
def make_seal(root: Root) -> Callable[..., FileKey]:
    """A department seal (key and root-issued certificate), by default for DEPARTMENT_ID."""

    def make(
        department_id: str = DEPARTMENT_ID,
        *,
        not_before: datetime | None = None,
        years: int = 10,
        by: Root | None = None,
    ) -> FileKey:
        root_key, root_cert = by or root
        not_before = not_before or EPOCH
        key = Ed25519PrivateKey.generate()
        cert = issue_department_certificate(
            root_key,
            root_cert,
            key.public_key(),
            department_id=department_id,
            name=DEPARTMENT_NAME,
            uscc=DEPARTMENT_USCC,
            not_before=not_before,
            years=years,
        )
        return FileKey(key, cert)

    return make


@pytest.fixture(scope="session")
def dept_seal(make_seal: Callable[..., FileKey]) -> FileKey:
    return make_seal()
