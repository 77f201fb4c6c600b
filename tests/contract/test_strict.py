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


def _pattern_validators():
    """Every validate.Regexp (or subclass) on a field of every marshmallow schema the package declares."""
    import importlib
    import pkgutil

    import marshmallow
    from marshmallow import validate

    import policy_service

    found = []
    for module in pkgutil.walk_packages(policy_service.__path__, "policy_service."):
        if ".migrations" in module.name:
            continue
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if isinstance(value, type) and issubclass(value, marshmallow.Schema) and value.__module__ == module.name:
                for field_name, field in value._declared_fields.items():
                    inner = getattr(field, "inner", None)
                    for checked in (field, inner) if inner is not None else (field,):
                        found += [(f"{module.name}.{name}.{field_name}", v) for v in checked.validators
                                  if isinstance(v, validate.Regexp)]
    return found


def test_every_pattern_a_schema_checks_must_match_the_whole_value():
    """marshmallow's Regexp lets a final newline through a pattern ending in `$` ("+5511987654321\\n" was a phone
    number): every pattern on a schema field is a contract.strict.Pattern, which matches the whole value."""
    from policy_service.contract.strict import Pattern

    validators = _pattern_validators()
    assert len(validators) >= 20, validators  # the walk finds the package's patterns
    assert [name for name, validator in validators if type(validator) is not Pattern] == []


@pytest.mark.parametrize(("request_body", "path"), [
    ({"send": {**SEND, "to": "+5511988887777\n"}}, "send.to"),
    ({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "5511988887777\n"}}, "history_ref.contact"),
    ({"send": SEND, "context": {"currency": "USD\n"}}, "context.currency"),
    ({"send": {**SEND, "to": "US.13491208655302741918\n"}}, "send.to"),
])
def test_a_final_newline_is_not_part_of_a_valid_value(request_body, path):
    """A phone number, a wa_id, a BSUID or a currency code followed by a newline is refused naming the field (it was
    accepted and logged as "+55***********\\n"); without the newline it loads."""
    with pytest.raises(ValidationError) as raised:
        REQUEST.load(request_body)
    assert ".".join(map(str, next(iter(_flat(raised.value.messages))))) == path
    fixed = {key: ({k: (v.rstrip("\n") if isinstance(v, str) else v) for k, v in part.items()}
                   if isinstance(part, dict) else part) for key, part in request_body.items()}
    REQUEST.load(fixed)


def _flat(messages, path=()):
    for key, value in messages.items():
        if isinstance(value, dict):
            yield from _flat(value, (*path, key))
        else:
            yield (*path, key)
