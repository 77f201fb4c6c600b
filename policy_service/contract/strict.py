"""marshmallow fields (and the request schemas' base) that accept only the JSON type they name, and a pattern
validator that accepts only a whole match.

marshmallow's Boolean, even given `truthy={True}, falsy={False}`, accepts 1, 0, 1.0 and 0.0: Python's
`1 in {True}` is true (1 == True and both hash alike). A policy flag (opted_in, business_app, a status's
`pricing.billable`) must be a JSON boolean, so a 1 is refused like "yes" is.

marshmallow's Regexp matches with re.match, where `$` also matches before a final newline: `^\\+[0-9]{7,15}$`
accepted "+5511987654321\n" as a phone number. `Pattern` requires the whole value to match.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate


class StrictBoolean(fields.Boolean):
    """A JSON boolean only (true/false); anything else, 1 and 0 included, is marshmallow's "Not a valid boolean."."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(truthy={True}, falsy={False}, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if type(value) is not bool:
            raise self.make_error("invalid", input=value)
        return value


class RequestSchema(Schema):
    """A request object's schema: anything but a JSON object where one belongs (an array body, `"send": "x"`)
    is "must be a JSON object" at that path (`_schema` for the body itself), not marshmallow's "Invalid input
    type."."""

    error_messages = {"type": "must be a JSON object"}


class Pattern(validate.Regexp):
    """validate.Regexp requiring the whole value to match (re.fullmatch): a `$` at the end of the pattern no longer
    lets a final newline through. The pattern is documented as given (OpenAPI `pattern`, an ECMAScript regex, where
    `$` ends the value)."""

    def __call__(self, value: Any) -> Any:
        if self.regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value
