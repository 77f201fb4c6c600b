"""contract.schemas: request validation messages say what is wrong, once per field."""

import pytest
from marshmallow import ValidationError

from policy_service.contract.schemas import REQUEST

from . import package_schemas

SEND = {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}


def test_a_bad_history_ref_contact_gets_only_its_own_message():
    """A contact that is not a wa_id is that field's error alone; "give either contact or group_id" is said only
    when neither or both are given."""
    with pytest.raises(ValidationError) as refused:
        REQUEST.load({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "1"}})
    messages = refused.value.messages["history_ref"]["contact"]
    assert messages and not any("give either" in m for m in messages), messages
    for ref in ({"phone_number_id": "1"}, {"phone_number_id": "1", "contact": "5511988887777", "group_id": "g"}):
        with pytest.raises(ValidationError) as refused:
            REQUEST.load({"send": SEND, "history_ref": ref})
        assert "give either contact or group_id" in refused.value.messages["history_ref"]["contact"], ref


def _request_schemas():
    from policy_service.contract.strict import RequestSchema

    return package_schemas(RequestSchema)


def test_every_number_a_request_reads_has_an_upper_bound():
    """Every integer or decimal field of every request schema (decisions, batch, forecast, pricing analytics,
    business state: what the API, CLI and Python API read) refuses 10^30: an unbounded number reached storage as
    an OverflowError, or datetime as a year out of range (a 500), before these bounds."""
    from marshmallow import fields

    numbers = [(schema.__name__, name, field) for schema in _request_schemas()
               for name, field in schema._declared_fields.items()
               if isinstance(field, fields.Number) and not field.dump_only]
    assert len(numbers) >= 12, numbers  # the context's counts, the forecast and analytics numbers, TTLs
    unbounded = []
    for schema, name, field in numbers:
        try:
            field.deserialize(10**30)
        except ValidationError:
            continue
        unbounded.append(f"{schema}.{name}")
    assert not unbounded, unbounded


def test_the_last_day_a_time_may_fall_on_is_whole():
    """The errors say "between 2000-01-01 and 2999-12-31": a send during 2999-12-31 is valid (00:00:01 was
    refused), one a microsecond into 3000 is not."""
    REQUEST.load({"send": {**SEND, "at": "2999-12-31T23:59:59.999999+00:00"}})
    with pytest.raises(ValidationError) as refused:
        REQUEST.load({"send": {**SEND, "at": "3000-01-01T00:00:00+00:00"}})
    assert refused.value.messages["send"]["at"] == ["must be between 2000-01-01 and 2999-12-31"]


def test_the_name_of_a_template_known_from_a_status_alone_loads_in_a_history_never_in_a_send():
    """A stored history names a template it learned of from a status webhook alone by core.messages.UNKNOWN_TEMPLATE
    (the log keeps such histories, and replay loads them back through the schema); a send must name a real one."""
    from policy_service.contract import fastload
    from policy_service.core.messages import UNKNOWN_TEMPLATE

    past = {"direction": "outbound", "at": "2025-08-12T10:00:00+00:00", "type": "template", "status": "delivered",
            "delivered_at": "2025-08-12T10:00:01+00:00",
            "template": {"name": UNKNOWN_TEMPLATE, "language": "und", "category": "utility", "status": "APPROVED"}}
    request = {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"}, "history": [past]}
    assert REQUEST.load(request).history[0].template.name == UNKNOWN_TEMPLATE
    assert fastload.history([past])[0].template.name == UNKNOWN_TEMPLATE
    send = {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
            "template": {"name": UNKNOWN_TEMPLATE, "language": "en", "category": "utility", "status": "APPROVED"}}
    with pytest.raises(ValidationError) as refused:
        REQUEST.load({"send": send})
    assert "name" in refused.value.messages["send"]["template"]


# Two capitals that name no country a phone number can be in (the United Kingdom is GB; AQ has no calling code).
NOT_COUNTRIES = ("UK", "XX", "ZZ", "EU", "AQ", "br", "B R", "GB\n")


@pytest.mark.parametrize("value", NOT_COUNTRIES)
def test_every_country_a_client_names_is_one_a_phone_number_can_be_in(client, value):
    """context.business_region and its exception countries, a forecast line's country and /v1/counts?market= take
    the countries core.identities.COUNTRIES holds (as a BSUID's prefix does): "UK" was a business_region that made an
    authentication template to +91 authentication-international, a forecast line priced at market Other, a count
    of 0. Each is now a 422 naming the field."""
    from urllib.parse import quote

    from policy_service.core.identities import COUNTRIES

    assert {"GB", "BR", "US", "IN"} <= COUNTRIES and not {"UK", "XX", "ZZ", "EU"} & COUNTRIES
    eligibility = {"start_time": "2025-01-01T00:00:00Z",
                   "exception_countries": [{"country_code": value, "start_time": "2025-02-01T00:00:00Z"}]}
    for context, field in (({"business_region": value}, "context.business_region"),
                           ({"authentication_international_eligibility": eligibility},
                            "context.authentication_international_eligibility.exception_countries.0.country_code")):
        answer = client.post("/v1/decisions", json={"send": SEND, "context": context})
        assert answer.status_code == 422 and list(answer.json["errors"]) == [field], answer.json
        assert "ISO 3166" in answer.json["errors"][field][0]
    forecast = client.post("/v1/costs/forecast", json={"currency": "USD", "at": "2026-11-10T12:00:00Z", "lines": [
        {"country": value, "category": "marketing", "count": 1000}]})
    assert forecast.status_code == 422 and list(forecast.json["errors"]) == ["lines.0.country"], forecast.json
    counts = client.get(f"/v1/counts?phone_number_id=1&categories=service&from=2026-11-01T00:00:00Z"
                        f"&to=2026-12-01T00:00:00Z&market={quote(value)}")
    assert counts.status_code == 422 and list(counts.json["errors"]) == ["query.market"], counts.json


def test_a_real_country_is_taken_where_a_look_alike_is_refused(client):
    """GB, not UK: the same requests with the country's real code are answered."""
    assert client.post("/v1/decisions", json={"send": SEND, "context": {"business_region": "GB"}}).status_code == 200
    forecast = client.post("/v1/costs/forecast", json={"currency": "BRL", "at": "2026-11-10T12:00:00Z", "lines": [
        {"country": "GB", "category": "marketing", "count": 1000}]})
    (line,) = forecast.json["unpriced"]  # the shipped BRL card is a partial copy: it names the line's market
    assert forecast.status_code == 200 and "market United Kingdom" in line["reason"], forecast.json
    assert client.get("/v1/counts?phone_number_id=1&categories=service&from=2026-11-01T00:00:00Z"
                      "&to=2026-12-01T00:00:00Z&market=GB").status_code == 200


def test_counts_name_a_rate_card_market_as_no_country(client):
    """/v1/counts?market= takes the recipients' country (counts are kept per country): a rate card's market name is
    a 422 saying so, not a count of 0."""
    answer = client.get("/v1/counts?phone_number_id=1&categories=service&from=2026-11-01T00:00:00Z"
                        "&to=2026-12-01T00:00:00Z&market=Rest%20of%20Africa")
    assert answer.status_code == 422 and "not a rate card's market name" in answer.json["errors"]["query.market"][0]


@pytest.mark.parametrize("given", ["\uff11", "\u0661", "+1", " 1", "1 ", "1_0", "1.0", "1e3", "", 1.5, True, None])
def test_a_whole_number_is_an_int_or_ascii_digits(given):
    """contract.schemas.WholeNumber (every integer read from a query string, a path or Meta's webhooks) refuses what
    int() would have read as a number: other scripts' digits, signs, spaces, underscores, floats, booleans."""
    from marshmallow import Schema

    from policy_service.contract.schemas import ASCII_INTEGER_ERROR, WholeNumber

    schema = Schema.from_dict({"n": WholeNumber(allow_none=False)})()
    with pytest.raises(ValidationError) as refused:
        schema.load({"n": given})
    assert refused.value.messages["n"] in ([ASCII_INTEGER_ERROR], ["Field may not be null."])
    assert schema.load({"n": "12"}) == schema.load({"n": 12}) == {"n": 12} and schema.load({"n": "-3"}) == {"n": -3}


@pytest.mark.parametrize("status", ["sent", "deleted", "warning", "failed"])
def test_a_history_message_whose_status_says_undelivered_cannot_give_delivered_at(client, status):
    """An outbound message whose latest status does not say it was delivered (sent, deleted, warning, failed: README,
    they opened nothing) and a delivered_at contradicts itself: a 422 naming history.0.delivered_at, on the fast path
    (contract.fastload leaves it to marshmallow) as on marshmallow's. Before, sent/deleted/warning with a
    delivered_at opened a marketing conversation (the next marketing send predicted free, CBP-3.rides)."""
    from policy_service.contract import fastload

    message = {"direction": "outbound", "at": "2024-08-12T09:00:00Z", "type": "template", "status": status,
               "delivered_at": "2024-08-12T09:00:05Z",
               "template": {"name": "spring_sale", "language": "en", "category": "marketing"}}
    send = {"at": "2024-08-12T12:00:00Z", "to": "+5511988887777", "type": "template",
            "template": {"name": "spring_sale", "language": "en", "category": "marketing", "status": "APPROVED"}}
    assert fastload.history([message]) is None
    answer = client.post("/v1/decisions", json={"send": send, "history": [message]})
    assert answer.status_code == 422 and list(answer.json["errors"]) == ["history.0.delivered_at"], answer.json
    assert status in answer.json["errors"]["history.0.delivered_at"][0]
    for delivering in ("delivered", "read", "played"):
        assert client.post("/v1/decisions", json={"send": send, "history": [
            {**message, "status": delivering}]}).status_code == 200


@pytest.mark.parametrize("zone", ["localtime", "posixrules", "Factory", "right/UTC", "right/Europe/Berlin",
                                  "posix/UTC", "posix/Europe/Berlin", "utc", "Mars/Olympus", "../etc/localtime"])
def test_a_tzdata_file_that_is_no_iana_zone_is_an_unknown_time_zone(zone):
    """ZoneInfo loads any tzdata file: `localtime` (the host's own zone), `posixrules`, `Factory`, `right/UTC` (the
    leap-second zone, ~27 s off) and the `posix/` copies were decided as valid WABA time zones. context.waba_timezone
    (decisions) and the forecast's waba_timezone now refuse them as they refuse `utc`."""
    from policy_service.contract.pricing import ForecastSchema
    from policy_service.contract.schemas import is_iana_zone

    assert not is_iana_zone(zone)
    with pytest.raises(ValidationError) as refused:
        REQUEST.load({"send": SEND, "context": {"waba_timezone": zone}})
    assert refused.value.messages == {"context": {"waba_timezone": ["unknown IANA time zone"]}}
    assert "waba_timezone" in ForecastSchema().validate({"waba_timezone": zone, "lines": []})


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Sao_Paulo", "US/Eastern", "Etc/GMT+5", "GMT",
                                  "Asia/Kolkata", "EST5EDT"])
def test_real_iana_zones_and_their_links_stay_accepted(zone):
    """The refusal above keeps every name IANA publishes, its backward links (US/Eastern, GMT) included."""
    assert REQUEST.load({"send": SEND, "context": {"waba_timezone": zone}}).context["waba_timezone"] == zone


@pytest.fixture
def tz_database_unread(monkeypatch):
    """The zone set emptied before a start; once the start is done, reading the tz database fails the test."""
    from policy_service.contract import schemas

    schemas._iana_zones.cache_clear()

    def after_start():
        def read():
            raise AssertionError("a request read the tz database (available_timezones)")

        monkeypatch.setattr(schemas, "available_timezones", read)

    return after_start


def test_the_app_builds_the_zone_set_at_start_not_on_the_first_request(tz_database_unread, tmp_path):
    """A worker's first request naming a waba_timezone read the whole tz database (~0.1 s, _iana_zones): create_app
    builds it (schemas.warm_up), so the first request after the start reads nothing and is decided."""
    from policy_service import create_app, store

    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path / 'log.sqlite3'}"})
    tz_database_unread()
    try:
        answer = app.test_client().post("/v1/decisions", json={
            "send": SEND, "context": {"waba_timezone": "America/Sao_Paulo"}})
        assert answer.status_code == 200, answer.json
        refused = app.test_client().post("/v1/decisions", json={"send": SEND, "context": {"waba_timezone": "utc"}})
        assert refused.json["errors"] == {"context.waba_timezone": ["unknown IANA time zone"]}
    finally:
        store.close_all()


def test_the_python_api_builds_the_zone_set_when_made(tz_database_unread, tmp_path):
    """PolicyService() builds it too: its first decide naming a waba_timezone reads no tz database."""
    from policy_service import PolicyService

    service = PolicyService(database_url=f"sqlite:///{tmp_path / 'log.sqlite3'}")
    tz_database_unread()
    decided = service.decide({"send": SEND, "context": {"waba_timezone": "Asia/Kolkata"}})
    assert decided["decision"] in ("allow", "deny")
