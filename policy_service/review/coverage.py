"""Rule coverage: which fixtures exercise each rule, and which rules no fixture reaches."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..core.rulebook import Rulebook
from .fixtures import FixtureResult


@dataclass(frozen=True)
class RuleCoverage:
    """For every rule of a rulebook (in file order), the fixtures in which it fired."""

    covering: dict[str, tuple[str, ...]]

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
    """Count, per rule, the fixtures in whose decision it fired."""
    covering: dict[str, list[str]] = {rule.id: [] for rule in rulebook.rules}
    for result in results:
        for rule_id in dict.fromkeys(result.fired):
            covering.setdefault(rule_id, []).append(result.fixture.name)
    return RuleCoverage({rule: tuple(names) for rule, names in covering.items()})
