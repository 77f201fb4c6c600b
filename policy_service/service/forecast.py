"""Cost forecasts (POST /v1/costs/forecast, `policy-service forecast`, /ui/forecast): lines of messages
priced by the cards in force on the delivery day, volume tiers continuing from this month's stored volume.

The request is contract.pricing.FORECAST; the answer `{total, currency, at, lines, unpriced}` gives each
priced line its rate(s), tier segments and card, and each unpriced line its reason. Amounts are decimal
strings in the one currency asked for (or the WABA's); nothing is converted.

Messages the rules leave free by a monthly count are not charged, by the rules in force at `at`: each
service line (the categories of `service_messages_count_categories`, rules PMP26-1) is decided as a service
message inside an open customer service window after n such messages this month (from the request's
`service_messages_this_month`, default 0; the lines continue one count, the allowance being per phone number),
and its `free` says how many are free and by which rule.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers

from ..core.evaluate import evaluate
from ..core.forecast import Forecast, ForecastLine, RuledCharge, forecast
from ..core.identities import recipient_contact
from ..core.messages import DecisionRequest, Message, Send
from ..store import billing
from .decisions import Policy
from .errors import ServiceError
from .pricing import month_volume, require_rate_card


def forecast_costs(policy: Policy, request: dict[str, Any]) -> dict[str, Any]:
    """The forecast for a request loaded by contract.pricing.FORECAST. Raises ServiceError 422 naming currency when
    none is given and the WABA has none set, or when no rate card is in it (given or the WABA's)."""
    rates = policy.rulebook.rates
    at = request["at"]
    day = at.astimezone(UTC).date()
    waba_id = request.get("waba_id")
    currency = request.get("currency")
    if currency is None:
        known = billing.currency_of(waba_id) if waba_id else None
        if known is None:
            where = f"WABA {waba_id} has no billing currency set" if waba_id else "no waba_id with a currency"
            raise ServiceError(422, f"invalid request: currency: required ({where})",
                               {"currency": [f"required: {where}"]})
        currency = known.currency
    require_rate_card(rates, currency)  # a forecast in a currency no card is in would price nothing
    lines = [(line.get("country") or recipient_contact(line["to"]).region, line["category"], line["count"])
             for line in request["lines"]]
    volumes: dict[tuple[str, str], int] = {}
    sources: dict[str, str] = {}
    if waba_id:
        market_map = rates.map_on(day)
        for country, category, _ in lines:
            rule = rates.column_on(day, category)
            column = rule.column if rule else category
            market = market_map.market_of(country) if market_map else None
            if market is None or column is None or (market, column) in volumes:
                continue
            counted = month_volume(waba_id, category, country, day, at, "UTC", rates)
            if counted is not None:
                volumes[(market, column)], sources[f"{market} {column}"] = counted
    already = request.get("service_messages_this_month", 0)
    counted_categories = policy.rulebook.parameters.get("service_messages_count_categories")
    result = forecast(lines, day=day, currency=currency, rates=rates, volumes=volumes,
                      allowance=tuple(counted_categories.value) if counted_categories else (),
                      charge_of=service_charges(policy, at), allowance_before=already)
    return {**forecast_json(result, at.isoformat(), sources, waba_id), "service_messages_this_month": already}


def service_charges(policy: Policy, at: datetime) -> Callable[[str, int], RuledCharge | None]:
    """The rules' charge of a service message to a number in `country` at `at`, inside an open customer service
    window (a user's text a minute before), after n service messages this month: the decision pipeline's engine
    on the rule files, asked as `(country, n)`. Answers are kept per country and, as an allowance counts up from
    the month's first message, read off what is known (free at n, so free below; charged at n, so above)."""
    known: dict[str, tuple[tuple[int, RuledCharge] | None, tuple[int, RuledCharge] | None]] = {}

    def charge_of(country: str, count: int) -> RuledCharge | None:
        free, charged = known.get(country, (None, None))
        if free is not None and count <= free[0]:
            return free[1]
        if charged is not None and count >= charged[0]:
            return charged[1]
        example = phonenumbers.example_number(country)
        if example is None:
            return None  # no number of that country to decide for (ZZ): the line is priced as before
        send = Send(at=at, to=phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164), type="text")
        window = (Message(direction="inbound", at=at - timedelta(minutes=1), type="text"),)
        decision = evaluate(DecisionRequest(send, window, {"service_messages_this_month": count}),
                            rulebook=policy.rulebook, engine=policy.engine)
        charge = decision.charge
        if charge is None or charge.rule is None:
            return None
        because = next((r.because for r in decision.trace if r.rule == charge.rule), "")
        found = RuledCharge(charge.billable, charge.rule, because)
        if charge.billable:
            known[country] = (free, (count, found) if charged is None or count < charged[0] else charged)
        else:
            known[country] = ((count, found) if free is None or count > free[0] else free, charged)
        return found

    return charge_of


def forecast_json(result: Forecast, at: str, sources: dict[str, str], waba_id: str | None) -> dict[str, Any]:
    """The forecast as the API answers it: every amount (total, line, tier) a decimal string with the same
    number of decimals, the most any of them needs, so nothing is rounded ("3217.0000" beside "175.0000")."""
    show = _amounts(result)
    return {
        "total": show(result.total),
        "currency": result.currency,
        "at": at,
        "lines": [_line(line, show) for line in result.priced],
        "unpriced": [{"line": line.index, "country": line.country, "category": line.category, "count": line.count,
                      "reason": line.reason, "free": _free(line)} for line in result.unpriced],
        "volume_sources": sources,
        "volume_note": None if waba_id else "no waba_id: volume tiers start at the month's first message",
    }


def _amounts(result: Forecast) -> Callable[[Decimal], str]:
    """A formatter of the forecast's amounts: exact, all with as many decimals as the most precise one."""
    amounts = [result.total, *(line.amount for line in result.priced),
               *(segment.amount for line in result.priced for segment in line.segments)]
    places = max((max(0, -int(amount.as_tuple().exponent)) for amount in amounts), default=0)
    return lambda amount: f"{amount:.{places}f}"


def _free(line: ForecastLine) -> dict[str, Any] | None:
    """How many of the line's messages the rules leave free and why (None: no allowance applies to its category)."""
    free = line.free
    if free is None:
        return None
    return {"count": free.count, "rule": free.rule, "because": free.because, "charged_rule": free.charged_by}


def _line(line: ForecastLine, show: Callable[[Decimal], str]) -> dict[str, Any]:
    card = line.price.card
    rates = {str(segment.rate) for segment in line.segments}
    return {
        "line": line.index, "country": line.country, "market": line.price.market, "category": line.category,
        "count": line.count, "amount": show(line.amount),
        "rate": rates.pop() if len(rates) == 1 else None,
        "column": line.price.column or line.category,
        "volume_before": line.volume_before,
        "tiers": [{"tier": s.tier_number, "first_message": s.first, "last_message": s.last, "count": s.count,
                   "rate": str(s.rate), "amount": show(s.amount)} for s in line.segments],
        "free": _free(line),
        # None only when the rules leave every message free and no card prices the rest (there is no rest).
        "rate_card": None if card is None else {
            "id": card.id, "currency": card.currency, "effective_from": card.effective_from.isoformat(),
            "effective_until": card.effective_until.isoformat() if card.effective_until else None,
            "confidence": card.confidence, "source": card.source, "partial": card.partial},
    }
