"""contract.schemas: request validation messages say what is wrong, once per field."""

import pytest
from marshmallow import ValidationError

from policy_service.contract.schemas import REQUEST

SEND = {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"}


def test_a_bad_history_ref_contact_gets_only_its_own_message():
    """A contact that is not a wa_id is that field's error alone; "give either contact or group_id" is said only
    when neither or both are given."""
    with pytest.raises(ValidationError) as refused:
        REQUEST.load({"send": SEND, "history_ref": {"phone_number_id": "1", "contact": "1"}})
    messages = refused.value.messages["history_ref"]["contact"]
    assert messages and not any("give either" in m for m in messages), messages
    for ref in ({"phone_number_id": "1"}, {"phone_number_id": "1", "contact": "5511988887777", "group_id": "g"}):
        with pytest.raises(ValidationError) as refused:
            REQUEST.load({"send": SEND, "history_ref": ref})
        assert "give either contact or group_id" in refused.value.messages["history_ref"]["contact"], ref
