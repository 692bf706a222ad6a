"""The pure credential helpers: argon2id passwords, the password rules, TOTP and enrolment codes."""

from __future__ import annotations

import argon2
import pyotp
import pytest

from api.workbench.credentials import (
    ENROLMENT_ALPHABET,
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    PasswordProblem,
    Passwords,
    enrolment_code_hash,
    enrolment_code_matches,
    new_enrolment_code,
    new_totp_secret,
    password_problems,
    totp_provisioning_uri,
    totp_step,
)


def test_a_password_hash_is_argon2id_salted_and_verifies_only_its_password(cheap_passwords: Passwords) -> None:
    first = cheap_passwords.hash("correct horse battery")
    second = cheap_passwords.hash("correct horse battery")
    assert first.startswith("$argon2id$")
    assert first != second  # a salt of its own
    assert "correct horse" not in first
    assert cheap_passwords.verify(first, "correct horse battery")
    assert not cheap_passwords.verify(first, "correct horse batterY")
    assert not cheap_passwords.verify("not a hash", "correct horse battery")
    assert not cheap_passwords.verify("", "")


def test_passwords_compare_in_unicode_normal_form(cheap_passwords: Passwords) -> None:
    composed, decomposed = "密码é-long-enough", "密码e\u0301-long-enough"
    assert cheap_passwords.verify(cheap_passwords.hash(composed), decomposed)


def test_the_default_hasher_uses_rfc_9106_parameters_and_asks_to_rehash_weaker_hashes(cheap_passwords: Passwords) -> None:
    default = Passwords()
    strong = default.hash("correct horse battery")
    parameters = argon2.extract_parameters(strong)
    assert parameters.type is argon2.Type.ID
    assert parameters.memory_cost >= 64 * 1024 and parameters.time_cost >= 3
    assert not default.needs_rehash(strong)
    weak = cheap_passwords.hash("correct horse battery")
    assert default.needs_rehash(weak)
    assert default.verify(weak, "correct horse battery")  # still signs in, then gets renewed
    assert default.needs_rehash("garbage")


@pytest.mark.parametrize(
    ("password", "login", "problems"),
    [
        ("a" * MIN_PASSWORD_LENGTH, "wang.li", []),
        ("a" * (MIN_PASSWORD_LENGTH - 1), "wang.li", [PasswordProblem.TOO_SHORT]),
        ("这是一个足够长的中文密码啊", "wang.li", []),  # 13 characters, however many bytes
        ("a" * (MAX_PASSWORD_LENGTH + 1), "wang.li", [PasswordProblem.TOO_LONG]),
        ("wang.li", "wang.li", [PasswordProblem.TOO_SHORT, PasswordProblem.CONTAINS_LOGIN]),
        ("my-WANG.LI-password", "wang.li", [PasswordProblem.CONTAINS_LOGIN]),
        ("wang.li-wang.li", "wang.li", [PasswordProblem.CONTAINS_LOGIN]),
    ],
)
def test_password_rules(password: str, login: str, problems: list[PasswordProblem]) -> None:
    assert password_problems(password, login) == problems


def test_a_totp_code_matches_its_step_within_one_step_either_side() -> None:
    secret = new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = 1_800_000_015.0
    step = totp.timecode(now)
    assert totp_step(secret, totp.at(now), now) == step
    assert totp_step(secret, totp.at(now - 30), now) == step - 1
    assert totp_step(secret, totp.at(now + 30), now) == step + 1
    assert totp_step(secret, totp.at(now - 60), now) is None
    assert totp_step(secret, totp.at(now + 60), now) is None
    assert totp_step(secret, " " + totp.at(now)[:3] + " " + totp.at(now)[3:], now) == step
    for garbage in ("", "abcdef", "１２３４５６", "12345", "1234567"):
        assert totp_step(secret, garbage, now) is None


def test_the_provisioning_uri_names_the_officer_and_nocert() -> None:
    secret = new_totp_secret()
    uri = totp_provisioning_uri(secret, "fz-gulou-police", "wang.li")
    parsed = pyotp.parse_uri(uri)
    assert uri.startswith("otpauth://totp/")
    assert parsed.secret == secret
    assert parsed.name == "wang.li@fz-gulou-police"
    assert parsed.issuer == "nocert"


def test_enrolment_codes_are_random_readable_and_matched_by_hash_as_typed() -> None:
    codes = {new_enrolment_code() for _ in range(200)}
    assert len(codes) == 200
    code = codes.pop()
    groups = code.split("-")
    assert [len(group) for group in groups] == [4, 4, 4, 4]
    assert set("".join(groups)) <= set(ENROLMENT_ALPHABET)
    stored = enrolment_code_hash(code)
    assert code not in stored and len(stored) == 64
    assert enrolment_code_matches(code, stored)
    assert enrolment_code_matches(" " + code.lower().replace("-", " ") + " ", stored)
    assert not enrolment_code_matches(code[:-1] + ("0" if code[-1] != "0" else "1"), stored)
    assert not enrolment_code_matches("", stored)
