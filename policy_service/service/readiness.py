"""Whether the service can decide: the database that holds the decision log answers."""

from __future__ import annotations

import logging

import peewee

from .. import store

log = logging.getLogger(__name__)


def database_problem() -> str | None:
    """None when the database answers a query; else a short reason without host names or paths (those go
    to the log only: readiness is answered without an API key)."""
    try:
        store.database_proxy.execute_sql("SELECT 1")
    except peewee.PeeweeException as error:
        log.error("readiness: decision log unreachable: %s", error)
        return f"unreachable ({type(error).__name__})"
    return None
