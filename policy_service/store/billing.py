"""What a business is billed: its WABA's billing currency, the month's billed volume from stored statuses, and
Meta's own pricing analytics (the bill, imported as Meta returns it).

- `WabaCurrency`: the currency a WABA is billed in. Meta fixes it when the WABA is created (the WABA's
  `currency` field in the Graph API) and never changes it, so it is set once: setting it again to the same
  code is a no-op, to another code an error (`CurrencyAlreadySet`).
- `count_billed`: billable messages delivered in a span, by phone numbers, pricing categories and
  recipient countries — the volume that decides a volume tier (whatsapp-rules.md PMP-5: charged
  messages only, per market and category, per calendar month), from maintained counters (store.counters).
- `tier_updates`: Meta's own word on a tier, the account_update VOLUME_BASED_PRICING_TIER_UPDATE events stored
  with the account's events (a tier per market, category and month, reached over the business portfolio).
- `PricingPoint`: one data point of `GET /<WABA_ID>?fields=pricing_analytics...`, keyed by WABA, bucket
  (start, end) and dimensions, so importing the same response twice changes nothing (`import_points`).

Times are stored as naive UTC (database.stored_time); costs as decimal strings (never floats).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import peewee

from ..core.vocabulary import DELIVERED_STATUSES, every_spelling
from . import counters
from .business_state import AccountEvent, MessageBilling
from .database import StoredModel, loaded_time, stored_time, write_transaction

# The account_update event by which Meta says a WABA moved to a volume tier (from 2025-10-01).
TIER_UPDATE = "VOLUME_BASED_PRICING_TIER_UPDATE"


def tier_updates(waba_id: str, since: datetime, until: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """The WABA's volume tier updates received in [since, until], oldest first: (received at, `volume_tier_info` as
    Meta sent it: effective_month, pricing_category, region, tier "first:last", tier_update_time). An event without
    a `volume_tier_info` object is left out."""
    rows = (AccountEvent.select(AccountEvent.at, AccountEvent.payload)
            .where((AccountEvent.waba_id == waba_id) & (AccountEvent.event == TIER_UPDATE)
                   & (AccountEvent.at >= stored_time(since)) & (AccountEvent.at <= stored_time(until)))
            .order_by(AccountEvent.at, AccountEvent.id))
    found = []
    for row in rows:
        info = json.loads(row.payload).get("volume_tier_info")
        if isinstance(info, dict):
            found.append((loaded_time(row.at), info))
    return found


class CurrencyAlreadySet(ValueError):
    """The WABA's billing currency is already set to another code (Meta never changes it)."""


class WabaCurrency(StoredModel):
    """The billing currency of a WABA (ISO 4217), set once, with when and how it was set."""

    waba_id = peewee.CharField(max_length=64, unique=True)
    currency = peewee.CharField(max_length=3)
    set_at = peewee.DateTimeField()
    source = peewee.CharField(max_length=128)  # "API" or "CLI", as the caller says

    class Meta:
        table_name = "waba_currency"


@dataclass(frozen=True)
class Currency:
    """A WABA's billing currency and where it came from."""

    waba_id: str
    currency: str
    set_at: datetime
    source: str

    @property
    def describe(self) -> str:
        """The sentence a trace uses: whose currency, set when and how."""
        return f"billing currency of WABA {self.waba_id}, set via {self.source} at {self.set_at.isoformat()}"


def set_currency(waba_id: str, currency: str, source: str, at: datetime | None = None) -> tuple[Currency, bool]:
    """Set a WABA's billing currency once; returns it and whether it was new. Raises CurrencyAlreadySet
    when another currency is set (the same one again is a no-op)."""
    new = False
    row = WabaCurrency.get_or_none(WabaCurrency.waba_id == waba_id)
    if row is None:
        try:
            with WabaCurrency._meta.database.atomic():
                row = WabaCurrency.create(waba_id=waba_id, currency=currency, source=source,
                                          set_at=stored_time(at or datetime.now(UTC)))
                new = True
        except peewee.IntegrityError:  # set by a concurrent request a moment ago
            row = WabaCurrency.get(WabaCurrency.waba_id == waba_id)
    known = Currency(row.waba_id, row.currency, loaded_time(row.set_at), row.source)
    if row.currency != currency:
        raise CurrencyAlreadySet(f"WABA {waba_id} is billed in {row.currency} (set via {row.source} at "
                                 f"{known.set_at.isoformat()}); Meta never changes a WABA's currency")
    return known, new


def replace_currency(waba_id: str, currency: str, source: str, at: datetime | None = None) -> Currency:
    """Overwrite a WABA's stored currency: only for one that was never a currency (stored before codes were checked
    against ISO 4217), which Meta cannot have set. The caller says why in `source` (at most 128 characters)."""
    WabaCurrency.update(currency=currency, source=source[:128], set_at=stored_time(at or datetime.now(UTC))).where(
        WabaCurrency.waba_id == waba_id).execute()
    known = currency_of(waba_id)
    assert known is not None
    return known


def wabas_billed_in(currency: str) -> list[str]:
    """The WABAs whose billing currency is `currency`, sorted."""
    return sorted(row.waba_id for row in WabaCurrency.select(WabaCurrency.waba_id).where(
        WabaCurrency.currency == currency))


def currency_of(waba_id: str) -> Currency | None:
    """The WABA's billing currency, or None when it was never set."""
    row = WabaCurrency.get_or_none(WabaCurrency.waba_id == waba_id)
    return None if row is None else Currency(row.waba_id, row.currency, loaded_time(row.set_at), row.source)


def count_billed(*, phone_number_ids: tuple[str, ...], since: datetime, until: datetime,
                 categories: tuple[str, ...], countries: tuple[str, ...] = (),
                 except_countries: tuple[str, ...] = ()) -> int:
    """Billable messages delivered in [since, until) from these numbers in these pricing categories to
    recipients in `countries` (or, for a market of every other country, not in `except_countries`).

    Billable: the stored `pricing.type` is "regular" (Meta's charged type; the free types are
    free_customer_service, free_entry_point, free_group_customer_service). Delivered: the row's status is
    delivered, read or played. The time is the message's earliest status. Whole buckets (a minute to a day) are
    read from the maintained counters (store.counters), the partial stretches at the span's ends (under a minute each)
    row by row through the (phone_number_id, market, category, at) index.
    """
    categories = every_spelling(categories)  # a row keeps the spelling Meta gave (authentication_international)
    parts = counters.split(stored_time(since), stored_time(until))
    return sum(_billed_rows(phone_number_ids, first, end, categories, countries, except_countries)
               for first, end in parts.rows) + \
        counters.total("billed", parts.buckets, phone_number_ids=phone_number_ids, categories=categories,
                       markets=countries, except_markets=except_countries)


def _billed_rows(phone_number_ids: tuple[str, ...], since: datetime, until: datetime, categories: tuple[str, ...],
                 countries: tuple[str, ...], except_countries: tuple[str, ...]) -> int:
    """count_billed read row by row over [since, until) (naive UTC)."""
    rows = MessageBilling.select().where(
        MessageBilling.phone_number_id.in_(phone_number_ids) & MessageBilling.category.in_(categories)
        & (MessageBilling.at >= since) & (MessageBilling.at < until)
        & MessageBilling.status.in_(tuple(DELIVERED_STATUSES)) & MessageBilling.pricing.contains(counters.REGULAR))
    if countries:
        rows = rows.where(MessageBilling.market.in_(countries))
    if except_countries:
        rows = rows.where(MessageBilling.market.not_in(except_countries))
    return rows.count()


class PricingPoint(StoredModel):
    """One data point of Meta's pricing_analytics for a WABA: a bucket, its dimensions, volume and cost."""

    waba_id = peewee.CharField(max_length=64)
    start = peewee.DateTimeField()
    end = peewee.DateTimeField()
    country = peewee.CharField(max_length=8)
    phone_number = peewee.CharField(max_length=32)
    pricing_category = peewee.CharField(max_length=48)
    pricing_type = peewee.CharField(max_length=48)
    tier = peewee.CharField(max_length=48)
    volume = peewee.BigIntegerField()
    cost = peewee.CharField(max_length=40)  # a decimal string, in the WABA's currency
    imported_at = peewee.DateTimeField()

    class Meta:
        table_name = "pricing_point"
        indexes = ((("waba_id", "start", "end", "country", "phone_number", "pricing_category", "pricing_type",
                     "tier"), True),)


@dataclass(frozen=True)
class Point:
    """A pricing_analytics data point as Meta returns it (dimensions absent in the response are "")."""

    start: datetime
    end: datetime
    country: str
    phone_number: str
    pricing_category: str
    pricing_type: str
    tier: str
    volume: int
    cost: Decimal


def import_points(waba_id: str, points: list[Point], at: datetime | None = None) -> tuple[int, int, int]:
    """Store the points of one response: (new, updated, unchanged). A point already stored for the same
    WABA, bucket and dimensions is replaced by the newer figures (Meta revises recent buckets)."""
    new = updated = unchanged = 0
    now = stored_time(at or datetime.now(UTC))
    database = PricingPoint._meta.database
    # Reads each point before writing it: the write lock is taken first (write_transaction).
    with write_transaction(database):
        for point in points:
            key = dict(waba_id=waba_id, start=stored_time(point.start), end=stored_time(point.end),
                       country=point.country, phone_number=point.phone_number,
                       pricing_category=point.pricing_category, pricing_type=point.pricing_type, tier=point.tier)
            row = PricingPoint.get_or_none(*[getattr(PricingPoint, k) == v for k, v in key.items()])
            if row is None:
                PricingPoint.create(**key, volume=point.volume, cost=str(point.cost), imported_at=now)
                new += 1
            elif row.volume != point.volume or Decimal(row.cost) != point.cost:
                row.volume, row.cost, row.imported_at = point.volume, str(point.cost), now
                row.save()
                updated += 1
            else:
                unchanged += 1
    return new, updated, unchanged


def points(*, since: datetime, until: datetime, waba_id: str | None = None) -> list[tuple[str, Point]]:
    """Stored points whose bucket starts in [since, until), as (waba_id, point), oldest first."""
    rows = PricingPoint.select().where((PricingPoint.start >= stored_time(since))
                                       & (PricingPoint.start < stored_time(until)))
    if waba_id is not None:
        rows = rows.where(PricingPoint.waba_id == waba_id)
    return [(row.waba_id, Point(loaded_time(row.start), loaded_time(row.end), row.country, row.phone_number,
                                row.pricing_category, row.pricing_type, row.tier, row.volume, Decimal(row.cost)))
            for row in rows.order_by(PricingPoint.start, PricingPoint.id)]
