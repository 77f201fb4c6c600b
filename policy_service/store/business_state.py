"""The business's own WhatsApp state, as Meta's webhooks report it: which WABA a phone number belongs to,
the template registry, users' marketing preferences, and each outbound message's billing.

Every stored fact keeps the event that carried it and its time, so a decision can say where a value
came from ("message_template_status_update webhook at 2026-10-03T09:00:00+00:00").

- Templates belong to a WhatsApp Business Account (WABA); a phone number's WABA is the `entry.id` of
  its webhooks (`BusinessNumber`). `TemplateEvent` keeps every status, category and quality change
  (webhooks, and imports of `GET /<WABA_ID>/message_templates`), each with the time it takes effect:
  an impending category change takes effect at its `category_update_timestamp`, so the category in
  force at a send's time is known.
- `MarketingPreference` keeps each user's stop/resume of marketing messages (the `user_preferences`
  webhook, or a status failing with error 131050).
- `MessageBilling` keeps, per outbound wamid, Meta's pricing, the decision it was sent under
  (`biz_opaque_callback_data`) and its errors; counts over it read counters maintained with the rows
  (store.counters) and indexed queries over at most a few minutes of rows (`count_messages`).

Times are stored as naive UTC (database.stored_time). The webhook reader (contract.meta_webhooks) defines
what is recorded here (TemplateChange, Meta's status and category names); they are re-exported for callers.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import peewee

from ..contract.meta_webhooks import (  # noqa: F401 - names callers read here too
    BAN_EVENT,
    BAN_STATES,
    CAPABILITY,
    CATEGORY_NAMES,
    IMPORT_SOURCE,
    STATUS_EVENTS,
    UNKNOWN_VALUES,
    GroupEvent,
    TemplateChange,
    ban_date,
    meta_time,
)
from ..contract.schemas import EARLIEST, LATEST
from ..core.identities import priced_address, recipient, wa_id_forms, wa_id_key
from ..core.vocabulary import every_spelling
from . import counters
from .database import StoredModel, loaded_time, stored_time, write_transaction
from .histories import STATUS_RANK, StoredMessage


class BusinessNumber(StoredModel):
    """A business phone number and the WhatsApp Business Account its webhooks name (`entry.id`)."""

    phone_number_id = peewee.CharField(max_length=64, unique=True)
    waba_id = peewee.CharField(max_length=64, index=True)
    learned_at = peewee.DateTimeField()

    class Meta:
        table_name = "business_number"


class TemplateEvent(StoredModel):
    """One change to a template of a WABA: status, category or quality, with when it takes effect."""

    waba_id = peewee.CharField(max_length=64)
    name = peewee.CharField(max_length=512)
    language = peewee.CharField(max_length=16)
    template_id = peewee.CharField(max_length=64, null=True)
    source = peewee.CharField(max_length=64)  # the webhook field, or "message_templates import"
    event = peewee.CharField(max_length=32, null=True)  # Meta's event (PAUSED...) or change kind
    status = peewee.CharField(max_length=24, null=True)  # the status in force from effective_at, if set
    category = peewee.CharField(max_length=24, null=True)  # the category in force from effective_at, if set
    previous_category = peewee.CharField(max_length=24, null=True)
    quality = peewee.CharField(max_length=24, null=True)
    reason = peewee.TextField(null=True)
    effective_at = peewee.DateTimeField()
    received_at = peewee.DateTimeField()
    payload = peewee.TextField(default="{}")

    class Meta:
        table_name = "template_event"
        indexes = ((("waba_id", "name", "language", "effective_at"), False),)


class MarketingPreference(StoredModel):
    """A user stopping or resuming marketing messages from a business phone number."""

    phone_number_id = peewee.CharField(max_length=64)
    contact = peewee.CharField(max_length=64)
    value = peewee.CharField(max_length=16)  # stop | resume
    at = peewee.DateTimeField()
    source = peewee.CharField(max_length=128)

    class Meta:
        table_name = "marketing_preference"
        indexes = ((("phone_number_id", "contact", "at"), False),)


class MessageBilling(StoredModel):
    """One outbound message as its statuses report it: Meta's pricing, its decision, its errors.

    Written only by record_billing (and deleted by store.retention), which keep the counters over these rows
    (store.counters) in the same transaction; rows loaded by other means (SQL) need rebuild_counters().
    """

    wamid = peewee.CharField(max_length=255, unique=True)
    phone_number_id = peewee.CharField(max_length=64)
    contact = peewee.CharField(max_length=64)
    at = peewee.DateTimeField()  # the earliest status: the send happened no later
    status = peewee.CharField(max_length=16)
    category = peewee.CharField(max_length=32, null=True)  # pricing.category as Meta spells it
    pricing = peewee.TextField(null=True)
    decision_id = peewee.CharField(max_length=255, null=True, index=True)  # biz_opaque_callback_data
    errors = peewee.TextField(null=True)
    market = peewee.CharField(max_length=2, default="ZZ")  # the recipient's region (ISO 3166), Meta's market

    class Meta:
        table_name = "message_billing"
        indexes = (
            (("phone_number_id", "category", "at"), False),
            (("phone_number_id", "contact", "category", "at"), False),
            (("phone_number_id", "market", "category", "at"), False),
        )


@dataclass(frozen=True)
class Known:
    """A stored value and where it came from (the source names the event and its time)."""

    value: Any
    source: str


@dataclass(frozen=True)
class TemplateState:
    """A template's category and status in force at a time, each with its source (None if unknown)."""

    category: Known | None
    status: Known | None


def learn_number(phone_number_id: str, waba_id: str, at: datetime) -> None:
    """Remember (or update) which WABA a phone number belongs to."""
    BusinessNumber.insert(phone_number_id=phone_number_id, waba_id=waba_id, learned_at=stored_time(at)) \
        .on_conflict(conflict_target=[BusinessNumber.phone_number_id],
                     update={BusinessNumber.waba_id: waba_id, BusinessNumber.learned_at: stored_time(at)}).execute()


def waba_of(phone_number_id: str) -> str | None:
    """The WABA id of a phone number, as its webhooks named it; None if never seen."""
    row = BusinessNumber.get_or_none(BusinessNumber.phone_number_id == phone_number_id)
    return None if row is None else row.waba_id


def record_template(change: TemplateChange, received_at: datetime | None = None) -> bool:
    """Store one template change (a webhook event or an imported template) once: the same change again (a
    webhook delivered twice) adds nothing. True if it was new."""
    effective_at = stored_time(change.effective_at)
    known = TemplateEvent.select(TemplateEvent.id).where(
        (TemplateEvent.waba_id == change.waba_id) & (TemplateEvent.name == change.name)
        & (TemplateEvent.language == change.language) & (TemplateEvent.effective_at == effective_at)
        & (TemplateEvent.source == change.source) & _same(TemplateEvent.event, change.event)
        & _same(TemplateEvent.status, change.status) & _same(TemplateEvent.category, change.category)
        & _same(TemplateEvent.quality, change.quality))
    if known.exists():
        return False
    TemplateEvent.create(
        waba_id=change.waba_id, name=change.name, language=change.language, template_id=change.template_id,
        source=change.source, event=change.event, status=change.status, category=change.category,
        previous_category=change.previous_category, quality=change.quality, reason=change.reason,
        effective_at=effective_at,
        received_at=stored_time(received_at or datetime.now(UTC)),
        payload=json.dumps(change.payload or {}, sort_keys=True, default=str),
    )
    return True


def _same(column: peewee.Field, value: Any) -> peewee.Expression:
    return column.is_null() if value is None else column == value


def import_templates(changes: list[TemplateChange]) -> int:
    """Store imported templates in one transaction; how many."""
    # Reads each template's last event before writing: the write lock is taken first (write_transaction).
    with write_transaction(TemplateEvent._meta.database):
        for change in changes:
            record_template(change, change.effective_at)
    return len(changes)


def wabas() -> list[str]:
    """Every WABA id the template registry has events for, sorted."""
    return [row.waba_id for row in TemplateEvent.select(TemplateEvent.waba_id).distinct()
            .order_by(TemplateEvent.waba_id)]


def templates(waba_id: str, at: datetime) -> list[dict[str, Any]]:
    """Every template the registry knows for a WABA, with its category and status in force at `at` and their sources."""
    keys = (TemplateEvent.select(TemplateEvent.name, TemplateEvent.language).where(TemplateEvent.waba_id == waba_id)
            .distinct().order_by(TemplateEvent.name, TemplateEvent.language))
    found = []
    for key in keys:
        known = template_state(waba_id, key.name, key.language, at)
        found.append({"name": key.name, "language": key.language,
                      **{part: None if getattr(known, part) is None else getattr(known, part).value
                         for part in ("category", "status")},
                      "sources": {part: getattr(known, part).source for part in ("category", "status")
                                  if getattr(known, part) is not None}})
    return found


def template_state(waba_id: str, name: str, language: str, at: datetime) -> TemplateState | None:
    """The template's category and status in force at a time; None when the registry has never heard of it.

    The latest event taking effect at or before `at` decides each part. Before the first category
    change, that change's `previous_category` was in force. An imported template describes the state
    when it was imported, with nothing known before: when nothing else tells, the earliest import
    stands in (and its source says it was imported, and when).
    """
    key = (TemplateEvent.waba_id == waba_id) & (TemplateEvent.name == name) & (TemplateEvent.language == language)
    latest = TemplateEvent.select().where(key).order_by(TemplateEvent.effective_at.desc(), TemplateEvent.id.desc())
    if not latest.exists():
        return None
    until = latest.where(TemplateEvent.effective_at <= stored_time(at))
    category = _known(until.where(TemplateEvent.category.is_null(False)).first(), "category")
    status = _known(until.where(TemplateEvent.status.is_null(False)).first(), "status")
    if category is None:
        change = (TemplateEvent.select().where(key & TemplateEvent.previous_category.is_null(False)
                                               & (TemplateEvent.effective_at > stored_time(at)))
                  .order_by(TemplateEvent.effective_at, TemplateEvent.id).first())
        if change is not None:
            source = "previous_category of the " + describe(change.source, loaded_time(change.effective_at))
            if change.previous_category in UNKNOWN_VALUES:
                source += f" ({change.reason})"
            category = Known(change.previous_category, source)
    if category is None or status is None:
        imported = TemplateEvent.select().where(key & (TemplateEvent.source == IMPORT_SOURCE)) \
            .order_by(TemplateEvent.effective_at, TemplateEvent.id).first()
        category, status = category or _known(imported, "category"), status or _known(imported, "status")
    return TemplateState(category, status)


def template_history(waba_id: str, name: str | None = None, language: str | None = None) -> list[dict[str, Any]]:
    """Every stored event of a WABA's templates (or one template), oldest first, as JSON."""
    rows = TemplateEvent.select().where(TemplateEvent.waba_id == waba_id)
    if name is not None:
        rows = rows.where(TemplateEvent.name == name)
    if language is not None:
        rows = rows.where(TemplateEvent.language == language)
    return [
        {"waba_id": r.waba_id, "name": r.name, "language": r.language, "template_id": r.template_id,
         "source": r.source, "event": r.event, "status": r.status, "category": r.category,
         "previous_category": r.previous_category, "quality": r.quality, "reason": r.reason,
         "effective_at": loaded_time(r.effective_at).isoformat(), "received_at": loaded_time(r.received_at).isoformat()}
        for r in rows.order_by(TemplateEvent.effective_at, TemplateEvent.id)
    ]



def describe(source: str, at: datetime) -> str:
    """How a trace names a stored event: its source and time."""
    if source == IMPORT_SOURCE:
        return f"GET /<WABA_ID>/message_templates imported at {at.isoformat()}"
    if source.startswith("status error"):
        return f"{source} at {at.isoformat()}"
    return f"{source} webhook at {at.isoformat()}"


def _known(row: TemplateEvent | None, part: str) -> Known | None:
    if row is None or getattr(row, part) is None:
        return None
    source = describe(row.source, loaded_time(row.effective_at))
    if getattr(row, part) in UNKNOWN_VALUES:  # say which value of Meta's the rules do not model (the event's reason)
        source += f" ({row.reason})"
    return Known(getattr(row, part), source)


def record_preference(phone_number_id: str, contact: str, value: str, at: datetime, source: str) -> bool:
    """Store a user's stop or resume of marketing messages once (the same one again adds nothing); True if new."""
    row = dict(phone_number_id=phone_number_id, contact=contact, value=value, at=stored_time(at), source=source)
    if MarketingPreference.select(MarketingPreference.id).where(
            *(getattr(MarketingPreference, name) == part for name, part in row.items())).exists():
        return False
    MarketingPreference.create(**row)
    return True


def marketing_stopped(phone_number_id: str, contact: str, at: datetime) -> Known | None:
    """Whether the user had stopped marketing at a time (True/False), from the latest stored preference."""
    row = (MarketingPreference.select()
           .where((MarketingPreference.phone_number_id == phone_number_id)
                  & MarketingPreference.contact.in_(wa_id_forms(contact))
                  & (MarketingPreference.at <= stored_time(at)))
           .order_by(MarketingPreference.at.desc(), MarketingPreference.id.desc()).first())
    if row is None:
        return None
    return Known(row.value == "stop", f"{row.source} at {loaded_time(row.at).isoformat()} ({row.value})")


@dataclass(frozen=True)
class Billing:
    """One status of an outbound message, with what this module keeps of it."""

    wamid: str
    phone_number_id: str
    contact: str
    at: datetime
    status: str
    pricing: dict[str, Any] | None = None
    decision_id: str | None = None
    errors: tuple[dict[str, Any], ...] = ()


def record_billing(update: Billing) -> None:
    """Create or update the billing row of a wamid from one of its statuses (any order, repeated), and the
    counters over the rows (store.counters) in the same transaction."""
    database = MessageBilling._meta.database
    with database.atomic():
        MessageBilling.insert(wamid=update.wamid, phone_number_id=update.phone_number_id, contact=update.contact,
                              at=stored_time(update.at), status=update.status,
                              market=recipient(priced_address(update.contact))[0]).on_conflict_ignore().execute()
        query = MessageBilling.select().where(MessageBilling.wamid == update.wamid)
        row = (query.for_update() if database.for_update else query).get()
        before = _state(row)
        row.at = min(row.at, stored_time(update.at))
        # A later, stronger status wins, as in the stored history.
        if STATUS_RANK.get(update.status, 0) >= STATUS_RANK.get(row.status, 0):
            row.status = update.status
        if update.pricing:
            row.pricing = json.dumps(update.pricing, sort_keys=True)
            row.category = update.pricing.get("category") or row.category
        row.decision_id = update.decision_id or row.decision_id
        if update.errors:
            known = json.loads(row.errors) if row.errors else []
            row.errors = json.dumps(known + [e for e in update.errors if e not in known], sort_keys=True)
        row.save()
        counters.follow([(before, _state(row))], _latest_reach)


def refused_for_marketing_limit(phone_number_id: str, contact: str, since: datetime, until: datetime) -> Known | None:
    """The latest status in [since, until) of a message to the contact that failed with 131049 (per-user
    marketing limit), as a Known(True, source); None when there is none."""
    row = (MessageBilling.select()
           .where((MessageBilling.phone_number_id == phone_number_id)
                  & MessageBilling.contact.in_(wa_id_forms(contact))
                  & (MessageBilling.at >= stored_time(since)) & (MessageBilling.at < stored_time(until))
                  & MessageBilling.errors.contains('"code": 131049'))
           .order_by(MessageBilling.at.desc()).first())
    if row is None:
        return None
    return Known(True, f"status error 131049 on {row.wamid} at {loaded_time(row.at).isoformat()}")


def count_messages(*, since: datetime, until: datetime, categories: tuple[str, ...],
                   phone_number_id: str | None = None, phone_number_ids: tuple[str, ...] | None = None,
                   contact: str | None = None, market: str | None = None, distinct_contacts: bool = False) -> int:
    """How many outbound messages Meta priced in the given categories were sent in [since, until).

    Scope by one phone number, several (e.g. a WABA's or a portfolio's numbers), one contact, and/or
    one market (the recipient's ISO 3166 region, as volume tiers are counted per market);
    `distinct_contacts` counts users reached instead of messages. Categories are Meta's pricing
    categories (service, utility, marketing, marketing_lite, authentication, ...). Failed messages
    are not counted. Without a contact or distinct_contacts, the span's whole buckets (a minute to a day) are
    read from the maintained counters (store.counters: at most ~110 bucket rows per number, category and
    market for a month) and only the partial stretches at its ends (under a minute each) row by row; a
    contact's count reads that contact's rows through the (phone_number_id, contact, category, at) index.
    """
    categories = every_spelling(categories)  # a row keeps the spelling Meta gave (authentication_international)
    numbers = phone_number_ids
    if phone_number_id is not None:
        numbers = tuple(n for n in numbers or (phone_number_id,) if n == phone_number_id)
    if contact is not None or distinct_contacts:
        return _count_rows(since=stored_time(since), until=stored_time(until), categories=categories,
                           phone_number_ids=numbers, contact=contact, market=market,
                           distinct_contacts=distinct_contacts)
    parts = counters.split(stored_time(since), stored_time(until))
    return sum(_count_rows(since=first, until=end, categories=categories, phone_number_ids=numbers, market=market)
               for first, end in parts.rows) + \
        counters.total("messages", parts.buckets, phone_number_ids=numbers, categories=categories,
                       markets=() if market is None else (market,))


def _count_rows(*, since: datetime, until: datetime, categories: tuple[str, ...],
                phone_number_ids: tuple[str, ...] | None, contact: str | None = None, market: str | None = None,
                distinct_contacts: bool = False) -> int:
    """count_messages read row by row over [since, until) (naive UTC), served by the (phone_number_id,
    [contact,] category, at) indexes."""
    rows = MessageBilling.select().where(
        MessageBilling.category.in_(categories) & (MessageBilling.at >= since)
        & (MessageBilling.at < until) & (MessageBilling.status != counters.FAILED))
    if phone_number_ids is not None:
        rows = rows.where(MessageBilling.phone_number_id.in_(phone_number_ids))
    if contact is not None:
        rows = rows.where(MessageBilling.contact.in_(wa_id_forms(contact)))  # Meta's wa_id forms of one number
    if market is not None:
        rows = rows.where(MessageBilling.market == market)
    if distinct_contacts:
        # A user whose rows carry both of Meta's wa_id forms of their number is one user.
        user = wa_id_key_sql(MessageBilling.contact)
        return rows.select(peewee.fn.COUNT(peewee.NodeList((peewee.SQL("DISTINCT"), user)))).scalar() or 0
    return rows.count()


# The wa_id forms of core.identities (wa_id_forms, wa_id_key) in SQL, each a sequence of one-character classes:
# SQLite matches them with GLOB, PostgreSQL with an anchored regular expression.
_DIGIT = "[0-9]"
_MEXICO_WA_ID_SQL = ("5", "2", "1", *[_DIGIT] * 10)  # 521 + ten digits
_MEXICO_SQL = ("5", "2", *[_DIGIT] * 10)  # 52 + ten digits
_BRAZIL_NINTH_SQL = ("5", "5", "[1-9]", _DIGIT, "9", "[6-9]", *[_DIGIT] * 7)  # 55, area code, 9, a mobile's eight
_BRAZIL_EIGHT_SQL = ("5", "5", "[1-9]", _DIGIT, "[6-9]", *[_DIGIT] * 7)


def _is_form(column: peewee.Field, form: tuple[str, ...]) -> peewee.Node:
    """SQL: the text in `column` is exactly `form` (one character per class), on the database of the column's table
    (SQLite or PostgreSQL)."""
    database = column.model._meta.database
    if isinstance(getattr(database, "obj", database), peewee.PostgresqlDatabase):
        return peewee.NodeList((column, peewee.SQL("~"), "^" + "".join(form) + "$"))
    return peewee.NodeList((column, peewee.SQL("GLOB"), "".join(form)))


def _joined(*parts: Any) -> peewee.Node:
    """SQL: the texts (literals or nodes) concatenated."""
    node = peewee.Value(parts[0]) if isinstance(parts[0], str) else parts[0]
    for part in parts[1:]:
        node = node.concat(part)
    return node


def wa_id_key_sql(column: peewee.Field) -> peewee.Node:
    """SQL for core.identities.wa_id_key of the contact in `column`: Mexico's 521 + ten digits as 52 + ten, Brazil's
    eight-digit mobile with its ninth digit, any other contact as it is (tests/store/test_business_state.py proves it
    equals the Python key)."""
    return peewee.Case(None, [(_is_form(column, _MEXICO_WA_ID_SQL), _without_mexico_1(column)),
                              (_is_form(column, _BRAZIL_EIGHT_SQL), _with_ninth(column))], column)


def other_wa_id_form_sql(column: peewee.Field) -> peewee.Node:
    """SQL for the other wa_id form of the contact in `column` (core.identities.wa_id_forms' second), or the contact
    itself when it has none."""
    return peewee.Case(None, [
        (_is_form(column, _MEXICO_WA_ID_SQL), _without_mexico_1(column)),
        (_is_form(column, _MEXICO_SQL), _joined("521", peewee.fn.substr(column, 3))),
        (_is_form(column, _BRAZIL_NINTH_SQL), _joined(peewee.fn.substr(column, 1, 4), peewee.fn.substr(column, 6))),
        (_is_form(column, _BRAZIL_EIGHT_SQL), _with_ninth(column)),
    ], column)


def _without_mexico_1(column: peewee.Node) -> peewee.Node:
    return _joined("52", peewee.fn.substr(column, 4))


def _with_ninth(column: peewee.Node) -> peewee.Node:
    return _joined(peewee.fn.substr(column, 1, 4), "9", peewee.fn.substr(column, 5))


def count_users_reached_outside_window(*, since: datetime, until: datetime, categories: tuple[str, ...],
                                       phone_number_ids: tuple[str, ...], window: timedelta,
                                       ignored_types: frozenset[str] = frozenset(),
                                       counted_from: Mapping[str, datetime] | None = None) -> int:
    """How many distinct users the numbers reached, in [since, until), with a message Meta priced in the
    given categories while no customer service window was open: Meta's messaging limit counts "unique
    WhatsApp user phone numbers your business can deliver messages to, outside of a customer service window,
    within a moving 24-hour period". A window is open for `window` after the user's stored inbound message
    (types in `ignored_types` open none; a type in `counted_from` opens one only from that aware instant on: the
    rules' window_ignored_inbound_types and window_inbound_types_counted_from, core.window) to the same number.
    Failed messages are not counted.

    A user is their number under either of Meta's wa_id forms (core.identities.wa_id_forms: Mexico's 521/52,
    Brazil's ninth digit): reached under both, they count once, and an inbound message under one form opens the
    window for messages sent under the other.

    Read over users, not messages (store.counters.ReachedUser): a user with a message not failed in the span
    (their latest one is in it, or, when it is later, an index probe finds one) who sent that number no inbound
    message from `since` - `window` to `until` was reached outside any window (one SQL count). Only users who
    did write in that stretch (a window may cover every message sent to them) are checked message by message,
    over their own rows: the cost follows the users reached in the span, not the month's messages.
    """
    since, until = stored_time(since), stored_time(until)
    categories = every_spelling(categories)
    ignored = tuple(ignored_types) or ("",)
    counted_from = dict(counted_from or {})
    contact = counters.ReachedUser.contact
    wrote = StoredMessage.select(StoredMessage.id).where(
        (StoredMessage.phone_number_id == counters.ReachedUser.phone_number_id)
        & ((StoredMessage.contact == contact) | (StoredMessage.contact == other_wa_id_form_sql(contact)))
        & (StoredMessage.direction == "inbound")
        & (StoredMessage.at >= since - window) & (StoredMessage.at < until) & _opens_window(ignored, counted_from))
    # A user whose latest message is after `until` (a decision about the past) was reached in the span if one of
    # their messages not failed is in it: one probe of the (phone_number_id, contact, category, at) index.
    sent = MessageBilling.select(MessageBilling.id).where(
        (MessageBilling.phone_number_id == counters.ReachedUser.phone_number_id)
        & (MessageBilling.contact == counters.ReachedUser.contact)
        & (MessageBilling.category == counters.ReachedUser.category)
        & (MessageBilling.at >= since) & (MessageBilling.at < until) & (MessageBilling.status != counters.FAILED))
    reached = counters.ReachedUser.select().where(
        counters.ReachedUser.phone_number_id.in_(phone_number_ids) & counters.ReachedUser.category.in_(categories)
        & (counters.ReachedUser.last_at >= since)
        & ((counters.ReachedUser.last_at < until) | peewee.fn.EXISTS(sent)))
    plain = ~peewee.fn.EXISTS(wrote)
    user = peewee.NodeList((peewee.SQL("DISTINCT"), wa_id_key_sql(contact)))
    found = reached.where(plain).select(peewee.fn.COUNT(user)).scalar() or 0
    unsure = sorted({wa_id_key(value) for (value,) in reached.where(~plain).select(contact).tuples()})
    for start in range(0, len(unsure), 250):  # databases cap the parameters of one statement (two forms a user)
        chunk = unsure[start:start + 250]
        forms = tuple(form for key in chunk for form in wa_id_forms(key))
        counted = {wa_id_key(value) for (value,) in reached.where(plain & contact.in_(forms)).select(contact).tuples()}
        rest = tuple(form for key in chunk if key not in counted for form in wa_id_forms(key))
        if rest:
            found += len(_reached_from_rows(since=since, until=until, categories=categories,
                                            phone_number_ids=phone_number_ids, window=window, ignored=ignored,
                                            counted_from=counted_from, contacts=rest))
    return found


def _reached_from_rows(*, since: datetime, until: datetime, categories: tuple[str, ...],
                       phone_number_ids: tuple[str, ...], window: timedelta, ignored: tuple[str, ...],
                       counted_from: Mapping[str, datetime] | None = None,
                       contacts: tuple[str, ...] | None = None) -> set[str]:
    """The users (of `contacts`, or all; each by core.identities.wa_id_key) reached outside a window in [since,
    until) (naive UTC), read message by message from their billing rows and inbound messages
    (count_users_reached_outside_window's meaning: a user's two wa_id forms are one user, and one window)."""
    reached = (MessageBilling.select(MessageBilling.phone_number_id, MessageBilling.contact, MessageBilling.at)
               .where(MessageBilling.category.in_(categories) & MessageBilling.phone_number_id.in_(phone_number_ids)
                      & (MessageBilling.at >= since) & (MessageBilling.at < until)
                      & (MessageBilling.status != counters.FAILED)))
    inbound_rows = (StoredMessage.select(StoredMessage.phone_number_id, StoredMessage.contact, StoredMessage.at)
                    .where((StoredMessage.direction == "inbound") & StoredMessage.phone_number_id.in_(phone_number_ids)
                           & (StoredMessage.at >= since - window) & (StoredMessage.at < until)
                           & _opens_window(ignored, counted_from or {})))
    if contacts is not None:
        reached = reached.where(MessageBilling.contact.in_(contacts))
        inbound_rows = inbound_rows.where(StoredMessage.contact.in_(contacts))
    inbound: dict[tuple[str, str], list[datetime]] = {}
    for number, contact, at in inbound_rows.tuples():
        inbound.setdefault((number, wa_id_key(contact)), []).append(at)
    for times in inbound.values():
        times.sort()
    users = set()
    for number, contact, at in reached.tuples():
        user = wa_id_key(contact)
        if user in users:
            continue
        times = inbound.get((number, user), ())
        last = bisect_right(times, at)
        if last and at < times[last - 1] + window:
            continue  # inside the window the user opened: Meta does not count it
        users.add(user)
    return users


def _opens_window(ignored: tuple[str, ...], counted_from: Mapping[str, datetime]) -> peewee.Expression:
    """The stored inbound rows that open a window (core.window.WindowOpeners.opens as SQL): a type not ignored,
    and a type counted only from an instant written from that instant on."""
    condition = StoredMessage.type.not_in(ignored)
    for kind, start in sorted(counted_from.items()):
        condition &= ~((StoredMessage.type == kind) & (StoredMessage.at < stored_time(start)))
    return condition


def _state(row: MessageBilling) -> counters.RowState:
    """What the counters read of a billing row."""
    return counters.RowState(row.phone_number_id, row.contact, row.market, row.category, row.at, row.status,
                             row.pricing)


def _latest_reach(key: tuple[str, str, str]) -> datetime | None:
    """The latest time of a row not failed for (phone_number_id, contact, category), through its index."""
    row = (MessageBilling.select(MessageBilling.at)
           .where((MessageBilling.phone_number_id == key[0]) & (MessageBilling.contact == key[1])
                  & (MessageBilling.category == key[2]) & (MessageBilling.status != counters.FAILED))
           .order_by(MessageBilling.at.desc()).first())
    return None if row is None else row.at


def delete_billing(ids: list[int]) -> int:
    """Delete billing rows by id and take them out of the counters, in the caller's transaction (store.retention
    deletes old rows in batches); how many were deleted."""
    states = [_state(row) for row in MessageBilling.select().where(MessageBilling.id.in_(ids))]
    deleted = MessageBilling.delete().where(MessageBilling.id.in_(ids)).execute()
    counters.follow([(state, None) for state in states], _latest_reach)
    return deleted


def rebuild_counters() -> tuple[int, int]:
    """Rebuild the counters (store.counters) from every stored billing row, in one transaction: for a
    database whose rows were written without them (before migration 026, or a bulk load by SQL). Returns
    (counter rows, reached-user rows) written.
    """
    database = MessageBilling._meta.database
    Counter, Reached = counters.BillingCounter, counters.ReachedUser
    fields = [Counter.phone_number_id, Counter.category, Counter.market, Counter.span, Counter.start,
              Counter.messages, Counter.billed]
    billed = MessageBilling.status.in_(tuple(counters.DELIVERED_STATUSES)) & \
        MessageBilling.pricing.contains(counters.REGULAR)
    with database.atomic():
        Counter.delete().execute()
        Reached.delete().execute()
        finest = _bucket(database, MessageBilling.at, counters.FINEST)
        rows = (MessageBilling.select(
            MessageBilling.phone_number_id, MessageBilling.category, MessageBilling.market,
            peewee.Value(counters.FINEST), finest,
            peewee.fn.SUM(peewee.Case(None, [(MessageBilling.status != counters.FAILED, 1)], 0)),
            peewee.fn.SUM(peewee.Case(None, [(billed, 1)], 0)))
            .where(MessageBilling.category.is_null(False))
            .group_by(MessageBilling.phone_number_id, MessageBilling.category, MessageBilling.market, finest)
            .having((peewee.fn.SUM(peewee.Case(None, [(MessageBilling.status != counters.FAILED, 1)], 0)) > 0)
                    | (peewee.fn.SUM(peewee.Case(None, [(billed, 1)], 0)) > 0)))
        Counter.insert_from(rows, fields).execute()
        finer = counters.FINEST
        for span in reversed(counters.SPANS[:-1]):  # each size summed from the next smaller one
            Finer = Counter.alias()
            start = _bucket(database, Finer.start, span)
            Counter.insert_from(
                Finer.select(Finer.phone_number_id, Finer.category, Finer.market, peewee.Value(span), start,
                             peewee.fn.SUM(Finer.messages), peewee.fn.SUM(Finer.billed))
                .where(Finer.span == finer).group_by(Finer.phone_number_id, Finer.category, Finer.market, start),
                fields).execute()
            finer = span
        Reached.insert_from(
            MessageBilling.select(MessageBilling.phone_number_id, MessageBilling.contact, MessageBilling.category,
                                  peewee.fn.MAX(MessageBilling.at))
            .where(MessageBilling.category.is_null(False) & (MessageBilling.status != counters.FAILED))
            .group_by(MessageBilling.phone_number_id, MessageBilling.contact, MessageBilling.category),
            [Reached.phone_number_id, Reached.contact, Reached.category, Reached.last_at]).execute()
        return Counter.select().count(), Reached.select().count()


def _bucket(database: peewee.Database, at: peewee.Node, span: int) -> peewee.Node:
    """SQL for the start of the `span`-second UTC bucket holding a stored time (counters.floor_time in SQL)."""
    if isinstance(getattr(database, "obj", database), peewee.PostgresqlDatabase):
        return peewee.NodeList((peewee.fn.to_timestamp(peewee.fn.floor(peewee.fn.date_part("epoch", at) / span)
                                                       * span), peewee.SQL("AT TIME ZONE 'UTC'")))
    return peewee.fn.datetime(peewee.fn.strftime("%s", at).cast("INTEGER") / span * span, "unixepoch")


def decisions_of(wamids: list[str]) -> dict[str, str]:
    """The decision id each of these wamids was sent under (biz_opaque_callback_data), where one came back."""
    found: dict[str, str] = {}
    # In chunks: databases cap the parameters of one statement.
    for start in range(0, len(wamids), 500):
        rows = MessageBilling.select(MessageBilling.wamid, MessageBilling.decision_id).where(
            MessageBilling.wamid.in_(wamids[start:start + 500]) & MessageBilling.decision_id.is_null(False))
        found.update({row.wamid: row.decision_id for row in rows})
    return found


class AccountEvent(StoredModel):
    """One account-level event of a WABA: `account_update` (eligibility, primary country, restrictions, bans,
    volume tiers) or `business_capability_update` (messaging limit), with its time and payload."""

    waba_id = peewee.CharField(max_length=64)
    field = peewee.CharField(max_length=64)
    event = peewee.CharField(max_length=64)
    at = peewee.DateTimeField()
    payload = peewee.TextField(default="{}")

    class Meta:
        table_name = "account_event"
        indexes = ((("waba_id", "event", "at"), False),)


# account_update events and what each sets (the rest, e.g. VOLUME_BASED_PRICING_TIER_UPDATE, are kept for
# the volume tiers and the account's history).
PRIMARY_COUNTRY = "BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE"
AUTH_INTERNATIONAL = "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE"
RESTRICTION = "ACCOUNT_RESTRICTION"
BAN = BAN_EVENT
BIZ_INITIATED_RESTRICTIONS = ("RESTRICTED_BIZ_INITIATED_MESSAGING", "RESTRICTION_ON_BIZ_INITIATED_MESSAGING")
# DISABLED_UPDATE's ban_info.waba_ban_state: disabled now, scheduled to be disabled at waba_ban_date, or reinstated
# (the rules decide what each means for a send: ACC-2, ACC-2.scheduled, ACC-2.scheduled-date-reached).
DISABLED, SCHEDULED, REINSTATED = BAN_STATES


def record_account(waba_id: str, field: str, event: str, at: datetime, payload: dict[str, Any]) -> bool:
    """Store one account-level event once (the same event again adds nothing); True if it was new."""
    row = dict(waba_id=waba_id, field=field, event=event, at=stored_time(at),
               payload=json.dumps(payload, sort_keys=True, default=str))
    if AccountEvent.select(AccountEvent.id).where(
            *(getattr(AccountEvent, name) == part for name, part in row.items())).exists():
        return False
    AccountEvent.create(**row)
    return True


def _latest_account(waba_id: str, event: str, at: datetime,
                    read: Callable[[dict[str, Any]], Any] = lambda payload: payload) -> tuple[AccountEvent, Any] | None:
    """The latest stored event of the kind in force at `at`, with what `read` makes of its payload (raising
    ValueError, OverflowError or OSError for a time it cannot use: _possible_time), or None.

    An event dated outside 2000-2999, or whose `read` fails, is skipped for the one before it: webhooks skip such an
    account change now (contract.meta_webhooks.MetaTime, the entry time), but events stored before they did are
    still in the table, and a decision must not cite "until 5138-11-16" or "webhook at 1970-01-01" as Meta's word."""
    rows = (AccountEvent.select()
            .where((AccountEvent.waba_id == waba_id) & (AccountEvent.event == event)
                   & AccountEvent.at.between(stored_time(EARLIEST), stored_time(min(at, LATEST))))
            .order_by(AccountEvent.at.desc(), AccountEvent.id.desc()))
    for row in rows:
        try:
            return row, read(json.loads(row.payload))
        except (ValueError, OverflowError, OSError):
            continue
    return None


def _possible_time(value: Any) -> datetime:
    """A time of an account event's payload (meta_time) between 2000-01-01 and 2999-12-31, as webhooks take one;
    raises ValueError (OverflowError, OSError) for any other value, None too."""
    moment = meta_time(value)
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{moment.isoformat()} is not between 2000-01-01 and 2999-12-31")
    return moment


def _eligibility(payload: dict[str, Any]) -> dict[str, Any] | None:
    """AUTH_INTL_PRICE_ELIGIBILITY_UPDATE's eligibility in Meta's shape with its times as aware datetimes (the
    context field of the same shape), None without a start time."""
    eligibility = payload.get("auth_international_rate_eligibility") or {}
    if eligibility.get("start_time") is None:
        return None
    return {"start_time": _possible_time(eligibility["start_time"]),
            "exception_countries": [
                {"country_code": str(c["country_code"]).upper(), "start_time": _possible_time(c.get("start_time"))}
                for c in eligibility.get("exception_countries") or ()]}


def _scheduled_ban(when: Any, event_at: datetime, source: str) -> Known:
    """When a SCHEDULE_FOR_DISABLE takes effect: its waba_ban_date (ban_date), else the event's own time (fail
    closed: a ban whose date is missing or cannot be read is not put off), the source saying which."""
    if when is None:
        return Known(event_at, f"{source}, no waba_ban_date: taken from the webhook's time (fail closed)")
    try:
        return Known(ban_date(when), f"{source}, waba_ban_date {when}")
    except ValueError:
        return Known(event_at, f"{source}, waba_ban_date {json.dumps(when)[:80]} could not be read: taken from the "
                               "webhook's time (fail closed)")


def _restrictions(payload: dict[str, Any]) -> list[tuple[dict[str, Any], datetime | None]]:
    """ACCOUNT_RESTRICTION's business-initiated restrictions, each with its expiration (None: none given)."""
    return [(r, None if r.get("expiration") is None else _possible_time(r["expiration"]))
            for r in payload.get("restriction_info") or () if r.get("restriction_type") in BIZ_INITIATED_RESTRICTIONS]


def _ban_info(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["ban_info"] if isinstance(payload.get("ban_info"), dict) else {}


def _not_a_schedule(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload of a DISABLED_UPDATE that sets a ban state (_latest_account's `read`: a schedule is skipped)."""
    if str(_ban_info(payload).get("waba_ban_state")).upper() == SCHEDULED:
        raise ValueError("a schedule, not a ban state")
    return payload


def _ban_state(row: AccountEvent, state: Any) -> Known:
    """Whether a DISABLED_UPDATE that is not a schedule leaves the WABA disabled: DISABLE yes, REINSTATE no; no
    state, or one the rules do not model, is taken as a ban, never as none (fail closed)."""
    source = f"{_account_source(row)} ({state})"
    if str(state).upper() in (DISABLED, REINSTATED):
        return Known(str(state).upper() == DISABLED, source)
    return Known(True, f"{source}: not a ban state the rules model ({', '.join(BAN_STATES)}), taken as disabled "
                       "(fail closed)")


def account_state(waba_id: str, at: datetime) -> dict[str, Known]:
    """What the WABA's account events say at a time, by context field name (only the fields they inform).

    - business_region: the primary business location country (BUSINESS_PRIMARY_LOCATION_COUNTRY_UPDATE);
    - authentication_international_eligible / _eligibility: eligibility, its start time and the exception
      countries with their own (AUTH_INTL_PRICE_ELIGIBILITY_UPDATE);
    - business_initiated_restricted: a business-initiated messaging restriction not yet expired (ACCOUNT_RESTRICTION);
    - account_banned: the WABA disabled, until reinstated (DISABLED_UPDATE DISABLE; a later SCHEDULE_FOR_DISABLE
      does not lift it);
    - account_ban_scheduled_at: when the WABA is scheduled to be disabled (DISABLED_UPDATE SCHEDULE_FOR_DISABLE:
      its waba_ban_date, else the webhook's time, fail closed: _scheduled_ban);
    - messaging_limit: the portfolio's messaging limit, -1 unlimited (business_capability_update).

    Each comes from the latest event of its kind dated between 2000 and 2999 whose times read here are too
    (_latest_account): one stored before webhooks bounded them is skipped.
    """
    found: dict[str, Known] = {}
    latest = _latest_account(waba_id, PRIMARY_COUNTRY, at)
    if latest is not None and latest[1].get("country"):
        row, payload = latest
        found["business_region"] = Known(str(payload["country"]).upper(), _account_source(row))
    latest = _latest_account(waba_id, AUTH_INTERNATIONAL, at, _eligibility)
    if latest is not None:
        row, eligibility = latest
        found["authentication_international_eligible"] = Known(True, _account_source(row))
        if eligibility is not None:
            found["authentication_international_eligibility"] = Known(eligibility, _account_source(row))
    latest = _latest_account(waba_id, RESTRICTION, at, _restrictions)
    if latest is not None:
        row, restrictions = latest
        active = [expiration for _, expiration in restrictions if expiration is None or expiration > at]
        until = f", until {active[0].isoformat()}" if active and active[0] is not None else ""
        found["business_initiated_restricted"] = Known(bool(active), _account_source(row) + until)
    latest = _latest_account(waba_id, BAN, at)
    if latest is not None:
        row, payload = latest
        ban = _ban_info(payload)
        if str(ban.get("waba_ban_state")).upper() == SCHEDULED:
            found["account_ban_scheduled_at"] = _scheduled_ban(
                ban.get("waba_ban_date"), loaded_time(row.at), f"{_account_source(row)} ({SCHEDULED})")
            # A schedule does not lift a ban in force: only REINSTATE does (ACC-2). So the ban state is the latest
            # event that is not a schedule (a newcomer's trial: DISABLE, then a schedule, was allowed to send).
            latest = _latest_account(waba_id, BAN, at, _not_a_schedule)
        if latest is not None:
            row, payload = latest
            found["account_banned"] = _ban_state(row, _ban_info(payload).get("waba_ban_state"))
    latest = _latest_account(waba_id, CAPABILITY, at)
    if latest is not None:
        row, payload = latest
        limit = payload.get("max_daily_conversations_per_business")
        if limit is not None:
            found["messaging_limit"] = Known(int(limit), _account_source(row))
    return found


def account_history(waba_id: str) -> list[dict[str, Any]]:
    """Every stored account event of a WABA, oldest first, as JSON."""
    return [{"field": r.field, "event": r.event, "at": loaded_time(r.at).isoformat(), "payload": json.loads(r.payload)}
            for r in AccountEvent.select().where(AccountEvent.waba_id == waba_id)
            .order_by(AccountEvent.at, AccountEvent.id)]


def numbers_of(waba_id: str) -> tuple[str, ...]:
    """The phone number ids whose webhooks named this WABA."""
    return tuple(r.phone_number_id for r in BusinessNumber.select(BusinessNumber.phone_number_id)
                 .where(BusinessNumber.waba_id == waba_id))


def _account_source(row: AccountEvent) -> str:
    name = row.field if row.event == CAPABILITY else f"{row.field} {row.event}"
    return f"{name} webhook at {loaded_time(row.at).isoformat()}"


class ContactChange(StoredModel):
    """A user who changed their phone number (system message user_changed_number): the history follows them."""

    phone_number_id = peewee.CharField(max_length=64)
    old_contact = peewee.CharField(max_length=64)
    new_contact = peewee.CharField(max_length=64)
    at = peewee.DateTimeField()

    class Meta:
        table_name = "contact_change"
        indexes = ((("phone_number_id", "new_contact", "old_contact"), True),)


def record_number_change(phone_number_id: str, old_contact: str, new_contact: str, at: datetime) -> None:
    """Store that a user's wa_id changed (once per pair; a repeated webhook changes nothing)."""
    ContactChange.insert(phone_number_id=phone_number_id, old_contact=old_contact, new_contact=new_contact,
                         at=stored_time(at)).on_conflict_ignore().execute()


# A user changing numbers many times is rare; the chain is followed this far at most.
MAX_NUMBER_CHANGES = 10


def previous_contacts(phone_number_id: str, contact: str) -> list[tuple[str, datetime]]:
    """The wa_ids this contact had before (most recent first), each with when the user left it. A change is found
    under either of Meta's wa_id forms of a number (core.identities.wa_id_forms): a change to 5215512345678 is the
    history of 525512345678 too, and a chain goes on from either form of the number left. Each earlier number is
    the one the user changed from last before leaving the next (a later change to that number is someone else's)."""
    found: list[tuple[str, datetime]] = []
    seen, current = {wa_id_key(contact)}, contact
    left: datetime | None = None
    for _ in range(MAX_NUMBER_CHANGES):
        changes = ContactChange.select().where((ContactChange.phone_number_id == phone_number_id)
                                               & ContactChange.new_contact.in_(wa_id_forms(current)))
        if left is not None:
            changes = changes.where(ContactChange.at <= left)
        row = changes.order_by(ContactChange.at.desc(), ContactChange.id.desc()).first()
        if row is None or wa_id_key(row.old_contact) in seen:
            break
        found.append((row.old_contact, loaded_time(row.at)))
        seen.add(wa_id_key(row.old_contact))
        current, left = row.old_contact, row.at
    return found


class GroupEventRecord(StoredModel):
    """A Groups API event of a business number (group created or deleted, participants, settings, status),
    kept as Meta sent it; `key` (sha256 of the event) makes a repeated webhook add nothing."""

    phone_number_id = peewee.CharField(max_length=64)
    field = peewee.CharField(max_length=64)
    type = peewee.CharField(max_length=64)
    group_id = peewee.CharField(max_length=255, null=True)
    at = peewee.DateTimeField()
    payload = peewee.TextField(default="{}")
    key = peewee.CharField(max_length=64, unique=True)

    class Meta:
        table_name = "group_event"
        indexes = ((("phone_number_id", "group_id", "at"), False),)


def record_group_event(event: GroupEvent) -> bool:
    """Store a group event once; True if it was new."""
    payload = json.dumps(event.payload, sort_keys=True, default=str)
    key = hashlib.sha256(f"{event.phone_number_id}\n{event.field}\n{payload}".encode()).hexdigest()
    return GroupEventRecord.insert(phone_number_id=event.phone_number_id, field=event.field, type=event.type,
                                   group_id=event.group_id, at=stored_time(event.at), payload=payload,
                                   key=key).on_conflict_ignore().as_rowcount().execute() == 1


def group_events(phone_number_id: str, group_id: str) -> list[dict[str, Any]]:
    """Every stored event of a group, oldest first, as JSON."""
    return [{"field": r.field, "type": r.type, "at": loaded_time(r.at).isoformat(), "payload": json.loads(r.payload)}
            for r in GroupEventRecord.select().where((GroupEventRecord.phone_number_id == phone_number_id)
                                                     & (GroupEventRecord.group_id == group_id))
            .order_by(GroupEventRecord.at, GroupEventRecord.id)]
