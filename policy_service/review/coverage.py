"""Rule coverage: which fixtures exercise each rule, and which rules no fixture reaches.

The denominator is fixed: the rules of the rulebook, whatever fired. Rate cards are not rules; each
card of the rulebook is reported on its own line (so a card no fixture prices with shows), apart from
the rule percentage. The trace's "PRICE" entry (a charge no card priced) is neither and is not counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ..core.rulebook import Rulebook
from .fixtures import FixtureResult


@dataclass(frozen=True)
class RuleCoverage:
    """For every rule of a rulebook (in file order), the fixtures in which it fired; for every rate card
    of the rulebook (by currency, then date), the fixtures it priced."""

    covering: dict[str, tuple[str, ...]]
    cards: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def covered(self) -> tuple[str, ...]:
        """Ids of the rules that fired in at least one fixture."""
        return tuple(rule for rule, names in self.covering.items() if names)

    @property
    def uncovered(self) -> tuple[str, ...]:
        """Ids of the rules that fired in no fixture."""
        return tuple(rule for rule, names in self.covering.items() if not names)

    @property
    def unused_cards(self) -> tuple[str, ...]:
        """Ids of the rate cards that priced no fixture (reported; not part of the rule percentage)."""
        return tuple(card for card, names in self.cards.items() if not names)

    @property
    def percent(self) -> float:
        """Covered rules as a percentage of the rulebook's rules (100 for an empty rulebook)."""
        return 100.0 * len(self.covered) / len(self.covering) if self.covering else 100.0


def measure(rulebook: Rulebook, results: Iterable[FixtureResult]) -> RuleCoverage:
    """Count, per rule and per rate card of the rulebook, the fixtures in whose decision it fired."""
    covering: dict[str, list[str]] = {rule.id: [] for rule in rulebook.rules}
    cards: dict[str, list[str]] = {card.id: [] for card in rulebook.rates.cards}
    for result in results:
        for rule_id in dict.fromkeys(result.fired):
            for counted in (covering, cards):
                if rule_id in counted:
                    counted[rule_id].append(result.fixture.name)
    return RuleCoverage({rule: tuple(names) for rule, names in covering.items()},
                        {card: tuple(names) for card, names in cards.items()})
