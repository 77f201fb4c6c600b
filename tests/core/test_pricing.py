"""Pricing a charge: card by date and currency, market by country, marginal volume tiers, reasons when unknown."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from policy_service.core.evaluate import evaluate
from policy_service.core.messages import DecisionRequest, Message, Send, Template
from policy_service.core.pricing import explain, price_charge, price_group, tier_for
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
    ({"day": date(2027, 1, 1)}, "no USD rate card for 2027-01-01"),
    ({"day": date(2026, 7, 1)}, "meta-usd-2026-07-01 is a partial copy of Meta's USD card: its source gives no "
                                "rate for market United Kingdom (it lists Brazil)"),
    ({"day": date(2026, 7, 1), "country": "BR", "category": "authentication-international"},
     "its source gives no authentication-international rate for Brazil"),
    ({"category": "business_agent", "day": date(2026, 9, 1)}, "billed per token"),
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
    steps = BOOK.card_on(MAY, "USD").tiers["utility"]["North America"]
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


def test_done_when_brazil_marketing_in_brl_november_2026():
    """Issue 23: Brazil marketing on 2026-11-10 in BRL costs 0.3217 BRL (card of 2026-10-01)."""
    result = price("marketing", "BR", date(2026, 11, 10), currency="BRL")
    assert (result.amount, result.currency, result.card.id) == (Decimal("0.3217"), "BRL", "meta-brl-2026-10-01")


def test_done_when_india_marketing_in_inr_october_2025():
    """Issue 23: India marketing on 2025-10-15 in INR costs 0.7846 INR (card of 2025-10-01)."""
    result = price("marketing", "IN", date(2025, 10, 15), currency="INR")
    assert (result.amount, result.card.id) == (Decimal("0.7846"), "meta-inr-2025-10-01")


def test_done_when_kenya_utility_tier_2_in_usd_november_2026():
    """Issue 23: a Kenyan utility template as the 150,001st utility message to Rest of Africa costs 0.0038 USD."""
    result = price("utility", "KE", date(2026, 11, 10), currency="USD", volume_messages_this_month=150_000)
    assert (result.amount, result.market, result.tier_number) == (Decimal("0.0038"), "Rest of Africa", 2)


def test_done_when_marketing_messages_api_send_is_priced():
    """Issue 23: a Marketing Messages API send (marketing_lite) to Brazil on 2026-05-10 is priced at marketing."""
    result = price("marketing_lite", "BR", date(2026, 5, 10))
    assert (result.amount, result.column, result.rule) == (Decimal("0.0625"), "marketing", "PMP-8.marketing-lite-rate")


def test_india_2026_revision_and_untiered_inr_volume():
    """India's card of 2026-01-01 (0.8631); INR utility beyond the month's first message has no sourced tier."""
    assert price("marketing", "IN", date(2026, 2, 10), currency="INR").amount == Decimal("0.8631")
    first = price("utility", "IN", date(2026, 2, 10), currency="INR", volume_messages_this_month=0)
    assert first.amount == Decimal("0.1150")
    unknown = price("utility", "IN", date(2026, 2, 10), currency="INR")
    assert unknown.amount == Decimal("0.1150") and "upper bound" in unknown.note
    assert "volume_messages_this_month" in unknown.defaults
    later = price("utility", "IN", date(2026, 2, 10), currency="INR", volume_messages_this_month=30_000_000)
    assert later.amount is None and "no INR volume tiers for India" in later.reason
    assert "upper bound" in later.reason


def test_service_from_october_2026_and_authentication_international():
    """Service is priced from the October 2026 cards; authentication-international by its own column."""
    assert price("service", "BR", date(2026, 11, 10), currency="BRL").amount == Decimal("0.035")
    assert price("authentication-international", "BD", date(2026, 11, 10), currency="AED").amount == \
        Decimal("0.3526")
    assert price("authentication-international", "IN", MAY).amount == Decimal("0.0304")


def test_partial_eur_card_prices_poland_in_july_and_names_the_missing_column():
    """Poland is a market of its own from July 2026; the EUR copy has no authentication column."""
    assert price("marketing", "PL", date(2026, 7, 10), currency="EUR").amount == Decimal("0.0303")
    missing = price("authentication", "PL", date(2026, 7, 10), currency="EUR")
    assert missing.amount is None and "its source gives no authentication rate for Poland" in missing.reason


def test_group_send_is_priced_per_participant_at_each_market():
    """A group marketing template: one line per participant at its market's rate; the total is their sum."""
    members = (("+5511987650000", "BR"), ("+447400123456", "GB"), ("+12025550123", "US"))
    result = price_group(billable=True, category="group_marketing", day=MAY, participants=members, context={},
                         rates=BOOK)
    assert [(line.country, line.price.amount) for line in result.lines] == [
        ("BR", Decimal("0.0625")), ("GB", Decimal("0.0529")), ("US", Decimal("0.0250"))]
    assert result.amount == Decimal("0.1404") and result.rule == "PMP-9.group-marketing"
    partly = price_group(billable=True, category="group_marketing", day=date(2026, 11, 10), participants=members,
                         context={"currency": "BRL"}, rates=BOOK)
    assert partly.amount is None and partly.lines[0].price.amount == Decimal("0.3217")
    assert partly.reason.startswith("2 of 3 participants have no price")


def test_group_participants_in_one_market_continue_the_months_volume():
    """Each delivery of a group send is a message of the month: with 99,999 GB utility delivered, the first
    participant is message 100,000 (tier 1) and the second 100,001 (tier 2), not both message 100,000. Participants
    in several markets are priced at the list rate, and the trace sentence says the volume is unknown."""
    members = (("+447400123456", "GB"), ("+447400123457", "GB"))
    result = price_group(billable=True, category="group_utility", day=MAY, participants=members,
                         context={"volume_messages_this_month": 99_999}, rates=BOOK)
    assert [(line.price.volume_before, line.price.tier_number, line.price.amount) for line in result.lines] == [
        (99_999, 1, Decimal("0.0220")), (100_000, 2, Decimal("0.0209"))]
    mixed = price_group(billable=True, category="group_utility", day=MAY, context={"volume_messages_this_month": 5},
                        participants=(("+447400123456", "GB"), ("+5511987650000", "BR")), rates=BOOK)
    assert {line.price.volume_before for line in mixed.lines} == {None}
    assert "volume in Brazil, United Kingdom is unknown" in explain(mixed, "group_utility", "GB", MAY)
