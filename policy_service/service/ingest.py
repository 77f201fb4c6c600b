"""Meta's webhooks into the store: stored first, acknowledged fast, processed after, never lost.

`receive` checks the signature and that the body is a WhatsApp Business Account webhook, stores the body as
received in one write (store.raw_webhooks) and returns the receipt: the HTTP answer goes out as soon as the
payload is durable, whatever its size. Reading it (contract.meta_webhooks, one pass) and storing its events
happens afterwards, in `process` / `process_pending`, called by

- the background `Processor` thread of each web worker (woken by every payload, polling for leftovers),
- `policy-service webhooks process` (cron, or after an outage),
- `receive(..., process=True)` itself when processing is configured `inline` (tests, single-user tools).

Guarantees:

- Never lost: a payload is answered 200 only once stored; a storage fault before that is a 503, and Meta retries.
  A payload whose processing fails or is cut short (kill -9, deploy, lost database) stays pending and is
  finished by the next processor that finds its lease expired, from the last committed batch on.
- Exactly once: events are stored in batches of `Settings.batch_size`, each batch in one transaction together
  with the payload's progress, so a resumed payload neither skips nor repeats a batch; a retried payload
  (same body) adds no row at all; every event is also idempotent on its own (a wamid is stored once, a
  duplicated status or template change adds nothing), so a second delivery with another body adds nothing either.
- Claims are safe across threads, workers and instances: one conditional UPDATE takes a lease, and a processor
  whose lease was taken over stops before committing another batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import peewee

from ..contract import meta_webhooks as meta
from ..contract.parsing import MAX_ERRORS, BodyRefused, bounded_errors, error_message
from ..store import business_state as state
from ..store import database, decision_log, histories, raw_webhooks
from .idempotency import write_transaction

log = logging.getLogger("policy_service.webhooks")
SIGNATURE_HEADER = "X-Hub-Signature-256"
# A status error code -> what it tells about the business's own state.
STOPPED_MARKETING = 131050
TEMPLATE_ERRORS = {132015: "PAUSED", 132016: "DISABLED"}
# How processing is run (setting WEBHOOK_PROCESSING).
BACKGROUND, INLINE, OFF = "background", "inline", "off"
MODES = (BACKGROUND, INLINE, OFF)
# PostgreSQL's SQLSTATEs of lock contention: serialization_failure, deadlock_detected, lock_not_available.
POSTGRES_CONTENTION = frozenset({"40001", "40P01", "55P03"})


@dataclass(frozen=True)
class Settings:
    """How payloads are processed: events per transaction, a claim's lease, attempts before a payload is
    `failed`, and how often the background thread looks for leftovers (seconds)."""

    batch_size: int = 500
    lease_seconds: float = 60.0
    max_attempts: int = 5
    poll_seconds: float = 5.0
    # SQLite has one write lock for the whole file, which the decisions' log commits need too: a batch there also
    # ends once it has held the lock this long, and the processor then leaves the lock free for `yield_seconds`.
    # Why both: a writer waiting in SQLite's busy handler polls after sleeps of 1, 2, 5 … 25 ms (100 ms after
    # 228 ms of waiting), so a lock re-taken the instant it is released (batch after batch) is almost never seen
    # free: a 500-status batch held it ~3 s, and a decision waited the whole busy_timeout (10 s) and got a 503
    # (bench/ingest_contention.py). A batch of at most ~50 ms leaves its waiters at a poll interval of ≤ 25 ms,
    # so a 25 ms gap lets each of them in.
    batch_seconds: float = 0.05
    yield_seconds: float = 0.025
    # A payload whose batch met a locked database (contention, not a fault) is retried this soon, the attempt
    # not counted.
    contended_retry_seconds: float = 1.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


def configured(config: Mapping[str, Any]) -> Settings:
    """The processing settings a configuration names (WEBHOOK_BATCH_SIZE, WEBHOOK_LEASE_SECONDS,
    WEBHOOK_MAX_ATTEMPTS, WEBHOOK_POLL_SECONDS; upper-case keys), else the defaults."""
    defaults = Settings()
    return Settings(
        batch_size=int(config.get("WEBHOOK_BATCH_SIZE") or defaults.batch_size),
        lease_seconds=float(config.get("WEBHOOK_LEASE_SECONDS") or defaults.lease_seconds),
        max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS") or defaults.max_attempts),
        poll_seconds=float(config.get("WEBHOOK_POLL_SECONDS") or defaults.poll_seconds),
    )


class WebhookRefused(Exception):
    """A webhook refused before it was stored: the HTTP status, a message and field errors (the one error shape).

    401 unsigned or badly signed, 400/422 not a JSON WhatsApp Business Account webhook, 503 no app secret
    configured. (A database that cannot store the payload raises its storage fault, store.database.STORAGE_FAULTS.)
    """

    def __init__(self, status: int, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or {}


def receive(body: bytes, signature: str | None, *, app_secret: str | None, process: bool = False,
            settings: Settings | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Verify, store and acknowledge one webhook body; with `process`, also store its events before returning.

    Returns the payload's receipt (`payload`): its id, "status" ("pending" until processed, then "done", or
    "failed"), "duplicate" (the same body was stored before: this delivery added nothing), and once processed
    the counts "new", "known" (events with a new or a known wamid), "linked" (new wa_id-BSUID links),
    "skipped" (the first 20 unreadable parts with path and reason) and "skipped_not_listed" (the rest).
    Raises WebhookRefused (nothing stored).
    """
    if not app_secret:
        raise WebhookRefused(503, "POLICY_WHATSAPP_APP_SECRET is not configured, so no webhook can be verified",
                             {"POLICY_WHATSAPP_APP_SECRET": ["not configured: set it to the Meta app's secret"]})
    if not meta.signature_valid(body, signature, app_secret):
        raise WebhookRefused(401, f"{SIGNATURE_HEADER} is missing or does not match the body",
                             {f"headers.{SIGNATURE_HEADER}": [
                                 "missing or not the HMAC-SHA256 of the body under the app secret"]})
    try:
        document = meta.parse_payload(body)
    except BodyRefused as refused:
        raise WebhookRefused(refused.status, refused.message, refused.errors) from None
    errors = meta.envelope_errors(document)
    if errors:
        raise WebhookRefused(422, error_message(errors), bounded_errors(errors))
    # A storage fault here propagates (store.database.STORAGE_FAULTS: the web answers 503 with Retry-After):
    # nothing was stored, so nothing is acknowledged, and Meta delivers the payload again.
    stored = raw_webhooks.store(body, now)
    if process and not stored.duplicate:
        process_one(stored.id, settings or Settings(), document=document, now=now)
    return {**raw_webhooks.receipt(stored.id), "duplicate": stored.duplicate}


def process_one(raw_id: int, settings: Settings, *, document: Any = None, now: datetime | None = None,
                retry_failed: bool = False) -> dict[str, Any] | None:
    """Claim one stored payload and store its events; its receipt ({"status", "new", "known", "linked",
    "skipped"...}), or None when another processor holds it or it is already done.

    An error leaves the payload pending (retried after a lease) or, after `max_attempts` claims, `failed`;
    it is logged, never raised.
    """
    try:
        claimed = raw_webhooks.claim(raw_id, settings.lease, now, retry_failed=retry_failed)
    except database.STORAGE_FAULTS as error:
        if not contended(error):
            raise
        # Another writer held the database for the whole busy_timeout: the payload stays as it was, for a later round.
        log.warning("webhook payload %s not claimed: the database is busy (%s); it stays pending", raw_id, error)
        database.discard_connection()
        return None
    if claimed is None:
        return None
    progress = _Progress(claimed)
    try:
        if document is None:
            document = meta.parse_payload(claimed.body)
        reading = meta.read(document, claimed.received_at)
        counts = _store(reading.events, progress, settings)
        result = {**counts, **_listed(reading.skipped)}
        if not raw_webhooks.finish(progress.claim, result):
            return None
        return {"status": raw_webhooks.DONE, **result}
    except raw_webhooks.LeaseLost as lost:
        log.warning("webhook payload left to another processor: %s", lost)
        return None
    except database.STORAGE_FAULTS as error:
        if not contended(error):
            return _failed(raw_id, claimed, progress, error, settings)
        # Contention is no failure of the payload: its committed batches stay, the rest is retried soon, and the
        # attempt is given back (else sustained contention alone would make it `failed`).
        log.warning("webhook payload %s deferred after %s of its events: the database is busy (%s); retried in "
                    "%g s, the attempt not counted", raw_id, progress.claim.progress, error,
                    settings.contended_retry_seconds)
        database.discard_connection()
        try:
            raw_webhooks.defer(progress.claim, f"deferred: {type(error).__name__}: {error}",
                               timedelta(seconds=settings.contended_retry_seconds))
        except database.STORAGE_FAULTS as again:
            log.warning("webhook payload %s: its deferral was not recorded (%s); it is retried after its lease",
                        raw_id, again)
            database.discard_connection()
        return {"status": raw_webhooks.PENDING}
    except Exception as error:  # noqa: BLE001 - whatever breaks, the payload must stay and be retried
        return _failed(raw_id, claimed, progress, error, settings)


def _failed(raw_id: int, claimed: raw_webhooks.Claim, progress: _Progress, error: Exception, settings: Settings
            ) -> dict[str, Any]:
    """Log an attempt's error with its traceback and release the claim (pending again after a lease, or failed)."""
    log.error("webhook payload %s not processed (attempt %s)", raw_id, claimed.attempts, exc_info=error)
    _close_broken_transaction(error)
    status = raw_webhooks.fail(progress.claim, f"{type(error).__name__}: {error}", settings.max_attempts,
                               retry_after=settings.lease)
    return {"status": status}


def contended(error: BaseException) -> bool:
    """Whether a database error is contention — another writer held the lock longer than this one would wait
    (SQLite's "database is locked" after busy_timeout; PostgreSQL's lock timeout, deadlock or serialization
    failure) — rather than a fault of the storage or of the query."""
    cause = error.__cause__ or error.__context__
    code = getattr(cause, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    if getattr(cause, "pgcode", None) in POSTGRES_CONTENTION:
        return True
    return "database is locked" in str(error) or "database table is locked" in str(error)


def process_pending(settings: Settings | None = None, *, limit: int | None = None, retry_failed: bool = False
                    ) -> dict[str, int]:
    """Process every payload left pending (and, with `retry_failed`, failed ones), oldest first, each once.

    Returns {"processed": payloads this call finished, "failed": payloads that failed this time,
    "pending": payloads still waiting afterwards (held by another processor, or to be retried)}.
    """
    settings = settings or Settings()
    tried: set[int] = set()
    counts = {"processed": 0, "failed": 0}
    while limit is None or len(tried) < limit:
        batch = [raw_id for raw_id in raw_webhooks.claimable(20 + len(tried), retry_failed=retry_failed)
                 if raw_id not in tried]
        if not batch:
            break
        for raw_id in batch[: None if limit is None else limit - len(tried)]:
            tried.add(raw_id)
            result = process_one(raw_id, settings, retry_failed=retry_failed)
            if result is None:
                continue
            counts["processed" if result["status"] == raw_webhooks.DONE else "failed"] += 1
    backlog = raw_webhooks.backlog()
    return {**counts, "pending": backlog["pending"]}


def backlog() -> dict[str, Any]:
    """Stored payloads not yet processed: {"pending", "failed", "oldest_pending_seconds" (None if none)}."""
    return raw_webhooks.backlog()


def payload(raw_id: int) -> dict[str, Any] | None:
    """A stored payload's receipt (id, status, received_at, attempts, progress, error, processed_at, and once
    processed its counts and skipped parts); None when there is none with that id."""
    return raw_webhooks.receipt(raw_id)


def _listed(skipped: list[meta.Skipped]) -> dict[str, Any]:
    """The skipped parts as a receipt lists them (the first MAX_ERRORS), each also logged; the rest counted."""
    listed = [{"path": part.path, "reason": part.reason} for part in skipped[:MAX_ERRORS]]
    for part in listed:
        log.warning("webhook part skipped", extra=part)
    answer: dict[str, Any] = {"skipped": listed}
    if len(skipped) > MAX_ERRORS:
        answer["skipped_not_listed"] = len(skipped) - MAX_ERRORS
        log.warning("webhook parts skipped, not listed", extra={"count": answer["skipped_not_listed"]})
    return answer


@dataclass
class _Progress:
    """The claim as the last committed batch renewed it (what `finish` and `fail` must name)."""

    claim: raw_webhooks.Claim


def _store(events: list[meta.Event], progress: _Progress, settings: Settings) -> dict[str, int]:
    """Store the events from the claim's progress on, one transaction per batch (with the progress and a renewed
    lease); the counts, those of earlier attempts included. A batch holds at most `batch_size` events and, on
    SQLite, ends once it has held the write lock `batch_seconds` (Settings: why).

    Within a batch, messages, calls, echoes and links (each stored once by its key, in any order) go in multi-row
    INSERTs at the batch's end; statuses and business-state events are stored one by one, in payload order.
    """
    claimed = progress.claim
    counts = {"new": 0, "known": 0, "linked": 0, **claimed.partial}
    sqlite = isinstance(database.database_proxy.obj, peewee.SqliteDatabase)
    position = claimed.progress
    while position < len(events):
        started = time.monotonic()
        with _batch_transaction(sqlite, settings):
            messages: list[meta.Inbound | meta.Call | meta.Echo] = []
            links: list[meta.Link] = []
            end = position
            while end < len(events) and end - position < settings.batch_size:
                event = events[end]
                end += 1
                if isinstance(event, meta.Inbound | meta.Call | meta.Echo):
                    messages.append(event)
                elif isinstance(event, meta.Link):
                    links.append(event)
                else:
                    _store_event(event, counts, claimed.received_at)
                    if sqlite and time.monotonic() - started >= settings.batch_seconds:
                        break
            new = histories.store_messages(messages)
            counts["new"] += new
            counts["known"] += len(messages) - new
            counts["linked"] += histories.store_links(links)
            progress.claim = raw_webhooks.advance(progress.claim, end, counts, settings.lease)
        position = end
        if sqlite and position < len(events):
            time.sleep(settings.yield_seconds)
    return counts


@contextlib.contextmanager
def _batch_transaction(sqlite: bool, settings: Settings) -> Iterator[None]:
    """One batch's transaction. On SQLite it takes the write lock at BEGIN (IMMEDIATE: a deferred transaction whose
    first statement reads — a template change looks its template up — could not write after another connection's
    commit, and would fail at once with "database is locked"), and waits for it politely: SQLite's busy handler is
    switched off for the BEGIN, which is retried every `yield_seconds` up to the connection's busy_timeout. Why: a
    busy handler that has just started waiting polls after 1, 2, 5 … ms, one that has waited long every 100 ms, so
    the other worker's processor, fresh from its pause, would win every gap a batch leaves over a decision's log
    commit that has been waiting longer; polling no faster than the gap lasts leaves it to the commit. Raises the
    OperationalError ("database is locked") when the lock stayed taken that long."""
    if not sqlite:
        with write_transaction():
            yield
        return
    db = database.database_proxy.obj
    patience = db.execute_sql("PRAGMA busy_timeout").fetchone()[0] / 1000
    deadline = time.monotonic() + patience
    with contextlib.ExitStack() as stack:
        db.execute_sql("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    stack.enter_context(db.atomic("IMMEDIATE"))
                    break
                except peewee.OperationalError as error:
                    if not contended(error) or time.monotonic() >= deadline:
                        raise
                    time.sleep(settings.yield_seconds)
        finally:
            db.execute_sql(f"PRAGMA busy_timeout = {int(patience * 1000)}")
        yield


def _store_event(event: meta.Event, counts: dict[str, int], received_at: datetime) -> None:
    if isinstance(event, meta.Status):
        counts["new" if histories.store_status(event) else "known"] += 1
        _store_billing(event)
    elif isinstance(event, meta.NumberSeen):
        state.learn_number(event.phone_number_id, event.waba_id, event.at)
    elif isinstance(event, meta.NumberChange):
        state.record_number_change(event.phone_number_id, event.old_contact, event.new_contact, event.at)
    elif isinstance(event, meta.TemplateChange):
        state.record_template(event, received_at)
    elif isinstance(event, meta.Preference):
        state.record_preference(event.phone_number_id, event.contact, event.value, event.at, event.source)
    elif isinstance(event, meta.AccountChange):
        state.record_account(event.waba_id, event.field, event.event, event.at, event.payload)
    elif isinstance(event, meta.GroupEvent):
        state.record_group_event(event)
    else:  # pragma: no cover - a reader yielding a new kind of event must be given its store here
        raise TypeError(f"no store for {type(event).__name__}")


def _store_billing(status: meta.Status) -> None:
    """What a status tells about billing: Meta's pricing, the decision it was sent under, its errors; a user
    who stopped marketing (131050); a template Meta paused or disabled (132015/132016)."""
    billing = state.Billing(
        wamid=status.wamid, phone_number_id=status.phone_number_id, contact=status.contact, at=status.at,
        status=status.status, pricing=status.pricing, decision_id=status.decision_id,
        errors=tuple({k: e[k] for k in ("code", "title", "message") if k in e} for e in status.errors or ()))
    state.record_billing(billing)
    codes = status.error_codes()
    if STOPPED_MARKETING in codes:
        state.record_preference(status.phone_number_id, status.contact, "stop", status.at,
                                f"status error {STOPPED_MARKETING} on {status.wamid}")
    for code in sorted(codes & set(TEMPLATE_ERRORS)):
        if status.decision_id and status.waba_id:
            _template_refused(billing, status.waba_id, code)


def _template_refused(billing: state.Billing, waba_id: str, code: int) -> None:
    """A send refused with 132015/132016 tells the registry its template is paused/disabled; the template is
    the one the linked decision's request named (statuses do not name templates)."""
    logged = decision_log.get(billing.decision_id or "")
    template = ((logged or {}).get("request", {}).get("send") or {}).get("template") if logged else None
    if not isinstance(template, dict) or not template.get("name") or not template.get("language"):
        return
    state.record_template(meta.TemplateChange(
        waba_id=waba_id, name=template["name"], language=template["language"],
        source=f"status error {code} on {billing.wamid}", effective_at=billing.at, event=TEMPLATE_ERRORS[code],
        status=TEMPLATE_ERRORS[code], reason=f"Meta refused the send with {code}"))


def _close_broken_transaction(error: Exception) -> None:
    # The atomic block has rolled back. After a storage fault the connection may be unusable (read-only, cut,
    # PostgreSQL's "current transaction is aborted"): a fresh one lets `fail` record the error.
    if isinstance(error, database.STORAGE_FAULTS):
        database.discard_connection()
        return
    db = database.database_proxy
    try:
        if not db.is_closed() and db.in_transaction():
            db.rollback()
    except peewee.PeeweeException:
        database.discard_connection()


class Processor:
    """The background thread of one process that processes stored payloads: woken by each one received
    (`notify`), and every `poll_seconds` to finish payloads other processes left behind.

    Safe under gunicorn: the thread is (re)started lazily in the process that uses it (`ensure_running`), so a
    worker forked from a preloaded master gets its own.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._database: peewee.Database | None = None
        self._lock = threading.Lock()
        self.rounds = 0  # completed rounds, for tests and diagnostics

    def ensure_running(self) -> None:
        """Start the thread in this process unless it runs already."""
        if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            # A forked child inherits the events' state, not the thread: start afresh.
            self._wake, self._stop = threading.Event(), threading.Event()
            self._database = database.database_proxy.obj
            self._thread = threading.Thread(target=self._run, name="webhook-processor", daemon=True)
            self._pid = os.getpid()
            self._thread.start()

    def notify(self) -> None:
        """A payload was stored: process it now."""
        self.ensure_running()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current batch (pending payloads stay pending)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._pid == os.getpid():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.settings.poll_seconds)
            self._wake.clear()
            if self._stop.is_set() or database.database_proxy.obj is not self._database:
                # Another app in this process opened another database (tests do): this thread's app is gone.
                break
            try:
                process_pending(self.settings)
            except database.STORAGE_FAULTS as fault:
                # An outage: one line per round, no traceback (the payloads stay pending and are retried).
                database.background_fault("webhook processing round failed, the payloads stay pending", fault)
            except Exception:  # noqa: BLE001 - the thread must outlive any other failure
                log.exception("webhook processing round failed; the payloads stay pending")
            finally:
                _release_connection()
            self.rounds += 1


def _release_connection() -> None:
    # Hand the connection back (PostgreSQL pool) between rounds; SQLite reopens its file cheaply.
    db = database.database_proxy
    try:
        if db.obj is not None and not db.is_closed():
            db.close()
    except peewee.PeeweeException:
        pass
