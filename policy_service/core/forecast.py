"""A campaign's cost before it is sent: counts of messages per country and category, priced by the cards.

Input: the day the messages will be delivered, the currency, lines of (country, category, count), and the
business's volume this month so far per (market, card column) — the starting point of the volume tiers.
Each line is priced message by message as a decision would price it (pricing.price_charge), but in one
step per tier: with v messages already counted, messages v+1..v+count fall into the tiers they number
(marginal tiers, PMP-5). Lines to one market and column continue each other's count. Nothing is
converted between currencies and nothing is guessed: a line no card prices is listed as unpriced with
the reason, and left out of the total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from .pricing import Price, price_charge
from .rates import RateBook, Tier


@dataclass(frozen=True)
class Segment:
    """Messages of one line that fall in one volume tier: numbers first..last this month, at `rate`."""

    tier_number: int | None
    first: int
    last: int
    rate: Decimal

    @property
    def count(self) -> int:
        """How many messages the segment holds."""
        return self.last - self.first + 1

    @property
    def amount(self) -> Decimal:
        """What they cost."""
        return self.rate * self.count


@dataclass(frozen=True)
class ForecastLine:
    """One requested line and its cost (amount None: `reason` says why)."""

    index: int
    country: str
    category: str
    count: int
    price: Price  # the first message's price: card, market, column (or the reason none applies)
    segments: tuple[Segment, ...] = ()
    volume_before: int | None = None
    reason: str = ""

    @property
    def amount(self) -> Decimal | None:
        """The line's cost, or None when it has none."""
        return sum((s.amount for s in self.segments), Decimal("0")) if self.segments else None


@dataclass(frozen=True)
class Forecast:
    """The priced lines, the unpriced ones, and the total of the priced ones (in `currency`)."""

    currency: str
    day: date
    lines: tuple[ForecastLine, ...]

    @property
    def priced(self) -> tuple[ForecastLine, ...]:
        """Lines with an amount."""
        return tuple(line for line in self.lines if line.amount is not None)

    @property
    def unpriced(self) -> tuple[ForecastLine, ...]:
        """Lines without one."""
        return tuple(line for line in self.lines if line.amount is None)

    @property
    def total(self) -> Decimal:
        """The sum of the priced lines (the unpriced are listed, never guessed)."""
        return sum((line.amount for line in self.priced), Decimal("0"))


def forecast(lines: list[tuple[str, str, int]], *, day: date, currency: str, rates: RateBook,
             volumes: dict[tuple[str, str], int] | None = None) -> Forecast:
    """Price `lines` of (country ISO 3166 alpha-2, pricing category, message count) delivered on `day`.

    `volumes` maps (market, card column) to the billable messages already counted this month (missing:
    0); it is not modified. Returns every line, priced or with its reason.
    """
    counted = dict(volumes or {})
    result = []
    for index, (country, category, count) in enumerate(lines):
        first = price_charge(billable=True, pricing_model="PMP", category=category, opens_conversation=False,
                             day=day, country=country, context={"currency": currency}, rates=rates)
        if not first.known:
            result.append(ForecastLine(index, country, category, count, first, reason=first.reason))
            continue
        column = first.column or category
        key = (first.market or "", column)
        before = counted.get(key, 0)
        card = first.card
        assert card is not None and first.market is not None and first.amount is not None
        steps = card.tiers.get(column, {}).get(first.market)
        if steps:
            segments = _segments(steps, before, count)
        elif rates.tiered_on(day, column) and before + count > 1:
            result.append(ForecastLine(index, country, category, count, first, volume_before=before, reason=(
                f"Meta discounts {column} by monthly volume, but rate card {card.id} has no {currency} volume "
                f"tiers for {first.market}: messages {before + 1:,}-{before + count:,} of the month may be "
                f"discounted; at the list rate {first.amount} {currency} they cost at most "
                f"{first.amount * count} {currency}")))
            continue
        else:
            segments = (Segment(None, before + 1, before + count, first.amount),)
        counted[key] = before + count
        result.append(ForecastLine(index, country, category, count, first, segments, before))
    return Forecast(currency, day, tuple(result))


def _segments(steps: tuple[Tier, ...], before: int, count: int) -> tuple[Segment, ...]:
    """Messages before+1..before+count split by the tiers that hold them."""
    segments = []
    start, end = before + 1, before + count
    for number, tier in enumerate(steps, start=1):
        low, high = max(start, tier.first), min(end, tier.last if tier.last is not None else end)
        if low <= high:
            segments.append(Segment(number, low, high, tier.rate))
    return tuple(segments)
