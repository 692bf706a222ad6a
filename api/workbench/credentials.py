"""An officer's credentials, as pure functions: passwords (argon2id), the password rules, one-time codes
(TOTP, RFC 6238) and enrolment codes. Nothing here touches storage; `api.workbench.accounts` keeps the
results.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from enum import StrEnum

import argon2
import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIN_PASSWORD_LENGTH = 12
#: Argon2 hashes any length, but a sign-in form has no reason to accept a novel as a password.
MAX_PASSWORD_LENGTH = 256
#: A code of the step before or after the current 30 s one is accepted too (clocks of phones drift).
TOTP_WINDOW = 1
TOTP_ISSUER = "nocert"
#: Crockford's base 32 (no I, L, O, U): nothing an officer could misread when typing the code shown once.
ENROLMENT_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ENROLMENT_GROUPS, ENROLMENT_GROUP_SIZE = 4, 4  # 16 symbols: 80 random bits


class PasswordProblem(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    CONTAINS_LOGIN = "contains_login"


def _normalised(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def password_problems(password: str, login: str) -> list[PasswordProblem]:
    """What is wrong with ``password`` as the password of ``login`` (empty when it is acceptable):
    at least `MIN_PASSWORD_LENGTH` characters, at most `MAX_PASSWORD_LENGTH`, and not containing the
    login, whatever its case."""
    password = _normalised(password)
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(PasswordProblem.TOO_SHORT)
    if len(password) > MAX_PASSWORD_LENGTH:
        problems.append(PasswordProblem.TOO_LONG)
    if login and _normalised(login).casefold() in password.casefold():
        problems.append(PasswordProblem.CONTAINS_LOGIN)
    return problems


class Passwords:
    """argon2id hashing with argon2-cffi's defaults (RFC 9106's low-memory profile) unless told otherwise."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(_normalised(password))

    def verify(self, stored: str, password: str) -> bool:
        """Whether ``password`` matches the hash ``stored``; False for any malformed hash too."""
        try:
            return self._hasher.verify(stored, _normalised(password))
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than this hasher's (hash again at sign-in)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except argon2.exceptions.InvalidHashError:
            return True


# -- one-time codes (TOTP) -----------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_provisioning_uri(secret: str, department: str, login: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or typed in)."""
    return pyotp.TOTP(secret).provisioning_uri(name=f"{login}@{department}", issuer_name=TOTP_ISSUER)


def totp_step(secret: str, code: str, at: float | None = None) -> int | None:
    """The 30 s time step whose code ``code`` is, within `TOTP_WINDOW` steps of ``at`` (now); None
    when it is none of them. The caller keeps the last step used, so that a code works only once."""
    code = code.strip().replace(" ", "")
    if not (code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(time.time() if at is None else at)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


class TotpCipher:
    """AES-GCM for TOTP secrets at rest (whoever holds one makes the officer's codes): the key stays in the
    key directory (`signing.keystore.KeyStore.secret`), the officer's department and login are bound in."""

    NONCE = 12

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    @staticmethod
    def _bound(department: str, login: str) -> bytes:
        return f"nocert totp\x00{department}\x00{login}".encode()

    def seal(self, department: str, login: str, secret: str) -> str:
        nonce = secrets.token_bytes(self.NONCE)
        return (nonce + self._aead.encrypt(nonce, secret.encode(), self._bound(department, login))).hex()

    def open(self, department: str, login: str, sealed: str) -> str:
        data = bytes.fromhex(sealed)
        return self._aead.decrypt(data[: self.NONCE], data[self.NONCE :], self._bound(department, login)).decode()


# -- enrolment codes -----------------------------------------------------------------------------


def new_enrolment_code() -> str:
    """A random code such as ``K7QM-3XHD-PA9F-2WTR``, shown once to the administrator who creates the
    officer; only `enrolment_code_hash` of it is kept."""
    symbols = "".join(secrets.choice(ENROLMENT_ALPHABET) for _ in range(ENROLMENT_GROUPS * ENROLMENT_GROUP_SIZE))
    return "-".join(symbols[i : i + ENROLMENT_GROUP_SIZE] for i in range(0, len(symbols), ENROLMENT_GROUP_SIZE))


def enrolment_code_hash(code: str) -> str:
    """SHA-256 of the code as typed, ignoring case, spaces and dashes. A fast hash suffices: the code is
    80 random bits, not something a person chose."""
    canonical = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(canonical.encode()).hexdigest()


def enrolment_code_matches(code: str, stored_hash: str) -> bool:
    return hmac.compare_digest(enrolment_code_hash(code), stored_hash)
