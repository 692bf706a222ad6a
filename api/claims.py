"""JSON Schema checks of category claims, with the ``jsonschema`` library."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema.validators import validator_for
from referencing.exceptions import Unresolvable

from domain.errors import CategoryUnavailable, InvalidClaims, InvalidInput


class JsonSchemaClaims:
    """Implements domain.ports.ClaimsValidator."""

    def check_schema(self, schema: dict[str, Any]) -> None:
        if not isinstance(schema, dict):
            raise InvalidInput("claims_schema must be a JSON Schema object")
        try:
            validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as error:
            raise InvalidInput(f"claims_schema is no valid JSON Schema: {error.message}") from None
        try:  # a trial run: a $ref that resolves nowhere (or only to itself) fails here, not on every check
            list(validator_for(schema)(schema).iter_errors({}))
        except (Unresolvable, RecursionError):
            raise InvalidInput("claims_schema has a $ref that does not resolve within it") from None

    def validate(self, schema: dict[str, Any], claims: dict[str, Any]) -> None:
        validator = validator_for(schema)(schema)
        try:
            error = jsonschema.exceptions.best_match(validator.iter_errors(claims))
        except (Unresolvable, RecursionError):  # a nested $ref the trial run at creation could not reach
            raise CategoryUnavailable("the category's claims_schema cannot be applied") from None
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            raise InvalidClaims(f"claims at {where}: {error.message}")
