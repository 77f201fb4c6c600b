"""Open conversations and free entry point windows, as opened by earlier sends."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from msgspec import Struct

from .messages import Message
from .records import replace

CONVERSATION_KINDS = ("conversation", "free_entry_point_conversation")
FREE_ENTRY_POINT_KINDS = ("free_entry_point_conversation", "free_entry_point_window")


class Period(Struct, frozen=True, gc=False):
    """A conversation or free entry point window: what opened it, and when it ends.

    A frozen msgspec Struct (made in C; compared and hashed field by field, as the frozen dataclass it was):
    replay makes one for every past send that opened something.
    """

    kind: str
    category: str
    pricing_model: str
    opened_at: datetime
    expires_at: datetime
    opened_by: int  # index of the opening message in the request's history
    rule: str

    def open_at(self, at: datetime) -> bool:
        """True when the period covers the instant (half-open: [opened_at, expires_at))."""
        return self.opened_at <= at < self.expires_at


_NO_TIME = timedelta(0)


class Ledger(Struct, gc=False):
    """Every period opened so far, in the order they opened.

    A mutable msgspec Struct (made in C, every fresh history state makes one; each gets its own lists),
    compared by its periods and their bookkeeping.
    """

    periods: list[Period] = []
    _opened: list[datetime] = []  # opened_at of each period, for bisection
    _longest: timedelta = _NO_TIME
    _in_time_order: bool = True

    def open(self, period: Period, *, closes_others: bool) -> None:
        """Record a newly opened period, closing the others first when the rule says so."""
        if closes_others:
            # A free entry point conversation ends every other open conversation (FEP-1).
            self.periods = [
                replace(p, expires_at=period.opened_at) if p.open_at(period.opened_at) else p for p in self.periods
            ]
        self._in_time_order = self._in_time_order and (not self._opened or self._opened[-1] <= period.opened_at)
        self._longest = max(self._longest, period.expires_at - period.opened_at)
        self._opened.append(period.opened_at)
        self.periods.append(period)

    def copy(self) -> Ledger:
        """A ledger with the same periods that later openings of this one do not change (nor the reverse)."""
        return Ledger(list(self.periods), list(self._opened), self._longest, self._in_time_order)

    def open_at(self, at: datetime) -> list[Period]:
        """The periods open at an instant, oldest first."""
        if not self._in_time_order:
            return [p for p in self.periods if p.open_at(at)]
        # Only periods opened within the longest lifetime before `at` can still be open: a replay of a
        # long history then looks at a few recent periods, not all of them.
        start = bisect_right(self._opened, at - self._longest)
        end = bisect_right(self._opened, at)
        return [p for p in self.periods[start:end] if p.open_at(at)]


def longest_lifetime(lifetimes: Iterable[timedelta | None]) -> timedelta:
    """The longest any period can last, from the `lasts` of every rule that opens one."""
    return max((lasts for lasts in lifetimes if lasts), default=timedelta(0))


def quiet_point(events: Sequence[tuple[int, Message]], at: datetime, lifetime: timedelta) -> int:
    """Where classification must start: the position among `events` ((index, message) in time order, none after
    `at`) of the latest delivered send that follows the one before it by at least `lifetime`, the proposed send
    at `at` coming last (len(events) when it is that one); 0 if none.

    Every period opened at or before a send expires at most `lifetime` after it, and closing early
    only shortens it; so nothing opened before the quiet point is open at or after it, and sends
    before it need no classification for anything from the quiet point on.
    """
    later_position, later_at = len(events), at
    for position in range(len(events) - 1, -1, -1):
        message = events[position][1]
        if message.direction == "inbound" or message.delivery_time is None:
            continue
        if later_at - message.at >= lifetime:
            return later_position
        later_position, later_at = position, message.at
    return 0
