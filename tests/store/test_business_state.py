"""The business state store: which template state is in force when, counts by scope and period, and
billing rows that survive concurrent, repeated and out-of-order statuses."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from policy_service.store import business_state as state

from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, WABA_ID

AT = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)


def change(minutes: int, source: str = "message_template_status_update", **parts) -> state.TemplateChange:
    return state.TemplateChange(WABA_ID, "order_update", "en_US", source, AT + timedelta(minutes=minutes), **parts)


@pytest.fixture
def store(app):
    with app.app_context():
        yield


def test_the_latest_event_in_force_decides_each_part_separately(store):
    """Status and category come from the latest event taking effect by the time, each on its own."""
    state.record_template(change(0, status="APPROVED", category="utility"))
    state.record_template(change(10, status="PAUSED"))
    state.record_template(change(20, "template_category_update", category="marketing", previous_category="utility"))
    at_15 = state.template_state(WABA_ID, "order_update", "en_US", AT + timedelta(minutes=15))
    assert (at_15.status.value, at_15.category.value) == ("PAUSED", "utility")
    at_30 = state.template_state(WABA_ID, "order_update", "en_US", AT + timedelta(minutes=30))
    assert (at_30.status.value, at_30.category.value) == ("PAUSED", "marketing")
    assert at_30.category.source == "template_category_update webhook at 2025-09-01T09:20:00+00:00"
    assert state.template_state(WABA_ID, "order_update", "fr", AT) is None


def test_an_import_stands_in_before_any_event_and_a_later_event_wins(store):
    """An import describes the state when imported; before any event took effect it is the best known."""
    state.import_templates([change(60, state.IMPORT_SOURCE, status="APPROVED", category="utility")])
    state.record_template(change(120, status="DISABLED"))
    assert state.template_state(WABA_ID, "order_update", "en_US", AT).status.value == "APPROVED"
    assert state.template_state(WABA_ID, "order_update", "en_US", AT + timedelta(hours=3)).status.value == "DISABLED"


def billing(wamid: str, status: str, minutes: int, category: str = "service", contact: str = CONTACT,
            phone_number_id: str = PHONE_NUMBER_ID, **extra) -> state.Billing:
    return state.Billing(wamid, phone_number_id, contact, AT + timedelta(minutes=minutes), status,
                         pricing={"category": category, "pricing_model": "PMP"}, **extra)


def test_counts_by_number_contact_category_period_and_distinct_users(store):
    """count_messages serves every scope: a number, several, a contact; messages or distinct users."""
    for index, (category, contact, number) in enumerate([
            ("service", "1", "A"), ("service", "1", "A"), ("utility", "2", "A"), ("marketing", "2", "B"),
            ("service", "3", "B")]):
        state.record_billing(billing(f"w{index}", "delivered", index, category, contact, number))
    state.record_billing(billing("failed", "failed", 1, "service", "1", "A"))
    window = {"since": AT, "until": AT + timedelta(hours=1)}
    assert state.count_messages(**window, categories=("service",), phone_number_id="A") == 2
    assert state.count_messages(**window, categories=("service",), phone_number_ids=("A", "B")) == 3
    assert state.count_messages(**window, categories=("service", "utility", "marketing"), phone_number_ids=("A", "B"),
                                distinct_contacts=True) == 3
    assert state.count_messages(**window, categories=("utility", "marketing"), contact="2") == 2
    assert state.count_messages(**window, categories=("service",), market="ZZ", phone_number_id="A") == 2
    assert state.count_messages(since=AT + timedelta(minutes=2), until=AT + timedelta(hours=1),
                                categories=("service",), phone_number_id="A") == 0
    state.record_billing(billing("w.in", "delivered", 5, "service", "919876543210", "A"))
    assert state.count_messages(**window, categories=("service",), market="IN", phone_number_id="A") == 1


def test_concurrent_repeated_statuses_leave_one_row_with_the_strongest_status_and_its_link(store, app):
    """Meta's retries on several workers at once: one billing row, the strongest status, the decision link kept."""
    updates = [billing("wamid.c", "sent", 0, decision_id="d-1"), billing("wamid.c", "delivered", 1),
               billing("wamid.c", "read", 2, errors=({"code": 131047},))] * 6

    def write(update):
        with app.app_context():
            state.record_billing(update)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(write, updates))
    rows = list(state.MessageBilling.select().where(state.MessageBilling.wamid == "wamid.c"))
    assert len(rows) == 1
    assert (rows[0].status, rows[0].decision_id, rows[0].at) == ("read", "d-1", AT.replace(tzinfo=None))
    assert rows[0].errors == '[{"code": 131047}]'


@pytest.mark.parametrize(("value", "expected"), [
    (1758000000, datetime(2025, 9, 16, 5, 20, tzinfo=UTC)),
    ("1758000000", datetime(2025, 9, 16, 5, 20, tzinfo=UTC)),
    ("2026-04-19T13:59:20+0000", datetime(2026, 4, 19, 13, 59, 20, tzinfo=UTC)),
    ("2026-04-19T13:59:20Z", datetime(2026, 4, 19, 13, 59, 20, tzinfo=UTC)),
])
def test_meta_times_in_account_events(value, expected):
    """Account events write times as Unix seconds or ISO 8601 with a +0000 offset."""
    assert state.meta_time(value) == expected
