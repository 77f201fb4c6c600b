"""Every fixture history in fixtures/ replays to the decision it expects."""

import pytest

from policy_service.fixtures import discover, run_fixture

from .conftest import FIXTURES_DIR

FIXTURES = discover([FIXTURES_DIR])


def test_fixture_set_is_not_empty():
    """A run that finds no fixture must fail, not pass vacuously."""
    assert len(FIXTURES) >= 15


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_fixture(fixture, rulebook, engine):
    """The fixture's expected decision, type, charge and rule ids all hold."""
    result = run_fixture(fixture, rulebook=rulebook, engine=engine)
    assert result.decision.status != "error", result.decision.error
    assert result.passed, "\n".join(
        [f"{m.field}: expected {m.expected!r}, got {m.actual!r}" for m in result.mismatches]
        + [f"rules that fired: {', '.join(result.fired)}"]
    )
