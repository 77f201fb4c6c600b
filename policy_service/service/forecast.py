"""Cost forecasts (POST /v1/costs/forecast, `policy-service forecast`, /ui/forecast): lines of messages
priced by the cards in force on the delivery day, volume tiers continuing from this month's stored volume.

The request is contract.pricing.FORECAST; the answer `{total, currency, at, lines, unpriced}` gives each
priced line its rate(s), tier segments and card, and each unpriced line its reason. Amounts are decimal
strings in the one currency asked for (or the WABA's); nothing is converted.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Any

from ..core.forecast import Forecast, ForecastLine, forecast
from ..core.identities import recipient_contact
from ..store import billing
from .decisions import Policy
from .errors import ServiceError
from .pricing import month_volume


def forecast_costs(policy: Policy, request: dict[str, Any]) -> dict[str, Any]:
    """The forecast for a request loaded by contract.pricing.FORECAST. Raises ServiceError 422 when no
    currency is given and the WABA has none set."""
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
    result = forecast(lines, day=day, currency=currency, rates=rates, volumes=volumes)
    return forecast_json(result, at.isoformat(), sources, waba_id)


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
                      "reason": line.reason} for line in result.unpriced],
        "volume_sources": sources,
        "volume_note": None if waba_id else "no waba_id: volume tiers start at the month's first message",
    }


def _amounts(result: Forecast) -> Callable[[Decimal], str]:
    """A formatter of the forecast's amounts: exact, all with as many decimals as the most precise one."""
    amounts = [result.total, *(line.amount for line in result.priced),
               *(segment.amount for line in result.priced for segment in line.segments)]
    places = max((max(0, -int(amount.as_tuple().exponent)) for amount in amounts), default=0)
    return lambda amount: f"{amount:.{places}f}"


def _line(line: ForecastLine, show: Callable[[Decimal], str]) -> dict[str, Any]:
    card = line.price.card
    assert card is not None
    rates = {str(segment.rate) for segment in line.segments}
    return {
        "line": line.index, "country": line.country, "market": line.price.market, "category": line.category,
        "count": line.count, "amount": show(line.amount),
        "rate": rates.pop() if len(rates) == 1 else None,
        "column": line.price.column or line.category,
        "volume_before": line.volume_before,
        "tiers": [{"tier": s.tier_number, "first_message": s.first, "last_message": s.last, "count": s.count,
                   "rate": str(s.rate), "amount": show(s.amount)} for s in line.segments],
        "rate_card": {"id": card.id, "currency": card.currency, "effective_from": card.effective_from.isoformat(),
                      "effective_until": card.effective_until.isoformat() if card.effective_until else None,
                      "confidence": card.confidence, "source": card.source, "partial": card.partial},
    }
