"""The business's pricing context from the store, filled in once the charge is known (the decision
pipeline's pricing step, service.decisions), and the billing currency a WABA is set to.

After the rules decided a billable charge, and only for what the request leaves out:
- `context.currency`: the WABA's billing currency (store.billing; set once via `PUT
  /v1/wabas/<id>/billing-currency` or `policy-service waba currency`);
- `context.volume_messages_this_month`: when the charge's card column has volume tiers (rules/rates/
  categories.yaml `volume_tiers`), the billable messages of that column's categories delivered this
  month (from 00:00 of the 1st in the WABA time zone up to the send) to the recipient's market, from
  the WABA's phone numbers, counted over stored statuses. Meta counts per business portfolio (all its
  WABAs); the store does not know a WABA's portfolio, so the count covers the WABA and says so, raised to
  the tier Meta's own VOLUME_BASED_PRICING_TIER_UPDATE for the month, market and column last put it in.
  A group send whose participants are all in one market reads that market's count too.
Each value is named in the request's `sources`, so the price's trace entry says where it came from,
and written into the logged request, so the decision replays without the store.

Where no card prices the send (no card for the day, a partial card without its market or cell, or a card without
the volume tiers Meta applies to it), Meta's own average billed rate for the WABA, country, category and month
(imported pricing analytics, review.costs.average_rate) prices it, on a card labelled as that average.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from ..contract.schemas import whole_number
from ..core.decision import Decision
from ..core.evaluate import reprice
from ..core.identities import recipient_contact
from ..core.messages import DecisionRequest
from ..core.pricing import price_charge
from ..core.rates import CATEGORIES, MarketMap, RateBook, RateCard, iso_4217
from ..core.rulebook import Rulebook
from ..review.costs import META_AVERAGE_CARD, average_rate
from ..store import billing, business_state
from . import analytics
from .errors import ServiceError


def fill_in(request: DecisionRequest, logged: dict[str, Any], phone_number_id: str | None, decision: Decision,
            rulebook: Rulebook) -> tuple[DecisionRequest, dict[str, Any], Decision]:
    """The request, logged request and decision with the stored currency and volume used for the price
    (unchanged when the charge is not billable, the WABA is unknown or the request gives both)."""
    charge, facts = decision.charge, decision.facts
    waba_id = business_state.waba_of(phone_number_id) if phone_number_id else None
    if charge is None or facts is None or not charge.billable or waba_id is None:
        return request, logged, decision
    context, sources = dict(request.context), dict(request.sources)
    if context.get("currency") is None:
        known = billing.currency_of(waba_id)
        if known is not None:
            context["currency"], sources["currency"] = known.currency, known.describe
    country = volume_country(request, decision, rulebook.rates)
    if context.get("volume_messages_this_month") is None and country is not None:
        counted = month_volume(waba_id, charge.category, country, facts.day, request.send.at,
                               context.get("waba_timezone") or "UTC", rulebook.rates)
        if counted is not None:
            context["volume_messages_this_month"], sources["volume_messages_this_month"] = counted
    added = {name: value for name, value in context.items() if request.context.get(name) != value}
    if added:
        request = replace(request, context=context, sources=sources)
        logged = {**logged, "context": {**(logged.get("context") or {}), **added}}
        decision = reprice(decision, request, rulebook)
    return request, logged, at_meta_average(request, decision, waba_id, rulebook)


def volume_country(request: DecisionRequest, decision: Decision, rates: RateBook) -> str | None:
    """The country (ISO 3166) whose market's stored volume this month prices the send: the recipient's; for a group
    send (priced per participant), the participants' when they are all in one market, as a 1:1 send's is (a count
    is of one market; participants in several markets are priced at the list rate, an upper bound, and said so:
    core.pricing.price_group). None when no one market is known."""
    charge, facts = decision.charge, decision.facts
    if charge is None or facts is None:
        return None
    if charge.participants is None:
        return recipient_contact(request.send.to).region
    countries = {recipient_contact(number).region for number in request.send.participants}
    market_map = rates.map_on(facts.day)
    markets = {market_map.market_of(country) for country in countries} if market_map else {None}
    return next(iter(countries)) if len(markets) == 1 and None not in markets else None


def at_meta_average(request: DecisionRequest, decision: Decision, waba_id: str, rulebook: Rulebook) -> Decision:
    """Where no card prices the send (no card for the day, a partial card without its market or cell, or a card
    without the volume tiers Meta applies to it: core.pricing.Price.uncovered), the decision priced at Meta's
    average billed rate for this WABA, country, category and month (imported pricing analytics), on a card
    labelled as that average; unchanged when there is none or the WABA's currency (the analytics' currency) is
    not the one asked for."""
    charge, facts = decision.charge, decision.facts
    if charge is None or facts is None or charge.price is not None or charge.participants is not None:
        return decision
    rates = rulebook.rates
    country = recipient_contact(request.send.to).region
    currency = request.context.get("currency")
    again = price_charge(billable=charge.billable, pricing_model=charge.pricing_model, category=charge.category,
                         opens_conversation=charge.opens_conversation, day=facts.day, country=country,
                         context=request.context, rates=rates)
    known = billing.currency_of(waba_id)
    if not again.uncovered or known is None or known.currency != (currency or "USD"):
        return decision
    found = average_rate(waba_id, country, charge.category, facts.day)
    if found is None:
        return decision
    rate, sentence = found
    rule = rates.column_on(facts.day, charge.category)
    column = (rule.column if rule else charge.category) or charge.category
    first = facts.day.replace(day=1)
    last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    # The country's market as the cards name it on the day ("Brazil", not "BR"), so a price at the average is
    # grouped with card prices of the same market (cost report, group_by=market); the country where no map says.
    market_map = rates.map_on(facts.day)
    market = (market_map.market_of(country) if market_map else None) or country
    card = RateCard(
        id=f"{META_AVERAGE_CARD}{waba_id}-{first:%Y-%m}", currency=known.currency, basis="message",
        title=f"Meta's average billed rate for WABA {waba_id} in {first:%Y-%m} (pricing analytics), not a rate card",
        effective_from=first, effective_until=last, citation=analytics.ANALYTICS_CITATION, source=sentence,
        confidence="S", rates={market: {c: (rate if c == column else None) for c in CATEGORIES}},
        note="Where no card covers the day: Meta's own cost ÷ volume for this WABA, country and category this "
             "month; volume tiers are already in it.", partial=True)
    book = RateBook(cards=(card,), version=rates.version, columns=rates.columns, maps=(MarketMap(
        id=f"analytics-countries-{first:%Y-%m}", title="Meta's pricing analytics are per country",
        effective_from=first, effective_until=last, citation=analytics.ANALYTICS_CITATION, source=sentence,
        confidence="S", countries={country: market}, otherwise=None),))
    return reprice(decision, request, replace(rulebook, rates=book))


def month_volume(waba_id: str, category: str, country: str, day, at: datetime, zone: str,
                 rates: RateBook) -> tuple[int, str] | None:
    """The billable messages priced at this category's card column delivered this month to the recipient's
    market from the WABA's numbers, and the sentence naming the count; None when the column has no volume
    tiers on the day or the market is unknown."""
    rule = rates.column_on(day, category)
    column = rule.column if rule else category
    market_map = rates.map_on(day)
    if column is None or not rates.tiered_on(day, column) or market_map is None or country == "ZZ":
        return None
    market = market_map.market_of(country)
    if market is None:
        return None
    categories = (column, *(c.category for c in rates.columns if c.column == column and c.covers(day)
                            and not c.per_participant))
    shown = "/".join(categories)  # count_billed matches each one's other spelling too
    listed = tuple(code for code, named in market_map.countries.items() if named == market)
    every_other = market == market_map.otherwise
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, 1, tzinfo=tz)
    numbers = business_state.numbers_of(waba_id)
    count = billing.count_billed(phone_number_ids=numbers, since=start, until=at, categories=categories,
                                 countries=() if every_other else listed,
                                 except_countries=tuple(market_map.countries) if every_other else ())
    sentence = (f"{count:,} billable {shown} messages delivered to market {market} since {start.isoformat()} from "
                f"the {len(numbers)} phone number(s) of WABA {waba_id}, counted from stored statuses by maintained "
                "counters (Meta counts the whole business portfolio; other WABAs of it are not counted)")
    floor, unread = meta_tier_floor(waba_id, column, market, start, at)
    if unread:  # a stored update whose tier is unreadable is not used, and said so (never a failed decision)
        sentence = f"{sentence}; not read: " + "; ".join(unread)
    if floor is not None and floor[0] > count:
        return floor[0], f"{sentence}; raised to {floor[0]:,}: {floor[1]}"
    return count, sentence


def meta_tier_floor(waba_id: str, column: str, market: str, start: datetime,
                    at: datetime) -> tuple[tuple[int, str] | None, tuple[str, ...]]:
    """(floor, unread). floor: the fewest messages this month before `at` that Meta's own tier updates for the WABA
    imply in this market and card column (a VOLUME_BASED_PRICING_TIER_UPDATE putting it in tier "A:B" means A-1 were
    counted over its business portfolio), and the sentence naming the update; None when no update received from a
    month before `start` (the month's first moment, WABA time zone: an update may announce the month's tier before
    it begins) up to `at` names this month, market and column with a readable tier. Meta's region and category are
    matched to the card's market and column without case, spaces or punctuation ("REST_OF_AFRICA",
    "AUTHENTICATION_INTERNATIONAL") and "&" read as "and"; an update in another spelling is not used. unread: a
    sentence for each update of this month, market and column whose tier does not start with ASCII digits
    (contract.schemas.whole_number: "¹50001:250000000", stored as the webhook gave it), which is not used."""
    month = f"{start:%Y-%m}"
    best: tuple[int, str] | None = None
    unread: list[str] = []
    for received, info in billing.tier_updates(waba_id, start - timedelta(days=31), at):
        if (str(info.get("effective_month")) != month or _bare(info.get("region")) != _bare(market)
                or _bare(info.get("pricing_category")) != _bare(column)):
            continue
        tier = str(info.get("tier") or "")
        first = whole_number(tier.partition(":")[0])
        if first is None:
            unread.append(f"Meta's {billing.TIER_UPDATE} received at {received.isoformat()} names tier {tier!r}, "
                          "which does not start with a whole number of ASCII digits")
            continue
        if best is None or first - 1 > best[0]:
            best = (first - 1, f"Meta's {billing.TIER_UPDATE} received at {received.isoformat()} put WABA "
                               f"{waba_id} in tier {tier} for {info.get('region')} {info.get('pricing_category')} "
                               f"in {month} (counted over its business portfolio)")
    return best, tuple(unread)


def _bare(name: Any) -> str:
    """A market or category name without case, spaces or punctuation, "&" read as "and"."""
    return "".join(c for c in str(name or "").upper().replace("&", "AND") if c.isalnum())


def set_currency(waba_id: str, currency: str, source: str, rates: RateBook) -> dict[str, Any]:
    """Set a WABA's billing currency once: {waba_id, currency, set_at, source, created, notes}; `currency` an ISO
    4217 code (contract.schemas.CURRENCY checked it), `notes` what it means for pricing under `rates`
    (currency_notes). Raises ServiceError 409 when another currency is already set (Meta never changes it). A stored
    code that is no ISO 4217 currency (XYZ, stored before codes were checked) was never Meta's: it is replaced, and
    the source says so."""
    stored = billing.currency_of(waba_id)
    if stored is not None and stored.currency != currency and iso_4217().problem(stored.currency):
        known = billing.replace_currency(waba_id, currency, f"{source}, replacing {stored.currency} (no ISO 4217 "
                                                            "currency)")
        return {**currency_json(known, rates), "created": True}
    try:
        known, created = billing.set_currency(waba_id, currency, source)
    except billing.CurrencyAlreadySet as error:
        raise ServiceError(409, str(error), {"currency": [str(error)]}) from None
    return {**currency_json(known, rates), "created": created}


def require_rate_card(rates: RateBook, currency: str, *, field: str = "currency", billed: bool = False) -> None:
    """Refuse, as a 422 naming `field`, prices asked for in an ISO 4217 currency no rate card is in (a report's
    or a forecast's): every price would be null. With `billed`, a currency some stored WABA is billed in passes
    (its Meta pricing analytics are in it: a cost report shows them)."""
    if currency in rates.currencies() or (billed and billing.wabas_billed_in(currency)):
        return
    problem = f"no rate card is in {currency} (cards: {', '.join(rates.currencies()) or 'none'})" + (
        " and no WABA is billed in it" if billed else "")
    raise ServiceError(422, f"invalid request: {field}: {problem}", {field: [problem]})


def currency(waba_id: str, rates: RateBook) -> dict[str, Any]:
    """A WABA's billing currency: {waba_id, currency, set_at, source, created: false, notes} (the shape PUT answers;
    reading sets nothing; `notes` under `rates`, as they are now); ServiceError 404 when it was never set."""
    known = billing.currency_of(waba_id)
    if known is None:
        raise ServiceError(404, f"no billing currency is set for WABA {waba_id}",
                           {"waba_id": ["no billing currency set"]})
    return {**currency_json(known, rates), "created": False}


def currency_json(known: billing.Currency, rates: RateBook) -> dict[str, Any]:
    """The currency as the API returns it, with its notes under `rates` (currency_notes)."""
    return {"waba_id": known.waba_id, "currency": known.currency, "set_at": known.set_at.isoformat(),
            "source": known.source, "notes": currency_notes(known.currency, rates)}


def currency_notes(currency: str, rates: RateBook) -> list[str]:
    """What a WABA's billing currency means for pricing its sends under `rates`, one sentence each: none when a rate
    card is in it; when none is, that its sends cannot be priced from a card until one in it is imported; for a
    stored code that is no ISO 4217 currency, that it can be replaced."""
    problem = iso_4217().problem(currency)
    if problem is not None:
        return [f"{problem}: it was stored before codes were checked; setting the WABA's real billing currency "
                "replaces it"]
    if currency in rates.currencies():
        return []
    return [f"no rate card is in {currency} (cards: {', '.join(rates.currencies()) or 'none'}): sends priced in "
            f"{currency} (this WABA's, unless context.currency names another) have no card price (charge.price null, "
            f"charge.price_reason says why) until a rate card in {currency} is imported into rules/rates/ "
            "(policy-service rates import); meanwhile Meta's average billed rate stands in where this WABA's pricing "
            "analytics are imported"]

