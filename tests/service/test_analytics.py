"""Meta's pricing analytics as the bill (service.analytics): imported exactly as Meta returns it, idempotently;
the cost report shows Meta's cost beside our card price of the delivered messages and the predictions, per
month, category and country, with each difference explained; Meta's average rate prices a send no card covers."""

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.store import business_state

from .test_pricing import KENYA, PHONE, WABA, bill, decide

NOV_2 = 1793577600  # 2026-11-02T00:00:00Z
DAY = 86_400


def response(*points, waba=WABA):
    return {"pricing_analytics": {"data": [{"data_points": list(points)}]}, "id": waba}


def point(start, country, category, volume, cost, kind="REGULAR"):
    return {"start": start, "end": start + DAY, "country": country, "phone_number": "15550783881",
            "pricing_category": category, "pricing_type": kind, "tier": "0:100000", "volume": volume, "cost": cost}


def post(client, body, waba=WABA):
    return client.post(f"/v1/pricing-analytics?waba_id={waba}", data=json.dumps(body) if isinstance(body, dict)
                       else body, content_type="application/json")


def billed_in(app, client, currency):
    """The app with PHONE's WABA known and billed in `currency`."""
    with app.app_context():
        business_state.learn_number(PHONE, WABA, datetime(2026, 1, 1, tzinfo=UTC))
    client.put(f"/v1/wabas/{WABA}/billing-currency", json={"currency": currency})
    return app


@pytest.fixture
def waba(app, client):
    return billed_in(app, client, "USD")


def test_import_is_idempotent_per_waba_bucket_and_dimensions(client, waba):
    """The same response twice stores nothing new; a revised cost for one bucket updates that point only."""
    body = response(point(NOV_2, "KE", "UTILITY", 2, 0.008),
                    point(NOV_2, "KE", "UTILITY", 5, 0, "FREE_CUSTOMER_SERVICE"))
    assert post(client, body).get_json() == {"waba_id": WABA, "new": 2, "updated": 0, "unchanged": 0, "points": 2}
    assert post(client, body).get_json()["unchanged"] == 2
    revised = response(point(NOV_2, "KE", "UTILITY", 2, 0.0081))
    assert post(client, revised).get_json() == {"waba_id": WABA, "new": 0, "updated": 1, "unchanged": 0, "points": 1}


def test_bad_responses_are_refused_naming_the_field(client, waba):
    """Another WABA's response, a point without volume, a negative cost and broken JSON are 4xx with the field."""
    other = post(client, response(point(NOV_2, "KE", "UTILITY", 1, 0.004), waba="999"))
    assert other.status_code == 422 and "id" in other.get_json()["errors"]
    missing = dict(point(NOV_2, "KE", "UTILITY", 1, 0.004))
    del missing["volume"]
    refused = post(client, response(missing))
    assert refused.status_code == 422
    assert "pricing_analytics.data.0.data_points.0.volume" in refused.get_json()["errors"]
    negative = post(client, response(point(NOV_2, "KE", "UTILITY", 1, -1)))
    assert "pricing_analytics.data.0.data_points.0.cost" in negative.get_json()["errors"]
    assert post(client, "{not json").status_code == 400
    assert client.post("/v1/pricing-analytics?waba_id=x", json={}).status_code == 422


def test_a_compressed_or_non_json_body_is_a_415_naming_the_header(client, waba):
    """The import checked Content-Type alone (its own copy of the check): a gzip body sent as application/json was
    read as text and refused as broken JSON (400), hiding what to change. As every JSON body (api.require_json): a
    415 naming headers.Content-Encoding, or headers.Content-Type for a body not sent as JSON."""
    import gzip

    body = json.dumps(response(point(NOV_2, "KE", "UTILITY", 2, 0.008))).encode()
    squeezed = client.post(f"/v1/pricing-analytics?waba_id={WABA}", data=gzip.compress(body),
                           content_type="application/json", headers={"Content-Encoding": "gzip"})
    assert squeezed.status_code == 415 and list(squeezed.get_json()["errors"]) == ["headers.Content-Encoding"]
    as_text = client.post(f"/v1/pricing-analytics?waba_id={WABA}", data=body, content_type="text/plain")
    assert as_text.status_code == 415 and list(as_text.get_json()["errors"]) == ["headers.Content-Type"]


@pytest.mark.parametrize("field, value", [("volume", 10**30), ("volume", 2**63), ("start", 10**12),
                                          ("end", 10**12), ("cost", 10**30), ("cost", "0." + "0" * 40 + "1")])
def test_numbers_no_column_or_date_can_hold_are_refused_naming_the_field(client, waba, field, value):
    """A volume past 64 bits, a bucket in the year 33,658 or a cost whose text no longer fits its column were an
    OverflowError or a year-out-of-range ValueError (a 500): they are a 422 naming the field, and nothing is
    stored."""
    bad = dict(point(NOV_2, "KE", "UTILITY", 1, "0.004"), **{field: value})
    refused = post(client, response(bad))
    assert refused.status_code == 422, refused.get_data(as_text=True)
    assert list(refused.get_json()["errors"]) == [f"pricing_analytics.data.0.data_points.0.{field}"]
    assert post(client, response(point(NOV_2, "KE", "UTILITY", 1, "0.004"))).get_json()["new"] == 1


def test_a_pricing_category_meta_does_not_use_is_a_422_naming_it(client, waba, database_url, tmp_path):
    """pricing_category NOPE was stored ({"new": 1}) and then matched no card, decision or report row: Meta's
    analytics name a closed set of pricing categories (those of its pricing webhooks, upper case), so another
    is a 422 naming the field and listing them, over HTTP and from the CLI, and nothing is stored."""
    refused = post(client, response(point(NOV_2, "KE", "NOPE", 1, "0.004")))
    assert refused.status_code == 422
    [(field, [message])] = refused.get_json()["errors"].items()
    assert field == "pricing_analytics.data.0.data_points.0.pricing_category"
    assert message.startswith("'NOPE' is not one of Meta's pricing categories: ") and "AUTHENTICATION_INTERNATIONAL" \
        in message and "MARKETING_LITE" in message
    (tmp_path / "nope.json").write_text(json.dumps(response(point(NOV_2, "KE", "NOPE", 1, "0.004"))))
    bad = CliRunner().invoke(cli.main, ["analytics", "import", str(tmp_path / "nope.json"), "--database-url",
                                        database_url])
    assert bad.exit_code == 1 and "pricing_category" in bad.output
    assert post(client, response(point(NOV_2, "KE", "MARKETING_LITE", 1, "0.004"))).get_json()["new"] == 1


def test_done_when_meta_cost_beside_predicted_and_card_price_with_the_difference_explained(client, waba):
    """November 2026, Kenya utility: two decisions logged, two delivered statuses stored (card 0.0040 each), and
    Meta's analytics bill three (0.0120): the 0.0040 difference is explained as a volume mismatch."""
    decide(client, "2026-11-10T10:00:00+00:00", KENYA)
    decide(client, "2026-11-11T10:00:00+00:00", KENYA)
    with waba.app_context():
        bill("w1", KENYA, "2026-11-10T10:00:05")
        bill("w2", KENYA, "2026-11-11T10:00:05")
    post(client, response(point(NOV_2 + 8 * DAY, "KE", "UTILITY", 2, "0.0080"),
                          point(NOV_2 + 9 * DAY, "KE", "UTILITY", 1, "0.0040")))
    report = client.get("/v1/costs?from=2026-11-01&to=2026-11-30&group_by=month,category,country").get_json()
    (row,) = [r for r in report["rows"] if (r["category"], r["country"]) == ("utility", "KE")]
    assert (row["meta"]["count"], row["meta"]["amount"]) == (3, "0.0120")
    assert (row["billed"]["count"], row["billed"]["amount"]) == (2, "0.0080")
    assert (row["predicted"]["count"], row["predicted"]["amount"]) == (2, "0.0080")
    (difference,) = row["differences"]
    assert (difference["between"], difference["amount"]) == ("meta and card price", "0.0040")
    assert [c["cause"] for c in difference["causes"]] == ["volume_mismatch"]
    assert "Meta's analytics count 3 charged message(s), the stored statuses 2" in difference["causes"][0]["text"]
    page = client.get("/ui/costs?from=2026-11-01&to=2026-11-30&currency=USD").get_data(as_text=True)
    assert "0.0120" in page and "volume_mismatch" in page


def test_meta_average_rate_prices_a_send_no_card_covers(client, waba):
    """UK marketing on 2026-11-10 in USD: the USD card of 2026-10-01 lists only Rest of Africa, so Meta's average
    for GB marketing this month (0.2000 ÷ 4 = 0.05) prices it, on a card labelled as that average."""
    post(client, response(point(NOV_2, "GB", "MARKETING", 4, "0.2000")))
    body = decide(client, "2026-11-10T10:00:00+00:00", "447400123456", "marketing")
    price = body["charge"]["price"]
    assert (price["amount"], price["currency"]) == ("0.050000", "USD")
    assert price["rate_card"]["id"] == f"meta-average-{WABA}-2026-11"
    assert "average billed rate" in price["rate_card"]["title"]
    entry = next(e for e in body["trace"] if e["effect"] == "price")
    assert "cost 0.2000 ÷ volume 4 = 0.050000" in entry["note"]
    other = decide(client, "2026-11-10T10:00:00+00:00", "4915112345678", "marketing")
    assert other["charge"]["price"] is None  # no analytics for Germany: still unpriced, with the reason


def test_the_cli_imports_a_response_file(app, database_url, tmp_path):
    """`policy-service analytics import FILE` stores it; a bad file exits non-zero naming the field."""
    (tmp_path / "a.json").write_text(json.dumps(response(point(NOV_2, "KE", "UTILITY", 1, 0.004))))
    result = CliRunner().invoke(cli.main, ["analytics", "import", str(tmp_path / "a.json"), "--database-url",
                                           database_url])
    assert result.exit_code == 0 and json.loads(result.output)["new"] == 1, result.output
    (tmp_path / "b.json").write_text(json.dumps({"id": WABA}))
    bad = CliRunner().invoke(cli.main, ["analytics", "import", str(tmp_path / "b.json"), "--database-url",
                                        database_url])
    assert bad.exit_code == 1 and "pricing_analytics" in bad.output


def test_a_report_leaves_out_messages_of_a_waba_billed_in_another_currency(client, waba):
    """The WABA is billed in USD: a BRL report neither prices its messages in BRL nor converts them; it says so."""
    with waba.app_context():
        bill("b1", "5511987654321", "2026-11-10T10:00:05", category="marketing")
    brl = client.get("/v1/costs?from=2026-11-01&to=2026-11-30&currency=BRL").get_json()
    assert brl["totals"]["billed"]["count"] == 0
    assert any("billed in USD: its messages are not in this BRL report" in note for note in brl["notes"])
    usd = client.get("/v1/costs?from=2026-11-01&to=2026-11-30&currency=USD").get_json()
    assert usd["totals"]["billed"]["count"] == 1


def test_the_python_api_imports_the_parsed_response_as_the_text(database_url, waba, client):
    """PolicyService.import_pricing_analytics takes Meta's response as text or as the parsed dict (a Decimal cost
    kept exact): the same points either way; anything else is a 422 naming `response`, not an AttributeError."""
    from decimal import Decimal

    from policy_service import PolicyService, ServiceError

    service = PolicyService(database_url=database_url)
    as_text = json.dumps(response(point(NOV_2, "KE", "UTILITY", 2, 0.008)))
    assert service.import_pricing_analytics(as_text, WABA)["new"] == 1
    parsed = response(point(NOV_2, "KE", "UTILITY", 2, Decimal("0.008")))
    assert service.import_pricing_analytics(parsed, WABA) == {"waba_id": WABA, "new": 0, "updated": 0,
                                                               "unchanged": 1, "points": 1}
    for bad in (42, ["not", "a", "response"]):
        with pytest.raises(ServiceError) as raised:
            service.import_pricing_analytics(bad, WABA)
        assert raised.value.code == 422 and list(raised.value.errors) == ["response"]
    with pytest.raises(ServiceError) as raised:
        service.import_pricing_analytics({}, WABA)
    assert raised.value.code == 422, raised.value
    service.close()


AUG_1 = 1785542400  # 2026-08-01T00:00:00Z
BRAZIL = "5511987654321"


@pytest.fixture
def brl_waba(app, client):
    return billed_in(app, client, "BRL")


def test_meta_average_rate_prices_what_a_card_without_volume_tiers_cannot(client, brl_waba):
    """A WABA billed in BRL sends utility templates to Brazil in August 2026: the BRL card of 2026-07-01 covers the day
    but has no Brazil volume tiers, so every message after the month's first stayed unpriced in the cost report
    although Meta's analytics priced the day (3,001 messages, 20.41 BRL). Meta's average (20.41 ÷ 3,001 = 0.006801,
    rounded to 6 decimals) now prices them, counted under at_meta_average (the CLI says so) and named in the
    differences; a decision for the next such send is priced at it too. Without analytics (September) they stay
    unpriced, with one reason."""
    with brl_waba.app_context():
        for i in range(4):
            bill(f"u{i}", BRAZIL, f"2026-08-03T10:0{i}:00")
        for i in range(2):
            bill(f"s{i}", BRAZIL, f"2026-09-03T10:0{i}:00")
    post(client, response(point(AUG_1 + 2 * DAY, "BR", "UTILITY", 3001, "20.41")))
    report = client.get("/v1/costs?from=2026-08-01&to=2026-09-30&currency=BRL").get_json()
    rows = {row["month"]: row for row in report["rows"]}
    august = rows["2026-08"]["billed"]
    # Message 1: the list rate 0.0350 (the month's first is in the first tier); messages 2-4: 3 × 0.006801.
    assert (august["count"], august["amount"], august["unpriced"], august["at_meta_average"]) == (
        4, "0.055403", 0, 3)
    causes = {c["cause"]: c["text"] for d in rows["2026-08"]["differences"] for c in d["causes"]}
    assert "3 delivered message(s) no card prices are priced at Meta's average billed rate" in causes["meta_average"]
    september = rows["2026-09"]["billed"]
    assert (september["count"], september["unpriced"], september["at_meta_average"]) == (2, 1, 0)
    assert len(september["unpriced_reasons"]) == 1
    text = CliRunner().invoke(cli.main, ["costs", "--from", "2026-08-01", "--to", "2026-08-31", "--currency", "BRL",
                                         "--database-url", brl_waba.config["DATABASE_URL"]])
    assert "0.055403 (4, 0 unpriced, 3 at Meta's average rate)" in text.output, text.output
    body = decide(client, "2026-08-04T10:00:00+00:00", BRAZIL)
    price = body["charge"]["price"]
    assert (price["amount"], price["currency"], price["rate_card"]["id"]) == ("0.006801", "BRL",
                                                                          f"meta-average-{WABA}-2026-08")


def test_a_prediction_at_meta_average_is_in_the_cards_market_and_counted_on_the_predicted_side(client, brl_waba):
    """A decision priced at Meta's average named market "BR" (its country) while the cards and the billed side name
    "Brazil", so the cost report by market had a `BR` row apart; and the predicted side's at_meta_average stayed 0
    though both predictions were priced at the average. Both now: one Brazil row, 2 predictions at the average."""
    with brl_waba.app_context():
        bill("u0", BRAZIL, "2026-08-03T10:00:00")
    post(client, response(point(AUG_1 + 2 * DAY, "BR", "UTILITY", 3001, "20.41")))
    for hour in (10, 11):
        price = decide(client, f"2026-08-04T{hour}:00:00+00:00", BRAZIL)["charge"]["price"]
        assert (price["rate_card"]["id"], price["market"]) == (f"meta-average-{WABA}-2026-08", "Brazil"), price
    report = client.get("/v1/costs?from=2026-08-01&to=2026-08-31&currency=BRL&group_by=market").get_json()
    (row,) = report["rows"]
    assert row["market"] == "Brazil", report["rows"]
    assert (row["predicted"]["count"], row["predicted"]["amount"], row["predicted"]["at_meta_average"]) == (
        2, "0.013602", 2)
