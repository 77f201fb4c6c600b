"""POST /v1/costs/forecast and /ui/forecast: the same forecast, tiers from the WABA's stored volume, clear 422s."""

import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from markupsafe import escape

from policy_service.contract.pricing import FORECAST
from policy_service.service.decisions import Policy
from policy_service.service.forecast import forecast_costs
from policy_service.store import business_state

from ..conftest import RULES_DIR
from .test_pricing import KENYA, PHONE, WABA, bill

CAMPAIGN = {"currency": "BRL", "at": "2026-11-10T12:00:00+00:00",
            "lines": [{"country": "BR", "category": "marketing", "count": 10_000},
                      {"to": "+5511987654321", "category": "utility", "count": 5_000}]}


def test_done_when_the_brazil_campaign_costs_3392_brl_per_line(client):
    """Issue 23: 3217 + 175 = 3392 BRL, each line with its rate, tier and card."""
    body = client.post("/v1/costs/forecast", json=CAMPAIGN).get_json()
    assert (body["total"], body["currency"], body["unpriced"]) == ("3392.0000", "BRL", [])
    marketing, utility = body["lines"]
    assert (marketing["amount"], marketing["rate"], marketing["rate_card"]["id"]) == ("3217.0000", "0.3217",
                                                                                       "meta-brl-2026-10-01")
    # Every amount with the same (exact) number of decimals: 175.0000 beside 3217.0000, not 175.000.
    assert (utility["amount"], utility["rate"], utility["tiers"][0]["tier"]) == ("175.0000", "0.035", 1)
    assert utility["tiers"][0]["amount"] == "175.0000"
    assert body["volume_note"].startswith("no waba_id")


def test_the_wabas_volume_and_currency_are_the_starting_point(client, app):
    """With waba_id: the currency defaults to the WABA's, and Rest of Africa utility starts after the stored 2."""
    with app.app_context():
        business_state.learn_number(PHONE, WABA, datetime(2026, 1, 1, tzinfo=UTC))
        bill("k1", KENYA, "2026-11-02T10:00:00")
        bill("k2", KENYA, "2026-11-03T10:00:00")
    client.put(f"/v1/wabas/{WABA}/billing-currency", json={"currency": "USD"})
    body = client.post("/v1/costs/forecast", json={"at": "2026-11-10T12:00:00+00:00", "waba_id": WABA, "lines": [
        {"country": "KE", "category": "utility", "count": 100_000}]}).get_json()
    (line,) = body["lines"]
    assert body["currency"] == "USD" and line["volume_before"] == 2
    assert [(t["tier"], t["count"]) for t in line["tiers"]] == [(1, 99_998), (2, 2)]
    assert body["volume_sources"]["Rest of Africa utility"].startswith("2 billable utility messages")


def test_bad_forecasts_are_422_naming_the_field(client):
    """A line with both country and to, a zero count, no currency anywhere and a time past 2999 are refused by field."""
    bad = client.post("/v1/costs/forecast", json={**CAMPAIGN, "lines": [
        {"country": "BR", "to": "+5511987654321", "category": "marketing", "count": 1}]})
    assert bad.status_code == 422 and "lines.0.country" in bad.get_json()["errors"]
    zero = client.post("/v1/costs/forecast", json={**CAMPAIGN, "lines": [{"country": "BR", "category": "x",
                                                                            "count": 0}]})
    assert "lines.0.count" in zero.get_json()["errors"]
    nothing = client.post("/v1/costs/forecast", json={"at": CAMPAIGN["at"], "lines": CAMPAIGN["lines"]})
    assert nothing.status_code == 422 and "currency" in nothing.get_json()["errors"]
    # a time every other request refuses (outside 2000-2999) was answered 200 with every line unpriced
    far = client.post("/v1/costs/forecast", json={**CAMPAIGN, "at": "9999-11-10T12:00:00Z"})
    assert far.status_code == 422 and far.get_json()["errors"] == {"at": ["must be between 2000-01-01 and 2999-12-31"]}


def test_the_page_shows_the_same_forecast(client):
    """/ui/forecast (a GET form: it changes nothing) shows the total and each line; a malformed line is a 422."""
    page = client.get("/ui/forecast", query_string={"at": CAMPAIGN["at"], "currency": "BRL",
                                                    "lines": "BR marketing 10000\n+5511987654321 utility 5000"})
    assert page.status_code == 200 and "Total: 3392.0000 BRL" in page.get_data(as_text=True)
    bad = client.get("/ui/forecast", query_string={"at": CAMPAIGN["at"], "currency": "BRL", "lines": "BR marketing"})
    assert bad.status_code == 422 and "COUNTRY CATEGORY COUNT" in bad.get_data(as_text=True)
    assert client.get("/ui/forecast").status_code == 200


def test_the_cli_prints_the_same_forecast(app, database_url, tmp_path):
    """`policy-service forecast FILE` prints the API's JSON; a bad body exits non-zero naming the field."""
    import json

    from click.testing import CliRunner

    from policy_service import cli

    (tmp_path / "campaign.json").write_text(json.dumps(CAMPAIGN))
    result = CliRunner().invoke(cli.main, ["forecast", str(tmp_path / "campaign.json"), "--database-url",
                                           database_url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["total"] == "3392.0000"
    (tmp_path / "bad.json").write_text(json.dumps({**CAMPAIGN, "lines": []}))
    bad = CliRunner().invoke(cli.main, ["forecast", str(tmp_path / "bad.json"), "--database-url", database_url])
    assert bad.exit_code == 1 and "lines" in bad.output


def test_the_python_api_forecasts_imports_analytics_and_sets_the_currency(database_url):
    """PolicyService.forecast / import_pricing_analytics / set_billing_currency answer as the HTTP API does."""
    import json

    import pytest

    from policy_service import PolicyService, ServiceError

    service = PolicyService(database_url=database_url)
    assert service.forecast(CAMPAIGN)["total"] == "3392.0000"
    assert service.set_billing_currency(WABA, "USD")["source"] == "Python API"
    with pytest.raises(ServiceError) as refused:
        service.set_billing_currency(WABA, "usd")
    assert refused.value.code == 422 and "currency" in refused.value.errors
    body = {"pricing_analytics": {"data": [{"data_points": [{"start": 1793577600, "end": 1793664000, "country": "KE",
                                                             "volume": 1, "cost": 0.004}]}]}, "id": WABA}
    assert service.import_pricing_analytics(json.dumps(body))["new"] == 1


SERVICE = {"currency": "BRL", "at": "2026-11-10T12:00:00Z", "lines": [{"country": "BR", "category": "service",
                                                                        "count": 2000}]}


def test_the_free_service_allowance_leaves_the_first_1000_free_by_the_rule(client):
    """2,000 service messages to Brazil on 2026-11-10 cost 70.000 BRL (all at 0.035) while a decision then is free
    below 1,000 service messages this month (PMP26-1.free-allowance): the forecast asks the rules, so 1,000 are
    free, naming the rule and its sentence, and 1,000 cost 35.000; service lines continue one count from
    service_messages_this_month; the page shows the same."""
    body = client.post("/v1/costs/forecast", json=SERVICE).get_json()
    (line,) = body["lines"]
    assert (body["total"], line["amount"], line["tiers"][0]["count"]) == ("35.000", "35.000", 1000)
    free = {"count": 1000, "rule": "PMP26-1.free-allowance", "charged_rule": "PMP26-1.charged",
            "because": "[S: secondary] 0 service messages so far this month, under the 1,000 free."}
    assert line["free"] == {**free, "by_window": [{"window": "customer_service_window", "messages": 2000, **free}]}
    split = client.post("/v1/costs/forecast", json={**SERVICE, "service_messages_this_month": 900, "lines": [
        {"country": "BR", "category": "service", "count": 50}, {"country": "BR", "category": "service", "count": 100},
        {"country": "BR", "category": "marketing", "count": 1}]}).get_json()
    assert [(x["free"] and x["free"]["count"], x["amount"]) for x in split["lines"]] == [
        (50, "0.0000"), (50, "1.7500"), (None, "0.3217")]
    assert split["service_messages_this_month"] == 900
    page = client.get("/ui/forecast", query_string={"at": SERVICE["at"], "currency": "BRL",
                                                    "lines": "BR service 2000"}).get_data(as_text=True)
    assert "Total: 35.000 BRL" in page and "1000 free (PMP26-1.free-allowance" in page
    # what the forecast assumes is shown where the total is read, not only in the API's `notes`
    assert 'id="forecast-notes"' in page and "inside an open customer service window" in page
    later = client.get("/ui/forecast", query_string={"at": SERVICE["at"], "currency": "BRL", "lines": "BR service 2000",
                                                     "service_messages_this_month": "900"}).get_data(as_text=True)
    assert "Total: 66.500 BRL" in later and "100 free (PMP26-1.free-allowance" in later
    bad = client.get("/ui/forecast", query_string={"at": SERVICE["at"], "currency": "BRL", "lines": "BR service 1",
                                                   "service_messages_this_month": "many"})
    assert bad.status_code == 422 and "a whole number of messages" in bad.get_data(as_text=True)


def test_the_allowance_is_read_from_the_rule_file_not_python(tmp_path):
    """With the rule file's 1,000 changed to 500, the same forecast leaves 500 free: no threshold lives in Python."""
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    rule_file = tmp_path / "rules" / "pricing-v4-october-2026.yaml"
    rule_file.write_text(rule_file.read_text().replace("service_messages_this_month: {lt: 1000}",
                                                       "service_messages_this_month: {lt: 500}"))
    body = forecast_costs(Policy.load(str(tmp_path / "rules")), FORECAST.load(SERVICE))
    assert (body["lines"][0]["free"]["count"], body["total"]) == (500, "52.500")


def test_a_category_meta_does_not_use_is_a_422_naming_the_line(client):
    """"category": "promo" in a line was answered 200 with the line unpriced: a 422 naming lines.0.category and
    listing Meta's categories, on the API and the page."""
    bad = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [{"country": "BR", "category": "promo",
                                                                        "count": 1}]})
    assert bad.status_code == 422
    [(field, [message])] = bad.get_json()["errors"].items()
    assert field == "lines.0.category" and message.startswith("'promo' is not one of Meta's pricing categories: ")
    page = client.get("/ui/forecast", query_string={"at": SERVICE["at"], "currency": "BRL", "lines": "BR promo 1"})
    assert page.status_code == 422 and "is not one of Meta" in page.get_data(as_text=True)


def test_a_forecast_currency_is_iso_4217_and_has_a_card(client, app):
    """currency XYZ is a 422 naming currency (not ISO 4217); JPY is ISO 4217's but no card is in it, so every line
    would be unpriced: a 422 saying so, whether given or the WABA's."""
    xyz = client.post("/v1/costs/forecast", json={**SERVICE, "currency": "XYZ"})
    assert xyz.status_code == 422 and "ISO 4217" in xyz.get_json()["errors"]["currency"][0]
    jpy = client.post("/v1/costs/forecast", json={**SERVICE, "currency": "JPY"})
    assert jpy.status_code == 422 and jpy.get_json()["errors"]["currency"][0].startswith("no rate card is in JPY")
    client.put(f"/v1/wabas/{WABA}/billing-currency", json={"currency": "JPY"})
    body = {key: value for key, value in SERVICE.items() if key != "currency"}
    wabas = client.post("/v1/costs/forecast", json={**body, "waba_id": WABA})
    assert wabas.status_code == 422 and "no rate card is in JPY" in wabas.get_json()["errors"]["currency"][0]


def test_a_country_without_an_example_number_gets_its_allowance(client, monkeypatch):
    """The rules were asked about a sample number of the line's country (phonenumbers.example_number), so a country
    without one got no free messages: 500 service messages there were unpriced (no BRL rate for market Other)
    instead of free. The rules are now asked by country, not by a sample number: Tristan da Cunha's (TA, market
    Other, no example mobile number) 500 are free by PMP26-1.free-allowance, and so are Brazil's with every example
    number gone. (AQ, the first example, is no country a phone number can be in: a 422 naming the line's country.)"""
    aq = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [{"country": "TA", "category": "service",
                                                                        "count": 500}]}).get_json()
    assert aq["unpriced"] == [] and aq["total"] == "0"
    assert (aq["lines"][0]["free"]["count"], aq["lines"][0]["free"]["rule"]) == (500, "PMP26-1.free-allowance")
    over = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [{"country": "TA", "category": "service",
                                                                          "count": 1500}]}).get_json()
    (unpriced,) = over["unpriced"]
    assert unpriced["free"]["count"] == 1000 and "Other" in unpriced["reason"]
    import phonenumbers

    monkeypatch.setattr(phonenumbers, "example_number", lambda region: None)
    monkeypatch.setattr(phonenumbers, "example_number_for_type", lambda region, kind: None)
    body = client.post("/v1/costs/forecast", json=SERVICE).get_json()
    assert (body["total"], body["lines"][0]["free"]["count"]) == ("35.000", 1000)


def test_service_messages_in_a_free_entry_point_window_are_priced_by_its_rule(client):
    """The forecast decided every service message as sent inside an open customer service window, never at a free
    entry point: a line now says how many of its messages are sent inside a free entry point window, and those are
    decided there (FEP-3.rides-service: free). With the month's 1,000 used, 2,000 with 500 in that window cost
    1,500 x 0.035 = 52.500 BRL, not 70.000; the answer says what it assumes (notes)."""
    used = {**SERVICE, "service_messages_this_month": 1000}
    plain = client.post("/v1/costs/forecast", json=used).get_json()
    assert plain["total"] == "70.000"
    body = client.post("/v1/costs/forecast", json={**used, "lines": [
        {"country": "BR", "category": "service", "count": 2000, "free_entry_point": 500}]}).get_json()
    (line,) = body["lines"]
    assert (body["total"], line["free_entry_point"], line["free"]["count"]) == ("52.500", 500, 500)
    entry, window = line["free"]["by_window"]
    assert (entry["window"], entry["messages"], entry["count"], entry["rule"]) == (
        "free_entry_point", 500, 500, "FEP-3.rides-service")
    assert (window["window"], window["messages"], window["count"], window["charged_rule"]) == (
        "customer_service_window", 1500, 0, "PMP26-1.charged")
    assert any("free entry point window" in note for note in body["notes"])
    # counted first (the store counts them: pricing.category service), they use the allowance before the others
    fresh = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
        {"country": "BR", "category": "service", "count": 2000, "free_entry_point": 500}]}).get_json()
    assert (fresh["total"], fresh["lines"][0]["free"]["count"]) == ("35.000", 1000)


def test_a_free_entry_point_count_the_forecast_cannot_price_is_a_422(client):
    """More free entry point messages than the line has, or any on a line the rules are not asked about by window
    (marketing_lite, group_marketing: more of the send than a line says decides them, so they would be charged
    without a word), is a 422 naming lines.N.free_entry_point."""
    more = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
        {"country": "BR", "category": "service", "count": 2, "free_entry_point": 3}]})
    assert more.status_code == 422 and list(more.get_json()["errors"]) == ["lines.0.free_entry_point"]
    for category in ("marketing_lite", "group_marketing"):
        refused = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
            {"country": "BR", "category": "service", "count": 2},
            {"country": "BR", "category": category, "count": 2, "free_entry_point": 1}]})
        assert refused.status_code == 422 and list(refused.get_json()["errors"]) == ["lines.1.free_entry_point"]
    negative = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
        {"country": "BR", "category": "service", "count": 2, "free_entry_point": -1}]})
    assert negative.status_code == 422 and "lines.0.free_entry_point" in negative.get_json()["errors"]


def test_the_forecast_counts_the_wabas_day_and_says_whose_volume_it_continues(client, app):
    """Meta's volume tiers count per business portfolio, per market and calendar month from 12 am in the WABA time
    zone (PMP-5). The forecast took the UTC day and, with waba_id, said nothing of the portfolio: at
    2026-10-01T02:00Z a WABA in São Paulo is still on 2026-09-30, so its service messages are free (PMP-4, the July
    card) where UTC's day would charge 1,000 of them; with waba_id, volume_note says the count covers that WABA
    only, not the portfolio Meta counts (an upper bound), citing the rule; a zone no IANA zone is a 422."""
    body = {"currency": "BRL", "at": "2026-10-01T02:00:00Z",
            "lines": [{"country": "BR", "category": "service", "count": 2000}]}
    utc = client.post("/v1/costs/forecast", json=body).get_json()
    assert (utc["total"], utc["waba_timezone"], utc["lines"][0]["rate_card"]["id"]) == (
        "35.000", "UTC", "meta-brl-2026-10-01")
    local = client.post("/v1/costs/forecast", json={**body, "waba_timezone": "America/Sao_Paulo"}).get_json()
    assert (local["total"], local["lines"][0]["free"]["rule"], local["lines"][0]["rate_card"]["id"]) == (
        "0", "PMP-4", "meta-brl-2026-07-01")
    with app.app_context():
        business_state.learn_number(PHONE, WABA, datetime(2026, 1, 1, tzinfo=UTC))
    counted = client.post("/v1/costs/forecast", json={**body, "waba_id": WABA}).get_json()
    assert f"WABA {WABA}" in counted["volume_note"] and "business portfolio" in counted["volume_note"]
    assert "PMP-5.volume-tiers" in counted["volume_note"] and "at most what Meta charges" in counted["volume_note"]
    bad = client.post("/v1/costs/forecast", json={**body, "waba_timezone": "Mars/Olympus"})
    assert bad.status_code == 422 and bad.get_json()["errors"] == {"waba_timezone": ["unknown IANA time zone"]}


def test_template_messages_in_a_free_entry_point_window_are_priced_by_its_rule(client):
    """Template lines were priced as charged wherever sent: a marketing or utility line now says how many of its
    messages are sent inside a free entry point window, and the rules decide them there (FEP-3.rides-template:
    free); 10,000 marketing with 4,000 there cost 6,000 x 0.3217 = 1930.2000 BRL, not 3217.0000."""
    body = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
        {"country": "BR", "category": "marketing", "count": 10_000, "free_entry_point": 4_000},
        {"country": "BR", "category": "utility", "count": 5_000, "free_entry_point": 5_000}]}).get_json()
    marketing, utility = body["lines"]
    assert (marketing["amount"], marketing["free"]["count"], marketing["free"]["rule"]) == (
        "1930.2000", 4000, "FEP-3.rides-template")
    assert [(w["window"], w["messages"], w["count"]) for w in marketing["free"]["by_window"]] == [
        ("free_entry_point", 4000, 4000)]
    assert (utility["amount"], utility["free"]["count"]) == ("0.0000", 5000)
    assert any(note.startswith("Template lines: the messages a line gives as free_entry_point") for note in
               body["notes"])


US_CAMPAIGN = {"currency": "USD", "at": "2026-05-12T12:00:00Z", "lines": [
    {"country": "US", "category": "marketing", "count": 1000}, {"to": "+12125550123", "category": "marketing",
                                                                 "count": 10},
    {"country": "US", "category": "utility", "count": 100}]}


def test_a_line_the_rules_deny_is_not_priced(client):
    """Marketing templates to United States numbers are denied by the rules (MKT-4: Meta does not deliver them), yet
    the forecast priced them as delivered and counted them in the total: a line the rules deny is now unpriced, its
    reason and `denied` naming the denying rule and its sentence, and left out of the total (a note says so), by
    country or by number; the utility line beside them is priced as before."""
    body = client.post("/v1/costs/forecast", json=US_CAMPAIGN).get_json()
    (utility,) = body["lines"]
    assert (utility["category"], body["total"]) == ("utility", utility["amount"])
    assert [line["line"] for line in body["unpriced"]] == [0, 1]
    for line in body["unpriced"]:
        assert line["reason"].startswith("not delivered: the rules deny every message of the line (MKT-4: ")
        assert line["denied"]["rule"] == "MKT-4" and line["denied"]["count"] == line["count"]
        assert "marketing templates are not delivered to the US" in line["denied"]["because"]
        assert line["denied"]["by_window"] == [{"window": "outside_windows", "count": line["count"], "rule": "MKT-4",
                                                "because": line["denied"]["because"]}]
    assert any(note.startswith("1,010 messages are denied by the rules (MKT-4; ") for note in body["notes"])
    assert "+12015550123 (the example number asked about for US) is in the United States" in \
        body["unpriced"][0]["reason"]
    # in a window too: the rules deny it wherever it is sent
    windows = client.post("/v1/costs/forecast", json={**US_CAMPAIGN, "lines": [
        {"country": "US", "category": "marketing", "count": 30, "free_entry_point": 10,
         "customer_service_window": 10}]}).get_json()
    assert windows["total"] == "0" and [run["window"] for run in windows["unpriced"][0]["denied"]["by_window"]] == [
        "free_entry_point", "customer_service_window", "outside_windows"]


def test_what_a_forecast_line_denies_is_read_from_the_rule_files(tmp_path):
    """No rule id is written in Python: with MKT-4 changed to deny marketing to Brazil, Brazil's marketing line is
    denied by it; a free-form message outside both windows is denied by the rules' own CSW rule (a service line's
    customer_service_window below its count), the rest of the line priced as before."""
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    rule_file = tmp_path / "rules" / "country-restrictions.yaml"
    text = rule_file.read_text()
    rule_file.write_text(text.replace("      template_category: marketing\n      recipient_region: US\n",
                                      "      template_category: marketing\n      recipient_region: BR\n", 1))
    body = forecast_costs(Policy.load(str(tmp_path / "rules")), FORECAST.load({**SERVICE, "lines": [
        {"country": "BR", "category": "marketing", "count": 5},
        {"country": "BR", "category": "service", "count": 2000, "customer_service_window": 1500}]}))
    (marketing,) = body["unpriced"]
    assert marketing["denied"]["rule"] == "MKT-4" and "Brazil" not in marketing["reason"]
    (service,) = body["lines"]
    assert (service["amount"], service["free"]["count"], service["customer_service_window"]) == ("17.500", 1000, 1500)
    assert service["denied"]["count"] == 500 and service["denied"]["rule"] == "CSW-2.freeform-closed"
    assert body["total"] == "17.500"


def test_template_messages_in_an_open_customer_service_window_are_decided_there(client):
    """A template line had no way to say its messages are sent inside an open customer service window, so utility
    templates there, free by PMP-3 until 2026-09-30, were priced as charged. customer_service_window (of count, like
    free_entry_point) is decided by the rules in that window: on 2026-05-12 3,000 of 5,000 Brazil utility are free
    by PMP-3 (2,000 x 0.0068 = 13.6000 USD, not 34.0000); from 2026-10-01 PMP26-2 charges them (175.000 BRL)."""
    may = {"currency": "USD", "at": "2026-05-12T12:00:00Z", "lines": [
        {"country": "BR", "category": "utility", "count": 5000, "customer_service_window": 3000}]}
    body = client.post("/v1/costs/forecast", json=may).get_json()
    (line,) = body["lines"]
    assert (body["total"], line["customer_service_window"], line["free"]["count"], line["free"]["rule"]) == (
        "13.6000", 3000, 3000, "PMP-3")
    assert [(w["window"], w["messages"], w["count"]) for w in line["free"]["by_window"]] == [
        ("customer_service_window", 3000, 3000)]
    november = client.post("/v1/costs/forecast", json={**may, "currency": "BRL",
                                                       "at": "2026-11-10T12:00:00Z"}).get_json()
    (charged,) = november["lines"]
    assert (november["total"], charged["free"]["count"], charged["free"]["charged_rule"]) == ("175.000", 0, "PMP26-2")
    # a service line's default: every message not in a free entry point window is in the customer service window
    service = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [
        {"country": "BR", "category": "service", "count": 2000, "free_entry_point": 500}]}).get_json()
    assert service["lines"][0]["customer_service_window"] == 1500 and service["lines"][0]["denied"] is None


def test_a_bad_customer_service_window_count_is_a_422_naming_it(client):
    """customer_service_window is a whole count of the line's messages: negative, not an integer, more than count
    with free_entry_point, or on a line the rules are not asked about by window, is a 422 naming
    lines.N.customer_service_window."""
    def errors(**fields):
        line = {"country": "BR", "category": "utility", "count": 10, **fields}
        answer = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [line]})
        assert answer.status_code == 422
        return answer.get_json()["errors"]

    for value in (-1, 1.5, "3", True):
        assert list(errors(customer_service_window=value)) == ["lines.0.customer_service_window"]
    over = errors(customer_service_window=6, free_entry_point=5)
    assert over == {"lines.0.customer_service_window": [
        "with free_entry_point (5) at most count (10): these are some of the line's other messages"]}
    assert list(errors(customer_service_window=11)) == ["lines.0.customer_service_window"]
    assert list(errors(category="marketing_lite", customer_service_window=1)) == ["lines.0.customer_service_window"]


def test_the_page_takes_each_lines_windows_and_the_wabas_time_zone(client):
    """/ui/forecast had no input for free_entry_point, waba_timezone or customer_service_window: a line takes
    `free_entry_point=N` and `customer_service_window=N` after its count and the form a WABA time zone, priced as the
    API prices them; the page shows where the line's messages are sent and what the rules deny."""
    def page(**query):
        answer = client.get("/ui/forecast", query_string={"currency": "BRL", "at": SERVICE["at"], **query})
        return answer.status_code, answer.get_data(as_text=True)

    status, text = page(lines="BR marketing 10000 free_entry_point=4000\nUS marketing 5")
    assert status == 200 and "Total: 1930.2000 BRL" in text and "4000 in a free entry point window" in text
    assert "not delivered: the rules deny every message of the line (MKT-4" in text
    status, text = page(currency="USD", at="2026-05-12T12:00:00Z", lines="BR utility 5000 customer_service_window=3000")
    assert status == 200 and "Total: 13.6000 USD" in text and "3000 free (PMP-3" in text
    assert "3000 in a customer service window" in text
    status, text = page(at="2026-10-01T02:00:00Z", waba_timezone="America/Sao_Paulo", lines="BR service 2000")
    assert status == 200 and "Total: 0 BRL" in text and 'value="America/Sao_Paulo"' in text
    assert page(at="2026-10-01T02:00:00Z", lines="BR service 2000")[1].count("Total: 35.000 BRL") == 1


HTML = {"Accept": "text/html"}


def test_the_pages_window_and_time_zone_errors_are_the_apis(client):
    """A bad free_entry_point, customer_service_window or waba_timezone on /ui/forecast is a 422 with the API's own
    message, named as the page names the form's line (query.lines.2.<field>: line 2 of the text), in its JSON and its
    HTML alike; a word after the count that is no such field is refused as a malformed line."""
    cases = [({"country": "BR", "category": "service", "count": 2, "free_entry_point": 3},
              "BR service 2 free_entry_point=3", "free_entry_point"),
             ({"country": "BR", "category": "utility", "count": 10, "free_entry_point": 5,
               "customer_service_window": 6}, "BR utility 10 free_entry_point=5 customer_service_window=6",
              "customer_service_window"),
             ({"country": "BR", "category": "utility", "count": 10, "customer_service_window": -1},
              "BR utility 10 customer_service_window=-1", "customer_service_window"),
             ({"country": "BR", "category": "utility", "count": 10, "customer_service_window": "x"},
              "BR utility 10 customer_service_window=x", "customer_service_window"),
             ({"country": "BR", "category": "marketing_lite", "count": 10, "free_entry_point": 1},
              "BR marketing_lite 10 free_entry_point=1", "free_entry_point")]
    for line, text, field in cases:
        api = client.post("/v1/costs/forecast", json={**SERVICE, "lines": [SERVICE["lines"][0], line]})
        assert api.status_code == 422, text
        (message,) = api.get_json()["errors"][f"lines.1.{field}"]
        query = {"currency": "BRL", "at": SERVICE["at"], "lines": f"BR service 1\n{text}"}
        as_json = client.get("/ui/forecast", query_string=query, headers={"Accept": "application/json"})
        assert (as_json.status_code, as_json.get_json()["errors"]) == (422, {f"query.lines.2.{field}": [message]})
        html = client.get("/ui/forecast", query_string=query, headers=HTML).get_data(as_text=True)
        assert f"<code>query.lines.2.{field}</code>: {escape(message)}" in html, text
    zone = client.get("/ui/forecast", query_string={"currency": "BRL", "at": SERVICE["at"], "lines": "BR service 1",
                                                    "waba_timezone": "Mars/Olympus"}, headers=HTML)
    assert zone.status_code == 422 and "<code>query.waba_timezone</code>: unknown IANA time zone" in zone.get_data(
        as_text=True)
    for text in ("BR utility 10 foo=1", "BR utility 10 free_entry_point=1 free_entry_point=2", "BR utility 10 5"):
        bad = client.get("/ui/forecast", query_string={"currency": "BRL", "at": SERVICE["at"], "lines": text},
                         headers=HTML)
        assert bad.status_code == 422 and "<code>query.lines.1</code>: write one line as" in bad.get_data(as_text=True)


def test_the_pages_counts_in_digits_other_than_ascii_are_a_422_naming_them(client):
    """/ui/forecast read a count with str.isdigit() then int(): a superscript digit (², which isdigit() accepts and
    int() refuses) was a 500 ValueError. A count in a line, the service messages this month or a line's
    `name=N` written in anything but ASCII digits (superscripts, Arabic-Indic, fullwidth) is a 422 naming it."""
    base = {"at": "2026-11-10T12:00:00Z", "currency": "BRL"}
    for digit in ("\u00b2", "\u0661", "\uff11"):
        cases = {"query.lines.1": {"lines": f"BR service {digit}"},
                 "query.service_messages_this_month": {"lines": "BR service 2", "service_messages_this_month": digit},
                 "query.lines.1.free_entry_point": {"lines": f"BR service 2 free_entry_point={digit}"}}
        for name, query in cases.items():
            answer = client.get("/ui/forecast", query_string={**base, **query}, headers={"Accept": "application/json"})
            assert answer.status_code == 422 and list(answer.get_json()["errors"]) == [name], (digit, query)
    assert client.get("/ui/forecast", query_string={**base, "lines": "BR service 2",
                                                    "service_messages_this_month": "1"}).status_code == 200


def test_an_empty_lines_or_time_submitted_on_the_page_is_a_422_naming_it(client):
    """/ui/forecast?lines=&at=... answered 200 forecasting the sample lines (BR marketing 10000 / BR utility 5000), and
    an empty `at` became today's noon, without a word: a submitted empty (or blank) Lines or Delivered at is a 422
    naming query.lines / query.at, in JSON and HTML. The form first shown (nothing submitted) still offers the sample
    lines, and the Lines box keeps them as its placeholder."""
    base = {"at": "2026-11-10T12:00:00Z", "currency": "USD", "lines": "BR utility 10"}
    for query, names in (({"lines": ""}, ["query.lines"]), ({"lines": " \n "}, ["query.lines"]),
                         ({"at": ""}, ["query.at"]), ({"lines": "", "at": " "}, ["query.at", "query.lines"])):
        answer = client.get("/ui/forecast", query_string={**base, **query}, headers={"Accept": "application/json"})
        assert answer.status_code == 422 and sorted(answer.get_json()["errors"]) == names, query
        html = client.get("/ui/forecast", query_string={**base, **query}, headers=HTML).get_data(as_text=True)
        assert f"<code>{names[0]}</code>: required" in html and "10000" not in html.split("<textarea")[1].split(
            ">", 1)[1].split("</textarea>")[0], query
    first = client.get("/ui/forecast", headers=HTML)
    assert first.status_code == 200
    assert ">BR marketing 10000\nBR utility 5000</textarea>" in first.get_data(as_text=True)
    assert client.get("/ui/forecast", query_string=base, headers=HTML).status_code == 200


def test_a_wabas_stored_account_restriction_or_ban_denies_its_lines(client, app):
    """A WABA Meta restricted from business-initiated messaging (ACC-1) or disabled (ACC-2) was forecast as if it
    could send: with waba_id the forecast takes its stored account state into the rules' questions, so its template
    lines outside any window are denied by ACC-1 while those inside an open customer service window and its service
    lines are priced; once disabled, every line is denied by ACC-2. A note names the stored state used."""
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)
    with app.app_context():
        business_state.record_account(WABA, "account_update", "ACCOUNT_RESTRICTION", datetime(2026, 11, 9, tzinfo=UTC),
                                      {"restriction_info": [{"restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                                                             "expiration": int(at.timestamp()) + 86400}]})
    body = {**SERVICE, "waba_id": WABA, "lines": [
        {"country": "BR", "category": "marketing", "count": 10, "customer_service_window": 4},
        {"country": "BR", "category": "service", "count": 5}]}
    restricted = client.post("/v1/costs/forecast", json=body).get_json()
    marketing, service = restricted["lines"]
    assert (marketing["denied"]["count"], marketing["denied"]["rule"], marketing["amount"]) == (6, "ACC-1", "1.2868")
    assert service["denied"] is None and restricted["total"] == "1.2868"
    assert any("business_initiated_restricted True" in note for note in restricted["notes"])
    with app.app_context():
        business_state.record_account(WABA, "account_update", "DISABLED_UPDATE", datetime(2026, 11, 9, 1, tzinfo=UTC),
                                      {"ban_info": {"waba_ban_state": "DISABLE"}})
    banned = client.post("/v1/costs/forecast", json=body).get_json()
    assert banned["lines"] == [] and banned["total"] == "0"
    assert {line["denied"]["rule"] for line in banned["unpriced"]} == {"ACC-2"}
    assert client.post("/v1/costs/forecast", json={**body, "waba_id": "999"}).get_json()["total"] != "0"


def test_a_ban_scheduled_after_the_forecast_time_denies_nothing_and_one_reached_denies_every_line(client, app):
    """A stored SCHEDULE_FOR_DISABLE whose waba_ban_date is after the forecast's time leaves every line priced (the
    ban is not in force yet) and the note names the scheduled time; one whose date has come denies every line
    (ACC-2.scheduled-date-reached), as a disable does."""
    at = datetime(2026, 11, 10, 12, tzinfo=UTC)
    body = {**SERVICE, "waba_id": WABA, "lines": [{"country": "BR", "category": "service", "count": 5}]}
    with app.app_context():
        business_state.record_account(WABA, "account_update", "DISABLED_UPDATE", datetime(2026, 11, 9, tzinfo=UTC),
                                      {"ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE",
                                                    "waba_ban_date": "November 20, 2026"}})
    scheduled = client.post("/v1/costs/forecast", json=body).get_json()
    assert scheduled["unpriced"] == [] and [line["count"] for line in scheduled["lines"]] == [5]
    assert any("account_ban_scheduled_at 2026-11-20T00:00:00+00:00" in note for note in scheduled["notes"])
    with app.app_context():
        business_state.record_account(WABA, "account_update", "DISABLED_UPDATE", datetime(2026, 11, 9, 1, tzinfo=UTC),
                                      {"ban_info": {"waba_ban_state": "SCHEDULE_FOR_DISABLE",
                                                    "waba_ban_date": (at - timedelta(hours=1)).isoformat()}})
    reached = client.post("/v1/costs/forecast", json=body).get_json()
    assert reached["lines"] == [] and {line["denied"]["rule"] for line in reached["unpriced"]} == {
        "ACC-2.scheduled-date-reached"}


def test_the_cli_and_the_python_api_refuse_a_bad_window_count_by_field(database_url, tmp_path):
    """`policy-service forecast FILE` and PolicyService.forecast read a line's customer_service_window as the API does:
    more than count with free_entry_point is refused naming lines.0.customer_service_window (CLI exit 1), and a
    denied line comes back unpriced with its rule."""
    import json

    import pytest
    from click.testing import CliRunner

    from policy_service import PolicyService, ServiceError, cli

    bad = {**SERVICE, "lines": [{"country": "BR", "category": "utility", "count": 2, "free_entry_point": 1,
                                 "customer_service_window": 2}]}
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    refused = CliRunner().invoke(cli.main, ["forecast", str(tmp_path / "bad.json"), "--database-url", database_url])
    assert refused.exit_code == 1 and "lines.0.customer_service_window" in refused.output
    service = PolicyService(database_url=database_url)
    with pytest.raises(ServiceError) as error:
        service.forecast(bad)
    assert error.value.code == 422 and list(error.value.errors) == ["lines.0.customer_service_window"]
    us = service.forecast({**SERVICE, "lines": [{"to": "+12125550123", "category": "marketing", "count": 3}]})
    assert us["total"] == "0" and us["unpriced"][0]["denied"]["rule"] == "MKT-4"


def test_a_line_to_a_business_scoped_user_id_is_asked_as_one(client):
    """A line's `to` may be a BSUID, and Meta does not send authentication templates to one (BSUID-1.template), yet
    the forecast asked the rules about a number of its country and priced it: such a line is asked about a BSUID of
    its country, so it is denied, while the same line to the country's numbers is not."""
    body = {"currency": "USD", "at": "2026-11-10T12:00:00Z", "lines": [
        {"to": "BR.13491208655302741918", "category": "authentication", "count": 5},
        {"country": "BR", "category": "authentication", "count": 5},
        {"to": "BR.13491208655302741918", "category": "utility", "count": 5}]}
    answer = client.post("/v1/costs/forecast", json=body).get_json()
    denied = {line["line"]: line["denied"] for line in answer["lines"] + answer["unpriced"]}
    assert denied[0]["rule"] == "BSUID-1.template" and denied[0]["count"] == 5
    assert "BR.forecast (standing for the line's recipients) is a business-scoped user ID" in denied[0]["because"]
    assert denied[1] is None and denied[2] is None


def test_a_line_with_no_single_rate_answers_rate_null_as_documented(client):
    """A line's `rate` is a decimal string (in `currency`, per message) only when every charged message of it has that
    one rate: a line the rules leave wholly free (500 Brazil service messages in November 2026: PMP26-1's allowance)
    is charged nothing, so `rate` is null with `amount` 0 and no tiers, as a free send's `charge.price` is null
    in a decision, never a made-up 0 rate; a line whose tiers charge two rates is null too (the rates are in
    `tiers`). The OpenAPI document and README say so (they listed `rate` without saying when it is null)."""
    body = client.post("/v1/costs/forecast", json={"currency": "BRL", "at": "2026-11-10T12:00:00+00:00", "lines": [
        {"country": "BR", "category": "service", "count": 500}]}).get_json()
    (free,) = body["lines"]
    assert (Decimal(free["amount"]), free["rate"], free["tiers"], free["free"]["count"]) == (0, None, [], 500), free
    body = client.post("/v1/costs/forecast", json={"currency": "USD", "at": "2026-11-10T12:00:00+00:00", "lines": [
        {"country": "KE", "category": "utility", "count": 100_001}]}).get_json()
    (tiered,) = body["lines"]
    assert tiered["rate"] is None and [t["rate"] for t in tiered["tiers"]] == ["0.0040", "0.0038"], tiered
    described = client.get("/openapi.json").get_json()["paths"]["/v1/costs/forecast"]["post"]["responses"]["200"]
    assert "`rate` (null when" in described["description"], described["description"]
    from ..conftest import ROOT
    assert "`rate` is null when" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("number", ["¹0", "²", "9" * 5000])
def test_the_pages_counts_that_isdigit_takes_but_int_refuses_are_422s(client, number):
    """/ui/forecast read a count with str.isdigit() then int(): a superscript digit ("¹0", true for isdigit) or more
    digits than int() reads (5,000) was a ValueError, a 500. The month's service messages, a line's COUNT and a
    line's name=N are each a 422 naming the field, as any other text there is."""
    base = {"currency": "BRL", "at": SERVICE["at"]}
    cases = {"service_messages_this_month": {"lines": "BR service 1", "service_messages_this_month": number},
             "lines.1": {"lines": f"BR service {number}"},
             "lines.1.free_entry_point": {"lines": f"BR service 1 free_entry_point={number}"}}
    for field, query in cases.items():
        page = client.get("/ui/forecast", query_string={**base, **query}, headers={"Accept": "application/json"})
        assert page.status_code == 422, (field, page.get_data(as_text=True)[:300])
        assert any(name.endswith(field) for name in page.get_json()["errors"]), page.get_json()


def test_a_stored_volume_the_code_cannot_read_is_noted_not_a_500(client, app, monkeypatch):
    """An internal error reading the WABA's stored volume (a stored value the code cannot read, as the superscript
    tier was) made POST /v1/costs/forecast with a waba_id a 500: the line is now priced from the card's first tier
    (an upper bound) and a note says the stored volume was not read; a storage fault is still a 503."""
    from policy_service.service import forecast as module

    with app.app_context():
        business_state.learn_number(PHONE, WABA, datetime(2026, 1, 1, tzinfo=UTC))

    def unreadable(*args, **kwargs):
        raise ValueError("invalid literal for int() with base 10: '¹50001'")

    monkeypatch.setattr(module, "month_volume", unreadable)
    body = {"currency": "USD", "at": "2026-11-10T10:00:00Z", "waba_id": WABA,
            "lines": [{"country": "KE", "category": "utility", "count": 10}]}
    answer = client.post("/v1/costs/forecast", json=body)
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["lines"][0]["volume_before"] == 0
    assert any("could not be read (ValueError)" in note for note in answer.get_json()["notes"])
    import peewee

    def storage_down(*args, **kwargs):
        raise peewee.OperationalError("disk I/O error")

    monkeypatch.setattr(module, "month_volume", storage_down)
    assert client.post("/v1/costs/forecast", json=body).status_code == 503
