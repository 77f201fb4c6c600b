"""No request constructs a marshmallow schema: webargs and flask-smorest build a new one per request
when a route is given a schema class (440-900 µs of CPU each, issue 14), so every route gets an instance."""

import pytest
from marshmallow import Schema

from ..meta_payloads import inbound_text, signed

T0 = 1754989200  # 2025-08-12T09:00:00Z


@pytest.fixture
def constructed(monkeypatch):
    """The schemas constructed since the fixture started counting (a list of class names)."""
    built: list[str] = []
    original = Schema.__init__

    def counting(self, *args, **kwargs):
        built.append(type(self).__name__)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Schema, "__init__", counting)
    return built


def requests(client, example_request):
    """One request to each route that loads or dumps with a schema, valid and invalid."""
    decided = client.post("/v1/decisions", json=example_request)
    assert decided.status_code == 200
    decision_id = decided.get_json()["decision_id"]
    assert client.post("/v1/decisions?explain=full", json=example_request).status_code == 200
    assert client.post("/v1/decisions", json={**example_request, "send": {}}).status_code == 422
    assert client.post("/v1/decisions/batch", json={"requests": [example_request]}).status_code == 200
    assert client.get(f"/v1/decisions/{decision_id}").status_code == 200
    assert client.get("/v1/decisions?decision=allow&page=1").status_code == 200
    assert client.get("/v1/reconciliation").status_code == 200
    assert client.get("/v1/costs?from=2025-08-01&to=2025-08-31").status_code == 200
    assert client.get("/v1/costs?from=2025-08-31&to=2025-08-01").status_code == 422
    assert client.get("/ui/costs?from=2025-08-01&to=2025-08-31").status_code == 200
    billable = {**example_request, "send": {**example_request["send"], "at": "2026-05-12T12:00:00+00:00"},
                "history": [], "context": {"volume_messages_this_month": 5}}
    assert client.post("/v1/decisions", json=billable).get_json()["charge"]["price"]["tier"]["number"] == 1
    body, headers = signed(inbound_text("wamid.schema-instances", T0))
    assert client.post("/v1/webhooks/whatsapp", data=body, headers=headers).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_no_request_constructs_a_schema(app, example_request, constructed):
    client = app.test_client()
    requests(client, example_request)  # warm: nested schemas are built once, on their first use
    constructed.clear()
    requests(client, example_request)
    # flask-smorest's X-Pagination code built a PaginationMetadataSchema per listing; the header is now made by
    # service.logged.pagination (the Python API's listing shares it), which builds none.
    assert constructed == []
