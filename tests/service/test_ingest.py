"""Webhook ingestion: stored first and answered, processed after in batches, exactly once, never lost
(a retried body, a crash mid-way, a lost lease, repeated failures, kill -9)."""

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import peewee
import pytest
from click.testing import CliRunner

from policy_service import create_app, store
from policy_service.cli import main
from policy_service.service import ingest
from policy_service.store import business_state, histories, raw_webhooks

from ..conftest import ROOT, upgraded
from ..meta_business_payloads import template_status
from ..meta_payloads import APP_SECRET, CONTACT, PHONE_NUMBER_ID, VERIFY_TOKEN, notification, signed

T0 = 1754989200  # 2025-08-12T09:00:00Z


def many(count: int, prefix: str = "wamid.m", contact: str = CONTACT) -> dict:
    """One payload of `count` inbound text messages."""
    return notification({"messages": [
        {"from": contact, "id": f"{prefix}{index}", "timestamp": str(T0 + index), "type": "text",
         "text": {"body": "hi"}} for index in range(count)]})


def deferred(database_url, **settings):
    """An app that stores payloads and leaves processing to process_pending (WEBHOOK_PROCESSING off)."""
    return create_app({"TESTING": True, "DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET,
                       "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN, "WEBHOOK_PROCESSING": "off", **settings})


def post(app, body):
    raw, headers = signed(body)
    response = app.test_client().post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def wamids(app, contact=CONTACT):
    with app.app_context():
        return [row.wamid for row in histories.stored_messages(PHONE_NUMBER_ID, contact)]


def test_a_payload_is_stored_as_received_answered_and_processed_after(database_url):
    """The answer comes once the body is stored; its events are stored by the next processing, once."""
    app = deferred(database_url)
    raw, _ = signed(many(3))
    answer = post(app, many(3))
    assert (answer["status"], answer["duplicate"], answer["new"], answer["skipped"]) == ("pending", False, None, None)
    assert wamids(app) == []
    with app.app_context():
        assert raw_webhooks.RawWebhook.get_by_id(answer["id"]).body.encode() == raw
        assert ingest.backlog()["pending"] == 1
        assert ingest.process_pending(ingest.Settings(batch_size=2)) == {"processed": 1, "failed": 0, "pending": 0}
        receipt = ingest.payload(answer["id"])
        assert ingest.process_pending() == {"processed": 0, "failed": 0, "pending": 0}
    assert wamids(app) == ["wamid.m0", "wamid.m1", "wamid.m2"]
    # progress counts events: the three messages and the number's WABA (entry.id).
    assert (receipt["status"], receipt["new"], receipt["known"], receipt["progress"], receipt["attempts"]) == (
        "done", 3, 0, 4, 1)


def test_a_change_nested_too_deep_is_skipped_when_processed_after(database_url):
    """A payload stored and processed later (not inline) reads the same way as on receipt: a change nested 35
    levels deep is listed in the receipt's `skipped`, the message beside it stored (it was refused unstored)."""
    app = deferred(database_url)
    body = many(1)
    deep: dict = {}
    for _ in range(35):
        deep = {"a": deep}
    body["entry"][0]["changes"].append({"field": "phone_number_name_update", "value": deep})
    answer = post(app, body)
    with app.app_context():
        assert ingest.process_pending() == {"processed": 1, "failed": 0, "pending": 0}
        receipt = ingest.payload(answer["id"])
    assert wamids(app) == ["wamid.m0"]
    assert receipt["skipped"] == [{"path": "entry.0.changes.1", "reason": {"_": [
        "nested deeper than 32 levels: the change is not read (the stored payload keeps it)"]}}]


def test_a_retried_body_adds_no_row_and_a_repeated_event_nothing(database_url):
    """Meta's retry (the same body) is found by its digest; the same template change in another body adds nothing."""
    app = deferred(database_url)
    first, again = post(app, many(2)), post(app, many(2))
    assert (again["id"], again["status"], again["duplicate"]) == (first["id"], "pending", True)
    body = template_status("order_update", "en", "PAUSED", T0)
    other = template_status("order_update", "en", "PAUSED", T0)
    other["entry"][0]["changes"].append(template_status("welcome", "en", "APPROVED", T0)["entry"][0]["changes"][0])
    post(app, body)
    post(app, other)
    with app.app_context():
        assert raw_webhooks.RawWebhook.select().count() == 3
        ingest.process_pending()
        history = business_state.template_history("102290129340398")
    assert sorted((event["name"], event["status"]) for event in history) == [("order_update", "PAUSED"),
                                                                           ("welcome", "APPROVED")]


def test_a_payload_cut_short_goes_on_from_its_last_batch(database_url, monkeypatch):
    """A failure in the third batch keeps the two committed batches (the number's WABA and three messages); the
    retry stores the rest, each event once."""
    app = deferred(database_url)
    answer = post(app, many(10))
    settings = ingest.Settings(batch_size=2, lease_seconds=30)
    original, calls = histories.store_messages, []

    def breaks_in_the_third_batch(messages):
        calls.extend(message.wamid for message in messages)
        if len(calls) == 5:
            raise peewee.OperationalError("disk I/O error")
        return original(messages)

    monkeypatch.setattr(histories, "store_messages", breaks_in_the_third_batch)
    with app.app_context():
        assert ingest.process_one(answer["id"], settings) == {"status": "pending"}
        state = ingest.payload(answer["id"])
        assert (state["progress"], state["new"], state["status"]) == (4, 3, "pending")
        assert "disk I/O error" in state["error"]
    assert wamids(app) == ["wamid.m0", "wamid.m1", "wamid.m2"]  # the failed batch rolled back whole
    with app.app_context():
        # Not before the retry delay (one lease)...
        assert ingest.process_one(answer["id"], settings) is None
        later = datetime.now(UTC) + timedelta(seconds=31)
        result = ingest.process_one(answer["id"], settings, now=later)
    assert (result["status"], result["new"], result["known"]) == ("done", 10, 0)
    assert wamids(app) == [f"wamid.m{index}" for index in range(10)]
    # The failed batch (m3, m4) alone was repeated.
    assert [calls.count(f"wamid.m{index}") for index in range(10)] == [1, 1, 1, 2, 2, 1, 1, 1, 1, 1]


def test_a_live_lease_keeps_other_processors_off_and_a_lost_one_stops_its_holder(database_url):
    """One claim at a time; after the lease another processor takes over and the first one may not commit."""
    app = deferred(database_url)
    answer = post(app, many(1))
    lease, now = timedelta(seconds=60), datetime.now(UTC)
    with app.app_context():
        first = raw_webhooks.claim(answer["id"], lease, now)
        assert first is not None and raw_webhooks.claim(answer["id"], lease, now + timedelta(seconds=59)) is None
        second = raw_webhooks.claim(answer["id"], lease, now + timedelta(seconds=61))
        assert second is not None and second.attempts == 2
        with pytest.raises(raw_webhooks.LeaseLost):
            raw_webhooks.advance(first, 1, {}, lease)
        assert raw_webhooks.finish(first, {}) is False
        assert raw_webhooks.finish(second, {"new": 1}) is True
        assert ingest.payload(answer["id"])["status"] == "done"


def test_a_payload_failing_every_attempt_is_kept_as_failed_and_retried_on_request(database_url, monkeypatch):
    """After max_attempts the payload is `failed`: kept, counted in the backlog, and processed by --retry-failed."""
    app = deferred(database_url, WEBHOOK_MAX_ATTEMPTS=2, WEBHOOK_LEASE_SECONDS=1)
    answer = post(app, many(1))
    settings = ingest.Settings(max_attempts=2, lease_seconds=0.01)

    def broken(messages):
        raise RuntimeError("a bug")

    monkeypatch.setattr(histories, "store_messages", broken)
    with app.app_context():
        assert ingest.process_pending(settings)["failed"] == 1
        time.sleep(0.02)
        assert ingest.process_pending(settings) == {"processed": 0, "failed": 1, "pending": 0}
        assert ingest.backlog()["failed"] == 1 and ingest.payload(answer["id"])["error"] == "RuntimeError: a bug"
        monkeypatch.undo()
        assert ingest.process_pending(settings) == {"processed": 0, "failed": 0, "pending": 0}
    result = CliRunner().invoke(main, ["webhooks", "process", "--retry-failed", "--database-url", database_url,
                                       "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"processed": 1, "failed": 0, "pending": 0}
    assert wamids(app) == ["wamid.m0"]


def test_the_command_processes_what_is_pending_and_shows_the_backlog(database_url):
    """`policy-service webhooks process` finishes pending payloads; `webhooks backlog` says what is left."""
    app = deferred(database_url)
    post(app, many(2))
    backlog = CliRunner().invoke(main, ["webhooks", "backlog", "--database-url", database_url])
    assert json.loads(backlog.output.strip().splitlines()[-1])["pending"] == 1
    result = CliRunner().invoke(main, ["webhooks", "process", "--database-url", database_url])
    assert result.exit_code == 0 and "processed 1 payload(s), 0 failed, 0 still pending" in result.output
    assert wamids(app) == ["wamid.m0", "wamid.m1"]


def test_the_backlog_is_visible_in_metrics_and_over_http(database_url):
    """/metrics has the pending and failed gauges; /v1/admin/webhooks gives the backlog and each payload."""
    app = deferred(database_url)
    answer = post(app, many(1))
    client = app.test_client()
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'policy_webhook_backlog_payloads{status="pending"} 1.0' in metrics
    assert "policy_webhook_backlog_oldest_seconds" in metrics
    backlog = client.get("/v1/admin/webhooks/backlog").json
    assert (backlog["pending"], backlog["failed"]) == (1, 0) and backlog["oldest_pending_seconds"] >= 0
    assert client.get(f"/v1/admin/webhooks/{answer['id']}").json["status"] == "pending"
    assert client.get("/v1/admin/webhooks/999").status_code == 404
    with app.app_context():
        ingest.process_pending()
    assert client.get(f"/v1/admin/webhooks/{answer['id']}").json["new"] == 1
    assert 'policy_webhook_backlog_payloads{status="pending"} 0.0' in client.get("/metrics").get_data(as_text=True)


def test_a_database_that_cannot_store_the_payload_is_a_503(database_url, monkeypatch):
    """Nothing stored, nothing acknowledged: a 503 with Retry-After (Meta delivers the payload again)."""
    app = deferred(database_url)

    def unavailable(body, received_at=None):
        raise peewee.OperationalError("could not connect to server")

    monkeypatch.setattr(raw_webhooks, "store", unavailable)
    raw, headers = signed(many(1))
    response = app.test_client().post("/v1/webhooks/whatsapp", data=raw, headers=headers)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "nothing was stored" in response.json["message"]


def test_an_outage_in_the_background_thread_is_one_warning_line_per_round_without_a_traceback(database_url,
                                                                                          monkeypatch, caplog):
    """The database gone under the background thread (a PostgreSQL restart): each round logs one WARNING naming the
    fault's first line, no ERROR and no traceback (a newcomer's trial counted 20 tracebacks in an 8 s outage), and
    the thread goes on."""
    app = create_app({"DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET,
                      "WEBHOOK_PROCESSING": "background", "WEBHOOK_POLL_SECONDS": 0.05})

    def gone(settings):
        raise peewee.OperationalError("server closed the connection unexpectedly\n\tThis probably means ...")

    monkeypatch.setattr(ingest, "process_pending", gone)
    processor = app.extensions["policy_service.webhook_processor"]
    try:
        with caplog.at_level(logging.INFO, logger="policy_service"):
            processor.ensure_running()
            deadline = time.monotonic() + 10
            while processor.rounds < 3 and time.monotonic() < deadline:
                time.sleep(0.02)
        assert processor.rounds >= 3
    finally:
        processor.stop()
        store.close_all()
    lines = [r for r in caplog.records if "webhook processing round failed" in r.getMessage()]
    assert lines and all(r.levelno == logging.WARNING and r.exc_info is None for r in lines)
    assert "OperationalError: server closed the connection unexpectedly)" in lines[0].getMessage()


def test_the_background_thread_processes_after_the_answer(database_url):
    """WEBHOOK_PROCESSING=background (the default outside tests): a big body is answered pending and stored moments
    later; a small one is stored before the answer."""
    app = create_app({"DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET,
                      "WEBHOOK_PROCESSING": "background", "WEBHOOK_POLL_SECONDS": 0.2,
                      "WEBHOOK_INLINE_MAX_BYTES": 2000})
    try:
        small = post(app, many(1, prefix="wamid.small"))
        assert (small["status"], small["new"]) == ("done", 1)  # a small body is read before the answer
        answer = post(app, many(50))
        assert answer["status"] == "pending"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with app.app_context():
                if ingest.payload(answer["id"])["status"] == "done":
                    break
            time.sleep(0.05)
        assert len(wamids(app)) == 51
        with app.app_context():
            assert ingest.payload(answer["id"])["new"] == 50
    finally:
        app.extensions["policy_service.webhook_processor"].stop()
        store.close_all()


KILLED_CHILD = """
import os, sys, time
from policy_service import create_app
from tests.meta_payloads import APP_SECRET, signed
from tests.service.test_ingest import many

app = create_app({"DATABASE_URL": sys.argv[1], "WHATSAPP_APP_SECRET": APP_SECRET, "WEBHOOK_PROCESSING": "background",
                  "WEBHOOK_BATCH_SIZE": 50, "WEBHOOK_LEASE_SECONDS": 1, "WEBHOOK_INLINE_MAX_BYTES": 0})
raw, headers = signed(many(2000))
response = app.test_client().post("/v1/webhooks/whatsapp", data=raw, headers=headers)
print(response.status_code, response.json["id"], flush=True)
time.sleep(60)  # the parent kills this process with SIGKILL while its thread processes
"""


def test_kill_9_right_after_the_answer_loses_nothing(tmp_path):
    """A process killed (SIGKILL) after answering 200, while its thread stores the events: the payload stays pending
    with its committed batches, and the next processor stores the rest, each message once. (On a SQLite file the
    two processes share; PostgreSQL goes through the same claims, tested above on both.)"""
    database_url = upgraded(f"sqlite:///{tmp_path / 'killed.sqlite3'}")
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, database_url], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        status, raw_id = child.stdout.readline().split()
        time.sleep(0.05)  # let the thread commit a batch or two (or none: either way nothing may be lost)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        child.stdout.close()
    assert status == "200"
    app = deferred(database_url)
    with app.app_context():
        killed = ingest.payload(int(raw_id))
        assert killed["status"] == "pending" and killed["progress"] < 2000
        time.sleep(1.1)  # the dead worker's lease (1 s) runs out
        assert ingest.process_pending(ingest.Settings(batch_size=50))["processed"] == 1
        done = ingest.payload(int(raw_id))
        rows = histories.StoredMessage.select().count()
    assert (done["status"], done["new"], done["known"], rows) == ("done", 2000, 0, 2000)


def statuses(count: int, prefix: str = "wamid.s") -> dict:
    """One payload of `count` delivered statuses with PMP pricing (each one a message row and a billing row)."""
    return notification({"statuses": [
        {"id": f"{prefix}{index}", "status": "delivered", "timestamp": str(T0 + index), "recipient_id": CONTACT,
         "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}}
        for index in range(count)]})


def sqlite_file(database_url: str) -> str:
    if not database_url.startswith("sqlite:///"):
        pytest.skip("SQLite's one write lock")
    return database_url.removeprefix("sqlite:///")


def test_a_locked_database_defers_the_payload_without_an_attempt_or_a_traceback(database_url, monkeypatch, caplog):
    """Another connection holding SQLite's write lock past busy_timeout is contention, not a failure: the batch
    rolls back, the payload is pending again after `contended_retry_seconds` (not a lease) with its attempt given
    back, the log has a WARNING and no ERROR (no traceback); the next round stores it. Today's code logged an ERROR
    with a traceback, counted the attempt and waited a whole lease."""
    path = sqlite_file(database_url)
    app = deferred(database_url)
    answer = post(app, statuses(3))
    holder = sqlite3.connect(path, isolation_level=None)
    original_claim, original_defer = raw_webhooks.claim, raw_webhooks.defer

    def claim_then_lock(*args, **kwargs):
        claimed = original_claim(*args, **kwargs)
        holder.execute("BEGIN IMMEDIATE")  # another writer takes the lock right after the claim
        return claimed

    def unlock_then_defer(*args, **kwargs):
        holder.execute("ROLLBACK")
        return original_defer(*args, **kwargs)

    monkeypatch.setattr(raw_webhooks, "claim", claim_then_lock)
    monkeypatch.setattr(raw_webhooks, "defer", unlock_then_defer)
    settings = ingest.Settings(contended_retry_seconds=2)
    with app.app_context():
        store.database_proxy.execute_sql("PRAGMA busy_timeout = 200")
        with caplog.at_level("WARNING", logger="policy_service.webhooks"):
            assert ingest.process_one(answer["id"], settings) == {"status": "pending"}
        state = ingest.payload(answer["id"])
        assert (state["status"], state["attempts"], state["progress"]) == ("pending", 0, 0)
        assert state["error"].startswith("deferred: OperationalError: database is locked")
        row = raw_webhooks.RawWebhook.get_by_id(answer["id"])
        assert timedelta(seconds=1) < row.claimed_until - datetime.now(UTC).replace(tzinfo=None) <= timedelta(seconds=2)
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert not any(record.exc_info for record in caplog.records)
    assert "database is busy" in caplog.records[0].getMessage()
    monkeypatch.undo()
    with app.app_context():
        result = ingest.process_one(answer["id"], settings, now=datetime.now(UTC) + timedelta(seconds=3))
        assert (result["status"], result["new"]) == ("done", 3)
        assert ingest.payload(answer["id"])["attempts"] == 1
    holder.close()


def test_a_claim_meeting_a_locked_database_leaves_the_payload_as_it_was(database_url, caplog):
    """A claim that cannot take the write lock is no error either: nothing changes, the round goes on, a WARNING."""
    path = sqlite_file(database_url)
    app = deferred(database_url)
    answer = post(app, many(1))
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with app.app_context():
        store.database_proxy.execute_sql("PRAGMA busy_timeout = 50")
        with caplog.at_level("WARNING", logger="policy_service.webhooks"):
            assert ingest.process_pending() == {"processed": 0, "failed": 0, "pending": 1}
    holder.execute("ROLLBACK")
    holder.close()
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    with app.app_context():
        assert ingest.payload(answer["id"])["attempts"] == 0
        assert ingest.process_pending()["processed"] == 1


def test_contention_is_told_from_faults():
    """SQLite's busy and locked codes (and PostgreSQL's lock SQLSTATEs) are contention; a full disk is not."""
    def wrapped(cause):
        try:
            try:
                raise cause
            except Exception as error:
                raise peewee.OperationalError(str(error)) from error
        except peewee.OperationalError as outer:
            return outer

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    assert ingest.contended(wrapped(busy)) and not ingest.contended(wrapped(full))
    assert ingest.contended(peewee.OperationalError("database is locked"))
    assert not ingest.contended(peewee.OperationalError("disk I/O error"))


def test_a_batch_on_sqlite_ends_after_batch_seconds_and_then_leaves_the_lock_free(database_url, monkeypatch):
    """With batch_seconds 0 every status is its own transaction (progress committed after each), and the processor
    sleeps `yield_seconds` between them (not after the last); batch_size still bounds a batch when time does not."""
    sqlite_file(database_url)
    app = deferred(database_url)
    first, second = post(app, statuses(4, "wamid.a")), post(app, statuses(4, "wamid.b"))
    advanced, slept = [], []
    original = raw_webhooks.advance
    monkeypatch.setattr(raw_webhooks, "advance", lambda claimed, progress, *rest: (
        advanced.append(progress), original(claimed, progress, *rest))[1])
    monkeypatch.setattr(ingest.time, "sleep", slept.append)
    with app.app_context():
        assert ingest.process_one(first["id"], ingest.Settings(batch_seconds=0, yield_seconds=0.01))["new"] == 4
        # Five events: the business number seen (its WABA) and the four statuses.
        assert (advanced, slept) == ([1, 2, 3, 4, 5], [0.01] * 4)
        advanced.clear()
        assert ingest.process_one(second["id"], ingest.Settings(batch_size=3, batch_seconds=60))["new"] == 4
        assert advanced == [3, 5]


def test_a_writer_is_not_starved_while_a_big_payload_is_processed(database_url):
    """Another connection that wants SQLite's write lock (a decision's log commit) gets it within a fraction of a
    second while 600 statuses are stored, instead of waiting out a whole 500-status batch (seconds) and then
    losing the lock to the next batch until its busy_timeout: each probe's wait is measured."""
    path = sqlite_file(database_url)
    app = deferred(database_url)
    answer = post(app, statuses(600))
    probe = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
    probe.execute("CREATE TABLE probe (at REAL)")
    waits, done = [], threading.Event()

    def write_now_and_then():
        while not done.is_set():
            started = time.monotonic()
            probe.execute("BEGIN IMMEDIATE")
            waits.append(time.monotonic() - started)
            probe.execute("INSERT INTO probe VALUES (?)", (started,))
            probe.execute("COMMIT")
            time.sleep(0.05)

    with app.app_context():
        writer = threading.Thread(target=write_now_and_then)
        started = time.monotonic()
        writer.start()
        assert ingest.process_one(answer["id"], ingest.Settings())["new"] == 600
        elapsed = time.monotonic() - started
        done.set()
        writer.join(15)
    probe.close()
    assert len(waits) > 5, (waits, elapsed)
    assert max(waits) < 1.0, (max(waits), elapsed)
