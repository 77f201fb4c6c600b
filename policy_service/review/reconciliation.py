"""Reconciliation: Meta's `pricing` of each delivered message against the charge our rules predict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core import identities
from ..core.engine import RulesEngine
from ..core.evaluate import evaluate
from ..core.messages import DecisionRequest, Send
from ..core.rulebook import Rulebook
from ..store import histories
from ..store.database import loaded_time

COMPARED_FIELDS = ("pricing_model", "category", "type", "billable")
MARKETING_LITE = "marketing_lite"


@dataclass(frozen=True)
class Difference:
    """One pricing field where Meta and our prediction disagree."""

    field: str
    meta: Any
    predicted: Any


@dataclass(frozen=True)
class Comparison:
    """Meta's pricing of one delivered message beside the charge the rules predict for that send."""

    wamid: str
    phone_number_id: str
    contact: str
    at: str
    meta: dict[str, Any]
    predicted: dict[str, Any] | None
    decision: str
    determining_rules: tuple[str, ...]
    differences: tuple[Difference, ...]

    @property
    def matches(self) -> bool:
        """True when every field Meta reported equals the prediction."""
        return not self.differences


def reconcile(rulebook: Rulebook, engine: RulesEngine, *, phone_number_id: str | None = None,
              contact: str | None = None) -> list[Comparison]:
    """Compare every stored delivered message with pricing to the rules' prediction, oldest first."""
    comparisons = []
    conversations: dict[tuple[str, str], list[histories.StoredMessage]] = {}
    for row in histories.delivered_with_pricing(phone_number_id, contact):
        key = (row.phone_number_id, row.contact)
        if key not in conversations:
            conversations[key] = histories.history_rows(*key)
        comparisons.append(_compare(row, conversations[key], rulebook, engine))
    return comparisons


def normalized_category(category: Any) -> Any:
    """Meta spells authentication-international with a hyphen in pricing, an underscore elsewhere."""
    return category.replace("_international", "-international") if isinstance(category, str) else category


def report(comparisons: list[Comparison]) -> dict[str, Any]:
    """The comparisons as JSON, with counts of matches and mismatches."""
    mismatching = [c for c in comparisons if not c.matches]
    return {
        "checked": len(comparisons),
        "matching": len(comparisons) - len(mismatching),
        "mismatching": len(mismatching),
        "comparisons": [
            {"wamid": c.wamid, "phone_number_id": c.phone_number_id, "contact": c.contact, "at": c.at,
             "matches": c.matches, "meta": c.meta, "predicted": c.predicted, "decision": c.decision,
             "determining_rules": list(c.determining_rules),
             "differences": [{"field": d.field, "meta": d.meta, "predicted": d.predicted} for d in c.differences]}
            for c in comparisons
        ],
    }


def _compare(row: histories.StoredMessage, conversation: list[histories.StoredMessage], rulebook: Rulebook,
             engine: RulesEngine) -> Comparison:
    sent = histories.as_message(row)
    before = tuple(histories.as_message(r) for r in conversation[: conversation.index(row)])
    # Meta reports a marketing template sent through the Marketing Messages API as marketing_lite:
    # predict that send as going through that API (PMP-8), so the categories compare like for like.
    request = DecisionRequest(Send(sent.at, identities.address(row.contact), sent.type, sent.template,
                                   marketing_messages_api=histories.outbound_category(row) == MARKETING_LITE), before)
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"reconcile:{row.wamid}")
    charge = decision.charge
    predicted = None if charge is None else {
        "pricing_model": charge.pricing_model, "category": charge.category, "type": charge.type,
        "billable": charge.billable,
    }
    meta = histories.pricing(row)
    differences = tuple(
        Difference(name, meta[name], None if predicted is None else predicted[name])
        for name in COMPARED_FIELDS
        if name in meta and _value(name, meta[name]) != _value(name, (predicted or {}).get(name))
    )
    return Comparison(row.wamid, row.phone_number_id, row.contact, loaded_time(row.at).isoformat(), meta, predicted,
                      decision.decision, decision.determining_rules, differences)


def _value(name: str, value: Any) -> Any:
    return normalized_category(value) if name == "category" else value
