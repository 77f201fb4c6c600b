"""contract.strict: every policy flag the API and Meta's webhooks read is a JSON boolean; 1, 0, 1.0 and "true" are
refused with the field named (marshmallow's Boolean(truthy={True}) let 1 and 0 through, since 1 == True)."""

import pytest
from marshmallow import ValidationError

from policy_service.contract.meta_webhooks import PricingSchema
from policy_service.contract.schemas import REQUEST

SEND = {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}
TEMPLATE = {"name": "code", "language": "en", "category": "authentication", "status": "APPROVED"}


def _requests(value):
    """(request, path of the flag) for every strict boolean of the decision request."""
    return [
        ({"send": SEND, "context": {"opted_in": value}}, ("context", "opted_in")),
        ({"send": SEND, "context": {"marketing_opt_out": value}}, ("context", "marketing_opt_out")),
        ({"send": {**SEND, "type": "template", "template": {**TEMPLATE, "otp_button": value}}},
         ("send", "template", "otp_button")),
        ({"send": {**SEND, "type": "template", "template": TEMPLATE, "meta_business_agent": value}},
         ("send", "meta_business_agent")),
        ({"send": SEND, "history": [{"direction": "outbound", "at": "2026-10-10T09:00:00+00:00", "type": "text",
                                     "status": "delivered", "business_app": value}]},
         ("history", 0, "business_app")),
    ]


@pytest.mark.parametrize("value", [1, 0, 1.0, "true", "yes", None])
def test_a_flag_that_is_not_a_json_boolean_is_refused_naming_it(value):
    for request, path in _requests(value):
        with pytest.raises(ValidationError) as refused:
            REQUEST.load(request)
        messages = refused.value.messages
        for key in path:
            assert key in messages, (request, messages)
            messages = messages[key]


@pytest.mark.parametrize("value", [True, False])
def test_a_json_boolean_is_loaded_as_itself(value):
    loaded = REQUEST.load({"send": SEND, "context": {"opted_in": value},
                           "history": [{"direction": "outbound", "at": "2026-10-10T09:00:00+00:00", "type": "text",
                                        "status": "delivered", "business_app": value}]})
    assert loaded.context["opted_in"] is value
    assert loaded.history[0].business_app is value


@pytest.mark.parametrize("value", [1, 0, "true"])
def test_a_webhook_status_billable_that_is_not_a_json_boolean_is_refused(value):
    with pytest.raises(ValidationError) as refused:
        PricingSchema().load({"billable": value, "category": "utility"})
    assert "billable" in refused.value.messages
    assert PricingSchema().load({"billable": False})["billable"] is False


@pytest.mark.parametrize(("request_body", "path"), [
    ([SEND], ("_schema",)),
    ("send", ("_schema",)),
    ({"send": "x"}, ("send", "_schema")),
    ({"send": SEND, "history": [[]]}, ("history", 0, "_schema")),
    ({"send": SEND, "context": []}, ("context", "_schema")),
    ({"send": {**SEND, "type": "template", "template": "code"}}, ("send", "template", "_schema")),
])
def test_anything_but_an_object_where_one_belongs_must_be_a_json_object(request_body, path):
    """RequestSchema: an array body or a string where an object belongs says so at its path, not marshmallow's
    "Invalid input type."."""
    with pytest.raises(ValidationError) as raised:
        REQUEST.load(request_body)
    errors = raised.value.messages
    for key in path:
        errors = errors[key]
    assert errors == ["must be a JSON object"]
