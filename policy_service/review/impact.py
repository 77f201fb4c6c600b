"""Impact analysis: replay logged decisions against a candidate rulebook and report what would change."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from marshmallow import ValidationError

from ..contract.schemas import REQUEST, RESPONSE
from ..core.engine import RulesEngine
from ..core.evaluate import evaluate
from ..core.rulebook import Rulebook
from ..store import decision_log, history_reads
from ..store.database import loaded_time

CHARGE_FIELDS = ("billable", "pricing_model", "category", "type")
COMPARED = ("decision", "required_message_type", "charge", "determining_rules")


@dataclass(frozen=True)
class Change:
    """A logged decision the candidate rules decide differently."""

    decision_id: str
    logged_at: str
    before: dict[str, Any]
    after: dict[str, Any]

    @property
    def fields(self) -> tuple[str, ...]:
        """The outcome fields that differ."""
        return tuple(name for name in COMPARED if self.before[name] != self.after[name])


@dataclass
class Impact:
    """What replaying the log against candidate rules found."""

    rulebook_version: str
    replayed: int = 0
    changes: list[Change] = field(default_factory=list)
    unreplayable: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The report as JSON: a summary count, then every change field by field."""
        return {
            "candidate_rulebook_version": self.rulebook_version,
            "summary": {"replayed": self.replayed, "changed": len(self.changes), "unchanged":
                        self.replayed - len(self.changes), "unreplayable": len(self.unreplayable)},
            "changes": [{"decision_id": c.decision_id, "logged_at": c.logged_at, "fields": list(c.fields),
                         "before": c.before, "after": c.after} for c in self.changes],
            "unreplayable": self.unreplayable,
        }


def analyse(records: Iterable[decision_log.DecisionRecord], rulebook: Rulebook, engine: RulesEngine) -> Impact:
    """Replay each logged request with the candidate rules and collect the decisions that change.

    A history_ref decision replays on the stored messages of the range it read, read again
    (store.history_reads.replayable); when the store no longer holds exactly those, it is reported unreplayable
    with the reason rather than replayed on another history."""
    impact = Impact(rulebook.version)
    for row in records:
        raw, problem = history_reads.replayable(decision_log.replayable_request(row))
        if problem is not None:
            impact.unreplayable[row.decision_id] = problem
            continue
        try:
            request = REQUEST.load(raw)
        except ValidationError as error:
            impact.unreplayable[row.decision_id] = f"the logged request no longer loads: {error.messages}"
            continue
        decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"impact:{row.decision_id}")
        impact.replayed += 1
        before = outcome(json.loads(row.response))
        after = outcome(RESPONSE.dump(decision))
        if before != after:
            impact.changes.append(Change(row.decision_id, loaded_time(row.logged_at).isoformat(), before, after))
    return impact


def outcome(response: dict[str, Any]) -> dict[str, Any]:
    """The parts of a decision response that impact analysis compares."""
    charge = response.get("charge")
    return {
        "decision": response.get("decision"),
        "required_message_type": response.get("required_message_type"),
        "charge": None if charge is None else {name: charge.get(name) for name in CHARGE_FIELDS},
        "determining_rules": sorted(response.get("determining_rules", [])),
    }
