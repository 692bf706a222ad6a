"""Private keys on disk (`NOCERT_KEY_DIR`): the root CA, the ledger's checkpoint key, department seals.

Each key is a PKCS#8 PEM file, encrypted when a passphrase is set, beside its certificate:
``root.key``/``root.pem``, ``ledger.key``/``ledger.pem`` and ``<kid>.key``/``<kid>.pem`` per seal.
Files are written whole (temporary file, then rename) with mode 0600 in a 0700 directory. The root and
the ledger key are created under an exclusive lock on ``.lock``, so that processes starting together
agree on one of each: the first creates, the others load its files.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signing import certificates, crl
from signing.key import FileKey, SigningKey

PASSPHRASE_VARIABLE = "NOCERT_KEY_PASSPHRASE"

_KID = re.compile(r"[0-9a-f]{64}", re.ASCII)
_SECRET_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}", re.ASCII)

_KeyPair = tuple[Ed25519PrivateKey, x509.Certificate]


class KeyStoreError(Exception):
    """A key file that cannot be used as it is."""


class KeyPassphraseError(KeyStoreError):
    """The passphrase does not open the key files."""


class SealNotFound(KeyStoreError, KeyError):
    """No seal key is stored under that kid."""

    def __str__(self) -> str:  # KeyError's would show the message quoted
        return str(self.args[0])


class KeyStore:
    """Keys in `key_dir`, encrypted with `passphrase` when one is given (an empty one counts as none)."""

    def __init__(self, key_dir: Path, passphrase: bytes | None = None, crl_url: str | None = None) -> None:
        """`crl_url`: the CRL distribution point new certificates name (`signing.crl.crl_url`), if any."""
        self._dir = Path(key_dir)
        self._passphrase = passphrase or None
        self._crl_url = crl_url
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._root: _KeyPair | None = None
        self._seals: dict[str, SigningKey] = {}  # loaded once: decrypting a key file is deliberately slow

    def __repr__(self) -> str:
        return f"KeyStore({str(self._dir)!r}, encrypted={self._passphrase is not None})"

    def root(self) -> tuple[SigningKey, x509.Certificate]:
        """The platform root CA's signer and certificate, created on first use."""
        key, cert = self._root_pair()
        return FileKey(key, cert), cert

    def ledger_signer(self) -> SigningKey:
        """The signer of ledger checkpoints, its certificate issued by the root on first use."""

        root_key, root_cert = self._root_pair()  # before taking the lock, which creating the root takes

        def create() -> _KeyPair:
            key = Ed25519PrivateKey.generate()
            return key, certificates.issue_ledger_certificate(root_key, root_cert, key.public_key(), crl_url=self._crl_url)

        return FileKey(*self._load_or_create("ledger", create))

    def new_department_seal(self, department_id: str, name: str, uscc: str) -> SigningKey:
        """A new seal key for a department, with a certificate issued by the root; stored under its kid."""
        key = Ed25519PrivateKey.generate()
        cert = certificates.issue_department_certificate(
            *self._root_pair(), key.public_key(), department_id=department_id, name=name, uscc=uscc, crl_url=self._crl_url
        )
        self._store(certificates.kid_of(cert), key, cert)
        return FileKey(key, cert)

    def root_crl(self, revocations: Iterable[crl.Revocation], now: datetime) -> x509.CertificateRevocationList:
        """The root's CRL of these revocations as of `now` (see `signing.crl.build_crl`)."""
        return crl.build_crl(*self._root_pair(), revocations, now)

    def seal_signer(self, kid: str) -> SigningKey:
        """The stored seal with this kid; raises SealNotFound if there is none."""
        if kid in self._seals:
            return self._seals[kid]
        if not _KID.fullmatch(kid) or not self._path(kid, "pem").exists():
            raise SealNotFound(f"no seal key with kid {kid!r} in {self._dir}")
        signer = self._seals[kid] = FileKey(*self._load(kid))
        return signer

    def secret(self, name: str) -> bytes:
        """A 32-byte symmetric key of the key directory (``<name>.secret``, mode 0600), made on first use:
        for what the service encrypts at rest beside the event store (stored idempotency answers)."""
        if not _SECRET_NAME.fullmatch(name):
            raise KeyStoreError(f"{name!r} is no key name")
        path = self._path(name, "secret")
        with self._lock():
            if not path.exists():
                self._write(path, os.urandom(32))
            value = path.read_bytes()
        if len(value) != 32:
            raise KeyStoreError(f"{path} does not hold a 32-byte key")
        return value

    def _root_pair(self) -> _KeyPair:
        if self._root is None:
            self._root = self._load_or_create("root", certificates.create_root)
        return self._root

    def _load_or_create(self, stem: str, create: Callable[[], _KeyPair]) -> _KeyPair:
        with self._lock():
            if not self._path(stem, "pem").exists():
                self._store(stem, *create())
            return self._load(stem)

    def _store(self, stem: str, key: Ed25519PrivateKey, cert: x509.Certificate) -> None:
        """Write the key, then the certificate: a certificate on disk means its key is there too."""
        encryption = (
            serialization.BestAvailableEncryption(self._passphrase)
            if self._passphrase
            else serialization.NoEncryption()
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )
        self._write(self._path(stem, "key"), key_pem)
        self._write(self._path(stem, "pem"), certificates.to_pem(cert).encode("ascii"))

    def _load(self, stem: str) -> _KeyPair:
        cert = certificates.load_pem(self._path(stem, "pem").read_bytes())
        path = self._path(stem, "key")
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), self._passphrase)
        except (TypeError, ValueError) as exc:
            raise KeyPassphraseError(
                f"cannot open {path} ({exc}); check {PASSPHRASE_VARIABLE}: it must be the passphrase "
                "the key files were written with, and unset if they are not encrypted"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} is not an Ed25519 private key")
        return key, cert

    def _path(self, stem: str, suffix: str) -> Path:
        return self._dir / f"{stem}.{suffix}"

    def _write(self, path: Path, data: bytes) -> None:
        fd, temp = tempfile.mkstemp(dir=self._dir, prefix=f".{path.name}.")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise

    @contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self._dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
