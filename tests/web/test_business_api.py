"""The registry and counts over HTTP: import Meta's message_templates response, list it, read one template's history."""

import threading
import time
from datetime import UTC, datetime

from ..meta_business_payloads import category_completed, message_templates_response
from ..meta_payloads import (
    BSUID,
    CONTACT,
    PHONE_NUMBER_ID,
    WABA_ID,
    deliver,
    inbound_text,
    pmp,
    status,
    username_status,
)

T0 = 1756717200  # 2025-09-01T09:00:00Z


def test_an_imported_template_decides_a_name_only_send_and_names_the_import(client):
    """Templates older than the webhooks come from GET /<WABA_ID>/message_templates; the trace says so."""
    response = client.post(f"/v1/wabas/{WABA_ID}/message_templates", json=message_templates_response(
        ("order_update", "en_US", "UTILITY", "APPROVED"), ("spring_sale", "en", "MARKETING", "PAUSED")))
    assert response.status_code == 200 and response.json == {"imported": 2}
    deliver(client, inbound_text("wamid.in1", T0))
    body = client.post("/v1/decisions", json={
        "send": {"at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "template",
                 "template": {"name": "spring_sale", "language": "en"}},
        "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}).json
    assert body["decision"] == "deny" and body["error_codes"] == [132015]
    assert body["facts"]["sources"]["template_status"].startswith(
        "GET /<WABA_ID>/message_templates imported at ")


def test_the_registry_lists_each_template_with_its_sources_and_history(client):
    """GET lists the state in force (at a time) and one template's events, oldest first."""
    client.post(f"/v1/wabas/{WABA_ID}/message_templates",
                json=message_templates_response(("order_update", "en_US", "UTILITY", "APPROVED")))
    later = int(time.time()) + 60  # a webhook after the import
    deliver(client, category_completed("order_update", "en_US", "UTILITY", "MARKETING", later))
    at = {"at": datetime.fromtimestamp(later + 60, tz=UTC).isoformat()}
    listing = client.get(f"/v1/wabas/{WABA_ID}/templates", query_string=at).json["templates"]
    assert [(t["name"], t["category"], t["status"]) for t in listing] == [("order_update", "marketing", "APPROVED")]
    assert listing[0]["sources"]["category"] == \
        f"template_category_update webhook at {datetime.fromtimestamp(later, tz=UTC).isoformat()}"
    assert listing[0]["sources"]["status"].startswith("GET /<WABA_ID>/message_templates imported at ")
    # Now (before the webhook takes effect) the import still decides.
    assert client.get(f"/v1/wabas/{WABA_ID}/templates").json["templates"][0]["category"] == "utility"
    one = client.get(f"/v1/wabas/{WABA_ID}/templates/order_update/en_US").json
    assert [e["source"] for e in one["history"]] == ["message_templates import", "template_category_update"]
    assert client.get(f"/v1/wabas/{WABA_ID}/templates/nothing/en").status_code == 404


def test_a_malformed_import_is_a_422_naming_the_field(client):
    """A template without a status is refused with its index; nothing is imported."""
    response = client.post(f"/v1/wabas/{WABA_ID}/message_templates",
                           json={"data": [{"name": "a", "language": "en", "category": "UTILITY"}]})
    assert response.status_code == 422
    assert response.json["errors"] == {"data.0.status": ["Missing data for required field."]}
    assert client.get(f"/v1/wabas/{WABA_ID}/templates").json["templates"] == []


def test_an_import_naming_a_template_as_meta_would_not_is_a_422(client):
    """An imported template is named by sends, so it follows the same rules (lowercase name, Meta's language code):
    "Order Update" in "en US" is refused naming both; nothing is imported."""
    response = client.post(f"/v1/wabas/{WABA_ID}/message_templates", json={"data": [
        {"name": "Order Update", "language": "en US", "category": "UTILITY", "status": "APPROVED"}]})
    assert response.status_code == 422 and set(response.json["errors"]) == {"data.0.name", "data.0.language"}
    assert client.get(f"/v1/wabas/{WABA_ID}/templates").json["templates"] == []


def test_counts_are_by_number_category_and_period(client):
    """GET /v1/counts serves other modules (volume tiers, limits) the counts decisions use."""
    deliver(client, *(status(f"wamid.c{i}", "delivered", T0 + i, contact=f"5511900000{i:03d}",
                             pricing=pmp("marketing" if i % 2 else "utility", "regular", True)) for i in range(6)))
    query = {"phone_number_id": PHONE_NUMBER_ID, "categories": "marketing,utility",
             "from": "2025-09-01T00:00:00+00:00", "to": "2025-09-02T00:00:00+00:00"}
    assert client.get("/v1/counts", query_string=query).json["count"] == 6
    assert client.get("/v1/counts", query_string=query | {"categories": "marketing"}).json["count"] == 3
    assert client.get("/v1/counts", query_string=query | {"to": "2025-09-01T09:00:03+00:00"}).json["count"] == 3
    bad = client.get("/v1/counts", query_string=query | {"to": "2025-08-01T00:00:00+00:00"})
    assert bad.status_code == 422 and set(bad.json["errors"]) == {"query.to"}  # as /v1/costs and /v1/decisions


def test_counts_take_a_bsuid_contact(client):
    """?contact= takes what a contact is, a phone number or a BSUID (a BSUID was a 422 "String does not match
    expected pattern."): messages to a user known only by a BSUID are counted under it; anything else is a 422
    saying what is expected."""
    deliver(client, username_status("wamid.b1", "delivered", T0, pricing=pmp("marketing", "regular", True)),
            status("wamid.n1", "delivered", T0 + 1, pricing=pmp("marketing", "regular", True)))
    query = {"phone_number_id": PHONE_NUMBER_ID, "categories": "marketing",
             "from": "2025-09-01T00:00:00+00:00", "to": "2025-09-02T00:00:00+00:00"}
    by_bsuid = client.get("/v1/counts", query_string=query | {"contact": BSUID})
    assert by_bsuid.status_code == 200, by_bsuid.json
    assert (by_bsuid.json["count"], by_bsuid.json["contact"]) == (1, BSUID)
    assert client.get("/v1/counts", query_string=query | {"contact": "+" + CONTACT}).json["count"] == 1
    bad = client.get("/v1/counts", query_string=query | {"contact": "someone"})
    assert bad.status_code == 422 and bad.json["errors"]["query.contact"] == [
        "must be a wa_id like 16505551234 or a BSUID like US.13491208655302741918"]


def test_a_misspelled_category_in_counts_is_a_422_naming_it_and_listing_metas(client):
    """?categories=utilty counted nothing and answered 200 with count 0, as if no utility message was sent: each
    category must be one Meta prices in, named with the list of them (the Python API reads the same query)."""
    query = {"phone_number_id": PHONE_NUMBER_ID, "categories": "marketing,utilty",
             "from": "2025-09-01T00:00:00+00:00", "to": "2025-09-02T00:00:00+00:00"}
    response = client.get("/v1/counts", query_string=query)
    assert response.status_code == 422
    [(field, [message])] = response.json["errors"].items()
    assert field == "query.categories.1" and message.startswith("'utilty' is not one of Meta's pricing categories: ")
    assert "utility" in message and "marketing" in message
    assert client.get("/v1/counts", query_string=query | {"categories": "marketing,utility"}).status_code == 200


def test_counts_take_both_spellings_of_authentication_international_as_one(client):
    """Meta writes authentication-international in `pricing` and authentication_international elsewhere (domain
    notes WH-2); some senders store the underscore. /v1/counts?categories= counted only the spelling asked: either
    spelling now counts both, from the maintained counters (a day's span), row by row (a contact) and by users
    reached (distinct_contacts), as /v1/costs reports them as one category."""
    deliver(client, status("wamid.h", "delivered", T0, pricing=pmp("authentication-international", "regular", True)),
            status("wamid.u", "delivered", T0 + 1, pricing=pmp("authentication_international", "regular", True)))
    query = {"phone_number_id": PHONE_NUMBER_ID, "from": "2025-09-01T00:00:00+00:00",
             "to": "2025-09-02T00:00:00+00:00"}
    for spelling in ("authentication-international", "authentication_international"):
        asked = query | {"categories": spelling}
        assert client.get("/v1/counts", query_string=asked).json["count"] == 2, spelling
        assert client.get("/v1/counts", query_string=asked | {"contact": "+" + CONTACT}).json["count"] == 2
        assert client.get("/v1/counts", query_string=asked | {"distinct_contacts": "true"}).json["count"] == 1
    both = query | {"categories": "authentication-international,authentication_international"}
    assert client.get("/v1/counts", query_string=both).json["count"] == 2


def test_an_import_listing_a_template_twice_is_refused_naming_the_second(client):
    """A response listing order_update/en twice (APPROVED, then PAUSED) answered imported: 2, the last winning
    without a word: a 422 naming data.1.language and the first listing, nothing imported (the registry has never
    heard of it); the same name in another language is another template."""
    twice = message_templates_response(("order_update", "en", "UTILITY", "APPROVED"),
                                       ("order_update", "en", "UTILITY", "PAUSED"))
    answer = client.post(f"/v1/wabas/{WABA_ID}/message_templates", json=twice)
    assert answer.status_code == 422 and answer.json["errors"] == {
        "data.1.language": ["order_update in en is listed already at data.0: each template once"]}
    assert client.get(f"/v1/wabas/{WABA_ID}/templates/order_update/en").status_code == 404
    other = message_templates_response(("order_update", "en", "UTILITY", "APPROVED"),
                                       ("order_update", "en_US", "UTILITY", "PAUSED"))
    assert client.post(f"/v1/wabas/{WABA_ID}/message_templates", json=other).json == {"imported": 2}


def test_imports_beside_other_writes_wait_their_turn_instead_of_failing(app):
    """Three clients importing templates at once, beside decisions being logged: every answer is a 200. An import
    reads before it writes; in a deferred SQLite transaction that read was a snapshot another commit made stale, and
    the write then failed at once with SQLITE_BUSY — a 503 for 260 of 1,070 imports with two clients (newcomer trial,
    2026-12-08) — instead of waiting its turn (store.database.write_transaction; pricing analytics imports too)."""
    templates = message_templates_response(*[(f"t{index}", "en", "UTILITY", "APPROVED") for index in range(30)])
    statuses: list[int] = []
    start = threading.Barrier(4)

    def importing():
        client = app.test_client()
        start.wait()
        for _ in range(15):
            statuses.append(client.post(f"/v1/wabas/{WABA_ID}/message_templates", json=templates).status_code)

    def deciding():
        client = app.test_client()
        start.wait()
        for _ in range(30):
            statuses.append(client.post("/v1/decisions", json={"send": {
                "at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "template",
                "template": {"name": "t1", "language": "en", "category": "utility", "status": "APPROVED"}}}
            ).status_code)

    threads = [threading.Thread(target=importing) for _ in range(3)] + [threading.Thread(target=deciding)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(statuses) == 3 * 15 + 30 and set(statuses) == {200}, sorted(set(statuses))
