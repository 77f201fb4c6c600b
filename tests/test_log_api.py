"""The stored-data endpoints are part of the published OpenAPI document."""


def test_openapi_documents_listing_reconciliation_and_webhooks(client):
    """/openapi.json lists the decision filters, reconciliation and both webhook methods."""
    paths = client.get("/openapi.json").json["paths"]
    listing = {p["name"] for p in paths["/v1/decisions"]["get"]["parameters"]}
    assert {"from", "to", "decision", "rule", "page", "page_size"} <= listing
    assert "get" in paths["/v1/reconciliation"]
    assert {"get", "post"} <= set(paths["/v1/webhooks/whatsapp"])
