"""Reports over stored data: reconciliation of Meta's pricing with the predicted charges, and the cost report.

Both read the store through review (review.reconciliation, review.costs) with the policy in force; the
HTTP API, the reviewer pages, the command line and the Python API call these, so each report has one
definition of its filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ..core.identities import WA_ID, NotAContact, parse_contact
from ..review import costs, reconciliation
from ..review.reconciliation import Comparison, Replayed
from .decisions import Policy
from .pricing import require_rate_card

__all__ = ["Comparison", "ReplayedMessage", "chart", "comparisons", "cost_report", "reconcile", "replayed"]

chart = costs.chart


def comparisons(policy: Policy, *, phone_number_id: str | None = None, contact: str | None = None) -> list[Comparison]:
    """Every delivered message with Meta's pricing beside its prediction, oldest first; `contact` a wa_id
    (with or without "+"), a BSUID, or a group id (the group's messages: they are stored under the group)."""
    return reconciliation.reconcile(policy.rulebook, policy.engine, phone_number_id=phone_number_id,
                                    contact=contact.lstrip("+") if contact else None)


def reconcile(policy: Policy, *, phone_number_id: str | None = None, contact: str | None = None, page: int = 1,
              page_size: int | None = None) -> dict[str, Any]:
    """The reconciliation report (the body of GET /v1/reconciliation): one page of comparisons and the
    summary of them all (review.reconciliation.report), with a `note` when a contact read as a group id matched
    nothing."""
    found = comparisons(policy, phone_number_id=phone_number_id, contact=contact)
    report = reconciliation.report(found, page=page, page_size=page_size)
    if contact and not found and _read_as_group(contact):
        # A group id has no shape to check ("abc" is one): an empty answer names what the contact was read as.
        report["note"] = (f"contact {contact!r} is neither a wa_id nor a BSUID, so it was read as a Groups API group "
                          "id, and no delivered message of a group with that id is stored (check the contact)")
    return report


def _read_as_group(contact: str) -> bool:
    """Whether a reconciliation contact (as contract.queries.PartyField took it) is a group id: not a wa_id or BSUID."""
    try:
        parse_contact(contact, WA_ID)
    except NotAContact:
        return True
    return False


@dataclass(frozen=True)
class ReplayedMessage:
    """A delivered message's send replayed through today's rules, and its comparison with Meta's pricing."""

    replayed: Replayed
    comparison: Comparison | None


def replayed(policy: Policy, wamid: str) -> ReplayedMessage | None:
    """The decision today's rules make for a stored delivered message's send; None if no such message."""
    found = reconciliation.replayed(policy.rulebook, policy.engine, wamid)
    if found is None:
        return None
    comparison = next((c for c in comparisons(policy, phone_number_id=found.phone_number_id, contact=found.contact)
                       if c.wamid == wamid), None)
    return ReplayedMessage(found, comparison)


def cost_report(policy: Policy, start: date, end: date, *, group_by: str | Sequence[str] = ("month", "category"),
                currency: str = "USD") -> dict[str, Any]:
    """What Meta billed (stored statuses priced by the rate cards) beside what the logged decisions
    predicted, from `start` through `end` (UTC days, both included), grouped by any of month, category and
    market (a sequence or a comma list); amounts as decimal strings in `currency`. Raises ValueError for an
    unknown grouping, ServiceError 422 naming currency when no rate card is in it and no WABA is billed in it."""
    keys = group_by.split(",") if isinstance(group_by, str) else group_by
    keys = tuple(dict.fromkeys(key.strip() for key in keys if key.strip()))
    require_rate_card(policy.rulebook.rates, currency, billed=True)
    return costs.cost_report(policy.rulebook.rates, start, end, group_by=keys, currency=currency)
