"""Identifiers the contract validates (API.md §2).

Resident identity numbers (GB 11643-1999, ISO 7064 MOD 11-2), unified social credit codes
(GB 32100-2015) and region codes (GB/T 2260) with their prefixes.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from domain.errors import InvalidIdNumber, InvalidInput, InvalidUscc

CHINA_STANDARD_TIME = timezone(timedelta(hours=8))

_ID_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_ID_CHECK_CHARS = "10X98765432"
_ID_PATTERN = re.compile(r"^[0-9]{17}[0-9X]$")

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_PATTERN = re.compile(rf"^[{USCC_ALPHABET}]{{18}}$")

_REGION_PATTERN = re.compile(r"^[0-9]{6}$")


def today_in_china() -> date:
    return datetime.now(CHINA_STANDARD_TIME).date()


def id_number_check_char(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _ID_WEIGHTS, strict=True))
    return _ID_CHECK_CHARS[total % 11]


def validate_id_number(value: object, today: date | None = None) -> str:
    """Returns the normalised (upper-cased) identity number or raises ``invalid_id_number``."""
    if not isinstance(value, str):
        raise InvalidIdNumber("identity number must be a string of 18 characters")
    number = value.upper()
    if not value.isascii() or not _ID_PATTERN.fullmatch(number):
        raise InvalidIdNumber("identity number must be 17 digits and a check character")
    try:
        birth = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise InvalidIdNumber("identity number holds no real birth date") from None
    if birth > (today or today_in_china()):
        raise InvalidIdNumber("identity number's birth date lies in the future")
    if id_number_check_char(number[:17]) != number[17]:
        raise InvalidIdNumber("identity number's check character is wrong")
    return number


def make_id_number(first17: str) -> str:
    """A valid identity number from its first 17 digits (region, birth date, sequence): its check character
    appended."""
    return first17 + id_number_check_char(first17)


def sample_id_number(serial: int, region: str = "350102") -> str:
    """A valid identity number of `region`, a fresh one for every `serial` below 20 million: the one
    generator of the demo, the tests and the benchmarks."""
    birth = date(1950, 1, 1) + timedelta(days=(serial // 1000) % (365 * 55))
    return make_id_number(f"{region}{birth:%Y%m%d}{serial % 1000:03d}")


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def make_uscc(first17: str) -> str:
    """A valid unified social credit code from its first 17 characters."""
    return first17 + uscc_check_char(first17)


def sample_uscc(serial: int, prefix: str = "11350100MB") -> str:
    """A valid unified social credit code, a fresh one for every `serial` (`prefix`: its first characters)."""
    return make_uscc(f"{prefix}{serial:0{17 - len(prefix)}d}")


def validate_uscc(value: object) -> str:
    """Returns the normalised (upper-cased) unified social credit code or raises ``invalid_uscc``."""
    if not isinstance(value, str):
        raise InvalidUscc("unified social credit code must be a string of 18 characters")
    code = value.upper()
    if not value.isascii() or not _USCC_PATTERN.fullmatch(code):
        raise InvalidUscc("unified social credit code must be 18 characters of 0-9A-HJ-NPQRTUWXY")
    if uscc_check_char(code[:17]) != code[17]:
        raise InvalidUscc("unified social credit code's check character is wrong")
    return code


def validate_region(value: object) -> str:
    if not isinstance(value, str) or not _REGION_PATTERN.fullmatch(value):
        raise InvalidInput("region must be a 6-digit GB/T 2260 code")
    return value


def region_prefix(code: str) -> str:
    """``350102`` → ``350102``, ``350100`` → ``3501``, ``350000`` → ``35`` (trailing ``00`` pairs removed)."""
    prefix = code
    while prefix.endswith("00") and len(prefix) > 2:
        prefix = prefix[:-2]
    return prefix


def mask_id_number(number: str) -> str:
    """``350102199001011234`` → ``350102********1234``: first 6 and last 4 kept."""
    if len(number) <= 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]
