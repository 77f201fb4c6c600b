"""The history in time order, and the few events before a point that still decide the state there."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from itertools import islice
from operator import attrgetter, lt

from .facts import HistoryState
from .messages import Message
from .records import replace

_AT, _TYPE, _REFERRAL = attrgetter("at"), attrgetter("type"), attrgetter("referral")
_DELIVERED_AT = attrgetter("delivered_at")
_FEW = 64  # events


def by_delivery(history: tuple[Message, ...]) -> tuple[Message, ...]:
    """The history with each outbound message that has a delivery time dated by it, indexes unchanged.

    Meta opens conversations, charges, and judges a utility template against the window when a message
    is delivered, not when it is sent (M1, M2); replay therefore places it at its delivery.
    """
    if not any(map(_DELIVERED_AT, history)):
        return history  # no separate delivery times: nothing moves (the common case, checked in C)
    return tuple(map(at_delivery, history))


def at_delivery(message: Message) -> Message:
    """The message as replay places it in time: an outbound message that has a delivery time dated by it."""
    if message.delivered_at is not None and message.direction == "outbound":
        return replace(message, at=message.delivered_at)
    return message


class _InOrder(Sequence):
    """A history prefix already in time order, as (index, message) pairs made only when read."""

    def __init__(self, history: tuple[Message, ...], end: int) -> None:
        self._history, self._end = history, end

    def __len__(self) -> int:
        return self._end

    def __getitem__(self, position):  # type: ignore[override]
        if type(position) is int and 0 <= position < self._end:
            return position, self._history[position]  # replay's reads: checked first, as they are most
        if isinstance(position, slice):
            return [(i, self._history[i]) for i in range(*position.indices(self._end))]
        if not -self._end <= position < self._end:
            raise IndexError(position)
        position %= self._end
        return position, self._history[position]


def timeline(history: tuple[Message, ...], cutoff: datetime, *, times: list[datetime] | None = None,
             strictly_ordered: bool | None = None) -> Sequence[tuple[int, Message]]:
    """(index, message) for the history up to `cutoff`, oldest first; at one instant, inbound first.

    `times`, when given, are the messages' `at` (list(map(attrgetter("at"), history))), and `strictly_ordered`
    whether they strictly increase (strictly_ordered(times)), made once by a caller that needs them too.
    """
    if times is None:
        times = list(map(_AT, history))
    if strictly_ordered is None:
        strictly_ordered = is_strictly_ordered(times)
    if strictly_ordered:
        # Strictly in time order already, as clients usually send it: no sort, no copy, cut by bisection;
        # replay then reads only the recent events.
        end = bisect_right(times, cutoff)
        # A short history's pairs cost less made at once than read through _InOrder one by one.
        return list(enumerate(islice(history, end))) if end <= _FEW else _InOrder(history, end)
    events = [(i, m) for i, m in enumerate(history) if m.at <= cutoff]
    return sorted(events, key=lambda item: (item[1].at, item[1].direction != "inbound", item[0]))


def is_strictly_ordered(times: list[datetime]) -> bool:
    """True when each time is later than the one before it (checked in C)."""
    return all(map(lt, times, islice(times, 1, None)))


def carried_before(events: Sequence[tuple[int, Message]], first: int, state: HistoryState,
                   history: tuple[Message, ...]) -> list[tuple[int, Message]]:
    """The events before `first` whose replay leaves the state there as the whole prefix would.

    The state keeps only the last counted inbound, the last uncounted inbound, the last entry point
    (referral) and whether a delivered send followed it; periods need no replay before the quiet point.
    """
    maybe_uncounted, sources = state.openers.uncounted_types, state.referral_source_types
    # Scans over the whole history run in C; the walk back stops as soon as each kind is found.
    want_uncounted = not maybe_uncounted.isdisjoint(map(_TYPE, history))
    want_referral = any(map(_REFERRAL, history))
    want_counted, picked, reply = True, set(), None
    for position in range(first - 1, -1, -1):
        if not (want_counted or want_uncounted or want_referral):
            break
        message = events[position][1]
        if message.direction != "inbound":
            reply = position if message.delivery_time is not None else reply
        elif message.type in maybe_uncounted and not state.counts(message):
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
