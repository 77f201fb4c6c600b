"""Response schemas dumped without marshmallow's per-field machinery: the same dict, key for key, in the same order.

marshmallow's Schema.dump calls, for each field of each object, Field.serialize -> get_value -> utils.get_value ->
_serialize: about 1–2 µs a field, ~100 fields in a decision's response (the trace entries are most of them). A
`compiled` dumper walks the schema's dump fields once, when it is built, and keeps for each one its output key, the
attribute it reads and how its value is turned into JSON:

- a field whose `_serialize` is marshmallow's identity (Boolean, Raw, Field), a String given a `str`, an Integer
  given an `int` (not a bool, not as_string): the value itself, as marshmallow returns it;
- a Nested or a List of Nested: the nested schema's own compiled dumper (each item for many);
- a List of plain fields: the inner field per item, as List._serialize does;
- anything else (DateTime, Decimal, Dict, Function, Method, or a value of another type): the field's own
  `_serialize(value, attr, obj)`, which is what Field.serialize ends with, so its output is marshmallow's.

An attribute the object lacks takes the field's dump_default (or the field is left out), as marshmallow does.
A schema with pre_dump or post_dump hooks, or an object that is a mapping (marshmallow reads those by key), is
dumped by marshmallow itself. tests/contract/test_fastdump.py proves on every fixture decision (with why-not)
and on random requests' decisions that the result is the same JSON, byte for byte, as the schema's dump.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import Schema, fields
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import missing

from .schemas import RESPONSE

Dumper = Callable[[Any], dict[str, Any]]


def compiled(schema: Schema) -> Dumper:
    """A function dumping one object exactly as `schema.dump(obj)` would (see the module docstring)."""
    if schema._hooks[PRE_DUMP] or schema._hooks[POST_DUMP] or schema.many:
        return schema.dump
    plan = [(field.data_key if field.data_key is not None else name,
             field.attribute if field.attribute is not None else name, field, _value_of(field))
            for name, field in schema.dump_fields.items()]
    if any("." in attribute for _, attribute, _, _ in plan):
        return schema.dump  # a dotted attribute path: marshmallow's getter follows it

    def dump(obj: Any) -> dict[str, Any]:
        if _by_key(type(obj)):
            return schema.dump(obj)
        out = {}
        for key, attribute, field, value_of in plan:
            if not field._CHECK_ATTRIBUTE:
                out[key] = field._serialize(None, attribute, obj)
                continue
            value = getattr(obj, attribute, missing)
            if value is missing:
                default = field.dump_default
                value = default() if callable(default) else default
                if value is missing:
                    continue
            out[key] = value_of(value, attribute, obj)
        return out

    return dump


_BY_KEY: dict[type, bool] = {}


def _by_key(kind: type) -> bool:
    """Whether marshmallow reads this type's values by key (obj[name]) before attributes: a mapping, or anything
    with __getitem__ (utils._get_value_for_key); remembered per type."""
    found = _BY_KEY.get(kind)
    if found is None:
        found = _BY_KEY[kind] = issubclass(kind, Mapping) or hasattr(kind, "__getitem__")
    return found


def _value_of(field: fields.Field) -> Callable[[Any, str, Any], Any]:
    """How one field turns a present value into its JSON value (value, attribute name, object)."""
    kind = type(field)
    serialize = field._serialize
    if kind._serialize is fields.Field._serialize:
        return lambda value, attribute, obj: value
    if kind is fields.String:
        return lambda value, attribute, obj: value if type(value) is str else serialize(value, attribute, obj)
    if kind is fields.Integer and not field.as_string:
        return lambda value, attribute, obj: value if type(value) is int else serialize(value, attribute, obj)
    if kind is fields.Nested:
        return _nested(field)
    if kind is fields.List:
        inner = field.inner
        if type(inner) is fields.Nested:
            one = _nested(inner)
            return lambda value, attribute, obj: None if value is None else [one(item, attribute, obj)
                                                                             for item in value]
        item_of = _value_of(inner)
        return lambda value, attribute, obj: None if value is None else [item_of(item, attribute, obj)
                                                                         for item in value]
    return serialize


def _nested(field: fields.Nested) -> Callable[[Any, str, Any], Any]:
    schema = field.schema
    if schema.many or field.many:
        return field._serialize
    dump = compiled(schema)
    return lambda value, attribute, obj: None if value is None else dump(value)


dump_response = compiled(RESPONSE)
"""RESPONSE.dump(decision), compiled: the body of POST /v1/decisions."""
