"""The counters over stored billing rows (store.counters) give exactly the counts read row by row: for random
statuses arriving in any order, repeated, turning rows failed or delivered, pricing arriving late and the
earliest status moving a row earlier; for any span (buckets and partial stretches); after a rebuild from the
rows; after retention deletes old rows. On SQLite, and on PostgreSQL when POLICY_TEST_DATABASE_URL is set."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playhouse.db_url import connect

from policy_service.core.vocabulary import STATUSES
from policy_service.store import billing, counters, histories, retention, schema
from policy_service.store import business_state as state
from policy_service.store.database import models, stored_time

# 2026-09-30 20:00 UTC: the spans below cross the month's end in UTC and in Sao Paulo (UTC-3, 03:00 UTC).
START = datetime(2026, 9, 30, 20, tzinfo=UTC)
HOURS = 40
NUMBERS = ("106540352242922", "106540352242923")
# Recipients in four markets (BR, IN, US, MX by their country codes); the first Brazilian and the Mexican user also
# under the other wa_id form of their number (core.identities.wa_id_forms: one user, counted once).
CONTACTS = ("5511987650001", "5511987650002", "919876543210", "14155550123", "551187650001", "5215512345678",
            "525512345678")
CATEGORIES = ("service", "utility", "marketing")
WINDOW = timedelta(hours=24)
# A type that opens a window only from an instant on (as the rules' window_inbound_types_counted_from makes a
# user's call): here from the middle of the spans, so calls on both sides of it are stored.
COUNTED_FROM = {"call": START + timedelta(hours=HOURS // 2)}


def wamid_parts(index: int) -> tuple[str, str]:
    """A wamid's sending number and recipient: fixed per wamid, as Meta's statuses of one message are."""
    return NUMBERS[index % 2], CONTACTS[index // 2 % len(CONTACTS)]


moments = st.integers(0, HOURS * 3600 - 1).map(lambda seconds: START + timedelta(seconds=seconds))
pricings = st.none() | st.fixed_dictionaries({
    "category": st.sampled_from(CATEGORIES),
    "type": st.sampled_from(("regular", "free_customer_service", "free_entry_point")),
    "billable": st.booleans(), "pricing_model": st.just("PMP")})
statuses = st.tuples(st.integers(0, 11), st.sampled_from(STATUSES), moments, pricings)
inbound = st.tuples(st.sampled_from(NUMBERS), st.sampled_from(CONTACTS),
                    st.integers(-30 * 3600, HOURS * 3600).map(lambda s: START + timedelta(seconds=s)),
                    st.sampled_from(("text", "text", "reaction", "call")))
spans = st.tuples(moments, st.integers(0, HOURS * 3600)).map(lambda p: (p[0], p[0] + timedelta(seconds=p[1])))


@pytest.fixture
def store(app):
    with app.app_context():
        yield


def clear() -> None:
    for model in (state.MessageBilling, counters.BillingCounter, counters.ReachedUser, histories.StoredMessage):
        model.delete().execute()


def store_all(updates, messages) -> None:
    for index, status, at, pricing in updates:
        number, contact = wamid_parts(index)
        state.record_billing(state.Billing(f"wamid.{index}", number, contact, at, status, pricing=pricing))
    for position, (number, contact, at, kind) in enumerate(messages):
        histories.StoredMessage.insert(wamid=f"wamid.in.{position}", phone_number_id=number, contact=contact,
                                       direction="inbound", at=stored_time(at), type=kind).execute()


def assert_counts_match(since: datetime, until: datetime) -> None:
    """Every count the decisions read equals the same count read row by row."""
    naive = {"since": stored_time(since), "until": stored_time(until)}
    for categories in (("service",), CATEGORIES):
        for scope in ({"phone_number_id": NUMBERS[0]}, {"phone_number_ids": NUMBERS}):
            numbers = scope.get("phone_number_ids") or (scope["phone_number_id"],)
            for market in (None, "BR"):
                assert state.count_messages(since=since, until=until, categories=categories, market=market,
                                            **scope) == \
                    state._count_rows(**naive, categories=categories, phone_number_ids=numbers, market=market)
            for countries, others in (((), ()), (("BR", "US"), ()), ((), ("BR",))):
                assert billing.count_billed(phone_number_ids=numbers, since=since, until=until,
                                            categories=categories, countries=countries,
                                            except_countries=others) == \
                    billing._billed_rows(numbers, naive["since"], naive["until"], categories, countries, others)
            assert state.count_users_reached_outside_window(
                since=since, until=until, categories=categories, phone_number_ids=numbers, window=WINDOW,
                ignored_types=frozenset({"reaction"}), counted_from=COUNTED_FROM) == \
                len(state._reached_from_rows(**naive, categories=categories, phone_number_ids=numbers, window=WINDOW,
                                             ignored=("reaction",), counted_from=COUNTED_FROM))


def counter_rows() -> tuple[set, set]:
    """The maintained counters as comparable sets (rows counting nothing left out)."""
    found = {(r.phone_number_id, r.category, r.market, r.span, r.start, r.messages, r.billed)
             for r in counters.BillingCounter.select() if r.messages or r.billed}
    return found, {(r.phone_number_id, r.contact, r.category, r.last_at) for r in counters.ReachedUser.select()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(updates=st.lists(statuses, max_size=30), messages=st.lists(inbound, max_size=8),
       checked=st.lists(spans, min_size=1, max_size=3))
def test_maintained_counters_equal_the_counts_over_the_rows(store, updates, messages, checked):
    """Any order of any statuses: the counts from counters equal the row-by-row counts for random spans, and a
    rebuild from the rows writes the same counters."""
    clear()
    store_all(updates, messages)
    for since, until in checked:
        assert_counts_match(since, until)
    maintained = counter_rows()
    state.rebuild_counters()
    assert counter_rows() == maintained


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(updates=st.lists(statuses, min_size=1, max_size=30), cut=moments)
def test_pruning_old_rows_takes_them_out_of_the_counters(store, updates, cut):
    """Retention deletes rows older than a cut in batches: the counters lose exactly those rows."""
    clear()
    store_all(updates, [])
    retention.prune(retention.BY_NAME["billing"], cut, batch_size=3)
    assert_counts_match(START, START + timedelta(hours=HOURS))
    maintained = counter_rows()
    state.rebuild_counters()
    assert counter_rows() == maintained


def test_a_month_in_the_wabas_zone_reads_whole_buckets_and_the_last_minute_row_by_row(store):
    """Sao Paulo's October starts at 03:00 UTC, a bucket edge: only the send's partial minute is read row by
    row; a message at 02:59 UTC is September's, one a few seconds before the send is counted."""
    clear()
    for wamid, at in (("w.sep", datetime(2026, 10, 1, 2, 59, tzinfo=UTC)),
                      ("w.oct", datetime(2026, 10, 1, 3, 0, tzinfo=UTC)),
                      ("w.mid", datetime(2026, 10, 9, 17, 30, tzinfo=UTC)),
                      ("w.minute", datetime(2026, 10, 15, 12, 7, 59, tzinfo=UTC)),
                      ("w.last", datetime(2026, 10, 15, 12, 8, 10, tzinfo=UTC)),
                      ("w.after", datetime(2026, 10, 15, 12, 8, 30, tzinfo=UTC))):
        state.record_billing(state.Billing(wamid, NUMBERS[0], CONTACTS[0], at, "delivered",
                                           pricing={"category": "service", "type": "free_customer_service"}))
    zone = ZoneInfo("America/Sao_Paulo")
    since, until = datetime(2026, 10, 1, tzinfo=zone), datetime(2026, 10, 15, 12, 8, 30, tzinfo=UTC)
    parts = counters.split(stored_time(since), stored_time(until))
    assert parts.rows == ((datetime(2026, 10, 15, 12, 8), datetime(2026, 10, 15, 12, 8, 30)),)
    assert [span for span, _, _ in parts.buckets] == [3600, 86400, 3600, 60]
    assert state.count_messages(since=since, until=until, categories=("service",), phone_number_id=NUMBERS[0]) == 4


def test_split_reads_at_most_seven_bucket_runs_and_under_two_minutes_of_rows():
    """A month with a 45-minute offset: six runs of whole buckets, one partial stretch under a minute; a span
    of 17 minutes: minute buckets and two partial stretches."""
    since, until = datetime(2026, 9, 30, 18, 15), datetime(2026, 10, 31, 9, 40, 30)
    parts = counters.split(since, until)
    assert parts.rows == ((datetime(2026, 10, 31, 9, 40), until),)
    assert [(span, first.isoformat(), end.isoformat()) for span, first, end in parts.buckets] == [
        (900, "2026-09-30T18:15:00", "2026-09-30T19:00:00"), (3600, "2026-09-30T19:00:00", "2026-10-01T00:00:00"),
        (86400, "2026-10-01T00:00:00", "2026-10-31T00:00:00"), (3600, "2026-10-31T00:00:00", "2026-10-31T09:00:00"),
        (900, "2026-10-31T09:00:00", "2026-10-31T09:30:00"), (60, "2026-10-31T09:30:00", "2026-10-31T09:40:00")]
    odd = counters.split(datetime(2026, 10, 1, 0, 3, 10), datetime(2026, 10, 1, 0, 20, 20))
    assert odd == counters.Split(((datetime(2026, 10, 1, 0, 3, 10), datetime(2026, 10, 1, 0, 4)),
                                  (datetime(2026, 10, 1, 0, 20), datetime(2026, 10, 1, 0, 20, 20))),
                                 ((60, datetime(2026, 10, 1, 0, 4), datetime(2026, 10, 1, 0, 20)),))
    inside = counters.split(datetime(2026, 10, 1, 0, 3, 10), datetime(2026, 10, 1, 0, 3, 50))
    assert inside == counters.Split(((datetime(2026, 10, 1, 0, 3, 10), datetime(2026, 10, 1, 0, 3, 50)),), ())
    assert counters.split(until, since) == counters.Split((), ())


def test_the_migration_counts_the_rows_stored_before_it(empty_database_url):
    """A database with billing rows from before migration 026: `db upgrade` fills the counters from them, as
    rebuild_counters does, and the counts read through them equal the counts over the rows."""
    database = connect(empty_database_url)
    schema.router(database).run("025_service_write_probe")
    with database.bind_ctx(models()):
        state.MessageBilling.insert_many([
            {"wamid": f"wamid.{index}", "phone_number_id": wamid_parts(index)[0], "contact": wamid_parts(index)[1],
             "market": "BR" if wamid_parts(index)[1].startswith("55") else "ZZ",
             "at": stored_time(START + timedelta(minutes=37 * index)),
             "status": ("delivered", "failed", "read")[index % 3],
             "category": CATEGORIES[index % 3], "pricing": '{"category": "x", "type": "regular"}'}
            for index in range(60)]).execute()
        assert schema.upgrade(database)[-1] == schema.known()[-1]
        migrated = counter_rows()
        assert migrated[0] and migrated[1]
        assert_counts_match(START, START + timedelta(hours=HOURS))
        state.rebuild_counters()
        assert counter_rows() == migrated
    database.close()
