"""The stored-data endpoints are part of the published OpenAPI document."""

import json


def test_openapi_documents_listing_reconciliation_and_webhooks(client):
    """/openapi.json lists the decision filters, reconciliation and both webhook methods."""
    paths = client.get("/openapi.json").json["paths"]
    listing = {p["name"] for p in paths["/v1/decisions"]["get"]["parameters"]}
    assert {"from", "to", "decision", "rule", "page", "page_size"} <= listing
    assert "get" in paths["/v1/reconciliation"]
    assert {"get", "post"} <= set(paths["/v1/webhooks/whatsapp"])


def test_a_page_number_beyond_any_database_offset_is_a_field_error(client):
    """A page number that would overflow the database's 64-bit offset is a 422 on `query.page` (named as
    `query.page_size` and every other query field is), not a 500."""
    response = client.get("/v1/decisions?page=922337203685477582")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"query.page": ["must be at most 1000000"]}
    assert list(client.get("/v1/decisions?page_size=1e23").get_json()["errors"]) == ["query.page_size"]


def test_a_nul_character_in_a_filter_is_a_field_error(client):
    """A NUL in a query filter (PostgreSQL cannot compare it) is a 422 on that filter, not a 500."""
    filters = (("/v1/reconciliation?phone_number_id=%00", "query.phone_number_id"),
               ("/v1/decisions?rule=A%00", "query.rule"))
    for url, field in filters:
        response = client.get(url)
        assert response.status_code == 422, url
        assert response.get_json()["errors"] == {field: ["must not contain a NUL character"]}


def test_an_unknown_query_parameter_of_the_listing_is_a_field_error(client):
    """GET /v1/decisions?bogus=1 is a 422 naming query.bogus, not a listing that ignored it."""
    response = client.get("/v1/decisions?bogus=1")
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"query.bogus": ["Unknown field."]}
    assert client.get("/v1/decisions?page=1&page_size=5&decision=allow").status_code == 200


def test_a_reconciliation_contact_that_reads_as_a_user_is_judged_as_one(client):
    """/v1/reconciliation?contact= takes a wa_id, a BSUID or a group id. "5511", "+99912345678" and "ZZ.123" were taken
    as group ids (an empty 200) where /v1/decisions?contact= refused them: digits, or a country prefix and a period,
    are a user's, refused as GET /v1/decisions refuses them; a group id (letters) is still a group's."""
    for value in ("5511", "%2B99912345678", "ZZ.123", "UK.13491208655302741918"):
        listing = client.get(f"/v1/decisions?contact={value}")
        reconciliation = client.get(f"/v1/reconciliation?contact={value}")
        assert listing.status_code == reconciliation.status_code == 422, value
        assert listing.json["errors"] == reconciliation.json["errors"], value
    assert client.get("/v1/reconciliation?contact=Q2x1Ykdyb3VwOmJvb2tjbHVi").status_code == 200


def test_a_contact_read_as_a_group_id_that_matches_nothing_is_named(client):
    """"abc" is a group id's characters (the Groups API's ids have no shape to check), so /v1/reconciliation?contact=abc
    is answered, but not with a bare empty report: `note` says the contact was read as a group id and nothing of such
    a group is stored. A wa_id that matched nothing gets no note (it is one, with nothing delivered), nor does a
    report without a contact."""
    body = client.get("/v1/reconciliation?contact=abc").json
    assert body["checked"] == 0 and "read as a Groups API group id" in body["note"], body
    assert "note" not in client.get("/v1/reconciliation?contact=5511987654321").json
    assert "note" not in client.get("/v1/reconciliation").json


def test_integer_parameters_are_ascii_digits_and_the_page_maximum_is_documented(client):
    """/v1/decisions?page=１ and /v1/reconciliation?page=１ were page 1, /v1/admin/webhooks/１ payload 1 (int() reads
    fullwidth digits): an integer query parameter in anything but ASCII digits is a 422 naming it, a path segment one
    no route serves (404, as "abc" is). GET /v1/decisions' page had no maximum in the document though 9999999999 is
    a 422 "must be at most 1000000": both listings document page's and page_size's bounds."""
    for url, name in (("/v1/decisions?page=\uff11", "query.page"), ("/v1/decisions?page=%2B1", "query.page"),
                      ("/v1/decisions?page_size=1_0", "query.page_size"),
                      ("/v1/reconciliation?page=\u0661", "query.page"),
                      ("/v1/reconciliation?page_size=%205", "query.page_size")):
        answer = client.get(url)
        assert answer.status_code == 422 and list(answer.get_json()["errors"]) == [name], url
    assert client.get("/v1/decisions?page=9999999999").get_json()["errors"] == {
        "query.page": ["must be at most 1000000"]}
    missing = client.get("/v1/admin/webhooks/\uff11")
    assert missing.status_code == 404 and list(missing.get_json()["errors"]) == ["path"]
    assert client.get("/v1/admin/webhooks/1").get_json()["errors"] == {"path.payload_id": ["no stored payload has "
                                                                                           "this id"]}
    listing = client.get("/v1/decisions?page=2&page_size=5")
    assert listing.status_code == 200 and json.loads(listing.headers["X-Pagination"])["total"] == 0
    paths = client.get("/openapi.json").get_json()["paths"]
    for path in ("/v1/decisions", "/v1/reconciliation"):
        bounds = {p["name"]: (p["schema"]["minimum"], p["schema"]["maximum"]) for p in paths[path]["get"]["parameters"]
                  if p["name"] in ("page", "page_size")}
        assert bounds["page"] == (1, 1_000_000), path
    [payload_id] = paths["/v1/admin/webhooks/{payload_id}"]["parameters"]
    assert payload_id["schema"]["type"] == "integer"


def test_every_integer_path_converter_takes_ascii_digits_only(app):
    """Every <int:...> route uses web.api.AsciiIntegerConverter (a rule takes its converter when it is added)."""
    from werkzeug.routing import IntegerConverter

    from policy_service.web.api import AsciiIntegerConverter

    converters = [c for rule in app.url_map.iter_rules() for c in (rule._converters or {}).values()
                  if isinstance(c, IntegerConverter)]
    assert converters and all(type(c) is AsciiIntegerConverter for c in converters)


def test_a_plus_sent_unencoded_in_the_contact_filter_is_explained(client):
    """?contact=+5511987654321 as typed arrives as " 5511987654321" (+ is a space in a query string): the 422 says
    so and shows the %2B form, which lists; a contact that is simply wrong keeps the plain message."""
    response = client.get("/v1/decisions?contact=+5511987654321")
    assert response.status_code == 422
    [message] = response.get_json()["errors"]["query.contact"]
    assert message.startswith("must be a wa_id like 16505551234")
    assert "write it %2B (contact=%2B5511987654321) or leave the + out (5511987654321)" in message
    assert client.get("/v1/decisions?contact=%2B5511987654321").status_code == 200
    assert client.get("/v1/decisions?contact=55-11").get_json()["errors"]["query.contact"] == [
        "must be a wa_id like 16505551234 or a BSUID like US.13491208655302741918"]
