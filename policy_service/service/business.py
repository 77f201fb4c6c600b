"""What the store knows about the sending business, filled into a decision request before it is evaluated
(the decision pipeline's business-state step, service.decisions).

When the sending phone number is known (`send.phone_number_id`, or `history_ref.phone_number_id`):
- the template registry of its WABA supplies a template's category and status, and wins over what the
  request says (a name-only send is allowed);
- the user's stored marketing preference supplies `marketing_opt_out`, unless the context gives it;
- the number's service messages this period (rule parameters `service_messages_count_period` and
  `service_messages_count_categories`) supply `service_messages_this_month`, unless the context gives it;
- the WABA's account events supply `business_region`, `authentication_international_eligible` and
  `_eligibility`, `business_initiated_restricted`, `account_banned` and `messaging_limit`, and, for a template
  when the limit is known, the users its numbers reached business-initiated in the moving period
  (`messaging_limit_period`, `messaging_limit_count_categories`) supply `business_initiated_users_24h`.
Each value taken from the store is named in `DecisionRequest.sources`, so the trace says where it came
from; the logged request carries the values used, so it replays without the store.

The logged request is rebuilt only along the paths it changes (`send.template`, `context`): the rest is
shared with the request as received, never copied.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from ..core.messages import DecisionRequest
from ..core.periods import describe_period, period_start
from ..core.rulebook import Rulebook
from ..core.window import window_openers
from ..store import business_state, history_reads
from .errors import ServiceError


def sending_number(raw: dict[str, Any]) -> str | None:
    """The sending phone number id a request names (send.phone_number_id, else history_ref's)."""
    send = raw.get("send") or {}
    return send.get("phone_number_id") or (raw.get("history_ref") or {}).get("phone_number_id")


def unknown_number(raw: dict[str, Any]) -> dict[str, str] | None:
    """The response's `business_state` when `send.phone_number_id` names a number the store has never seen (no
    webhook named it: no WABA, no message or status): {phone_number_id, note}, saying no stored state informed the
    decision (a mistyped id decides as if the business had none: no opt-out, no paused template). None otherwise,
    and for a request with a history_ref (whose history_source says so). Reads the store (two indexed seeks) only
    when send.phone_number_id is given."""
    number = (raw.get("send") or {}).get("phone_number_id")
    if number is None or "history_ref" in raw:
        return None
    if business_state.waba_of(number) is not None or history_reads.number_known(number):
        return None
    return {"phone_number_id": number,
            "note": f"nothing is stored for phone_number_id {number}: no webhook has named this business number, so "
                    "no stored state (its WABA's template registry and account, users' marketing preferences, its "
                    "counts) informed the decision (check the id; a new number has none yet)"}


def enrich(proposal: DecisionRequest, raw: dict[str, Any], phone_number_id: str | None, contact: str,
           rulebook: Rulebook) -> tuple[DecisionRequest, dict[str, Any]]:
    """The request with the stored business state filled in, and the request to log (a new dict along the
    paths it changes; `raw` itself is never modified). Raises ServiceError (422) when a template's
    category or status is neither given nor known to the registry (a registry that holds a value of Meta's the
    rules do not model knows none: the request's value is then used, and the trace says so)."""
    send = proposal.send
    if phone_number_id is None and (send.template is None or (send.template.category is not None
                                                               and send.template.status is not None)):
        # No sending number, so no stored state to read, and a template's category and status are given: there is
        # nothing to fill in (the path below would rebuild equal values; ~10 µs a decision).
        return proposal, raw
    context = dict(proposal.context)
    sources: dict[str, str] = {}
    logged = raw
    if send.template is not None:
        template, sources_found = _template(send, phone_number_id)
        sources.update(sources_found)
        send = replace(send, template=template)
        logged_send = logged["send"]
        logged = {**logged, "send": {**logged_send, "template": {**logged_send["template"],
                                                                  "category": template.category,
                                                                  "status": template.status}}}
    waba_id = business_state.waba_of(phone_number_id) if phone_number_id else None
    if waba_id is not None:
        for name, known in business_state.account_state(waba_id, send.at).items():
            if name not in context:
                context[name], sources[name] = known.value, known.source
        if send.is_template and context.get("messaging_limit") is not None and \
                "business_initiated_users_24h" not in context:
            count, source = users_reached(waba_id, send.at, rulebook)
            context["business_initiated_users_24h"], sources["business_initiated_users_24h"] = count, source
    if phone_number_id is not None:
        if "marketing_opt_out" not in context:
            stopped = business_state.marketing_stopped(phone_number_id, contact, send.at)
            if stopped is not None:
                context["marketing_opt_out"], sources["marketing_opt_out"] = stopped.value, stopped.source
        if send.template is not None and send.template.category == "marketing" and \
                "marketing_limit_refused_recently" not in context:
            since = period_start(rulebook.parameter("marketing_limit_retry_after"), send.at, ZoneInfo("UTC"))
            refused = business_state.refused_for_marketing_limit(phone_number_id, contact, since, send.at)
            if refused is not None:
                context["marketing_limit_refused_recently"] = refused.value
                sources["marketing_limit_refused_recently"] = refused.source
        if not send.is_template and "service_messages_this_month" not in context:
            count, source = service_messages(phone_number_id, send.at, context, rulebook)
            context["service_messages_this_month"], sources["service_messages_this_month"] = count, source
    if context != proposal.context:
        logged = {**logged, "context": {**(logged.get("context") or {}),
                                        **{k: _json(context[k]) for k in sources if k in context}}}
    return replace(proposal, send=send, context=context, sources=sources), logged


def service_messages(phone_number_id: str, at, context: dict[str, Any], rulebook: Rulebook) -> tuple[int, str]:
    """The phone number's service messages in the period before `at`, and the sentence naming the count."""
    period = rulebook.parameter("service_messages_count_period")
    zone = ZoneInfo(context.get("waba_timezone") or "UTC")
    start = period_start(period, at, zone)
    count = business_state.count_messages(since=start, until=at, phone_number_id=phone_number_id,
                                          categories=tuple(rulebook.parameter("service_messages_count_categories")))
    return count, (f"{count:,} service messages {describe_period(period, start, zone)} from phone number "
                   f"{phone_number_id}, counted from stored statuses by maintained counters")


def users_reached(waba_id: str, at, rulebook: Rulebook) -> tuple[int, str]:
    """Distinct users the WABA's numbers reached business-initiated in the moving period before `at`, and
    the sentence naming the count (rule parameters messaging_limit_period and _count_categories)."""
    period = rulebook.parameter("messaging_limit_period")
    start = period_start(period, at, ZoneInfo("UTC"))
    numbers = business_state.numbers_of(waba_id)
    openers = window_openers(rulebook)  # the inbound messages that open a window, as the decision counts them
    count = business_state.count_users_reached_outside_window(
        since=start, until=at, phone_number_ids=tuple(numbers),
        categories=tuple(rulebook.parameter("messaging_limit_count_categories")),
        window=rulebook.parameter("customer_service_window"),
        ignored_types=openers.ignored_types, counted_from=openers.counted_from)
    return count, (f"{count:,} users reached by templates outside a customer service window "
                   f"{describe_period(period, start, ZoneInfo('UTC'))} from the {len(numbers)} phone number(s) of "
                   f"WABA {waba_id}, counted from stored statuses by maintained per-user reach times and inbound "
                   "messages (users who wrote in the period checked message by message)")


def _json(value: Any) -> Any:
    """A context value as the logged request's JSON (times as ISO 8601, nested ones too)."""
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


def _template(send, phone_number_id: str | None):
    template = send.template
    waba_id = business_state.waba_of(phone_number_id) if phone_number_id else None
    known = business_state.template_state(waba_id, template.name, template.language, send.at) if waba_id else None
    sources: dict[str, str] = {}
    values = {"category": template.category, "status": template.status}
    errors: dict[str, list[str]] = {}
    for part in ("category", "status"):
        stored = getattr(known, part) if known else None
        if stored is not None and stored.value in business_state.UNKNOWN_VALUES:
            # Meta said something the rules do not model: the registry cannot say; the request's value, if given,
            # decides and the trace says why, else the send cannot be judged (never as if nothing had been said).
            if values[part] is not None:
                sources[f"template_{part}"] = (f"the request (the registry's {part} is unknown: {stored.source})")
            else:
                errors[f"send.template.{part}"] = [f"required: the template registry's {part} is unknown "
                                                   f"({stored.source}); give it in the request"]
        elif stored is not None:
            given = values[part]
            differs = f" (the request said {given}; the registry wins)" if given and given != stored.value else ""
            values[part] = stored.value
            sources[f"template_{part}"] = stored.source + differs
        elif values[part] is None:
            where = (f"the template registry of WABA {waba_id} does not know {template.name!r} in "
                     f"{template.language!r}" if waba_id else
                     "no sending phone_number_id whose WABA is known (send.phone_number_id or history_ref)")
            errors[f"send.template.{part}"] = [f"required: {where}"]
    if errors:
        raise ServiceError(422, f"invalid request: {next(iter(errors))}: {next(iter(errors.values()))[0]}", errors)
    return replace(template, **values), sources
