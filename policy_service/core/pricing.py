"""Price a charge: which rate card, market and volume tier apply, and the amount, with the reason.

Input: the charge the rules decided (category, pricing model, billable), the send's day in the WABA
time zone, the recipient's country (from the number), the business's currency, and how many
messages of this pricing category the business portfolio already had delivered this month in this
market (for the volume tiers). Output: a `Price` — the amount as a `Decimal` in the card's currency,
or no amount and the reason it cannot be known. Nothing here is a number of Meta's: every rate,
threshold and market comes from the cards in `rules/rates/` (see rates.py).

Which card column prices a category is data too (`price_columns:` in rules/rates/categories.yaml):
marketing_lite is priced at the marketing column, a group send (group_marketing, ...) per participant
reached at each one's market (`price_group`), business_agent has no per-message price. A partial
card prices only the markets and cells its source gave; anything else is unknown, with that reason.

Volume tiers are marginal (whatsapp-rules.md PMP-5: counted per business portfolio, market and
category per calendar month, charged messages only; "the tier rate applies only to the messages
inside that tier"): the message numbered N+1 this month, after N charged, is priced at the tier
holding N+1, so the message that crosses a threshold already gets the new tier's rate.
"""

from __future__ import annotations

import re
import string
from datetime import date
from decimal import Decimal
from typing import Any

from .rates import BASES, RateBook, RateCard, Tier
from .records import record
from .vocabulary import GROUP_CATEGORY_PREFIX

# Which basis a charge's pricing model is billed on.
BASIS_OF_MODEL = {"PMP": "message", "CBP": "conversation"}
# Context fields pricing reads (kept apart from the rules' CONTEXT_DEFAULTS; see facts.py).
PRICING_CONTEXT_DEFAULTS: dict[str, Any] = {
    "currency": "USD",
    "volume_messages_this_month": None,
    "marketing_max_price": None,
}


@record
class Price:
    """What one billable charge costs, or why that cannot be known (`amount` None, `reason` says why)."""

    amount: Decimal | None
    reason: str
    currency: str | None = None
    card: RateCard | None = None
    market: str | None = None
    basis: str | None = None
    tier: Tier | None = None
    tier_number: int | None = None
    tiered: bool = False  # the card has volume tiers for this market and category
    volume_before: int | None = None
    defaults: tuple[str, ...] = ()
    column: str | None = None  # the card column that priced it, when not the category's own name
    rule: str | None = None  # the price_columns rule that chose that column
    lines: tuple[PriceLine, ...] = ()  # group sends: one line per participant
    note: str = ""  # what the amount assumes (an upper bound when tiers are not sourced)
    # No card (or no row or cell of a partial one) covers the send, or the card lacks the volume tiers Meta applies
    # to it: another source (Meta's average billed rate, service.pricing.at_meta_average) may price it.
    uncovered: bool = False


    @property
    def known(self) -> bool:
        """True when the amount is known."""
        return self.amount is not None


@record
class PriceLine:
    """One participant of a group send: its number, country and what its delivery costs (or why unknown)."""

    participant: str
    country: str
    price: Price


class Wording:
    """A reason sentence that names what is particular to one send (its day, its number in the month, a bid, its
    participants). `text` writes it for the send; `kind` reads a sentence back as the same sentence with those
    particulars in words, so a report over many sends (review.costs) counts one reason per kind, not one per
    message. Fields are plain `{name}` (no format spec): callers format numbers first."""

    def __init__(self, template: str, particulars: dict[str, str]) -> None:
        self.template, self.particulars = template, particulars
        pattern, seen = [], set()
        for literal, name, _spec, _conversion in string.Formatter().parse(template):
            pattern.append(re.escape(literal))
            if name is not None:
                pattern.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
                seen.add(name)
        self.pattern = re.compile("".join(pattern), re.DOTALL)

    def text(self, **values: Any) -> str:
        """The sentence for one send."""
        return self.template.format(**values)

    def kind(self, reason: str) -> str | None:
        """The sentence with its particulars in words; None when `reason` is not written in this wording."""
        found = self.pattern.fullmatch(reason)
        return None if found is None else self.template.format(**{**found.groupdict(), **self.particulars})


# The reasons that name what is particular to one send; reason_kind reads each back without it.
NO_CARD = Wording("no {currency} rate card for {day} (cards in {currency}: {covered})", {"day": "the day"})
MARKET_NOT_SAID = Wording("the market of {country} on {day} is unknown (market map {map} does not say)",
                          {"day": "the day"})
MARKET_NO_MAP = Wording("the market of {country} on {day} is unknown (no market map covers {day})",
                        {"day": "the day"})
UNDER_BID = Wording("marketing sent under a max-price bid of {bid}: Meta charges the delivered price, at most the "
                    "bid, which no card gives", {"bid": "a given amount"})
TIERS_NOT_SOURCED = Wording("{unsourced} (not in its source): {message} of the month may be discounted; the list "
                            "rate {rate} is an upper bound", {"message": "a message after the first"})
PARTICIPANTS_UNPRICED = Wording("{unpriced} participants have no price — {why}",
                                {"unpriced": "some", "why": "each one's reason is on its price line"})
WORDINGS = (NO_CARD, MARKET_NOT_SAID, MARKET_NO_MAP, UNDER_BID, TIERS_NOT_SOURCED, PARTICIPANTS_UNPRICED)


def reason_kind(reason: str) -> str:
    """A price reason without what is particular to its send (the Wordings above): one text for every message of a
    kind ("... message 1,001 of the month may be discounted ..." and "... message 1,002 ..." alike); a reason
    written in no Wording is its own kind."""
    return next((kind for wording in WORDINGS if (kind := wording.kind(reason)) is not None), reason)


def pricing_context(context: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The pricing fields of a request's context with their defaults, and the names defaulted (in field order)."""
    values = {name: default if context.get(name) is None else context[name]
              for name, default in PRICING_CONTEXT_DEFAULTS.items()}
    return values, tuple(name for name in PRICING_CONTEXT_DEFAULTS if context.get(name) is None)


def price_charge(*, billable: bool, pricing_model: str, category: str, opens_conversation: bool, day: date,
                 country: str, context: dict[str, Any], rates: RateBook) -> Price:
    """Price one charge from the cards in force on `day` (see the module docstring for the inputs).

    Never raises for missing data: an unknown card, market, rate or country gives a Price without an
    amount whose reason names what is missing.
    """
    ctx, defaulted = pricing_context(context)
    # Name only the defaults this price relied on: the currency, the bid for marketing, the volume when tiered.
    rule = rates.column_on(day, category)
    column = rule.column if rule else category
    defaults = tuple(d for d in defaulted
                     if d == "currency" or (d == "marketing_max_price" and column == "marketing"))
    if not billable:
        return Price(None, "not billable: Meta charges nothing for this send", defaults=defaults)
    if pricing_model == "CBP" and not opens_conversation:
        return Price(None, "rides an open conversation: no new conversation is charged", defaults=defaults)
    if rule is not None and rule.column is None:
        return Price(None, rule.reason, defaults=defaults, rule=rule.id)
    via = {"column": column, "rule": rule.id} if rule else {}
    currency = ctx["currency"]
    card = rates.card_on(day, currency)
    if card is None:
        covered = ", ".join(f"{c.id} ({c.effective_from}..{c.effective_until or 'open'})"
                            for c in rates.cards if c.currency == currency) or "none"
        return Price(None, NO_CARD.text(currency=currency, day=day, covered=covered),
                     currency=currency, defaults=defaults, uncovered=True, **via)
    basis = BASIS_OF_MODEL.get(pricing_model)
    if basis != card.basis:
        return Price(None, f"rate card {card.id} prices {BASES[card.basis]}, but this {pricing_model} charge is "
                           f"billed {BASES.get(basis or '', 'otherwise')}", currency=currency, card=card,
                     defaults=defaults, **via)
    if country == "ZZ":
        return Price(None, "the recipient's country is unknown (the number has no known country calling code)",
                     currency=currency, card=card, basis=basis, defaults=defaults, **via)
    market_map = rates.map_on(day)
    market = market_map.market_of(country) if market_map else None
    if market is None:
        why = MARKET_NOT_SAID.text(country=country, day=day, map=market_map.id) if market_map else \
            MARKET_NO_MAP.text(country=country, day=day)
        return Price(None, why, currency=currency, card=card,
                     basis=basis, defaults=defaults, uncovered=True, **via)
    known = dict(currency=currency, card=card, market=market, basis=basis, defaults=defaults, **via)
    row = card.rates.get(market)
    if row is None:
        if card.partial:
            return Price(None, f"rate card {card.id} is a partial copy of Meta's {currency} card: its source gives "
                               f"no rate for market {market} (it lists {', '.join(card.rates)})", uncovered=True,
                         **known)
        return Price(None, f"rate card {card.id} has no row for market {market}", **known)
    if column not in row:
        return Price(None, f"rate card {card.id} has no {column!r} column", **known)
    list_rate = row[column]
    if list_rate is None:
        if (market, column) in card.unsourced:
            return Price(None, f"rate card {card.id} is a partial copy of Meta's {currency} card: its source gives "
                               f"no {column} rate for {market}", uncovered=True, **known)
        return Price(None, f"rate card {card.id} has no {column} rate for {market} (n/a)", **known)
    if column == "marketing" and ctx["marketing_max_price"] is not None:
        return Price(None, UNDER_BID.text(bid=f"{ctx['marketing_max_price']} {currency}"), **known)
    steps = card.tiers.get(column, {}).get(market)
    volume = ctx["volume_messages_this_month"]
    if not steps:
        if not rates.tiered_on(day, column) or volume == 0:
            return Price(list_rate, "", **known)  # the month's first message is in the first tier, whatever it is
        unsourced = (f"Meta discounts {column} by monthly volume, but rate card {card.id} has no {currency} "
                     f"volume tiers for {market}")
        if volume is None:
            return Price(list_rate, "", **{**known, "defaults": (*defaults, "volume_messages_this_month")},
                         note=f"{unsourced}; the list rate is an upper bound")
        # Uncovered: Meta's own average billed rate (pricing analytics, tiers already in it) may price it.
        return Price(None, TIERS_NOT_SOURCED.text(unsourced=unsourced, message=f"message {volume + 1:,}",
                                                  rate=f"{list_rate} {currency}"), uncovered=True, **known)
    if volume is None:
        # Tiers only lower the rate, so the list rate is an upper bound when the month's count is unknown.
        return Price(list_rate, "", tier=steps[0], tier_number=1, tiered=True,
                     **{**known, "defaults": (*defaults, "volume_messages_this_month")})
    number, tier = tier_for(steps, volume + 1)
    return Price(tier.rate, "", tier=tier, tier_number=number, tiered=True, volume_before=volume, **known)


def price_group(*, billable: bool, category: str, day: date, participants: tuple[tuple[str, str], ...],
                context: dict[str, Any], rates: RateBook) -> Price:
    """Price a Groups API send: one line per (participant, country), each at its market (PMP-9).

    The amount is the sum when every line is priced (what the send costs if it reaches every
    participant; Meta bills only deliveries), else None with the reason naming the unpriced
    participants. `volume_messages_this_month` is the count in one market, so it applies only when
    every participant is in the same market, and then the participants continue it (each delivery is
    a message of the month: the first is message N+1, the second N+2, ...); otherwise each line's
    volume is unknown (the list rate, an upper bound).
    """
    rule = rates.column_on(day, category)
    if not billable:
        return Price(None, "not billable: Meta charges nothing for this send")
    if rule is None or not rule.per_participant:
        base = category.removeprefix(GROUP_CATEGORY_PREFIX)
        return Price(None, f"no price_columns rule on {day} says how Meta bills a {category} send per participant "
                           f"(at the {base} rate of each one's market, per Meta's Groups pricing, is not in force)")
    map_on = rates.map_on(day)
    markets = {map_on.market_of(c) if map_on else None for _, c in participants}
    ctx = dict(context)
    if len(markets) != 1:
        ctx["volume_messages_this_month"] = None
    volume = ctx.get("volume_messages_this_month")
    lines = tuple(PriceLine(number, country, price_charge(
        billable=True, pricing_model="PMP", category=category, opens_conversation=False, day=day, country=country,
        context=ctx if volume is None else {**ctx, "volume_messages_this_month": volume + reached}, rates=rates))
        for reached, (number, country) in enumerate(participants))
    first = lines[0].price if lines else Price(None, "no participants")
    missing = [line for line in lines if not line.price.known]
    shared = dict(currency=first.currency, card=first.card, basis=first.basis, column=rule.column, rule=rule.id,
                  lines=lines, defaults=tuple(dict.fromkeys(d for line in lines for d in line.price.defaults)))
    if missing or not lines:
        why = "; ".join(f"{line.participant} ({line.country}): {line.price.reason}" for line in missing)
        return Price(None, PARTICIPANTS_UNPRICED.text(unpriced=f"{len(missing)} of {len(lines)}", why=why), **shared)
    return Price(sum((line.price.amount for line in lines), Decimal("0")), "",
                 market=None if len(markets) != 1 else first.market, **shared)


def tier_for(steps: tuple[Tier, ...], message_number: int) -> tuple[int, Tier]:
    """The 1-based number and tier that hold the message numbered `message_number` this month."""
    for number, tier in enumerate(steps, start=1):
        if tier.last is None or message_number <= tier.last:
            return number, tier
    return len(steps), steps[-1]


def explain(price: Price, category: str, country: str, day: date) -> str:
    """The trace sentence for a price: card, market, tier and the arithmetic, or why there is no amount."""
    if price.lines:
        return _explain_group(price, category, day)
    if price.amount is None:
        return f"No price: {price.reason}."
    card = price.card
    assert card is not None
    column = f" (priced at its {price.column} rate: {price.rule})" if price.rule else ""
    text = (f"Rate card {card.id} ({card.currency}, effective {card.effective_from}) prices a {category} message"
            f"{column} to {country} (market {price.market}) on {day} at {price.amount} {price.currency} "
            f"{BASES[price.basis or card.basis]}")
    if price.note:
        return text + f"; {price.note}."
    if not price.tiered:
        return text + "."
    tier = price.tier
    assert tier is not None
    if price.volume_before is None:
        return (text + f": the list rate (tier 1, messages {tier.label}). The month's {category} volume in "
                f"{price.market} is unknown (context volume_messages_this_month not given), so the list rate "
                "is assumed; volume tiers only lower it.")
    return (text + f": {price.volume_before:,} delivered this month before it, so it is message "
            f"{price.volume_before + 1:,}, in tier {price.tier_number} (messages {tier.label}).")


def _explain_group(price: Price, category: str, day: date) -> str:
    parts = []
    for line in price.lines:
        if line.price.known:
            tier = f", tier {line.price.tier_number}" if line.price.tiered else ""
            parts.append(f"{line.participant} ({line.country}, market {line.price.market}{tier}): "
                         f"{line.price.amount} {line.price.currency}")
        else:
            parts.append(f"{line.participant} ({line.country}): no price ({line.price.reason})")
    head = (f"A {category} group send is billed once per participant it reaches, at the {price.column} rate of "
            f"each one's market ({price.rule}), on {day}: " + "; ".join(parts))
    unknown = sorted({line.price.market or line.country for line in price.lines
                      if line.price.tiered and line.price.volume_before is None})
    if unknown:
        head += (f". The month's {price.column} volume in {', '.join(unknown)} is unknown (participants in several "
                 "markets, or context volume_messages_this_month not given), so the list rate is assumed; volume "
                 "tiers only lower it")
    if price.amount is None:
        return head + ". No total: not every participant has a price."
    return head + f". {price.amount} {price.currency} if it reaches all {len(price.lines)}."
