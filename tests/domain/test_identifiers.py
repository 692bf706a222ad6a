"""API.md §2: resident identity numbers (GB 11643-1999), unified social credit codes (GB 32100-2015),
region prefixes (GB/T 2260), and the masking of identity numbers (§4).

The check characters are computed here from the standards' own tables, independently of domain/.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import domain.identifiers as identifiers
from domain.errors import DomainError
from domain.identifiers import (
    mask_id_number,
    region_prefix,
    validate_id_number,
    validate_region,
    validate_uscc,
)

# GB 11643-1999: weights W_i = 2^(i-1) mod 11 for positions 18..2, check char by (sum mod 11).
GB11643_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
GB11643_CHECK = {0: "1", 1: "0", 2: "X", 3: "9", 4: "8", 5: "7", 6: "6", 7: "5", 8: "4", 9: "3", 10: "2"}

# GB 32100-2015: character values (I, O, S, V, Z are not used), weights 3^(i-1) mod 31, C18 = 31 - sum mod 31.
GB32100_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
GB32100_VALUES = {c: v for v, c in enumerate(GB32100_CHARS)}
GB32100_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def ref_id_check(first17: str) -> str:
    return GB11643_CHECK[sum(int(c) * w for c, w in zip(first17, GB11643_WEIGHTS, strict=True)) % 11]


def ref_uscc_check(first17: str) -> str:
    remainder = 31 - sum(GB32100_VALUES[c] * w for c, w in zip(first17, GB32100_WEIGHTS, strict=True)) % 31
    return GB32100_CHARS[0 if remainder == 31 else remainder]


def refused_id(value: object, **kwargs) -> None:
    with pytest.raises(DomainError) as caught:
        validate_id_number(value, **kwargs)
    assert caught.value.code == "invalid_id_number"


def refused_uscc(value: object) -> None:
    with pytest.raises(DomainError) as caught:
        validate_uscc(value)
    assert caught.value.code == "invalid_uscc"


# -- identity numbers ---------------------------------------------------------------------------

# Published examples: the standard's own example and widely cited specimens.
PUBLISHED_ID_NUMBERS = ["11010519491231002X", "440524188001010014"]


@pytest.mark.parametrize("number", PUBLISHED_ID_NUMBERS)
def test_published_identity_numbers_validate(number):
    assert ref_id_check(number[:17]) == number[17]  # the reference agrees they are valid
    assert validate_id_number(number) == number


def test_lower_case_x_is_accepted_and_upper_cased():
    assert validate_id_number("11010519491231002x") == "11010519491231002X"


@pytest.mark.parametrize(
    "number",
    [
        "110105194912310021",  # check char should be X
        "11010519491231002Y",
        "440524188001010015",
        "440524188001010010",
    ],
)
def test_wrong_check_character_is_refused(number):
    refused_id(number)


@pytest.mark.parametrize(
    "birth",
    ["19900230", "19000229", "20230229", "19901301", "19900001", "19900100", "19900132", "00000101", "19900431"],
)
def test_identity_number_needs_a_real_calendar_date(birth):
    first17 = "350102" + birth + "123"
    refused_id(first17 + ref_id_check(first17))


def test_leap_day_is_a_real_date():
    first17 = "350102" + "20000229" + "123"
    assert validate_id_number(first17 + ref_id_check(first17)) == first17 + ref_id_check(first17)


def test_birth_date_may_be_today_but_not_after_it():
    today = date(2024, 3, 2)
    born_today = "350102" + "20240302" + "001"
    born_tomorrow = "350102" + "20240303" + "001"
    assert validate_id_number(born_today + ref_id_check(born_today), today=today)
    refused_id(born_tomorrow + ref_id_check(born_tomorrow), today=today)
    # The same number is fine once that day has come.
    assert validate_id_number(born_tomorrow + ref_id_check(born_tomorrow), today=date(2024, 3, 3))


def test_today_is_the_date_in_china_standard_time(monkeypatch):
    """At 20:00 UTC on 1 March it is already 2 March in China: a child born on 2 March is valid."""
    instant = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)

    class FrozenDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return instant.astimezone(tz) if tz else instant.replace(tzinfo=None)

    monkeypatch.setattr(identifiers, "datetime", FrozenDatetime)
    born_china_today = "350102" + "20240302" + "001"
    born_china_tomorrow = "350102" + "20240303" + "001"
    assert identifiers.today_in_china() == date(2024, 3, 2)
    assert validate_id_number(born_china_today + ref_id_check(born_china_today))
    refused_id(born_china_tomorrow + ref_id_check(born_china_tomorrow))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "11010519491231002",  # 17
        "11010519491231002X1",  # 19
        "1101051949123100X2",  # X not last
        "X10105194912310021",
        "11010519491231A02X",
        "11010519491231 02X",
        "１１０１０５１９４９１２３１００２Ｘ",  # full-width digits
        "11010519491231002X\n",  # a trailing newline is no 18th character
        " 11010519491231002X",
        None,
        11010519491231002,
        ["11010519491231002X"],
    ],
)
def test_malformed_identity_numbers_are_refused(value):
    refused_id(value)


# -- unified social credit codes ----------------------------------------------------------------

# GB 32100-2015's own example and codes of real organisations, each verified with the reference above.
PUBLISHED_USCCS = [
    "91350100M000100Y43",  # example in GB 32100-2015
    "911100001000080343",
    "91110108551385082Q",
    "91440300708461136T",
]


@pytest.mark.parametrize("code", PUBLISHED_USCCS)
def test_published_usccs_validate(code):
    assert ref_uscc_check(code[:17]) == code[17]
    assert validate_uscc(code) == code


def test_lower_case_uscc_is_upper_cased():
    assert validate_uscc("91350100m000100y43") == "91350100M000100Y43"


@pytest.mark.parametrize("letter", list("IOSVZ"))
def test_uscc_letters_outside_the_alphabet_are_refused(letter):
    # Replace a body character with the forbidden letter; whatever check char follows, it is refused.
    first17 = "91350100M000100Y4"[:9] + letter + "00100Y4"
    assert len(first17) == 17
    for check in GB32100_CHARS:
        refused_uscc(first17 + check)
    refused_uscc("91350100M000100Y4" + letter)  # as check character


@pytest.mark.parametrize(
    "value",
    [
        "91350100M000100Y44",
        "91350100M000100Y4Y",
        "911100001000080342",
        "91110108551385082P",
        "",
        "91350100M000100Y4",  # 17
        "91350100M000100Y433",  # 19
        "91350100M000100Y43\n",
        "91350100-000100Y43",
        None,
        911100001000080343,
    ],
)
def test_malformed_usccs_are_refused(value):
    refused_uscc(value)


def test_uscc_refuses_characters_that_only_become_valid_when_upper_cased_into_two():
    """'ﬀ'.upper() is 'FF': a 17-character input must not turn into an 18-character code."""
    first17 = "91350100M00010A" + "FF"
    tampered = "91350100M00010A" + "\ufb00" + ref_uscc_check(first17)
    assert len(tampered) == 17
    refused_uscc(tampered)


# -- regions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "prefix"),
    [("350102", "350102"), ("350100", "3501"), ("350000", "35"), ("110000", "11"), ("110101", "110101"),
     ("350200", "3502"), ("350010", "350010")],
)
def test_region_prefix_drops_trailing_zero_pairs(code, prefix):
    assert region_prefix(code) == prefix


@pytest.mark.parametrize("code", ["350102", "000000", "999999"])
def test_six_digit_regions_are_accepted(code):
    assert validate_region(code) == code


@pytest.mark.parametrize("code", ["35010", "3501020", "35010a", "", "350102\n", None, 350102])
def test_other_regions_are_refused(code):
    with pytest.raises(DomainError) as caught:
        validate_region(code)
    assert caught.value.code == "validation_error"


# -- masking ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "masked"),
    [("11010519491231002X", "110105********002X"), ("350102199001011234", "350102********1234")],
)
def test_mask_keeps_first_six_and_last_four(number, masked):
    assert mask_id_number(number) == masked
    assert len(mask_id_number(number)) == 18


# -- properties ---------------------------------------------------------------------------------

birth_dates = st.dates(min_value=date(1900, 1, 1), max_value=date(2024, 12, 31))


@settings(max_examples=300, deadline=None)
@given(region=st.from_regex(r"\A[0-9]{6}\Z"), birth=birth_dates, sequence=st.from_regex(r"\A[0-9]{3}\Z"))
def test_every_valid_prefix_with_its_check_char_validates_and_no_other_does(region, birth, sequence):
    first17 = f"{region}{birth:%Y%m%d}{sequence}"
    check = ref_id_check(first17)
    today = date(2025, 1, 1)
    assert validate_id_number(first17 + check, today=today) == first17 + check
    if check == "X":
        assert validate_id_number(first17 + "x", today=today) == first17 + "X"
    for other in "0123456789X":
        if other != check:
            refused_id(first17 + other, today=today)


@settings(max_examples=300, deadline=None)
@given(first17=st.text(alphabet=GB32100_CHARS, min_size=17, max_size=17))
def test_every_uscc_body_with_its_check_char_validates_and_no_other_does(first17):
    check = ref_uscc_check(first17)
    assert validate_uscc(first17 + check) == first17 + check
    assert validate_uscc((first17 + check).lower()) == first17 + check
    for other in GB32100_CHARS:
        if other != check:
            refused_uscc(first17 + other)


@st.composite
def near_valid_codes(draw):
    """A valid identity number or USCC with one arbitrary character inserted, replaced or appended."""
    if draw(st.booleans()):
        first17 = draw(st.from_regex(r"\A35010219[0-9]{9}\Z"))
        code = first17 + ref_id_check(first17)
    else:
        first17 = draw(st.text(alphabet=GB32100_CHARS, min_size=17, max_size=17))
        code = first17 + ref_uscc_check(first17)
    char = draw(st.sampled_from(["\n", " ", "\t", "\ufb00", "\u0131", "x", "y", "\uff11"]) | st.characters())
    position = draw(st.integers(0, 18))
    if draw(st.booleans()):
        return code[:position] + char + code[position:]
    return code[:position] + char + code[position + 1 :]


@settings(max_examples=500, deadline=None)
@given(value=near_valid_codes())
def test_whatever_validates_is_eighteen_characters_of_the_alphabet(value):
    for validate, alphabet in ((validate_id_number, "0123456789X"), (validate_uscc, GB32100_CHARS)):
        try:
            result = validate(value)
        except DomainError:
            continue
        assert len(value) == 18 and len(result) == 18 and set(result) <= set(alphabet)
        assert result == value.upper()


@settings(max_examples=200, deadline=None)
@given(number=st.from_regex(r"\A[0-9]{17}[0-9X]\Z"))
def test_mask_never_shows_the_middle(number):
    masked = mask_id_number(number)
    assert masked[:6] == number[:6] and masked[-4:] == number[-4:] and masked[6:14] == "*" * 8
