"""Counters maintained over the stored billing rows (message_billing), so that a count a decision needs costs
the same however many messages the month holds (issue 25).

- `BillingCounter`: per phone number, pricing category, market (the recipient's ISO 3166 region) and UTC bucket,
  how many of the rows whose time falls in the bucket are not failed (`messages`, what
  business_state.count_messages counts) and how many are billable and delivered (`billed`, what
  billing.count_billed counts: `pricing.type` regular, status delivered, read or played). Buckets come in four
  sizes (`SPANS`: a UTC day, an hour, 15 minutes, a minute); each row is counted once in each size. A span
  [since, until) splits (`split`) into at most seven runs of whole buckets (at most 14 + 3 + 23 + days + 23 + 3
  + 14 bucket rows per counter key), read from this table, and at most two stretches shorter than a minute at
  its ends (under two minutes in all), counted from message_billing by an indexed query. Every time zone's UTC
  offset is a multiple of 15 minutes, so a calendar month in the WABA's zone starts on a bucket edge: only its
  end (the send's time) is a partial stretch, under a minute of the number's rows.
- `ReachedUser`: per phone number, user (wa_id) and pricing category, the latest time of a row not failed. The
  users reached in a span are those whose latest time is at or after its start: the messaging limit's count
  reads users, not messages (business_state.count_users_reached_outside_window, which counts a user whose rows
  carry both of Meta's wa_id forms of their number once: core.identities.wa_id_key).

`follow` applies a row's change (its state before and after) in the transaction that writes the row, so the
counters follow every transition exactly and idempotently: statuses in any order or repeated, a later status
turning a row failed or delivered, pricing and category arriving late, the earliest status moving the row's time.
A row's time is its earliest status (naive UTC, store.database.stored_time). Counter rows that fall to zero are
kept (a later status may raise them again); business_state.rebuild_counters drops them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import peewee

from ..core.vocabulary import DELIVERED_STATUSES
from .database import StoredModel

# Bucket sizes in seconds, largest first, each a multiple of the next and all aligned on UTC midnight.
SPANS = (86_400, 3_600, 900, 60)
FINEST = SPANS[-1]
EPOCH = datetime(1970, 1, 1)
# What makes a row billable, as count_billed has always read it (a case-insensitive substring of the stored
# pricing JSON, dumped with sort_keys): Meta's charged pricing type.
REGULAR = '"type": "regular"'
FAILED = "failed"


class BillingCounter(StoredModel):
    """Rows of message_billing in one UTC bucket, per phone number, pricing category and market."""

    phone_number_id = peewee.CharField(max_length=64)
    category = peewee.CharField(max_length=32)
    market = peewee.CharField(max_length=2)
    span = peewee.IntegerField()  # the bucket's size in seconds (SPANS)
    start = peewee.DateTimeField()  # the bucket's first instant, naive UTC
    messages = peewee.BigIntegerField(default=0)  # rows not failed
    billed = peewee.BigIntegerField(default=0)  # rows billable (pricing.type regular) and delivered

    class Meta:
        table_name = "billing_counter"
        indexes = ((("phone_number_id", "category", "span", "start", "market"), True),)


class ReachedUser(StoredModel):
    """The latest time a phone number sent a user a message priced in a category that did not fail."""

    phone_number_id = peewee.CharField(max_length=64)
    contact = peewee.CharField(max_length=64)
    category = peewee.CharField(max_length=32)
    last_at = peewee.DateTimeField()  # naive UTC

    class Meta:
        table_name = "reached_user"
        # The second serves the count of users reached in a span from the index alone (migration 028).
        indexes = ((("phone_number_id", "contact", "category"), True),
                   (("phone_number_id", "category", "last_at", "contact"), False))


@dataclass(frozen=True)
class RowState:
    """What the counters read of one message_billing row (times naive UTC, pricing the stored JSON text)."""

    phone_number_id: str
    contact: str
    market: str
    category: str | None
    at: datetime
    status: str
    pricing: str | None

    @property
    def counts(self) -> tuple[int, int]:
        """(messages, billed) this row adds to its buckets: (0, 0) without a pricing category."""
        if self.category is None:
            return 0, 0
        billed = self.status in DELIVERED_STATUSES and REGULAR in (self.pricing or "").lower()
        return int(self.status != FAILED), int(billed)

    @property
    def reach(self) -> tuple[tuple[str, str, str], datetime] | None:
        """((phone_number_id, contact, category), at) when the row reached its user; None if failed or unpriced."""
        if self.category is None or self.status == FAILED:
            return None
        return (self.phone_number_id, self.contact, self.category), self.at


def floor_time(at: datetime, span: int) -> datetime:
    """The start of the `span`-second UTC bucket holding `at` (naive UTC)."""
    elapsed = at - EPOCH
    return at - timedelta(seconds=(elapsed.days * 86_400 + elapsed.seconds) % span, microseconds=elapsed.microseconds)


def ceil_time(at: datetime, span: int) -> datetime:
    """The first bucket edge at or after `at` (naive UTC)."""
    start = floor_time(at, span)
    return start if start == at else start + timedelta(seconds=span)


@dataclass(frozen=True)
class Split:
    """A span [since, until) as stretches to count row by row (`rows`, each shorter than a minute, under two
    minutes together) and runs of whole buckets (`buckets`: (span seconds, first start, end), at most seven)."""

    rows: tuple[tuple[datetime, datetime], ...]
    buckets: tuple[tuple[int, datetime, datetime], ...]


def split(since: datetime, until: datetime) -> Split:
    """[since, until) (naive UTC) as whole buckets, the largest that fit, and the partial stretches at its ends."""
    first, last = ceil_time(since, FINEST), floor_time(until, FINEST)
    if first >= last:
        return Split(((since, until),) if since < until else (), ())
    rows = tuple(stretch for stretch in ((since, first), (last, until)) if stretch[0] < stretch[1])
    runs: list[tuple[int, datetime, datetime]] = []
    moment = first
    while moment < last:
        span = next(s for s in SPANS if floor_time(moment, s) == moment and moment + timedelta(seconds=s) <= last)
        end = moment + timedelta(seconds=span)
        if runs and runs[-1][0] == span:
            runs[-1] = (span, runs[-1][1], end)
        else:
            runs.append((span, moment, end))
        moment = end
    return Split(rows, tuple(runs))


def total(column: str, buckets: Iterable[tuple[int, datetime, datetime]], *,
          phone_number_ids: tuple[str, ...] | None, categories: tuple[str, ...],
          markets: tuple[str, ...] = (), except_markets: tuple[str, ...] = ()) -> int:
    """The sum of `column` ("messages" or "billed") over runs of whole buckets, for these phone numbers (None:
    every one), pricing categories and markets (or every market but `except_markets`)."""
    counted = getattr(BillingCounter, column)
    found = 0
    for span, first, end in buckets:
        rows = BillingCounter.select(peewee.fn.SUM(counted)).where(
            BillingCounter.category.in_(categories) & (BillingCounter.span == span)
            & (BillingCounter.start >= first) & (BillingCounter.start < end))
        if phone_number_ids is not None:
            rows = rows.where(BillingCounter.phone_number_id.in_(phone_number_ids))
        if markets:
            rows = rows.where(BillingCounter.market.in_(markets))
        if except_markets:
            rows = rows.where(BillingCounter.market.not_in(except_markets))
        found += int(rows.scalar() or 0)
    return found


def follow(changes: Iterable[tuple[RowState | None, RowState | None]],
           latest: Callable[[tuple[str, str, str]], datetime | None]) -> None:
    """Apply rows' changes, each (state before or None for a new row, state after or None for a deleted one),
    to the counters, in the caller's transaction.

    `latest(key)` answers, from the rows as they now are, the latest time of a row not failed for a
    (phone_number_id, contact, category); it is asked only when a key's latest time may have moved back
    (a row failed, changed category, moved earlier or went). Keys are written in sorted order, so two
    transactions never wait on each other's counters in opposite orders.
    """
    deltas: dict[tuple, list[int]] = {}
    grown: dict[tuple[str, str, str], datetime] = {}
    shrunk: set[tuple[str, str, str]] = set()
    for before, after in changes:
        for state, sign in ((before, -1), (after, 1)):
            if state is None:
                continue
            messages, billed = state.counts
            if messages or billed:
                for span in SPANS:
                    key = (state.phone_number_id, state.category, state.market, span, floor_time(state.at, span))
                    delta = deltas.setdefault(key, [0, 0])
                    delta[0] += sign * messages
                    delta[1] += sign * billed
        was, now = before and before.reach, after and after.reach
        if now is not None:
            grown[now[0]] = max(now[1], grown.get(now[0], now[1]))
        if was is not None and (now is None or now[0] != was[0] or now[1] < was[1]):
            shrunk.add(was[0])
    changed = [(key, delta) for key, delta in sorted(deltas.items()) if delta != [0, 0]]
    if changed:
        BillingCounter.insert_many([
            {"phone_number_id": key[0], "category": key[1], "market": key[2], "span": key[3], "start": key[4],
             "messages": delta[0], "billed": delta[1]} for key, delta in changed
        ]).on_conflict(
            conflict_target=[BillingCounter.phone_number_id, BillingCounter.category, BillingCounter.span,
                             BillingCounter.start, BillingCounter.market],
            update={BillingCounter.messages: BillingCounter.messages + peewee.EXCLUDED.messages,
                    BillingCounter.billed: BillingCounter.billed + peewee.EXCLUDED.billed}).execute()
    for key in sorted(grown.keys() | shrunk):
        if key in shrunk:
            _reached(key, latest(key))
        else:
            ReachedUser.insert(phone_number_id=key[0], contact=key[1], category=key[2], last_at=grown[key]).on_conflict(
                conflict_target=[ReachedUser.phone_number_id, ReachedUser.contact, ReachedUser.category],
                update={ReachedUser.last_at: peewee.Case(None, [(peewee.EXCLUDED.last_at > ReachedUser.last_at,
                                                                  peewee.EXCLUDED.last_at)], ReachedUser.last_at)},
            ).execute()


def _reached(key: tuple[str, str, str], last_at: datetime | None) -> None:
    """Set a key's latest time as read from the rows (delete it when no row reaches the user any more)."""
    where = ((ReachedUser.phone_number_id == key[0]) & (ReachedUser.contact == key[1])
             & (ReachedUser.category == key[2]))
    if last_at is None:
        ReachedUser.delete().where(where).execute()
        return
    ReachedUser.insert(phone_number_id=key[0], contact=key[1], category=key[2], last_at=last_at).on_conflict(
        conflict_target=[ReachedUser.phone_number_id, ReachedUser.contact, ReachedUser.category],
        update={ReachedUser.last_at: last_at}).execute()
