"""Personal data masking (API.md §4): identity numbers shown in full only to those who may see them."""

from __future__ import annotations

from typing import Any

from domain.identifiers import mask_id_number


def mask_claims(value: Any) -> Any:
    """Masks every string field whose name ends in ``id_number``, at any depth."""
    if isinstance(value, dict):
        return {
            key: mask_id_number(item) if key.endswith("id_number") and isinstance(item, str) else mask_claims(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_claims(item) for item in value]
    return value


def mask_check(document: dict[str, Any]) -> dict[str, Any]:
    """A check document with the applicant's and the claims' identity numbers masked."""
    masked = dict(document)
    if isinstance(document.get("applicant"), dict):
        masked["applicant"] = mask_claims(document["applicant"])
    if isinstance(document.get("claims"), dict):
        masked["claims"] = mask_claims(document["claims"])
    return masked
