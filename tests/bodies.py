"""The request bodies the HTTP and reliability tests send: one valid check, and its values."""

from __future__ import annotations

from typing import Any

from domain.identifiers import make_id_number

CATEGORY = "household-registration"
APPLICANT = make_id_number("35010219900101123")  # 鼓楼区 350102: routes to the gulou police station
OTHER_NUMBER = make_id_number("35010219850505321")  # a second identity number, inside claims


def check_body(**overrides: Any) -> dict[str, Any]:
    """A valid ``POST /v1/checks`` body for `CATEGORY`, with `overrides` replacing top-level fields."""
    body: dict[str, Any] = {
        "category": CATEGORY,
        "matter": {"code": "real-estate-deregistration", "name": "不动产注销登记"},
        "applicant": {"name": "林某某", "id_number": APPLICANT},
        "claims": {"question": "两个身份证号码是否为同一人", "other_id_number": OTHER_NUMBER},
        "purpose": "不动产注销登记身份一致性核验",
        "consent": {"method": "face", "reference": "FACE-2024-0001"},
    }
    body.update(overrides)
    return body
