"""Whether the service can decide: the database that holds the decision log takes a write."""

from __future__ import annotations

import logging

import peewee

from .. import store

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
