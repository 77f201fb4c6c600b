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
    ("referral_conversion", "text", None),
])
def test_outbound_type_is_inferred_from_the_pricing_category(app, category, message_type, template_category):
    """A template of the priced category, or a non-template message for service and referral_conversion."""
    with app.app_context():
        histories.store_status(update("wamid.p", "delivered", pricing={"pricing_model": "PMP", "category": category}))
        message = histories.as_message(one("wamid.p"))
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
