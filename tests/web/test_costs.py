"""GET /v1/costs over HTTP: its query is read by the API's one arguments parser, as every other route's is."""

import re

import pytest

from .test_api import assert_error_shape

QUERY = "/v1/costs?from=2026-05-01&to=2026-05-31"


@pytest.mark.parametrize("repeated", ["group_by=month&group_by=category", "currency=USD&currency=EUR",
                                      "from=2026-05-01", "to=2026-05-02"])
def test_a_parameter_given_twice_is_a_422_naming_it(client, repeated):
    """?group_by=month&group_by=category was read as group_by ["month"] (webargs keeps the first value) where every
    other route answers 422: which value was meant cannot be known. Given once, each is read."""
    errors = assert_error_shape(client.get(f"{QUERY}&{repeated}"), 422)
    name = repeated.split("=")[0]
    assert errors == {f"query.{name}": ["given 2 times; give it once"]}
    assert client.get(f"{QUERY}&group_by=month,category").status_code == 200


def test_no_api_route_reads_the_first_of_a_repeated_parameter(app, client):
    """Every GET route of the API with a query schema refuses each single-valued parameter given twice, naming it
    (a blueprint left with flask-smorest's default parser read the first value silently, as /v1/costs did)."""
    checked = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        queries = [p["schema"] for p in getattr(view, "_apidoc", {}).get("arguments", {}).get("parameters", [])
                   if p["in"] == "query"]
        if "GET" not in rule.methods or not queries:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "1", rule.rule)
        for schema in queries:
            for name, field in schema.fields.items():
                key = field.data_key or name
                response = client.get(path, query_string=[(key, "1"), (key, "2")])
                assert response.status_code == 422, (rule.rule, key)
                assert response.get_json()["errors"].get(f"query.{key}") == ["given 2 times; give it once"], \
                    (rule.rule, key, response.get_json())
                checked.append(rule.rule)
    assert "/v1/costs" in checked and "/v1/counts" in checked


def test_a_currency_is_an_iso_4217_code_with_a_card_or_a_waba_billed_in_it(client, database_url):
    """GET /v1/costs?currency=XYZ answered 200 (every price null) where /ui/costs said 422: XYZ is no ISO 4217 code,
    a 422 naming query.currency on the API, the page, the CLI and Python alike; JPY is ISO 4217's but no card is in
    it and no WABA is billed in it, so nothing could be reported: 422 too; once a WABA is billed in JPY its Meta
    analytics are in JPY and the report is answered."""
    from click.testing import CliRunner

    from policy_service import PolicyService, ServiceError, cli

    for code, problem in (("XYZ", "ISO 4217"), ("JPY", "no rate card is in JPY")):
        errors = assert_error_shape(client.get(f"{QUERY}&currency={code}"), 422)
        assert list(errors) == ["query.currency"] and problem in errors["query.currency"][0]
        page = client.get(f"/ui/costs?from=2026-05-01&to=2026-05-31&currency={code}")
        assert page.status_code == 422 and problem in page.get_data(as_text=True)
        with pytest.raises(ServiceError) as raised:
            PolicyService(database_url=database_url).cost_report("2026-05-01", "2026-05-31", currency=code)
        assert list(raised.value.errors) == ["currency"]
        run = CliRunner().invoke(cli.main, ["costs", "--from", "2026-05-01", "--to", "2026-05-31", "--currency", code,
                                            "--database-url", database_url])
        assert run.exit_code == 2 and "Invalid value for '--currency': " in run.output and problem in run.output, \
            run.output
    client.put("/v1/wabas/102290129340398/billing-currency", json={"currency": "JPY"})
    assert client.get(f"{QUERY}&currency=JPY").status_code == 200
