"""Replay one history at a series of sends in one pass: reconciliation replays every delivered message of a contact
at its delivery, after the stored messages before it.

replay() per message walks every event since the latest quiet point again for each message, so N messages of a
busy contact (no 72 h pause) cost N²/2 classifications. IncrementalReplay gives the same states walking each event
about once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from datetime import datetime
from itertools import islice
from operator import attrgetter, le
from typing import Any

from .chronology import at_delivery, carried_before
from .engine import RulesEngine
from .evaluate import (
    delivery_lifetimes,
    longest_delivery_lifetime,
    longest_period,
    replay,
    set_undelivered,
    walk,
)
from .facts import HistoryState, new_state
from .messages import DecisionRequest, Message, Send
from .rulebook import Rulebook
from .window import window_openers

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
    What replay reads beside the walk is kept as the history grows too: the message not delivered by the send
    (among the events after it, or the never-delivered ones searched back from it) and the marketing templates
    delivered recently outside a window (counted once settled, as the window a delivery fell in then no longer
    changes).
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
        # The longest prefix in time order: its never-delivered messages are searched back from a send.
        self._in_order = next((i + 1 for i, ok in enumerate(map(le, times, islice(times, 1, None))) if not ok),
                              len(history))
        self._lifetime_of = delivery_lifetimes(rulebook)
        self._longest_delivery = longest_delivery_lifetime(history, rulebook)
        self._opens = window_openers(rulebook).opens
        self._window = rulebook.parameter("customer_service_window")
        self._marketing_period = rulebook.parameter("marketing_recent_period")
        self._restart()

    def _restart(self) -> None:
        self._end = 0  # history[:_end] is among the events
        self._keys: list[tuple[datetime, bool, int]] = []
        self._events: list[tuple[int, Message]] = []
        self._base = new_state(self._rulebook)
        self._base_end = 0  # events[:_base_end] are walked into the base
        self._base_first = 0  # the base's quiet point: the position its walk started from
        self._last_send: datetime | None = None  # the time of the base's latest delivered send
        self._openers: list[datetime] = []  # when the user's messages that open the window were written, sorted
        self._never_delivered: list[int] = []  # outbound, not failed, with no delivery: indexes, in history order
        self._marketing: list[tuple[datetime, int]] = []  # (delivery, index) of marketing templates not yet settled
        self._marketing_counted: list[datetime] = []  # settled deliveries counted (outside any window), sorted

    def state(self, end: int, at: datetime) -> HistoryState:
        """The state replay() gives for a send at `at` after history[:end] (0 <= end <= len(history)); the caller
        owns it (evaluate(replayed=...) may use it up)."""
        if end < self._end:
            self._restart()
        for index in range(self._end, end):
            self._add(index)
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
        set_undelivered(state, self._undelivered(end, count, at), self._rulebook)
        state.marketing_recent = self._marketing_recent(at, self._first_from[end])
        return state

    def _add(self, index: int) -> None:
        """Take history[index] in: among the events, and where the undelivered message and the marketing count
        look for it."""
        key = self._keys_of[index]
        position = bisect_left(self._keys, key)
        self._keys.insert(position, key)
        self._events.insert(position, (index, self._placed[index]))
        message = self._history[index]
        if message.direction == "inbound":
            if self._opens(message.type, message.at):
                insort(self._openers, message.at)
            return
        delivered = message.delivery_time
        if delivered is None:
            if message.status != "failed":
                self._never_delivered.append(index)
        elif message.template is not None and message.template.category == "marketing":
            self._marketing.append((delivered, index))

    def _undelivered(self, end: int, count: int, at: datetime) -> tuple[int, Message] | None:
        """undelivered_before of history[:end] at `at` (`count`: how many events are at or before it): the latest
        sent message within its time-to-live that is not delivered by `at`. It was either delivered after `at` (an
        event after the send) or never (the never-delivered messages, searched back from `at`)."""
        lifetime_of = self._lifetime_of
        found: tuple[datetime, int] | None = None
        events = self._events
        for position in range(count, len(events)):  # (islice would step through the events before the send)
            index = events[position][0]
            message = self._history[index]
            if message.direction == "inbound" or message.status == "failed" or not message.at <= at:
                continue
            delivered = message.delivery_time
            if at - lifetime_of(message) < message.at and (delivered is None or delivered > at):
                found = max(found, (message.at, index)) if found else (message.at, index)
        never = self._never_delivered
        if end <= self._in_order:
            # In time order: the latest one sent by `at` that is still within its time-to-live, searched back (no
            # lifetime is longer than the longest).
            for place in range(bisect_right(never, at, key=self._send_time) - 1, -1, -1):
                message = self._history[never[place]]
                if not at - self._longest_delivery < message.at:
                    break
                if at - lifetime_of(message) < message.at:
                    found = max(found, (message.at, never[place])) if found else (message.at, never[place])
                    break
        else:
            for index in never:
                message = self._history[index]
                if message.at <= at and at - lifetime_of(message) < message.at:
                    found = max(found, (message.at, index)) if found else (message.at, index)
        return None if found is None else (found[1], self._history[found[1]])

    def _marketing_recent(self, at: datetime, later: tuple[datetime, bool, int] | None) -> int:
        """marketing_delivered_recently of the history taken in, at `at`; `later` the smallest key of the messages
        not yet taken in. A delivery before it is settled: every message of the user before it is in, so whether
        it was inside a window no longer changes; it is counted once into a sorted list, the rest looked at each
        call."""
        unsettled = []
        for delivered, index in self._marketing:
            if later is not None and delivered >= later[0]:
                unsettled.append((delivered, index))
            elif self._outside_window(delivered):
                insort(self._marketing_counted, delivered)
        self._marketing = unsettled
        since = at - self._marketing_period
        counted = self._marketing_counted
        return bisect_left(counted, at) - bisect_left(counted, since) + sum(
            since <= delivered < at and self._outside_window(delivered) for delivered, _ in unsettled)

    def _outside_window(self, moment: datetime) -> bool:
        """Whether a delivery at `moment` was outside every window the user's messages taken in had opened."""
        last = bisect_right(self._openers, moment)
        return not (last and moment < self._openers[last - 1] + self._window)

    def _send_time(self, index: int) -> datetime:
        return self._history[index].at

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
