"""The cost report: what Meta billed (stored statuses, priced by the rate cards) beside what the decisions predicted.

Billed: every delivered outbound message whose stored `pricing` says `billable: true`, priced with
the card for the report's currency in force on its day (UTC), the recipient's market and, for the
categories with volume tiers, its number in the month: the messages of one market and category are
counted in time order from the first of the month (the store is taken as one business portfolio),
so tiers apply marginally exactly as for a decision. Under conversation-based pricing (CBP) a
conversation is billed once: later messages of the same `conversation.id` are not counted again.
Predicted: every logged decision that allowed a send in the period, with the `charge.price` it returned
(billable charges only). Amounts are Decimal sums, returned as decimal strings; a billed message or a
prediction without a price is counted under `unpriced` with its reason, never guessed.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from ..core.facts import recipient
from ..core.pricing import price_charge
from ..core.rates import RateBook
from ..store import decision_log, histories
from ..store.database import loaded_time

GROUP_KEYS = ("month", "category", "market")
SIDES = ("billed", "predicted")


@dataclass
class Tally:
    """Counted items, the sum of their known prices, and how many had no price (with the reasons)."""

    count: int = 0
    amount: Decimal = Decimal("0")
    unpriced: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, amount: Decimal | None, reason: str | None) -> None:
        """Count one item: its price, or (without one) the reason."""
        self.count += 1
        if amount is None:
            self.unpriced += 1
            self.reasons[reason or "unknown"] += 1
        else:
            self.amount += amount

    def as_json(self) -> dict[str, Any]:
        """The tally with its amount as a decimal string."""
        return {"count": self.count, "amount": str(self.amount), "unpriced": self.unpriced,
                "unpriced_reasons": dict(sorted(self.reasons.items()))}


@dataclass(frozen=True)
class Item:
    """One billed message (or conversation) or one predicted charge, with its price or the reason it has none."""

    side: str
    day: date
    category: str
    market: str
    amount: Decimal | None
    reason: str | None


def billed_items(rates: RateBook, start: date, end: date, currency: str) -> list[Item]:
    """Billed messages delivered from `start` through `end` (UTC days), priced by the cards, tiers marginal."""
    items = []
    volume: Counter = Counter()  # (month, market, category) -> delivered before, from the first of the month
    conversations: set[str] = set()
    month_start = start.replace(day=1)
    for row in histories.delivered_with_pricing():
        day = loaded_time(row.at).astimezone(UTC).date()
        if day < month_start or day > end:
            continue
        meta = histories.pricing(row)
        if meta.get("billable") is not True:
            continue
        model = str(meta.get("pricing_model") or "PMP")
        category = _category(meta.get("category") or histories.outbound_category(row) or "unknown")
        if model == "CBP":
            if row.conversation_id and row.conversation_id in conversations:
                continue  # the conversation was billed when it opened
            if row.conversation_id:
                conversations.add(row.conversation_id)
        country, _ = recipient("+" + row.contact)
        market_map = rates.map_on(day)
        market = (market_map.market_of(country) if market_map else None) or "unknown"
        key = (day.strftime("%Y-%m"), market, category)
        price = price_charge(billable=True, pricing_model=model, category=category, opens_conversation=True,
                             day=day, country=country, rates=rates,
                             context={"currency": currency, "volume_messages_this_month": volume[key]})
        volume[key] += 1
        if day >= start:
            items.append(Item("billed", day, category, market, price.amount, None if price.known else price.reason))
    return items


def predicted_items(start: date, end: date, currency: str) -> list[Item]:
    """Billable charges of logged allowed decisions whose send falls from `start` through `end` (UTC days)."""
    items = []
    for row in decision_log.DecisionRecord.select().where(decision_log.DecisionRecord.decision == "allow"):
        if not row.send_at:
            continue
        day = datetime.fromisoformat(row.send_at).astimezone(UTC).date()
        if not start <= day <= end:
            continue
        charge = json.loads(row.response).get("charge") or {}
        if not charge.get("billable"):
            continue
        price = charge.get("price")
        market = (price or {}).get("market") or "unknown"
        category = _category(charge.get("category") or "unknown")
        if price and price.get("currency") != currency:
            items.append(Item("predicted", day, category, market, None, f"priced in {price.get('currency')}"))
            continue
        amount = Decimal(price["amount"]) if price else None
        items.append(Item("predicted", day, category, market, amount,
                          None if price else charge.get("price_reason") or "no price logged"))
    return items


def cost_report(rates: RateBook, start: date, end: date, *, group_by: tuple[str, ...] = ("month", "category"),
                currency: str = "USD") -> dict[str, Any]:
    """Billed and predicted costs from `start` through `end`, grouped by any of month, category and market."""
    unknown = [key for key in group_by if key not in GROUP_KEYS]
    if unknown:
        raise ValueError(f"cannot group by {', '.join(unknown)} (use {', '.join(GROUP_KEYS)})")
    groups: dict[tuple[str, ...], dict[str, Tally]] = defaultdict(lambda: {side: Tally() for side in SIDES})
    totals = {side: Tally() for side in SIDES}
    for item in billed_items(rates, start, end, currency) + predicted_items(start, end, currency):
        values = {"month": item.day.strftime("%Y-%m"), "category": item.category, "market": item.market}
        groups[tuple(values[key] for key in group_by)][item.side].add(item.amount, item.reason)
        totals[item.side].add(item.amount, item.reason)
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "currency": currency,
        "group_by": list(group_by),
        "rows": [{**dict(zip(group_by, key, strict=True)), **{side: tally.as_json() for side, tally in sides.items()}}
                 for key, sides in sorted(groups.items())],
        "totals": {side: tally.as_json() for side, tally in totals.items()},
    }


def _category(category: str) -> str:
    # Meta writes authentication_international in some places and authentication-international in pricing.
    return category.replace("_international", "-international")


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
