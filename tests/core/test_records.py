"""records.record: a frozen dataclass whose fast __init__ behaves exactly like the generated one."""

import dataclasses

import pytest

from policy_service.core.records import record


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
