"""Replay one history at a series of sends in one pass: reconciliation replays every delivered message of a contact
at its delivery, after the stored messages before it.

replay() per message walks every event since the latest quiet point again for each message, so N messages of a
busy contact (no 72 h pause) cost N²/2 classifications. IncrementalReplay gives the same states walking each event
about once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from datetime import datetime
from itertools import islice
from operator import attrgetter, le
from typing import Any

from .chronology import at_delivery, carried_before
from .engine import RulesEngine
from .evaluate import longest_period, note_pending, replay, walk
from .facts import HistoryState, new_state
from .messages import DecisionRequest, Message, Send
from .rulebook import Rulebook

_AT = attrgetter("at")
# Sorts after every event at the same instant (an event's key is (time, outbound, index), outbound a bool).
_AFTER_ALL = 2


class IncrementalReplay:
    """The states replay() gives for prefixes of one history, each at its own send time, walked once.

    `state(end, at)` equals, field by field, replay(DecisionRequest(Send(at, to, "text"), history[:end], context))
    for the history, recipient `to` and `context` given here. Calls with ends that never decrease (reconciliation's:
    each delivered message at its place in the stored history, oldest first) share the walk; a smaller end starts
    again from the beginning, and a send time before events already walked is replayed on its own (both correct,
    neither cheap).

    How: the events (index, message dated as replay dates it: at its delivery when it has one) are kept in replay's
    time order (time, inbound first, index) as the history grows. Those sorting before every message not yet added
    are settled: no later call places anything before them. They are walked once into a base state, started again
    at each quiet point among them as replay starts at the last one (conversations.quiet_point: a delivered send at
    least the longest period lifetime after the one before; the few events before it that still decide the state,
    chronology.carried_before). A call copies the base and walks only the unsettled events up to its send, or, when
    a quiet point falls after the base, walks from it as replay does. Webhooks arrive out of order and a message is
    delivered after later ones are sent: those stay unsettled until no later message can come before them.
    """

    def __init__(self, history: tuple[Message, ...], to: str, rulebook: Rulebook, engine: RulesEngine,
                 context: dict[str, Any] | None = None) -> None:
        self._history, self._to, self._context = history, to, context or {}
        self._rulebook, self._engine = rulebook, engine
        self._lifetime = longest_period(rulebook)
        self._placed = tuple(map(at_delivery, history))
        self._keys_of = [(m.at, m.direction != "inbound", i) for i, m in enumerate(self._placed)]
        # The smallest key of the messages from each index on: what a later call can still place before.
        self._first_from: list[tuple[datetime, bool, int] | None] = [None] * (len(history) + 1)
        for index in range(len(history) - 1, -1, -1):
            later = self._first_from[index + 1]
            key = self._keys_of[index]
            self._first_from[index] = key if later is None or key < later else later
        times = list(map(_AT, history))
        # The longest prefix in time order (replay bisects such a history), and the first message with a delivery
        # time of its own (before it, by_delivery moves nothing).
        self._in_order = next((i + 1 for i, ok in enumerate(map(le, times, islice(times, 1, None))) if not ok),
                              len(history))
        self._times = times
        self._first_delivered = next((i for i, m in enumerate(history) if m.delivered_at is not None), len(history))
        self._restart()

    def _restart(self) -> None:
        self._end = 0  # history[:_end] is among the events
        self._keys: list[tuple[datetime, bool, int]] = []
        self._events: list[tuple[int, Message]] = []
        self._base = new_state(self._rulebook)
        self._base_end = 0  # events[:_base_end] are walked into the base
        self._base_first = 0  # the base's quiet point: the position its walk started from
        self._last_send: datetime | None = None  # the time of the base's latest delivered send

    def state(self, end: int, at: datetime) -> HistoryState:
        """The state replay() gives for a send at `at` after history[:end] (0 <= end <= len(history)); the caller
        owns it (evaluate(replayed=...) may use it up)."""
        if end < self._end:
            self._restart()
        for index in range(self._end, end):
            key = self._keys_of[index]
            position = bisect_left(self._keys, key)
            self._keys.insert(position, key)
            self._events.insert(position, (index, self._placed[index]))
        self._end = end
        count = bisect_right(self._keys, (at, _AFTER_ALL))  # the events at or before the send
        later = self._first_from[end]
        settled = min(count, len(self._keys) if later is None else bisect_left(self._keys, later))
        if settled < self._base_end:
            # The send comes before events the base has walked: replayed on its own.
            return replay(self._request(end, at), self._rulebook, self._engine)
        self._advance(settled)
        first = self._quiet_point(count, at)
        if first == self._base_first:
            state = self._base.copy()
            walk(state, self._events[self._base_end:count], 0, self._to, self._context, self._rulebook, self._engine)
        else:
            state = new_state(self._rulebook)
            carried = carried_before(self._events, first, state, self._history)
            walk(state, carried + self._events[first:count], len(carried), self._to, self._context, self._rulebook,
                 self._engine)
        delivered_apart = self._first_delivered < end
        times = self._times[:end] if end <= self._in_order else None
        note_pending(state, self._request(end, at), self._rulebook, times=times, delivered_apart=delivered_apart)
        return state

    def _request(self, end: int, at: datetime) -> DecisionRequest:
        return DecisionRequest(Send(at, self._to, "text"), self._history[:end], self._context)

    def _advance(self, settled: int) -> None:
        """Walk the events up to position `settled` into the base, starting it again at each quiet point."""
        start = self._base_end
        for position in range(self._base_end, settled):
            message = self._events[position][1]
            if message.direction == "inbound" or message.delivery_time is None:
                continue
            if self._last_send is not None and message.at - self._last_send >= self._lifetime:
                # A quiet point: nothing opened before it is open from here on; replay starts here, and the walk
                # so far is dropped.
                self._base = new_state(self._rulebook)
                carried = carried_before(self._events, position, self._base, self._history)
                walk(self._base, carried, len(carried), self._to, self._context, self._rulebook, self._engine)
                self._base_first = start = position
            self._last_send = message.at
        walk(self._base, self._events[start:settled], 0, self._to, self._context, self._rulebook, self._engine)
        self._base_end = settled

    def _quiet_point(self, count: int, at: datetime) -> int:
        """quiet_point of events[:count] before a send at `at`: the unsettled events scanned back from the send,
        then the gap to the base's latest send; else the base's own quiet point."""
        later_position, later_at = count, at
        for position in range(count - 1, self._base_end - 1, -1):
            message = self._events[position][1]
            if message.direction == "inbound" or message.delivery_time is None:
                continue
            if later_at - message.at >= self._lifetime:
                return later_position
            later_position, later_at = position, message.at
        if self._last_send is not None and later_at - self._last_send >= self._lifetime:
            return later_position
        return self._base_first
