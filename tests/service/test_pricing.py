"""The business's pricing context from the store (service.pricing): the WABA's billing currency, set once,
prices its sends; the month's billable volume per market and category is counted from stored statuses;
the request's context overrides both; the trace and the logged request name where each value came from."""

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.store import billing, business_state, histories

WABA, PHONE = "102290129340398", "106540352242922"
KENYA, TANZANIA, NIGERIA = "254712345678", "255712345678", "2348031234567"


def bill(wamid, contact, at, category="utility", kind="regular", status="delivered", phone=PHONE):
    """A status as the webhook stores it: in the stored history and in the message's billing row."""
    when = datetime.fromisoformat(at).replace(tzinfo=UTC)
    pricing = {"billable": kind == "regular", "pricing_model": "PMP", "category": category, "type": kind}
    histories.store_status(histories.Status(wamid=wamid, phone_number_id=phone, contact=contact, at=when,
                                            status=status, pricing=pricing))
    business_state.record_billing(business_state.Billing(wamid=wamid, phone_number_id=phone, contact=contact,
                                                         at=when, status=status, pricing=pricing))


def decide(client, at, to, category="utility", context=None):
    body = {"send": {"at": at, "to": "+" + to, "type": "template", "phone_number_id": PHONE,
                     "template": {"name": "t", "language": "en", "category": category, "status": "APPROVED"}},
            "history": [], "context": context or {}}
    response = client.post("/v1/decisions", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def price_entry(body):
    return next(entry for entry in body["trace"] if entry["effect"] == "price")


@pytest.fixture
def known_waba(app):
    with app.app_context():
        business_state.learn_number(PHONE, WABA, datetime(2026, 1, 1, tzinfo=UTC))
    return app


def test_the_billing_currency_is_set_once_over_http(client):
    """PUT sets it (201-like created flag), the same code again is a no-op, another code is 409; GET reads it."""
    url = f"/v1/wabas/{WABA}/billing-currency"
    assert client.get(url).status_code == 404
    first = client.put(url, json={"currency": "BRL"}).get_json()
    assert (first["currency"], first["source"], first["created"]) == ("BRL", "API", True)
    assert client.put(url, json={"currency": "BRL"}).get_json()["created"] is False
    conflict = client.put(url, json={"currency": "USD"})
    assert conflict.status_code == 409 and "billed in BRL" in conflict.get_json()["message"]
    assert client.put(url, json={"currency": "brl"}).get_json()["errors"] == {"currency": [
        "must be an ISO 4217 currency code a bill can be in, like USD (got 'brl'; the codes: "
        "rules/rates/currencies.yaml)"]}
    read = client.get(url).get_json()
    # GET answers the shape PUT answers (every field present, as the OpenAPI document declares), setting nothing.
    assert (read["currency"], read["created"]) == ("BRL", False)


def test_the_cli_sets_and_shows_the_currency(app, database_url):
    """`policy-service waba currency WABA BRL` sets it; without a code it shows it; a bad code is refused."""
    runner = CliRunner()
    result = runner.invoke(cli.main, ["waba", "currency", WABA, "INR", "--database-url", database_url])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(cli.main, ["waba", "currency", WABA, "--database-url", database_url])
    assert '"currency": "INR"' in shown.output and '"source": "CLI"' in shown.output
    assert runner.invoke(cli.main, ["waba", "currency", WABA, "USD", "--database-url", database_url]).exit_code != 0
    assert runner.invoke(cli.main, ["waba", "currency", WABA, "inr", "--database-url", database_url]).exit_code == 2


NOT_ISO = ("must be an ISO 4217 currency code a bill can be in, like USD (got {!r}; the codes: "
           "rules/rates/currencies.yaml)")


@pytest.mark.parametrize("code", ["XYZ", "QQQ", "XAU", "XTS"])
def test_a_code_that_is_no_iso_4217_currency_is_refused_before_it_is_stored(client, app, database_url, code):
    """PUT .../billing-currency {"currency": "XYZ"} was stored (and, written once, could never be corrected: every
    decision then unpriced): a code ISO 4217 does not list (rules/rates/currencies.yaml), or lists for no money
    (gold, testing), is a 422 naming currency over HTTP, the CLI and Python, and nothing is stored, so the right
    code can still be set."""
    from policy_service import PolicyService, ServiceError

    url = f"/v1/wabas/{WABA}/billing-currency"
    refused = client.put(url, json={"currency": code})
    assert refused.status_code == 422 and refused.get_json()["errors"] == {"currency": [NOT_ISO.format(code)]}
    cli_run = CliRunner().invoke(cli.main, ["waba", "currency", WABA, code, "--database-url", database_url])
    assert cli_run.exit_code == 2 and "Invalid value for '[CURRENCY]'" in cli_run.output
    with pytest.raises(ServiceError) as raised:
        PolicyService(database_url=database_url).set_billing_currency(WABA, code)
    assert raised.value.code == 422 and list(raised.value.errors) == ["currency"]
    assert client.get(url).status_code == 404
    assert client.put(url, json={"currency": "BRL"}).get_json()["created"] is True


def test_a_currency_no_card_is_in_is_stored_and_its_sends_say_why_they_are_unpriced(client, known_waba):
    """MXN is ISO 4217's and Meta bills in it, but no shipped card is in MXN: a WABA billed in it is real, so it is
    stored, and its sends are decided with price null and the reason; a decision's context.currency likewise,
    while context.currency XYZ is a 422 naming context.currency."""
    assert client.put(f"/v1/wabas/{WABA}/billing-currency", json={"currency": "MXN"}).get_json()["created"]
    body = decide(client, "2026-11-10T10:00:00+00:00", "5511987654321", "marketing")
    assert body["charge"]["price"] is None and body["charge"]["price_reason"].startswith("no MXN rate card")
    response = client.post("/v1/decisions", json={
        "send": {"at": "2026-11-10T10:00:00+00:00", "to": "+5511987654321", "type": "text"},
        "history": [{"direction": "inbound", "at": "2026-11-10T09:00:00+00:00", "type": "text"}],
        "context": {"currency": "XYZ"}})
    assert response.status_code == 422 and response.get_json()["errors"] == {"context.currency": [NOT_ISO.format(
        "XYZ")]}


def test_setting_a_currency_no_card_is_in_says_its_sends_cannot_be_priced_until_one_is_imported(
        client, app, database_url, known_waba):
    """PUT .../billing-currency {"currency": "MXN"} (ISO 4217's, no card in rules/rates/) answered 200 with nothing
    said, although every send of the WABA is then unpriced: PUT and GET answer `notes` saying so, naming the cards
    there are and how to import one; the Python API and the CLI (its JSON, and the note on stderr) alike. A currency
    a card is in has no note, and the OpenAPI document declares the field."""
    from policy_service import PolicyService

    url = f"/v1/wabas/{WABA}/billing-currency"
    put = client.put(url, json={"currency": "MXN"}).get_json()
    [note] = put["notes"]
    assert note.startswith("no rate card is in MXN (cards: AED, BRL, EUR, INR, USD): sends priced in MXN") and \
        "until a rate card in MXN is imported into rules/rates/ (policy-service rates import)" in note, note
    assert client.get(url).get_json()["notes"] == [note]
    assert PolicyService(database_url=database_url).billing_currency(WABA)["notes"] == [note]
    shown = CliRunner().invoke(cli.main, ["waba", "currency", WABA, "MXN", "--database-url", database_url])
    assert shown.exit_code == 0 and json.loads(shown.stdout)["notes"] == [note]
    assert shown.stderr == f"note: {note}\n"
    other = "102290129340399"
    assert client.put(f"/v1/wabas/{other}/billing-currency", json={"currency": "BRL"}).get_json()["notes"] == []
    assert PolicyService(database_url=database_url).set_billing_currency("102290129340400", "USD")["notes"] == []
    documented = client.get("/openapi.json").get_json()["components"]["schemas"]["Currency"]
    assert "notes" in documented["required"] and "rate card" in documented["properties"]["notes"]["description"]


def test_a_stored_code_that_was_never_a_currency_can_be_corrected(client, known_waba):
    """A WABA stored with XYZ before codes were checked was locked (409 on every change, every send unpriced):
    Meta cannot have billed it in XYZ, so a PUT of an ISO 4217 code replaces it, the source saying so; a real
    currency stays written once."""
    with known_waba.app_context():
        billing.set_currency(WABA, "XYZ", "API")
    url = f"/v1/wabas/{WABA}/billing-currency"
    stale = client.get(url).get_json()["notes"]
    assert stale == ["'XYZ' is not an ISO 4217 currency code (like USD, EUR, BRL): it was stored before codes were "
                     "checked; setting the WABA's real billing currency replaces it"], stale
    fixed = client.put(url, json={"currency": "BRL"}).get_json()
    assert (fixed["currency"], fixed["created"], fixed["source"]) == ("BRL", True,
                                                                     "API, replacing XYZ (no ISO 4217 currency)")
    assert client.put(url, json={"currency": "USD"}).status_code == 409


def test_sends_are_priced_in_the_wabas_currency_unless_the_context_says_otherwise(client, known_waba):
    """Brazil marketing on 2026-11-10: BRL from the store (0.3217 BRL), USD when context.currency says so."""
    client.put(f"/v1/wabas/{WABA}/billing-currency", json={"currency": "BRL"})
    body = decide(client, "2026-11-10T10:00:00+00:00", "5511987654321", "marketing")
    assert (body["charge"]["price"]["amount"], body["charge"]["price"]["currency"]) == ("0.3217", "BRL")
    assert price_entry(body)["sources"]["currency"].startswith(f"billing currency of WABA {WABA}, set via API")
    assert "currency" not in body["facts"]["defaults_used"]
    override = decide(client, "2026-05-10T10:00:00+00:00", "5511987654321", "marketing", {"currency": "USD"})
    assert (override["charge"]["price"]["amount"], override["charge"]["price"]["currency"]) == ("0.0625", "USD")
    assert "currency" not in price_entry(override)["sources"]


def test_the_months_volume_is_counted_per_market_and_category_from_stored_statuses(client, known_waba):
    """Billable utility delivered this month to Rest of Africa counts (Kenya, Tanzania); free, other-market,
    other-category, undelivered and last month's messages do not. The next Kenyan utility is message 3."""
    with known_waba.app_context():
        bill("k1", KENYA, "2026-11-02T10:00:00")
        bill("k2", TANZANIA, "2026-11-03T10:00:00")                         # same market: Rest of Africa
        bill("k3", KENYA, "2026-11-04T10:00:00", kind="free_customer_service")   # free: not counted
        bill("k4", NIGERIA, "2026-11-05T10:00:00")                          # Nigeria is its own market
        bill("k5", KENYA, "2026-11-06T10:00:00", category="marketing")      # another category
        bill("k6", KENYA, "2026-11-07T10:00:00", status="sent")             # not delivered
        bill("k7", KENYA, "2026-10-30T10:00:00")                            # last month
        bill("k8", KENYA, "2026-11-08T10:00:00", phone="999")               # another WABA's number
    body = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    price = body["charge"]["price"]
    assert (price["amount"], price["tier"]["number"], price["tier"]["messages_before"]) == ("0.0040", 1, 2)
    source = price_entry(body)["sources"]["volume_messages_this_month"]
    assert source.startswith("2 billable utility messages delivered to market Rest of Africa since 2026-11-01")
    assert f"WABA {WABA}" in source
    row = client.get(f"/v1/decisions/{body['decision_id']}").get_json()
    assert row["request"]["context"]["volume_messages_this_month"] == 2  # replays without the store
    given = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD",
                                                                         "volume_messages_this_month": 150_000})
    assert (given["charge"]["price"]["amount"], given["charge"]["price"]["tier"]["number"]) == ("0.0038", 2)
    assert "volume_messages_this_month" not in price_entry(given)["sources"]


def test_count_billed_by_countries_or_every_other_country(app):
    """The market 'Other' counts every country the map does not list."""
    with app.app_context():
        bill("o1", "77012345678", "2026-11-02T10:00:00")   # Kazakhstan
        bill("o2", KENYA, "2026-11-02T10:00:00")
        since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
        assert billing.count_billed(phone_number_ids=(PHONE,), since=since, until=until, categories=("utility",),
                                    except_countries=("KE", "NG")) == 1
        assert billing.count_billed(phone_number_ids=(PHONE,), since=since, until=until, categories=("utility",),
                                    countries=("KE",)) == 1


def test_authentication_international_volume_counts_both_spellings(app, known_waba):
    """Meta's pricing says authentication-international; a status stored with the underscore counts too."""
    from datetime import date

    from policy_service.service.pricing import month_volume

    with app.app_context():
        bill("a1", "919876543210", "2026-05-02T10:00:00", category="authentication-international")
        bill("a2", "919876543211", "2026-05-03T10:00:00", category="authentication_international")
        count, source = month_volume(WABA, "authentication-international", "IN", date(2026, 5, 10),
                                     datetime(2026, 5, 10, tzinfo=UTC), "UTC",
                                     app.extensions["policy_service"].rulebook.rates)
    assert count == 2
    assert source.startswith("2 billable authentication-international messages delivered to market India")


def test_done_when_kenya_utility_is_message_150001_counted_from_the_store(client, known_waba):
    """Issue 23: 150,000 billable utility messages delivered to Rest of Africa this month are stored; the next
    Kenyan utility template on 2026-11-10 in USD is message 150,001: tier 2, 0.0038 USD, volume from the store."""
    database = billing.WabaCurrency._meta.database
    pricing = '{"billable": true, "category": "utility", "pricing_model": "PMP", "type": "regular"}'
    sqlite = "Sqlite" in type(getattr(database, "obj", database)).__name__
    series = ("WITH RECURSIVE seq(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM seq WHERE n < 149999) ", "seq") \
        if sqlite else ("", "generate_series(0, 149999) AS n")
    with known_waba.app_context():
        database.execute_sql(
            f"{series[0]}INSERT INTO message_billing (wamid, phone_number_id, contact, at, status, category, pricing, "
            f"market) SELECT 'wamid.ke.' || n, '{PHONE}', '{KENYA}', "
            + ("datetime('2026-11-02 00:00:00', '+' || (n % 600000) || ' seconds')" if sqlite else
               "timestamp '2026-11-02' + mod(n, 600000) * interval '1 second'")
            + f", 'delivered', 'utility', '{pricing}', 'KE' FROM {series[1]}")
        business_state.rebuild_counters()  # rows loaded by SQL: count them in
    body = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    price = body["charge"]["price"]
    assert (price["amount"], price["currency"], price["market"]) == ("0.0038", "USD", "Rest of Africa")
    assert (price["tier"]["number"], price["tier"]["messages_before"]) == (2, 150_000)
    assert price_entry(body)["sources"]["volume_messages_this_month"].startswith(
        "150,000 billable utility messages delivered to market Rest of Africa")


def decide_group(client, at, participants, context=None):
    body = {"send": {"at": at, "to": "Y2FtcGFpZ24tZ3JvdXA", "type": "template", "phone_number_id": PHONE,
                     "recipient_type": "group", "participants": ["+" + number for number in participants],
                     "template": {"name": "t", "language": "en", "category": "utility", "status": "APPROVED"}},
            "history": [], "context": context or {}}
    response = client.post("/v1/decisions", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_a_group_sends_tier_volume_is_read_from_the_store_like_a_one_to_one_sends(client, known_waba):
    """A group send's volume was never read from the store (only 1:1 sends' was): its participants were priced at
    the list rate with the month's volume unknown although the stored count was known. Participants all in Rest of
    Africa now continue the stored count (2 before: messages 3 and 4), the trace naming where it came from; a
    group across markets keeps the list rate and says why."""
    with known_waba.app_context():
        bill("k1", KENYA, "2026-11-02T10:00:00")
        bill("k2", TANZANIA, "2026-11-03T10:00:00")
    body = decide_group(client, "2026-11-10T10:00:00+00:00", [KENYA, TANZANIA], {"currency": "USD"})
    entry = price_entry(body)
    assert entry["sources"]["volume_messages_this_month"].startswith(
        "2 billable utility messages delivered to market Rest of Africa")
    assert "is unknown" not in entry["because"] and "tier 1" in entry["because"]
    logged = client.get(f"/v1/decisions/{body['decision_id']}").get_json()
    assert logged["request"]["context"]["volume_messages_this_month"] == 2  # replays without the store
    mixed = decide_group(client, "2026-11-10T10:00:00+00:00", [KENYA, NIGERIA], {"currency": "USD"})
    assert "volume_messages_this_month" not in price_entry(mixed)["sources"]
    assert "is unknown (participants in several markets" in price_entry(mixed)["because"]


def tier_update(at, month="2026-11", category="UTILITY", region="REST_OF_AFRICA", tier="150001:250000000"):
    """Meta's account_update VOLUME_BASED_PRICING_TIER_UPDATE as the webhook stores it (a partner's documentation,
    https://partner-docs.gupshup.io/docs/tier-based-pricing, gives its shape)."""
    business_state.record_account(WABA, "account_update", "VOLUME_BASED_PRICING_TIER_UPDATE",
                                  datetime.fromisoformat(at).replace(tzinfo=UTC), {
                                      "event": "VOLUME_BASED_PRICING_TIER_UPDATE", "volume_tier_info": {
                                          "effective_month": month, "pricing_category": category, "region": region,
                                          "tier": tier, "tier_update_time": 1793577600}})


def test_metas_tier_update_raises_the_stored_count_to_the_portfolios(client, known_waba):
    """The store counts one WABA's statuses while Meta counts the whole business portfolio: when Meta's own
    VOLUME_BASED_PRICING_TIER_UPDATE says the WABA reached tier 150001:... for Rest of Africa utility this month,
    the next Kenyan utility is at least message 150,001 (tier 2, 0.0038 USD), not message 3 of the 2 stored; the
    source names the update. An update of another month, market or category, or received after the send, is not
    read; the forecast continues from it too."""
    with known_waba.app_context():
        bill("k1", KENYA, "2026-11-02T10:00:00")
        bill("k2", TANZANIA, "2026-11-03T10:00:00")
        tier_update("2026-11-05T00:00:00", month="2026-10")
        tier_update("2026-11-05T00:00:00", region="NIGERIA")
        tier_update("2026-11-05T00:00:00", category="AUTHENTICATION")
        tier_update("2026-11-11T00:00:00")  # after the send
    before = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    assert before["charge"]["price"]["tier"]["messages_before"] == 2
    with known_waba.app_context():
        tier_update("2026-11-05T00:00:00")
    body = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    price = body["charge"]["price"]
    assert (price["amount"], price["tier"]["number"], price["tier"]["messages_before"]) == ("0.0038", 2, 150_000)
    source = price_entry(body)["sources"]["volume_messages_this_month"]
    assert source.startswith("2 billable utility messages") and "raised to 150,000" in source
    assert "VOLUME_BASED_PRICING_TIER_UPDATE received at 2026-11-05T00:00:00+00:00" in source
    forecast = client.post("/v1/costs/forecast", json={"currency": "USD", "at": "2026-11-10T10:00:00Z",
                                                       "waba_id": WABA, "lines": [{"country": "KE",
                                                                                   "category": "utility",
                                                                                   "count": 10}]}).get_json()
    assert forecast["lines"][0]["volume_before"] == 150_000


def test_a_tier_updates_market_and_category_are_read_without_case_spaces_or_punctuation(app, known_waba):
    """Meta writes markets and categories in capitals with underscores; the card's names have spaces and "&":
    REST_OF_CENTRAL_AND_EASTERN_EUROPE is Rest of Central & Eastern Europe, AUTHENTICATION_INTERNATIONAL is
    authentication-international; a tier that is no "first:last" of digits is not read."""
    from policy_service.service.pricing import meta_tier_floor

    start, at = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC)
    with app.app_context():
        tier_update("2026-11-02T00:00:00", region="REST_OF_CENTRAL_AND_EASTERN_EUROPE",
                    category="AUTHENTICATION_INTERNATIONAL", tier="1000001:5000000")
        tier_update("2026-11-03T00:00:00", region="REST_OF_AFRICA", tier="many:more")
        found, unread = meta_tier_floor(WABA, "authentication-international", "Rest of Central & Eastern Europe",
                                        start, at)
        assert found is not None and found[0] == 1_000_000 and unread == ()
        found, unread = meta_tier_floor(WABA, "utility", "Rest of Africa", start, at)
        assert found is None and len(unread) == 1 and "'many:more'" in unread[0]


@pytest.mark.parametrize("tier", ["¹50001:250000000", "١٥٠٠٠١:250000000", "1" * 5000 + ":2", " 150001:2", ":2"])
def test_an_unreadable_stored_tier_is_skipped_with_a_note_never_a_failed_decision(client, known_waba, tier):
    """A tier update stored as the webhook gave it whose tier does not start with ASCII digits (a superscript one,
    for which str.isdigit() is true and int() a ValueError; Arabic-Indic digits; more digits than int() reads; a
    space; nothing) is not used: the decision, the batch and the forecast count the stored statuses and say the
    update was not read, and a readable update of the same month still raises the count."""
    with known_waba.app_context():
        bill("k1", KENYA, "2026-11-02T10:00:00")
        tier_update("2026-11-05T00:00:00", tier=tier)
    body = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    assert (body["decision"], body["status"]) == ("allow", "decided")
    assert body["charge"]["price"]["tier"]["messages_before"] == 1
    source = price_entry(body)["sources"]["volume_messages_this_month"]
    assert source.startswith("1 billable utility messages") and "not read: Meta's VOLUME_BASED_PRICING_TIER_UPDATE" \
        " received at 2026-11-05T00:00:00+00:00 names tier" in source
    request = {"send": {"at": "2026-11-10T10:00:00Z", "to": "+" + KENYA, "type": "template", "phone_number_id": PHONE,
                        "template": {"name": "t", "language": "en", "category": "utility", "status": "APPROVED"}},
               "history": []}
    batch = client.post("/v1/decisions/batch", json={"requests": [request, request]})
    assert batch.status_code == 200, batch.get_json()
    forecast = client.post("/v1/costs/forecast", json={"currency": "USD", "at": "2026-11-10T10:00:00Z",
                                                       "waba_id": WABA, "lines": [{"country": "KE",
                                                                                   "category": "utility",
                                                                                   "count": 10}]})
    assert forecast.status_code == 200, forecast.get_json()
    assert forecast.get_json()["lines"][0]["volume_before"] == 1
    with known_waba.app_context():
        tier_update("2026-11-06T00:00:00")
    raised = decide(client, "2026-11-10T10:00:00+00:00", KENYA, context={"currency": "USD"})
    assert raised["charge"]["price"]["tier"]["messages_before"] == 150_000
