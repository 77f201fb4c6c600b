"""Stored histories: status updates merge by wamid, and stored rows become the core's Message values."""

from datetime import UTC, datetime

import pytest

from policy_service.contract.schemas import MessageSchema
from policy_service.store import histories

from ..meta_payloads import CONTACT, PHONE_NUMBER_ID

AT = datetime(2025, 8, 12, 10, 0, tzinfo=UTC)


def update(wamid: str, state: str, seconds: int = 0, pricing: dict | None = None, origin: str | None = None):
    return histories.Status(wamid, PHONE_NUMBER_ID, CONTACT, AT.replace(second=seconds), state,
                            conversation_origin=origin, pricing=pricing)


def one(wamid: str) -> histories.StoredMessage:
    return histories.StoredMessage.get(histories.StoredMessage.wamid == wamid)


@pytest.mark.parametrize(("states", "final"), [
    (["sent", "delivered", "read"], "read"),
    (["read", "delivered", "sent"], "read"),
    (["sent", "failed"], "failed"),
    (["delivered", "failed"], "delivered"),
    (["sent", "delivered", "read", "played"], "played"),
    (["played", "deleted"], "played"),
    (["sent", "warning"], "sent"),
])
def test_the_strongest_status_wins_whatever_the_order(app, states, final):
    """Out-of-order and repeated statuses settle on the furthest delivery state; a delivered message stays delivered."""
    with app.app_context():
        for second, state in enumerate(states):
            histories.store_status(update("wamid.s", state, second))
        row = one("wamid.s")
        assert row.status == final and histories.as_message(row).at == AT


@pytest.mark.parametrize(("category", "message_type", "template_category"), [
    ("utility", "template", "utility"),
    ("marketing", "template", "marketing"),
    ("marketing_lite", "template", "marketing"),
    ("authentication-international", "template", "authentication"),
    ("authentication_international", "template", "authentication"),
    ("service", "text", None),
    # A Meta Business Agent reply (PMP26-4.agent) is a non-template message.
    ("business_agent", "text", None),
    # Categories that do not say whether it was a template: stored as unknown, the replay assumes and says so.
    ("referral_conversion", "unknown", None),
    ("business_initiated", "unknown", None),
    ("user_initiated", "unknown", None),
    # Categories the rules do not model: kept as Meta sent them, the type unknown.
    ("general_purpose_ai", "unknown", None),
    ("group_marketing", "template", "marketing"),
    ("group_utility", "template", "utility"),
    ("group_service", "text", None),
])
def test_outbound_type_is_inferred_from_the_pricing_category(app, category, message_type, template_category):
    """A template of a modelled template category, free-form for service and business_agent, unknown where the
    category does not say; the category itself is kept as Meta sent it."""
    with app.app_context():
        histories.store_status(update("wamid.p", "delivered", pricing={"pricing_model": "PMP", "category": category}))
        message = histories.as_message(one("wamid.p"))
        assert histories.outbound_category(one("wamid.p")) == category
    assert message.type == message_type
    assert (message.template.category if message.template else None) == template_category


def test_conversation_origin_stands_in_when_no_pricing_arrived(app):
    """Without pricing, the conversation origin type names the category."""
    with app.app_context():
        histories.store_status(update("wamid.o", "sent", origin="marketing"))
        assert histories.as_message(one("wamid.o")).template.category == "marketing"


def test_history_json_loads_back_as_the_same_messages(app):
    """A resolved history written into the log loads through the request schema unchanged."""
    with app.app_context():
        histories.store_inbound(histories.Inbound("wamid.in", PHONE_NUMBER_ID, CONTACT, AT, "text",
                                                  {"source_type": "ad", "source_id": "1"}))
        histories.store_status(update("wamid.out", "delivered", 30, pricing={"category": "utility"}))
        history = histories.stored_history(PHONE_NUMBER_ID, CONTACT, AT.replace(minute=5))
    loaded = tuple(MessageSchema(many=True).load(histories.history_json(history)))
    assert loaded == history and [m.id for m in loaded] == ["wamid.in", "wamid.out"]


@pytest.mark.parametrize(("states", "delivered_second"), [
    (["sent", "delivered", "read"], 1),
    (["read", "delivered", "sent"], 0),  # out of order: the earliest delivering status (read) dates delivery
    (["sent", "read"], 1),  # Meta sends no `delivered` when the message is read at once
    (["sent", "played"], 1),
    (["sent", "failed"], None),
    (["sent", "deleted", "warning"], None),
])
def test_the_delivered_time_is_the_earliest_delivering_status(app, states, delivered_second):
    """Sent and delivered times are both kept; a message never delivered has no delivered time."""
    with app.app_context():
        for second, state in enumerate(states):
            histories.store_status(update("wamid.d", state, second))
        message = histories.as_message(one("wamid.d"))
    assert message.at == AT
    assert message.delivered_at == (None if delivered_second is None else AT.replace(second=delivered_second))
    assert (message.delivery_time is not None) == (delivered_second is not None)


def test_group_messages_are_the_groups_history_never_a_participants(app):
    """A group status and a participant's message in the group are stored under the group id, so the
    participant's 1:1 history holds neither."""
    with app.app_context():
        histories.store_status(histories.Status("wamid.g", PHONE_NUMBER_ID, "group-abc", AT, "delivered",
                                                pricing={"category": "group_marketing"}, group_id="group-abc"))
        histories.store_inbound(histories.Inbound("wamid.gi", PHONE_NUMBER_ID, "group-abc", AT, "text",
                                                  group_id="group-abc"))
        assert histories.stored_history(PHONE_NUMBER_ID, CONTACT, AT) == ()
        group = histories.stored_history(PHONE_NUMBER_ID, "group-abc", AT)
    assert {m.id for m in group} == {"wamid.g", "wamid.gi"}


def test_a_stored_history_round_trips_with_its_delivered_time(app):
    """history_json gives delivered_at, and the request schema reads it back."""
    with app.app_context():
        histories.store_status(update("wamid.r", "sent", 0, pricing={"category": "utility"}))
        histories.store_status(update("wamid.r", "delivered", 30))
        messages = histories.stored_history(PHONE_NUMBER_ID, CONTACT, AT.replace(second=59))
    (item,) = histories.history_json(messages)
    assert item["delivered_at"] == AT.replace(second=30).isoformat()
    assert MessageSchema().load(item).delivered_at == AT.replace(second=30)


def test_a_message_sent_from_the_business_app_reads_as_a_delivered_business_message(app):
    """A stored coexistence echo (business_app) is an outbound message taken as delivered at its time, and the
    history JSON of a logged request keeps the flag, so the replay sees the same business message."""
    with app.app_context():
        histories.StoredMessage.create(wamid="wamid.echo", phone_number_id=PHONE_NUMBER_ID, contact=CONTACT,
                                       direction="outbound", at=datetime(2025, 9, 3, 11), type="text",
                                       status="sent", business_app=True)
        message = histories.as_message(one("wamid.echo"))
    assert message.business_app and message.delivery_time == message.at
    [item] = histories.history_json((message,))
    assert item["business_app"] is True and MessageSchema().load(item) == message
