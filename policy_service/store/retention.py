"""Retention: the tables that grow with traffic, and deleting their rows older than a time, in batches.

Every decision adds a `decision_log` row; every message Meta reports adds a `stored_message` row and every
outbound one a `message_billing` row (about 177 GB a month at 100 M messages); every request sent with an
Idempotency-Key an `idempotency_key` row; every webhook Meta sends a `raw_webhook` row (its payload as received;
only processed ones are pruned). The other tables hold state
(a number's WABA, a template's status events, a user's marketing preference, linked ids) that a decision
still reads however old it is, and grow with the business, not with traffic: they are never pruned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import peewee

from . import business_state, raw_webhooks
from .business_state import MessageBilling
from .database import stored_time
from .decision_log import DecisionRecord
from .histories import StoredMessage
from .idempotency import IdempotencyRecord
from .raw_webhooks import RawWebhook


@dataclass(frozen=True)
class Growing:
    """A table that grows with traffic: its model and the time column its age is read from."""

    name: str
    model: type[peewee.Model]
    time: peewee.Field
    # Read by decisions (histories, counts over a period): never pruned younger than the rules look back.
    read_by_rules: bool
    what: str
    # Only rows matching this may go (None: any row older than the cut).
    only: peewee.Expression | None = None
    # Deletes a batch (its ids) in the batch's transaction and returns how many went, where deleting must do
    # more: message_billing's rows leave the counters maintained over them (store.counters).
    delete: Callable[[list[int]], int] | None = None


GROWING = (
    Growing("decisions", DecisionRecord, DecisionRecord.logged_at, False, "logged decisions (decision_log)"),
    Growing("messages", StoredMessage, StoredMessage.at, True, "stored messages (stored_message)"),
    Growing("billing", MessageBilling, MessageBilling.at, True, "priced outbound messages (message_billing)",
            delete=business_state.delete_billing),
    # A key older than the cut is answered as a new request again: keep it longer than clients retry.
    Growing("idempotency", IdempotencyRecord, IdempotencyRecord.created_at, False,
            "remembered Idempotency-Key answers (idempotency_key)"),
    # Only processed payloads: a pending or failed one is still to be read (policy-service webhooks process).
    Growing("webhooks", RawWebhook, RawWebhook.received_at, False, "processed raw webhook payloads (raw_webhook)",
            RawWebhook.status == raw_webhooks.DONE),
)
BY_NAME = {table.name: table for table in GROWING}


def prune(table: Growing, before: datetime, *, dry_run: bool = False, batch_size: int = 5000) -> int:
    """Delete the table's rows older than an aware time; how many were (or, dry, would be) deleted.

    Deletes in batches of the oldest ids, each its own transaction, so a large backlog never holds one long
    lock on a table the service keeps writing to.
    """
    model, older = table.model, table.time < stored_time(before)
    if table.only is not None:
        older &= table.only
    if dry_run:
        return model.select().where(older).count()
    deleted = 0
    while True:
        with model._meta.database.atomic():
            batch = model.select(model.id).where(older).order_by(model.id).limit(batch_size)
            if table.delete is None:
                count = model.delete().where(model.id.in_(batch)).execute()
            else:
                count = table.delete([row.id for row in batch])
        deleted += count
        if count < batch_size:
            return deleted
