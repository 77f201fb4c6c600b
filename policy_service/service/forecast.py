"""Cost forecasts (POST /v1/costs/forecast, `policy-service forecast`, /ui/forecast): lines of messages
priced by the cards in force on the delivery day, volume tiers continuing from this month's stored volume.

The request is contract.pricing.FORECAST; the answer `{total, currency, at, lines, unpriced}` gives each
priced line its rate(s), tier segments and card, and each unpriced line its reason. Amounts are decimal
strings in the one currency asked for (or the WABA's); nothing is converted.

Every line is asked of the rules in force at `at` as the decision pipeline decides a send to the line's country (a
number of it, or for a code no number is of, a recipient the rules read as of an unknown country), in each window
the line's messages are sent in: its `free_entry_point` messages inside a free entry point window (FEP-3), its
`customer_service_window` messages inside an open customer service window (a service line's default: all the
others), the rest outside both. Messages the rules deny (MKT-4: marketing templates to United States numbers) are
not delivered: not priced, not counted, the line's `denied` naming the rule and its sentence (a line denied in full
is unpriced). Messages the rules leave free are not charged: each service line (the categories of
`service_messages_count_categories`, rules PMP26-1) is decided after n such messages this month (from the request's
`service_messages_this_month`, default 0; the lines continue one count, the allowance being per phone number), a
template line as after none. Its `free` says how many are free, by which rules, window by window; `notes` says what
the forecast assumes where the request cannot say (the order within a line, the windows, what was not asked).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from ..core.evaluate import evaluate
from ..core.forecast import (
    CUSTOMER_SERVICE_WINDOW,
    FREE_ENTRY_POINT,
    OUTSIDE_WINDOWS,
    Denied,
    Forecast,
    ForecastLine,
    Free,
    Line,
    RuledCharge,
    forecast,
)
from ..core.identities import recipient_contact
from ..core.messages import DecisionRequest, Message, Send, Template
from ..core.vocabulary import TEMPLATE_CATEGORIES, is_group_category
from ..store import billing, business_state
from ..store.database import STORAGE_FAULTS
from .decisions import Policy
from .errors import ServiceError
from .pricing import month_volume, require_rate_card

log = logging.getLogger(__name__)


def forecast_costs(policy: Policy, request: dict[str, Any]) -> dict[str, Any]:
    """The forecast for a request loaded by contract.pricing.FORECAST. Raises ServiceError 422 naming currency when
    none is given and the WABA has none set, or when no rate card is in it (given or the WABA's), and naming
    lines.N.free_entry_point or lines.N.customer_service_window for a line whose category the rules are not asked
    about window by window."""
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
                  line.get("free_entry_point", 0), line.get("customer_service_window"), _asked_as(line.get("to")))
             for line in request["lines"]]
    _refuse_windows_the_rules_are_not_asked(lines, (*allowance, *WINDOWED_TEMPLATES))
    volumes: dict[tuple[str, str], int] = {}
    sources: dict[str, str] = {}
    unread: list[str] = []
    if waba_id:
        market_map = rates.map_on(day)
        for country, category, *_ in lines:
            rule = rates.column_on(day, category)
            column = rule.column if rule else category
            market = market_map.market_of(country) if market_map else None
            if market is None or column is None or (market, column) in volumes:
                continue
            try:
                counted = month_volume(waba_id, category, country, day, at, zone, rates)
            except (ServiceError, *STORAGE_FAULTS):  # a refusal, the storage down: said as such (4xx, 503)
                raise
            except Exception as error:  # noqa: BLE001 - a stored value the code cannot read is skipped, never a 500
                log.exception("forecast: the stored volume of %s %s could not be read", market, column)
                unread.append(f"WABA {waba_id}'s stored volume for {market} {column} this month could not be read "
                              f"({type(error).__name__}): its lines start from the card's first tier, an upper bound.")
                volumes[(market, column)] = 0
                continue
            if counted is not None:
                volumes[(market, column)], sources[f"{market} {column}"] = counted
    already = request.get("service_messages_this_month", 0)
    stand_ins = {country: _stand_in(country) for country in {line.country for line in lines}}
    # The WABA's account as its stored account events say at `at` (a restriction, a ban: ACC-1, ACC-2), taken into
    # every question as a decision from one of its numbers takes it (service.business.enrich).
    account = business_state.account_state(waba_id, at) if waba_id else {}
    result = forecast(lines, day=day, currency=currency, rates=rates, volumes=volumes, allowance=allowance,
                      windowed=WINDOWED_TEMPLATES, checked=CHECKED_TEMPLATES, allowance_before=already,
                      charge_of=rules_charges(policy, at, zone, allowance, stand_ins,
                                              {name: known.value for name, known in account.items()}))
    notes = _notes(result, allowance, stand_ins) + unread
    if account:
        notes.append(f"WABA {waba_id}'s stored account state at {at.isoformat()} is taken as a decision from one of "
                     "its numbers takes it: " + "; ".join(
                         f"{name}{_shown(known.value)} (from the {known.source})" for name, known in account.items())
                 + ".")
    return {**forecast_json(result, at.isoformat(), sources, waba_id), "service_messages_this_month": already,
            "waba_timezone": zone, "notes": notes}


def _shown(value: Any) -> str:
    """A stored account value as a note names it: a flag, number or text as it is, a time in ISO 8601; else none."""
    if isinstance(value, datetime):
        return f" {value.isoformat()}"
    return f" {value}" if isinstance(value, bool | int | str) else ""


# Template lines whose messages the rules are asked about window by window: a Cloud API template of the line's own
# category (Meta's vocabulary).
WINDOWED_TEMPLATES = tuple(sorted(category for category, template in TEMPLATE_CATEGORIES.items()
                                  if category == template))
# Template lines the rules are asked only whether they deny (a marketing template through the Marketing Messages API,
# an authentication template): what they are charged needs more of the send than a line says (an eligible business,
# the API's own window rules), so they are priced as charged. The Groups API's lines are not asked: a line names a
# country, not a group and its participants.
CHECKED_TEMPLATES = tuple(sorted(category for category in TEMPLATE_CATEGORIES
                                 if category not in WINDOWED_TEMPLATES and not is_group_category(category)))
# A line's counts of messages by window, as the request names them (the rest are outside both windows).
WINDOW_FIELDS = {FREE_ENTRY_POINT: "free entry point", CUSTOMER_SERVICE_WINDOW: "customer service window"}


def _refuse_windows_the_rules_are_not_asked(lines: list[Line], asked: tuple[str, ...]) -> None:
    """A 422 naming lines.N.free_entry_point or lines.N.customer_service_window for a line whose messages the rules
    are not asked about window by window: they would be charged without a word."""
    errors = {f"lines.{index}.{field}": [
        f"the rules are asked about {words} messages of {', '.join(asked)} lines only; a {line.category} "
        f"line is priced as charged wherever it is sent: leave its {words} messages out of count"]
        for index, line in enumerate(lines) if line.category not in asked
        for field, words in WINDOW_FIELDS.items() if getattr(line, field)}
    if errors:
        raise ServiceError(422, f"invalid request: {next(iter(errors))}: not asked of the rules by window", errors)


def _asked_as(to: str | None) -> str | None:
    """Whom the rules are asked about for a line sent `to` a business-scoped user ID: one of its country (`US.forecast`:
    the rules read a BSUID's country from its prefix and whether it is one, nothing else, so the lines to BSUIDs of a
    country share their answers); None for a line to a number or a country, asked about a number of its country
    (_stand_in: the rules read a number's region and calling code, which the example shares)."""
    if to is None:
        return None
    contact = recipient_contact(to)
    return f"{contact.region}.forecast" if contact.is_bsuid else None


def _stand_in(country: str) -> str:
    """Whom the rules are asked about for a line to `country`: a number of that country (libphonenumber's example,
    a mobile one where it has one: the rules read its region and calling code as a real recipient's), else, for a
    code no number is of (AQ), `AQ.forecast`, which the rules read as a recipient of an unknown country (ZZ)."""
    example = (phonenumbers.example_number_for_type(country, phonenumbers.PhoneNumberType.MOBILE)
               or phonenumbers.example_number(country))
    if example is None:
        return f"{country}.forecast"
    return phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)


def _notes(result: Forecast, allowance: tuple[str, ...], stand_ins: dict[str, str]) -> list[str]:
    """What the forecast assumes where the request cannot say, one sentence each (none for a case not in it)."""
    notes = []
    lines = result.lines
    if any(line.category in allowance for line in lines):
        notes.append(
            f"{'/'.join(allowance)} lines: the messages a line gives as free_entry_point are decided as sent inside a "
            "free entry point window, those it gives as customer_service_window (default: all the others, a "
            "free-form message being sent inside a window) inside an open customer service window, any others "
            "outside both; in the month's count a line's free entry point messages come first and count when "
            "the rules give them a counted category, so the allowance they use is not left for the others (of the "
            "orders they may be sent in, the one that costs most).")
    if any(line.category in WINDOWED_TEMPLATES for line in lines):
        notes.append(
            "Template lines: the messages a line gives as free_entry_point are decided as sent inside a free entry "
            "point window, those it gives as customer_service_window inside an open customer service window, and "
            "the rest as delivered outside both (default: all of them): one the rules in force leave free where it "
            "is sent but the line does not place there is priced as charged, so each amount is at most what the "
            "line costs.")
    if any(line.category in CHECKED_TEMPLATES for line in lines):
        notes.append(
            f"{'/'.join(CHECKED_TEMPLATES)} lines: the rules are asked only whether they deny such a template "
            "outside any window; the rest of what decides its charge is more of the send than a line says, so it "
            "is priced as charged.")
    asked = (*allowance, *WINDOWED_TEMPLATES, *CHECKED_TEMPLATES)
    if unasked := sorted({line.category for line in lines if line.category not in asked}):
        notes.append(
            f"{', '.join(unasked)} lines: the rules are not asked about them (a line does not say enough of such a "
            "send): they are priced as charged, and a rule that would deny them is not seen.")
    if denied := [line.denied for line in lines if line.denied]:
        rules = sorted({run.rule for found in denied for run in found.runs})
        notes.append(
            f"{sum(found.count for found in denied):,} messages are denied by the rules ({', '.join(rules)}; each "
            "line's `denied` says which and why): they are not delivered, so they are not priced, not counted toward "
            "the volume tiers or the allowance, and not in the total; a line denied in full is listed as unpriced.")
    if unplaced := sorted(country for country, stand_in in stand_ins.items() if not stand_in.startswith("+")):
        notes.append(
            f"{', '.join(unplaced)}: no phone number is of this country, so the rules read its lines' recipient as "
            "of an unknown country (ZZ): a rule about the recipient's country does not see it.")
    return notes


def rules_charges(policy: Policy, at: datetime, zone: str = "UTC", allowance: tuple[str, ...] = (),
                  stand_ins: dict[str, str] | None = None,
                  account: dict[str, Any] | None = None) -> Callable[[str, str, str, int], RuledCharge | None]:
    """The rules' charge of a message of `category` (an `allowance` category: a free-form message; else an approved
    template of its Meta category, through the Marketing Messages API for marketing_lite) to a recipient in
    `country` at `at` (WABA time zone `zone`), sent in `window` (core.forecast OUTSIDE_WINDOWS: the user never
    wrote; CUSTOMER_SERVICE_WINDOW: the user wrote a minute before; FREE_ENTRY_POINT: the user wrote from an ad two
    hours before and the business's free-form reply an hour before opened the free entry point window, the customer
    service window open too), after n counted messages this month: the decision pipeline's engine on the rule
    files, asked as `(recipient, category, window, n)` (recipient: a line's country, or the BSUID _asked_as gives it). A
    send the rules deny is RuledCharge(denied=True) naming the
    denying rules (those that determine the deny; for a send no version decides, its status) and their sentences.
    A country is asked about as `stand_ins[country]` (a number of it, _stand_in), else as `BR.forecast`; a BSUID as
    itself. `account` (context fields: the WABA's
    stored account state, business_state.account_state) is in every question's context. Each call asks the rules;
    core.forecast.Answers decides which counts to ask about."""
    histories = {
        OUTSIDE_WINDOWS: (),
        CUSTOMER_SERVICE_WINDOW: (Message(direction="inbound", at=at - timedelta(minutes=1), type="text"),),
        FREE_ENTRY_POINT: (Message(direction="inbound", at=at - timedelta(hours=2), type="text",
                                   referral={"source_type": "ad", "source_id": "forecast"}),
                           Message(direction="outbound", at=at - timedelta(hours=1), type="text", status="delivered")),
    }
    rulebook = policy.rulebook

    def charge_of(recipient: str, category: str, window: str, count: int) -> RuledCharge | None:
        template = None if category in allowance else Template("forecast", "en", TEMPLATE_CATEGORIES[category])
        to = (stand_ins or {}).get(recipient) or (recipient if "." in recipient else f"{recipient}.forecast")
        send = Send(at=at, to=to,
                    type="template" if template else "text", template=template,
                    marketing_messages_api=category == "marketing_lite")
        context = {**(account or {}), "service_messages_this_month": count, "waba_timezone": zone}
        decision = evaluate(DecisionRequest(send, histories[window], context), rulebook=rulebook,
                            engine=policy.engine)
        if decision.decision != "allow":
            denying = [r for r in decision.trace if r.determining and rulebook.by_id.get(r.rule) is not None
                       and rulebook.by_id[r.rule].decision == "deny"]
            because = " ".join(r.because for r in denying) or decision.error or ""
            # the sentence names whom it asked about: say that it stands for the line's recipients
            stands_for = f"the example number asked about for {recipient}" if to.startswith("+") else \
                "standing for the line's recipients"
            return RuledCharge(False, ", ".join(r.rule for r in denying) or decision.status,
                               because.replace(to, f"{to} ({stands_for})"), denied=True)
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
                      "free_entry_point": line.free_entry_point,
                      "customer_service_window": line.customer_service_window, "reason": line.reason,
                      "free": _free(line), "denied": _denied(line.denied)}
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


def _denied(denied: Denied | None) -> dict[str, Any] | None:
    """How many of the line's messages the rules deny (not delivered, so neither priced nor counted), by which rule
    and why, in all and window by window (`by_window`); None: none is denied."""
    if denied is None:
        return None
    return {"count": denied.count, "rule": denied.rule, "because": denied.because,
            "by_window": [{"window": run.window, "count": run.count, "rule": run.rule, "because": run.because}
                          for run in denied.runs]}


def _line(line: ForecastLine, show: Callable[[Decimal], str]) -> dict[str, Any]:
    card = line.price.card
    rates = {str(segment.rate) for segment in line.segments}
    return {
        "line": line.index, "country": line.country, "market": line.price.market, "category": line.category,
        "count": line.count, "free_entry_point": line.free_entry_point,
        "customer_service_window": line.customer_service_window, "amount": show(line.amount),
        # None when no one rate applies: nothing charged (no segment: every message free, as a free send's price
        # is None), or tiers at several rates (each in `tiers`). Documented (web/pricing_api.py, README).
        "rate": rates.pop() if len(rates) == 1 else None,
        "column": line.price.column or line.category,
        "volume_before": line.volume_before,
        "tiers": [{"tier": s.tier_number, "first_message": s.first, "last_message": s.last, "count": s.count,
                   "rate": str(s.rate), "amount": show(s.amount)} for s in line.segments],
        "free": _free(line),
        "denied": _denied(line.denied),
        # None only when the rules leave every message free and no card prices the rest (there is no rest).
        "rate_card": None if card is None else {
            "id": card.id, "currency": card.currency, "effective_from": card.effective_from.isoformat(),
            "effective_until": card.effective_until.isoformat() if card.effective_until else None,
            "confidence": card.confidence, "source": card.source, "partial": card.partial},
    }
