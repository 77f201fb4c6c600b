"""The business state store: which template state is in force when, counts by scope and period, and
billing rows that survive concurrent, repeated and out-of-order statuses."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from policy_service.store import business_state as state
from policy_service.store.database import stored_time
from policy_service.store.histories import StoredMessage

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


def test_a_call_opens_a_window_for_the_messaging_limit_only_from_its_counted_from_instant(store):
    """count_users_reached_outside_window with counted_from {call: t}: a user's call before t opens no window, so
    a template sent after it reached the user outside one (counted); a call from t on opens one (not counted);
    an ignored type never does. The fast count and the row-by-row read agree."""
    start = AT + timedelta(minutes=30)
    calls = {"5511987650001": ("call", 29), "5511987650002": ("call", 30), "5511987650003": ("reaction", 31)}
    for index, (contact, (kind, minutes)) in enumerate(calls.items()):
        StoredMessage.insert(wamid=f"wamid.in.{index}", phone_number_id=PHONE_NUMBER_ID, contact=contact,
                             direction="inbound", at=stored_time(AT + timedelta(minutes=minutes)), type=kind).execute()
        state.record_billing(billing(f"wamid.t{index}", "delivered", 40, "marketing", contact))
    span = {"since": AT, "until": AT + timedelta(hours=1), "categories": ("marketing",),
            "phone_number_ids": (PHONE_NUMBER_ID,), "window": timedelta(hours=24)}
    count = state.count_users_reached_outside_window(**span, ignored_types=frozenset({"reaction"}),
                                                     counted_from={"call": start})
    rows = state._reached_from_rows(**{**span, "since": stored_time(AT), "until": stored_time(span["until"])},
                                    ignored=("reaction",), counted_from={"call": start})
    assert count == 2 and rows == {"5511987650001", "5511987650003"}
    assert state.count_users_reached_outside_window(**span, ignored_types=frozenset({"reaction"})) == 1


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


def test_a_scheduled_ban_gives_its_date_and_a_disable_the_ban(store):
    """The latest DISABLED_UPDATE decides: SCHEDULE_FOR_DISABLE gives account_ban_scheduled_at (its waba_ban_date;
    without one, or one that cannot be read, the event's own time: fail closed, the source says which) and no
    account_banned; DISABLE gives account_banned true; REINSTATE false and no schedule; no state, or one the rules
    do not model, account_banned true (fail closed)."""
    def ban(minutes: int, **info) -> dict:
        state.record_account(WABA_ID, "account_update", state.BAN, AT + timedelta(minutes=minutes), {"ban_info": info})
        return state.account_state(WABA_ID, AT + timedelta(minutes=minutes, seconds=1))

    found = ban(0, waba_ban_state="SCHEDULE_FOR_DISABLE", waba_ban_date="September 10, 2025")
    assert "account_banned" not in found
    assert found["account_ban_scheduled_at"].value == datetime(2025, 9, 10, tzinfo=UTC)
    assert found["account_ban_scheduled_at"].source.endswith("(SCHEDULE_FOR_DISABLE), waba_ban_date September 10, 2025")
    for minutes, written in ((1, "soon"), (2, None)):
        dated = {"waba_ban_date": written} if written else {}
        scheduled = ban(minutes, waba_ban_state="SCHEDULE_FOR_DISABLE", **dated)
        assert scheduled["account_ban_scheduled_at"].value == AT + timedelta(minutes=minutes)
        assert scheduled["account_ban_scheduled_at"].source.endswith("taken from the webhook's time (fail closed)")
    found = ban(3, waba_ban_state="DISABLE", waba_ban_date="September 1, 2025")
    assert found["account_banned"].value is True and "account_ban_scheduled_at" not in found
    found = ban(4, waba_ban_state="REINSTATE")
    assert found["account_banned"].value is False and "account_ban_scheduled_at" not in found
    for minutes, info in ((5, {"waba_ban_state": "PAUSE_WABA"}), (6, {})):
        found = ban(minutes, **info)
        assert found["account_banned"].value is True and found["account_banned"].source.endswith("(fail closed)")


def test_account_events_with_impossible_times_are_skipped_when_read(store):
    """Account events stored before webhooks bounded their times (2000-2999) were read and cited as stored: a
    restriction "until 5138-11-16", a ban or a primary country "webhook at 1970-01-01". account_state skips a stored
    event whose own time or any time in it is outside 2000-2999 (or no time at all), as if it had never been stored
    (as webhooks now skip such a change): the latest possible event of its kind decides, and no impossible time is
    cited."""
    restricted = {"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING"}
    state.record_account(WABA_ID, "account_update", state.RESTRICTION, AT - timedelta(days=2),
                         {"restriction_info": [{**restricted, "expiration": "2025-09-02T00:00:00+0000"}]})
    state.record_account(WABA_ID, "account_update", state.RESTRICTION, AT - timedelta(days=1),
                         {"restriction_info": [{**restricted, "expiration": 99999999999}]})
    state.record_account(WABA_ID, "account_update", state.RESTRICTION, AT - timedelta(hours=1),
                         {"restriction_info": [{**restricted, "expiration": "not a time"}]})
    state.record_account(WABA_ID, "account_update", state.AUTH_INTERNATIONAL, AT - timedelta(days=3),
                         {"auth_international_rate_eligibility": {"start_time": 1738368000}})
    state.record_account(WABA_ID, "account_update", state.AUTH_INTERNATIONAL, AT - timedelta(days=1),
                         {"auth_international_rate_eligibility": {"start_time": 1738368000, "exception_countries": [
                             {"country_code": "IN", "start_time": "5138-11-16T09:46:39+0000"}]}})
    state.record_account(WABA_ID, "account_update", state.AUTH_INTERNATIONAL, AT - timedelta(hours=2),
                         {"auth_international_rate_eligibility": {"start_time": 946684799}})  # 1999-12-31
    state.record_account(WABA_ID, "account_update", state.PRIMARY_COUNTRY, datetime(1970, 1, 1, tzinfo=UTC),
                         {"country": "IN"})
    state.record_account(WABA_ID, "account_update", state.BAN, datetime(1999, 12, 31, tzinfo=UTC),
                         {"ban_info": {"waba_ban_state": "DISABLE"}})
    found = state.account_state(WABA_ID, AT)
    assert "business_region" not in found and "account_banned" not in found, found
    restriction = found["business_initiated_restricted"]
    assert restriction.value is True and restriction.source.endswith(
        "webhook at 2025-08-30T09:00:00+00:00, until 2025-09-02T00:00:00+00:00"), restriction
    eligibility = found["authentication_international_eligibility"]
    assert eligibility.value == {"start_time": datetime(2025, 2, 1, tzinfo=UTC), "exception_countries": []}
    assert eligibility.source.endswith("webhook at 2025-08-29T09:00:00+00:00"), eligibility
    assert not any(year in str(found) for year in ("5138", "1970", "1999")), found


# One Mexican and one Brazilian user, each under both of Meta's wa_id forms of their number, and a US user.
MEXICO = ("5215512345678", "525512345678")
BRAZIL = ("552187654321", "5521987654321")
US = "14155550100"


@pytest.mark.parametrize("contact", [
    *MEXICO, *BRAZIL, US, "552132654321", "US.13491208655302741918", "521abcdefghij", "52551234567",
    "5255123456789", "52155123456789", "5511887654321", "550187654321", "5521587654321", "55219876543210",
    "5521912345678", "5521965432109", "55219x7654321", "", "521", "+5215512345678"])
def test_the_sql_wa_id_key_and_other_form_are_the_python_ones(store, contact):
    """wa_id_key_sql and other_wa_id_form_sql (SQLite's GLOB, PostgreSQL's ~) give what core.identities gives: the
    counts below depend on the two agreeing, for the forms and for everything near them that is no form."""
    from policy_service.core.identities import wa_id_forms, wa_id_key

    state.ContactChange.delete().execute()
    state.ContactChange.insert(phone_number_id="P", old_contact=contact, new_contact="x", at=AT).execute()
    column = state.ContactChange.old_contact
    key, other = state.ContactChange.select(state.wa_id_key_sql(column), state.other_wa_id_form_sql(column)) \
        .tuples().first()
    assert (key, other) == (wa_id_key(contact), wa_id_forms(contact)[-1])


def test_a_user_reached_under_both_wa_id_forms_counts_once(store):
    """The messaging limit counts users: a user whose statuses came under both forms of their number (Mexico's 521
    and 52, Brazil's with and without the ninth digit) was two users reached, in the limit's count and in
    /v1/counts?distinct_contacts. Five contacts here are three users."""
    for index, contact in enumerate([*MEXICO, *BRAZIL, US]):
        state.record_billing(billing(f"w{index}", "delivered", index, "marketing", contact))
    span = {"since": AT, "until": AT + timedelta(hours=1), "categories": ("marketing",)}
    assert state.count_users_reached_outside_window(**span, phone_number_ids=(PHONE_NUMBER_ID,),
                                                    window=timedelta(hours=24)) == 3
    assert state.count_messages(**span, phone_number_id=PHONE_NUMBER_ID, distinct_contacts=True) == 3
    assert state.count_messages(**span, phone_number_id=PHONE_NUMBER_ID) == 5
    naive = {"since": AT.replace(tzinfo=None), "until": (AT + timedelta(hours=1)).replace(tzinfo=None)}
    assert state._reached_from_rows(**naive, categories=("marketing",), phone_number_ids=(PHONE_NUMBER_ID,),
                                    window=timedelta(hours=24), ignored=("",)) == {MEXICO[1], BRAZIL[1], US}


def test_both_wa_id_forms_of_a_user_have_the_users_market(store):
    """A billing row's market came from the contact as written: Meta's Mexican 521 form (no valid number itself)
    got ZZ while 52 + the same ten digits got MX, so counts by market=MX missed it. Each form of a Mexican or
    Brazilian number has the user's market, and the market's count has both messages."""
    for index, contact in enumerate([*MEXICO, *BRAZIL]):
        state.record_billing(billing(f"m{index}", "delivered", index, "marketing", contact))
    markets = dict(state.MessageBilling.select(state.MessageBilling.contact, state.MessageBilling.market).tuples())
    assert markets == {MEXICO[0]: "MX", MEXICO[1]: "MX", BRAZIL[0]: "BR", BRAZIL[1]: "BR"}
    span = {"since": AT, "until": AT + timedelta(hours=1), "categories": ("marketing",)}
    assert state.count_messages(**span, phone_number_id=PHONE_NUMBER_ID, market="MX") == 2
    assert state.count_messages(**span, phone_number_id=PHONE_NUMBER_ID, market="MX", distinct_contacts=True) == 1


def test_an_inbound_message_under_one_form_opens_the_window_for_the_other(store):
    """A user who wrote under one wa_id form is inside their window for messages sent under the other form: not
    reached outside a window (their inbound message was looked up under the exact form only). A user reached under
    both forms on two numbers, inside a window on one only, is one user."""
    from policy_service.store.histories import StoredMessage

    StoredMessage.insert(wamid="wamid.in.mx", phone_number_id=PHONE_NUMBER_ID, contact=MEXICO[1], direction="inbound",
                         at=(AT - timedelta(hours=1)).replace(tzinfo=None), type="text").execute()
    state.record_billing(billing("w.mx", "delivered", 5, "marketing", MEXICO[0]))
    state.record_billing(billing("w.br.a", "delivered", 5, "marketing", BRAZIL[0]))
    state.record_billing(billing("w.br.b", "delivered", 6, "marketing", BRAZIL[1], phone_number_id="other"))
    StoredMessage.insert(wamid="wamid.in.br", phone_number_id="other", contact=BRAZIL[0], direction="inbound",
                         at=AT.replace(tzinfo=None), type="text").execute()
    span = {"since": AT, "until": AT + timedelta(hours=1), "categories": ("marketing",), "window": timedelta(hours=24)}
    assert state.count_users_reached_outside_window(**span, phone_number_ids=(PHONE_NUMBER_ID,)) == 1  # Brazil's
    assert state.count_users_reached_outside_window(**span, phone_number_ids=(PHONE_NUMBER_ID, "other")) == 1
    assert state.count_users_reached_outside_window(**span, phone_number_ids=("other",)) == 0


def test_a_number_change_chain_follows_either_wa_id_form(store):
    """user_changed_number chains compared contacts exactly: a change recorded to 5215512345678 was not found from
    525512345678, and a chain stopped where the next change named the other form of the number left. A change to a
    number after the user left it (someone else's) is not the user's past."""
    older, changed, moved = AT - timedelta(days=30), AT - timedelta(days=10), AT - timedelta(days=1)
    state.record_number_change(PHONE_NUMBER_ID, US, BRAZIL[0], older)  # to Brazil's eight-digit form
    state.record_number_change(PHONE_NUMBER_ID, BRAZIL[1], MEXICO[0], changed)  # from its ninth-digit form
    assert state.previous_contacts(PHONE_NUMBER_ID, MEXICO[1]) == [(BRAZIL[1], changed), (US, older)]
    assert state.previous_contacts(PHONE_NUMBER_ID, MEXICO[0]) == [(BRAZIL[1], changed), (US, older)]
    assert state.previous_contacts(PHONE_NUMBER_ID, BRAZIL[1]) == [(US, older)]
    state.record_number_change(PHONE_NUMBER_ID, MEXICO[1], BRAZIL[0], moved)  # a loop back: the chain ends
    assert state.previous_contacts(PHONE_NUMBER_ID, MEXICO[1]) == [(BRAZIL[1], changed), (US, older)]
