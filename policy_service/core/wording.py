"""Words for reviewers: one time format, human names for Meta's pricing ids, and a charge in one phrase.

The command line (`policy-service check`) and the reviewer pages both speak through this module, so a
charge or a time reads the same wherever a reviewer sees it. Meta's ids stay Meta's in the API and the
rule files; only what a person reads is translated here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo

from .decision import Charge

# Meta's pricing categories (webhook `pricing.category`, and the conversation categories of 2022) in words.
CATEGORY_NAMES = {
    "marketing": "marketing",
    "marketing_lite": "marketing (Marketing Messages Lite)",
    "utility": "utility",
    "authentication": "authentication",
    "authentication-international": "international authentication",
    "authentication_international": "international authentication",
    "service": "service",
    "referral_conversion": "free entry point conversation",
    "business_initiated": "business-initiated conversation",
    "user_initiated": "user-initiated conversation",
    "business_agent": "Meta Business Agent (billed per token)",
}
# Meta's `pricing.type`: why a message is charged or free.
TYPE_NAMES = {
    "regular": "regular rate",
    "free_customer_service": "free customer service",
    "free_entry_point": "free entry point",
    "free_tier": "monthly free tier",
}
PRICING_MODEL_NAMES = {"CBP": "conversation-based pricing", "PMP": "per-message pricing"}
# The periods an earlier send can open (conversations.Period.kind).
PERIOD_NAMES = {
    "conversation": "conversation",
    "free_entry_point_conversation": "free entry point conversation",
    "free_entry_point_window": "free entry point window",
}
NOT_SENT = "not sent, not charged"
# An RFC 3339 time with its offset, as the rules' sentences print them (facts.display).
_RFC3339 = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})")


def show_time(at: datetime, zone: tzinfo | None = None) -> str:
    """The one way a time is shown to a person: `2024-05-01 10:00` (seconds only when not zero).

    In `zone` when given, else in the time's own offset; whatever shows it names the zone once
    (see `zone_name`) rather than on every time.
    """
    local = at.astimezone(zone) if zone is not None else at
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def times_in_text(text: str, zone: tzinfo | None = None) -> str:
    """The text with every RFC 3339 time in it shown by `show_time` (in `zone`): the rules' sentences
    print ISO times, and a reviewer should read one format on a page or in the terminal."""
    return _RFC3339.sub(lambda m: show_time(datetime.fromisoformat(m.group().replace("Z", "+00:00")), zone), text)


def zone_name(at: datetime) -> str:
    """The UTC offset of an aware time as `UTC+02:00` (a naive time counts as UTC)."""
    offset = at.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def category_name(category: str | None) -> str:
    """Meta's pricing category in words (`referral_conversion` -> `free entry point conversation`)."""
    return CATEGORY_NAMES.get(category or "", category or "no category")


def type_name(pricing_type: str | None) -> str:
    """Meta's pricing type in words (`free_customer_service` -> `free customer service`)."""
    return TYPE_NAMES.get(pricing_type or "", pricing_type or "no pricing type")


def period_name(kind: str, category: str) -> str:
    """A conversation or free entry point period in words: `utility conversation`, `free entry point window`."""
    name = PERIOD_NAMES.get(kind, kind)
    if category == "referral_conversion" or kind.startswith("free_entry_point"):
        # The category of a free entry point conversation is the entry point itself: say it once.
        return name
    return f"{category_name(category)} {name}"


def describe_charge(charge: Charge | None, *, sent: bool = True, zone: tzinfo | None = None) -> str:
    """A charge in one phrase a reviewer reads, the same in the command line and the pages.

    `sent` is False for a denied (or failed) decision: nothing is delivered, so nothing is charged,
    whatever charge rule also applied. Times are shown by `show_time` in `zone`. Examples:
    `charged: marketing message, regular rate (per-message pricing; rule PMP-2)`,
    `not charged: utility message, free customer service (per-message pricing; rule PMP-3)`.
    """
    if not sent:
        return NOT_SENT
    if charge is None:
        return "no charge rule applied"
    what = category_name(charge.category)
    if not what.endswith("conversation"):
        what += " conversation" if charge.pricing_model == "CBP" else " message"
    words = f"{'charged' if charge.billable else 'not charged'}: {what}"
    if charge.type:
        words += f", {type_name(charge.type)}"
    if charge.conversation_expires_at:
        until = show_time(charge.conversation_expires_at, zone)
        opened = "opens it until" if charge.opens_conversation else "rides one open until"
        words += f"; {opened} {until}"
    model = PRICING_MODEL_NAMES.get(charge.pricing_model, charge.pricing_model)
    return f"{words} ({model}" + (f"; rule {charge.rule})" if charge.rule else ")")
