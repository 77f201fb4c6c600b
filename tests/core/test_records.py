"""records.record: a frozen dataclass whose fast __init__ behaves exactly like the generated one."""

import dataclasses

import pytest

from policy_service.core.records import record, replace


@record
class Sample:
    name: str
    count: int = 3
    tags: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Reference:
    name: str
    count: int = 3
    tags: list = dataclasses.field(default_factory=list)


@pytest.mark.parametrize("args, kwargs", [(("a",), {}), (("a", 5), {}), ((), {"name": "b", "tags": [1]}),
                                          (("c",), {"count": 0})])
def test_same_values_as_the_generated_init(args, kwargs):
    fast, reference = Sample(*args, **kwargs), Reference(*args, **kwargs)
    assert dataclasses.astuple(fast) == dataclasses.astuple(reference)
    assert repr(fast).removeprefix("Sample") == repr(reference).removeprefix("Reference")


def test_still_frozen_hashable_and_replaceable():
    sample = Sample("a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        sample.name = "b"  # type: ignore[misc]
    assert Sample("a", 1, ()) == Sample("a", 1, ()) and hash(Sample("a", 1, ())) == hash(Sample("a", 1, ()))
    assert dataclasses.replace(sample, count=9) == Sample("a", 9)
    assert Sample("a").tags is not Sample("a").tags  # each instance gets its own default


def test_refuses_what_it_cannot_honour():
    with pytest.raises(TypeError):
        record(type("Post", (), {"__annotations__": {"x": int}, "__post_init__": lambda self: None}))
    with pytest.raises(TypeError, match="missing"):
        Sample()  # type: ignore[call-arg]


def test_replace_copies_like_dataclasses_replace():
    """records.replace gives what dataclasses.replace gives, field order included, and refuses unknown names."""
    sample = Sample("a", 1, [2])
    for changes in ({}, {"count": 9}, {"name": "b", "tags": []}):
        fast, reference = replace(sample, **changes), dataclasses.replace(sample, **changes)
        assert fast == reference and repr(fast) == repr(reference) and list(vars(fast)) == list(vars(reference))
    assert sample.count == 1  # the original is untouched
    with pytest.raises(TypeError, match="no field 'size'"):
        replace(sample, size=2)
    assert replace(Reference("a"), count=2) == Reference("a", 2)  # any other dataclass: dataclasses.replace


def test_replace_drops_cached_properties():
    """A cached_property's value belongs to the original: the copy computes its own (as dataclasses.replace)."""
    import functools

    @record
    class Cached:
        value: int

        @functools.cached_property
        def doubled(self) -> int:
            return self.value * 2

    original = Cached(2)
    assert original.doubled == 4
    assert replace(original, value=5).doubled == 10
