"""service_heartbeat: one row per host, rewritten by each readiness probe to prove the database takes writes."""

from __future__ import annotations

from datetime import datetime

import peewee

from .database import StoredModel, stored_time


class Heartbeat(StoredModel):
    """The last time a readiness probe on `host` committed a write (naive UTC)."""

    host = peewee.CharField(max_length=255, primary_key=True)
    beat_at = peewee.DateTimeField()

    class Meta:
        table_name = "service_heartbeat"


def beat(host: str, at: datetime) -> None:
    """Insert or update the host's row in its own committed transaction (an aware time, stored as UTC)."""
    with Heartbeat._meta.database.atomic():
        (Heartbeat.insert(host=host, beat_at=stored_time(at))
         .on_conflict(conflict_target=[Heartbeat.host], update={Heartbeat.beat_at: stored_time(at)})
         .execute())
