"""Stored histories: the messages Meta's webhooks reported, per business number and contact.

Inbound messages arrive whole. Outbound messages are learned only from their statuses, which
carry no template name, language or message type: an outbound message is recorded with what
the status says (status, sent and delivered times, conversation, pricing as Meta sent it, any
category), and its type is read from `pricing.category` only where the category says it
(core.vocabulary): a template of a modelled template category, free-form for `service` and
`business_agent` (a Meta Business Agent reply). A
category that does not say (referral_conversion, 2022's business_initiated/user_initiated) or
that the rules do not model (general_purpose_ai) gives type `unknown`,
and the replay states what it assumed. Under conversation-based pricing the category names the
conversation rather than the message, so a free-form message riding a marketing conversation
reads as a marketing template.

Messages the business sent from the WhatsApp Business app (coexistence echoes) are outbound messages of
the type the echo names.

The event types (Inbound, Status, Call, Echo, Link) are the webhook reader's (contract.meta_webhooks).

Groups API messages are stored under the group (contact = the group id, `group_id` set): they are
the group's history and never a participant's 1:1 history.

A contact is a phone number (wa_id) or a business-scoped user ID (BSUID). When a webhook names
both for one user, the pair is stored as a ContactLink, and a history asked for by either one
includes the messages stored under the other: one person, one history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import peewee

from ..contract.meta_webhooks import Call, Echo, Inbound, Link, Status
from ..core.identities import wa_id_forms
from ..core.messages import UNKNOWN_TEMPLATE, UNKNOWN_TYPE, Message, Template
from ..core.vocabulary import DELIVERED_STATUSES, NON_TEMPLATE_CATEGORIES, STATUS_RANK, TEMPLATE_CATEGORIES
from .database import StoredModel, loaded_time, stored_time

DELIVERED = tuple(sorted(DELIVERED_STATUSES))
CALL = "call"


class StoredMessage(StoredModel):
    """One message between a business phone number and a contact, keyed by Meta's wamid."""

    wamid = peewee.CharField(max_length=255, unique=True)
    phone_number_id = peewee.CharField(max_length=64)
    contact = peewee.CharField(max_length=160)  # a wa_id or a BSUID
    direction = peewee.CharField(max_length=8)
    at = peewee.DateTimeField()
    type = peewee.CharField(max_length=32)
    status = peewee.CharField(max_length=16, null=True)
    status_at = peewee.DateTimeField(null=True)
    delivered_at = peewee.DateTimeField(null=True)  # the first delivered/read/played status
    group_id = peewee.CharField(max_length=255, null=True)  # Groups API: contact is then the group
    errors = peewee.TextField(null=True)  # Meta's errors[] of a failed status or an unsupported message (JSON)
    # Sent from the WhatsApp Business app (coexistence echo, smb_message_echoes), not through the API.
    business_app = peewee.BooleanField(default=False)
    referral = peewee.TextField(null=True)
    conversation_id = peewee.CharField(max_length=255, null=True)
    conversation_origin = peewee.CharField(max_length=64, null=True)
    pricing = peewee.TextField(null=True)

    class Meta:
        table_name = "stored_message"
        # The last three serve store.history_reads: the last inbound message, the last of a type, and what was
        # delivered after a time, each found by a seek (migration 030).
        indexes = ((("phone_number_id", "contact", "at"), False),
                   (("phone_number_id", "contact", "direction", "at"), False),
                   (("phone_number_id", "contact", "type", "at"), False),
                   (("phone_number_id", "contact", "delivered_at"), False))


# The last entry point of a contact: only rows with a referral are indexed (a partial index, migration 030).
StoredMessage.add_index(StoredMessage.index(StoredMessage.phone_number_id, StoredMessage.contact, StoredMessage.at,
                                            name="stored_message_referral_at",
                                            where=StoredMessage.referral.is_null(False)))


class ContactLink(StoredModel):
    """A phone number (wa_id) and a BSUID Meta named together for one user of a business number."""

    phone_number_id = peewee.CharField(max_length=64)
    wa_id = peewee.CharField(max_length=64)
    user_id = peewee.CharField(max_length=160)

    class Meta:
        table_name = "contact_link"
        indexes = ((("phone_number_id", "wa_id", "user_id"), True), (("phone_number_id", "user_id"), False))


def store_inbound(message: Inbound) -> bool:
    """Store an inbound message once; True if it was new."""
    return _insert_once(**message_row(message))


def message_row(event: Inbound | Call | Echo) -> dict[str, Any]:
    """The stored_message row an inbound message, a call or an echo is stored as (every column, so rows of
    different kinds can be inserted together)."""
    row: dict[str, Any] = {"phone_number_id": event.phone_number_id, "contact": event.contact,
                           "at": stored_time(event.at), "referral": None, "group_id": None, "errors": None,
                           "status": None, "status_at": None, "business_app": False}
    if isinstance(event, Call):
        # Stored once per call id (its connect and terminate events share it). A business-initiated call is an
        # outbound `call`, which the history the rules read leaves out (is_history): it opens no window.
        return row | {"wamid": event.wacid, "direction": event.direction, "type": CALL}
    if isinstance(event, Echo):
        # Sent from the WhatsApp Business app: the history takes it as delivered and never charges it as an
        # API send; no status follows an echo.
        return row | {"wamid": event.wamid, "direction": "outbound", "type": event.type, "status": "sent",
                      "status_at": row["at"], "business_app": True}
    return row | {
        "wamid": event.wamid, "direction": "inbound", "type": event.type,
        "referral": json.dumps(event.referral, sort_keys=True) if event.referral else None,
        "group_id": event.group_id, "errors": json.dumps(event.errors, sort_keys=True) if event.errors else None,
    }


# Rows per INSERT: 12 columns x 400 stays far below SQLite's (32,766) and PostgreSQL's (65,535) parameter limits.
BULK_ROWS = 400


def store_messages(events: list[Inbound | Call | Echo]) -> int:
    """Store inbound messages, calls and echoes, each wamid once, in a few multi-row INSERTs (call inside a
    transaction); how many were new (the rest were stored before, or repeated in `events`)."""
    return insert_ignoring_known(StoredMessage, [message_row(event) for event in events])


def store_links(links: list[Link]) -> int:
    """Store wa_id-BSUID links once each, in multi-row INSERTs; how many were new."""
    return insert_ignoring_known(ContactLink, [
        {"phone_number_id": link.phone_number_id, "wa_id": link.wa_id, "user_id": link.user_id} for link in links])


def insert_ignoring_known(model: type[peewee.Model], rows: list[dict[str, Any]]) -> int:
    """INSERT the rows (every one with the same columns, all NOT NULL ones given), skipping those a unique key
    already holds; how many were inserted. One statement per BULK_ROWS rows, its SQL written once per size: peewee
    building a 400-row INSERT costs more than the database running it."""
    if not rows:
        return 0
    fields = [model._meta.fields[name] for name in rows[0]]
    database = model._meta.database
    inserted = 0
    for start in range(0, len(rows), BULK_ROWS):
        chunk = rows[start:start + BULK_ROWS]
        params = [field.db_value(row[field.name]) for row in chunk for field in fields]
        inserted += database.execute_sql(_insert_sql(model, tuple(f.column_name for f in fields), len(chunk)),
                                          params).rowcount
    return inserted


_INSERT_SQL: dict[tuple[str, tuple[str, ...], int, str], str] = {}


def _insert_sql(model: type[peewee.Model], columns: tuple[str, ...], count: int) -> str:
    # ON CONFLICT DO NOTHING (SQLite >= 3.24 and PostgreSQL) skips only unique-key conflicts: unlike INSERT OR
    # IGNORE, a row breaking NOT NULL still fails loudly instead of vanishing as "known".
    param = model._meta.database.param
    key = (model._meta.table_name, columns, count, param)
    if key not in _INSERT_SQL:
        row = "(" + ", ".join([param] * len(columns)) + ")"
        names = ", ".join(f'"{column}"' for column in columns)
        _INSERT_SQL[key] = (f'INSERT INTO "{model._meta.table_name}" ({names}) VALUES {", ".join([row] * count)} '
                            "ON CONFLICT DO NOTHING")
    return _INSERT_SQL[key]


def linked_contacts(phone_number_id: str, contact: str) -> list[str]:
    """The contact and every identity linked to it (wa_id <-> BSUID, following links; the other forms Meta's wa_id
    may write the same number in, core.identities.wa_id_forms), sorted."""
    found = set(wa_id_forms(contact))
    frontier = set(found)
    # A user has one phone number per BSUID and few BSUIDs per number; a few hops reach every link.
    while frontier:
        rows = ContactLink.select(ContactLink.wa_id, ContactLink.user_id).where(
            (ContactLink.phone_number_id == phone_number_id)
            & (ContactLink.wa_id.in_(sorted(frontier)) | ContactLink.user_id.in_(sorted(frontier))))
        reached = {value for row in rows for value in (row.wa_id, row.user_id)}
        frontier = reached - found
        found |= reached
    return sorted(found)


def store_status(update: Status) -> bool:
    """Create or update the outbound message a status describes; True if it was new."""
    database = StoredMessage._meta.database
    with database.atomic():
        # Insert first, then lock the row, so concurrent statuses of one wamid queue instead of
        # overwriting each other (SQLite already holds its one write lock after the insert).
        created = _insert_once(wamid=update.wamid, phone_number_id=update.phone_number_id, contact=update.contact,
                               direction="outbound", at=stored_time(update.at), type=UNKNOWN_TYPE,
                               group_id=update.group_id)
        query = StoredMessage.select().where(StoredMessage.wamid == update.wamid)
        row = (query.for_update() if database.for_update else query).get()
        _apply(row, update)
        row.save()
    return created


def stored_messages(phone_number_id: str, contact: str) -> list[StoredMessage]:
    """Every stored message between a business number and a contact (or an identity linked to it), oldest first."""
    contacts = linked_contacts(phone_number_id, contact)
    return list(
        StoredMessage.select()
        .where((StoredMessage.phone_number_id == phone_number_id) & StoredMessage.contact.in_(contacts))
        .order_by(StoredMessage.at, StoredMessage.id)
    )


def history_rows(phone_number_id: str, contact: str) -> list[StoredMessage]:
    """The stored messages the rules read as history (business-initiated calls left out), oldest first."""
    return [row for row in stored_messages(phone_number_id, contact) if is_history(row)]


def is_history(row: StoredMessage) -> bool:
    """False for a business-initiated call: it opens no window and is no message send."""
    return not (row.direction == "outbound" and row.type == CALL)


def stored_history(phone_number_id: str, contact: str, until: datetime) -> tuple[Message, ...]:
    """The stored messages of a history up to a time, as the policy core reads them."""
    return tuple(as_message(row) for row in history_rows(phone_number_id, contact) if loaded_time(row.at) <= until)


def history_json(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages in the request's `history` shape, so a logged request replays without the store."""
    items = []
    for message in messages:
        item: dict[str, Any] = {"id": message.id, "direction": message.direction, "at": message.at.isoformat(),
                                "type": message.type}
        if message.direction == "inbound":
            if message.referral:
                item["referral"] = message.referral
        else:
            item["status"] = message.status
            if message.business_app:
                item["business_app"] = True
            if message.delivered_at is not None:
                item["delivered_at"] = message.delivered_at.isoformat()
            if message.template is not None:
                t = message.template
                item["template"] = {"name": t.name, "language": t.language, "category": t.category,
                                    "status": t.status}
        items.append(item)
    return items


def delivered_with_pricing(phone_number_id: str | None = None, contact: str | None = None) -> list[StoredMessage]:
    """Delivered (or read, or played) outbound messages that carry Meta's pricing, oldest first."""
    rows = StoredMessage.select().where(
        (StoredMessage.direction == "outbound")
        & (StoredMessage.delivered_at.is_null(False) | StoredMessage.status.in_(DELIVERED))
        & StoredMessage.pricing.is_null(False)
    )
    if phone_number_id is not None:
        rows = rows.where(StoredMessage.phone_number_id == phone_number_id)
    if contact is not None:
        contacts = linked_contacts(phone_number_id, contact) if phone_number_id is not None else \
            list(wa_id_forms(contact))
        rows = rows.where(StoredMessage.contact.in_(contacts))
    return list(rows.order_by(StoredMessage.at, StoredMessage.id))


def as_message(row: StoredMessage) -> Message:
    """A stored message as the policy core reads history."""
    return message_of(row.wamid, row.direction, row.at, row.type, row.status, row.delivered_at, row.business_app,
                      row.referral, row.pricing, row.conversation_origin)


# The stored_message columns message_of reads, in its parameter order (for reads that select tuples).
MESSAGE_COLUMNS = ("wamid", "direction", "at", "type", "status", "delivered_at", "business_app", "referral",
                   "pricing", "conversation_origin")


def message_of(wamid: str, direction: str, at: datetime, message_type: str, status: str | None,
               delivered_at: datetime | None, business_app: bool | None, referral: str | None, pricing: str | None,
               conversation_origin: str | None) -> Message:
    """A stored message's columns (MESSAGE_COLUMNS, times naive UTC as stored) as the policy core reads history."""
    at = loaded_time(at)
    if direction == "inbound":
        return Message("inbound", at, message_type, referral=json.loads(referral) if referral else None, id=wamid)
    meta_category = (json.loads(pricing).get("category") if pricing else None) or conversation_origin
    category = TEMPLATE_CATEGORIES.get(meta_category or "")
    template = Template(UNKNOWN_TEMPLATE, "und", category, "APPROVED") if category else None
    if template is not None:
        kind = "template"
    elif meta_category in NON_TEMPLATE_CATEGORIES:
        kind = message_type if message_type != UNKNOWN_TYPE else "text"
    else:
        kind = message_type  # what the webhook said, or unknown: the replay states what it assumes
    return Message("outbound", at, kind, template, status or "sent", id=wamid,
                   delivered_at=loaded_time(delivered_at) if delivered_at else None, business_app=bool(business_app))


def outbound_category(row: StoredMessage) -> str | None:
    """The category Meta gave an outbound message: its pricing, else its conversation origin."""
    return pricing(row).get("category") or row.conversation_origin


def failures(row: StoredMessage) -> tuple[dict[str, Any], ...]:
    """Meta's errors of a `failed` status of an outbound message that was nonetheless delivered (read,
    played): {"code", "title"} each; empty when it was not both."""
    if row.direction != "outbound" or not row.errors or not (row.delivered_at or row.status in DELIVERED_STATUSES):
        return ()
    return tuple({"code": e.get("code"), "title": e.get("title") or e.get("message")}
                 for e in json.loads(row.errors) if isinstance(e, dict))


def pricing(row: StoredMessage) -> dict[str, Any]:
    """Meta's pricing object of a stored outbound message (empty when none arrived)."""
    return json.loads(row.pricing) if row.pricing else {}


def _insert_once(**values: Any) -> bool:
    return StoredMessage.insert(**values).on_conflict_ignore().as_rowcount().execute() == 1


def _apply(row: StoredMessage, update: Status) -> None:
    moment = stored_time(update.at)
    # The send happened no later than its earliest status.
    row.at = min(row.at, moment)
    if STATUS_RANK.get(update.status, 0) >= STATUS_RANK.get(row.status or "", 0):
        row.status, row.status_at = update.status, moment
    if update.status in DELIVERED_STATUSES:
        # Meta omits `delivered` when a message is read at once: the earliest delivering status dates delivery.
        row.delivered_at = min(row.delivered_at, moment) if row.delivered_at else moment
    row.conversation_id = update.conversation_id or row.conversation_id
    row.conversation_origin = update.conversation_origin or row.conversation_origin
    if update.pricing:
        row.pricing = json.dumps(update.pricing, sort_keys=True)
    if update.errors:
        row.errors = json.dumps(update.errors, sort_keys=True)
