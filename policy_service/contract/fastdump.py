"""Response schemas dumped without marshmallow's per-field machinery: the same dict, key for key, in the same order.

marshmallow's Schema.dump calls, for each field of each object, Field.serialize -> get_value -> utils.get_value ->
_serialize: about 1–2 µs a field, ~100 fields in a decision's response (the trace entries are most of them). A
`compiled` dumper walks the schema's dump fields once, when it is built, and writes a Python function with one
statement per field (its output key, the attribute it reads, and how its value is turned into JSON, inline):

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
             field.attribute if field.attribute is not None else name, field)
            for name, field in schema.dump_fields.items()]
    if any("." in attribute for _, attribute, _ in plan):
        return schema.dump  # a dotted attribute path: marshmallow's getter follows it
    # The dumper is written out as Python source, one statement per field in the schema's order: no loop over a
    # plan, no call for a value passed as it is (a third of a decision's dump went to that machinery).
    names: dict[str, Any] = {"missing": missing, "by_key": _by_key, "schema_dump": schema.dump}
    lines = ["def dump(obj):", "    if by_key(type(obj)):", "        return schema_dump(obj)", "    out = {}"]
    for index, (key, attribute, field) in enumerate(plan):
        names[f"field{index}"] = field
        if not field._CHECK_ATTRIBUTE:
            lines.append(f"    out[{key!r}] = field{index}._serialize(None, {attribute!r}, obj)")
            continue
        lines.append(f"    value = getattr(obj, {attribute!r}, missing)")
        default = field.dump_default
        if default is missing:
            lines.append("    if value is not missing:")
        else:
            names[f"default{index}"] = default
            lines += ["    if value is missing:",
                      f"        value = default{index}()" if callable(default) else f"        value = default{index}",
                      "    if value is not missing:"]
        lines.append(f"        out[{key!r}] = {_expression(field, index, attribute, names)}")
    lines.append("    return out")
    exec("\n".join(lines), names)  # noqa: S102 - source built above from the schema's own field names (repr'd)
    return names["dump"]


def _expression(field: fields.Field, index: int, attribute: str, names: dict[str, Any]) -> str:
    """The Python expression turning a present `value` of this field into its JSON value, as _value_of's function
    would (the names it needs are put in `names`)."""
    kind = type(field)
    if kind._serialize is fields.Field._serialize:
        return "value"
    names[f"serialize{index}"] = field._serialize
    call = f"serialize{index}(value, {attribute!r}, obj)"
    if kind is fields.String:
        return f"value if type(value) is str else {call}"
    if kind is fields.Integer and not field.as_string:
        return f"value if type(value) is int else {call}"
    if kind is fields.Nested or (kind is fields.List and type(field.inner) is fields.Nested):
        nested = field if kind is fields.Nested else field.inner
        if nested.schema.many or nested.many:
            if kind is fields.Nested:
                return call
            return f"None if value is None else [{_item(field, index, attribute, names)}]"
        names[f"nested{index}"] = compiled(nested.schema)
        if kind is fields.Nested:
            return f"None if value is None else nested{index}(value)"
        return f"None if value is None else [None if item is None else nested{index}(item) for item in value]"
    if kind is fields.List:
        return f"None if value is None else [{_item(field, index, attribute, names)}]"
    return call


def _item(field: fields.List, index: int, attribute: str, names: dict[str, Any]) -> str:
    """A list's items as _value_of's function for the list turns them (a comprehension's body and loop)."""
    names[f"item{index}"] = _value_of(field.inner)
    return f"item{index}(item, {attribute!r}, obj) for item in value"


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
