"""The rulebook the whole fleet serves: one row every worker of every instance on this database follows.

A rules reload does not compile a new ruleset in the live process (durable_rules keeps every ruleset it
ever compiled, ~1 MiB each). It publishes here instead: the generation goes up by one and the row names the
rulebook version the publisher loaded. Each worker reads the row (cheaply, at most once per check interval)
and, when the generation is newer than the one it serves, is recycled into a fresh process that loads the
rules (service/fleet.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import peewee

from .database import StoredModel, loaded_time, stored_time

# The table holds one row, with this id.
ROW_ID = 1


class RulesGeneration(StoredModel):
    """The fleet's rulebook: bumped by each published reload."""

    id = peewee.IntegerField(primary_key=True)
    generation = peewee.IntegerField()
    rulebook_version = peewee.CharField(max_length=40)
    published_at = peewee.DateTimeField()
    # The API key name (or "cli", "sighup") that published it; "" when keys are off.
    published_by = peewee.CharField(max_length=64, default="")

    class Meta:
        table_name = "rules_generation"


@dataclass(frozen=True)
class Published:
    """One published reload: generation 1, 2, … (0: nothing was ever published), the rulebook version
    ("sha256:…") its publisher loaded, when (aware UTC) and by whom."""

    generation: int
    rulebook_version: str
    published_at: datetime | None
    published_by: str


NOTHING_PUBLISHED = Published(0, "", None, "")


def current() -> Published:
    """The latest published reload; NOTHING_PUBLISHED before the first. One primary-key read."""
    row = RulesGeneration.get_or_none(RulesGeneration.id == ROW_ID)
    if row is None:
        return NOTHING_PUBLISHED
    return Published(row.generation, row.rulebook_version, loaded_time(row.published_at), row.published_by)


def publish(rulebook_version: str, *, by: str = "") -> Published:
    """Record a reload to `rulebook_version`: the generation goes up by one, atomically (two reloads at
    once get two generations). Returns what was published."""
    now = stored_time(datetime.now(UTC))
    with RulesGeneration._meta.database.atomic():
        RulesGeneration.insert(id=ROW_ID, generation=1, rulebook_version=rulebook_version, published_at=now,
                               published_by=by[:64]).on_conflict(
            conflict_target=[RulesGeneration.id],
            update={RulesGeneration.generation: RulesGeneration.generation + 1,
                    RulesGeneration.rulebook_version: rulebook_version,
                    RulesGeneration.published_at: now,
                    RulesGeneration.published_by: by[:64]},
        ).execute()
        return current()
