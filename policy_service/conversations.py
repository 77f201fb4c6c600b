"""Open conversations and free entry point windows, as opened by earlier sends."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

CONVERSATION_KINDS = ("conversation", "free_entry_point_conversation")
FREE_ENTRY_POINT_KINDS = ("free_entry_point_conversation", "free_entry_point_window")


@dataclass(frozen=True)
class Period:
    """A conversation or free entry point window: what opened it, and when it ends."""

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


class Ledger:
    """Every period opened so far, in the order they opened."""

    def __init__(self) -> None:
        self.periods: list[Period] = []

    def open(self, period: Period, *, closes_others: bool) -> None:
        """Record a newly opened period, closing the others first when the rule says so."""
        if closes_others:
            # A free entry point conversation ends every other open conversation (FEP-1).
            self.periods = [
                replace(p, expires_at=period.opened_at) if p.open_at(period.opened_at) else p for p in self.periods
            ]
        self.periods.append(period)

    def open_at(self, at: datetime) -> list[Period]:
        """The periods open at an instant, oldest first."""
        return [p for p in self.periods if p.open_at(at)]


def longest_lifetime(lifetimes: Iterable[timedelta | None]) -> timedelta:
    """The longest any period can last, from the `lasts` of every rule that opens one."""
    return max((lasts for lasts in lifetimes if lasts), default=timedelta(0))


def quiet_point(sends: Sequence[datetime], lifetime: timedelta) -> int:
    """Position of the last send that follows the one before it by at least `lifetime` (0 if none).

    `sends` are the delivered sends' times, oldest first. Every period opened at or before a
    send expires at most `lifetime` after it, and closing early only shortens it; so nothing
    opened before the quiet point is open at or after it, and sends before it need no
    classification for anything from the quiet point on.
    """
    for position in range(len(sends) - 1, 0, -1):
        if sends[position] - sends[position - 1] >= lifetime:
            return position
    return 0
