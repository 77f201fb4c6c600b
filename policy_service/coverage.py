"""Rule coverage: which fixtures exercise each rule, and which rules no fixture reaches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .fixtures import FixtureResult
from .rulebook import Rulebook

EXPECTED_RULE_KEYS = ("rules", "not_rules", "determining_rules")


@dataclass(frozen=True)
class RuleCoverage:
    """For every rule of a rulebook (in file order), the fixtures in which it fired."""

    covering: dict[str, tuple[str, ...]]
    unknown: dict[str, tuple[str, ...]]

    @property
    def covered(self) -> tuple[str, ...]:
        """Ids of the rules that fired in at least one fixture."""
        return tuple(rule for rule, names in self.covering.items() if names)

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Ids of the rules that fired in no fixture."""
        return tuple(rule for rule, names in self.covering.items() if not names)

    @property
    def percent(self) -> float:
        """Covered rules as a percentage of all rules (100 for an empty rulebook)."""
        return 100.0 * len(self.covered) / len(self.covering) if self.covering else 100.0


def measure(rulebook: Rulebook, results: Iterable[FixtureResult]) -> RuleCoverage:
    """Count, per rule, the fixtures whose decision it fired in; note expected ids no rule file defines."""
    covering: dict[str, list[str]] = {rule.id: [] for rule in rulebook.rules}
    unknown: dict[str, list[str]] = {}
    for result in results:
        name = result.fixture.name
        for rule_id in dict.fromkeys(result.fired):
            covering.setdefault(rule_id, []).append(name)
        for key in EXPECTED_RULE_KEYS:
            for rule_id in result.fixture.expect.get(key, ()):
                if rule_id not in rulebook.by_id:
                    unknown.setdefault(rule_id, []).append(name)
    return RuleCoverage(
        covering={rule: tuple(names) for rule, names in covering.items()},
        unknown={rule: tuple(dict.fromkeys(names)) for rule, names in unknown.items()},
    )
