"""What must last: the database (peewee, SQLite or PostgreSQL), the decision log, stored histories.

May import `policy_service.core` (and `policy_service.contract`); never the web service, the review
toolkit or the command line. Importing this package registers every table (`models()`).
"""

from . import (  # noqa: F401 - importing a model module registers its table
    billing,
    business_state,
    counters,
    decision_log,
    fleet,
    heartbeat,
    histories,
    idempotency,
    log_compression,
    raw_webhooks,
)
from .database import STORAGE_FAULTS, close_all, database_proxy, init_app, models, prove_write
from .schema import SchemaBehind

__all__ = ["STORAGE_FAULTS", "SchemaBehind", "close_all", "database_proxy", "init_app", "models", "prove_write"]
