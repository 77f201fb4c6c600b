"""The Flask-free spine: history -> facts -> rules engine -> decision."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace
from datetime import timedelta

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
             decision_id: str | None = None) -> Decision:
    """Decide one proposed send; any engine failure fails closed as an error, never as an allow."""
    decision_id = decision_id or uuid.uuid4().hex
    try:
        state = replay(request, rulebook, engine)
        facts = derive_facts(request.send, state, request.context, rulebook)
        decision = combine(engine.match_memoized(facts.engine), facts, rulebook)
    except EngineError as error:
        log.error("engine error, failing closed: %s", error)
        decision = fail_closed(error, rulebook.version)
    except Exception as error:  # noqa: BLE001 - any internal failure must deny, never allow
        log.exception("internal error, failing closed")
        decision = fail_closed(EngineError(f"internal error: {type(error).__name__}"), rulebook.version)
    return replace(decision, decision_id=decision_id)


def replay(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine) -> HistoryState:
    """Walk the history in time order, classifying each delivered outbound send by the same rules.

    Only sends from the quiet point on are classified: what earlier sends opened has expired
    before any of them (conversations.quiet_point), so it cannot change a later classification.
    """
    events = ordered_history(request)
    delivered = [position for position, (_, m) in enumerate(events) if m.direction != "inbound" and m.status != "failed"]
    quiet = quiet_point([events[p][1].at for p in delivered], _longest_lifetime(rulebook))
    first_classified = delivered[quiet] if delivered else 0
    state = new_state(rulebook)
    for position, (index, message) in enumerate(events):
        if message.direction == "inbound":
            state.receive(message)
        elif message.status != "failed":
            classified = _classify(message, state, request, rulebook, engine) if position >= first_classified else None
            state.deliver(_opened(classified, message, index), closes_others=bool(classified and
                                                                                classified.closes_others))
    return state


def _classify(message: Message, state: HistoryState, request: DecisionRequest, rulebook: Rulebook,
              engine: RulesEngine) -> Charge | None:
    past = Send(message.at, request.send.to, message.type, message.template)
    facts = derive_facts(past, state, request.context, rulebook)
    return classify(engine.match_memoized(facts.engine), facts, rulebook)


def _longest_lifetime(rulebook: Rulebook) -> timedelta:
    if rulebook.version not in _LIFETIMES:
        _LIFETIMES[rulebook.version] = longest_lifetime(r.charge.lasts for r in rulebook.rules if r.charge)
    return _LIFETIMES[rulebook.version]


def ordered_history(request: DecisionRequest) -> list[tuple[int, Message]]:
    """History up to the send's time, oldest first; at the same instant, inbound before outbound."""
    events = [(i, m) for i, m in enumerate(request.history) if m.at <= request.send.at]
    return sorted(events, key=lambda item: (item[1].at, item[1].direction != "inbound", item[0]))


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
