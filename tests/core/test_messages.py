"""Messages: when an outbound message reached the user, from its delivered time or its status."""

from datetime import UTC, datetime, timedelta

import pytest

from policy_service.core.messages import Message
from policy_service.core.vocabulary import STATUSES

AT = datetime(2025, 8, 1, 9, tzinfo=UTC)


@pytest.mark.parametrize("status", STATUSES)
def test_every_status_value_says_whether_the_message_was_delivered(status):
    """delivered, read and played prove delivery (at the send time when no delivered time is known);
    sent, failed, deleted and warning do not."""
    message = Message("outbound", AT, "text", status=status)
    assert message.delivery_time == (AT if status in ("delivered", "read", "played") else None)


def test_a_delivered_time_wins_over_the_send_time():
    """With delivered_at, that is the delivery time whatever the status; inbound counts from when written."""
    later = AT + timedelta(hours=10)
    assert Message("outbound", AT, "text", status="sent", delivered_at=later).delivery_time == later
    assert Message("inbound", AT, "text").delivery_time == AT


def test_a_message_is_an_immutable_value_record():
    """Message (a msgspec Struct, made in C for 10,000-event histories) keeps what the record gave: positional and
    keyword fields with their defaults, equality and hashing by value, immutability, and copies by records.replace
    (core.chronology dates a message by its delivery that way)."""
    from policy_service.core.messages import Template
    from policy_service.core.records import replace

    template = Template("order_update", "en", "utility")
    message = Message("outbound", AT, "template", template, id="wamid.1")
    assert message == Message(direction="outbound", at=AT, type="template", template=template, status="delivered",
                              referral=None, id="wamid.1", delivered_at=None, business_app=False)
    assert message != Message("outbound", AT, "template", template, id="wamid.2")
    assert hash(message) == hash(Message("outbound", AT, "template", Template("order_update", "en", "utility"),
                                         id="wamid.1"))
    with pytest.raises(AttributeError):
        message.at = AT + timedelta(hours=1)  # type: ignore[misc]
    moved = replace(message, at=AT + timedelta(hours=1))
    assert (moved.at, moved.template, moved.id, message.at) == (AT + timedelta(hours=1), template, "wamid.1", AT)
    with pytest.raises(TypeError):
        replace(message, sent_at=AT)
    assert repr(Message("inbound", AT, "text")) == (
        "Message(direction='inbound', at=datetime.datetime(2025, 8, 1, 9, 0, tzinfo=datetime.timezone.utc), "
        "type='text', template=None, status='delivered', referral=None, id=None, delivered_at=None, "
        "business_app=False)")
