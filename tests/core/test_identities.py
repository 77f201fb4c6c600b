"""identities: one parser tells phone numbers from BSUIDs and says which country a contact is in."""

import pytest

from policy_service.core.identities import (
    E164,
    META_WA_ID,
    WA_ID,
    NotAContact,
    parse_contact,
    recipient,
    webhook_contact,
)


@pytest.mark.parametrize(("value", "form", "kind", "contact_id", "region", "code"), [
    ("+5511987654321", E164, "phone", "5511987654321", "BR", 55),
    ("+14155550100", E164, "phone", "14155550100", "US", 1),
    ("US.13491208655302741918", E164, "bsuid", "US.13491208655302741918", "US", 0),
    ("US.ENT.11815799212886844830", E164, "bsuid", "US.ENT.11815799212886844830", "US", 0),
    ("BR.1502576394655843", WA_ID, "bsuid", "BR.1502576394655843", "BR", 0),
    ("5511987654321", WA_ID, "phone", "5511987654321", "BR", 55),
    ("+5511987654321", WA_ID, "phone", "5511987654321", "BR", 55),
    ("1", META_WA_ID, "phone", "1", "ZZ", 0),
])
def test_phone_numbers_and_bsuids_are_told_apart(value, form, kind, contact_id, region, code):
    """A BSUID's region is its ISO prefix (calling code 0); a number's comes from its calling code."""
    contact = parse_contact(value, form)
    assert (contact.kind, contact.id, contact.region, contact.calling_code) == (kind, contact_id, region, code)


@pytest.mark.parametrize(("value", "form"), [
    ("5511987654321", E164), ("12", E164), ("us.1349120865", E164), ("US.", E164), ("US.12-34", E164),
    ("abc", WA_ID), ("US." + "1" * 129, WA_ID), ("has space", META_WA_ID), ("", META_WA_ID),
])
def test_anything_else_is_refused_with_the_expected_shape(value, form):
    """Neither a number of the form nor a BSUID: NotAContact saying what is expected."""
    with pytest.raises(NotAContact, match="BSUID"):
        parse_contact(value, form)


@pytest.mark.parametrize("prefix", ["ZZ", "XX", "UK", "EU", "AA", "QM"])
@pytest.mark.parametrize("form", [E164, WA_ID])
def test_a_client_bsuid_must_start_with_a_country(prefix, form):
    """Meta's BSUID starts with the user's ISO 3166 alpha-2 country: a prefix that is no country (ZZ, unknown, was
    read as "the BSUID's country prefix ZZ") is refused naming it, in send.to's and history_ref's forms alike."""
    with pytest.raises(NotAContact, match=f"^{prefix} is not an ISO 3166 country code"):
        parse_contact(f"{prefix}.13491208655302741918", form)
    assert recipient(f"{prefix}.13491208655302741918") == ("ZZ", 0)


@pytest.mark.parametrize("prefix", ["US", "GB", "IN", "BR", "XK", "AC"])
def test_every_region_a_phone_number_can_be_in_is_a_bsuid_country(prefix):
    """The countries are phonenumbers' regions (the data that gives a number's region), Kosovo and Ascension too."""
    assert parse_contact(f"{prefix}.ENT.1", E164).region == prefix


def test_metas_own_bsuids_are_kept_as_meta_sent_them():
    """A webhook's BSUID is data Meta gives, not a client's claim: any two capitals are stored as sent (ZZ read as no
    country), so no event Meta delivers is skipped for a country code a newer ISO 3166 list may have."""
    only, _ = webhook_contact("", "ZZ.13491208655302741918")
    assert (only.kind, only.id, only.region) == ("bsuid", "ZZ.13491208655302741918", "ZZ")


def test_the_trace_says_where_the_region_comes_from():
    """The region source names the BSUID prefix, or the calling code (and area code for +1)."""
    assert parse_contact("US.13491208655302741918").region_source == "the BSUID's country prefix US"
    assert parse_contact("+14155550100").region_source == "the phone number's calling code and area code"
    assert parse_contact("+5511987654321").region_source == "the phone number's calling code"


def test_a_webhook_pair_keys_on_the_number_and_links_the_bsuid():
    """Both given: the number is the key and the BSUID is returned to link; only one: that one, nothing to link."""
    phone, bsuid = webhook_contact("5511987654321", "BR.1502576394655843")
    assert (phone.id, bsuid.id) == ("5511987654321", "BR.1502576394655843")
    only, none = webhook_contact("", "US.13491208655302741918")
    assert (only.id, only.kind, none) == ("US.13491208655302741918", "bsuid", None)
    assert webhook_contact("5511987654321", "")[1] is None


@pytest.mark.parametrize(("wa_id", "user_id"), [("", ""), (None, None), ("", "5511987654321")])
def test_a_webhook_pair_without_a_usable_identity_is_refused(wa_id, user_id):
    """No number and no BSUID, or a user id that is not a BSUID, cannot be stored."""
    with pytest.raises(NotAContact):
        webhook_contact(wa_id, user_id)


def test_recipient_of_a_masked_or_broken_value_is_unknown():
    """recipient() never raises: a masked number is ZZ/0, a BSUID its prefix."""
    assert recipient("+1415*******") == ("ZZ", 0)
    assert recipient("IN.4872635519027364") == ("IN", 0)


@pytest.mark.parametrize(("value", "form", "why"), [
    ("+99912345678", E164, "does not begin with a country calling code"),
    ("99912345678", WA_ID, "does not begin with a country calling code"),
    ("+2901234567890", E164, "no possible number of calling code \\+290"),
    ("+5511987", E164, "no possible number of calling code \\+55: its national number is too short"),
    ("1234567", WA_ID, "no possible number of calling code \\+1"),
])
def test_a_client_number_must_begin_with_a_calling_code_and_have_its_length(value, form, why):
    """A number a client writes is E.164 only with a country calling code ITU-T has assigned and a length numbers of
    that code have (phonenumbers): "+99912345678" was decided as a recipient in no country (marketing allowed, no
    price); a BSUID's country is checked alike. Meta's own payloads keep any digits (META_WA_ID)."""
    with pytest.raises(NotAContact, match=why):
        parse_contact(value, form)
    assert parse_contact(value.lstrip("+"), META_WA_ID).kind == "phone"
    assert recipient(value) == ("ZZ", 0)


@pytest.mark.parametrize("value", ["+447700900123", "+80012345678", "+5511987654321", "+12125550123"])
def test_a_number_of_an_assigned_code_and_length_is_taken_even_when_unallocated(value):
    """The check is the calling code and the length, not whether the operator has allocated the number (+44 7700
    900123 is a UK number reserved for drama: its country is then unknown, as before) nor a country of its own
    (+800, international freephone)."""
    assert parse_contact(value, E164).kind == "phone"


def test_wa_id_forms_name_the_same_user_as_metas_wa_id_may_write_them():
    """Meta's wa_id may differ from the E.164 number: Mexico's mobile wa_ids keep a 1 after 52, Brazil's wa_ids of
    users registered before the ninth digit lack it. Each form gives the other; other numbers have only their own."""
    from policy_service.core.identities import wa_id_forms

    assert wa_id_forms("5215512345678") == ("5215512345678", "525512345678")
    assert wa_id_forms("525512345678") == ("525512345678", "5215512345678")
    assert wa_id_forms("552187654321") == ("552187654321", "5521987654321")
    assert wa_id_forms("5521987654321") == ("5521987654321", "552187654321")
    assert wa_id_forms("552132654321") == ("552132654321",)  # a Rio landline (starts 2-5): no ninth digit
    assert wa_id_forms("14155550100") == ("14155550100",)
    assert wa_id_forms("US.13491208655302741918") == ("US.13491208655302741918",)


@pytest.mark.parametrize("contact", ["5215512345678", "525512345678", "552187654321", "5521987654321",
                                     "552132654321", "14155550100", "US.13491208655302741918", "521abcdefghij"])
def test_wa_id_key_is_one_key_for_all_forms_of_a_number(contact):
    """wa_id_key (what the reached-user counts and number-change chains compare): every form of a number has the same
    key, which is one of its forms (Mexico's 52 + ten digits, Brazil's number with its ninth digit), and a contact
    with no other form is its own key."""
    from policy_service.core.identities import wa_id_forms, wa_id_key

    forms = wa_id_forms(contact)
    assert {wa_id_key(form) for form in forms} == {wa_id_key(contact)} and wa_id_key(contact) in forms
    assert wa_id_key("5215512345678") == "525512345678" and wa_id_key("552187654321") == "5521987654321"


def test_every_wa_id_form_of_a_number_is_priced_in_the_users_country():
    """priced_address (where markets of stored contacts come from): Meta's Mexican 521 form has no country as
    written (recipient gives ZZ); its priced address is the 52 form's, so both forms are MX; Brazil's forms are BR;
    a BSUID and another number are addressed as themselves."""
    from policy_service.core.identities import address, priced_address, recipient

    assert recipient(address("5215512345678")) == ("ZZ", 0)  # why priced_address exists
    assert {recipient(priced_address(c)) for c in ("5215512345678", "525512345678")} == {("MX", 52)}
    assert {recipient(priced_address(c)) for c in ("552187654321", "5521987654321")} == {("BR", 55)}
    assert priced_address("14155550100") == "+14155550100"
    assert priced_address("US.13491208655302741918") == "US.13491208655302741918"


def test_a_wa_id_a_client_names_may_be_metas_form_of_a_dialable_number():
    """history_ref.contact 5215512345678 was "no possible number of calling code +52": as a wa_id (WA_ID form) it is
    the Mexican number +525512345678, kept under the id Meta wrote, in region MX. A send's E.164 `to` is read as
    before, and a wa_id with no dialable form is still refused."""
    from policy_service.core.identities import E164, WA_ID

    contact = parse_contact("5215512345678", WA_ID)
    assert (contact.id, contact.region, contact.calling_code) == ("5215512345678", "MX", 52)
    with pytest.raises(NotAContact):
        parse_contact("+5215512345678", E164)
    with pytest.raises(NotAContact):
        parse_contact("52155123456789", WA_ID)
