"""Cost forecasts (POST /v1/costs/forecast, `policy-service forecast`, /ui/forecast): lines of messages
priced by the cards in force on the delivery day, volume tiers continuing from this month's stored volume.

The request is contract.pricing.FORECAST; the answer `{total, currency, at, lines, unpriced}` gives each
priced line its rate(s), tier segments and card, and each unpriced line its reason. Amounts are decimal
strings in the one currency asked for (or the WABA's); nothing is converted.

Messages the rules leave free are not charged, by the rules in force at `at`: each service line (the
categories of `service_messages_count_categories`, rules PMP26-1) is decided message by message as the decision
pipeline decides a free-form message to the line's country (a business-scoped user ID of that country, the way
the rules read a recipient's country without a number) after n such messages this month (from the request's
`service_messages_this_month`, default 0; the lines continue one count, the allowance being per phone number):
the line's `free_entry_point` messages inside a free entry point window (FEP-3), the rest inside an open customer
service window. Its `free` says how many are free, by which rules, window by window; `notes` says what the
forecast assumes where the request cannot say (the order within a line, template lines' windows).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ..core.evaluate import evaluate
from ..core.forecast import (
    CUSTOMER_SERVICE_WINDOW,
    FREE_ENTRY_POINT,
    Forecast,
    ForecastLine,
    Free,
    Line,
    RuledCharge,
    forecast,
)
from ..core.identities import recipient_contact
from ..core.messages import DecisionRequest, Message, Send, Template
from ..core.vocabulary import TEMPLATE_CATEGORIES
from ..store import billing
from .decisions import Policy
from .errors import ServiceError
from .pricing import month_volume, require_rate_card


def forecast_costs(policy: Policy, request: dict[str, Any]) -> dict[str, Any]:
    """The forecast for a request loaded by contract.pricing.FORECAST. Raises ServiceError 422 naming currency when
    none is given and the WABA has none set, or when no rate card is in it (given or the WABA's), and naming
    lines.N.free_entry_point for a line whose category the rules are not asked about window by window."""
    rates = policy.rulebook.rates
    at = request["at"]
    zone = request.get("waba_timezone") or "UTC"
    day = at.astimezone(ZoneInfo(zone)).date()  # the WABA's day: its card and month (PMP-5, as decisions count)
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
    counted_categories = policy.rulebook.parameters.get("service_messages_count_categories")
    allowance = tuple(counted_categories.value) if counted_categories else ()
    lines = [Line(line.get("country") or recipient_contact(line["to"]).region, line["category"], line["count"],
                  line.get("free_entry_point", 0)) for line in request["lines"]]
    _refuse_entry_points_the_rules_are_not_asked(lines, (*allowance, *WINDOWED_TEMPLATES))
    volumes: dict[tuple[str, str], int] = {}
    sources: dict[str, str] = {}
    if waba_id:
        market_map = rates.map_on(day)
        for country, category, *_ in lines:
            rule = rates.column_on(day, category)
            column = rule.column if rule else category
            market = market_map.market_of(country) if market_map else None
            if market is None or column is None or (market, column) in volumes:
                continue
            counted = month_volume(waba_id, category, country, day, at, zone, rates)
            if counted is not None:
                volumes[(market, column)], sources[f"{market} {column}"] = counted
    already = request.get("service_messages_this_month", 0)
    result = forecast(lines, day=day, currency=currency, rates=rates, volumes=volumes, allowance=allowance,
                      windowed=WINDOWED_TEMPLATES, charge_of=rules_charges(policy, at, zone, allowance),
                      allowance_before=already)
    return {**forecast_json(result, at.isoformat(), sources, waba_id), "service_messages_this_month": already,
            "waba_timezone": zone, "notes": _notes(lines, allowance)}


# Template lines whose free entry point messages the rules are asked about: a Cloud API template of the line's own
# category (Meta's vocabulary). marketing_lite (Marketing Messages API), authentication-international (an eligible
# business's) and the Groups API's categories need more of the send than a line says.
WINDOWED_TEMPLATES = tuple(sorted(category for category, template in TEMPLATE_CATEGORIES.items()
                                  if category == template))


def _refuse_entry_points_the_rules_are_not_asked(lines: list[Line], asked: tuple[str, ...]) -> None:
    """A 422 naming lines.N.free_entry_point for a line whose free entry point messages the rules are not asked about:
    they would be charged without a word."""
    errors = {f"lines.{index}.free_entry_point": [
        f"the rules are asked about free entry point messages of {', '.join(asked)} lines only; a {line.category} "
        "line is priced as charged wherever it is sent: leave its free entry point messages out of count"]
        for index, line in enumerate(lines) if line.free_entry_point and line.category not in asked}
    if errors:
        raise ServiceError(422, f"invalid request: {next(iter(errors))}: not asked of the rules by window", errors)


def _notes(lines: list[Line], allowance: tuple[str, ...]) -> list[str]:
    """What the forecast assumes where the request cannot say, one sentence each (none for a case not in it)."""
    notes = []
    if any(line.category in allowance for line in lines):
        notes.append(
            f"{'/'.join(allowance)} lines: the messages a line gives as free_entry_point are decided as sent inside a "
            "free entry point window, the rest inside an open customer service window (a free-form message can be "
            "sent nowhere else); in the month's count a line's free entry point messages come first and count when "
            "the rules give them a counted category, so the allowance they use is not left for the others (of the "
            "orders they may be sent in, the one that costs most).")
    if any(line.category not in allowance for line in lines):
        notes.append(
            "Template lines: the messages a line gives as free_entry_point are decided as sent inside a free entry "
            "point window; the rest are priced as charged, as if delivered outside any customer service or free "
            "entry point window: one the rules in force leave free where it is sent costs nothing, so each amount is "
            "at most what the line costs.")
    return notes


def rules_charges(policy: Policy, at: datetime, zone: str = "UTC",
                  allowance: tuple[str, ...] = ()) -> Callable[[str, str, str, int], RuledCharge | None]:
    """The rules' charge of a message of `category` (an `allowance` category: a free-form message; else an approved
    template of that category) to a recipient in `country` at `at` (WABA time zone `zone`), sent in `window`
    (core.forecast CUSTOMER_SERVICE_WINDOW: the user wrote a minute before; FREE_ENTRY_POINT: the user wrote from
    an ad two hours before and the business's free-form reply an hour before opened the free entry point window,
    the customer service window open too), after n counted messages this month: the decision pipeline's engine on
    the rule files, asked as `(country, category, window, n)`. The recipient is a business-scoped user ID of the
    country (`BR.forecast`): the rules read its country from the prefix as they read a number's, so no sample
    number is needed (a code no number can be in, AQ, reads as an unknown country, ZZ). Each call asks the rules;
    core.forecast.Answers decides which counts to ask about."""
    histories = {
        CUSTOMER_SERVICE_WINDOW: (Message(direction="inbound", at=at - timedelta(minutes=1), type="text"),),
        FREE_ENTRY_POINT: (Message(direction="inbound", at=at - timedelta(hours=2), type="text",
                                   referral={"source_type": "ad", "source_id": "forecast"}),
                           Message(direction="outbound", at=at - timedelta(hours=1), type="text", status="delivered")),
    }

    def charge_of(country: str, category: str, window: str, count: int) -> RuledCharge | None:
        template = None if category in allowance else Template("forecast", "en", category)
        send = Send(at=at, to=f"{country}.forecast", type="template" if template else "text", template=template)
        context = {"service_messages_this_month": count, "waba_timezone": zone}
        decision = evaluate(DecisionRequest(send, histories[window], context), rulebook=policy.rulebook,
                            engine=policy.engine)
        charge = decision.charge
        if charge is None or charge.rule is None:
            return None
        because = next((r.because for r in decision.trace if r.rule == charge.rule), "")
        return RuledCharge(charge.billable, charge.rule, because, charge.category)

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
                      "free_entry_point": line.free_entry_point, "reason": line.reason, "free": _free(line)}
                     for line in result.unpriced],
        "volume_sources": sources,
        "volume_note": VOLUME_NOTE.format(waba_id=waba_id) if waba_id else (
            "no waba_id: volume tiers start at the month's first message (an upper bound: tiers only lower rates)"),
    }


# Meta counts a volume tier's messages per business portfolio (every WABA of it), market and category, in a calendar
# month from 12 am in the WABA time zone, charged messages only (whatsapp-rules.md PMP-5, from Meta's pricing page,
# rules/rates/categories.yaml PMP-5.volume-tiers); the store knows which numbers are a WABA's, not which WABAs share
# a portfolio.
VOLUME_NOTE = (
    "volume tiers continue from the charged messages of WABA {waba_id}'s phone numbers stored this month; Meta counts "
    "the whole business portfolio (every WABA of it) per market and category (PMP-5.volume-tiers, "
    "https://developers.facebook.com/documentation/business-messaging/whatsapp/pricing), and which WABAs share its "
    "portfolio is not known here, so another WABA's messages are not counted (beyond the tier Meta's "
    "VOLUME_BASED_PRICING_TIER_UPDATE last said, volume_sources): the tiers may start lower than Meta's, and each "
    "amount is at most what Meta charges")


def _amounts(result: Forecast) -> Callable[[Decimal], str]:
    """A formatter of the forecast's amounts: exact, all with as many decimals as the most precise one."""
    amounts = [result.total, *(line.amount for line in result.priced),
               *(segment.amount for line in result.priced for segment in line.segments)]
    places = max((max(0, -int(amount.as_tuple().exponent)) for amount in amounts), default=0)
    return lambda amount: f"{amount:.{places}f}"


def _free(line: ForecastLine) -> dict[str, Any] | None:
    """How many of the line's messages the rules leave free and why, in all and window by window (`by_window`);
    None: no allowance applies to its category."""
    free = line.free
    if free is None:
        return None
    return {**_run(free), "by_window": [{"window": run.window, "messages": run.messages, **_run(run)}
                                        for run in free.runs]}


def _run(free: Free) -> dict[str, Any]:
    return {"count": free.count, "rule": free.rule, "because": free.because, "charged_rule": free.charged_by}


def _line(line: ForecastLine, show: Callable[[Decimal], str]) -> dict[str, Any]:
    card = line.price.card
    rates = {str(segment.rate) for segment in line.segments}
    return {
        "line": line.index, "country": line.country, "market": line.price.market, "category": line.category,
        "count": line.count, "free_entry_point": line.free_entry_point, "amount": show(line.amount),
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
