"""The cost report: Meta's own bill (pricing analytics), our card price of the delivered messages (stored
statuses priced by the rate cards) and what the decisions predicted, with each difference explained.

Meta: the imported `pricing_analytics` data points (store.billing) whose bucket starts in the period,
of WABAs billed in the report's currency (or with no currency set, said in `notes`): volume of the
REGULAR (charged) points and their cost, per month, Meta's category and country.

Billed: every delivered outbound message whose stored `pricing` says `billable: true`, priced with
the card for the report's currency in force on its day (UTC), the recipient's market and, for the
categories with volume tiers, its number in the month: the messages of one market and category are
counted in time order from the first of the month (the store is taken as one business portfolio),
so tiers apply marginally exactly as for a decision. Under conversation-based pricing (CBP) a
conversation is billed once: later messages of the same `conversation.id` are not counted again.
A billed message no card prices (no card for its day, a partial card without its market or cell, or a card
without the volume tiers Meta applies to it) is priced at Meta's own average billed rate for its WABA, country,
category and month (imported pricing analytics, `average_rate`), when its WABA is billed in the report's
currency and the analytics hold that month: counted under `at_meta_average`, the same fallback a decision gets
(service.pricing.at_meta_average).
Predicted: every logged decision that allowed a send in the period, with the `charge.price` it returned
(billable charges only). Amounts are Decimal sums, returned as decimal strings; a billed message or a
prediction without a price is counted under `unpriced` with its reason, never guessed. Reasons are counted by
kind (core.pricing.reason_kind: without the message's number in the month, its day or its participants), so
`unpriced_reasons` has one key per kind whatever the number of messages.

Countries are ISO 3166 codes as the API takes them (`BR`), or `group` for a Groups API send (its participants
may be in several countries: Meta's `recipient_type` for it) and `unknown` when the number's country is not
known (as `market` says `unknown`).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ..core.identities import priced_address, recipient
from ..core.pricing import price_charge, reason_kind
from ..core.rates import RateBook
from ..core.vocabulary import pricing_category
from ..store import billing, business_state, decision_log, histories
from ..store.database import loaded_time

GROUP_KEYS = ("month", "category", "market", "country")
SIDES = ("billed", "predicted")  # the chart's two sides
REPORT_SIDES = ("meta", "billed", "predicted")
# The country of a Groups API send (Meta's recipient_type), and of a recipient whose country is not known: words, not
# codes that look like a country (ZZ), which the API refuses wherever it takes a country.
GROUP, UNKNOWN = "group", "unknown"
GROUP_UNPRICED = ("a Groups API message: Meta bills each participant it reaches at that one's market, and the stored "
                  "status does not say which participants it reached")
# An average of exact costs is rounded here (6 decimals: finer than any card's 4), and says so.
AVERAGE_PLACES = Decimal("0.000001")


@dataclass
class Tally:
    """Counted items, the sum of their known prices, and how many had no price (with the reasons)."""

    count: int = 0
    amount: Decimal = Decimal("0")
    unpriced: int = 0
    reasons: Counter = field(default_factory=Counter)
    at_meta_average: int = 0  # priced at Meta's average billed rate, no card pricing them

    def add(self, amount: Decimal | None, reason: str | None, count: int = 1, at_meta_average: bool = False) -> None:
        """Count `count` items (one message, or a data point's volume): their price, or (without one) the reason,
        counted by its kind (core.pricing.reason_kind)."""
        self.count += count
        if amount is None:
            self.unpriced += count
            self.reasons[reason_kind(reason or "unknown")] += count
        else:
            self.amount += amount
            self.at_meta_average += count if at_meta_average else 0

    def as_json(self) -> dict[str, Any]:
        """{count, amount (decimal string), unpriced, unpriced_reasons ({reason kind: count}), at_meta_average}."""
        return {"count": self.count, "amount": str(self.amount), "unpriced": self.unpriced,
                "unpriced_reasons": dict(sorted(self.reasons.items())), "at_meta_average": self.at_meta_average}


@dataclass(frozen=True)
class Item:
    """One billed message (or conversation) or one predicted charge, with its price or the reason it has none."""

    side: str
    day: date
    category: str
    market: str
    amount: Decimal | None
    reason: str | None
    country: str = UNKNOWN  # ISO 3166, GROUP or UNKNOWN
    count: int = 1  # Meta's data points stand for `volume` messages
    at_meta_average: bool = False  # priced at Meta's average billed rate (no card prices it)


def billed_items(rates: RateBook, start: date, end: date, currency: str,
                 notes: list[str] | None = None) -> list[Item]:
    """Billed messages delivered from `start` through `end` (UTC days), priced by the cards, tiers marginal.

    A message from a number whose WABA is billed in another currency (store.billing) is left out, and
    `notes` says so once per WABA: Meta bills it in that currency, and no rate is converted. A message no card
    prices is priced at Meta's average billed rate where its WABA is billed in `currency` and has one
    (`average_rate`); a Groups API message has no price (GROUP_UNPRICED).
    """
    items = []
    volume: Counter = Counter()  # (month, market, category) -> delivered before, from the first of the month
    conversations: set[str] = set()
    month_start = start.replace(day=1)
    billed_in: dict[str, str | None] = {}  # phone_number_id -> its WABA's currency (None: not set or unknown)
    waba_of: dict[str, str | None] = {}
    averages: dict[tuple[str, str, str, str], Decimal | None] = {}  # (WABA, country, category, month) -> rate
    for row in histories.delivered_with_pricing():
        day = loaded_time(row.at).astimezone(UTC).date()
        if day < month_start or day > end:
            continue
        if row.phone_number_id not in billed_in:
            waba_id = waba_of[row.phone_number_id] = business_state.waba_of(row.phone_number_id)
            known = billing.currency_of(waba_id) if waba_id else None
            billed_in[row.phone_number_id] = known.currency if known else None
            if known and known.currency != currency and notes is not None:
                notes.append(f"phone number {row.phone_number_id} (WABA {waba_id}) is billed in {known.currency}: "
                             f"its messages are not in this {currency} report")
        if billed_in[row.phone_number_id] not in (None, currency):
            continue
        meta = histories.pricing(row)
        if meta.get("billable") is not True:
            continue
        model = str(meta.get("pricing_model") or "PMP")
        category = pricing_category(meta.get("category") or histories.outbound_category(row) or "unknown")
        if model == "CBP":
            if row.conversation_id and row.conversation_id in conversations:
                continue  # the conversation was billed when it opened
            if row.conversation_id:
                conversations.add(row.conversation_id)
        if row.group_id:
            if day >= start:
                items.append(Item("billed", day, category, UNKNOWN, None, GROUP_UNPRICED, GROUP))
            continue
        country, _ = recipient(priced_address(row.contact))
        market_map = rates.map_on(day)
        market = (market_map.market_of(country) if market_map else None) or UNKNOWN
        key = (day.strftime("%Y-%m"), market, category)
        price = price_charge(billable=True, pricing_model=model, category=category, opens_conversation=True,
                             day=day, country=country, rates=rates,
                             context={"currency": currency, "volume_messages_this_month": volume[key]})
        volume[key] += 1
        if day < start:
            continue
        waba_id = waba_of[row.phone_number_id]
        if not price.known and price.uncovered and waba_id and billed_in[row.phone_number_id] == currency:
            month = (waba_id, country, category, day.strftime("%Y-%m"))
            if month not in averages:
                found = average_rate(waba_id, country, category, day)
                averages[month] = found[0] if found else None
            if averages[month] is not None:
                items.append(Item("billed", day, category, market, averages[month], None, country,
                                  at_meta_average=True))
                continue
        items.append(Item("billed", day, category, market, price.amount, None if price.known else price.reason,
                          country if country != "ZZ" else UNKNOWN))
    return items


# The id prefix of the card a decision priced at Meta's average billed rate is on (service.pricing.at_meta_average):
# how a logged prediction is known to be priced at the average.
META_AVERAGE_CARD = "meta-average-"


def average_rate(waba_id: str, country: str, category: str, day: date) -> tuple[Decimal, str] | None:
    """Meta's average billed rate for the WABA's charged (REGULAR) messages of a category to a country in the
    month of `day` — cost ÷ volume over the imported points, rounded half-even to AVERAGE_PLACES — and the sentence
    naming it; None without them. Prices what no card does, in decisions (service.pricing.at_meta_average) and
    here."""
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    until = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    cost, volume = Decimal("0"), 0
    for _, point in billing.points(since=start, until=until, waba_id=waba_id):
        if point.country == country and point.pricing_type.upper() == "REGULAR" \
                and meta_category(point.pricing_category) == category:
            cost, volume = cost + point.cost, volume + point.volume
    if not volume:
        return None
    rate = (cost / volume).quantize(AVERAGE_PLACES, rounding=ROUND_HALF_EVEN)
    return rate, (f"Meta's average billed rate for WABA {waba_id}, {category} to {country} in {start:%Y-%m}: "
                  f"cost {cost} ÷ volume {volume:,} = {rate} (pricing_analytics, rounded to 6 decimals)")


def predicted_items(start: date, end: date, currency: str) -> list[Item]:
    """Billable charges of logged allowed decisions whose send falls from `start` through `end` (UTC days)."""
    items = []
    for row in decision_log.allowed_sends(start, end):
        day = datetime.fromisoformat(row.send_at).astimezone(UTC).date()
        if not start <= day <= end:
            continue
        charge = json.loads(row.response).get("charge") or {}
        if not charge.get("billable"):
            continue
        price = charge.get("price")
        market = (price or {}).get("market") or UNKNOWN
        category = pricing_category(charge.get("category") or "unknown")
        country = GROUP if charge.get("participants") is not None else (
            row.recipient_region if row.recipient_region and row.recipient_region != "ZZ" else UNKNOWN)
        if price and price.get("currency") != currency:
            items.append(Item("predicted", day, category, market, None, f"priced in {price.get('currency')}", country))
            continue
        amount = Decimal(price["amount"]) if price else None
        averaged = bool(price) and str((price.get("rate_card") or {}).get("id", "")).startswith(META_AVERAGE_CARD)
        items.append(Item("predicted", day, category, market, amount,
                          None if price else charge.get("price_reason") or "no price logged", country,
                          at_meta_average=averaged))
    return items


def meta_items(rates: RateBook, start: date, end: date, currency: str) -> tuple[list[Item], list[str]]:
    """Meta's charged volume and cost from imported pricing analytics (REGULAR points whose bucket starts
    from `start` through `end`), and notes on the WABAs left out or assumed (their currency)."""
    items, notes, seen = [], [], set()
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    for waba_id, point in billing.points(since=since, until=until):
        known = billing.currency_of(waba_id)
        if waba_id not in seen:
            seen.add(waba_id)
            if known is None:
                notes.append(f"WABA {waba_id} has no billing currency set: its analytics are taken as {currency}")
            elif known.currency != currency:
                notes.append(f"WABA {waba_id} is billed in {known.currency}: its analytics are not in this "
                             f"{currency} report")
        if (known is not None and known.currency != currency) or point.pricing_type.upper() != "REGULAR":
            continue
        day = point.start.astimezone(UTC).date()
        market_map = rates.map_on(day)
        market = (market_map.market_of(point.country) if market_map else None) or UNKNOWN
        items.append(Item("meta", day, meta_category(point.pricing_category), market, point.cost, None,
                          point.country or UNKNOWN, point.volume))
    return items, notes


def meta_category(category: str) -> str:
    """Meta's analytics category (MARKETING, AUTHENTICATION_INTERNATIONAL...) as the webhooks spell it."""
    return pricing_category(category.lower()) if category else "unknown"


def cost_report(rates: RateBook, start: date, end: date, *, group_by: tuple[str, ...] = ("month", "category"),
                currency: str = "USD") -> dict[str, Any]:
    """Meta's cost, our card price of the delivered messages ("billed") and the predictions, from `start`
    through `end`, grouped by any of month, category, market and country; each row's differences explained."""
    unknown = [key for key in group_by if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)} (use {', '.join(GROUP_KEYS)})")
    groups: dict[tuple[str, ...], dict[str, Tally]] = defaultdict(lambda: {side: Tally() for side in REPORT_SIDES})
    totals = {side: Tally() for side in REPORT_SIDES}
    meta, notes = meta_items(rates, start, end, currency)
    for item in billed_items(rates, start, end, currency, notes) + predicted_items(start, end, currency) + meta:
        values = {"month": item.day.strftime("%Y-%m"), "category": item.category, "market": item.market,
                  "country": item.country}
        groups[tuple(values[key] for key in group_by)][item.side].add(item.amount, item.reason, item.count,
                                                                      item.at_meta_average)
        totals[item.side].add(item.amount, item.reason, item.count, item.at_meta_average)
    rows = [{**dict(zip(group_by, key, strict=True)), **{side: tally.as_json() for side, tally in sides.items()}}
            for key, sides in sorted(groups.items())]
    for row in rows:
        row["differences"] = differences(row, rows, group_by, rates, end)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": currency,
        "group_by": list(group_by),
        "rows": rows,
        "totals": {side: tally.as_json() for side, tally in totals.items()},
        "notes": notes,
    }


def differences(row: dict[str, Any], rows: list[dict[str, Any]], group_by: tuple[str, ...], rates: RateBook,
                end: date) -> list[dict[str, Any]]:
    """Each difference of the row between Meta's cost and our card price, and between the card price and the
    predictions, with its causes: unpriced, volume mismatch, volume tier or rate, category mismatch."""
    meta, billed, predicted = (row[side] for side in REPORT_SIDES)
    found = []
    if meta["count"] or meta["amount"] != "0":
        gap = Decimal(meta["amount"]) - Decimal(billed["amount"])
        causes = []
        if billed["unpriced"]:
            causes.append({"cause": "unpriced", "text": f"{billed['unpriced']} delivered message(s) have no card "
                           f"price: {'; '.join(billed['unpriced_reasons'])}"})
        if meta["count"] != billed["count"]:
            causes.append({"cause": "volume_mismatch", "text": (
                f"Meta's analytics count {meta['count']} charged message(s), the stored statuses {billed['count']}: "
                "statuses not received (or not stored), or analytics not imported for every day")})
        if gap and billed["at_meta_average"]:
            causes.append({"cause": "meta_average", "text": (
                f"{billed['at_meta_average']} delivered message(s) no card prices are priced at Meta's average billed "
                "rate for their WABA, country, category and month (rounded to 6 decimals), not at a card rate")})
        if gap and not causes:
            average = Decimal(meta["amount"]) / meta["count"] if meta["count"] else Decimal("0")
            card = Decimal(billed["amount"]) / billed["count"] if billed["count"] else Decimal("0")
            rule = rates.column_on(end, row["category"]) if "category" in row else None
            column = rule.column if rule else row.get("category")
            tiered = bool(column) and rates.tiered_on(end, column)
            causes.append({"cause": "volume_tier" if tiered and average < card else "rate", "text": (
                f"Meta's average rate {_rate(average)} against the card's {_rate(card)} per message: "
                + ("Meta counts volume tiers over the whole business portfolio, the store over its own statuses"
                   if tiered and average < card else "the card copy differs from what Meta charged"))})
        if gap or causes:
            found.append({"between": "meta and card price", "amount": str(gap), "causes": causes})
    gap = Decimal(billed["amount"]) - Decimal(predicted["amount"])
    causes = []
    if predicted["unpriced"]:
        causes.append({"cause": "unpriced", "text": f"{predicted['unpriced']} prediction(s) have no price: "
                       f"{'; '.join(predicted['unpriced_reasons'])}"})
    if billed["count"] != predicted["count"]:
        causes.append(_count_cause(row, rows, group_by))
    if gap or causes:
        found.append({"between": "card price and predicted", "amount": str(gap), "causes": causes})
    return found


def _count_cause(row: dict[str, Any], rows: list[dict[str, Any]], group_by: tuple[str, ...]) -> dict[str, str]:
    """Why delivered and predicted counts differ: another category of the same month and place has the
    opposite surplus (a category mismatch), or sends were decided but not delivered (or not decided)."""
    billed, predicted = row["billed"]["count"], row["predicted"]["count"]
    if "category" in group_by:
        same = [other for other in rows if other is not row
                and all(other[k] == row[k] for k in group_by if k != "category")]
        opposite = [other["category"] for other in same
                    if (other["billed"]["count"] - other["predicted"]["count"]) * (billed - predicted) < 0]
        if opposite:
            return {"cause": "category_mismatch", "text": (
                f"{predicted} predicted as {row['category']} but {billed} billed so, while {', '.join(opposite)} "
                "shows the opposite: Meta charged some sends in another category than the decision (a template "
                "re-categorised, or classified differently; see GET /v1/reconciliation)")}
    return {"cause": "volume_mismatch", "text": (
        f"{predicted} decision(s) predicted a charge, {billed} delivered message(s) were billed: sends decided but "
        "not delivered (or delivered without a logged decision)")}


def _rate(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.000001")).normalize())


@dataclass(frozen=True)
class Bar:
    """One bar of the cost chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    month: str
    category: str
    side: str
    amount: str


def chart(report: dict[str, Any], *, width: int = 720, height: int = 240, margin: int = 40) -> dict[str, Any]:
    """Bars for a server-rendered SVG: per month, per category, predicted beside billed (known amounts only).

    Expects a report grouped by month and category. Returns the bars, the months with their x
    positions, the largest amount (the top of the scale) and the chart's size.
    """
    rows = [r for r in report["rows"] if "month" in r and "category" in r]
    months = sorted({r["month"] for r in rows})
    categories = sorted({r["category"] for r in rows})
    top = max((Decimal(r[side]["amount"]) for r in rows for side in SIDES), default=Decimal("0"))
    plot_width, plot_height = width - 2 * margin, height - 2 * margin
    slot = plot_width / max(len(months), 1)
    bar_width = slot / max(2 * len(categories) + 1, 3)
    bars = []
    for row in rows:
        left = margin + months.index(row["month"]) * slot + bar_width / 2
        for offset, side in enumerate(SIDES[::-1]):  # predicted first, billed beside it
            amount = Decimal(row[side]["amount"])
            bar_height = float(amount / top) * plot_height if top else 0.0
            x = left + (2 * categories.index(row["category"]) + offset) * bar_width
            bars.append(Bar(round(x, 1), round(margin + plot_height - bar_height, 1), round(bar_width * 0.9, 1),
                            round(bar_height, 1), row["month"], row["category"], side, str(amount)))
    return {
        "bars": bars, "top": str(top), "width": width, "height": height, "margin": margin,
        "months": [(month, round(margin + (i + 0.5) * slot, 1)) for i, month in enumerate(months)],
        "categories": categories, "baseline": margin + plot_height,
    }
