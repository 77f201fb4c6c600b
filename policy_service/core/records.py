"""Frozen dataclasses that are cheap to construct, for the values made on every decision.

A frozen dataclass's generated __init__ stores each field through object.__setattr__ (to get past
its own __setattr__, which refuses): with nine fields that costs about 2.7 µs, against 0.45 µs for a
plain dataclass (bench/decisions.py: a decision makes a Decision, a Charge, Facts and a Reason per
trace entry). `record` keeps everything the frozen dataclass gives — immutability, equality, hashing,
repr, dataclasses.replace — and only swaps in an __init__ with the same signature that writes the
instance's __dict__ directly, and `replace`, which copies a record that way (dataclasses.replace goes
through __init__ and costs as much again). A history's messages, up to 10,000 per request, and what
every decision makes (core.decision's Decision, Charge and Reason, core.facts' Facts and HistoryState)
are msgspec Structs instead (made in C, ~0.1 µs); `replace` copies those too.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from msgspec import Struct, structs

T = TypeVar("T")
_NO_VALUE: Any = object()  # stands for "use the default factory"


def record(cls: type[T]) -> type[T]:
    """@dataclass(frozen=True) with a fast __init__ (same parameters, defaults and factories)."""
    cls = dataclasses.dataclass(frozen=True)(cls)
    if "__post_init__" in vars(cls) or hasattr(cls, "__slots__"):
        raise TypeError(f"{cls.__name__}: record supports neither __post_init__ nor slots")
    namespace: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    parameters, body = [], []
    for field in dataclasses.fields(cls):
        if not field.init:
            raise TypeError(f"{cls.__name__}.{field.name}: record needs every field in __init__")
        name = field.name
        if field.default is not dataclasses.MISSING:
            namespace[f"_default_{name}"] = field.default
            parameters.append(f"{name}=_default_{name}")
        elif field.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{name}"] = field.default_factory
            parameters.append(f"{name}=_NO_VALUE")
            body.append(f"    if {name} is _NO_VALUE:\n        {name} = _factory_{name}()")
        else:
            parameters.append(name)
        body.append(f"    values[{name!r}] = {name}")
    source = f"def __init__(self, {', '.join(parameters)}):\n    values = self.__dict__\n" + "\n".join(body)
    exec(source, namespace)  # noqa: S102 - code generated from the class's own field names, as dataclasses does
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[misc]
    # The field names in order (a dict for fast membership): what `replace` copies.
    cls.__record_fields__ = dict.fromkeys(f.name for f in dataclasses.fields(cls))  # type: ignore[attr-defined]
    return cls


def replace(obj: T, /, **changes: Any) -> T:
    """dataclasses.replace(obj, **changes), fast for a `record` (a msgspec Struct goes to msgspec.structs.replace,
    any other dataclass to dataclasses).

    Like dataclasses.replace, the copy has only the fields: a cached_property's value is not carried over.
    Raises TypeError for a name that is not a field.
    """
    names = getattr(type(obj), "__record_fields__", None)
    if names is None:
        if isinstance(obj, Struct):  # core.messages.Message
            return structs.replace(obj, **changes)
        return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
    if not changes.keys() <= names.keys():
        raise TypeError(f"{type(obj).__name__} has no field {sorted(changes.keys() - names.keys())[0]!r}")
    values = obj.__dict__
    copy = object.__new__(type(obj))
    fields = copy.__dict__
    if len(values) == len(names):
        fields.update(values)  # only the fields (__init__ wrote them in order): copied in C
    else:
        fields.update({name: values[name] for name in names})  # leave out a cached_property's value
    fields.update(changes)
    return copy
