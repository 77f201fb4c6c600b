"""The one error the service raises for a request it refuses, in the shape every caller shows.

`ServiceError` carries exactly the JSON error body of the HTTP API — `{code, status, message, errors}`,
`errors` mapping a field path ("send.template.category", "requests.0.send.at") to its messages — so the
web layer turns it into its 4xx answer unchanged and a Python caller reads the same fields.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from ..contract.parsing import BodyRefused, bounded_errors, error_message, flatten_errors
from ..store import database


class ServiceError(Exception):
    """A request the service refuses: `code` (the HTTP status, 400/404/413/422, or 503 when the storage is
    unavailable), `status` (its name), `message` (one line), `errors` ({field path: [messages]}, at most
    MAX_ERRORS fields) and `retry_after` (seconds to wait before retrying, the HTTP Retry-After header; None
    when a retry of the same request cannot succeed)."""

    def __init__(self, code: int, message: str, errors: dict[str, list[str]] | None = None, *,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = HTTPStatus(code).phrase
        self.message = message
        self.errors = bounded_errors(errors or {})
        self.retry_after = retry_after

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

    @classmethod
    def not_found(cls, argument: str, message: str, detail: str) -> ServiceError:
        """404: nothing is known by the value of `argument` (an id a keyword argument or a path names): the
        one-line `message`, and `detail` as errors {argument: [detail]}. The HTTP API names a path parameter
        path.<argument> (web.api.PolicyApi.handle_service_error)."""
        return cls(404, message, {argument: [detail]})

    @classmethod
    def unavailable(cls, fault: Exception) -> ServiceError:
        """A storage fault (store.database.STORAGE_FAULTS: the database unreachable, read-only or full) as
        the HTTP API answers it: 503, retry after RETRY_AFTER_SECONDS; the connection is dropped, so the
        next call reconnects once the storage is back."""
        return cls(503, database.unavailable_message(fault), retry_after=database.RETRY_AFTER_SECONDS)

    def __repr__(self) -> str:
        return f"ServiceError({self.code}, {self.message!r}, {self.errors!r})"


def quoted(value: str, limit: int = 64) -> str:
    """A caller's value quoted in a message, cut to `limit` characters with its length said (a 10,000-character
    id is not echoed whole)."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}… ({len(value):,} characters)"
