"""The business's pricing context from the store, filled in once the charge is known (the decision
pipeline's pricing step, service.decisions), and the billing currency a WABA is set to.

After the rules decided a billable charge, and only for what the request leaves out:
- `context.currency`: the WABA's billing currency (store.billing; set once via `PUT
  /v1/wabas/<id>/billing-currency` or `policy-service waba currency`);
- `context.volume_messages_this_month`: when the charge's card column has volume tiers (rules/rates/
  categories.yaml `volume_tiers`), the billable messages of that column's categories delivered this
  month (from 00:00 of the 1st in the WABA time zone up to the send) to the recipient's market, from
  the WABA's phone numbers, counted over stored statuses. Meta counts per business portfolio (all its
  WABAs); the store does not know a WABA's portfolio, so the count covers the WABA and says so.
Each value is named in the request's `sources`, so the price's trace entry says where it came from,
and written into the logged request, so the decision replays without the store.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..core.decision import Decision
from ..core.evaluate import reprice
from ..core.identities import recipient_contact
from ..core.messages import DecisionRequest
from ..core.rates import RateBook
from ..core.rulebook import Rulebook
from ..store import billing, business_state
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
    if context.get("volume_messages_this_month") is None and charge.participants is None:
        counted = month_volume(waba_id, charge.category, request.send.to, facts.day, request.send.at,
                               context.get("waba_timezone") or "UTC", rulebook.rates)
        if counted is not None:
            context["volume_messages_this_month"], sources["volume_messages_this_month"] = counted
    added = {name: value for name, value in context.items() if request.context.get(name) != value}
    if not added:
        return request, logged, decision
    request = replace(request, context=context, sources=sources)
    logged = {**logged, "context": {**(logged.get("context") or {}), **added}}
    return request, logged, reprice(decision, request, rulebook)


def month_volume(waba_id: str, category: str, to: str, day, at: datetime, zone: str,
                 rates: RateBook) -> tuple[int, str] | None:
    """The billable messages priced at this category's card column delivered this month to the recipient's
    market from the WABA's numbers, and the sentence naming the count; None when the column has no volume
    tiers on the day or the market is unknown."""
    rule = rates.column_on(day, category)
    column = rule.column if rule else category
    market_map = rates.map_on(day)
    country = recipient_contact(to).region
    if column is None or not rates.tiered_on(day, column) or market_map is None or country == "ZZ":
        return None
    market = market_map.market_of(country)
    if market is None:
        return None
    categories = (column, *(c.category for c in rates.columns if c.column == column and c.covers(day)
                            and not c.per_participant))
    listed = tuple(code for code, named in market_map.countries.items() if named == market)
    every_other = market == market_map.otherwise
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, 1, tzinfo=tz)
    numbers = business_state.numbers_of(waba_id)
    count = billing.count_billed(phone_number_ids=numbers, since=start, until=at, categories=categories,
                                 countries=() if every_other else listed,
                                 except_countries=tuple(market_map.countries) if every_other else ())
    return count, (f"{count:,} billable {'/'.join(categories)} messages delivered to market {market} since "
                   f"{start.isoformat()} from the {len(numbers)} phone number(s) of WABA {waba_id}, counted from "
                   "stored statuses (Meta counts the whole business portfolio; other WABAs of it are not counted)")


def set_currency(waba_id: str, currency: str, source: str) -> dict[str, Any]:
    """Set a WABA's billing currency once: {waba_id, currency, set_at, source, created}. Raises ServiceError
    409 when another currency is already set (Meta never changes it)."""
    try:
        known, created = billing.set_currency(waba_id, currency, source)
    except billing.CurrencyAlreadySet as error:
        raise ServiceError(409, str(error), {"currency": [str(error)]}) from None
    return {**currency_json(known), "created": created}


def currency(waba_id: str) -> dict[str, Any]:
    """A WABA's billing currency; ServiceError 404 when it was never set."""
    known = billing.currency_of(waba_id)
    if known is None:
        raise ServiceError(404, f"no billing currency is set for WABA {waba_id}",
                           {"waba_id": ["no billing currency set"]})
    return currency_json(known)


def currency_json(known: billing.Currency) -> dict[str, Any]:
    """The currency as the API returns it."""
    return {"waba_id": known.waba_id, "currency": known.currency, "set_at": known.set_at.isoformat(),
            "source": known.source}
