"""Idempotency-Key: a retried request with the same key and the same body gets the first answer again —
the same decision, decision_id included — and decides and logs nothing new; the same key with another body
is refused (422), since the key then names two different requests.

Keys are scoped by endpoint and client (the API key's digest, when keys are on), so two clients never see
each other's answers. The check runs around the whole unit of work: the decision (log row included) and the
remembered answer commit in one transaction, so a crash leaves neither or both, and of two concurrent
requests with one key one decides and the other gets its answer.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import peewee

from ..store import database, idempotency
from .errors import ServiceError

HEADER = "Idempotency-Key"
# Printable ASCII without spaces, as the IETF draft's and the usual clients' keys (UUIDs, hashes) are, and without
# commas: a server joins two Idempotency-Key headers into one value with a comma ("g1,g2"), which would otherwise be
# taken for a third key.
USABLE_KEY = re.compile(r"[\x21-\x2b\x2d-\x7e]{1,255}")
USABLE = "1 to 255 printable ASCII characters without spaces or commas"


@dataclass(frozen=True)
class Answer:
    """The response bytes and whether they are a remembered answer (a replay) rather than a new one."""

    text: bytes
    replayed: bool


def fingerprint(request: Any) -> str:
    """sha256 of the request as JSON with sorted keys and no spacing: the same request however a client
    orders or spaces it."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def checked_key(key: str | None, argument: str | None = None) -> str | None:
    """The key as given, None when absent; raises ServiceError (422 on the header, or on `argument`, the
    name a Python caller passed it by) when it is unusable."""
    if key is None:
        return None
    if not isinstance(key, str) or not USABLE_KEY.fullmatch(key):
        name, path = _named(argument)
        # Each caller is told in its own terms: a header (sent once), or a Python argument (a str).
        usable = f"a str of {USABLE}, not {type(key).__name__}" if argument and not isinstance(key, str) else \
            f"a str of {USABLE}" if argument else f"{USABLE} (one {HEADER} header)"
        raise ServiceError(422, f"invalid request: {name}: {usable}", {path: [f"must be {usable}"]})
    return key


def once(scope: str, key: str | None, request: Any, produce: Callable[[], bytes], *,
         argument: str | None = None) -> Answer:
    """`produce()`'s answer, given once per key: the remembered one for a repeat with the same `request`.

    `scope` names the endpoint and client; `request` is everything that shapes the answer (body and
    options). Without a key, produce() runs as usual. Raises ServiceError 422 when the key was used with
    another request, and whatever produce() raises (nothing is then remembered). Errors name the
    Idempotency-Key header, or `argument` for a key given by a Python caller.
    """
    key = checked_key(key, argument)
    if key is None:
        return Answer(produce(), replayed=False)
    print_ = fingerprint(request)
    remembered = idempotency.find(scope, key)
    if remembered is not None:
        return _replay(remembered, print_, argument)
    try:
        with write_transaction():
            text = produce()
            idempotency.remember(scope, key, print_, text, datetime.now(UTC))
    except peewee.IntegrityError:
        # A concurrent request with this key committed first; everything done here was rolled back.
        remembered = idempotency.find(scope, key)
        if remembered is None:
            raise
        return _replay(remembered, print_, argument)
    return Answer(text, replayed=False)


def write_transaction() -> Any:
    """One transaction for a unit of work that reads and then writes (a decision and its remembered answer, a
    batch's decisions); within a transaction already open, a savepoint of it (store.database.write_transaction:
    on SQLite the write lock is taken at BEGIN)."""
    return database.write_transaction()


def _named(argument: str | None) -> tuple[str, str]:
    """How an error names the key: (name in the message, field path): the header, or the Python argument."""
    return (argument, argument) if argument else (HEADER, f"headers.{HEADER}")


def _replay(remembered: idempotency.Remembered, print_: str, argument: str | None) -> Answer:
    if remembered.fingerprint != print_:
        name, path = _named(argument)
        raise ServiceError(422, f"invalid request: {name} was already used with another request "
                                f"(first at {remembered.created_at.isoformat()}); use a new key for a new request",
                           # The fingerprint covers the body and the options (a decision's explain), so say both.
                           {path: ["already used with another request (another body or other options)"]})
    return Answer(remembered.response, replayed=True)
