"""Masking of phone numbers and BSUIDs in what the service stores or shows (the decision log, reviewer pages).

A phone number keeps its calling code and, for +1 (NANP) numbers, its area code (`+1415*******`); every
other digit becomes `*`. A BSUID keeps its country prefix (and the `ENT.` of a parent BSUID):
`US.********************`. What is masked, wherever it appears in a string (values and keys):

- a `+` and 7 to 15 digits (E.164, inside any text);
- a BSUID that starts the string or follows a space: a country prefix `XX.` (`XX.ENT.`), then 8 to 128
  letters and digits not followed by a letter, digit, `_` or `.` (so a wamid, `wamid.X.IN.1`, is left alone);
- the whole value of a `contact` or `wa_id` member that is all digits (a wa_id has no `+`);
- in a referral's free text (`body`, `headline`, `source_id`: an ad's text may quote a number without `+`),
  a run of 7 to 15 digits that no other digit, letter, `+` or `*` touches and that is a possible phone number
  with a `+` before it (so an ad id, 15 to 18 digits that no numbering plan allows, is kept).

The walk costs what it masks: a string is searched only when it holds a `+` (numbers) or a `.` (BSUIDs), and
the fields a validated decision request holds that are timestamps or enumerations are not searched at all.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import phonenumbers

NANP_AREA_DIGITS = 3
# Keys whose values are bare phone numbers without "+" (a wa_id).
PHONE_KEYS = frozenset(("contact", "wa_id"))
# A referral's free text (Meta copies the ad's text): bare digit runs in these are masked too.
REFERRAL_TEXT_KEYS = frozenset(("body", "headline", "source_id"))

_NUMBER = re.compile(r"\+\d{7,15}")
# Starts with a character class, not a look-behind: the regex engine skips ahead to a capital letter. Whether
# the BSUID starts the string or follows a space is checked on each match (_bsuid).
_BSUID = re.compile(r"([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{8,128})(?![\w.])")
_DIGITS = re.compile(r"\d+")
_BARE_NUMBER = re.compile(r"(?<![\w+*])\d{7,15}(?![\w*])")
# Members of a validated decision request (contract REQUEST) and of a response whose values are timestamps,
# enumerations, booleans or numbers: they cannot hold a number or a BSUID, so they are not searched.
_NOT_TEXT = frozenset((
    "at", "delivered_at", "direction", "type", "status", "category", "language", "recipient_type",
    "marketing_messages_api", "meta_business_agent", "otp_button", "message_send_ttl_seconds",
))
# The members a history message may have (contract MessageSchema); none holds a "+" or a ".".
_MESSAGE_KEYS = frozenset(("id", "direction", "at", "type", "template", "status", "delivered_at", "referral",
                           "business_app"))


@lru_cache(maxsize=4096)
def mask_number(number: str) -> str:
    """Keep the calling code (and a NANP area code), replace every other digit with '*'.

    `number` is E.164 with or without the "+" (a wa_id); the "+" is kept when given.
    """
    digits = number.lstrip("+")
    try:
        code = str(phonenumbers.parse("+" + digits).country_code)
    except phonenumbers.NumberParseException:
        code = digits[:1]
    keep = len(code) + (NANP_AREA_DIGITS if code == "1" else 0)
    return number[: len(number) - len(digits)] + digits[:keep] + "*" * (len(digits) - keep)


# A whole BSUID as a send's recipient gives it (core.identities.BSUID_PATTERN): its country prefix, then the rest.
_WHOLE_BSUID = re.compile(r"([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{1,128})")


def mask_contact(contact: str) -> str:
    """A send's recipient masked as the decision log keeps it: a BSUID keeps its country prefix (and `ENT.`), every
    other character becomes `*` (`US.********************`); anything else is masked as a number (mask_number)."""
    whole = _WHOLE_BSUID.fullmatch(contact)
    if whole:
        return whole[1] + "*" * len(whole[2])
    return mask_number(contact)


def _number(match: re.Match[str]) -> str:
    return mask_number(match.group())


def _bsuid(match: re.Match[str]) -> str:
    start = match.start()
    if start and match.string[start - 1] != " ":
        # Inside a word (e.g. "wamid.US.…" or "xUS.…"): no match can start later inside this one (it holds
        # no space), so leaving it and going on finds exactly what a look-behind would.
        return match.group()
    return match.group(1) + "*" * len(match.group(2))


def mask_text(text: str) -> str:
    """One string with every +number and every BSUID (at its start or after a space) masked."""
    if "+" in text:
        text = _NUMBER.sub(_number, text)
    if "." in text:
        text = _BSUID.sub(_bsuid, text)
    return text


def _bare_number(match: re.Match[str]) -> str:
    digits = match.group()
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        possible = False
    return mask_number(digits) if possible else digits


# Strings with a "+" or a "." that masking left unchanged: the rulebook's citations (URLs), titles and effects
# recur in every response's trace, and searching them again found nothing again. Holding only unchanged strings,
# it never keeps a number or a BSUID; emptied when full, so the strings still in use come back at once.
_UNCHANGED: set[str] = set()
_UNCHANGED_MAX = 8192


def _masked_str(value: str, key: Any) -> str:
    if key in PHONE_KEYS and _DIGITS.fullmatch(value):
        return mask_number(value)
    if "+" in value or "." in value:
        if value in _UNCHANGED:
            return value
        shown = mask_text(value)
        if shown == value:
            if len(_UNCHANGED) >= _UNCHANGED_MAX:
                _UNCHANGED.clear()
            _UNCHANGED.add(value)
        return shown
    return value


def masked(value: Any, key: Any = None) -> Any:
    """A JSON-shaped value (dicts, lists, strings, numbers) with every phone number and BSUID masked as the
    module docstring says; `key` is the member name the value is held under, if any. Parts that need no
    masking are shared with the input, not copied (the input is never changed)."""
    kind = type(value)
    if kind is str:
        return _masked_str(value, key)
    if kind is dict:
        out = None
        for name, member in value.items():
            held = type(member)
            # Inline for the commonest members (a response's facts and trace are mostly flags, counts and plain
            # words): no call for what holds nothing to mask.
            if held is str:
                new = member if ("+" not in member and "." not in member and name not in PHONE_KEYS) \
                    else _masked_str(member, name)
            elif held is bool or held is int or member is None:
                new = member
            else:
                new = masked(member, name)
            renamed = mask_text(name) if type(name) is str and ("+" in name or "." in name) else name
            if renamed != name:
                out = out if out is not None else {k: v for k, v in value.items()}
                # Placed where the name stood, as the JSON text masking did.
                out = {(renamed if k == name else k): (new if k == name else v) for k, v in out.items()}
            elif new is not member:
                if out is None:
                    out = dict(value)
                out[name] = new
        return value if out is None else out
    if kind is list or kind is tuple:
        items = [masked(v) for v in value]
        return value if kind is list and all(new is old for new, old in zip(items, value, strict=True)) else items
    if isinstance(value, str):
        return _masked_str(str(value), key)
    if isinstance(value, dict):
        return masked(dict(value), key)
    return value


def _masked_message(message: Any) -> Any:
    # One history message of a validated request (only the contract's member names): its timestamps and
    # enumerations are passed unsearched unless they hold a "." or a "+" that 7 digits could follow.
    if type(message) is not dict or not message.keys() <= _MESSAGE_KEYS:
        return masked(message)
    out = None
    for key, value in message.items():
        if type(value) is str:
            if key in _NOT_TEXT and "." not in value and "+" not in value[:-7]:
                continue
            new = _masked_str(value, key)
        elif key == "referral" and type(value) is dict:
            new = masked_referral(value)
        else:
            new = masked(value, key)
        if new is not value and new != value:
            if out is None:
                out = message.copy()
            out[key] = new
    return message if out is None else out


def masked_referral(referral: dict[str, Any]) -> dict[str, Any]:
    """A referral with its numbers masked, including bare digit runs in its free text (REFERRAL_TEXT_KEYS)."""
    out = dict(masked(referral))
    for key in REFERRAL_TEXT_KEYS:
        if type(out.get(key)) is str:
            out[key] = _BARE_NUMBER.sub(_bare_number, out[key])
    return out


# What every change masking makes needs in a value's JSON text: a "+" and 7 digits, a "." after two capitals (a
# BSUID's prefix; searched from the "." so the scan jumps from dot to dot), or a member named contact or wa_id
# (all-digit numbers) or referral (bare digit runs in its text).
_MAY_NUMBER = re.compile(r"\+\d{7}")
_MAY_BSUID = re.compile(r"\.(?<=[A-Z]{2}\.)")
_MAY_KEYS = ('"contact"', '"wa_id"', '"referral"')


def _may_bsuid(text: str) -> bool:
    # A text without a "." (a history without message ids or fractions of seconds) is cleared by one memchr; the
    # search costs ~0.3 ms for 10,000 messages.
    return "." in text and _MAY_BSUID.search(text) is not None


def may_change(text: str) -> bool:
    """Whether masking could change the JSON value whose text (compact, as orjson or json writes it: a string's
    "+", digits, capitals and "." appear as themselves) this is. False proves that `masked` and, for a list of
    history messages, `masked_request`'s walk of them return the value unchanged: the search costs a scan of the
    text (~3 ms for 10,000 messages) where the walk costs ~1.3 µs per message."""
    return bool(_MAY_NUMBER.search(text) or _may_bsuid(text)) or any(key in text for key in _MAY_KEYS)


def typed_history_may_change(text: str) -> bool:
    """may_change for the compact JSON text of a decision history that contract.fastload's typed decoder accepted
    (its messages hold only the contract's members, a template's and a referral's members strings, booleans or
    integers; no welcome_message): no member there is named contact or wa_id, so of may_change's member names only
    a referral is searched for (~1.3 ms for 10,000 messages instead of ~2.3). False proves, as may_change's does,
    that masked_request's walk of the history returns it unchanged."""
    return bool(_MAY_NUMBER.search(text) or _may_bsuid(text)) or '"referral"' in text


# The same masking over compact JSON text (masked_json): an all-digit contact or wa_id member, and a BSUID
# starting a string (after a quote that opens a value or a key) or following a space.
_JSON_PHONE_MEMBER = re.compile(r'(?<=[{,])"(contact|wa_id)":"(\d+)"')
_JSON_BSUID = re.compile(r'(?:(?<=\A")|(?<=[:,\[{]")|(?<= ))([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{8,128})(?![\w.])')


def _phone_member(match: re.Match[str]) -> str:
    return f'"{match.group(1)}":"{mask_number(match.group(2))}"'


def masked_json(text: str) -> str:
    """Compact JSON text (as orjson writes it) with every phone number and BSUID masked: the text of `masked`'s
    result for the value it holds (tests/core/test_masking.py proves both equal the regular expression the log
    ran over its JSON before issue 25). For a text already at hand, such as a response body as sent, this costs
    about a tenth of walking the value: each search starts only where a "+", a `"contact":"`/`"wa_id":"` or a "."
    after two capitals stands. Not for values whose keys may hold numbers: two keys masked alike stay two here,
    where `masked` keeps one."""
    if "+" in text:
        text = _NUMBER.sub(_number, text)
    if '"contact":"' in text or '"wa_id":"' in text:
        text = _JSON_PHONE_MEMBER.sub(_phone_member, text)
    pieces, end = [], 0
    for dot in _MAY_BSUID.finditer(text):
        # A BSUID can only start two characters before a "." that follows two capitals; the match checks the
        # rest (what precedes it included), and none starts inside the one before.
        start = dot.start() - 2
        match = _JSON_BSUID.match(text, start) if start >= end else None
        if match is not None:
            pieces += (text[end:start], match.group(1), "*" * len(match.group(2)))
            end = match.end()
    return "".join(pieces) + text[end:] if pieces else text


def masked_request(request: Any) -> Any:
    """A decision request (JSON-shaped, as contract REQUEST validated it, history_ref possibly resolved) with
    every phone number and BSUID masked: `masked` on every field, and bare digit runs in each history
    message's referral text; its history's timestamps and enumerations are not searched."""
    if type(request) is not dict:
        return masked(request)
    out = {}
    for key, value in request.items():
        if key == "history" and type(value) is list:
            out[key] = [_masked_message(message) for message in value]
        else:
            out[(mask_text(key) if "+" in key or "." in key else key) if type(key) is str else key] = masked(value, key)
    return out
