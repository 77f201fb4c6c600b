"""Price a charge: which rate card, market and volume tier apply, and the amount, with the reason.

Input: the charge the rules decided (category, pricing model, billable), the send's day in the WABA
time zone, the recipient's country (from the number), the business's currency, and how many
messages of this pricing category the business portfolio already had delivered this month in this
market (for the volume tiers). Output: a `Price` — the amount as a `Decimal` in the card's currency,
or no amount and the reason it cannot be known. Nothing here is a number of Meta's: every rate,
threshold and market comes from the cards in `rules/rates/` (see rates.py).

Volume tiers are marginal (whatsapp-rules.md PMP-5: counted per business portfolio, market and
category per calendar month, charged messages only; "the tier rate applies only to the messages
inside that tier"): the message numbered N+1 this month, after N charged, is priced at the tier
holding N+1, so the message that crosses a threshold already gets the new tier's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from .rates import BASES, RateBook, RateCard, Tier

# Which basis a charge's pricing model is billed on.
BASIS_OF_MODEL = {"PMP": "message", "CBP": "conversation"}
# Context fields pricing reads (kept apart from the rules' CONTEXT_DEFAULTS; see facts.py).
PRICING_CONTEXT_DEFAULTS: dict[str, Any] = {
    "currency": "USD",
    "volume_messages_this_month": None,
    "marketing_max_price": None,
}


@dataclass(frozen=True)
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

    @property
    def known(self) -> bool:
        """True when the amount is known."""
        return self.amount is not None


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
    defaults = tuple(d for d in defaulted
                     if d == "currency" or (d == "marketing_max_price" and category == "marketing"))
    if not billable:
        return Price(None, "not billable: Meta charges nothing for this send", defaults=defaults)
    if pricing_model == "CBP" and not opens_conversation:
        return Price(None, "rides an open conversation: no new conversation is charged", defaults=defaults)
    currency = ctx["currency"]
    card = rates.card_on(day, currency)
    if card is None:
        covered = ", ".join(f"{c.id} ({c.effective_from}..{c.effective_until or 'open'})"
                            for c in rates.cards if c.currency == currency) or "none"
        return Price(None, f"no {currency} rate card for {day} (cards in {currency}: {covered})",
                     currency=currency, defaults=defaults)
    basis = BASIS_OF_MODEL.get(pricing_model)
    if basis != card.basis:
        return Price(None, f"rate card {card.id} prices {BASES[card.basis]}, but this {pricing_model} charge is "
                           f"billed {BASES.get(basis or '', 'otherwise')}", currency=currency, card=card,
                     defaults=defaults)
    if country == "ZZ":
        return Price(None, "the recipient's country is unknown (the number has no known country calling code)",
                     currency=currency, card=card, basis=basis, defaults=defaults)
    market_map = rates.map_on(day)
    market = market_map.market_of(country) if market_map else None
    if market is None:
        why = f"market map {market_map.id} does not say" if market_map else f"no market map covers {day}"
        return Price(None, f"the market of {country} on {day} is unknown ({why})", currency=currency, card=card,
                     basis=basis, defaults=defaults)
    row = card.rates.get(market)
    if row is None:
        return Price(None, f"rate card {card.id} has no row for market {market}", currency=currency, card=card,
                     market=market, basis=basis, defaults=defaults)
    if category not in row:
        return Price(None, f"rate card {card.id} has no {category!r} column", currency=currency, card=card,
                     market=market, basis=basis, defaults=defaults)
    list_rate = row[category]
    if list_rate is None:
        return Price(None, f"rate card {card.id} has no {category} rate for {market} (n/a)", currency=currency,
                     card=card, market=market, basis=basis, defaults=defaults)
    if category == "marketing" and ctx["marketing_max_price"] is not None:
        return Price(None, f"marketing sent under a max-price bid of {ctx['marketing_max_price']} {currency}: "
                           "Meta charges the delivered price, at most the bid, which no card gives",
                     currency=currency, card=card, market=market, basis=basis, defaults=defaults)
    steps = card.tiers.get(category, {}).get(market)
    volume = ctx["volume_messages_this_month"]
    if not steps:
        return Price(list_rate, "", currency=currency, card=card, market=market, basis=basis, defaults=defaults)
    if volume is None:
        # Tiers only lower the rate, so the list rate is an upper bound when the month's count is unknown.
        return Price(list_rate, "", currency=currency, card=card, market=market, basis=basis, tier=steps[0],
                     tier_number=1, tiered=True, defaults=(*defaults, "volume_messages_this_month"))
    number, tier = tier_for(steps, volume + 1)
    return Price(tier.rate, "", currency=currency, card=card, market=market, basis=basis, tier=tier,
                 tier_number=number, tiered=True, volume_before=volume, defaults=defaults)


def tier_for(steps: tuple[Tier, ...], message_number: int) -> tuple[int, Tier]:
    """The 1-based number and tier that hold the message numbered `message_number` this month."""
    for number, tier in enumerate(steps, start=1):
        if tier.last is None or message_number <= tier.last:
            return number, tier
    return len(steps), steps[-1]


def explain(price: Price, category: str, country: str, day: date) -> str:
    """The trace sentence for a price: card, market, tier and the arithmetic, or why there is no amount."""
    if price.amount is None:
        return f"No price: {price.reason}."
    card = price.card
    assert card is not None
    text = (f"Rate card {card.id} ({card.currency}, effective {card.effective_from}) prices a {category} message "
            f"to {country} (market {price.market}) on {day} at {price.amount} {price.currency} "
            f"{BASES[price.basis or card.basis]}")
    if not price.tiered:
        return text + ("." if category != "marketing" else "; marketing has no volume tiers.")
    tier = price.tier
    assert tier is not None
    if price.volume_before is None:
        return (text + f": the list rate (tier 1, messages {tier.label}). The month's {category} volume in "
                f"{price.market} is unknown (context volume_messages_this_month not given), so the list rate "
                "is assumed; volume tiers only lower it.")
    return (text + f": {price.volume_before:,} delivered this month before it, so it is message "
            f"{price.volume_before + 1:,}, in tier {price.tier_number} (messages {tier.label}).")
