"""marshmallow fields (and the request schemas' base) that accept only the JSON type they name.

marshmallow's Boolean, even given `truthy={True}, falsy={False}`, accepts 1, 0, 1.0 and 0.0: Python's
`1 in {True}` is true (1 == True and both hash alike). A policy flag (opted_in, business_app, a status's
`pricing.billable`) must be a JSON boolean, so a 1 is refused like "yes" is.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


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
