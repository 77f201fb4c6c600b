"""Pricing a charge: card by date and currency, market by country, marginal volume tiers, reasons when unknown."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from policy_service.core.evaluate import evaluate
from policy_service.core.messages import DecisionRequest, Message, Send, Template
from policy_service.core.pricing import price_charge, tier_for
from policy_service.core.rates import load_ratebook

from ..conftest import RULES_DIR

BOOK = load_ratebook(RULES_DIR / "rates")
MAY = date(2026, 5, 12)


def price(category="utility", country="GB", day=MAY, model="PMP", billable=True, opens=False, **context):
    return price_charge(billable=billable, pricing_model=model, category=category, opens_conversation=opens,
                        day=day, country=country, context=context, rates=BOOK)


@pytest.mark.parametrize(("before", "amount", "tier"), [
    (0, "0.0220", 1), (99_999, "0.0220", 1), (100_000, "0.0209", 2), (999_999, "0.0209", 2),
    (1_000_000, "0.0198", 3), (80_000_000, "0.0165", 6), (500_000_000, "0.0165", 6),
])
def test_tiers_are_marginal(before, amount, tier):
    """After N delivered this month the message is number N+1; the one that crosses a threshold gets the new tier."""
    result = price(volume_messages_this_month=before)
    assert (result.amount, result.tier_number, result.volume_before) == (Decimal(amount), tier, before)


def test_unknown_volume_prices_at_the_list_rate_and_says_so():
    """Without the month's count the list rate is used (an upper bound) and the default is named."""
    result = price()
    assert (result.amount, result.tier_number, result.volume_before) == (Decimal("0.0220"), 1, None)
    assert "volume_messages_this_month" in result.defaults


def test_marketing_has_no_tiers_and_a_bid_makes_the_price_unknown():
    """Marketing is priced at the list rate whatever the volume; under a max-price bid it has no card price."""
    assert price("marketing", "BR", volume_messages_this_month=10**9).amount == Decimal("0.0625")
    assert not price("marketing", "BR").tiered
    bid = price("marketing", "BR", marketing_max_price="0.05")
    assert bid.amount is None and "max-price bid of 0.05 USD" in bid.reason


def test_rest_of_markets_and_other():
    """Countries without a market of their own are priced at their 'Rest of' market, or at Other."""
    assert (price("marketing", "UY").market, price("marketing", "UY").amount) == ("Rest of Latin America",
                                                                                Decimal("0.0740"))
    assert (price("marketing", "KZ").market, price("marketing", "KZ").amount) == ("Other", Decimal("0.0604"))


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"day": date(2026, 7, 1)}, "no USD rate card for 2026-07-01"),
    ({"day": date(2025, 8, 1)}, "no USD rate card for 2025-08-01"),
    ({"currency": "EUR"}, "no EUR rate card"),
    ({"country": "ZZ"}, "the recipient's country is unknown"),
    ({"category": "service"}, "has no service rate for United Kingdom (n/a)"),
    ({"model": "CBP", "opens": True}, "prices per delivered message, but this CBP charge is billed per conversation"),
    ({"billable": False}, "not billable"),
    ({"model": "CBP", "opens": False}, "rides an open conversation"),
])
def test_unknown_prices_give_the_reason(kwargs, reason):
    """Whatever is missing, the amount is None and the reason names it; nothing is invented."""
    result = price(**kwargs)
    assert result.amount is None and reason in result.reason


def test_tier_for_picks_the_tier_holding_the_number():
    """tier_for numbers tiers from 1 and treats the last as open-ended."""
    steps = BOOK.cards[0].tiers["utility"]["North America"]
    assert [tier_for(steps, n)[0] for n in (1, 80_000, 80_001, 6_000_001, 10**12)] == [1, 1, 2, 6, 6]


def test_a_send_names_card_and_tier_in_its_trace(rulebook, engine):
    """The decision carries charge.price, and the last trace entry names the card, market and tier."""
    send = Send(datetime(2026, 5, 12, 10, tzinfo=UTC), "+447400123456", "template",
                Template("order_update", "en", "utility"))
    decision = evaluate(DecisionRequest(send, (), {"volume_messages_this_month": 100_000}), rulebook=rulebook,
                        engine=engine)
    assert decision.charge.price.amount == Decimal("0.0209")
    entry = decision.trace[-1]
    assert (entry.rule, entry.effect, entry.confidence, entry.determining) == ("meta-usd-2026-04-01", "price", "S",
                                                                               False)
    assert "market United Kingdom" in entry.because and "tier 2 (messages 100,001-1,000,000)" in entry.because
    assert entry.because.startswith("[S: secondary]")


def test_a_free_send_has_no_price_and_no_price_entry(rulebook, engine):
    """A free-form reply inside the window is not billable: price null, reason given, no price trace entry."""
    at = datetime(2026, 5, 12, 10, tzinfo=UTC)
    history = (Message("inbound", datetime(2026, 5, 12, 9, tzinfo=UTC), "text"),)
    decision = evaluate(DecisionRequest(Send(at, "+447400123456", "text"), history, {}), rulebook=rulebook,
                        engine=engine)
    assert decision.charge.billable is False and decision.charge.price is None
    assert decision.charge.price_reason.startswith("not billable")
    assert all(entry.effect != "price" for entry in decision.trace)
