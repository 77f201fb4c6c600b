"""The one reader of Meta's webhook payloads: one schema per Meta object, one pass yielding typed events, and each
unreadable part listed once with its path (the reader alone, without a database)."""

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

import policy_service
from policy_service.contract import meta_webhooks as meta

from ..meta_business_payloads import account_change, category_impending, template_status, user_preference
from ..meta_payloads import (
    BSUID,
    CONTACT,
    DISPLAY_NUMBER,
    WABA_ID,
    call,
    inbound_text,
    notification,
    pmp,
    status,
)
from . import package_schemas

T0 = 1754989200  # 2025-08-12T09:00:00Z
AT = datetime.fromtimestamp(T0, tz=UTC)
RECEIVED = datetime(2025, 8, 12, 12, tzinfo=UTC)
PACKAGE = Path(policy_service.__file__).parent


def read(*bodies):
    """The reading of one payload holding every change of the bodies."""
    entries = [entry for body in bodies for entry in body["entry"]]
    return meta.read({"object": "whatsapp_business_account", "entry": entries}, RECEIVED)


def of(reading, kind):
    return [event for event in reading.events if isinstance(event, kind)]


def test_each_schema_class_is_defined_once_in_the_package():
    """No second reader of any object: every marshmallow schema class name appears once in policy_service
    (by source, so a class defined in a function or an unimported module counts too)."""
    names: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and node.name.endswith("Schema") and "migrations" not in path.parts:
                names.setdefault(node.name, []).append(str(path.relative_to(PACKAGE)))
    assert {name: where for name, where in names.items() if len(where) > 1} == {}
    # And every Schema subclass the package defines is caught by the name check above.
    defined = {schema.__name__ for schema in package_schemas()}
    assert defined <= set(names), defined - set(names)
    assert {"StatusSchema", "InboundSchema", "MetadataSchema", "StatusErrorSchema"} <= defined


def test_one_pass_yields_every_kind_of_event_in_payload_order():
    """Inbound, status (pricing, errors, decision id), call, templates, preferences, account and capability
    updates, number changes, echoes and group events, from one payload."""
    billed = status("wamid.out", "failed", T0 + 60, pricing=pmp("marketing", "regular", True))
    billed["entry"][0]["changes"][0]["value"]["statuses"][0].update(
        biz_opaque_callback_data="decision-1", errors=[{"code": 131050, "title": "stopped", "error_data": {"x": 1}}])
    changed = inbound_text("wamid.sys", T0 + 1)
    changed["entry"][0]["changes"][0]["value"]["messages"][0].update(
        type="system", system={"type": "user_changed_number", "wa_id": "5511900000000"})
    reading = read(inbound_text("wamid.in", T0), billed, call("wacid.1", T0 + 2), changed,
                   template_status("order_update", "en", "PAUSED", T0 + 3),
                   category_impending("order_update", "en", "UTILITY", "MARKETING", T0 + 4, T0 + 86400),
                   user_preference("stop", T0 + 5),
                   account_change("account_update", {"event": "DISABLED_UPDATE",
                                                      "ban_info": {"waba_ban_state": "DISABLE"}}, T0 + 6),
                   account_change("business_capability_update", {"max_daily_conversation_per_phone": 1000}, T0 + 7),
                   echo("wamid.echo", T0 + 8), group("group_lifecycle_update", "group_create", T0 + 9))
    assert reading.skipped == []
    kinds = [type(event).__name__ for event in reading.events if not isinstance(event, meta.NumberSeen)]
    assert kinds == ["Inbound", "Status", "Call", "Inbound", "NumberChange", "TemplateChange", "TemplateChange",
                     "TemplateChange", "Preference", "AccountChange", "AccountChange", "Echo", "GroupEvent"]
    [failed] = of(reading, meta.Status)
    assert (failed.contact, failed.decision_id, failed.pricing["category"], failed.error_codes(), failed.waba_id) == (
        CONTACT, "decision-1", "marketing", {131050}, WABA_ID)
    assert failed.errors[0]["error_data"] == {"x": 1}  # Meta's error kept whole
    [change] = of(reading, meta.NumberChange)
    assert (change.old_contact, change.new_contact) == (CONTACT, "5511900000000")
    paused, impending, takes_effect = of(reading, meta.TemplateChange)
    assert (paused.status, paused.waba_id, paused.effective_at) == ("PAUSED", WABA_ID, AT.replace(second=3))
    assert (takes_effect.category, takes_effect.previous_category) == ("marketing", "utility")
    assert takes_effect.effective_at == datetime.fromtimestamp(T0 + 86400, tz=UTC)
    ban, capability = of(reading, meta.AccountChange)
    assert (ban.event, capability.event, capability.payload["max_daily_conversations_per_business"]) == (
        "DISABLED_UPDATE", meta.CAPABILITY, 1000)
    [stored_echo] = of(reading, meta.Echo)
    assert (stored_echo.wamid, stored_echo.contact, stored_echo.type) == ("wamid.echo", CONTACT, "text")
    [created] = of(reading, meta.GroupEvent)
    assert (created.field, created.type, created.group_id) == ("group_lifecycle_update", "group_create", "G1")
    assert {seen.waba_id for seen in of(reading, meta.NumberSeen)} == {WABA_ID}


def echo(wamid, timestamp, *, kind="text", to="+" + CONTACT, **extra):
    """smb_message_echoes: a message the business sent from the WhatsApp Business app (Meta's reference shape)."""
    body = notification({"message_echoes": [{"from": DISPLAY_NUMBER, "to": to, "id": wamid,
                                             "timestamp": str(timestamp), "type": kind,
                                             kind: {"body": "Here's the info you requested."}, **extra}]})
    body["entry"][0]["changes"][0]["field"] = "smb_message_echoes"
    return body


def group(field, kind, timestamp, group_id="G1"):
    """A Groups API webhook: one item of value.groups."""
    body = notification({"groups": [{"timestamp": str(timestamp), "group_id": group_id, "type": kind,
                                     "request_id": "r1", "subject": "Book club"}]})
    body["entry"][0]["changes"][0]["field"] = field
    return body


def test_a_username_user_named_only_by_the_contacts_user_id_is_read_under_the_bsuid():
    """A message without `from` or `from_user_id` belongs to the change's one contact (`contacts[].user_id`)."""
    body = notification({"contacts": [{"profile": {"username": "@customer"}, "user_id": BSUID}],
                         "messages": [{"id": "wamid.u", "timestamp": str(T0), "type": "text",
                                       "text": {"body": "hi"}}]})
    reading = read(body)
    assert reading.skipped == []
    [message] = of(reading, meta.Inbound)
    assert message.contact == BSUID


def test_a_message_naming_nobody_among_several_contacts_is_skipped_once():
    """With two contacts the sender is ambiguous: the message is listed once, with its path."""
    body = notification({"contacts": [{"wa_id": CONTACT}, {"user_id": BSUID}],
                         "messages": [{"id": "wamid.u", "timestamp": str(T0), "type": "text"}]})
    reading = read(body)
    assert [part.path for part in reading.skipped] == ["entry.0.changes.0.value.messages.0"]
    assert "from" in reading.skipped[0].reason


def test_an_unreadable_status_is_listed_once():
    """One status both history and billing read is judged once: one skipped part, not two."""
    body = status("wamid.bad", "sent", T0)
    body["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = "x" * 600
    reading = read(body)
    assert [(part.path, list(part.reason)) for part in reading.skipped] == [
        ("entry.0.changes.0.value.statuses.0", ["biz_opaque_callback_data"])]
    assert of(reading, meta.Status) == []


def test_an_out_of_band_error_is_listed_with_its_code_and_details_not_dropped():
    """A `messages` change holding only `value.errors` (Meta's webhook reference, messages/errors: a system, app or
    account problem) yields no event but is listed, one skipped part per error, saying Meta's code, title, message
    and details; the business number it names is still seen. Today's reading listed nothing (receipt: new 0,
    skipped [])."""
    body = notification({"errors": [{"code": 130429, "title": "Rate limit hit",
                                     "message": "Cloud API message throughput has been reached.",
                                     "error_data": {"details": "Message failed to send because there were too many "
                                                               "messages sent from this phone number."},
                                     "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/"},
                                    {"code": 131000}]})
    reading = read(body)
    assert [part.path for part in reading.skipped] == ["entry.0.changes.0.value.errors.0",
                                                       "entry.0.changes.0.value.errors.1"]
    first, second = (part.reason["errors"][0] for part in reading.skipped)
    assert first.startswith("Meta reported error 130429 (Rate limit hit; Cloud API message throughput has been "
                            "reached.; Message failed to send because there were too many messages")
    assert first.endswith("not stored (listed here and logged)")
    assert second == "Meta reported error 131000: an out-of-band error for no message, not stored (listed here " \
                     "and logged)"
    assert [type(event) for event in reading.events] == [meta.NumberSeen]


def test_a_change_without_metadata_is_skipped_naming_metadata_as_missing():
    """No `value.metadata`: the reason names it as missing (it said `_schema: must be a JSON object`)."""
    body = status("wamid.s", "sent", T0)
    del body["entry"][0]["changes"][0]["value"]["metadata"]
    reading = read(body)
    assert [part.path for part in reading.skipped] == ["entry.0.changes.0.value.metadata"]
    assert list(reading.skipped[0].reason) == ["metadata"]
    assert reading.skipped[0].reason["metadata"][0].startswith("missing: required")
    assert reading.events == []


@pytest.mark.parametrize(("field", "given", "reason"), [
    ("metadata", None, "must be a JSON object"),
    ("metadata", [], "must be a JSON object"),
    ("errors", "boom", "must be a list"),
    ("statuses", {"id": "wamid.s"}, "must be a list"),
])
def test_a_value_field_of_the_wrong_kind_is_skipped_naming_the_field(field, given, reason):
    """`metadata: null` was skipped as `_schema: must be a JSON object` and `value.errors` that is not a list as
    `_: must be a list`: the reason names the field, as every other receipt entry does."""
    body = status("wamid.s", "sent", T0)
    body["entry"][0]["changes"][0]["value"][field] = given
    reading = read(body)
    skipped = [part for part in reading.skipped if part.path == f"entry.0.changes.0.value.{field}"]
    assert [part.reason for part in skipped] == [{field: [reason]}], reading.skipped


def test_echo_edits_and_revokes_send_nothing_and_a_bsuid_echo_is_linked():
    """An echo of an edit or a revoke changes an earlier message; an echo to a username user names its BSUID."""
    reading = read(echo("wamid.edit", T0, kind="edit"), echo("wamid.rev", T0, kind="revoke"),
                   echo("wamid.b", T0, to="", to_user_id=BSUID))
    assert [(e.wamid, e.contact) for e in of(reading, meta.Echo)] == [("wamid.b", BSUID)]
    assert reading.skipped == []


def test_an_entry_without_time_takes_the_receipt_time_and_a_numeric_waba_id_is_read():
    """Some fields omit entry.time; Meta has sent entry.id as a number."""
    body = template_status("order_update", "en", "APPROVED", T0)
    del body["entry"][0]["time"]
    body["entry"][0]["id"] = int(WABA_ID)
    [change] = of(read(body), meta.TemplateChange)
    assert (change.effective_at, change.waba_id) == (RECEIVED, WABA_ID)


def test_a_null_entry_time_is_listed_and_the_receipt_time_stands_in():
    """entry.time null lost the whole entry ("Field may not be null.", the template event not stored) while "abc",
    -5, 1.5 or 10**11 keep it: null is listed as not read (entry.N.time) and the event is read at the receipt
    time, like every value that is no time."""
    for bad in (None, "abc", -5, 1.5, 99999999999):
        body = template_status("order_update", "en", "APPROVED", T0)
        body["entry"][0]["time"] = bad
        reading = read(body)
        [change] = of(reading, meta.TemplateChange)
        assert change.effective_at == RECEIVED, bad
        [skipped] = reading.skipped
        assert skipped.path == "entry.0.time" and skipped.reason["time"][-1] == "not read: the receipt time " \
            "stands in", (bad, skipped)


MISSING = object()


def test_an_entry_whose_id_is_no_waba_id_is_skipped_naming_it():
    """Meta's WABA ids are digits, the only ones the API and pages take: an entry under "WABA1" was stored and
    drove decisions under an account GET /v1/wabas/WABA1/templates refuses. It is skipped, its reason naming
    entry.N.id; a numeric or digit-string id beside it is read. An entry with no id at all was read under the WABA
    id "" (its number learned under no account): it is skipped alike, saying the id is required."""
    for bad in ("WABA1", "", " 123", "12.5", -1, True, [1], None, MISSING):
        body = inbound_text("wamid.bad", T0)
        if bad is MISSING:
            del body["entry"][0]["id"]
        else:
            body["entry"][0]["id"] = bad
        good = template_status("order_update", "en", "APPROVED", T0)
        reading = read(body, good)
        assert of(reading, meta.Inbound) == [] and of(reading, meta.NumberSeen) == [], bad
        assert [change.waba_id for change in of(reading, meta.TemplateChange)] == [WABA_ID], bad
        [skipped] = reading.skipped
        assert (skipped.path, list(skipped.reason)) == ("entry.0", ["id"]), (bad, skipped)
        assert skipped.reason["id"] == [("required: " if bad is MISSING else "must be ") + meta.NOT_A_WABA_ID], bad
    body = inbound_text("wamid.zero", T0)
    body["entry"][0]["id"] = 0  # a number, as Meta has sent ids: read under "0", not the empty id
    assert [seen.waba_id for seen in of(read(body), meta.NumberSeen)] == ["0"]


def test_the_envelope_alone_decides_whether_a_body_is_a_webhook():
    """`object` and `entry` are the only parts that refuse a body whole."""
    assert meta.envelope_errors({"object": "page", "entry": []}) == {"object": ["Must be equal to "
                                                                                "whatsapp_business_account."]}
    assert meta.envelope_errors([1]) is not None
    assert meta.envelope_errors({"object": "whatsapp_business_account", "entry": [{"junk": 1}]}) is None


def test_pricing_of_the_wrong_types_is_skipped_not_reconciled():
    """Meta's status pricing: billable a JSON boolean, category and type strings. "yes" or 5 would be stored and
    reconciled as category 5; the status is skipped naming the fields, the good one beside it is read whole."""
    body = status("wamid.bad", "sent", T0, pricing={"billable": "yes", "category": 5, "pricing_model": "PMP"})
    good = status("wamid.good", "sent", T0, pricing=pmp("utility", "regular", True))
    good["entry"][0]["changes"][0]["value"]["statuses"][0]["pricing"]["added_by_meta_later"] = "kept"
    reading = read(body, good)
    assert [(part.path, sorted(part.reason)) for part in reading.skipped] == [
        ("entry.0.changes.0.value.statuses.0", ["pricing.billable", "pricing.category"])]
    [kept] = of(reading, meta.Status)
    assert kept.wamid == "wamid.good" and kept.pricing["category"] == "utility" and kept.pricing["billable"] is True
    assert kept.pricing["added_by_meta_later"] == "kept"


def test_a_timestamp_before_2000_or_past_2999_is_skipped():
    """-1 would be stored at 1969-12-31: a message's or status's time must fall where the decisions API's do."""
    bodies = [inbound_text("wamid.neg", -1), inbound_text("wamid.zero", 0), status("wamid.far", "sent", 10**11),
              inbound_text("wamid.ok", T0)]
    reading = read(*bodies)
    assert [part.path for part in reading.skipped] == [
        "entry.0.changes.0.value.messages.0", "entry.1.changes.0.value.messages.0",
        "entry.2.changes.0.value.statuses.0"]
    assert all("2000-01-01" in part.reason["timestamp"][0] for part in reading.skipped)
    assert [event.wamid for event in of(reading, meta.Inbound)] == ["wamid.ok"]


def test_a_change_of_too_many_values_costs_only_itself():
    """A change holding 2,100,000 values (21 arrays of 100,000, each within the item limit) made the body's value
    count refuse the whole payload (422), losing the message beside it: the change is listed as unreadable and
    read() skips it, the message read. Only a body past PAYLOAD_VALUES is refused whole."""
    body = inbound_text("wamid.many", T0)
    body["entry"][0]["changes"].append({"field": "phone_number_name_update",
                                        "value": {f"a{index}": [0] * 100_000 for index in range(21)}})
    document = meta.parse_payload(json.dumps(body, separators=(",", ":")).encode())
    assert document.unreadable == {"entry.0.changes.1": [
        f"at most {meta.CHANGE_VALUES} JSON values: the change is not read (the stored payload keeps it)"]}
    reading = meta.read(document, datetime.now(UTC))
    assert [event.wamid for event in reading.events if isinstance(event, meta.Inbound)] == ["wamid.many"]
    assert [part.path for part in reading.skipped] == ["entry.0.changes.1"]


def test_a_time_in_another_scripts_digits_is_not_a_time():
    """meta_time reads Unix seconds written in ASCII digits only: Arabic-Indic digits (which str.isdigit and int
    accept) are refused as any other text that is not a time, never read as a number."""
    assert meta.meta_time("1700000000") == datetime.fromtimestamp(1700000000, tz=UTC)
    for written in ("١٧٠٠٠٠٠٠٠٠", "１７００００００００"):
        try:
            meta.meta_time(written)
        except ValueError:
            continue
        raise AssertionError(f"{written!r} was read as a time")


def test_a_timestamp_in_digits_other_than_ascii_is_skipped_not_stored():
    """A message with timestamp "１７６５１３００００" (fullwidth digits) was stored: UnixTime read it with int(). A
    timestamp of other scripts' digits (fullwidth, Arabic-Indic), a sign, spaces or underscores is skipped with its
    path and reason (contract.schemas.whole_number), as "abc" is; ASCII digits are read."""
    fullwidth = str(T0).translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    arabic = str(T0).translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    for bad in (fullwidth, arabic, f"+{T0}", f" {T0}", f"{T0:_}", "abc", float(T0)):
        body = inbound_text("wamid.digits", T0)
        body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = bad
        reading = read(body)
        assert of(reading, meta.Inbound) == [], bad
        [skipped] = reading.skipped
        assert skipped.reason == {"timestamp": ["must be Unix seconds"]}, (bad, skipped)
    [message] = of(read(inbound_text("wamid.digits", T0)), meta.Inbound)
    assert message.at == AT


def test_a_ban_date_is_read_in_each_form_meta_writes_and_refused_otherwise():
    """ban_date: "January 2, 2026" (a month's name or its first three letters, any case, the comma optional) and an
    ISO 8601 date are that day from 00:00 UTC; an ISO 8601 time or Unix seconds that instant. Anything else, a day
    that does not exist, or a time outside 2000-2999 is a ValueError naming the forms read."""
    day = datetime(2026, 1, 2, tzinfo=UTC)
    for written in ("January 2, 2026", "JANUARY 2 2026", "Jan 2, 2026", "jan. 02, 2026", "2026-01-02",
                    "2026-01-02T00:00:00+0000", 1767312000, "1767312000"):
        assert meta.ban_date(written) == day, written
    assert meta.ban_date("2026-01-02T10:30:00Z") == datetime(2026, 1, 2, 10, 30, tzinfo=UTC)
    for written in ("soon", "", "February 30, 2026", "Sept 1, 2026", "May 1, 1999", "January 2, 12026", True,
                    99999999999, [2026, 1, 2], {"day": 2}, "١٧٦٧٣١٢٠٠٠"):
        try:
            meta.ban_date(written)
        except ValueError as error:
            assert str(error) == f"must be {meta.BAN_DATE_FORMS}", written
            continue
        raise AssertionError(f"{written!r} was read as a ban date")
