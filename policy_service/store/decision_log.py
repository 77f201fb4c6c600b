"""The decision log: every decision, written before its response returns, and queries over it.

Masking (core.masking) keeps what replay needs: a phone number keeps its calling code and, for +1 (NANP)
numbers, its area code (`+1415*******`); every other digit is replaced by `*`. The recipient's
region, which the rules read, is also stored in its own column, so impact analysis can replay a
masked request with a number of the same region.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import json
import os
import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import orjson
import peewee
import phonenumbers

from ..contract.parsing import dumped_history
from ..core.decision import Decision
from ..core.identities import BSUID_PATTERN, example_numbers, recipient, wa_id_forms
from ..core.masking import (
    PHONE_KEYS,
    mask_contact,
    mask_number,
    masked,
    masked_json,
    masked_request,
    may_change,
    typed_history_may_change,
)
from ..core.rulebook import version_family
from . import log_compression, log_writer
from .database import SQLITE_PRAGMAS, STORAGE_FAULTS, StoredModel, discard_connection, loaded_time, stored_time

if TYPE_CHECKING:
    from ..core.rulebook import Rulebook

# Masking lives in core.masking (the pages mask with it too); these names stay importable from the log.
__all__ = ["PHONE_KEYS", "DecisionQuery", "DecisionRecord", "dumps", "entry", "get", "logged_texts", "mask_number",
           "masked", "record", "replayable_request", "select", "with_example_recipient"]

_MASKED_BSUID = re.compile(r"^[A-Z]{2}\.(?:ENT\.)?\*+$")


class _CompressedOrPlain(peewee.FieldAccessor):
    """Reads a logged text from the row's compressed frame when it has one, else from its own column (rows
    logged before compression, or built in that form)."""

    def __get__(self, instance: Any, instance_type: Any = None) -> Any:
        if instance is None:
            return self.field
        if instance.__data__.get("texts") is None:
            return instance.__data__.get(self.name)
        return instance.decompressed()[self.field.position]


class _LoggedText(peewee.TextField):
    """A text column of the decision log served from the compressed frame (`texts`) where the row has one.
    Stored and migrated as a plain TextField."""

    accessor_class = _CompressedOrPlain

    def __init__(self, position: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.position = position  # 0: the request, 1: the response, in log_compression's frame


class DecisionRecord(StoredModel):
    """One logged decision, append-only."""

    decision_id = peewee.CharField(max_length=64, unique=True)
    logged_at = peewee.DateTimeField(index=True)
    send_at = peewee.CharField(max_length=40)
    # Not indexed (migration 038): two values, and the listing finds rows by logged_at.
    decision = peewee.CharField(max_length=8)
    status = peewee.CharField(max_length=16)
    required_message_type = peewee.CharField(max_length=8)
    policy_version = peewee.CharField(max_length=16, null=True)
    # Not indexed (migration 031): no query filters or sorts by it.
    rulebook_version = peewee.CharField(max_length=40)
    determining_rules = peewee.TextField()
    recipient_region = peewee.CharField(max_length=2, default="ZZ")
    # The recipient as logged (masked when masking is on) and the business number of a history_ref, for the
    # reviewers' filters; rows logged before these columns existed hold "".
    recipient = peewee.CharField(max_length=32, default="", index=True)
    # Indexed only where it is not "" (migration 039, Meta.indexes): most decisions have none.
    phone_number_id = peewee.CharField(max_length=64, default="")
    # The request's and the response's JSON text (masked when `masked`). Rows logged since migration 034 hold ""
    # in both columns and the texts compressed in `texts`; reading `request` or `response` serves either form.
    request = _LoggedText(0, default="")
    # Rows logged before migration 034 copied response["facts"] here; nothing reads it, newer rows hold "{}".
    facts = peewee.TextField(default="{}")
    response = _LoggedText(1, default="")
    masked = peewee.BooleanField(default=True)
    # The name of the API key that asked for the decision (never the key); None with keys off, and for rows
    # logged before the column existed. Not indexed (migration 031): no query filters or sorts by it.
    api_key_name = peewee.CharField(max_length=64, null=True)
    # The request's and the response's JSON as one zstd frame (store.log_compression), compressed with the
    # dictionary of id `dictionary` (0: none); both null in rows logged before migration 034.
    texts = peewee.BlobField(null=True)
    dictionary = peewee.IntegerField(null=True)

    class Meta:
        table_name = "decision_log"

    def decompressed(self) -> tuple[str, str]:
        """The request's and the response's JSON text of a compressed row (decompressed once per instance)."""
        cached = self.__dict__.get("_decompressed")
        if cached is None:
            cached = self.__dict__["_decompressed"] = log_compression.decompress(self.texts, self.dictionary or 0)
        return cached


# The business number of history_ref decisions, for the listing's filter; rows without one ("") are not in it.
DecisionRecord.add_index(DecisionRecord.index(DecisionRecord.phone_number_id, name="decision_log_phone_number_id",
                                              where=DecisionRecord.phone_number_id != ""))


@dataclass(frozen=True)
class DecisionQuery:
    """Filters for listing logged decisions; every one optional."""

    since: datetime | None = None
    until: datetime | None = None
    decision: str | None = None
    rule: str | None = None
    policy_version: str | None = None
    contact: str | None = None  # E.164 or BSUID; with masking on, every one with the same kept characters matches
    phone_number_id: str | None = None


def record(decision: Decision, request: dict[str, Any], response: dict[str, Any], *, mask: bool,
           response_json: bytes | None = None, api_key: str | None = None, rulebook: Rulebook | None = None,
           dictionary_samples: Callable[[], Sequence[bytes]] | None = None) -> None:
    """Write one decision; raises if it cannot be stored, so no unlogged decision is ever returned.

    `response_json` is the response body exactly as returned (JSON bytes), when the caller has
    serialized it already: the row stores those bytes (masked), so the response is serialized once.
    `api_key` is the name of the API key that asked (never the key itself), None when keys are off.
    `rulebook`, the rulebook that decided: the request and response texts are compressed with its dictionary
    (store.log_compression; without one, with none), and read back as the same JSON text; `dictionary_samples`
    gives that dictionary's sample rows (log_compression.dictionary_for) when this process has not used it yet.
    The row is one prepared INSERT, committed before this returns: on its own or with the rows of other threads of
    this process that were waiting at the same time, in one transaction (group commit, _GroupCommit; SQLite
    synchronous=FULL, PostgreSQL synchronous commit), except under gunicorn's master on the embedded SQLite file
    (store.log_writer), where a worker commits on a connection of its own with synchronous=NORMAL for the
    master's syncer to force to disk within DECISION_LOG_SYNC_SECONDS, or hands the row to the master's writer
    when that is 0; inside a caller's transaction (an Idempotency-Key's unit of work), by that transaction.
    """
    record_all([Logged(decision, request, response, response_json, api_key)], mask=mask, rulebook=rulebook,
               dictionary_samples=dictionary_samples)


@dataclass(frozen=True)
class Logged:
    """One decision to log (record's arguments of that name)."""

    decision: Decision
    request: dict[str, Any]
    response: dict[str, Any]
    response_json: bytes | None = None
    api_key: str | None = None


def record_all(entries: Sequence[Logged], *, mask: bool, rulebook: Rulebook | None = None,
               dictionary_samples: Callable[[], Sequence[bytes]] | None = None) -> None:
    """Write decisions all or nothing (a batch): their rows are committed together, or none is (a commit they share
    with other decisions' rows is retried unit by unit when one fails, so a batch fails alone); raises what `record`
    raises. The arguments are `record`'s."""
    dictionary = log_compression.dictionary_for(rulebook, dictionary_samples)
    _insert([_values(entry, mask, dictionary) for entry in entries])


def _values(entry: Logged, mask: bool, dictionary: int) -> dict[str, Any]:
    request, response, decision = entry.request, entry.response, entry.decision
    region, _ = recipient(str(request.get("send", {}).get("to", "")))
    texts = logged_texts(request, response, entry.response_json, mask=mask)
    facts = decision.facts
    # The recipient as logged, and a history_ref's business number (the web layer logs the ref's history
    # inline and names the ref in the response's history_source), for the reviewers' filters.
    to = str(request.get("send", {}).get("to", ""))
    ref = request.get("history_ref") or (response.get("history_source") or {}).get("ref") or {}
    return {
        "decision_id": decision.decision_id,
        "logged_at": stored_time(datetime.now(UTC)),
        "send_at": facts.at.isoformat() if facts else "",
        "decision": decision.decision,
        "status": decision.status,
        "required_message_type": decision.required_message_type,
        "policy_version": decision.policy_version,
        "rulebook_version": decision.rulebook_version,
        "determining_rules": ",".join(decision.determining_rules),
        "recipient_region": region,
        "recipient": logged_recipient(to, mask),
        "phone_number_id": str(ref.get("phone_number_id", ""))[:64],
        "texts": log_compression.compress(texts, dictionary),
        "dictionary": dictionary,
        "masked": mask,
        "api_key_name": entry.api_key,
    }


def logged_texts(request: dict[str, Any], response: dict[str, Any], response_json: bytes | None, *,
                 mask: bool) -> tuple[bytes, bytes]:
    """The request's and the response's JSON text as a row stores them (UTF-8 bytes), masked when `mask`;
    `response_json` is the response as answered, when the caller has serialized it already."""
    if mask:
        # Masked while the row is built (core.masking): only strings that can hold a number are searched. The
        # response's text as sent is masked as text (masked_json: its keys are the contract's names, never a
        # number), so it is neither walked nor serialized again.
        return (_masked_request_text(request),
                masked_json(response_json.decode()).encode() if response_json is not None else dumps(masked(response)))
    return _request_text(request), response_json if response_json is not None else dumps(response)


def _request_text(request: Any) -> bytes:
    """dumps(request), the same bytes; a parsed body's history (contract.parsing.dumped_history) is written from the
    text the parser dumped, not dumped again (~1 ms for 10,000 events)."""
    dumped = dumped_history(request.get("history") if type(request) is dict else None)
    if dumped is not None:
        try:
            return orjson.dumps({**request, "history": orjson.Fragment(dumped)})
        except orjson.JSONEncodeError:
            pass  # an integer beyond 64 bits beside the history: the standard library writes it all (dumps)
    return dumps(request)


def dumps(value: Any) -> bytes:
    """Compact JSON (UTF-8 bytes) by orjson; by the standard library, in the same format, for integers
    beyond 64 bits, which orjson refuses (a request may carry one in a free-form field)."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


# A long inline history is masked in chunks of this many messages: only a chunk whose JSON text may hold something
# to mask (core.masking.may_change) is walked; the others are kept as serialized, so the history is written once.
HISTORY_CHUNK = 256


def _masked_request_text(request: Any) -> bytes:
    """dumps(masked_request(request)), the same bytes, at a cost that follows what is masked for a long history.
    The history parse_json typed and dumped (contract.parsing.dumped_history) is not dumped again: its whole text is
    searched once (core.masking.typed_history_may_change) and, when nothing in it can change, written as it is."""
    history = request.get("history") if type(request) is dict else None
    dumped = dumped_history(history)  # taken (and so let go) whatever the history's length
    if type(history) is not list or len(history) <= HISTORY_CHUNK:
        return dumps(masked_request(request))
    try:
        if dumped is not None and not typed_history_may_change(dumped.decode()):
            shown = masked_request({**request, "history": []})
            shown["history"] = orjson.Fragment(dumped)  # where the history stood, as the text it was dumped as
            return orjson.dumps(shown)
        parts = []
        # A chunk of a typed history is typed: searched as one (no contact or wa_id member can stand in it).
        changes = may_change if dumped is None else typed_history_may_change
        for start in range(0, len(history), HISTORY_CHUNK):
            chunk = history[start:start + HISTORY_CHUNK]
            text = orjson.dumps(chunk)
            if changes(text.decode()):
                text = orjson.dumps(masked_request({"history": chunk})["history"])
            parts.append(text[1:-1])
        shown = masked_request({**request, "history": []})
        # Where the masked history stood; orjson writes a Fragment's bytes as they are.
        shown["history"] = orjson.Fragment(b"[" + b",".join(parts) + b"]")
        return orjson.dumps(shown)
    except orjson.JSONEncodeError:
        # An integer beyond 64 bits somewhere: the standard library writes the whole request (dumps).
        return dumps(masked_request(request))


# (database, its INSERT statement, the fields in parameter order); written on first use per database.
_STATEMENT: list[tuple[peewee.Database, str, tuple[peewee.Field, ...]]] = []


def _statement(database: peewee.Database) -> tuple[str, tuple[peewee.Field, ...]]:
    """The decision log's INSERT statement for a database, and its fields in parameter order."""
    statement = _STATEMENT[0] if _STATEMENT and _STATEMENT[0][0] is database else None
    if statement is None:
        fields = tuple(f for f in DecisionRecord._meta.sorted_fields if not f.primary_key)
        quote = database.quote[0]
        columns = ", ".join(f"{quote}{f.column_name}{quote}" for f in fields)
        sql = (f"INSERT INTO {quote}{DecisionRecord._meta.table_name}{quote} ({columns}) "
               f"VALUES ({', '.join([database.param] * len(fields))})")
        statement = (database, sql, fields)
        _STATEMENT[:] = [statement]
    return statement[1], statement[2]


def _insert(rows: list[dict[str, Any]]) -> None:
    # A hand-written INSERT instead of Model.create: peewee built the model instance and compiled the
    # query on every call. Fields not given here (a column added later) get their model default.
    database = DecisionRecord._meta.database.obj if isinstance(DecisionRecord._meta.database, peewee.DatabaseProxy) \
        else DecisionRecord._meta.database
    sql, fields = _statement(database)
    unit = []
    for values in rows:
        params = []
        for field in fields:
            value = values[field.name] if field.name in values else field.default
            params.append(field.db_value(value() if callable(value) else value))
        unit.append(params)
    if database.in_transaction():
        # The caller's transaction (an Idempotency-Key's decision and remembered answer) commits the rows.
        for params in unit:
            database.execute_sql(sql, params)
        return
    client = _HOST_CLIENT[0]
    if client is not None and client[0] is database:
        try:
            client[1].write(unit)
            return
        except log_writer.WriterUnavailable:
            # No writer (it stopped): this process writes its rows itself from now on.
            _HOST_CLIENT[0] = None
    committer = _COMMITTERS.get(database)
    if committer is None:
        with _COMMITTERS_LOCK:
            committer = _COMMITTERS.setdefault(database, _GroupCommit(database))
    committer.write(sql, unit)


class _GroupCommit:
    """Group commit for one database in this process: a thread that logs while another thread's commit is under
    way queues its row; when that commit ends, one waiting thread (the leader) writes every queued row (at most
    MAX_BATCH) in one transaction — on its thread's connection, or, under the host's syncer, on this process's one
    log connection (`_unforced`) — and each thread returns once its own row is committed
    (or raises what its commit raised). One commit (one fsync) then serves several decisions; and threads wait
    on a condition instead of polling SQLite's write lock (its busy handler sleeps 1, 2, 5, 10… ms between tries,
    which made most of the log's tail latency). A thread that finds no commit under way writes its row at once:
    a lone decision waits for nothing more than its own commit."""

    MAX_BATCH = 64

    def __init__(self, database: peewee.Database) -> None:
        self.database = database
        self._changed = threading.Condition(threading.Lock())
        self._queue: list[log_writer.PendingRows] = []
        self._leading = False
        self._unforced_database: peewee.SqliteDatabase | None = None

    def write(self, sql: str, rows: list[list[Any]]) -> None:
        """Commit rows (their INSERT statement and each row's parameters), all or none; raises what their commit
        raised."""
        mine = log_writer.PendingRows(rows)
        led = False
        with self._changed:
            self._queue.append(mine)
        while not mine.done:
            with self._changed:
                while self._leading and not mine.done:
                    self._changed.wait()
                if mine.done:
                    break
                self._leading = True
            syncer = self._syncer()
            batch: list[log_writer.PendingRows] = []
            try:
                # Under the syncer the leader waits for the host's turn first and takes the queue once it has it:
                # the rows of this process's threads that arrived meanwhile share its commit.
                with syncer.turn() if syncer is not None else contextlib.nullcontext():
                    with self._changed:
                        # The oldest rows first: a thread whose row is beyond MAX_BATCH leads the next commit.
                        batch, self._queue = self._queue[:self.MAX_BATCH], self._queue[self.MAX_BATCH:]
                    led = mine in batch
                    self._commit(sql, batch, syncer)
            finally:
                with self._changed:
                    for row in batch:
                        row.done = True
                    self._leading = False
                    self._changed.notify_all()
        if mine.error is not None:
            # A row committed by another thread raises a copy, so threads never share one traceback.
            raise mine.error if led else _copied(mine.error)

    def _syncer(self) -> log_writer.HostSyncer | None:
        """The host's syncer when it keeps this database's log (the embedded SQLite file), else None."""
        syncer = _HOST_SYNCER[0]
        return syncer if syncer is not None and isinstance(self.database, peewee.SqliteDatabase) else None

    def _commit(self, sql: str, batch: list[log_writer.PendingRows], syncer: log_writer.HostSyncer | None) -> None:
        if syncer is None:
            commit_rows(self.database, sql, batch)
            return
        # The host's syncer forces these rows to disk within its interval: the commit need not wait for the disk.
        commit_rows(self._unforced(), sql, batch)
        syncer.committed()

    def _unforced(self) -> peewee.SqliteDatabase:
        """The same SQLite file opened for the log's commits alone, with synchronous=NORMAL: the app's connections,
        which also write webhooks and the business's state, stay FULL, untouched, and no commit pays two statements
        switching its connection to NORMAL and back (5 µs a pair in a warm loop, 2026-12-07)."""
        unforced = self._unforced_database
        if unforced is None:
            database = self.database
            # One connection for the process, used by one leader at a time (write's `_leading`), not one per thread:
            # a commit on any other connection, even of this process, empties a connection's page cache, and each
            # thread's own then read ~14 pages again per decision (strace, one worker, wrk -c1).
            unforced = self._unforced_database = type(database)(
                database.database, thread_safe=False, pragmas={**SQLITE_PRAGMAS, "synchronous": "normal"},
                **{**database.connect_params, "check_same_thread": False})
        return unforced


def commit_rows(database: peewee.Database, sql: str, batch: Sequence[Any]) -> None:
    """Commit the pending units of `batch` (objects with `rows`, each row a list of `sql`'s parameters, and `error`)
    in one transaction, on this thread's connection; a unit that could not be committed gets its `error` and none
    of its rows is kept (a storage fault fails them all; a unit's own error, such as a duplicate decision_id, fails
    that unit alone). Raises only BaseExceptions that are not Exceptions, after marking every unit with it."""
    try:
        if len(batch) == 1 and len(batch[0].rows) == 1:
            # Outside a transaction the statement commits by itself: one round trip, one commit.
            database.execute_sql(sql, batch[0].rows[0])
        else:
            with database.atomic():
                for unit in batch:
                    for params in unit.rows:
                        database.execute_sql(sql, params)
    except STORAGE_FAULTS as fault:
        # Nothing of the batch is stored; every decision in it is answered 503. This thread's connection is
        # dropped here, as the 503 handler drops it, also when this thread's own row was not in the batch.
        discard_connection(database)
        for unit in batch:
            unit.error = fault
    except Exception as error:
        if len(batch) == 1:
            batch[0].error = error
            return
        # A unit's own error (a duplicate decision_id, a bug) must not fail the units beside it: each alone.
        for unit in batch:
            commit_rows(database, sql, [unit])
    except BaseException as error:
        # Never "done" without an error unless committed: the waiting threads raise it too.
        for unit in batch:
            unit.error = error
        raise


def _copied(error: BaseException) -> BaseException:
    try:
        return copy.copy(error).with_traceback(None)
    except Exception:
        return error


# One group commit per database object (a process may open several, as tests do), forgotten with it and in a
# forked child (a lock held by a thread of the parent would never be released there).
_COMMITTERS: weakref.WeakKeyDictionary[peewee.Database, _GroupCommit] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_COMMITTERS.clear)


def get(decision_id: str) -> dict[str, Any] | None:
    """The logged decision for an id, with when and how it was logged; None if unknown."""
    if "\x00" in decision_id:
        # No id contains NUL, and PostgreSQL refuses to compare text holding one.
        return None
    row = DecisionRecord.get_or_none(DecisionRecord.decision_id == decision_id)
    return None if row is None else entry(row)


def select(query: DecisionQuery) -> peewee.ModelSelect:
    """Logged decisions matching the filters, newest first."""
    rows = DecisionRecord.select().order_by(DecisionRecord.logged_at.desc(), DecisionRecord.id.desc())
    if query.since is not None:
        rows = rows.where(DecisionRecord.logged_at >= stored_time(query.since))
    if query.until is not None:
        rows = rows.where(DecisionRecord.logged_at < stored_time(query.until))
    if query.decision is not None:
        rows = rows.where(DecisionRecord.decision == query.decision)
    if query.rule is not None:
        # Stored as "A,B": wrap in commas so "PMP-3" never matches "PMP-30".
        wrapped = peewee.Value(",").concat(DecisionRecord.determining_rules).concat(",")
        rows = rows.where(wrapped.contains(f",{query.rule},"))
    if query.policy_version is not None:  # V3 matches V3a and V3b too; V3b only itself (core.rulebook)
        rows = rows.where(DecisionRecord.policy_version.in_(version_family(query.policy_version)))
    if query.contact is not None:
        contact = query.contact
        if BSUID_PATTERN.fullmatch(contact):
            # Before 2026-12-07 a masked BSUID was logged as a number is (mask_number: its first letter kept).
            forms = {contact, mask_contact(contact), mask_number(contact)}
        else:  # the number, and the other form Meta's wa_id may write it in (5215512345678 for +525512345678)
            numbers = ["+" + digits for digits in wa_id_forms(contact.lstrip("+"))]
            forms = {*numbers, *map(mask_number, numbers)}
        # A masked log holds only the kept characters, so the contact is compared as it would have been stored.
        rows = rows.where(DecisionRecord.recipient.in_(sorted(logged_recipient(form, False) for form in forms)))
    if query.phone_number_id is not None:
        # `!= ""` lets the planner use the partial index (query.phone_number_id is Meta's digits, never "").
        rows = rows.where((DecisionRecord.phone_number_id == query.phone_number_id)
                          & (DecisionRecord.phone_number_id != ""))
    return rows


def allowed_sends(first: date, last: date) -> peewee.ModelSelect:
    """The allowed decisions whose send may fall from `first` through `last` (UTC days): a superset the caller
    narrows to the exact UTC day (send_at is the send's time with its own offset, ISO text, "" when none).

    Bounded in SQL on send_at's text: a send's local date is within a day of its UTC date (offsets are under a day)
    and ISO dates of one format order as text, so rows of sends more than a day outside the period are never read.
    Not on logged_at: a decision may be asked for a send at any time, before or after it is logged (a send planned
    ahead, a replay of last month's traffic). send_at has no index (each logged decision would write one more
    b-tree page, which migrations 031 and 038 removed elsewhere): the scan compares text, it decodes no row."""
    return DecisionRecord.select().where(
        (DecisionRecord.decision == "allow")
        & (DecisionRecord.send_at >= (first - timedelta(days=1)).isoformat())
        & (DecisionRecord.send_at < (last + timedelta(days=2)).isoformat()))


def logged_recipient(to: str, mask: bool) -> str:
    """The recipient column's value for a send to `to` (E.164 number, BSUID or group id): masked (mask_contact)
    when `mask`, cut to the column's 32 characters."""
    return (mask_contact(to) if mask and to else to)[:32]


def entry(row: DecisionRecord) -> dict[str, Any]:
    """One logged decision as the API shows it."""
    return {
        "decision_id": row.decision_id,
        "logged_at": loaded_time(row.logged_at).isoformat(),
        "decision": row.decision,
        "status": row.status,
        "rulebook_version": row.rulebook_version,
        "policy_version": row.policy_version,
        "determining_rules": [r for r in row.determining_rules.split(",") if r],
        "recipient_region": row.recipient_region,
        "masked": row.masked,
        "api_key": row.api_key_name,
        "request": json.loads(row.request),
        "response": json.loads(row.response),
    }


def replayable_request(row: DecisionRecord) -> dict[str, Any]:
    """The logged request, its masked recipient replaced by a number of the same region."""
    return with_example_recipient(json.loads(row.request), row.recipient_region)


def with_example_recipient(request: dict[str, Any], region: str) -> dict[str, Any]:
    """The request with a masked recipient replaced by an example number of the region; others unchanged.

    The rules read only the recipient's region, calling code and whether it is a BSUID, so the example
    decides alike.
    """
    send = request.get("send") if isinstance(request, dict) else None
    number = send.get("to") if isinstance(send, dict) else None
    participants = send.get("participants") if isinstance(send, dict) else None
    if isinstance(participants, list) and all(isinstance(p, str) for p in participants):
        # Group sends: the rules read how many participants there are and their calling codes (the price per
        # participant); masked ones sharing a code are distinct example numbers, as a group's participants must be.
        send = {**send, "participants": example_numbers(participants)}
        request = {**request, "send": send}
    if not isinstance(number, str) or "*" not in number:
        return request
    if _MASKED_BSUID.match(number):
        # A BSUID stays a BSUID of the same country: the rules read whether the recipient is one.
        return {**request, "send": {**send, "to": number.replace("*", "0")}}
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    replaced = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164) if example else \
        number.replace("*", "0")
    return {**request, "send": {**send, "to": replaced}}


# The host writer (store.log_writer): started in gunicorn's master (start_host_writer), handed to the workers it forks.
_HOST_WRITER: list[log_writer.HostWriter | None] = [None]
_HOST_CLIENT: list[tuple[peewee.Database, log_writer.Client] | None] = [None]
# The host's syncer (DECISION_LOG_SYNC_SECONDS > 0): started in gunicorn's master; its workers inherit the object and
# report their commits to it (the thread runs in the master only).
_HOST_SYNCER: list[log_writer.HostSyncer | None] = [None]


def _embedded_file() -> peewee.SqliteDatabase | None:
    """The configured database when it is a SQLite file (the embedded default, or a sqlite:/// URL), else None."""
    from .database import database_proxy

    database = database_proxy.obj
    if not isinstance(database, peewee.SqliteDatabase) or database.database == ":memory:":
        return None
    return database


def start_host_syncer(seconds: float) -> bool:
    """Make this process (gunicorn's master, the app preloaded) force the embedded SQLite file's log to disk within
    `seconds` (DECISION_LOG_SYNC_SECONDS > 0) of each commit, and the processes it forks from now on commit their
    log rows with synchronous=NORMAL and report them to it (store.log_writer.HostSyncer). Returns whether it applies
    (the embedded SQLite file only). A process that did not fork from here commits with synchronous=FULL."""
    if _HOST_SYNCER[0] is not None:
        return True
    database = _embedded_file()
    if database is None:
        return False
    _HOST_SYNCER[0] = log_writer.HostSyncer(database.database, seconds)
    atexit.register(stop_host_syncer)
    return True


def stop_host_syncer() -> None:
    """Stop this process's syncer (forcing what was committed to disk), if one runs; tests, and the master's exit."""
    syncer, _HOST_SYNCER[0] = _HOST_SYNCER[0], None
    if syncer is not None:
        syncer.stop()


def start_host_writer() -> bool:
    """Start this host's decision-log writer in this process (gunicorn's master, the app preloaded) for the
    configured database, when it is the embedded SQLite file, for DECISION_LOG_SYNC_SECONDS 0 (every commit forced
    to disk: one fsync shared by the rows of every worker); processes forked from now on send their rows to it
    (store.log_writer). Returns whether one runs. A process that did not fork from here writes its rows itself."""
    if _HOST_WRITER[0] is not None:
        return True
    database = _embedded_file()
    if database is None:
        return False
    _HOST_WRITER[0] = log_writer.HostWriter(database, _statement(database)[0], commit_rows)
    # Its thread is a daemon: without this, the process's exit would leave the socket's directory behind.
    atexit.register(stop_host_writer)
    return True


def stop_host_writer() -> None:
    """Stop this process's host writer, if it runs (tests; gunicorn's master ends with the process)."""
    writer, _HOST_WRITER[0] = _HOST_WRITER[0], None
    if writer is not None:
        writer.stop()


def _before_fork() -> None:
    writer = _HOST_WRITER[0]
    if writer is not None:
        # No child may inherit a SQLite mutex the writer's thread holds: fork between its commits.
        writer.busy.acquire()


def _after_fork_in_parent() -> None:
    writer = _HOST_WRITER[0]
    if writer is not None:
        writer.busy.release()


def _after_fork_in_child() -> None:
    writer, _HOST_WRITER[0] = _HOST_WRITER[0], None
    if writer is not None:
        writer.forget()
        _HOST_CLIENT[0] = (writer.database, log_writer.Client(writer.path))
    elif _HOST_CLIENT[0] is not None:
        # Forked from a worker: its own connections, never one shared with the thread that forked.
        _HOST_CLIENT[0] = (_HOST_CLIENT[0][0], log_writer.Client(_HOST_CLIENT[0][1].path))


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child)
