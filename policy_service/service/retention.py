"""Retention of the tables that grow with traffic (store/retention.py): how far back the rules read, and
pruning what is older, never what a decision still reads.

Stored messages and billing rows are read by decisions: the history behind a `history_ref` (windows of a day,
an undelivered message's 30-day lifetime) and counts over a period (a calendar month of service messages, a
moving day of users reached). `rules_look_back` derives that reach from the rule parameters, so a rules
change that counts over a longer period raises the floor with it. Logged decisions are read by no decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core.periods import CALENDAR_MONTH
from ..core.rulebook import Rulebook
from ..store import retention

# The longest calendar month (31 days) and a day for the time zone it is counted in.
CALENDAR_MONTH_REACH = timedelta(days=32)


class RetentionTooShort(ValueError):
    """The age would delete rows the rules still read; the message names the floor and why."""


@dataclass(frozen=True)
class Pruned:
    """One table's outcome: rows deleted (or, dry, that would be) from before `before` (aware UTC)."""

    table: retention.Growing
    before: datetime
    count: int


def rules_look_back(rulebook: Rulebook) -> tuple[timedelta, str]:
    """How far back a decision reads stored messages and billing: the longest duration or counting period
    among the rule parameters (a calendar month counts as 32 days), and the parameter's name."""
    reaches = [(CALENDAR_MONTH_REACH if parameter.value == CALENDAR_MONTH else parameter.value, name)
               for name, parameter in rulebook.parameters.items()
               if isinstance(parameter.value, timedelta) or parameter.value == CALENDAR_MONTH]
    return max(reaches, key=lambda reach: reach[0])


def prune(tables: Iterable[str], before: datetime, now: datetime, rulebook: Rulebook, *,
          dry_run: bool = False) -> list[Pruned]:
    """Delete rows older than `before` (aware) from the named tables (retention.BY_NAME: decisions, messages,
    billing, idempotency). Raises RetentionTooShort, deleting nothing, when a table the rules read would lose
    rows younger than `rules_look_back`; KeyError for an unknown table name."""
    chosen = [retention.BY_NAME[name] for name in tables]
    floor, parameter = rules_look_back(rulebook)
    read = [table.name for table in chosen if table.read_by_rules]
    if read and now - before < floor:
        days = floor.total_seconds() / 86400
        raise RetentionTooShort(
            f"{' and '.join(read)} are read by decisions up to {days:g} days back (rule parameter {parameter}): "
            f"keep at least {days:g}d of them, or prune only decisions")
    return [Pruned(table, before, retention.prune(table, before, dry_run=dry_run)) for table in chosen]
