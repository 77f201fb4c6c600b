"""Counting periods named by rule parameters: a calendar month in the WABA's time zone, or a moving window.

A period parameter (rules/*.yaml, type `period`) is either `calendar_month` or a duration such as `24h`
(rulebook.parse_period). `period_start` gives the first instant of the period a send falls in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

CALENDAR_MONTH = "calendar_month"


def period_start(period: str | timedelta, at: datetime, zone: ZoneInfo) -> datetime:
    """The start of the period containing `at`: local midnight on the 1st of its month in `zone`, or `at` - duration.

    `at` must be aware; the result is aware (in `zone` for a calendar month).
    """
    if isinstance(period, timedelta):
        return at - period
    if period == CALENDAR_MONTH:
        local = at.astimezone(zone)
        return datetime(local.year, local.month, 1, tzinfo=zone)
    raise ValueError(f"unknown period {period!r}")


def describe_period(period: str | timedelta, start: datetime, zone: ZoneInfo) -> str:
    """How a trace names a period: "since 2026-11-01 00:00 America/Sao_Paulo" or "in the 24 h before"."""
    if isinstance(period, timedelta):
        hours = period.total_seconds() / 3600
        return f"in the {hours:g} h since {start.isoformat()}"
    return f"since {start.astimezone(zone):%Y-%m-%d %H:%M} {zone.key}"
