"""The decision log: every decision, written before its response returns (peewee; SQLite by default)."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from typing import Any

import peewee
from flask import Flask
from playhouse.db_url import connect

from .decision import Decision

database_proxy = peewee.DatabaseProxy()
_PHONE = re.compile(r"\+\d{7,15}")


class DecisionRecord(peewee.Model):
    """One logged decision, append-only."""

    decision_id = peewee.CharField(max_length=64, unique=True)
    logged_at = peewee.DateTimeField(index=True)
    send_at = peewee.CharField(max_length=40)
    decision = peewee.CharField(max_length=8, index=True)
    status = peewee.CharField(max_length=16)
    required_message_type = peewee.CharField(max_length=8)
    policy_version = peewee.CharField(max_length=16, null=True)
    rulebook_version = peewee.CharField(max_length=40, index=True)
    determining_rules = peewee.TextField()
    request = peewee.TextField()
    response = peewee.TextField()
    masked = peewee.BooleanField(default=True)

    class Meta:
        database = database_proxy
        table_name = "decision_log"


def init_app(app: Flask) -> None:
    """Open the configured database (SQLite in the instance folder by default) and create tables."""
    url = app.config.get("DATABASE_URL")
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = "sqlite:///" + os.path.join(app.instance_path, "policy-service.sqlite3")
    options = {"pragmas": {"journal_mode": "wal", "busy_timeout": 10_000}} if url.startswith("sqlite") else {}
    database = connect(url, **options)
    database_proxy.initialize(database)
    with database.connection_context():
        database.create_tables([DecisionRecord])

    @app.teardown_appcontext
    def close(_: Any) -> None:
        if not database.is_closed():
            database.close()


def record(decision: Decision, request: dict[str, Any], response: dict[str, Any], *, mask: bool) -> None:
    """Write one decision; raises if it cannot be stored, so no unlogged decision is ever returned."""
    if mask:
        request, response = _mask(request), _mask(response)
    facts = decision.facts
    with database_proxy.atomic():
        DecisionRecord.create(
            decision_id=decision.decision_id,
            logged_at=datetime.now(UTC),
            send_at=facts.at.isoformat() if facts else "",
            decision=decision.decision,
            status=decision.status,
            required_message_type=decision.required_message_type,
            policy_version=decision.policy_version,
            rulebook_version=decision.rulebook_version,
            determining_rules=",".join(decision.determining_rules),
            request=json.dumps(request, sort_keys=True),
            response=json.dumps(response, sort_keys=True),
            masked=mask,
        )


def get(decision_id: str) -> dict[str, Any] | None:
    """The logged response for a decision id, with when and how it was logged; None if unknown."""
    row = DecisionRecord.get_or_none(DecisionRecord.decision_id == decision_id)
    if row is None:
        return None
    return {
        "decision_id": row.decision_id,
        "logged_at": row.logged_at.isoformat() if isinstance(row.logged_at, datetime) else str(row.logged_at),
        "masked": row.masked,
        "request": json.loads(row.request),
        "response": json.loads(row.response),
    }


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    if isinstance(value, str):
        return _PHONE.sub(lambda m: "+" + "*" * (len(m.group()) - 5) + m.group()[-4:], value)
    return value
