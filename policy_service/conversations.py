"""Open conversations and free entry point windows, as opened by earlier sends."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

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
