"""The ledger of conversations and free entry point windows: half-open periods, closing on a free entry point."""

from datetime import UTC, datetime, timedelta

from policy_service.core.conversations import Ledger, Period

H0 = datetime(2024, 5, 1, 8, tzinfo=UTC)


def period(kind, category, opened, hours):
    """A period opened `opened` hours after H0 lasting `hours`."""
    start = H0 + timedelta(hours=opened)
    return Period(kind, category, "CBP", start, start + timedelta(hours=hours), 0, "TEST")


def test_periods_are_half_open():
    """A conversation is open from its delivery up to, not including, its expiry."""
    conversation = period("conversation", "utility", 0, 24)
    assert conversation.open_at(H0) and conversation.open_at(H0 + timedelta(hours=23, minutes=59))
    assert not conversation.open_at(H0 + timedelta(hours=24))


def test_several_conversations_can_be_open_at_once():
    """Conversations of different categories overlap; open_at lists them oldest first."""
    ledger = Ledger()
    ledger.open(period("conversation", "marketing", 0, 24), closes_others=False)
    ledger.open(period("conversation", "utility", 4, 24), closes_others=False)
    assert [p.category for p in ledger.open_at(H0 + timedelta(hours=5))] == ["marketing", "utility"]


def test_a_free_entry_point_conversation_closes_the_others():
    """Opening a free entry point conversation ends every conversation open at that moment (FEP-1)."""
    ledger = Ledger()
    ledger.open(period("conversation", "utility", 0, 24), closes_others=False)
    ledger.open(period("free_entry_point_conversation", "referral_conversion", 14, 72), closes_others=True)
    open_later = ledger.open_at(H0 + timedelta(hours=15))
    assert [p.kind for p in open_later] == ["free_entry_point_conversation"]
    assert ledger.periods[0].expires_at == H0 + timedelta(hours=14)


def test_closing_leaves_already_ended_periods_alone():
    """A conversation that had already ended keeps its own expiry when a free entry point opens later."""
    ledger = Ledger()
    ledger.open(period("conversation", "marketing", 0, 24), closes_others=False)
    ledger.open(period("free_entry_point_conversation", "referral_conversion", 30, 72), closes_others=True)
    assert ledger.periods[0].expires_at == H0 + timedelta(hours=24)


def test_each_ledger_has_its_own_lists_and_a_period_is_an_immutable_value():
    """Ledger and Period are msgspec Structs: a new Ledger starts empty with lists of its own (what one history
    state opens is never seen by another); a Period is equal and hashes equal to one with the same fields, and
    refuses assignment (closing one makes a copy with the earlier expiry)."""
    import pytest

    first, second = Ledger(), Ledger()
    first.open(period("conversation", "utility", 0, 24), closes_others=False)
    assert second.periods == [] and second.open_at(H0) == [] and Ledger().periods == []
    conversation = period("conversation", "utility", 0, 24)
    assert conversation == period("conversation", "utility", 0, 24) != period("conversation", "marketing", 0, 24)
    assert hash(conversation) == hash(period("conversation", "utility", 0, 24))
    with pytest.raises(AttributeError):
        conversation.expires_at = H0  # type: ignore[misc]
