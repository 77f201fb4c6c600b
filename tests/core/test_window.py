"""core.window: which inbound messages open the customer service window, from the rulebook's two parameters."""

from datetime import UTC, date, datetime, timedelta

from policy_service.core.window import openers_of, window_openers


def test_the_rulebook_counts_a_call_from_csw_8_calls_start_and_never_an_ignored_type(rulebook):
    """A call opens the window from 00:00 UTC of CSW-8.call's start day on, not a second before; a text on any day;
    a window-ignored type (a reaction, CSW-7) never."""
    openers = window_openers(rulebook)
    day = rulebook.rule("CSW-8.call").effective_from
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert openers.counted_from == {"call": midnight}
    assert not openers.opens("call", midnight - timedelta(seconds=1))
    assert openers.opens("call", midnight) and openers.opens("call", midnight + timedelta(days=400))
    assert openers.opens("text", midnight - timedelta(days=400))
    assert "reaction" in openers.ignored_types and not openers.opens("reaction", midnight + timedelta(days=1))
    assert openers.uncounted_types == openers.ignored_types | {"call"}
    assert window_openers(rulebook) is openers  # made once per rulebook version


def test_a_type_both_ignored_and_dated_is_never_counted():
    """openers_of: an ignored type stays ignored whatever day it is given; a day is read as 00:00 UTC."""
    openers = openers_of(["reaction"], {"reaction": date(2024, 1, 1), "call": date(2024, 10, 1)})
    assert openers.counted_from == {"call": datetime(2024, 10, 1, tzinfo=UTC)}
    assert not openers.opens("reaction", datetime(2030, 1, 1, tzinfo=UTC))
    assert openers_of([]).opens("call", datetime(2000, 1, 1, tzinfo=UTC))
