"""A campaign's cost before it is sent: counts of messages per country and category, priced by the cards.

Input: the day the messages will be delivered, the currency, lines of (country, category, count), and the
business's volume this month so far per (market, card column) — the starting point of the volume tiers.
Each line is priced message by message as a decision would price it (pricing.price_charge), but in one
step per tier: with v messages already counted, messages v+1..v+count fall into the tiers they number
(marginal tiers, PMP-5). Lines to one market and column continue each other's count. Nothing is
converted between currencies and nothing is guessed: a line no card prices is listed as unpriced with
the reason, and left out of the total.

Messages the rules leave free by a monthly count (from October 2026 the first 1,000 service messages of a
phone number each month, PMP26-1.free-allowance) are not charged: the caller gives `charge_of`, the charge
the rules decide for a message of a counted category after n such messages this month, and the lines of
those categories continue one count (the allowance is per phone number, not per market). No threshold is
written here: the rules answer for each count.
"""

from __future__ import annotations

from collections.abc import Callable
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
class RuledCharge:
    """What the rules decide for one message: billable or not, the determining charge rule and its sentence."""

    billable: bool
    rule: str
    because: str


# The charge for a message of a counted category after `n` of them this month; None when the rules decide none.
ChargeOf = Callable[[int], RuledCharge | None]


@dataclass(frozen=True)
class Free:
    """Messages of a line the rules leave free: how many, the rule that frees them and its sentence (for the
    first of them), and the rule charging the rest (None when none is charged)."""

    count: int
    rule: str
    because: str
    charged_by: str | None = None


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
    free: Free | None = None  # messages the rules leave free (a monthly allowance), not charged

    @property
    def amount(self) -> Decimal | None:
        """The line's cost (0 when the rules leave every message free), or None when it has none."""
        if self.segments:
            return sum((s.amount for s in self.segments), Decimal("0"))
        return Decimal("0") if self.free is not None and self.free.count == self.count else None


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
             volumes: dict[tuple[str, str], int] | None = None, allowance: tuple[str, ...] = (),
             charge_of: Callable[[str, int], RuledCharge | None] | None = None, allowance_before: int = 0) -> Forecast:
    """Price `lines` of (country ISO 3166 alpha-2, pricing category, message count) delivered on `day`.

    `volumes` maps (market, card column) to the billable messages already counted this month (missing:
    0); it is not modified. Lines of an `allowance` category (the rules' service_messages_count_categories)
    continue one monthly count from `allowance_before`; `charge_of(country, n)` is the rules' charge of such a
    message after n this month, and the messages it leaves free are not charged (ForecastLine.free). Returns
    every line, priced or with its reason.
    """
    counted = dict(volumes or {})
    result = []
    for index, (country, category, count) in enumerate(lines):
        free = None
        if category in allowance and charge_of is not None:
            free = free_messages(lambda n, country=country: charge_of(country, n), allowance_before, count)
            allowance_before += count
        first = price_charge(billable=True, pricing_model="PMP", category=category, opens_conversation=False,
                             day=day, country=country, context={"currency": currency}, rates=rates)
        if free is not None and free.count == count:  # the rules leave them all free: nothing to price
            result.append(ForecastLine(index, country, category, count, first, free=free))
            continue
        charged = count - (free.count if free else 0)
        if not first.known:
            result.append(ForecastLine(index, country, category, count, first, reason=first.reason, free=free))
            continue
        column = first.column or category
        key = (first.market or "", column)
        before = counted.get(key, 0)
        card = first.card
        assert card is not None and first.market is not None and first.amount is not None
        steps = card.tiers.get(column, {}).get(first.market)
        if steps:
            segments = _segments(steps, before, charged)
        elif rates.tiered_on(day, column) and before + charged > 1:
            result.append(ForecastLine(index, country, category, count, first, volume_before=before, free=free, reason=(
                f"Meta discounts {column} by monthly volume, but rate card {card.id} has no {currency} volume "
                f"tiers for {first.market}: messages {before + 1:,}-{before + charged:,} of the month may be "
                f"discounted; at the list rate {first.amount} {currency} they cost at most "
                f"{first.amount * charged} {currency}")))
            continue
        else:
            segments = (Segment(None, before + 1, before + charged, first.amount),)
        counted[key] = before + charged
        result.append(ForecastLine(index, country, category, count, first, segments, before, free=free))
    return Forecast(currency, day, tuple(result))


def free_messages(charge_of: ChargeOf, before: int, count: int) -> Free | None:
    """How many of messages before+1..before+count of the month the rules leave free, by asking `charge_of`
    for the charge after n messages: an allowance counts from the month's first message, so the free ones come
    first and the search halves the range (about 2·log2(count) questions, not one per message). None when the
    rules decide no charge for the first of them."""
    first = charge_of(before)
    if first is None:
        return None
    if first.billable:
        return Free(0, first.rule, first.because, first.rule)
    last = charge_of(before + count - 1)
    if last is None or not last.billable:
        return Free(count, first.rule, first.because)
    low, high = before, before + count - 1  # free at low, charged at high
    while high - low > 1:
        middle = (low + high) // 2
        found = charge_of(middle)
        if found is not None and not found.billable:
            low = middle
        else:
            high = middle
    return Free(low - before + 1, first.rule, first.because, last.rule)


def _segments(steps: tuple[Tier, ...], before: int, count: int) -> tuple[Segment, ...]:
    """Messages before+1..before+count split by the tiers that hold them."""
    segments = []
    start, end = before + 1, before + count
    for number, tier in enumerate(steps, start=1):
        low, high = max(start, tier.first), min(end, tier.last if tier.last is not None else end)
        if low <= high:
            segments.append(Segment(number, low, high, tier.rate))
    return tuple(segments)
