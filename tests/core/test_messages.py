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
