"""Personal data masking (API.md §4): identity numbers shown in full only to those who may see them."""

from __future__ import annotations

from typing import Any

from domain.identifiers import mask_id_number

ID_NUMBER_SUFFIX = "id_number"  # a member whose name ends so (any case) holds identity numbers


def is_id_number_field(name: str) -> bool:
    """Whether the member ``name`` holds an identity number: its name ends in ``id_number``, in any case."""
    return name.casefold().endswith(ID_NUMBER_SUFFIX)


def mask_claims(value: Any) -> Any:
    """Masks every value under a member whose name ends in ``id_number`` (any case), at any depth."""
    if isinstance(value, dict):
        return {
            key: _masked(item) if is_id_number_field(str(key)) else mask_claims(item) for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_claims(item) for item in value]
    return value


def _masked(value: Any) -> Any:
    """Everything under an identity-number member, masked whatever its JSON type: strings and numbers
    become masked strings, lists and objects are masked member by member, ``null`` stays ``null``."""
    if value is None:
        return None
    if isinstance(value, str):
        return mask_id_number(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    return mask_id_number(str(value).lower())  # numbers and booleans: the digits are the number


def mask_check(document: dict[str, Any]) -> dict[str, Any]:
    """A check document with the applicant's and the claims' identity numbers masked."""
    masked = dict(document)
    if isinstance(document.get("applicant"), dict):
        masked["applicant"] = mask_claims(document["applicant"])
    if isinstance(document.get("claims"), dict):
        masked["claims"] = mask_claims(document["claims"])
    return masked
