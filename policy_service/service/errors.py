"""The one error the service raises for a request it refuses, in the shape every caller shows.

`ServiceError` carries exactly the JSON error body of the HTTP API — `{code, status, message, errors}`,
`errors` mapping a field path ("send.template.category", "requests.0.send.at") to its messages — so the
web layer turns it into its 4xx answer unchanged and a Python caller reads the same fields.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ..contract.parsing import BodyRefused, bounded_errors, error_message, flatten_errors


class ServiceError(Exception):
    """A request the service refuses: `code` (the HTTP status, 400/404/413/422), `status` (its name),
    `message` (one line) and `errors` ({field path: [messages]}, at most MAX_ERRORS fields)."""

    def __init__(self, code: int, message: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = HTTPStatus(code).phrase
        self.message = message
        self.errors = bounded_errors(errors or {})

    def as_dict(self) -> dict[str, Any]:
        """The error body the HTTP API answers: {code, status, message, errors}."""
        return {"code": self.code, "status": self.status, "message": self.message, "errors": self.errors}

    @classmethod
    def invalid(cls, messages: Any, code: int = 422) -> ServiceError:
        """A request refused by its schema: marshmallow's nested messages as field paths."""
        flat = flatten_errors(messages)
        return cls(code, error_message(flat), flat)

    @classmethod
    def refused(cls, refused: BodyRefused) -> ServiceError:
        """A body refused before deserialization (contract.parsing): 400 or 422 as it says."""
        return cls(refused.status, refused.message, refused.errors)

    def __repr__(self) -> str:
        return f"ServiceError({self.code}, {self.message!r}, {self.errors!r})"
