"""The Flask-free spine: history -> facts -> rules engine -> decision."""

from __future__ import annotations

import logging
import os
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from itertools import chain, compress, islice
from operator import attrgetter, le
from typing import Any

from msgspec import structs

from .chronology import by_delivery, carried_before, is_strictly_ordered, timeline
from .conditions import why_not
from .conversations import Period, longest_lifetime, quiet_point
from .decision import Charge, Decision, Reason, charge_terms, classify, combine, fail_closed
from .engine import RulesEngine
from .errors import EngineError
from .facts import Facts, HistoryState, derive_facts, new_state, with_late_delivery
from .identities import recipient_contact
from .messages import UNKNOWN_TEMPLATE, UNKNOWN_TYPE, DecisionRequest, Message, Send, Template
from .pricing import PRICING_CONTEXT_DEFAULTS, Price, price_charge, price_group
from .pricing import explain as explain_price
from .rates import RateBook
from .records import replace
from .rulebook import CONFIDENCE, Rulebook
from .window import window_openers

log = logging.getLogger(__name__)
_LIFETIMES: dict[str, timedelta] = {}  # rulebook version -> longest period lifetime


def evaluate(request: DecisionRequest, *, rulebook: Rulebook, engine: RulesEngine,
             decision_id: str | None = None, explain_why_not: bool = False,
             replayed: HistoryState | None = None) -> Decision:
    """Decide one proposed send; any engine failure fails closed as an error, never as an allow.

    `replayed`: the state `replay` gives for this request's history, send time, recipient and context, when the
    caller made it already (reconciliation replays a message's history to assume its send); it is used up."""
    decision_id = decision_id or new_decision_id()
    try:
        state = replay(request, rulebook, engine) if replayed is None else replayed
        facts = derive_facts(request.send, state, request.context, rulebook, sources=request.sources)
        facts, fired = late_delivery(request, state, facts, engine.match_memoized(facts.engine), rulebook, engine)
        decision = combine(fired, facts, rulebook, decision_id=decision_id,
                           price=lambda charge, facts: price_parts(charge, facts, request, rulebook))
        if explain_why_not:
            decision = replace(decision, why_not=why_not(rulebook.rules, set(fired), facts.engine, facts.day))
    except Exception as error:  # noqa: BLE001 - any internal failure must deny, never allow
        decision = failed(error, rulebook, decision_id)
    return decision


def failed(error: Exception, rulebook: Rulebook, decision_id: str | None = None) -> Decision:
    """The decision when building one failed (the engine, or an internal error in any step: deny, status error,
    never an allow), logged; an EngineError's message is kept, any other error is named by its type only."""
    if isinstance(error, EngineError):
        log.error("engine error, failing closed: %s", error)
    else:
        log.exception("internal error, failing closed", exc_info=error)
        error = EngineError(f"internal error: {type(error).__name__}")
    return replace(fail_closed(error, rulebook.version), decision_id=decision_id or new_decision_id())


# Random numbers from the OS, fetched 256 at a time: one read per decision cost more than a third of
# evaluating it. A forked worker must never reuse its parent's numbers, so the pool empties on fork.
_RANDOM: list[str] = []
os.register_at_fork(after_in_child=_RANDOM.clear)


def new_decision_id() -> str:
    """A random (version 4) UUID as 32 lowercase hex digits, like uuid.uuid4().hex, from os.urandom."""
    try:
        return _RANDOM.pop()  # atomic: threads never share a number
    except IndexError:
        block = bytearray(os.urandom(16 * 256))
        # Each 16 bytes are one UUID: the version (4) in the high half of byte 6, the variant (RFC 4122: 10) in
        # the two high bits of byte 8; written for the whole block at once, and its hex made at once.
        block[6::16] = block[6::16].translate(_VERSION_4)
        block[8::16] = block[8::16].translate(_RFC_4122)
        ids = list(map(block.hex().__getitem__, _UUIDS))
        _RANDOM.extend(ids[1:])
        return ids[0]


# Byte translations (made in C) setting a UUID's version 4 in byte 6 and its RFC 4122 variant in byte 8; where each
# of 256 UUIDs lies in the hex of a block.
_VERSION_4 = bytes(byte & 0x0F | 0x40 for byte in range(256))
_RFC_4122 = bytes(byte & 0x3F | 0x80 for byte in range(256))
_UUIDS = tuple(slice(start, start + 32) for start in range(0, 2 * 16 * 256, 32))


PRICE_CITATION = "https://developers.facebook.com/docs/whatsapp/pricing"


def priced(decision: Decision, request: DecisionRequest, rulebook: Rulebook) -> Decision:
    """The decision with its charge priced from the rate cards, and (when billable) a trace entry saying how."""
    if decision.charge is None or decision.facts is None:
        return decision
    charge, reason, facts = price_parts(decision.charge, decision.facts, request, rulebook)
    if reason is None:
        return replace(decision, charge=charge)
    return replace(decision, charge=charge, trace=(*decision.trace, reason), facts=facts)


def price_parts(charge: Charge, facts: Facts, request: DecisionRequest,
                rulebook: Rulebook) -> tuple[Charge, Reason | None, Facts]:
    """The charge priced from the rate cards; when billable, the trace entry saying how, and the facts with the
    pricing defaults and sources it used (else None and the facts as given)."""
    country = str(facts.engine["recipient_region"])
    # A group send is billed per delivered participant, each at its own market (PMP-9).
    participants = request.send.participants if charge.participants is not None else None
    price, reason = _price(charge, facts.day, country, participants, request.context, rulebook.rates)
    if price.amount is not None:  # price.known
        charge = _priced(charge, price=price, price_reason=None, price_lines=price.lines)
    else:
        charge = _priced(charge, price=None, price_reason=price.reason, price_lines=price.lines)
    if reason is None:
        return charge, None, facts
    # Where the pricing context came from when the request did not give it (the WABA's stored currency,
    # the month's volume counted over stored statuses).
    sources = {name: request.sources[name] for name in PRICING_CONTEXT_DEFAULTS if name in request.sources} \
        if request.sources else None
    if sources:
        reason = replace(reason, sources=sources)
        return charge, reason, replace(facts, defaults=_with_defaults(facts.defaults, price.defaults),
                                       sources={**facts.sources, **sources})
    if not price.defaults:
        return charge, reason, facts
    return charge, reason, _with_pricing_defaults(facts, _with_defaults(facts.defaults, price.defaults))


def _with_pricing_defaults(facts: Facts, defaults: frozenset[str]) -> Facts:
    """replace(facts, defaults=defaults, sources=dict(facts.sources)), made without its keyword checks."""
    return _priced(facts, defaults=defaults, sources=dict(facts.sources))


def _with_defaults(used: frozenset[str], more: tuple[str, ...]) -> frozenset[str]:
    """The defaults used with `more` added (few distinct pairs occur: each union is made once)."""
    key = (used, more)
    found = _DEFAULTS_WITH.get(key)
    if found is None:
        found = used | set(more)
        if len(_DEFAULTS_WITH) >= 1024:
            _DEFAULTS_WITH.clear()
        _DEFAULTS_WITH[key] = found
    return found


_DEFAULTS_WITH: dict[tuple[frozenset[str], tuple[str, ...]], frozenset[str]] = {}


# id of a rate book -> (that book, held so the id is not reused while remembered; its memo of prices and
# their trace entries, without sources).
_PRICES: dict[int, tuple[RateBook, dict[tuple[Any, ...], tuple[Price, Reason | None]]]] = {}
_PRICE_MEMO_SIZE = 4096
_priced = structs.replace  # a Charge or Facts (msgspec Structs) with what pricing set
_PRICING_NAMES = frozenset(PRICING_CONTEXT_DEFAULTS)
_NONE_GIVEN = (None,) * len(PRICING_CONTEXT_DEFAULTS)  # a context giving none of them
# A larger group's price (a line per participant) is not remembered: it would hold too much.
_LARGEST_GROUP_REMEMBERED = 8


def _price(charge: Charge, day: date, country: str, participants: tuple[str, ...] | None, context: dict[str, Any],
           rates: RateBook) -> tuple[Price, Reason | None]:
    # The price and (when billable) its trace entry's fields depend only on these inputs and the rate book, and
    # are immutable: few distinct combinations occur, so each is worked out once (bounded, cleared when full).
    # The context is keyed by type and text: True == 1 and Decimal("1.0") == Decimal("1.00"), but a sentence
    # prints what was given.
    given = tuple(value if value is None or type(value) is str else (type(value), repr(value))
                  for value in map(context.get, PRICING_CONTEXT_DEFAULTS)) \
        if context and not _PRICING_NAMES.isdisjoint(context) else _NONE_GIVEN
    key = (charge.billable, charge.pricing_model, charge.category, charge.opens_conversation, day, country, given,
           participants)
    held = _PRICES.get(id(rates))
    found = held[1].get(key) if held is not None and held[0] is rates else None
    if found is not None:
        return found
    remember = participants is None or len(participants) <= _LARGEST_GROUP_REMEMBERED
    if participants is None:
        price = price_charge(billable=charge.billable, pricing_model=charge.pricing_model, category=charge.category,
                             opens_conversation=charge.opens_conversation, day=day, country=country, context=context,
                             rates=rates)
    else:
        members = tuple((number, recipient_contact(number).region) for number in participants)
        price = price_group(billable=charge.billable, category=charge.category, day=day, participants=members,
                            context=context, rates=rates)
    found = (price, _price_entry(price, charge.category, country, day) if charge.billable else None)
    if not remember:
        return found
    if held is None or held[0] is not rates:
        if len(_PRICES) >= 8:
            _PRICES.clear()
        held = _PRICES[id(rates)] = (rates, {})
    if len(held[1]) >= _PRICE_MEMO_SIZE:
        held[1].clear()
    held[1][key] = found
    return found


def _price_entry(price: Price, category: str, country: str, day: date) -> Reason:
    """The price's trace entry (without sources), from its card."""
    card = price.card
    because = explain_price(price, category, country, day)
    confidence = card.confidence if card else "C"
    if confidence != "C":
        because = f"[{confidence}: {CONFIDENCE[confidence]}] {because}"
    return Reason(card.id if card else "PRICE", card.title if card else "Price of the charge", "price",
                  card.citation if card else PRICE_CITATION, confidence, because, False, price.defaults,
                  f"source: {card.source}" if card else None)


def reprice(decision: Decision, request: DecisionRequest, rulebook: Rulebook) -> Decision:
    """The decision priced again for a request whose pricing context changed (the business's stored
    currency or month's volume, filled in after the charge is known); the rules are not run again.
    The previous price, its trace entry and the pricing defaults it named are replaced."""
    if decision.charge is None or decision.facts is None:
        return decision
    unpriced = replace(decision, charge=replace(decision.charge, price=None, price_reason=None, price_lines=()),
                       trace=tuple(r for r in decision.trace if r.effect != "price"),
                       facts=replace(decision.facts, defaults=decision.facts.defaults - set(PRICING_CONTEXT_DEFAULTS)))
    return priced(unpriced, request, rulebook)


def replay(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine) -> HistoryState:
    """Walk the history in time order, classifying each delivered outbound send by the same rules.

    Only sends from the quiet point on are classified: what earlier sends opened has expired
    before any of them and before the proposed send (conversations.quiet_point), so it cannot
    change a later classification or the decision.
    Of the events before it, only the few that still decide the history state are walked.
    """
    if not request.history:
        # Nothing to walk: no window, period, entry point, undelivered message or marketing template.
        return new_state(rulebook)
    if "outbound" not in map(_DIRECTION, request.history):
        # Only the user's messages: no send to classify (no period), none undelivered, no marketing template; the
        # state is theirs taken in time order up to the send.
        state = new_state(rulebook)
        if len(request.history) == 1:  # the common case, without making a timeline
            if request.history[0].at <= request.send.at:
                state.receive(request.history[0])
            return state
        for _index, message in timeline(request.history, request.send.at):
            state.receive(message)
        return state
    history = by_delivery(request.history)
    # Whether some outbound message is dated by a delivery time of its own (by_delivery moved it).
    delivered_apart = history is not request.history
    times = list(map(_AT, history))
    strictly = is_strictly_ordered(times)
    events = timeline(history, request.send.at, times=times, strictly_ordered=strictly)
    first = quiet_point(events, request.send.at, longest_period(rulebook))
    state = new_state(rulebook)
    # Before the first event nothing is carried.
    carried = carried_before(events, first, state, history) if first else []
    walk(state, carried + events[first:] if carried else events[first:], len(carried), request.send.to,
         request.context, rulebook, engine)
    # Bisecting a long history saves walking it; a short one is walked faster than its times are checked.
    if len(request.history) <= _SHORT_HISTORY:
        times = None
    elif delivered_apart:
        times = times_in_order(request.history)
    else:
        # The history's own times, as timeline read them (by_delivery moved nothing).
        times = times if strictly or _in_order(times) else None
    note_undelivered(state, request, rulebook, times=times)
    state.marketing_recent = marketing_delivered_recently(request.history, request.send.at, rulebook, times=times,
                                                          delivered_apart=delivered_apart)
    return state


def walk(state: HistoryState, events: Iterable[tuple[int, Message]], classified_from: int, to: str,
         context: dict[str, Any], rulebook: Rulebook, engine: RulesEngine) -> None:
    """Take (index in the history, message as by_delivery dates it) events, in time order, into the state: the
    user's messages, and each delivered send with what it opened. Sends from position `classified_from` of the
    events on are classified (to recipient `to`, with the request's `context`); those before it (the carried
    events, chronology.carried_before) open nothing."""
    for position, (index, message) in enumerate(events):
        if message.direction == "inbound":
            state.receive(message)
        elif message.business_app:
            # A reply from the WhatsApp Business app answers the user (an entry point is used up) but is no
            # API send: nothing is classified, opened or charged for it.
            state.deliver(None, closes_others=False)
        elif message.delivery_time is not None:
            classified = _classify(message, state, to, context, rulebook, engine) if position >= classified_from \
                else None
            state.deliver(_opened(classified, message, index), closes_others=bool(classified and
                                                                                classified.closes_others))


_SHORT_HISTORY = 32  # events
_AT, _DELIVERED_AT, _DIRECTION = attrgetter("at"), attrgetter("delivered_at"), attrgetter("direction")
_TEMPLATE, _TTL = attrgetter("template"), attrgetter("ttl_seconds")


def times_in_order(history: tuple[Message, ...]) -> list[datetime] | None:
    """The messages' `at`, when the history is in time order (oldest first, equal times allowed); else None.

    A history in order is searched by bisection over these times instead of walked whole (made in C).
    """
    times = list(map(_AT, history))
    return times if _in_order(times) else None


def _in_order(times: list[datetime]) -> bool:
    return all(map(le, times, islice(times, 1, None)))


def marketing_delivered_recently(history: tuple[Message, ...], at: datetime, rulebook: Rulebook, *,
                                 times: list[datetime] | None = None, delivered_apart: bool = True) -> int:
    """How many marketing templates the history shows delivered to this user in the `marketing_recent_period`
    before `at` that count toward Meta's per-user marketing limit: delivered outside a customer service
    window (Meta: marketing sent inside a window the user opened does not count).

    With history_ref the history is the store's messages of this user (their statuses say delivery), so
    this is the store's count; the trace names it. `times` (times_in_order of the history, when it is in
    order) bounds the messages read to the period and the windows that can reach into it; with
    `delivered_apart` false (no message has a delivery time of its own) only the period's stretch is read.
    """
    since = at - rulebook.parameter("marketing_recent_period")
    if times is None:
        recent: Iterable[Message] = history
    else:
        # Delivered in the period: a message without a delivery time was delivered when sent, so it is in
        # the period's stretch of the history; one with a delivery time may have been sent long before.
        stretch = history[bisect_left(times, since):bisect_left(times, at)]
        recent = chain((m for m in stretch if m.delivered_at is None),
                       compress(history, map(_DELIVERED_AT, history)) if delivered_apart else ())
    # Only marketing templates delivered in the period can count: the inbound messages (for the windows)
    # are gathered and sorted only when there is one.
    delivered = [d for m in recent if m.direction == "outbound" and m.template is not None
                 and m.template.category == "marketing" and (d := m.delivery_time) is not None and since <= d < at]
    if not delivered:
        return 0
    window = rulebook.parameter("customer_service_window")
    opens = window_openers(rulebook).opens
    if times is not None:
        # Only the user's last message before each delivery decides; one older than the first delivery by a
        # window or more leaves every delivery outside its window, as no message at all would.
        history = history[bisect_left(times, min(delivered) - window):bisect_right(times, at)]
    inbound = sorted(m.at for m in history if m.direction == "inbound" and m.at <= at and opens(m.type, m.at))
    count = 0
    for moment in delivered:
        last_in = bisect_right(inbound, moment)
        if last_in and moment < inbound[last_in - 1] + window:
            continue  # inside a window the user opened: not counted by Meta
        count += 1
    return count


def note_undelivered(state: HistoryState, request: DecisionRequest, rulebook: Rulebook, *,
                     times: list[datetime] | None = None) -> None:
    """Set `state.undelivered` (see undelivered_before) and `state.undelivered_until`, the end of that
    message's time-to-live, from the request's history (`times`: times_in_order of it, when in order)."""
    lifetime_of = delivery_lifetimes(rulebook)
    longest = longest_delivery_lifetime(request.history, rulebook) if times is not None else None
    set_undelivered(state, undelivered_before(request.history, request.send.at, lifetime_of, times=times,
                                              longest=longest), rulebook)


def set_undelivered(state: HistoryState, found: tuple[int, Message] | None, rulebook: Rulebook) -> None:
    """Set `state.undelivered` to what undelivered_before found, and `state.undelivered_until` (the end of that
    message's time-to-live) when it found one."""
    state.undelivered = found
    if found is not None:
        state.undelivered_until = found[1].at + delivery_lifetimes(rulebook)(found[1])


def longest_delivery_lifetime(history: tuple[Message, ...], rulebook: Rulebook) -> timedelta:
    """No message of the history lives longer (delivery_lifetimes): the longest default, or the longest
    time-to-live a template sets."""
    custom = max(filter(None, map(_TTL, filter(None, map(_TEMPLATE, history)))), default=0)
    return max(rulebook.parameter("undelivered_message_lifetime"), rulebook.parameter("authentication_template_ttl"),
               rulebook.parameter("freeform_message_lifetime"), timedelta(seconds=max(custom, 0)))


def delivery_lifetimes(rulebook: Rulebook) -> Callable[[Message], timedelta]:
    """How long Meta keeps trying to deliver a message (its time-to-live, TTL), by message.

    Meta's time-to-live page: a template's own TTL when it has one (`message_send_ttl_seconds`; -1 means
    a custom TTL of 30 days), else the default of its category: authentication templates 10 minutes
    (`authentication_template_ttl`), other templates 30 days (`undelivered_message_lifetime`); a
    non-template message `freeform_message_lifetime` (not on Meta's page). All values come from rules/.
    """
    held = _LIFETIMES_OF.get(id(rulebook.parameters))
    if held is not None and held[0] is rulebook.parameters:
        return held[1]
    template_default = rulebook.parameter("undelivered_message_lifetime")
    authentication = rulebook.parameter("authentication_template_ttl")
    freeform = rulebook.parameter("freeform_message_lifetime")

    def lifetime_of(message: Message) -> timedelta:
        template = message.template
        if template is None:
            return freeform
        if template.ttl_seconds is not None:
            return template_default if template.ttl_seconds < 0 else timedelta(seconds=template.ttl_seconds)
        return authentication if template.category == "authentication" else template_default

    if len(_LIFETIMES_OF) >= 8:
        _LIFETIMES_OF.clear()
    _LIFETIMES_OF[id(rulebook.parameters)] = (rulebook.parameters, lifetime_of)
    return lifetime_of


# id of a rulebook's parameters -> (those parameters, held so the id is not reused; delivery_lifetimes of them)
_LIFETIMES_OF: dict[int, tuple[dict[str, Any], Callable[[Message], timedelta]]] = {}


def undelivered_before(history: tuple[Message, ...], at: datetime, lifetime_of: Callable[[Message], timedelta], *,
                       times: list[datetime] | None = None,
                       longest: timedelta | None = None) -> tuple[int, Message] | None:
    """The latest outbound message sent before `at`, within its time-to-live (`lifetime_of`, see
    delivery_lifetimes), and not known to be delivered by then: it may still be delivered, and only then
    opens or is charged. None if there is none (a message past its TTL was dropped by Meta).

    Given `times` (times_in_order of the history) and `longest` (no lifetime_of is longer), only the
    messages sent within `longest` before `at` are read.
    """
    found = None
    start, end = 0, len(history)
    if times is not None and longest is not None:
        start, end = bisect_right(times, at - longest), bisect_right(times, at)
    for index in range(start, end):
        message = history[index]
        if message.direction == "inbound" or message.status == "failed" or not message.at <= at:
            continue
        if not at - lifetime_of(message) < message.at:
            continue
        delivered = message.delivery_time
        if (delivered is None or delivered > at) and (found is None or message.at >= found[1].at):
            found = (index, message)
    return found


def late_delivery(request: DecisionRequest, state: HistoryState, facts: Facts, fired: tuple[str, ...],
                  rulebook: Rulebook, engine: RulesEngine) -> tuple[Facts, tuple[str, ...]]:
    """The facts and fired rules, with `late_delivery_changes_charge` set when the send, delivered late,
    would be billed differently (Meta classifies on delivery).

    Only a moment where something open at the send closes (the window, a conversation, a free entry
    point) within the delay the rules consider can change the classification; the send is classified
    again at the first such moment.
    """
    if not any(facts.expiries.values()):
        return facts, fired  # nothing open at the send (checked in C)
    at = request.send.at
    horizon = at + rulebook.parameter("delivery_delay_considered")
    ends = [end for end in facts.expiries.values() if end is not None and at < end <= horizon]
    if not ends:
        return facts, fired  # nothing open at the send closes after it, within the delay considered
    first = min(ends)
    later_facts = derive_facts(replace(request.send, at=first), state, request.context, rulebook, display=False)
    later = classify(engine.match_memoized(later_facts.engine), later_facts, rulebook)
    if charge_terms(later) == charge_terms(classify(fired, facts, rulebook)):
        return facts, fired
    facts = with_late_delivery(facts, first, later)
    return facts, engine.match_memoized(facts.engine)


def assumed_send(message: Message, state: HistoryState, to: str, rulebook: Rulebook) -> tuple[Send, str | None]:
    """A past outbound message as a send at its (delivery) time, and what was assumed about its type (None when
    its type is known).

    A message known only from statuses whose category does not say (referral_conversion, business_initiated,
    or one the rules do not model) is assumed free-form while the customer service window was open, and a
    template when it was closed: a free-form message cannot be sent outside the window (131047), so Meta
    could only have delivered a template then. The template's category is unknown; it is classified as
    utility, which only decides a charge where no free entry point or 2022 conversation rule applies.
    """
    if message.type != UNKNOWN_TYPE:
        return Send(message.at, to, message.type, message.template), None
    last = state.last_counted_inbound
    if last is not None and last <= message.at < last + rulebook.parameter("customer_service_window"):
        return Send(message.at, to, "text"), (
            "assumed free-form: the status does not say it was a template, and the customer service window was "
            f"open (since {last.isoformat()})")
    template = message.template or Template(UNKNOWN_TEMPLATE, "und", "utility")
    return Send(message.at, to, "template", template), (
        "assumed a template of unknown category (classified as utility): the customer service window was closed, "
        "and outside it Meta delivers only templates")


def _classify(message: Message, state: HistoryState, to: str, context: dict[str, Any], rulebook: Rulebook,
              engine: RulesEngine) -> Charge | None:
    past, _ = assumed_send(message, state, to, rulebook)
    facts = derive_facts(past, state, context, rulebook, display=False)
    return classify(engine.match_memoized(facts.engine), facts, rulebook)


def longest_period(rulebook: Rulebook) -> timedelta:
    """The longest any period the rulebook's rules open can last (quiet_point's `lifetime`)."""
    lifetime = _LIFETIMES.get(rulebook.version)
    if lifetime is None:
        lifetime = _LIFETIMES[rulebook.version] = longest_lifetime(r.charge.lasts for r in rulebook.rules if r.charge)
    return lifetime


def ordered_history(request: DecisionRequest) -> list[tuple[int, Message]]:
    """History up to the send's time, oldest first; at the same instant, inbound before outbound."""
    return list(timeline(request.history, request.send.at))


def _opened(classified, message: Message, index: int) -> Period | None:
    if classified is None or not classified.opens:
        return None
    # kind, category, pricing_model, opened_at, expires_at, opened_by, rule
    return Period(classified.opens, classified.category, classified.pricing_model, message.at, classified.lasts_until,
                  index, classified.rule or "")
