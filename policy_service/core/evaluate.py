"""The Flask-free spine: history -> facts -> rules engine -> decision."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from datetime import timedelta
from itertools import chain

from .chronology import carried_before, timeline
from .conditions import why_not
from .conversations import Period, longest_lifetime, quiet_point
from .decision import Charge, Decision, classify, combine, fail_closed
from .engine import RulesEngine
from .errors import EngineError
from .facts import HistoryState, derive_facts, new_state
from .messages import DecisionRequest, Message, Send
from .rulebook import Rulebook

log = logging.getLogger(__name__)
_LIFETIMES: dict[str, timedelta] = {}  # rulebook version -> longest period lifetime


def evaluate(request: DecisionRequest, *, rulebook: Rulebook, engine: RulesEngine,
             decision_id: str | None = None, explain_why_not: bool = False) -> Decision:
    """Decide one proposed send; any engine failure fails closed as an error, never as an allow."""
    decision_id = decision_id or new_decision_id()
    try:
        state = replay(request, rulebook, engine)
        facts = derive_facts(request.send, state, request.context, rulebook)
        fired = engine.match_memoized(facts.engine)
        decision = combine(fired, facts, rulebook, decision_id=decision_id)
        if explain_why_not:
            decision = replace(decision, why_not=why_not(rulebook.rules, set(fired), facts.engine, facts.day))
    except EngineError as error:
        log.error("engine error, failing closed: %s", error)
        decision = replace(fail_closed(error, rulebook.version), decision_id=decision_id)
    except Exception as error:  # noqa: BLE001 - any internal failure must deny, never allow
        log.exception("internal error, failing closed")
        decision = replace(fail_closed(EngineError(f"internal error: {type(error).__name__}"), rulebook.version),
                           decision_id=decision_id)
    return decision


# The version (4) and variant (RFC 4122) bits of a random UUID.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


# Random numbers from the OS, fetched 256 at a time: one read per decision cost more than a third of
# evaluating it. A forked worker must never reuse its parent's numbers, so the pool empties on fork.
_RANDOM: list[int] = []
os.register_at_fork(after_in_child=_RANDOM.clear)


def new_decision_id() -> str:
    """A random (version 4) UUID as 32 lowercase hex digits, like uuid.uuid4().hex, from os.urandom."""
    try:
        number = _RANDOM.pop()  # atomic: threads never share a number
    except IndexError:
        block = os.urandom(16 * 256)
        _RANDOM.extend(int.from_bytes(block[i:i + 16]) for i in range(16, len(block), 16))
        number = int.from_bytes(block[:16])
    return f"{number & _UUID4_CLEAR | _UUID4_SET:032x}"


def replay(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine) -> HistoryState:
    """Walk the history in time order, classifying each delivered outbound send by the same rules.

    Only sends from the quiet point on are classified: what earlier sends opened has expired
    before any of them and before the proposed send (conversations.quiet_point), so it cannot
    change a later classification or the decision.
    Of the events before it, only the few that still decide the history state are walked.
    """
    events = timeline(request.history, request.send.at)
    # The proposed send comes last: when it is a lifetime after every past send, none needs classifying.
    delivered = chain([(len(events), request.send.at)],
                      ((p, events[p][1].at) for p in range(len(events) - 1, -1, -1) if _delivered(events[p][1])))
    first = quiet_point(delivered, _longest_lifetime(rulebook))
    state = new_state(rulebook)
    carried = carried_before(events, first, state, request.history)
    for position, (index, message) in enumerate(carried + events[first:]):
        if message.direction == "inbound":
            state.receive(message)
        elif message.status != "failed":
            classified = _classify(message, state, request, rulebook, engine) if position >= len(carried) else None
            state.deliver(_opened(classified, message, index), closes_others=bool(classified and
                                                                                classified.closes_others))
    return state


def _delivered(message: Message) -> bool:
    return message.direction != "inbound" and message.status != "failed"


def _classify(message: Message, state: HistoryState, request: DecisionRequest, rulebook: Rulebook,
              engine: RulesEngine) -> Charge | None:
    past = Send(message.at, request.send.to, message.type, message.template)
    facts = derive_facts(past, state, request.context, rulebook, display=False)
    return classify(engine.match_memoized(facts.engine), facts, rulebook)


def _longest_lifetime(rulebook: Rulebook) -> timedelta:
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
    return Period(
        kind=classified.opens,
        category=classified.category,
        pricing_model=classified.pricing_model,
        opened_at=message.at,
        expires_at=classified.lasts_until,
        opened_by=index,
        rule=classified.rule or "",
    )
