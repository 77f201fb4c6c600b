"""A campaign's cost before it is sent: counts of messages per country and category, priced by the cards.

Input: the day the messages will be delivered, the currency, lines of messages (country, category, count, and
how many of them are sent inside a free entry point window), and the business's volume this month so far per
(market, card column) — the starting point of the volume tiers. Each line is priced message by message as a
decision would price it (pricing.price_charge), but in one step per tier: with v messages already counted,
messages v+1..v+count fall into the tiers they number (marginal tiers, PMP-5). Lines to one market and column
continue each other's count. Nothing is converted between currencies and nothing is guessed: a line no card
prices is listed as unpriced with the reason, and left out of the total.

Messages the rules leave free are not charged: for a line of an `allowance` category (the rules'
service_messages_count_categories: from October 2026 the first 1,000 service messages of a phone number each
month are free, PMP26-1.free-allowance; inside a free entry point window every message is, FEP-3) the caller
gives `charge_of`, the charge the rules decide for such a message in a window after n counted messages this
month, and those lines continue one count (the allowance is per phone number, not per market). `Answers` is the
one place that reads those answers as an allowance reads (free up to some count, charged after it), so it asks
about 2·log2(count) questions a line, not one per message. No threshold is written here: the rules answer.

Messages the rules deny (a marketing template to a United States number, MKT-4; a free-form message outside any
window) are not delivered: they are neither priced nor counted (toward the tiers or the allowance), and the line
says which rule denies them and why (ForecastLine.denied); a line whose every message is denied has no amount.
Which messages are denied is the rules' answer too: no rule id is written here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import NamedTuple

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


# Where a line's messages are sent, as the rules tell them apart (a line says how many are in each of the first two;
# the rest are outside both).
CUSTOMER_SERVICE_WINDOW = "customer_service_window"
FREE_ENTRY_POINT = "free_entry_point"
OUTSIDE_WINDOWS = "outside_windows"


@dataclass(frozen=True)
class RuledCharge:
    """What the rules decide for one message: billable or not, the determining charge rule, its sentence, and the
    pricing category of the charge (None: not said; such a message is taken to count toward the allowance); or,
    `denied`, that the rules deny the send: `rule` the denying rule(s), `because` their sentence(s), never billable."""

    billable: bool
    rule: str
    because: str
    category: str | None = None
    denied: bool = False


@dataclass(frozen=True)
class Denied:
    """Messages of a line the rules deny (not delivered: not priced, not counted): how many, the denying rule(s) and
    their sentence (those of the first denied window), and, for a whole line, its runs by window (each a Denied of
    one window)."""

    count: int
    rule: str
    because: str
    window: str = OUTSIDE_WINDOWS
    runs: tuple[Denied, ...] = ()


# The charge for a message of a counted category after `n` of them this month; None when the rules decide none.
ChargeOf = Callable[[int], RuledCharge | None]


@dataclass(frozen=True)
class Free:
    """Messages of a line the rules leave free: how many, the rule that frees them and its sentence (for the
    first of them), the rule charging the rest (None when none is charged), where they are sent and how many
    messages were sent there, the pricing category the rules give them, and, for a whole line, its runs by window
    (each a Free of one window)."""

    count: int
    rule: str
    because: str
    charged_by: str | None = None
    window: str = CUSTOMER_SERVICE_WINDOW
    category: str | None = None
    runs: tuple[Free, ...] = ()
    messages: int | None = None


class Line(NamedTuple):
    """A requested line: messages of `category` to `country` (ISO 3166 alpha-2), `free_entry_point` of them sent
    inside a free entry point window, `customer_service_window` of them inside an open customer service window
    (None: an `allowance` line's every other message, a free-form message being sent inside a window; any other
    line's none), the rest outside both."""

    country: str
    category: str
    count: int
    free_entry_point: int = 0
    customer_service_window: int | None = None
    asked_as: str | None = None  # whom the rules are asked about for it (None: its country; see forecast)

    def in_window(self, allowance: tuple[str, ...]) -> int:
        """How many messages are sent inside an open customer service window (the default resolved)."""
        if self.customer_service_window is not None:
            return self.customer_service_window
        return self.count - self.free_entry_point if self.category in allowance else 0


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
    free: Free | None = None  # messages the rules leave free (a monthly allowance, a window), not charged
    free_entry_point: int = 0  # of `count`, those sent inside a free entry point window
    customer_service_window: int = 0  # of `count`, those sent inside an open customer service window
    denied: Denied | None = None  # messages the rules deny: not delivered, so neither priced nor counted

    @property
    def amount(self) -> Decimal | None:
        """The line's cost (0 when the rules leave every delivered message free), or None when it has none (no card
        prices it, or the rules deny every message of it)."""
        if self.segments:
            return sum((s.amount for s in self.segments), Decimal("0"))
        denied = self.denied.count if self.denied else 0
        free = self.free.count if self.free else 0
        return Decimal("0") if denied < self.count and free + denied == self.count else None


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


def forecast(lines: list[tuple[str, str, int]] | list[Line], *, day: date, currency: str, rates: RateBook,
             volumes: dict[tuple[str, str], int] | None = None, allowance: tuple[str, ...] = (),
             windowed: tuple[str, ...] = (), checked: tuple[str, ...] = (), allowance_before: int = 0,
             charge_of: Callable[[str, str, str, int], RuledCharge | None] | None = None) -> Forecast:
    """Price `lines` (Line, or tuples of country ISO 3166 alpha-2, pricing category, message count) delivered on
    `day`.

    `volumes` maps (market, card column) to the billable messages already counted this month (missing: 0); it is not
    modified. `charge_of(recipient, category, window, n)` is the rules' charge of a message of `category` to
    `recipient` (the line's `asked_as`, else its country) sent in `window` (FREE_ENTRY_POINT,
    CUSTOMER_SERVICE_WINDOW or OUTSIDE_WINDOWS) after n counted this month, or their denial (RuledCharge.denied);
    each window of a line with messages in it is asked once about its first message. Denied messages are neither
    priced nor counted (ForecastLine.denied); the ones the rules leave free are not charged (ForecastLine.free).
    Lines of an `allowance` category (the rules' service_messages_count_categories) continue one monthly count from
    `allowance_before`: a line's free entry point messages come first in that count, then its customer service
    window messages, and each counts when the rules give it a counted category, so the allowance they use is not
    left for the line's other messages (of the orders they may be sent in, the one that costs most). Lines of a
    `windowed` category (templates) are asked as after 0 (no monthly count decides a template's charge); a run
    outside both windows the rules charge in full is priced as charged (not listed in `free`). Lines of a `checked`
    category are asked only whether the rules deny them (a line does not say enough of such a send to price it by
    the rules: it is priced as charged). Returns every line, priced or with its reason.
    """
    counted = dict(volumes or {})
    answers: dict[tuple[str, str, str], Answers] = {}

    def answers_for(recipient: str, category: str, window: str) -> Answers:
        if (recipient, category, window) not in answers:
            ask = charge_of
            assert ask is not None  # only lines asked of the rules get here, and they need it
            answers[recipient, category, window] = Answers(lambda n: ask(recipient, category, window, n))
        return answers[recipient, category, window]

    result = []
    for index, raw in enumerate(lines):
        line = Line(*raw)
        country, category, count, in_entry_point = line.country, line.category, line.count, line.free_entry_point
        in_window = line.in_window(allowance)
        runs: list[Free] = []
        denials: list[Denied] = []
        if charge_of is not None and category in (*allowance, *windowed, *checked):
            counts = category in allowance
            for window, size in ((FREE_ENTRY_POINT, in_entry_point), (CUSTOMER_SERVICE_WINDOW, in_window),
                                 (OUTSIDE_WINDOWS, count - in_entry_point - in_window)):
                if not size:
                    continue
                asked = answers_for(line.asked_as or country, category, window)
                before = allowance_before if counts else 0
                first = asked.exact(before)
                if first is not None and first.denied:  # not delivered: not priced, not counted
                    denials.append(Denied(size, first.rule, first.because, window))
                    continue
                run = asked.free(before, size) if category not in checked else None
                if run is not None and (counts or window != OUTSIDE_WINDOWS or run.count):
                    runs.append(replace(run, window=window, messages=size))
                if counts and (run is None or run.category is None or run.category in allowance):
                    allowance_before += size
        free, denied = _line_free(runs), _line_denied(denials)
        kept = dict(free=free, free_entry_point=in_entry_point, customer_service_window=in_window, denied=denied)
        first = price_charge(billable=True, pricing_model="PMP", category=category, opens_conversation=False,
                             day=day, country=country, context={"currency": currency}, rates=rates)
        charged = count - (free.count if free else 0) - (denied.count if denied else 0)
        if not charged:  # the rules leave every delivered message free, or deny them all: nothing to price
            reason = "" if denied is None or denied.count < count else (
                f"not delivered: the rules deny every message of the line ({denied.rule}: {denied.because})")
            result.append(ForecastLine(index, country, category, count, first, reason=reason, **kept))
            continue
        if not first.known:
            result.append(ForecastLine(index, country, category, count, first, reason=first.reason, **kept))
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
            result.append(ForecastLine(index, country, category, count, first, volume_before=before, **kept, reason=(
                f"Meta discounts {column} by monthly volume, but rate card {card.id} has no {currency} volume "
                f"tiers for {first.market}: messages {before + 1:,}-{before + charged:,} of the month may be "
                f"discounted; at the list rate {first.amount} {currency} they cost at most "
                f"{first.amount * charged} {currency}")))
            continue
        else:
            segments = (Segment(None, before + 1, before + charged, first.amount),)
        counted[key] = before + charged
        result.append(ForecastLine(index, country, category, count, first, segments, before, **kept))
    return Forecast(currency, day, tuple(result))


def _line_denied(runs: list[Denied]) -> Denied | None:
    """A line's denied messages from its runs by window (None: none denied); the rule and sentence named are the
    first run's."""
    if not runs:
        return None
    return Denied(sum(run.count for run in runs), runs[0].rule, runs[0].because, runs[0].window, tuple(runs))


def _line_free(runs: list[Free]) -> Free | None:
    """A line's free messages from its runs by window (None: the rules decided no charge in any of them); the rule
    and sentence named are those of the first free run (else the first run's), the charging rule the last one's."""
    if not runs:
        return None
    named = next((run for run in runs if run.count), runs[0])
    charged_by = next((run.charged_by for run in reversed(runs) if run.charged_by), None)
    return Free(sum(run.count for run in runs), named.rule, named.because, charged_by, named.window, named.category,
                tuple(runs), sum(run.messages or 0 for run in runs))


class Answers:
    """The rules' charges of one kind of message (one country, one window) by how many counted messages came before
    it this month, read as an allowance reads: counted from the month's first message, so the free ones come first
    (free after n: free after fewer; charged after n: charged after more). Each count is asked of the rules once;
    a forecast keeps one Answers per kind across its lines, which continue one count. This is the one place that
    relies on that order."""

    def __init__(self, ask: ChargeOf) -> None:
        self._ask = ask
        self._asked: dict[int, RuledCharge | None] = {}
        self._highest_free: int | None = None
        self._lowest_charged: int | None = None

    @property
    def questions(self) -> int:
        """How many counts the rules were asked about."""
        return len(self._asked)

    def exact(self, n: int) -> RuledCharge | None:
        """The rules' own answer after n messages (its sentence names n), asked once."""
        if n not in self._asked:
            found = self._asked[n] = self._ask(n)
            if found is not None and found.billable:
                self._lowest_charged = n if self._lowest_charged is None else min(self._lowest_charged, n)
            elif found is not None and not found.denied:  # a denied message is not delivered: not free
                self._highest_free = n if self._highest_free is None else max(self._highest_free, n)
        return self._asked[n]

    def is_free(self, n: int) -> bool:
        """Whether the message after n is free: read off a known free count at or above n or a known charged one at
        or below it, else asked (no charge decided counts as not free)."""
        if self._highest_free is not None and n <= self._highest_free:
            return True
        if self._lowest_charged is not None and n >= self._lowest_charged:
            return False
        found = self.exact(n)
        return found is not None and not found.billable and not found.denied

    def free(self, before: int, count: int) -> Free | None:
        """How many of messages before+1..before+count of the month the rules leave free: the first and the last
        asked exactly, the count between found by halving the range (about 2·log2(count) questions, not one per
        message). None when the rules decide no charge for the first of them, or deny it (forecast lists denied
        messages apart, reading the denial off the first message of a window: no rule denies by the month's count)."""
        first = self.exact(before)
        if first is None or first.denied:
            return None
        if first.billable:
            return Free(0, first.rule, first.because, first.rule, category=first.category)
        last = self.exact(before + count - 1)
        if last is None or not last.billable:
            return Free(count, first.rule, first.because, category=first.category)
        low, high = before, before + count - 1  # free at low, charged at high
        while high - low > 1:
            middle = (low + high) // 2
            if self.is_free(middle):
                low = middle
            else:
                high = middle
        return Free(low - before + 1, first.rule, first.because, last.rule, category=first.category)


def _segments(steps: tuple[Tier, ...], before: int, count: int) -> tuple[Segment, ...]:
    """Messages before+1..before+count split by the tiers that hold them."""
    segments = []
    start, end = before + 1, before + count
    for number, tier in enumerate(steps, start=1):
        low, high = max(start, tier.first), min(end, tier.last if tier.last is not None else end)
        if low <= high:
            segments.append(Segment(number, low, high, tier.rate))
    return tuple(segments)
