"""Every webhook shape the public SDK test suites exercise is accepted, and what the rules need from it is kept.

The bodies (tests/web/peer_shapes.py) are our own, one per shape; none is refused whole, and none is accepted
with its content dropped: each message or status is stored with its type, contact or group, status, category,
delivered time and errors as the rules and reconciliation read them.
"""

import json

import pytest

from policy_service.store import histories

from ..meta_payloads import CONTACT, deliver
from .peer_shapes import SHAPES


@pytest.mark.parametrize("name", list(SHAPES))
def test_each_peer_shape_is_accepted_and_kept(app, client, name):
    """The body is accepted (200, one new event, nothing skipped but Meta's out-of-band `errors` beside it, which the
    receipt lists as not stored), and the stored row holds what the shape carries."""
    body, keeps = SHAPES[name]
    (response,) = deliver(client, body)
    answer = response.json
    change = body["entry"][0]["changes"][0]["value"]
    assert (answer["new"], answer["known"]) == (1, 0), answer
    assert [skipped["path"] for skipped in answer["skipped"]] == [
        f"entry.0.changes.0.value.errors.{index}" for index in range(len(change.get("errors", [])))], answer
    events = change.get("messages") or change.get("statuses")
    wamid, direction = events[0]["id"], "inbound" if "messages" in change else "outbound"
    with app.app_context():
        row = histories.StoredMessage.get(histories.StoredMessage.wamid == wamid)
        message = histories.as_message(row)
        category = histories.outbound_category(row)
    assert row.direction == direction
    assert row.contact == keeps.get("contact", CONTACT)
    assert row.group_id == keeps.get("group_id")
    if "type" in keeps:
        assert row.type == keeps["type"]
    if "status" in keeps:
        assert row.status == keeps["status"]
    if "category" in keeps:
        assert category == keeps["category"]
    if "delivered" in keeps:
        assert (message.delivery_time is not None) == keeps["delivered"]
    if "errors" in keeps:
        assert [e["code"] for e in json.loads(row.errors)] == keeps["errors"]
    if keeps.get("referral"):
        assert message.referral and message.referral["source_type"] == "ad"


def test_every_shape_together_is_one_accepted_history(app, client):
    """All shapes delivered in one go are accepted; the contact's 1:1 history holds none of the group's."""
    for body, _ in SHAPES.values():
        deliver(client, body)
    with app.app_context():
        rows = histories.stored_messages("106540352242922", CONTACT)
    assert rows and all(row.group_id is None for row in rows)
