"""The cost report equals the hand calculation on fixture data: billed statuses priced by the card, and predictions."""

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.core.rates import load_ratebook
from policy_service.review.costs import chart, cost_report
from policy_service.store import histories

from ..conftest import RULES_DIR
from ..core.test_rates import META_CSV

PHONE = "1234567890"
UK, BRAZIL, US = "447400123456", "5511987654321", "14155550123"


def status(wamid, contact, at, category, billable=True, model="PMP", state="delivered", pricing=True,
           conversation=None):
    histories.store_status(histories.Status(
        wamid=wamid, phone_number_id=PHONE, contact=contact, at=datetime.fromisoformat(at).replace(tzinfo=UTC),
        status=state, conversation_id=conversation,
        pricing={"billable": billable, "pricing_model": model, "category": category,
                 "type": "regular" if billable else "free_customer_service"} if pricing else None))


def decide(client, at, to, category=None, context=None, history=None):
    send = {"at": at, "to": "+" + to, "type": "template" if category else "text"}
    if category:
        send["template"] = {"name": "t", "language": "en", "category": category, "status": "APPROVED"}
    body = {"send": send, "history": history or [], "context": context or {}}
    response = client.post("/v1/decisions", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def stored(app, client):
    """Billed statuses and logged decisions in May, June and July 2026 (the USD card covers April-June)."""
    with app.app_context():
        status("w1", UK, "2026-05-03T10:00:00", "utility")          # UK utility, 1st of May: 0.0220
        status("w2", UK, "2026-05-04T10:00:00", "marketing")        # UK marketing: 0.0529
        status("w3", BRAZIL, "2026-05-05T10:00:00", "marketing")    # Brazil marketing: 0.0625
        status("w4", UK, "2026-05-06T10:00:00", "utility", billable=False)  # free: not billed
        status("w5", US, "2026-05-07T10:00:00", "utility")          # North America utility: 0.0034
        status("w6", UK, "2026-06-02T10:00:00", "utility")          # June: 0.0220
        status("w7", UK, "2026-05-08T10:00:00", "utility", pricing=False)   # no pricing: not counted
        status("w8", UK, "2026-05-09T10:00:00", "utility", state="sent")    # not delivered: not counted
        status("w9", UK, "2026-07-16T10:00:00", "marketing")        # July's USD copy lists only Brazil: unpriced
        status("w0", BRAZIL, "2026-08-01T10:00:00", "marketing")    # after the period
    decide(client, "2026-05-03T10:00:00+00:00", UK, "utility")       # predicted 0.0220
    decide(client, "2026-05-05T10:00:00+00:00", BRAZIL, "marketing")  # predicted 0.0625
    decide(client, "2026-07-15T10:00:00+00:00", UK, "marketing")      # predicted, no price (not on July's copy)
    decide(client, "2026-05-10T10:00:00+00:00", UK, history=[         # free-form in the window: not billable
        {"direction": "inbound", "at": "2026-05-10T09:00:00+00:00", "type": "text"}])
    decide(client, "2026-05-11T10:00:00+00:00", US, "marketing")      # denied (US marketing pause): not counted
    return app


def test_report_equals_the_hand_calculation(stored):
    """Per month and category, with the arithmetic written out."""
    with stored.app_context():
        report = cost_report(stored.extensions["policy_service"].rulebook.rates, date(2026, 5, 1),
                             date(2026, 7, 31))
    rows = {(r["month"], r["category"]): r for r in report["rows"]}
    assert set(rows) == {("2026-05", "marketing"), ("2026-05", "utility"), ("2026-06", "utility"),
                         ("2026-07", "marketing")}
    # May marketing: billed w2 0.0529 + w3 0.0625 = 0.1154; predicted Brazil 0.0625.
    assert rows["2026-05", "marketing"]["billed"] == {"count": 2, "amount": "0.1154", "unpriced": 0,
                                                      "unpriced_reasons": {}, "at_meta_average": 0}
    assert rows["2026-05", "marketing"]["predicted"]["amount"] == "0.0625"
    # May utility: billed w1 0.0220 + w5 0.0034 = 0.0254 (w4 free, w7 without pricing, w8 only sent); predicted 0.0220.
    assert (rows["2026-05", "utility"]["billed"]["count"], rows["2026-05", "utility"]["billed"]["amount"]) == (
        2, "0.0254")
    assert (rows["2026-05", "utility"]["predicted"]["count"], rows["2026-05", "utility"]["predicted"]["amount"]) == (
        1, "0.0220")
    # June utility: billed w6 0.0220; nothing predicted.
    assert rows["2026-06", "utility"]["billed"]["amount"] == "0.0220"
    assert rows["2026-06", "utility"]["predicted"]["count"] == 0
    # July: the USD card of 2026-07-01 is a partial copy without the UK, on either side; the reason is kept.
    july = rows["2026-07", "marketing"]
    assert (july["billed"]["count"], july["billed"]["unpriced"], july["billed"]["amount"]) == (1, 1, "0")
    assert "meta-usd-2026-07-01 is a partial copy of Meta's USD card: its source gives no rate for market United " \
           "Kingdom" in next(iter(july["billed"]["unpriced_reasons"]))
    assert (july["predicted"]["count"], july["predicted"]["unpriced"]) == (1, 1)
    # Totals: billed 0.1154 + 0.0254 + 0.0220 = 0.1628 over 6 items (1 unpriced);
    # predicted 0.0625 + 0.0220 = 0.0845 over 3 (1 unpriced).
    assert (report["totals"]["billed"]["count"], report["totals"]["billed"]["amount"],
            report["totals"]["billed"]["unpriced"]) == (6, "0.1628", 1)
    assert (report["totals"]["predicted"]["count"], report["totals"]["predicted"]["amount"],
            report["totals"]["predicted"]["unpriced"]) == (3, "0.0845", 1)


def test_billed_tiers_are_counted_marginally_from_the_first_of_the_month(app, tmp_path):
    """With a card whose Brazil utility tier ends at 2 messages: May 1 and 2 at 0.0100, May 3 at 0.0080.

    The report from May 2 counts the May 1 message toward the volume but not in its sum: 0.0100 + 0.0080 = 0.0180.
    """
    (tmp_path / "rates.csv").write_text(META_CSV)
    section = ",From,To,Rate type,Rate,vs. List rate"
    (tmp_path / "tiers.csv").write_text(
        '"Cost per message in USD, effective April 1, 2026 - volume tiers",,,,,,,,,,,,\n'
        ",,Utility,,,,,Authentication,,,,,\n"
        f"Market,Currency{section}{section}\n"
        'Brazil,USD,0,2,List rate,0.0068,0%,0,2,List rate,0.0068,0%\n'
        ',USD,3,--,Tier rate,0.0050,-26%,3,--,Tier rate,0.0050,-26%\n')
    rates = load_ratebook(RULES_DIR / "rates", csv_rates=tmp_path / "rates.csv", csv_tiers=tmp_path / "tiers.csv")
    with app.app_context():
        for day in (1, 2, 3):
            status(f"b{day}", BRAZIL, f"2026-05-0{day}T10:00:00", "utility")
        status("b0", BRAZIL, "2026-04-30T10:00:00", "utility")  # April: its own month, not counted in May
        report = cost_report(rates, date(2026, 5, 2), date(2026, 5, 31), group_by=("market", "category"))
    (row,) = report["rows"]
    # Message 2 of May: tier 1, 0.0068; message 3: tier 2, 0.0050. 0.0068 + 0.0050 = 0.0118.
    assert (row["market"], row["billed"]["count"], row["billed"]["amount"]) == ("Brazil", 2, "0.0118")


def test_cbp_conversations_are_billed_once(app):
    """Under conversation-based pricing only the first billed message of a conversation is counted."""
    with app.app_context():
        status("c1", UK, "2026-05-03T10:00:00", "marketing", model="CBP", conversation="conv-1")
        status("c2", UK, "2026-05-03T11:00:00", "marketing", model="CBP", conversation="conv-1")
        report = cost_report(app.extensions["policy_service"].rulebook.rates, date(2026, 5, 1), date(2026, 5, 31))
    (row,) = report["rows"]
    # One conversation; the USD card prices per delivered message, so it has no per-conversation price.
    assert (row["billed"]["count"], row["billed"]["unpriced"]) == (1, 1)
    assert "prices per delivered message" in next(iter(row["billed"]["unpriced_reasons"]))


def test_http_cli_and_page_show_the_same_report(stored, client):
    """GET /v1/costs, `policy-service costs --json` and /ui/costs agree; bad queries are 422 naming the field."""
    body = client.get("/v1/costs?from=2026-05-01&to=2026-07-31").get_json()
    assert body["totals"]["billed"]["amount"] == "0.1628"
    assert client.get("/v1/costs?from=2026-05-01&to=2026-04-01").get_json()["errors"] == {
        "query.to": ["must not be before from"]}
    assert "query.group_by" in client.get("/v1/costs?from=2026-05-01&to=2026-05-02&group_by=wamid").get_json()[
        "errors"]
    assert "query.from" in client.get("/v1/costs?to=2026-05-02").get_json()["errors"]
    result = CliRunner().invoke(cli.main, ["costs", "--from", "2026-05-01", "--to", "2026-07-31", "--json",
                                           "--database-url", stored.config["DATABASE_URL"]])
    assert result.exit_code == 0, result.output
    assert '"amount": "0.1628"' in result.output
    page = client.get("/ui/costs?from=2026-05-01&to=2026-07-31")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and "2026-05 marketing billed: 0.1154 USD" in html and "0.1628" in html
    assert client.get("/ui/costs?from=nope").status_code == 422


def test_chart_scales_bars_to_the_largest_amount(stored):
    """The tallest bar is the largest amount; a zero amount has no height."""
    with stored.app_context():
        report = cost_report(stored.extensions["policy_service"].rulebook.rates, date(2026, 5, 1),
                             date(2026, 6, 30))
    drawn = chart(report, height=240, margin=40)
    tallest = max(drawn["bars"], key=lambda bar: bar.height)
    assert (tallest.amount, tallest.height, drawn["top"]) == ("0.1154", 160.0, "0.1154")
    assert Decimal(min(drawn["bars"], key=lambda bar: bar.height).amount) == 0


def _side(count, amount, unpriced=0):
    return {"count": count, "amount": amount, "unpriced": unpriced, "unpriced_reasons": {"no card": unpriced}
            if unpriced else {}, "at_meta_average": 0}


def test_differences_name_category_mismatch_volume_tier_and_rate():
    """Synthetic rows: a template Meta billed as marketing that the decision predicted as utility shows as a
    category mismatch on both rows; Meta's lower average on a tiered column is a volume tier, on marketing a rate."""
    from policy_service.review.costs import differences

    rates = load_ratebook(RULES_DIR / "rates")
    keys = ("month", "category", "country")
    utility = {"month": "2026-05", "category": "utility", "country": "GB", "meta": _side(4, "0.0800"),
               "billed": _side(4, "0.0880"), "predicted": _side(5, "0.1100")}
    marketing = {"month": "2026-05", "category": "marketing", "country": "GB", "meta": _side(1, "0.0500"),
                 "billed": _side(1, "0.0529"), "predicted": _side(0, "0")}
    rows = [utility, marketing]
    found = differences(utility, rows, keys, rates, date(2026, 5, 31))
    assert [(d["between"], [c["cause"] for c in d["causes"]]) for d in found] == [
        ("meta and card price", ["volume_tier"]), ("card price and predicted", ["category_mismatch"])]
    assert "marketing shows the opposite" in found[1]["causes"][0]["text"]
    found = differences(marketing, rows, keys, rates, date(2026, 5, 31))
    assert [c["cause"] for c in found[0]["causes"]] == ["rate"]
    assert [c["cause"] for c in found[1]["causes"]] == ["category_mismatch"]


def test_unpriced_reasons_are_counted_by_kind_not_one_key_per_message(app, client):
    """A BRL trial: utility statuses to Brazil in August 2026 (the BRL card of 2026-07-01 has no Brazil volume tiers)
    after the month's first are unpriced, each reason naming its own number in the month ("message 1,000 of the
    month may be discounted"): `unpriced_reasons` had one key per message (6,776 keys, 4.55 MB). They are counted
    by kind, without the number: one key for all 59, and the answer stays small over HTTP and the CLI."""
    with app.app_context():
        for i in range(60):
            status(f"u{i}", BRAZIL, f"2026-08-03T10:{i:02d}:00", "utility")
    body = client.get("/v1/costs?from=2026-08-01&to=2026-08-31&currency=BRL")
    report = body.get_json()
    billed = report["totals"]["billed"]
    assert (billed["count"], billed["amount"], billed["unpriced"]) == (60, "0.0350", 59)  # the first: list rate
    [(reason, count)] = billed["unpriced_reasons"].items()
    assert count == 59
    assert reason == ("Meta discounts utility by monthly volume, but rate card meta-brl-2026-07-01 has no BRL volume "
                      "tiers for Brazil (not in its source): a message after the first of the month may be "
                      "discounted; the list rate 0.0350 BRL is an upper bound")
    assert len(body.get_data()) < 3_000
    result = CliRunner().invoke(cli.main, ["costs", "--from", "2026-08-01", "--to", "2026-08-31", "--currency",
                                           "BRL", "--json", "--database-url", app.config["DATABASE_URL"]])
    assert result.exit_code == 0 and len(result.output) < 5_000, result.output
    assert json.loads(result.output)["rows"][0]["billed"]["unpriced_reasons"] == {reason: 59}


@pytest.mark.parametrize(("reason", "kind"), [
    ("no USD rate card for 2027-01-01 (cards in USD: a, b)", "no USD rate card for the day (cards in USD: a, b)"),
    ("the market of GB on 2026-10-02 is unknown (no market map covers 2026-10-02)",
     "the market of GB on the day is unknown (no market map covers the day)"),
    ("the market of GB on 2026-10-02 is unknown (market map m does not say)",
     "the market of GB on the day is unknown (market map m does not say)"),
    ("marketing sent under a max-price bid of 0.05 USD: Meta charges the delivered price, at most the bid, which no "
     "card gives", "marketing sent under a max-price bid of a given amount: Meta charges the delivered price, at "
     "most the bid, which no card gives"),
    ("2 of 3 participants have no price — +55 (BR): x; +49 (DE): y",
     "some participants have no price — each one's reason is on its price line"),
    ("rate card c has no row for market Brazil", "rate card c has no row for market Brazil"),
])
def test_each_reason_naming_a_sends_particulars_has_one_kind(reason, kind):
    """core.pricing.reason_kind: the day, the bid, the participants and the number in the month are put in words; a
    reason with no particulars is its own kind."""
    from policy_service.core.pricing import reason_kind

    assert reason_kind(reason) == kind


def test_group_sends_and_unknown_countries_are_labelled_as_words_the_api_takes(app, client):
    """The report put group sends (and recipients of no known country) under country "ZZ", a code the API refuses
    wherever it takes a country. A group send is `group` (Meta's recipient_type), on the billed side (a status
    stored under its group, which names no participant: unpriced, saying so) and the predicted side (a decision
    with participants); an unknown country is `unknown`, as its market is."""
    with app.app_context():
        histories.store_status(histories.Status(
            wamid="g1", phone_number_id=PHONE, contact="Y2FwaV9ncm91cDpHMQ", group_id="Y2FwaV9ncm91cDpHMQ",
            at=datetime(2026, 5, 10, 12, 0, 5, tzinfo=UTC), status="delivered",
            pricing={"billable": True, "pricing_model": "PMP", "category": "group_marketing", "type": "regular"}))
        status("x1", "99912345678", "2026-05-11T10:00:00", "marketing")  # +999: no country
    group = {"at": "2026-05-10T12:00:00+00:00", "to": "Y2FwaV9ncm91cDpHMQ", "recipient_type": "group",
             "participants": ["+5511976540001", "+4915112345678"], "type": "template",
             "template": {"name": "t", "language": "en", "category": "marketing", "status": "APPROVED"}}
    assert client.post("/v1/decisions", json={"send": group, "history": []}).status_code == 200
    report = client.get("/v1/costs?from=2026-05-01&to=2026-05-31&group_by=country,category").get_json()
    rows = {(r["country"], r["category"]): r for r in report["rows"]}
    assert set(rows) == {("group", "group_marketing"), ("unknown", "marketing")}
    billed, predicted = rows["group", "group_marketing"]["billed"], rows["group", "group_marketing"]["predicted"]
    assert (billed["count"], billed["unpriced"], predicted["count"], predicted["amount"]) == (1, 1, 1, "0.1990")
    assert "the stored status does not say which participants it reached" in next(iter(billed["unpriced_reasons"]))
    assert rows["unknown", "marketing"]["billed"]["unpriced"] == 1
    assert "ZZ" not in json.dumps(report)


def test_both_wa_id_forms_of_a_mexican_user_are_billed_in_mexico(app, client):
    """Meta writes a Mexican wa_id as 521 + ten digits or 52 + ten digits; the 521 form (no valid number itself) was
    billed under country `unknown` ("no known country calling code") while the other was MX. Both forms of one
    user are one country, priced alike."""
    with app.app_context():
        status("m1", "5215512345678", "2026-05-03T10:00:00", "marketing")
        status("m2", "525512345678", "2026-05-03T11:00:00", "marketing")
    report = client.get("/v1/costs?from=2026-05-01&to=2026-05-31&group_by=category,country").get_json()
    (row,) = report["rows"]
    assert row["country"] == "MX" and row["billed"]["count"] == 2 and row["billed"]["unpriced"] == 0, row


def test_predictions_are_read_for_the_period_only_with_the_same_days(app, client):
    """The predicted side read every allowed decision ever logged and kept its period's in Python (30,665 rows:
    1.5 s for an empty month). It now reads only sends within a day of the period (store.decision_log.allowed_sends,
    bounded in SQL on the send's time: a decision may be logged long before or after its send, as here, logged in
    December for sends in May) and keeps the same UTC days: a send on 1 May at 02:00+05:00 is 30 April, one on
    30 April at 22:00-05:00 is 1 May."""
    from policy_service.review.costs import predicted_items
    from policy_service.store import decision_log

    ids = {at: decide(client, at, UK, "utility")["decision_id"] for at in (
        "2026-01-10T10:00:00+00:00", "2026-04-30T22:00:00-05:00", "2026-05-01T02:00:00+05:00",
        "2026-05-15T10:00:00+00:00", "2026-05-31T20:00:00-05:00", "2026-09-10T10:00:00+00:00")}
    with app.app_context():
        read = {row.decision_id for row in decision_log.allowed_sends(date(2026, 5, 1), date(2026, 5, 31))}
        items = predicted_items(date(2026, 5, 1), date(2026, 5, 31), "USD")
    assert ids["2026-01-10T10:00:00+00:00"] not in read and ids["2026-09-10T10:00:00+00:00"] not in read
    assert sorted(item.day.isoformat() for item in items) == ["2026-05-01", "2026-05-15"]
