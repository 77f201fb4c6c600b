"""Meta's webhook payloads as they arrived, stored before anything reads them, and the claims that process them.

A payload is stored in one write (`store`) right after its signature is checked, before the request is answered:
once the answer has left, the payload is in the database, so a crash, a kill -9 or a full disk later loses
nothing. Its `digest` (sha256 of the body) is unique, so Meta's retry of the same body adds no row.

Processing (service.ingest) claims a pending payload with a lease (`claim`: one conditional UPDATE, safe across
threads, workers and instances, on SQLite and PostgreSQL alike), stores its events batch by batch, each batch in
one transaction with the payload's `progress` (events done) and a renewed lease (`advance`), and marks it done
(`finish`). A worker that dies mid-way leaves the payload pending with its progress; when the lease runs out,
any processor claims it and goes on from there. A payload that fails `max_attempts` times is `failed`, kept,
and counted in the backlog until `policy-service webhooks process --retry-failed` succeeds.

Times are stored as naive UTC (database.stored_time).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee

from .database import StoredModel, loaded_time, stored_time

PENDING, DONE, FAILED = "pending", "done", "failed"
MAX_ID = 2**63 - 1  # the largest id either database can hold (a 64-bit signed integer)


class RawWebhook(StoredModel):
    """One signed webhook payload as Meta sent it, and how far its processing got."""

    received_at = peewee.DateTimeField()
    digest = peewee.CharField(max_length=64, unique=True)  # sha256 hex of the body: a retry adds no row
    body = peewee.TextField()  # the body as received (UTF-8, checked before storing)
    status = peewee.CharField(max_length=8, default=PENDING)  # pending | done | failed
    attempts = peewee.IntegerField(default=0)  # claims so far
    progress = peewee.IntegerField(default=0)  # events already stored (committed batches)
    claimed_until = peewee.DateTimeField(null=True)  # a processor's lease; another may claim after it
    error = peewee.TextField(null=True)  # why the last attempt failed
    processed_at = peewee.DateTimeField(null=True)
    result = peewee.TextField(null=True)  # the receipt once done (JSON): counts and skipped parts

    class Meta:
        table_name = "raw_webhook"
        indexes = ((("status", "id"), False),)


@dataclass(frozen=True)
class Stored:
    """A payload stored (or found already stored: `duplicate`)."""

    id: int
    status: str
    duplicate: bool
    received_at: datetime


def digest(body: bytes) -> str:
    """The sha256 hex digest a body is deduplicated by."""
    return hashlib.sha256(body).hexdigest()


def store(body: bytes, received_at: datetime | None = None) -> Stored:
    """Store a payload in one write; the same body again adds nothing and returns the first one (`duplicate`)."""
    key = digest(body)
    moment = received_at or datetime.now(UTC)
    inserted = RawWebhook.insert(received_at=stored_time(moment), digest=key, body=body.decode("utf-8"),
                                 status=PENDING).on_conflict_ignore().as_rowcount().execute()
    row = RawWebhook.select(RawWebhook.id, RawWebhook.status, RawWebhook.received_at) \
        .where(RawWebhook.digest == key).get()
    return Stored(row.id, row.status, inserted != 1, loaded_time(row.received_at))


@dataclass(frozen=True)
class Claim:
    """A payload claimed for processing: its body, where processing resumes, and the lease's end."""

    id: int
    body: bytes
    received_at: datetime
    progress: int
    attempts: int
    until: datetime
    partial: dict[str, Any]  # counts of the events stored before `progress` (by an earlier attempt)


def claim(raw_id: int, lease: timedelta, now: datetime | None = None, *, retry_failed: bool = False
          ) -> Claim | None:
    """Take a payload for processing until `now + lease`; None when it is done, or held by a live lease.

    One conditional UPDATE: of processors racing for one payload, exactly one gets rowcount 1.
    """
    now = now or datetime.now(UTC)
    statuses = (PENDING, FAILED) if retry_failed else (PENDING,)
    until = now + lease
    claimed = RawWebhook.update(claimed_until=stored_time(until), attempts=RawWebhook.attempts + 1,
                                status=PENDING).where(
        (RawWebhook.id == raw_id) & RawWebhook.status.in_(statuses)
        & (RawWebhook.claimed_until.is_null() | (RawWebhook.claimed_until <= stored_time(now)))
    ).execute()
    if claimed != 1:
        return None
    row = RawWebhook.get_by_id(raw_id)
    partial = json.loads(row.result) if row.result and row.progress else {}
    return Claim(row.id, row.body.encode("utf-8"), loaded_time(row.received_at), row.progress, row.attempts, until,
                 partial)


def claimable(limit: int, now: datetime | None = None, *, retry_failed: bool = False) -> list[int]:
    """Ids of pending payloads no live lease holds (oldest first), at most `limit`."""
    now = now or datetime.now(UTC)
    statuses = (PENDING, FAILED) if retry_failed else (PENDING,)
    rows = RawWebhook.select(RawWebhook.id).where(
        RawWebhook.status.in_(statuses)
        & (RawWebhook.claimed_until.is_null() | (RawWebhook.claimed_until <= stored_time(now)))
    ).order_by(RawWebhook.id).limit(limit)
    return [row.id for row in rows]


def advance(claimed: Claim, progress: int, counts: dict[str, Any], lease: timedelta, now: datetime | None = None
            ) -> Claim:
    """Record that `progress` events are stored (with their counts so far) and renew the lease; call inside the
    batch's transaction, so the progress commits with the events. Raises LeaseLost when another processor took
    the payload over."""
    now = now or datetime.now(UTC)
    until = now + lease
    updated = RawWebhook.update(progress=progress, claimed_until=stored_time(until),
                                result=json.dumps(counts, sort_keys=True)).where(
        (RawWebhook.id == claimed.id) & (RawWebhook.claimed_until == stored_time(claimed.until))).execute()
    if updated != 1:
        raise LeaseLost(f"webhook payload {claimed.id} was claimed by another processor")
    return Claim(claimed.id, claimed.body, claimed.received_at, progress, claimed.attempts, until, dict(counts))


class LeaseLost(RuntimeError):
    """The lease ran out and another processor claimed the payload: this one must stop (its batch rolls back)."""


def finish(claimed: Claim, result: dict[str, Any], now: datetime | None = None) -> bool:
    """Mark a claimed payload done with its receipt; False when the lease was lost meanwhile."""
    now = now or datetime.now(UTC)
    return RawWebhook.update(status=DONE, claimed_until=None, processed_at=stored_time(now), error=None,
                             result=json.dumps(result, sort_keys=True)).where(
        (RawWebhook.id == claimed.id) & (RawWebhook.claimed_until == stored_time(claimed.until))).execute() == 1


def fail(claimed: Claim, error: str, max_attempts: int, retry_after: timedelta, now: datetime | None = None) -> str:
    """Release a claim after an error: pending again (claimable after `retry_after`), or failed after
    `max_attempts` claims. Returns the status it was left in."""
    now = now or datetime.now(UTC)
    status = FAILED if claimed.attempts >= max_attempts else PENDING
    retry_at = None if status == FAILED else stored_time(now + retry_after)
    RawWebhook.update(status=status, claimed_until=retry_at, error=error[:2000]).where(
        (RawWebhook.id == claimed.id) & (RawWebhook.claimed_until == stored_time(claimed.until))).execute()
    return status


def defer(claimed: Claim, reason: str, retry_after: timedelta, now: datetime | None = None) -> bool:
    """Release a claim that met contention (the database busy), not a fault: pending again, claimable after
    `retry_after`, its attempt given back (so contention alone never makes a payload `failed`), `reason` kept as its
    error. False when the lease was lost meanwhile."""
    now = now or datetime.now(UTC)
    return RawWebhook.update(status=PENDING, claimed_until=stored_time(now + retry_after), error=reason[:2000],
                             attempts=RawWebhook.attempts - 1).where(
        (RawWebhook.id == claimed.id) & (RawWebhook.claimed_until == stored_time(claimed.until))).execute() == 1


def receipt(raw_id: int) -> dict[str, Any] | None:
    """A stored payload's receipt, every key always present: id, status, duplicate (False: set by the receiver),
    received_at, attempts, progress, error, processed_at, and the counts new, known, linked (so far, while
    pending; None before any batch), skipped and skipped_not_listed (None until done). None: no such payload."""
    if not 0 < raw_id <= MAX_ID:
        # Ids are 64-bit integers (SQLite, PostgreSQL bigserial): a larger one names no payload, and the driver
        # would raise OverflowError converting it.
        return None
    row = RawWebhook.select(RawWebhook.id, RawWebhook.status, RawWebhook.received_at, RawWebhook.attempts,
                            RawWebhook.progress, RawWebhook.error, RawWebhook.processed_at, RawWebhook.result) \
        .where(RawWebhook.id == raw_id).first()
    if row is None:
        return None
    result = json.loads(row.result) if row.result else {}
    return {
        "id": row.id, "status": row.status, "duplicate": False,
        "received_at": loaded_time(row.received_at).isoformat(), "attempts": row.attempts,
        "progress": row.progress, "error": row.error,
        "processed_at": loaded_time(row.processed_at).isoformat() if row.processed_at else None,
        **{key: result.get(key) for key in ("new", "known", "linked", "skipped")},
        "skipped_not_listed": result.get("skipped_not_listed", 0) if row.status == DONE else None,
    }


def backlog(now: datetime | None = None) -> dict[str, Any]:
    """Payloads not yet processed: how many pending and failed, and the age in seconds of the oldest pending one."""
    now = now or datetime.now(UTC)
    counts = dict(RawWebhook.select(RawWebhook.status, peewee.fn.COUNT(RawWebhook.id))
                  .where(RawWebhook.status.in_((PENDING, FAILED))).group_by(RawWebhook.status).tuples())
    oldest = RawWebhook.select(peewee.fn.MIN(RawWebhook.received_at)).where(RawWebhook.status == PENDING).scalar()
    age = None if oldest is None else max(0.0, (now - loaded_time(_as_datetime(oldest))).total_seconds())
    return {"pending": counts.get(PENDING, 0), "failed": counts.get(FAILED, 0), "oldest_pending_seconds": age}


def _as_datetime(value: Any) -> datetime:
    # An aggregate over a DateTimeField comes back as text on SQLite.
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
