"""contract.fastdump: a compiled dumper gives the same JSON, byte for byte (keys, order, values), as marshmallow's
Schema.dump — on every fixture decision, with and without why-not, on random requests' decisions, and on the
field kinds and edge cases marshmallow handles itself."""

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_dump

from policy_service.contract import fastdump
from policy_service.contract.schemas import REQUEST, RESPONSE
from policy_service.core.evaluate import evaluate
from policy_service.review.fixtures import discover

from ..conftest import ROOT

_FIXTURES = [fixture.request for fixture in discover([ROOT / "fixtures"])]


def same_json(dumped, expected) -> bool:
    return orjson.dumps(dumped) == orjson.dumps(expected)


@pytest.mark.parametrize("explain", [False, True])
def test_every_fixture_decision_dumps_as_marshmallow_does(rulebook, engine, explain):
    """All 170 fixture decisions (charges, prices, group price lines, denies, errors), why-not lists included."""
    for raw in _FIXTURES:
        decision = evaluate(REQUEST.load(raw), rulebook=rulebook, engine=engine, explain_why_not=explain)
        assert same_json(fastdump.dump_response(decision), RESPONSE.dump(decision)), raw


_SHIFTS = st.integers(-40 * 24 * 3600, 40 * 24 * 3600)


@st.composite
def _requests(draw):
    """A fixture request moved in time, with history messages dropped and the send's type or template changed."""
    raw = copy.deepcopy(draw(st.sampled_from(_FIXTURES)))
    send = raw["send"]
    at = datetime.fromisoformat(send["at"]) + timedelta(seconds=draw(_SHIFTS))
    send["at"] = at.isoformat()
    history = raw.get("history")
    if isinstance(history, list) and history:
        raw["history"] = [m for m in history if draw(st.booleans())]
    if draw(st.booleans()):
        send["type"] = draw(st.sampled_from(["text", "template", "image"]))
        if send["type"] == "template":
            send["template"] = {"name": "t", "language": "en",
                                "category": draw(st.sampled_from(["marketing", "utility", "authentication"])),
                                "status": draw(st.sampled_from(["APPROVED", "PAUSED", "REJECTED"]))}
        else:
            send.pop("template", None)
    return raw


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_requests(), st.booleans())
def test_random_decisions_dump_as_marshmallow_does(rulebook, engine, raw, explain):
    """Decisions of fixture requests moved in time, with fewer history messages or another send type."""
    try:
        request = REQUEST.load(raw)
    except ValidationError:
        assume(False)
    decision = evaluate(request, rulebook=rulebook, engine=engine, explain_why_not=explain)
    assert same_json(fastdump.dump_response(decision), RESPONSE.dump(decision))


@dataclass(frozen=True)
class _Inner:
    name: str
    count: int


@dataclass(frozen=True)
class _Outer:
    text: object
    number: object
    flag: object
    when: datetime | None
    amount: Decimal
    inner: _Inner | None
    inners: list
    names: list
    mapping: dict


class _InnerSchema(Schema):
    name = fields.String()
    count = fields.Integer()


class _OuterSchema(Schema):
    text = fields.String()
    number = fields.Integer(data_key="n", dump_only=True)
    flag = fields.Boolean()
    when = fields.DateTime(allow_none=True)
    amount = fields.Decimal(as_string=True)
    inner = fields.Nested(_InnerSchema, allow_none=True)
    inners = fields.List(fields.Nested(_InnerSchema))
    names = fields.List(fields.String(), allow_none=True)
    mapping = fields.Dict()
    renamed = fields.Integer(attribute="number", dump_only=True)
    computed = fields.Function(lambda obj: f"{obj.text}!")
    absent = fields.String()
    absent_with_default = fields.String(dump_default="none")


@pytest.mark.parametrize("value", [
    _Outer("a", 1, True, datetime(2026, 1, 2, tzinfo=UTC), Decimal("0.0081"), _Inner("x", 2), [_Inner("y", 3)],
           ["p", "q"], {"k": [1]}),
    _Outer(5, True, 0, None, Decimal("1"), None, [], None, {}),  # values of other types: marshmallow's own coercion
    _Outer(None, None, None, None, Decimal("-2.50"), _Inner(7, "8"), [_Inner(None, None)], [None, 3], {"a": None}),
])
def test_field_kinds_and_odd_values_dump_as_marshmallow_does(value):
    """Renamed keys, attributes, Function fields, absent attributes with and without a dump_default, None, values
    of unexpected types (String of an int, Integer of a bool), nested objects and lists: marshmallow's output."""
    schema = _OuterSchema()
    assert same_json(fastdump.compiled(schema)(value), schema.dump(value))


def test_mappings_and_hooked_schemas_are_left_to_marshmallow():
    """A dict is read by key by marshmallow (and a schema with dump hooks runs them): the compiled dumper hands
    both to Schema.dump."""

    class Hooked(_InnerSchema):
        @post_dump
        def mark(self, data, **_):
            return {**data, "hooked": True}

    assert fastdump.compiled(_InnerSchema())({"name": "n", "count": 1}) == {"name": "n", "count": 1}
    assert fastdump.compiled(Hooked())(_Inner("n", 1)) == {"name": "n", "count": 1, "hooked": True}
