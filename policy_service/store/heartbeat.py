"""service_heartbeat: one row per host, rewritten by each readiness probe; service_write_probe: the new row
each probe writes (and deletes) so the probe needs new space as a logged decision does.

Rewriting an existing row can succeed where a new row fails (SQLite's WAL on a full disk, a database at its
page limit: the rewrite fits the page it already has), so a probe that only rewrote the heartbeat would call
ready a database that refuses every decision. Each probe therefore also inserts a row the size of a logged
decision (PROBE_BYTES of random bytes: nothing compresses them) and deletes it in the same committed
transaction: the insert needs pages a decision would need, and the table stays empty between probes.
"""

from __future__ import annotations

import os
from datetime import datetime

import peewee

from .database import StoredModel, stored_time

# About one logged decision (request, response with its trace: some kB) — two 4 KiB SQLite pages.
PROBE_BYTES = 8192


class Heartbeat(StoredModel):
    """The last time a readiness probe on `host` committed a write (naive UTC)."""

    host = peewee.CharField(max_length=255, primary_key=True)
    beat_at = peewee.DateTimeField()

    class Meta:
        table_name = "service_heartbeat"


class WriteProbe(StoredModel):
    """A row a readiness probe inserts and deletes in one transaction; empty between probes."""

    host = peewee.CharField(max_length=255)
    written_at = peewee.DateTimeField()
    payload = peewee.BlobField()

    class Meta:
        table_name = "service_write_probe"


def beat(host: str, at: datetime) -> None:
    """In one committed transaction: insert and delete a new row of PROBE_BYTES (new space, as a decision
    needs), and insert or update the host's heartbeat (an aware time, stored as UTC). Raises the database's
    error (a storage fault) when it cannot commit it."""
    with Heartbeat._meta.database.atomic():
        probe = WriteProbe.insert(host=host, written_at=stored_time(at), payload=os.urandom(PROBE_BYTES)).execute()
        WriteProbe.delete().where(WriteProbe.id == probe).execute()
        (Heartbeat.insert(host=host, beat_at=stored_time(at))
         .on_conflict(conflict_target=[Heartbeat.host], update={Heartbeat.beat_at: stored_time(at)})
         .execute())
