"""Whether the service can decide: the database that holds the decision log takes a write, and the answering
process serves the rulebook the fleet published (service/fleet.py)."""

from __future__ import annotations

import logging

import peewee

from .. import store
from .fleet import Following

log = logging.getLogger(__name__)


def database_problem() -> str | None:
    """None when the database commits a write (store.prove_write); else a short reason without host names
    or paths (those go to the log only: readiness is answered without an API key). A database that answers
    reads but refuses writes (read-only, disk full) is not ready: every decision must be logged."""
    try:
        store.prove_write()
    except peewee.PeeweeException as error:
        log.error("readiness: the decision log database does not take a write: %s", error)
        return f"unreachable or not writable ({type(error).__name__})"
    return None


def rules_problem(serving: Following) -> str | None:
    """None when this process serves the rulebook the fleet last published (or nothing was ever published:
    `Following.follows_fleet`); else one sentence naming both rulebook versions and generations, and why they
    differ, e.g. "this worker serves rulebook sha256:ab… (generation 3) but the fleet published sha256:cd…
    (generation 3): this instance's rule files (POLICY_RULES_DIR) are not the published ones; deploy them
    here and reload".

    A process on other rules decides differently from the rest of the fleet, so it is not ready: a load
    balancer routes around it until it follows (a fresh worker loading the published rules, or the same
    files deployed here and reloaded). Rule versions and generations only: nothing secret, no paths."""
    if serving.follows_fleet:
        return None
    published = serving.fleet
    reason = (f"this worker serves rulebook {serving.rulebook_version} (generation {serving.generation}) but the "
              f"fleet published {published.rulebook_version} (generation {published.generation})")
    if serving.recycling:
        return f"{reason}: this worker is being replaced by one that loads it"
    if serving.generation < published.generation:
        return f"{reason}: this worker has not followed yet (it checks every POLICY_RULES_CHECK_SECONDS)"
    if serving.generation > published.generation:
        # A process follows a higher generation only (service/fleet.py): one ahead of the row waits for the next.
        return (f"{reason}: the fleet's generation went back (its rules_generation row was reset or restored); "
                "reload to publish the rules again")
    if serving.last_error:
        return f"{reason}: the rule files here did not load ({serving.last_error})"
    return (f"{reason}: this instance's rule files (POLICY_RULES_DIR) are not the published ones; deploy them here "
            "and reload")
