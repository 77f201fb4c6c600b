"""Which of a user's inbound messages open or refresh the customer service window, from the rulebook.

Two parameters in rules/customer-service-window.yaml say it: `window_ignored_inbound_types` (CSW-7: types that
never open it, a reaction say) and `window_inbound_types_counted_from` (CSW-8: types that open it only from a day
on, a user's call from the day calls began to count). Every reader that asks whether an inbound message opened the
window asks `WindowOpeners.opens`: the decision's history state (core.facts), the carried events before a quiet
point (core.chronology), the marketing count (core.evaluate), the timeline (core.timeline), the bounded stored
history read (core.lookback, store.history_reads) and the messaging-limit count (store.business_state), so a
bounded read can never count a message the decision does not. No type and no date is written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime

from .records import record


@record
class WindowOpeners:
    """The inbound message types that open no window, and those that open it only from an instant on.

    `ignored_types`: never counted. `counted_from`: type -> the first instant (aware, UTC midnight of the
    parameter's day) from which a message of that type counts; an earlier one does not. `uncounted_types` is
    every type some message of which may go uncounted (the two together), for a quick test before `opens`.
    """

    ignored_types: frozenset[str]
    counted_from: dict[str, datetime]
    uncounted_types: frozenset[str]

    def opens(self, message_type: str, at: datetime) -> bool:
        """True when an inbound message of `message_type` written at `at` (aware) opens or refreshes the window."""
        if message_type not in self.uncounted_types:
            return True
        if message_type in self.ignored_types:
            return False
        return at >= self.counted_from[message_type]


def window_openers(rulebook) -> WindowOpeners:
    """The rulebook's WindowOpeners (core.rulebook.Rulebook; made once per rulebook version).

    A day of `window_inbound_types_counted_from` starts at 00:00 UTC: the message's own time decides, not the
    send's."""
    openers = _OPENERS.get(rulebook.version)
    if openers is None:
        openers = _OPENERS[rulebook.version] = openers_of(
            rulebook.parameter("window_ignored_inbound_types"),
            rulebook.parameter("window_inbound_types_counted_from"))
    return openers


def openers_of(ignored_types: Iterable[str], counted_from: Mapping[str, date] | None = None) -> WindowOpeners:
    """WindowOpeners from the two parameters' values: an iterable of type names, and type -> day (a datetime.date;
    the day starts at 00:00 UTC). A type in both is never counted."""
    ignored = frozenset(ignored_types)
    starts = {kind: datetime(day.year, day.month, day.day, tzinfo=UTC)
              for kind, day in (counted_from or {}).items() if kind not in ignored}
    return WindowOpeners(ignored, starts, ignored | starts.keys())


_OPENERS: dict[str, WindowOpeners] = {}  # rulebook version -> its openers
