"""idempotency_key: the answer given to a request sent with an Idempotency-Key, so a retry gets it again.

One row per (scope, key): the scope is the endpoint and the client (see service.idempotency), the
fingerprint the sha256 of the request as sent, the response the exact JSON bytes answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import peewee

from .database import StoredModel, loaded_time, stored_time


class IdempotencyRecord(StoredModel):
    """The answer to the first request with this key in this scope (naive UTC times)."""

    scope = peewee.CharField(max_length=128)
    key = peewee.CharField(max_length=255)
    fingerprint = peewee.CharField(max_length=64)
    response = peewee.TextField()
    created_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "idempotency_key"
        indexes = ((("scope", "key"), True),)


@dataclass(frozen=True)
class Remembered:
    """A stored answer: the request's fingerprint, the response bytes, and when it was first answered (UTC)."""

    fingerprint: str
    response: bytes
    created_at: datetime


def find(scope: str, key: str) -> Remembered | None:
    """The answer remembered for the key in this scope, or None."""
    row = IdempotencyRecord.get_or_none((IdempotencyRecord.scope == scope) & (IdempotencyRecord.key == key))
    if row is None:
        return None
    return Remembered(row.fingerprint, row.response.encode(), loaded_time(row.created_at))


def remember(scope: str, key: str, fingerprint: str, response: bytes, at: datetime) -> None:
    """Store the answer (in the caller's transaction, if any); raises peewee.IntegrityError when the key
    is already taken in this scope — a concurrent request with the same key got there first."""
    IdempotencyRecord.insert(scope=scope, key=key, fingerprint=fingerprint, response=response.decode(),
                             created_at=stored_time(at)).execute()

