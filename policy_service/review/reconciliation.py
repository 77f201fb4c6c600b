"""Reconciliation: Meta's `pricing` of each delivered message against the charge our rules predict.

Each message is replayed at its delivery (Meta classifies and bills on delivery). A message whose
pricing category the rules do not model (general_purpose_ai, business_agent, group_*, a future one)
is reported as "category not modelled" instead of being replayed as something it was not; one whose
type the status does not say is replayed with the type `assumed_send` assumes, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..core.decision import Decision
from ..core.engine import RulesEngine
from ..core.evaluate import assumed_send, evaluate, replay
from ..core.messages import DecisionRequest, Send
from ..core.rulebook import Rulebook
from ..core.vocabulary import modelled
from ..store import histories
from ..store.database import loaded_time

COMPARED_FIELDS = ("pricing_model", "category", "type", "billable")


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
    note: str | None = None  # what the replay assumed, or why it was not replayed
    modelled: bool = True  # False: Meta's category is not one the rules model; nothing was predicted

    @property
    def matches(self) -> bool:
        """True when the message was replayed and every field Meta reported equals the prediction."""
        return self.modelled and not self.differences


def reconcile(rulebook: Rulebook, engine: RulesEngine, *, phone_number_id: str | None = None,
              contact: str | None = None) -> list[Comparison]:
    """Compare every stored delivered message with pricing to the rules' prediction, oldest first."""
    comparisons = []
    conversations: dict[tuple[str, str], list[histories.StoredMessage]] = {}
    for row in histories.delivered_with_pricing(phone_number_id, contact):
        key = (row.phone_number_id, row.contact)
        if key not in conversations:
            conversations[key] = histories.stored_messages(*key)
        comparisons.append(_compare(row, conversations[key], rulebook, engine))
    return comparisons


@dataclass(frozen=True)
class Replayed:
    """A delivered message's send, rebuilt from the stored history before it, and the decision it gets today."""

    wamid: str
    phone_number_id: str
    contact: str
    request: DecisionRequest
    decision: Decision


def replayed(rulebook: Rulebook, engine: RulesEngine, wamid: str) -> Replayed | None:
    """The decision the rules make today for one stored delivered message (by wamid), as reconciliation
    replays it; None if no such outbound message is stored or its category is not modelled."""
    if "\x00" in wamid:
        return None  # PostgreSQL refuses to compare text holding NUL, and no wamid contains one
    row = histories.StoredMessage.get_or_none(histories.StoredMessage.wamid == wamid)
    if row is None or row.direction != "outbound":
        return None
    if not modelled(histories.outbound_category(row)):
        return None
    request, _ = _request(row, histories.stored_messages(row.phone_number_id, row.contact), rulebook, engine)
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"reconcile:{row.wamid}")
    return Replayed(row.wamid, row.phone_number_id, row.contact, request, decision)


# Categories Meta reports under another name for the same charge: marketing_lite is the Marketing Messages
# API's marketing (billed at Cloud API marketing rates, PMP-8), which the rules classify as marketing.
SAME_CHARGE = {"marketing_lite": "marketing"}


def normalized_category(category: Any) -> Any:
    """The category as compared: Meta spells authentication-international with a hyphen in pricing and an
    underscore elsewhere, and names Marketing Messages API marketing `marketing_lite`."""
    if not isinstance(category, str):
        return category
    return SAME_CHARGE.get(category, category.replace("_international", "-international"))


def report(comparisons: list[Comparison]) -> dict[str, Any]:
    """The comparisons as JSON, with counts of matches and mismatches."""
    mismatching = [c for c in comparisons if c.modelled and c.differences]
    not_modelled = [c for c in comparisons if not c.modelled]
    return {
        "checked": len(comparisons),
        "matching": len(comparisons) - len(mismatching) - len(not_modelled),
        "mismatching": len(mismatching),
        "not_modelled": len(not_modelled),
        "comparisons": [
            {"wamid": c.wamid, "phone_number_id": c.phone_number_id, "contact": c.contact, "at": c.at,
             "matches": c.matches, "meta": c.meta, "predicted": c.predicted, "decision": c.decision,
             "determining_rules": list(c.determining_rules), "modelled": c.modelled, "note": c.note,
             "differences": [{"field": d.field, "meta": d.meta, "predicted": d.predicted} for d in c.differences]}
            for c in comparisons
        ],
    }


def _compare(row: histories.StoredMessage, conversation: list[histories.StoredMessage], rulebook: Rulebook,
             engine: RulesEngine) -> Comparison:
    meta = histories.pricing(row)
    at = loaded_time(row.at).isoformat()
    category = histories.outbound_category(row)
    if not modelled(category):
        return Comparison(row.wamid, row.phone_number_id, row.contact, at, meta, None, "not_modelled", (), (),
                          note=f"category not modelled: {category}", modelled=False)
    request, assumption = _request(row, conversation, rulebook, engine)
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"reconcile:{row.wamid}")
    charge = decision.charge
    predicted = None if charge is None else {
        "pricing_model": charge.pricing_model, "category": charge.category, "type": charge.type,
        "billable": charge.billable,
    }
    differences = tuple(
        Difference(name, meta[name], None if predicted is None else predicted[name])
        for name in COMPARED_FIELDS
        if name in meta and _value(name, meta[name]) != _value(name, (predicted or {}).get(name))
    )
    return Comparison(row.wamid, row.phone_number_id, row.contact, at, meta, predicted, decision.decision,
                      decision.determining_rules, differences, note=assumption)


def _request(row: histories.StoredMessage, conversation: list[histories.StoredMessage], rulebook: Rulebook,
             engine: RulesEngine) -> tuple[DecisionRequest, str | None]:
    """The send as delivered, after the stored history before it, and what was assumed of its type."""
    message = histories.as_message(row)
    to = "+" + row.contact
    before = tuple(histories.as_message(r) for r in conversation[: conversation.index(row)])
    delivered = message.delivery_time or message.at
    state = replay(DecisionRequest(Send(delivered, to, "text"), before), rulebook, engine)
    send, assumption = assumed_send(replace(message, at=delivered), state, to, rulebook)
    return DecisionRequest(send, before), assumption


def _value(name: str, value: Any) -> Any:
    return normalized_category(value) if name == "category" else value
