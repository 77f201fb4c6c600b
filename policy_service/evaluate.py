"""The Flask-free spine: history -> facts -> rules engine -> decision."""

from __future__ import annotations

import logging
import uuid
from bisect import bisect_right
from collections.abc import Sequence
from datetime import timedelta
from itertools import chain, islice
from operator import attrgetter, lt

from .conversations import Period, longest_lifetime, quiet_point
from .decision import Charge, Decision, classify, combine, fail_closed
from .engine import RulesEngine
from .errors import EngineError
from .facts import HistoryState, derive_facts, new_state
from .messages import DecisionRequest, Message, Send
from .rulebook import Rulebook

log = logging.getLogger(__name__)
_LIFETIMES: dict[str, timedelta] = {}  # rulebook version -> longest period lifetime
_AT, _TYPE, _REFERRAL = attrgetter("at"), attrgetter("type"), attrgetter("referral")


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
    # The decision was built just above and is not shared yet: naming it in place skips a full copy.
    object.__setattr__(decision, "decision_id", decision_id)
    return decision


def replay(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine) -> HistoryState:
    """Walk the history in time order, classifying each delivered outbound send by the same rules.

    Only sends from the quiet point on are classified: what earlier sends opened has expired
    before any of them and before the proposed send (conversations.quiet_point), so it cannot
    change a later classification or the decision.
    Of the events before it, only the few that still decide the history state are walked.
    """
    events = _timeline(request)
    # The proposed send comes last: when it is a lifetime after every past send, none needs classifying.
    delivered = chain([(len(events), request.send.at)],
                      ((p, events[p][1].at) for p in range(len(events) - 1, -1, -1) if _delivered(events[p][1])))
    first = quiet_point(delivered, _longest_lifetime(rulebook))
    state = new_state(rulebook)
    carried = _carried(events, first, state, request.history)
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


def _carried(events: Sequence[tuple[int, Message]], first: int, state: HistoryState,
             history: tuple[Message, ...]) -> list[tuple[int, Message]]:
    """The events before `first` whose replay leaves the state there as the whole prefix would.

    The state keeps only the last counted inbound, the last uncounted inbound, the last entry point
    (referral) and whether a delivered send followed it; periods need no replay before the quiet point.
    """
    ignored, sources = state.ignored_types, state.referral_source_types
    # Scans over the whole history run in C; the walk back stops as soon as each kind is found.
    want_uncounted = not ignored.isdisjoint(map(_TYPE, history))
    want_referral = any(map(_REFERRAL, history))
    want_counted, picked, reply = True, set(), None
    for position in range(first - 1, -1, -1):
        if not (want_counted or want_uncounted or want_referral):
            break
        message = events[position][1]
        if message.direction != "inbound":
            reply = position if message.status != "failed" else reply
        elif message.type in ignored:
            if want_uncounted:
                picked.add(position)
                want_uncounted = False
        else:
            if want_counted:
                picked.add(position)
                want_counted = False
            if want_referral and message.referral and message.referral.get("source_type", "ad") in sources:
                picked.update([position] if reply is None else [position, reply])
                want_referral = False
    return [events[position] for position in sorted(picked)]


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
    return list(_timeline(request))


class _InOrder(Sequence):
    """A history prefix already in time order, as (index, message) pairs made only when read."""

    def __init__(self, history: tuple[Message, ...], end: int) -> None:
        self._history, self._end = history, end

    def __len__(self) -> int:
        return self._end

    def __getitem__(self, position):  # type: ignore[override]
        if isinstance(position, slice):
            return [(i, self._history[i]) for i in range(*position.indices(self._end))]
        if not -self._end <= position < self._end:
            raise IndexError(position)
        position %= self._end
        return position, self._history[position]


def _timeline(request: DecisionRequest) -> Sequence[tuple[int, Message]]:
    history, cutoff = request.history, request.send.at
    times = list(map(_AT, history))
    if all(map(lt, times, islice(times, 1, None))):
        # Strictly in time order already, as clients usually send it: no sort, no copy, cut by bisection;
        # replay then reads only the recent events.
        return _InOrder(history, bisect_right(times, cutoff))
    events = [(i, m) for i, m in enumerate(history) if m.at <= cutoff]
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
