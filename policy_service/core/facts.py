"""Derive the flat, typed facts the rules read from a send, its history and its context.

This is the only module that interprets conversation history. Every fact is always present
with a fixed type (the engine compares a string with a number as text, and a missing
attribute looks like "no rule matched"), so rules can never be switched off by absence.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from .conversations import CONVERSATION_KINDS, FREE_ENTRY_POINT_KINDS, Ledger, Period
from .messages import Message, Send
from .vocabulary import GROUP_CATEGORY_PREFIX

NONE = "none"

# name -> type; a rule may test only these (rulebook.py refuses any other name or a mistyped value).
FACT_TYPES: dict[str, type] = {
    "waba_date": int,
    "send_type": str,
    "send_is_template": bool,
    "template_category": str,
    "template_status": str,
    "template_otp_button_known": bool,
    "template_has_otp_button": bool,
    "csw_open": bool,
    "csw_ever_opened": bool,
    "seconds_until_csw_close": int,
    "uncounted_inbound_in_window": bool,
    "conversation_open": bool,
    "conversation_open_same_category": bool,
    "ridden_conversation_category": str,
    "free_entry_point_open": bool,
    "entry_point_reply": bool,
    "recipient_region": str,
    "recipient_calling_code": int,
    "business_region": str,
    "opted_in": bool,
    "opted_in_known": bool,
    "marketing_opt_out": bool,
    "authentication_international_eligible": bool,
    "authentication_international_started": bool,
    "recipient_in_business_region": bool,
    "primary_business_location_verified": bool,
    "conversations_this_month_known": bool,
    "conversations_this_month": int,
    "service_conversations_this_month_known": bool,
    "service_conversations_this_month": int,
    "service_messages_this_month_known": bool,
    "service_messages_this_month": int,
    "undelivered_before_send": bool,
    "send_to_group": bool,
    "group_participants": int,
    "group_pricing_category": str,
    "late_delivery_changes_charge": bool,
}

# Text a rule's `because` sentence may use besides the facts themselves.
DISPLAY_VALUES = (
    "send_at", "recipient", "last_inbound_at", "csw_expires_at", "open_conversations",
    "same_category_expires_at", "ridden_conversation_expires_at", "free_entry_point_expires_at",
    "same_category_opened_by", "ridden_conversation_opened_by", "free_entry_point_opened_by",
    "entry_point_at", "entry_point_deadline_at", "uncounted_inbound_at", "uncounted_inbound_type",
    "uncounted_would_close_at", "waba_timezone", "template_name",
    "undelivered_sent_at", "undelivered_message", "late_delivery_from", "late_delivery_charge",
    "authentication_international_start_at",
)

# Monthly counts the business keeps; each has a `<name>_known` fact beside it.
COUNTERS = ("conversations_this_month", "service_conversations_this_month", "service_messages_this_month")

# Regulatory values fact derivation needs; each is defined, with its citation, in rules/.
PARAMETER_TYPES: dict[str, str] = {
    "customer_service_window": "duration",
    "window_ignored_inbound_types": "list[str]",
    "entry_point_reply_deadline": "duration",
    "entry_point_referral_source_types": "list[str]",
    "undelivered_message_lifetime": "duration",
    "delivery_delay_considered": "duration",
}

# context field -> default; when a default is used, the trace of every rule reading it says so.
CONTEXT_DEFAULTS: dict[str, Any] = {
    "opted_in": True,
    "marketing_opt_out": False,
    "business_region": "ZZ",
    "authentication_international_eligible": False,
    "authentication_international_start": None,
    "authentication_international_eligibility": None,
    "primary_business_location_verified": False,
    "waba_timezone": "UTC",
    "conversations_this_month": None,
    "service_conversations_this_month": None,
    "service_messages_this_month": None,
}


@dataclass(frozen=True)
class Facts:
    """What the rules see (`engine`), how the trace shows it (`display`), and which defaults were used."""

    at: datetime
    day: date
    engine: dict[str, Any]
    display: dict[str, str]
    defaults: frozenset[str]
    expiries: dict[str, datetime | None]
    periods: tuple[Period, ...] = ()


@dataclass
class HistoryState:
    """What the history so far says about the window and the entry point (updated in time order)."""

    ignored_types: frozenset[str]
    referral_source_types: frozenset[str]
    ledger: Ledger = field(default_factory=Ledger)
    last_counted_inbound: datetime | None = None
    last_uncounted_inbound: Message | None = None
    last_referral_inbound: datetime | None = None
    replied_since_referral: bool = False
    undelivered: tuple[int, Message] | None = None  # the latest message sent before the send, not delivered by it

    def receive(self, message: Message) -> None:
        """Take in an inbound message: it may open or refresh the window, or be an entry point."""
        if message.type in self.ignored_types:
            self.last_uncounted_inbound = message
            return
        self.last_counted_inbound = message.at
        referral = message.referral or {}
        if referral and referral.get("source_type", "ad") in self.referral_source_types:
            self.last_referral_inbound = message.at
            self.replied_since_referral = False

    def deliver(self, period: Period | None, *, closes_others: bool) -> None:
        """Take in a delivered outbound message and the period it opened, if any."""
        self.replied_since_referral = True
        if period is not None:
            self.ledger.open(period, closes_others=closes_others)


def new_state(rulebook: Any) -> HistoryState:
    """An empty history state configured from the rulebook's parameters."""
    return HistoryState(
        ignored_types=frozenset(rulebook.parameter("window_ignored_inbound_types")),
        referral_source_types=frozenset(rulebook.parameter("entry_point_referral_source_types")),
    )


def derive_facts(send: Send, state: HistoryState, context: dict[str, Any], rulebook: Any) -> Facts:
    """The facts about one send at its time, given the history before it."""
    at = send.at
    window = rulebook.parameter("customer_service_window")
    deadline = rulebook.parameter("entry_point_reply_deadline")
    ctx, defaults = _context(context)
    if ctx["authentication_international_eligibility"] and "authentication_international_eligible" in defaults:
        # Meta sends the eligibility start times only to an eligible business.
        ctx["authentication_international_eligible"] = True
        defaults.discard("authentication_international_eligible")
    zone = _zone(ctx["waba_timezone"])
    local_day = at.astimezone(zone).date()

    last_in = state.last_counted_inbound
    csw_expires = last_in + window if last_in else None
    csw_open = bool(last_in and last_in <= at < csw_expires)
    uncounted = state.last_uncounted_inbound
    uncounted_in_window = bool(
        uncounted and (last_in is None or uncounted.at > last_in) and uncounted.at <= at < uncounted.at + window
    )
    referral = state.last_referral_inbound
    entry_point_reply = bool(referral and not state.replied_since_referral and referral <= at < referral + deadline)

    category = send.template.category if send.template else NONE
    open_periods = state.ledger.open_at(at)
    conversations = [p for p in open_periods if p.kind in CONVERSATION_KINDS]
    same = [p for p in conversations if p.category == category]
    free_entry = [p for p in open_periods if p.kind in FREE_ENTRY_POINT_KINDS]
    region, calling_code = recipient(send.to)
    undelivered = state.undelivered
    auth_start = authentication_international_start(ctx, region, zone)

    engine = {
        "waba_date": day_number(local_day),
        "send_type": send.type,
        "send_to_group": send.recipient_type == "group",
        "group_participants": len(send.participants),
        # The Groups API prefixes its categories (group_marketing, group_utility, group_service).
        "group_pricing_category": GROUP_CATEGORY_PREFIX + (category if send.template else "service"),
        "send_is_template": send.is_template,
        "template_category": category,
        "template_status": send.template.status if send.template else NONE,
        "template_otp_button_known": bool(send.template and send.template.otp_button is not None),
        "template_has_otp_button": bool(send.template and send.template.otp_button),
        "csw_open": csw_open,
        "csw_ever_opened": last_in is not None,
        "seconds_until_csw_close": int((csw_expires - at).total_seconds()) if csw_open else 0,
        "uncounted_inbound_in_window": uncounted_in_window,
        "conversation_open": bool(conversations),
        "conversation_open_same_category": bool(same),
        "ridden_conversation_category": conversations[0].category if conversations else NONE,
        "free_entry_point_open": bool(free_entry),
        "entry_point_reply": entry_point_reply,
        "recipient_region": region,
        "recipient_calling_code": calling_code,
        "business_region": ctx["business_region"],
        "opted_in": ctx["opted_in"],
        "opted_in_known": "opted_in" not in defaults,
        "marketing_opt_out": ctx["marketing_opt_out"],
        "authentication_international_eligible": ctx["authentication_international_eligible"],
        "authentication_international_started": auth_start is not None and auth_start[0] <= at,
        # The primary business location counts only once Meta has verified it (M7); until then the
        # business is treated as based in another country.
        "recipient_in_business_region": region == ctx["business_region"] and ctx["primary_business_location_verified"],
        "primary_business_location_verified": ctx["primary_business_location_verified"],
    }
    engine["undelivered_before_send"] = undelivered is not None
    engine["late_delivery_changes_charge"] = False  # set by evaluate.with_late_delivery once classified
    for counter in COUNTERS:
        engine[counter + "_known"] = ctx[counter] is not None
        engine[counter] = ctx[counter] if ctx[counter] is not None else 0

    show = _shower(at)
    display = {
        "send_at": show(at),
        "recipient": send.to if send.recipient_type != "group" else f"the group {send.to}",
        "template_name": send.template.name if send.template else NONE,
        "last_inbound_at": show(last_in),
        "csw_expires_at": show(csw_expires),
        "open_conversations": ", ".join(f"{p.category} until {show(p.expires_at)}" for p in conversations) or NONE,
        "same_category_expires_at": show(same[0].expires_at if same else None),
        "ridden_conversation_expires_at": show(conversations[0].expires_at if conversations else None),
        "free_entry_point_expires_at": show(free_entry[0].expires_at if free_entry else None),
        "same_category_opened_by": _opener(same, show),
        "ridden_conversation_opened_by": _opener(conversations, show),
        "free_entry_point_opened_by": _opener(free_entry, show),
        "entry_point_at": show(referral),
        "entry_point_deadline_at": show(referral + deadline if referral else None),
        "uncounted_inbound_at": show(uncounted.at if uncounted else None),
        "uncounted_inbound_type": uncounted.type if uncounted else NONE,
        "uncounted_would_close_at": show(uncounted.at + window if uncounted else None),
        "waba_timezone": ctx["waba_timezone"],
        "authentication_international_start_at": (f"{show(auth_start[0])} ({auth_start[1]})" if auth_start
                                                  else "none (no start time given)"),
        "undelivered_sent_at": show(undelivered[1].at if undelivered else None),
        "undelivered_message": _described(undelivered),
        "late_delivery_from": NONE,
        "late_delivery_charge": NONE,
        **{c: "unknown (not given in context)" for c in COUNTERS if ctx[c] is None},
    }
    expiries = {
        "same_category": same[0].expires_at if same else None,
        "any_conversation": conversations[0].expires_at if conversations else None,
        "free_entry_point": free_entry[0].expires_at if free_entry else None,
        "customer_service_window": csw_expires if csw_open else None,
    }
    return Facts(at, local_day, engine, display, frozenset(defaults), expiries, tuple(open_periods))


def with_late_delivery(facts: Facts, moment: datetime, charge: Any) -> Facts:
    """The facts with `late_delivery_changes_charge` set: delivered from `moment` on, the send would be
    charged as `charge` (a decision.Charge, or None when no charge rule would apply)."""
    show = _shower(facts.at)
    engine = {**facts.engine, "late_delivery_changes_charge": True}
    display = {**facts.display, "late_delivery_from": show(moment), "late_delivery_charge": describe_charge(charge)}
    return replace(facts, engine=engine, display=display)


def describe_charge(charge: Any) -> str:
    """A charge in words: 'billable marketing (regular, CBP), opening a conversation'."""
    if charge is None:
        return "no charge rule applies"
    words = f"{'billable' if charge.billable else 'free'} {charge.category} ({charge.type}, {charge.pricing_model})"
    return words + (", opening a conversation" if charge.opens_conversation else "")


def _described(undelivered: tuple[int, Message] | None) -> str:
    if undelivered is None:
        return NONE
    index, message = undelivered
    what = f"template {message.template.name} ({message.template.category})" if message.template else message.type
    return f"history[{index}] ({what}, status {message.status})"


def _context(context: dict[str, Any]) -> tuple[dict[str, Any], set[str]]:
    values, defaults = {}, set()
    for name, default in CONTEXT_DEFAULTS.items():
        if context.get(name) is None:
            values[name] = default
            defaults.add(name)
        else:
            values[name] = context[name]
    return values, defaults


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Schemas validate the name; an unknown zone reaching here is a caller bug, not a policy.
        raise ValueError(f"unknown time zone {name!r}") from None


# Parsing a number costs more than the rest of fact derivation; a send and its replayed history
# share one recipient.
@lru_cache(maxsize=4096)
def recipient(number: str) -> tuple[str, int]:
    """The ISO region (by area code for +1 numbers) and calling code of an E.164 number; ZZ and 0 if unknown."""
    try:
        parsed = phonenumbers.parse(number)
    except phonenumbers.NumberParseException:
        return "ZZ", 0
    return phonenumbers.region_code_for_number(parsed) or "ZZ", parsed.country_code or 0


def day_number(day: date) -> int:
    """A day as the waba_date fact encodes it (YYYYMMDD): a number, so rules compare it as a number."""
    return day.year * 10000 + day.month * 100 + day.day


def from_day_number(number: int) -> date:
    """The day a waba_date number stands for."""
    return date(number // 10000, number // 100 % 100, number % 100)


def _opener(periods: list[Period], show) -> str:
    if not periods:
        return NONE
    return f"the message delivered at {show(periods[0].opened_at)} (history[{periods[0].opened_by}])"


def authentication_international_start(context: dict[str, Any], region: str,
                                       zone: ZoneInfo) -> tuple[datetime, str] | None:
    """When the authentication-international rate starts for this business in the recipient's country, and
    where that time comes from; None when no start is known.

    Meta's eligibility (the account_update webhook's auth_international_rate_eligibility) gives one
    `start_time` and `exception_countries` with their own; a country's exception wins. The older
    `authentication_international_start` (a date, midnight in the WABA time zone) stands for every country.
    """
    eligibility = context.get("authentication_international_eligibility")
    if eligibility:
        for exception in eligibility.get("exception_countries") or ():
            if exception["country_code"] == region:
                return exception["start_time"], f"the exception for {region}"
        return eligibility["start_time"], "the eligibility start time"
    start = context.get("authentication_international_start")
    if start is None:
        return None
    return datetime(start.year, start.month, start.day, tzinfo=zone), "the start date, in the WABA time zone"


def _shower(reference: datetime):
    zone = reference.tzinfo or UTC

    def show(moment: datetime | None) -> str:
        return moment.astimezone(zone).isoformat() if moment else NONE

    return show
