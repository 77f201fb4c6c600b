"""Masking (core.masking): the same output as the regular expression the decision log ran over its serialized
JSON until issue 25 (kept here as the reference), plus bare digit runs in a referral's free text (issue 22)."""

import json
import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.core import masking
from policy_service.store.decision_log import dumps

# Today's masking, as store/decision_log.py ran it over compact JSON text (dumps) before issue 25.
_TODAY = re.compile(r'(?<=[{,])"(contact|wa_id)":"(\d+)"|\+\d{7,15}'
                    r'|(?:(?<=\A")|(?<=[:,\[{]")|(?<= ))([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{8,128})(?![\w.])')


def _today(match):
    if match.group(3) is not None:
        return match.group(3) + "*" * len(match.group(4))
    if match.group(1) is None:
        return masking.mask_number(match.group())
    return f'"{match.group(1)}":"{masking.mask_number(match.group(2))}"'


def masked_today(value):
    """The value masked as the decision log masked it before: one regex over its compact JSON text."""
    return json.loads(_TODAY.sub(_today, dumps(value).decode()))


_PHONE_LIKE = st.from_regex(r"\A\+?[0-9]{1,17}\Z")
_BSUID_LIKE = st.from_regex(r"\A[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{6,10}\Z")
_AROUND = st.sampled_from(["", " ", "\n", "x", ".", '"', "\\", "A", "+", "wamid.", "é", "١"])
_TEXT = st.one_of(_PHONE_LIKE, _BSUID_LIKE, st.text(),
                  st.builds("{}{}{}".format, st.text(max_size=3), _PHONE_LIKE, st.text(max_size=3)),
                  st.builds("{}{}{}{}{}".format, _AROUND, _BSUID_LIKE, _AROUND, _PHONE_LIKE, _AROUND),
                  st.builds(json.dumps, st.dictionaries(st.sampled_from(["contact", "wa_id", "to"]), _PHONE_LIKE)))
_KEYS = st.sampled_from(["contact", "wa_id", "to", "send", "x", "at", "type"]) | st.text("ab\"{},:+1 .", max_size=4) \
    | _BSUID_LIKE | _PHONE_LIKE
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=False,
                     allow_infinity=False) | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_masking_a_value_equals_todays_masking_of_its_json(value):
    """Walking the value masks exactly what the regex over its JSON text did: every +number in a string (value
    or key), every all-digit contact or wa_id member, every BSUID starting a string or after a space, nothing a
    JSON escape hides."""
    assert masking.masked(value) == masked_today(value)


@settings(max_examples=200, deadline=None)
@given(_JSON)
def test_masking_again_with_remembered_strings_is_the_same(value):
    """Strings that masking left unchanged are remembered (the rulebook's citations and titles recur in every
    trace) and not searched again: masking a value again gives what today's masking gives, and what is remembered
    never holds a number or a BSUID masking would change."""
    assert masking.masked(value) == masking.masked(value) == masked_today(value)
    assert all(masking.mask_text(text) == text for text in masking._UNCHANGED)


def test_remembered_strings_are_bounded():
    """The memory of unchanged strings is emptied when full, so it never grows past its bound."""
    for number in range(masking._UNCHANGED_MAX + 10):
        masking.masked(f"see https://example.com/{number}")
    assert 0 < len(masking._UNCHANGED) <= masking._UNCHANGED_MAX


_TIME = st.sampled_from(["2025-08-12T09:00:00+00:00", "2025-08-12T09:00:00.123456+05:30", "2025-08-12T09:00:00Z"])
_REFERRAL = st.fixed_dictionaries({}, optional={
    "source_type": st.sampled_from(["ad", "post"]), "source_id": _TEXT | st.from_regex(r"\A[0-9]{6,20}\Z"),
    "source_url": _TEXT, "body": _TEXT | st.builds("Call {} now".format, st.from_regex(r"\A[0-9]{5,17}\Z")),
    "headline": _TEXT, "ctwa_clid": _TEXT, "welcome_message": st.dictionaries(_KEYS, _TEXT, max_size=2)})
_MESSAGE = st.fixed_dictionaries(
    {"direction": st.sampled_from(["inbound", "outbound"]), "at": _TIME, "type": st.sampled_from(["text", "template"])},
    optional={"id": _TEXT, "status": st.sampled_from(["delivered", "read"]), "delivered_at": _TIME,
              "template": st.fixed_dictionaries({"name": _TEXT, "language": st.just("en"),
                                                 "category": st.just("utility")}),
              "referral": _REFERRAL})
_REQUEST = st.fixed_dictionaries(
    {"send": st.fixed_dictionaries({"at": _TIME, "to": _PHONE_LIKE | _BSUID_LIKE, "type": st.just("text")},
                                   optional={"phone_number_id": _TEXT})},
    optional={"history": st.lists(_MESSAGE, max_size=6), "context": st.dictionaries(_KEYS, _JSON, max_size=3),
              "history_ref": st.fixed_dictionaries({"phone_number_id": _TEXT, "contact": _PHONE_LIKE | _BSUID_LIKE})})


def _if_possible(match):
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse("+" + match.group()))
    except phonenumbers.NumberParseException:
        possible = False
    return masking.mask_number(match.group()) if possible else match.group()


def _with_bare_numbers_masked(request):
    """Today's masking plus issue 22's addition: bare digit runs in each referral's free text."""
    for message in request.get("history", []):
        referral = message.get("referral")
        if isinstance(referral, dict):
            for key in masking.REFERRAL_TEXT_KEYS & referral.keys():
                if isinstance(referral[key], str):
                    referral[key] = re.sub(r"(?<![\w+*])\d{7,15}(?![\w*])", _if_possible, referral[key])
    return request


@settings(max_examples=150, deadline=None)
@given(_REQUEST)
def test_masking_a_request_equals_todays_masking_plus_referral_text(request):
    """A decision request (the history's timestamps and enumerations not searched) is masked as today, and a
    referral's body, headline and source_id lose their bare numbers too."""
    assert masking.masked_request(request) == _with_bare_numbers_masked(masked_today(request))


def test_bare_numbers_in_a_referral_are_masked_and_ad_ids_kept():
    """Issue 22: '14155550100' in an ad's text is a number; ad ids (no numbering plan allows them) and a price
    are not masked, nor a URL."""
    request = {"history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text", "referral": {
        "source_id": "14155550100", "body": "Call 5511987654321 or +14155550100, from 99.90",
        "headline": "ad 120208839187470123 or 120200000000001", "source_url": "https://fb.me/14155550100"}}]}
    referral = masking.masked_request(request)["history"][0]["referral"]
    assert referral == {"source_id": "1415*******", "body": "Call 55*********** or +1415*******, from 99.90",
                        "headline": "ad 120208839187470123 or 120200000000001", "source_url": "https://fb.me/14155550100"}


def test_timestamps_and_enumerations_are_not_searched(monkeypatch):
    """The cost follows what is masked: a history of plain messages calls no regex at all."""
    calls = []
    monkeypatch.setattr(masking, "mask_text", lambda text: calls.append(text) or text)
    history = [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}] * 1000
    assert masking.masked_request({"history": history})["history"] == history
    assert calls == []


@settings(max_examples=300, deadline=None)
@given(_JSON | st.lists(_MESSAGE, max_size=6))
def test_a_text_may_change_says_false_only_when_masking_changes_nothing(value):
    """may_change is conservative: a value whose JSON text it clears comes out of masking unchanged (as a value,
    and as a list of history messages)."""
    if not masking.may_change(dumps(value).decode()):
        assert masking.masked(value) == value
        if isinstance(value, list):
            assert masking.masked_request({"history": value}) == {"history": value}


@pytest.mark.parametrize("text", [
    '{"to":"+14155550100"}', '"call +١٤١٥٥٥٥٠١٠٠"', '"US.abcdefgh1"', '"x US.ENT.abcdefgh"', '{"contact":"1415"}',
    '{"wa_id":"1"}', '{"referral":{"body":"5511987654321"}}', '{"k":{"+14155550100":1}}'])
def test_a_text_that_holds_something_to_mask_may_change(text):
    """Numbers (in any script's digits), BSUIDs, contact and wa_id members and referrals are all noticed."""
    assert masking.may_change(text)


def test_a_history_of_plain_messages_cannot_change():
    """Timestamps with offsets, wamids and template names hold nothing to mask: the walk is skipped for them."""
    history = [{"id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3", "direction": "outbound", "type": "template",
                "at": "2025-08-12T09:00:00.123+00:00", "template": {"name": "order_update", "status": "APPROVED"}}]
    assert not masking.may_change(dumps(history * 3).decode())


# History messages of the shapes contract.fastload's typed decoder accepts (its Structs: the contract's members only, a
# referral's members strings and no welcome_message), with numbers, BSUIDs and referrals in their strings.
_TYPED_REFERRAL = st.fixed_dictionaries({}, optional={
    "source_type": st.sampled_from(["ad", "post"]), "source_id": _TEXT | st.from_regex(r"\A[0-9]{6,20}\Z"),
    "source_url": _TEXT, "body": _TEXT | st.builds("Call {} now".format, st.from_regex(r"\A[0-9]{5,17}\Z")),
    "headline": _TEXT, "ctwa_clid": _TEXT})
_TYPED_MESSAGE = st.fixed_dictionaries(
    {"direction": st.just("inbound"), "at": _TIME, "type": st.sampled_from(["text", "image"])},
    optional={"id": _TEXT, "referral": _TYPED_REFERRAL}) | st.fixed_dictionaries(
    {"direction": st.just("outbound"), "at": _TIME, "type": st.sampled_from(["text", "template"])},
    optional={"id": _TEXT, "status": st.sampled_from(["delivered", "read"]), "delivered_at": _TIME,
              "business_app": st.booleans(),
              "template": st.fixed_dictionaries({"name": _TEXT.filter(lambda text: 0 < len(text) <= 512),
                                                 "language": st.sampled_from(["en", "pt_BR", "US.abcdefgh1"]),
                                                 "category": st.just("utility")})})


@settings(max_examples=400, deadline=None)
@given(st.lists(_TYPED_MESSAGE, max_size=6))
def test_a_typed_history_may_change_says_false_only_when_masking_changes_nothing(history):
    """typed_history_may_change (no search for contact or wa_id members) is conservative for every history the
    typed decoder accepts: a history whose text it clears comes out of the log's walk (masked_request) and of
    masked unchanged; and what it flags may_change flags too (it searches for a subset of the same things)."""
    from policy_service.contract.fastload import typed_history

    assert typed_history(history) is not None  # the strategy makes only what the typed decoder accepts
    text = dumps(history).decode()
    if not masking.typed_history_may_change(text):
        assert masking.masked_request({"history": history}) == {"history": history}
        assert masking.masked(history) == history
    assert not masking.typed_history_may_change(text) or masking.may_change(text)


@pytest.mark.parametrize("message", [
    {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text", "id": "+14155550100"},
    {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text", "id": "x US.abcdefgh12"},
    {"direction": "inbound", "at": "2025-08-12T09:00:00Z", "type": "text", "referral": {"body": "5511987654321"}},
    {"direction": "outbound", "at": "2025-08-12T09:00:00Z", "type": "template",
     "template": {"name": "call_+14155550100", "language": "en", "category": "utility"}}])
def test_a_typed_history_holding_something_to_mask_may_change(message):
    """A number, a BSUID or a referral anywhere in a typed history is noticed."""
    plain = {"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}
    assert masking.typed_history_may_change(dumps([plain, message, plain]).decode())
    assert not masking.typed_history_may_change(dumps([plain] * 3).decode())


@settings(max_examples=400, deadline=None)
@given(_JSON | _REQUEST)
def test_masking_json_text_equals_todays_masking_of_it(value):
    """masked_json over a value's compact JSON gives exactly the text today's regex gives (byte for byte)."""
    text = dumps(value).decode()
    assert masking.masked_json(text) == _TODAY.sub(_today, text)


@pytest.mark.parametrize("text", [
    '"US.abcdefgh12"', '["x US.ENT.abcdefgh12 y"]', '{"k":"wamid.US.abcdefgh12"}', '{"AB.":"CD.abcdefghijk."}',
    '{"to":"+14155550100","contact":"5511987654321","x":{"wa_id":"447700900123"}}', '"XUS.abcdefgh12 US.abc"',
    '"US.ENT.abcdefgh US.abcdefgh_ US.abcdefghi"', '{"a":"DE.abcdefgh"," FR.abcdefgh":1}'])
def test_masking_json_text_handles_the_edges_as_today(text):
    """BSUIDs at a string's start, after a space, inside a wamid or a word, with ENT., before _ or ., as keys."""
    assert masking.masked_json(text) == _TODAY.sub(_today, text)
