"""Who a message is to or from: a phone number (wa_id) or a business-scoped user ID (BSUID).

A WhatsApp user who adopts a username may be known to a business only by a BSUID: a two-letter
ISO 3166 country code, a period, and up to 128 letters and digits (`US.13491208655302741918`;
a parent BSUID shared across business portfolios has `ENT.` after the country code,
`US.ENT.11815799212886844830`). Meta's webhooks then carry an empty phone number beside it
(`from: ""` + `from_user_id`, `recipient_id: ""` + `recipient_user_id`, contacts `wa_id: ""` +
`user_id`). Source: https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids/

A number a client writes (E164, WA_ID) must begin with an assigned country calling code and have a length numbers
of that code have (`not_dialable`), as a BSUID a client writes must begin with a country (COUNTRIES).

This module is the one place that tells the two apart and says which country a contact is in:
for a phone number from its calling code (and a +1 number's area code), for a BSUID from its
country prefix. Every input path (send.to, history_ref.contact, webhook messages, statuses and
contacts, the decision log's masking) goes through `parse_contact`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers

PHONE = "phone"
BSUID = "bsuid"

BSUID_PATTERN = re.compile(r"^(?P<country>[A-Z]{2})\.(?:ENT\.)?[A-Za-z0-9]{1,128}$")
# The countries (ISO 3166 alpha-2) a phone number can be in: the regions phonenumbers knows, the same data that gives
# a number's region below. ZZ (unknown), XX, UK (the United Kingdom is GB) or EU names no country, and a rule would
# read a recipient or a business in no country (CBP-10 charged an authentication template to +91 as
# authentication-international for a business_region "UK"). Every country a client names is one of these: a BSUID's
# prefix (Meta's business-scoped user IDs page, https://developers.facebook.com/documentation/business-messaging/
# whatsapp/business-scoped-user-ids/: the user's ISO 3166 alpha-2 country code, then a period and up to 128 letters
# and digits), and contract.schemas.COUNTRY (context.business_region, a forecast line's country, /v1/counts?market=).
# Meta's own payloads are stored as Meta sent them (META_WA_ID: data we keep, not something we judge).
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
# How strictly a phone number is read, by where it comes from:
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")  # a number the client writes (send.to)
WA_ID = re.compile(r"^\+?[0-9]{6,20}$")  # a wa_id the client names (history_ref.contact)
# Meta's own payloads: kept as Meta sent them (tests and sandboxes use short ids); they are data we
# store, not something we dial, so only the length is bounded.
META_WA_ID = re.compile(r"^[^\s]{1,64}$")

FORM_ERRORS = {
    E164: "must be an E.164 number like +14155550100 or a BSUID like US.13491208655302741918",
    WA_ID: "must be a wa_id like 16505551234 or a BSUID like US.13491208655302741918",
    META_WA_ID: "must be a wa_id or a BSUID (at most 64 characters, no spaces)",
}


@dataclass(frozen=True)
class Contact:
    """A WhatsApp user as a business can address them.

    `id` is the wa_id without "+" or the BSUID as Meta wrote it (the key histories are stored
    under); `region` is an ISO 3166 code (ZZ when unknown); `calling_code` is 0 for a BSUID.
    """

    kind: str
    id: str
    region: str
    calling_code: int

    @property
    def is_bsuid(self) -> bool:
        """True for a business-scoped user ID."""
        return self.kind == BSUID

    @property
    def region_source(self) -> str:
        """Where the region comes from, for the trace."""
        if self.is_bsuid:
            return f"the BSUID's country prefix {self.region}"
        if self.kind == UNKNOWN:
            return "no recognisable phone number or BSUID"
        return "the phone number's calling code" + (" and area code" if self.calling_code == 1 else "")


class NotAContact(ValueError):
    """The text is neither a phone number of the expected form nor a BSUID; the message says what is expected."""


@lru_cache(maxsize=4096)
def parse_contact(value: str, form: re.Pattern[str] = E164) -> Contact:
    """A phone number (read with `form`: E164, WA_ID or META_WA_ID) or a BSUID as a Contact.

    Raises NotAContact with the expected shape, or, for a BSUID whose prefix is no country (COUNTRIES), naming
    the prefix, or, for a number whose calling code no country has or whose length none of that code has
    (`not_dialable`), saying so (with META_WA_ID, Meta's own payloads, any two capitals and any digits are kept as Meta
    sent them). Cached: a send
    and its replayed history share one recipient, and parsing a number costs more than the rest of fact derivation.
    """
    if not isinstance(value, str):
        raise NotAContact(FORM_ERRORS[form])
    bsuid = BSUID_PATTERN.fullmatch(value)
    if bsuid:
        country = bsuid["country"]
        if country not in COUNTRIES and form is not META_WA_ID:
            raise NotAContact(f"{country} is not an ISO 3166 country code: a BSUID starts with the user's country, "
                              "like US.13491208655302741918")
        return Contact(BSUID, value, country, 0)
    if not form.fullmatch(value):
        raise NotAContact(FORM_ERRORS[form])
    digits = value.removeprefix("+")
    parsed = _parsed(digits)
    if form is not META_WA_ID:  # a number a client writes must be one (Meta's own are stored as sent)
        problem = _dialing_problem(parsed, value)
        if problem and form is WA_ID:
            # A wa_id Meta writes for a dialable number (5215512345678 for +525512345678): that number's region,
            # the id kept as written (the key its history is stored under).
            dialable = next((_parsed(other) for other in wa_id_forms(digits)[1:]
                             if _dialing_problem(_parsed(other), value) is None), None)
            if dialable is not None:
                problem, parsed = None, dialable
        if problem:
            raise NotAContact(problem)
    region, calling_code = _phone_region(parsed)
    return Contact(PHONE, digits, region, calling_code)


# Meta's wa_id may not match the number a business sends to (its send response returns the wa_id beside the `input`
# number, and webhooks carry the wa_id): numbers whose national format changed keep the form the user registered.
# Mexico: mobile wa_ids keep the 1 after 52 that Mexico dropped in 2019 (521 + ten digits for +52 + ten digits).
# Brazil: a user registered before the ninth digit keeps a wa_id without it (55, a two-digit area code, then eight
# digits starting 6-9, a mobile's, for +55, the area code, 9 and those eight digits).
_MEXICO_WA_ID = re.compile(r"521([0-9]{10})")
_MEXICO = re.compile(r"52([0-9]{10})")
_BRAZIL_NINTH = re.compile(r"55([1-9][0-9])9([6-9][0-9]{7})")
_BRAZIL_EIGHT = re.compile(r"55([1-9][0-9])([6-9][0-9]{7})")


def wa_id_forms(contact: str) -> tuple[str, ...]:
    """A contact's digits (no "+") followed by the other forms in which Meta's wa_id may write the same user's number
    (Mexico's 521 and 52; Brazil's wa_id with and without the ninth digit), so a history stored under one form is
    found from the other; a BSUID or any other number is only itself."""
    for pattern, other in ((_MEXICO_WA_ID, "52{}"), (_MEXICO, "521{}"), (_BRAZIL_NINTH, "55{}{}"),
                           (_BRAZIL_EIGHT, "55{}9{}")):
        match = pattern.fullmatch(contact)
        if match:
            return contact, other.format(*match.groups())
    return (contact,)


def wa_id_key(contact: str) -> str:
    """The one form that stands for every wa_id form of a contact's number (wa_id_forms): Mexico's 52 + ten digits
    (not 521), Brazil's number with its ninth digit; any other contact (a BSUID, another number) is itself. Two
    contacts are the same user's number when their keys are equal: a user seen under both forms is counted once.
    store.business_state computes the same key in SQL (wa_id_key_sql)."""
    if match := _MEXICO_WA_ID.fullmatch(contact):
        return "52" + match[1]
    if match := _BRAZIL_EIGHT.fullmatch(contact):
        return f"55{match[1]}9{match[2]}"
    return contact


def webhook_contact(wa_id: str | None, user_id: str | None) -> tuple[Contact, Contact | None]:
    """The contact a webhook event is about, and the BSUID it also named (to link the two), if any.

    Meta sends a phone number (`from`, `recipient_id`, `wa_id`) and, since 2026, a BSUID
    (`from_user_id`, `recipient_user_id`, `user_id`); either may be empty. The phone number is the
    key when present (histories stored before BSUIDs keep their key), else the BSUID.
    Raises NotAContact when neither is usable.
    """
    phone = parse_contact(wa_id, META_WA_ID) if wa_id else None
    user = parse_contact(user_id, META_WA_ID) if user_id else None
    if user is not None and not user.is_bsuid:
        raise NotAContact(f"user id {user_id!r} is not a BSUID like US.13491208655302741918")
    if phone is None and user is None:
        raise NotAContact("neither a phone number nor a business-scoped user ID (BSUID) is given")
    if phone is None:
        return user, None
    return phone, user


def address(stored: str) -> str:
    """A stored contact (a wa_id without "+", or a BSUID) as a send addresses it: +wa_id, or the BSUID."""
    contact = parse_contact(stored, META_WA_ID)
    return contact.id if contact.is_bsuid else "+" + contact.id


def priced_address(stored: str) -> str:
    """The address (as `address`) of a stored contact's wa_id key (wa_id_key): the form whose country and market
    are the user's whichever wa_id form Meta wrote, e.g. "5215512345678" (Meta's Mexican 521 form, no valid number
    itself) -> "+525512345678" (MX). Every market or country derived from a stored contact starts here, so both
    forms of one user land in one market. Raises NotAContact as `address`."""
    return address(wa_id_key(stored))


UNKNOWN = "unknown"


def recipient_contact(value: str) -> Contact:
    """A send's recipient (E.164 number or BSUID) as a Contact; for anything else (a group id, a masked
    number) a Contact of kind "unknown" in region ZZ with calling code 0. Never raises."""
    try:
        return parse_contact(value, E164)
    except NotAContact:
        return Contact(UNKNOWN, value, "ZZ", 0)


def recipient(value: str) -> tuple[str, int]:
    """The ISO region and calling code of a send's recipient (E.164 number or BSUID); ZZ and 0 if unknown."""
    contact = recipient_contact(value)
    return contact.region, contact.calling_code


def example_numbers(numbers: Sequence[str]) -> list[str]:
    """The numbers with each masked one (as the decision log keeps it: "+55***********", "+1415*******": the calling
    code, a NANP area code, then "*") replaced by a possible number with the kept digits and the same length: the
    calling code's main region's example mobile number's last digits, counted up until the number is valid there and
    no other of the list (distinct: a group's participants must be). Others are kept as given. Replay of a masked
    group decision decides alike: the rules read the participants' count and calling codes, which these keep."""
    taken = {number for number in numbers if "*" not in number}
    examples = []
    for number in numbers:
        if "*" not in number:
            examples.append(number)
            continue
        examples.append(_example_of(number, taken))
        taken.add(examples[-1])
    return examples


def _example_of(masked: str, taken: set[str]) -> str:
    prefix, stars = masked[:masked.index("*")], masked.count("*")
    kept = prefix.lstrip("+")
    region = next((phonenumbers.region_code_for_country_code(int(kept[:size])) for size in (1, 2, 3)
                   if kept[:size].isascii() and kept[:size].isdigit() and len(kept) >= size
                   and phonenumbers.region_code_for_country_code(int(kept[:size])) != "ZZ"), "ZZ")
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE) or \
        phonenumbers.example_number(region)
    start = int(phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)[-stars:]) if example else 0
    possible = None
    for step in range(10 ** min(stars, 4)):  # a group has at most 256 participants: far fewer steps are needed
        candidate = prefix + str((start + step) % 10 ** stars).zfill(stars)
        parsed = _parsed(candidate.lstrip("+"))
        if candidate in taken or parsed is None or not phonenumbers.is_possible_number(parsed):
            continue
        if phonenumbers.is_valid_number(parsed):
            return candidate
        possible = possible or candidate
    return possible or masked.replace("*", "0")


def not_dialable(digits: str, shown: str) -> str | None:
    """Why a number a client writes (`digits`, no "+"; `shown` as written, for the message) is no phone number, or
    None: it must begin with a country calling code ITU-T has assigned (phonenumbers' data: +999 is none, and
    "+99912345678" was decided as a recipient in no country, marketing allowed and unpriced) and have a length a
    number of that code can have (phonenumbers' is_possible_number). A BSUID's country is checked alike
    (COUNTRIES)."""
    return _dialing_problem(_parsed(digits), shown)


def _dialing_problem(parsed: phonenumbers.PhoneNumber | None, shown: str) -> str | None:
    if parsed is None or phonenumbers.region_code_for_country_code(parsed.country_code) == "ZZ":
        return (f"{shown} does not begin with a country calling code: a number is the country's calling code and "
                "the national number, like +14155550100 (or give a BSUID like US.13491208655302741918)")
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        length = {phonenumbers.ValidationResult.TOO_SHORT: "too short",
                  phonenumbers.ValidationResult.TOO_LONG: "too long"}.get(reason, "not a length numbers there have")
        return f"{shown} is no possible number of calling code +{parsed.country_code}: its national number is {length}"
    return None


def _parsed(digits: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None


def _phone_region(parsed: phonenumbers.PhoneNumber | None) -> tuple[str, int]:
    if parsed is None:
        return "ZZ", 0
    return phonenumbers.region_code_for_number(parsed) or "ZZ", parsed.country_code or 0
