"""Reads of the decision log, for the HTTP API, the reviewer pages and Python callers.

Entries are shaped as the API shows them (store.decision_log.entry): decision_id, logged_at (RFC 3339,
UTC), decision, status, rulebook and policy versions, determining_rules, recipient_region, masked, and
the logged request and response as JSON.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from ..store import decision_log, history_reads
from ..store.decision_log import DecisionQuery
from .errors import ServiceError, quoted

__all__ = ["DecisionQuery", "count", "decision", "listing", "missing", "page", "pagination", "replayable", "summary",
           "with_example_recipient"]

with_example_recipient = decision_log.with_example_recipient
# A logged request made replayable: a history_ref's range read again (store.history_reads.replayable).
replayable = history_reads.replayable


def decision(decision_id: str) -> dict[str, Any] | None:
    """The logged decision with this id (request masked as logged); None if there is none."""
    return decision_log.get(decision_id)


def missing(decision_id: str) -> ServiceError:
    """The 404 of a decision id nothing was logged under, naming decision_id."""
    return ServiceError.not_found("decision_id", f"no decision with id {quoted(decision_id)}",
                                  "no decision with this id")


def count(query: DecisionQuery) -> int:
    """How many logged decisions match the filters."""
    return decision_log.select(query).count()


def page(query: DecisionQuery, number: int, size: int) -> list[dict[str, Any]]:
    """One page (1-based `number` of `size` entries) of the logged decisions matching the filters, newest first."""
    return [decision_log.entry(row) for row in decision_log.select(query).paginate(number, size)]


def listing(query: DecisionQuery, number: int, size: int) -> dict[str, Any]:
    """One page (1-based `number` of `size` entries) of the logged decisions matching the filters, newest first,
    with what GET /v1/decisions sends in its X-Pagination header: {"decisions": [...], "pagination": ...}."""
    return {"decisions": page(query, number, size), "pagination": pagination(number, size, count(query))}


def pagination(number: int, size: int, total: int) -> dict[str, int]:
    """A listing's page metadata, as flask-smorest words X-Pagination (web.log_api sends this one): {total,
    total_pages}, and with any entry {first_page, last_page}, and for a page that exists {page, previous_page,
    next_page} (those beyond the first and last left out)."""
    if total == 0:
        return {"total": 0, "total_pages": 0}
    pages = (total - 1) // size + 1
    metadata = {"total": total, "total_pages": pages, "first_page": 1, "last_page": pages}
    if number <= pages:
        metadata["page"] = number
        if number > 1:
            metadata["previous_page"] = number - 1
        if number < pages:
            metadata["next_page"] = number + 1
    return metadata


def summary(today: date | None = None) -> dict[str, Any]:
    """The log's headline counts for the home page: `logged` (all decisions), `yesterday` (the UTC day
    before `today`, ISO date) and `denied_yesterday`."""
    today = today or datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    return {"logged": count(DecisionQuery()), "yesterday": yesterday.isoformat(),
            "denied_yesterday": count(DecisionQuery(since=day_start(yesterday), until=day_start(today),
                                                    decision="deny"))}


def day_start(day: date) -> datetime:
    """Midnight UTC starting a day."""
    return datetime.combine(day, time(0), tzinfo=UTC)
