"""Derive the flat, typed facts the rules read from a send, its history and its context.

This is the only module that interprets conversation history. Every fact is always present
with a fixed type (the engine compares a string with a number as text, and a missing
attribute looks like "no rule matched"), so rules can never be switched off by absence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cached_property, lru_cache
from operator import attrgetter
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Struct, structs
from msgspec import field as msgspec_field

from .conversations import CONVERSATION_KINDS, FREE_ENTRY_POINT_KINDS, Ledger, Period
from .identities import recipient_contact
from .messages import Message, Send
from .records import replace
from .vocabulary import GROUP_CATEGORY_PREFIX
from .window import WindowOpeners, window_openers

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
    # The template's message_send_ttl_seconds when it gives a number of seconds (not -1, Meta's 30-day custom TTL).
    "template_custom_ttl": bool,
    "template_ttl_seconds": int,
    "csw_open": bool,
    "csw_ever_opened": bool,
    "last_inbound_type": str,
    "seconds_until_csw_close": int,
    "uncounted_inbound_in_window": bool,
    "conversation_open": bool,
    "conversation_open_same_category": bool,
    "ridden_conversation_category": str,
    "free_entry_point_open": bool,
    "entry_point_reply": bool,
    "recipient_region": str,
    "recipient_calling_code": int,
    "recipient_is_bsuid": bool,
    "send_via_marketing_messages_api": bool,
    "send_by_meta_business_agent": bool,
    "direct_send_category": str,
    "direct_send_eligible": bool,
    "direct_send": bool,
    "business_region": str,
    "opted_in": bool,
    "opted_in_known": bool,
    "marketing_opt_out": bool,
    "authentication_international_eligible": bool,
    "authentication_international_started": bool,
    "recipient_in_business_region": bool,
    "conversations_this_month_known": bool,
    "conversations_this_month": int,
    "service_conversations_this_month_known": bool,
    "service_conversations_this_month": int,
    "service_messages_this_month_known": bool,
    "service_messages_this_month": int,
    # The business's account state (Meta's account_update / business_capability_update webhooks, or context).
    "business_initiated_restricted": bool,
    "account_banned": bool,
    # Meta scheduled the WABA to be disabled (SCHEDULE_FOR_DISABLE), and whether the send is at or after that time.
    "account_ban_scheduled": bool,
    "account_ban_date_reached": bool,
    "messaging_limit_reached": bool,
    "marketing_limit_refused_recently": bool,
    "marketing_templates_delivered_recently": int,
    "primary_business_location_verified": bool,
    "undelivered_before_send": bool,
    "late_delivery_changes_charge": bool,
    "send_to_group": bool,
    "group_participants": int,
    "group_pricing_category": str,
}

# Text a rule's `because` sentence may use besides the facts themselves.
DISPLAY_VALUES = (
    "send_at", "recipient", "recipient_region_source", "last_inbound_at", "csw_expires_at", "window_history",
    "open_conversations",
    "same_category_expires_at", "ridden_conversation_expires_at", "free_entry_point_expires_at",
    "same_category_opened_by", "ridden_conversation_opened_by", "free_entry_point_opened_by",
    "entry_point_at", "entry_point_deadline_at", "uncounted_inbound_at", "uncounted_inbound_type",
    "uncounted_would_close_at", "waba_timezone", "template_name",
    "undelivered_sent_at", "undelivered_message", "undelivered_until", "late_delivery_from", "late_delivery_charge",
    "authentication_international_start_at", "messaging_limit", "business_initiated_users_24h",
    "account_ban_scheduled_at",
)

# Monthly counts the business keeps; each has a `<name>_known` fact beside it.
COUNTERS = ("conversations_this_month", "service_conversations_this_month", "service_messages_this_month")
_COUNTER_FACTS = tuple((name, name + "_known") for name in COUNTERS)

# Regulatory values fact derivation needs; each is defined, with its citation, in rules/.
PARAMETER_TYPES: dict[str, str] = {
    "customer_service_window": "duration",
    "window_ignored_inbound_types": "list[str]",
    "window_inbound_types_counted_from": "dates",
    "entry_point_reply_deadline": "duration",
    "entry_point_referral_source_types": "list[str]",
    # Counts the store keeps over Meta's statuses (store.business_state.count_messages): which period
    # and which pricing categories make up service_messages_this_month when the context does not give it.
    "service_messages_count_period": "period",
    "service_messages_count_categories": "list[str]",
    # Users reached by business-initiated messages against the messaging limit: the moving period and
    # which pricing categories count (store.business_state.count_messages, distinct contacts).
    "messaging_limit_period": "period",
    "messaging_limit_count_categories": "list[str]",
    # How long after a marketing template failed with 131049 (per-user marketing limit) not to retry.
    "marketing_limit_retry_after": "period",
    # How far back marketing templates delivered to the user are counted for the per-user marketing caution.
    "marketing_recent_period": "duration",
    # How long Meta retries delivering a message (time-to-live): templates by default, authentication
    # templates by default, non-template messages (core.evaluate.delivery_lifetimes).
    "undelivered_message_lifetime": "duration",
    "authentication_template_ttl": "duration",
    "freeform_message_lifetime": "duration",
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
    "direct_send_eligible": False,
    "waba_timezone": "UTC",
    "conversations_this_month": None,
    "service_conversations_this_month": None,
    "service_messages_this_month": None,
    "business_initiated_restricted": False,
    "account_banned": False,
    "account_ban_scheduled_at": None,
    "messaging_limit": None,
    "business_initiated_users_24h": None,
    "marketing_limit_refused_recently": False,
}


class Facts(Struct, frozen=True, dict=True):
    """What the rules see (`engine`), how the trace shows it (`display`), and which defaults were used.

    `display` (name -> text, every name of DISPLAY_VALUES plus each unknown counter) is written when
    first read; `text(name)` writes one of them. A trace sentence names two or three, so evaluation
    writes only those; the response, which shows them all, reads `display`.

    A frozen msgspec Struct (made in C; `dict=True` holds the cached `display`, which records.replace leaves
    out of a copy): one is made per decision, per late-delivery check and per replayed send. Equal when `at`,
    `day`, `engine`, `defaults`, `expiries` and `periods` are (not `seen` or `sources`), as the frozen
    dataclass it was compared.
    """

    at: datetime
    day: date
    engine: dict[str, Any]
    defaults: frozenset[str]
    expiries: dict[str, datetime | None]
    periods: tuple[Period, ...] = ()
    seen: _Seen | None = None  # None: no texts (a replayed send)
    # fact name -> where its value came from, when the request did not give it (a stored webhook with
    # its time, a count over stored messages); each trace entry whose rule reads the fact names it.
    sources: dict[str, str] = {}

    def __eq__(self, other: object) -> bool:
        if type(other) is not Facts:
            return NotImplemented
        return (self.at, self.day, self.engine, self.defaults, self.expiries, self.periods) == (
            other.at, other.day, other.engine, other.defaults, other.expiries, other.periods)

    @cached_property
    def display(self) -> dict[str, str]:
        """Every display text, by name (empty for a replayed past send)."""
        seen = self.seen
        if seen is None:
            return {}
        texts = {name: _TEXTS[name](seen) for name in DISPLAY_VALUES}
        texts.update((c, "unknown (not given in context)") for c in COUNTERS if seen.ctx[c] is None)
        return texts

    def text(self, name: str) -> str:
        """One display text by name; KeyError if the name is not one (or, for a counter, it is known)."""
        if "display" in self.__dict__ or self.seen is None:
            return self.display[name]
        maker = _TEXTS.get(name)
        if maker is not None:
            return maker(self.seen)
        if name in COUNTERS and self.seen.ctx[name] is None:
            return "unknown (not given in context)"
        raise KeyError(name)

    def texts(self, names: Iterable[str]) -> dict[str, str]:
        """name -> words, as a `because` sentence shows them: a fact's value ("yes"/"no" for a boolean) or
        else a display text (`text`). KeyError for a name that is neither."""
        engine, seen = self.engine, self.seen
        written = seen is None or "display" in self.__dict__
        words = {}
        for name in names:
            if name in engine:
                value = engine[name]
                words[name] = ("yes" if value else "no") if type(value) is bool else str(value)
            elif written or name not in _TEXTS:
                words[name] = self.text(name)
            else:
                words[name] = _TEXTS[name](seen)  # what text() does, one call less per name
        return words


def text_maker(names: tuple[str, ...]) -> Callable[[Facts], tuple[str, ...]]:
    """A function of facts giving `tuple(facts.texts(names).values())`: the words of each name, in order (names
    without repeats). Errors as Facts.texts raises them.

    A decision's sentences read a few names, the same few for every decision with its fired rules: the function
    is written as source and compiled once per tuple of names (bounded), one expression per name, no loop.
    """
    found = _TEXT_MAKERS.get(names)
    if found is not None:
        return found
    namespace: dict[str, Any] = {"names": names, "iso_time": iso_time}
    terms = []
    for position, name in enumerate(names):
        if name in FACT_TYPES:  # derive_facts gives every fact (in the same `engine`, read first by Facts.texts)
            namespace[f"name{position}"] = name
            terms.append(f'("yes" if v else "no") if (v := engine[name{position}]).__class__ is bool else str(v)')
        elif name in _TIMES:  # _Seen.show of the time, its common case (a time in the send's offset) written here
            namespace[f"moment{position}"] = _TIMES[name]
            terms.append(f"iso_time(m) if (m := moment{position}(seen)) and m.tzinfo is seen.zone else seen.show(m)")
        elif name in _TEXTS:
            namespace[f"text{position}"] = _TEXTS[name]
            terms.append(f"text{position}(seen)")
        else:  # a counter's "unknown", or the KeyError of a name that is neither
            namespace[f"name{position}"] = name
            terms.append(f"facts.text(name{position})")
    # With no display inputs (a replayed send) or the display already written, Facts.texts decides as it does.
    source = ("def texts(facts):\n    engine, seen = facts.engine, facts.seen\n"
              "    if seen is None or 'display' in facts.__dict__:\n"
              "        return tuple(facts.texts(names).values())\n"
              f"    return ({''.join(f'{term}, ' for term in terms)})\n")
    exec(source, namespace)  # noqa: S102 - source made here from positions only (no name or value is in it)
    if len(_TEXT_MAKERS) >= 1024:
        _TEXT_MAKERS.clear()
    return _TEXT_MAKERS.setdefault(names, namespace["texts"])


_TEXT_MAKERS: dict[tuple[str, ...], Callable[[Facts], tuple[str, ...]]] = {}


class HistoryState(Struct, gc=False):
    """What the history so far says about the window and the entry point (updated in time order).

    A mutable msgspec Struct (made in C, fields in slots, compared field by field as the dataclass it was): every
    decision and every late-delivery check makes one. Never part of a reference cycle: the collector skips it.
    """

    openers: WindowOpeners  # which inbound messages open or refresh the window (core.window)
    referral_source_types: frozenset[str]
    ledger: Ledger = msgspec_field(default_factory=Ledger)
    last_counted_inbound: datetime | None = None
    last_counted_type: str | None = None
    last_uncounted_inbound: Message | None = None
    last_referral_inbound: datetime | None = None
    replied_since_referral: bool = False
    undelivered: tuple[int, Message] | None = None  # the latest message sent before the send, not delivered by it
    undelivered_until: datetime | None = None  # the end of that message's time-to-live (Meta drops it then)
    marketing_recent: int = 0  # marketing templates delivered outside a window in the recent period (evaluate)

    def receive(self, message: Message) -> None:
        """Take in an inbound message: it may open or refresh the window, or be an entry point."""
        if not self.counts(message):
            self.last_uncounted_inbound = message
            return
        self.last_counted_inbound = message.at
        self.last_counted_type = message.type
        referral = message.referral or {}
        if referral and referral.get("source_type", "ad") in self.referral_source_types:
            self.last_referral_inbound = message.at
            self.replied_since_referral = False

    def copy(self) -> HistoryState:
        """The same state, its ledger copied: taking more messages into either leaves the other as it was."""
        return structs.replace(self, ledger=self.ledger.copy())

    def counts(self, message: Message) -> bool:
        """True when this inbound message opens or refreshes the window (its type counts, and did on its day)."""
        return self.openers.opens(message.type, message.at)

    def deliver(self, period: Period | None, *, closes_others: bool) -> None:
        """Take in a delivered outbound message and the period it opened, if any."""
        self.replied_since_referral = True
        if period is not None:
            self.ledger.open(period, closes_others=closes_others)


def new_state(rulebook: Any) -> HistoryState:
    """An empty history state configured from the rulebook's parameters."""
    kinds = _STATE_KINDS.get(rulebook.version)
    if kinds is None:
        kinds = _STATE_KINDS[rulebook.version] = (
            window_openers(rulebook), frozenset(rulebook.parameter("entry_point_referral_source_types")))
    return HistoryState(*kinds)  # openers, referral_source_types


# rulebook version -> (which inbound messages open the window, referral source types that make an entry point)
_STATE_KINDS: dict[str, tuple[WindowOpeners, frozenset[str]]] = {}


def derive_facts(send: Send, state: HistoryState, context: dict[str, Any], rulebook: Any, *,
                 display: bool = True, sources: dict[str, str] | None = None) -> Facts:
    """The facts about one send at its time, given the history before it.

    `sources` maps a fact or context name to where its value came from (see DecisionRequest.sources);
    a counter's source also covers its `<name>_known` fact, and a derived fact those it is derived from.

    With display=False the `display` texts are left empty: replay classifies past sends from the
    engine facts and expiries alone, and no sentence is written about them.
    """
    at = send.at
    parameters = rulebook.parameters
    window = parameters["customer_service_window"].value
    deadline = parameters["entry_point_reply_deadline"].value
    ctx, defaults, base = _context(context)
    # The zone "UTC" (the default) has UTC's dates: datetime's own UTC converts several times faster.
    zone_name = ctx["waba_timezone"]
    if zone_name == "UTC":
        zone = None  # looked up only if an authentication-international start needs it
        local_day = (at if at.tzinfo is UTC else at.astimezone(UTC)).date()
    else:
        zone = _zone(zone_name)
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

    template = send.template
    category = template.category if template else NONE
    open_periods = state.ledger.open_at(at) if state.ledger.periods else []
    if open_periods:
        conversations = [p for p in open_periods if p.kind in CONVERSATION_KINDS]
        same = [p for p in conversations if p.category == category]
        free_entry = [p for p in open_periods if p.kind in FREE_ENTRY_POINT_KINDS]
    else:
        conversations = same = free_entry = open_periods
    region, calling_code, is_bsuid = _recipient_facts(send.to)
    undelivered = state.undelivered
    auth_start = authentication_international_start(ctx, region, zone or _zone(zone_name)) if (
        ctx["authentication_international_eligibility"] or ctx["authentication_international_start"] is not None
    ) else None

    # Every name in its place, the facts of the context alone already set (_context); the rest set here.
    engine = base.copy()
    engine["waba_date"] = local_day.year * 10000 + local_day.month * 100 + local_day.day  # day_number(local_day)
    engine["send_type"] = send.type
    engine["send_is_template"] = send.type == "template"
    engine["send_to_group"] = send.recipient_type == "group"
    engine["group_participants"] = len(send.participants)
    # The Groups API prefixes its categories (group_marketing, group_utility, group_service).
    engine["group_pricing_category"] = GROUP_CATEGORY_PREFIX + (category if template else "service")
    engine["template_category"] = category
    if template:
        engine["template_status"] = template.status
        engine["template_otp_button_known"] = template.otp_button is not None
        engine["template_has_otp_button"] = bool(template.otp_button)
        if template.ttl_seconds is not None and template.ttl_seconds >= 0:
            engine["template_custom_ttl"] = True
            engine["template_ttl_seconds"] = template.ttl_seconds
    if csw_open:
        engine["csw_open"] = True
        engine["seconds_until_csw_close"] = int((csw_expires - at).total_seconds())
    if last_in is not None:
        engine["csw_ever_opened"] = True
    if state.last_counted_type:
        engine["last_inbound_type"] = state.last_counted_type
    if uncounted_in_window:
        engine["uncounted_inbound_in_window"] = True
    if conversations:
        engine["conversation_open"] = True
        engine["conversation_open_same_category"] = bool(same)
        engine["ridden_conversation_category"] = conversations[0].category
    if free_entry:
        engine["free_entry_point_open"] = True
    if entry_point_reply:
        engine["entry_point_reply"] = True
    engine["recipient_region"] = region
    engine["recipient_calling_code"] = calling_code
    engine["recipient_is_bsuid"] = is_bsuid
    engine["send_via_marketing_messages_api"] = send.marketing_messages_api
    engine["send_by_meta_business_agent"] = send.meta_business_agent
    if send.category:
        engine["direct_send_category"] = send.category
        engine["direct_send"] = bool(ctx["direct_send_eligible"])
    if auth_start is not None:
        engine["authentication_international_started"] = auth_start[0] <= at
    # The primary business location counts only once Meta has verified it (M7); until then the
    # business is treated as based in another country.
    engine["recipient_in_business_region"] = (region == ctx["business_region"]
                                              and ctx["primary_business_location_verified"])
    if undelivered is not None:
        engine["undelivered_before_send"] = True
    engine["marketing_templates_delivered_recently"] = state.marketing_recent
    if ctx["account_ban_scheduled_at"] is not None:
        engine["account_ban_date_reached"] = ctx["account_ban_scheduled_at"] <= at

    expiries = {
        "same_category": same[0].expires_at if same else None,
        "any_conversation": conversations[0].expires_at if conversations else None,
        "free_entry_point": free_entry[0].expires_at if free_entry else None,
        "customer_service_window": csw_expires if csw_open else None,
    }
    seen = _Seen(send, ctx, last_in, csw_expires, conversations, same, free_entry, referral, deadline, uncounted,
                 window, undelivered, auth_start, state.undelivered_until, at.tzinfo or UTC) if display else None
    return Facts(at, local_day, engine, defaults, expiries, tuple(open_periods) if open_periods else (), seen,
                 fact_sources(sources) if sources else {})


# Facts derived from a context field besides the field's own fact (and its `_known` fact).
DERIVED_FACTS = {
    "business_region": ("recipient_in_business_region",),
    "authentication_international_start": ("authentication_international_started",),
    "authentication_international_eligibility": ("authentication_international_started",),
    "messaging_limit": ("messaging_limit_reached",),
    "business_initiated_users_24h": ("messaging_limit_reached",),
    "account_ban_scheduled_at": ("account_ban_scheduled", "account_ban_date_reached"),
}


def fact_sources(sources: dict[str, str]) -> dict[str, str]:
    """Sources by context or fact name, as sources by the fact names rules read (a fact derived from
    several sourced fields names them all, joined by "; ")."""
    found: dict[str, str] = {}
    for name, source in sources.items():
        for fact in (name, name + "_known", *DERIVED_FACTS.get(name, ())):
            if fact in FACT_TYPES:
                found[fact] = f"{found[fact]}; {source}" if fact in found else source
    return found


class _Seen(Struct, frozen=True, gc=False):
    """What the display texts are written from (kept so each text is written only when read).

    A frozen msgspec Struct: made in C in one step for every decision (~0.15 µs, against ~0.6 µs for the
    NamedTuple it was), its fields read by C descriptors. It holds no reference back to itself or its Facts.
    """

    send: Send
    ctx: dict[str, Any]
    last_in: datetime | None
    csw_expires: datetime | None
    conversations: list[Period]
    same: list[Period]
    free_entry: list[Period]
    referral: datetime | None
    deadline: timedelta
    uncounted: Message | None
    window: timedelta
    undelivered: tuple[int, Message] | None
    auth_start: tuple[datetime, str] | None
    undelivered_until: datetime | None
    zone: Any  # the send's own offset (its tzinfo, UTC for a naive time): times are shown in it
    late: tuple[datetime, Any] | None = None  # (from when, the charge) a late delivery would get

    def with_late(self, moment: datetime, charge: Any) -> _Seen:
        """A copy that knows the charge a delivery from `moment` on would get."""
        return structs.replace(self, late=(moment, charge))

    def show(self, moment: datetime | None) -> str:
        """A time in the send's own offset (ISO 8601), or "none"."""
        if not moment:
            return NONE
        return iso_time(moment if moment.tzinfo is self.zone else moment.astimezone(self.zone))

    def opener(self, periods: list[Period]) -> str:
        """Which history entry opened the first of the periods."""
        if not periods:
            return NONE
        return f"the message delivered at {self.show(periods[0].opened_at)} (history[{periods[0].opened_by}])"


def iso_time(moment: datetime) -> str:
    """moment.isoformat(), made from cached digits for a time with a fixed offset (datetime.timezone).

    datetime.isoformat formats through printf, which cost more than a fifth of writing a decision's sentences.
    """
    zone = moment.tzinfo
    if zone is UTC:  # most times: hashing a timezone to find its text costs a fifth of the rest
        offset = "+00:00"
    elif type(zone) is not timezone:
        return moment.isoformat()
    else:
        offset = _OFFSETS.get(zone)
        if offset is None:
            # The offset as isoformat writes it (±HH:MM, seconds when not whole minutes), from a time at midnight.
            offset = datetime(2000, 1, 1, tzinfo=zone).isoformat()[19:]
            if len(_OFFSETS) < 1024:
                _OFFSETS[zone] = offset
    two = _TWO_DIGITS
    # The date's text by its day number (one call, where year, month and day are three reads and three lookups).
    day = _DAYS.get(ordinal := moment.toordinal())
    if day is None:
        day = f"{_YEARS[moment.year]}-{two[moment.month]}-{two[moment.day]}T"
        if len(_DAYS) >= 4096:
            _DAYS.clear()
        _DAYS[ordinal] = day
    if moment.microsecond:
        return f"{day}{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}.{moment.microsecond:06d}{offset}"
    return f"{day}{two[moment.hour]}:{two[moment.minute]}:{two[moment.second]}{offset}"


_TWO_DIGITS = tuple(f"{number:02d}" for number in range(100))
_YEARS = tuple(f"{year:04d}" for year in range(10000))  # by year; a datetime's year is 1 to 9999
_OFFSETS: dict[timezone, str] = {}  # a fixed offset -> its text in isoformat
_DAYS: dict[int, str] = {}  # a date's ordinal -> "YYYY-MM-DDT" (bounded, cleared when full)


def _first_expiry(periods: list[Period]) -> datetime | None:
    return periods[0].expires_at if periods else None


# Display values that are one time of the send's inputs, shown in the send's offset (_Seen.show): by name, where
# the time is read.
_TIMES: dict[str, Callable[[_Seen], datetime | None]] = {
    "send_at": attrgetter("send.at"),
    "last_inbound_at": attrgetter("last_in"),
    "csw_expires_at": attrgetter("csw_expires"),
    "entry_point_at": attrgetter("referral"),
    "undelivered_until": attrgetter("undelivered_until"),
    "account_ban_scheduled_at": lambda s: s.ctx["account_ban_scheduled_at"],
}
_TEXTS: dict[str, Callable[[_Seen], str]] = {
    "recipient": lambda s: s.send.to if s.send.recipient_type != "group" else f"the group {s.send.to}",
    "recipient_region_source": lambda s: _recipient(s.send.to).region_source,
    "template_name": lambda s: s.send.template.name if s.send.template else NONE,
    "window_history": lambda s: _window_history(s),
    "open_conversations": lambda s: ", ".join(f"{p.category} until {s.show(p.expires_at)}"
                                              for p in s.conversations) or NONE,
    "same_category_expires_at": lambda s: s.show(_first_expiry(s.same)),
    "ridden_conversation_expires_at": lambda s: s.show(_first_expiry(s.conversations)),
    "free_entry_point_expires_at": lambda s: s.show(_first_expiry(s.free_entry)),
    "same_category_opened_by": lambda s: s.opener(s.same),
    "ridden_conversation_opened_by": lambda s: s.opener(s.conversations),
    "free_entry_point_opened_by": lambda s: s.opener(s.free_entry),
    "entry_point_deadline_at": lambda s: s.show(s.referral + s.deadline if s.referral else None),
    "uncounted_inbound_at": lambda s: s.show(s.uncounted.at if s.uncounted else None),
    "uncounted_inbound_type": lambda s: s.uncounted.type if s.uncounted else NONE,
    "uncounted_would_close_at": lambda s: s.show(s.uncounted.at + s.window if s.uncounted else None),
    "waba_timezone": lambda s: s.ctx["waba_timezone"],
    "undelivered_sent_at": lambda s: s.show(s.undelivered[1].at if s.undelivered else None),
    "undelivered_message": lambda s: _described(s.undelivered),
    "late_delivery_from": lambda s: s.show(s.late[0]) if s.late else NONE,
    "late_delivery_charge": lambda s: describe_charge(s.late[1]) if s.late else NONE,
    "authentication_international_start_at": lambda s: (f"{s.show(s.auth_start[0])} ({s.auth_start[1]})"
                                                        if s.auth_start else "none (no start time given)"),
    "messaging_limit": lambda s: _count_text(s.ctx["messaging_limit"], unlimited=True),
    "business_initiated_users_24h": lambda s: _count_text(s.ctx["business_initiated_users_24h"]),
}
_TEXTS.update({name: lambda s, moment=moment: s.show(moment(s)) for name, moment in _TIMES.items()})


def _window_history(seen: _Seen) -> str:
    """What the history says about the window, for a sentence: when the user last wrote and when that
    window ended, or that no counted message from the user is in the history at all."""
    if seen.last_in is None:
        if seen.uncounted is not None:
            return (f"the user has sent no message that opens a window (only a {seen.uncounted.type} at "
                    f"{seen.show(seen.uncounted.at)}, not counted)")
        # "before the send": messages dated after it are not read (an inline history may hold some).
        return ("the user has never written before the send (no inbound message in the history before it), so no "
                "window was ever opened")
    return (f"the user's last counted message was at {seen.show(seen.last_in)}, and its window ended at "
            f"{seen.show(seen.csw_expires)}")


def _count_text(count: int | None, *, unlimited: bool = False) -> str:
    if count is None:
        return "unknown"
    return "unlimited" if unlimited and count < 0 else f"{count:,}"


def with_late_delivery(facts: Facts, moment: datetime, charge: Any) -> Facts:
    """The facts with `late_delivery_changes_charge` set: delivered from `moment` on, the send would be
    charged as `charge` (a decision.Charge, or None when no charge rule would apply)."""
    engine = {**facts.engine, "late_delivery_changes_charge": True}
    seen = facts.seen.with_late(moment, charge) if facts.seen is not None else None
    return replace(facts, engine=engine, seen=seen)


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


# The context fields given (by name, in order) -> the values with defaults filled in and the defaults used.
_CONTEXTS: dict[tuple[Any, ...], tuple[dict[str, Any], frozenset[str], dict[str, Any]]] = {}


def _context(context: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str], dict[str, Any]]:
    """The context's values with defaults filled in, the defaults used, and the engine facts as far as the
    context alone decides them (every fact name in its order; see _context_facts)."""
    if not context:
        return _NO_CONTEXT
    # Most requests give few context fields with few distinct values: reuse the merged values
    # (never mutated) for each combination seen; bounded, cleared when full.
    try:
        # The type is part of the key: True == 1, but the engine must see what was given.
        key = (*context.items(), *map(type, context.values()))
        found = _CONTEXTS.get(key)
    except TypeError:  # a value that is a dict or a list (Meta's eligibility with its exception countries)
        try:
            key = _frozen(context)
            found = _CONTEXTS.get(key)
        except TypeError:  # an unhashable value: merge without remembering
            key, found = None, None
    if found is not None:
        return found
    found = _merged(context)
    if key is not None:
        if len(_CONTEXTS) >= 1024:
            _CONTEXTS.clear()
        _CONTEXTS[key] = found
    return found


def _frozen(value: Any) -> tuple[type, Any]:
    """A hashable value equal for equal values of equal types (dicts and lists item by item, with their types).
    TypeError when some part of it cannot be hashed."""
    if isinstance(value, dict):
        return dict, tuple((name, _frozen(item)) for name, item in value.items())
    if isinstance(value, list):
        return list, tuple(map(_frozen, value))
    hash(value)
    return type(value), value


def _merged(context: dict[str, Any]) -> tuple[dict[str, Any], frozenset[str], dict[str, Any]]:
    values, defaults = {}, set()
    for name, default in CONTEXT_DEFAULTS.items():
        if context.get(name) is None:
            values[name] = default
            defaults.add(name)
        else:
            values[name] = context[name]
    used = frozenset(defaults)
    eligible = values["authentication_international_eligible"]
    if values["authentication_international_eligibility"] and "authentication_international_eligible" in used:
        # Meta sends the eligibility start times only to an eligible business.
        eligible, used = True, used - {"authentication_international_eligible"}
    return values, used, _context_facts(values, used, eligible)


def _context_facts(ctx: dict[str, Any], defaults: frozenset[str], eligible: bool) -> dict[str, Any]:
    """Every fact name, in the order the engine and the response show them, with the value it has for a send
    that none of derive_facts' conditions changes: what the context says, else none, false or 0."""
    engine: dict[str, Any] = {
        "waba_date": 0,
        "send_type": NONE,
        "send_is_template": False,
        "send_to_group": False,
        "group_participants": 0,
        "group_pricing_category": NONE,
        "template_category": NONE,
        "template_status": NONE,
        "template_otp_button_known": False,
        "template_has_otp_button": False,
        "template_custom_ttl": False,
        "template_ttl_seconds": 0,
        "csw_open": False,
        "csw_ever_opened": False,
        "last_inbound_type": NONE,
        "seconds_until_csw_close": 0,
        "uncounted_inbound_in_window": False,
        "conversation_open": False,
        "conversation_open_same_category": False,
        "ridden_conversation_category": NONE,
        "free_entry_point_open": False,
        "entry_point_reply": False,
        "recipient_region": NONE,
        "recipient_calling_code": 0,
        "recipient_is_bsuid": False,
        "send_via_marketing_messages_api": False,
        "send_by_meta_business_agent": False,
        "direct_send_category": NONE,
        "direct_send_eligible": ctx["direct_send_eligible"],
        "direct_send": False,
        "business_region": ctx["business_region"],
        "opted_in": ctx["opted_in"],
        "opted_in_known": "opted_in" not in defaults,
        "marketing_opt_out": ctx["marketing_opt_out"],
        "authentication_international_eligible": eligible,
        "authentication_international_started": False,
        "recipient_in_business_region": False,
        "primary_business_location_verified": ctx["primary_business_location_verified"],
        "undelivered_before_send": False,
        "late_delivery_changes_charge": False,  # set by with_late_delivery once the send is classified
        "business_initiated_restricted": ctx["business_initiated_restricted"],
        "account_banned": ctx["account_banned"],
        "account_ban_scheduled": ctx["account_ban_scheduled_at"] is not None,
        "account_ban_date_reached": False,  # set by derive_facts against the send's time
        "marketing_limit_refused_recently": ctx["marketing_limit_refused_recently"],
        "marketing_templates_delivered_recently": 0,
    }
    limit, reached = ctx["messaging_limit"], ctx["business_initiated_users_24h"]
    # -1 is Meta's "unlimited"; with either number unknown the limit is not assumed reached.
    engine["messaging_limit_reached"] = limit is not None and reached is not None and 0 <= limit <= reached
    for counter, known in _COUNTER_FACTS:
        count = ctx[counter]
        engine[known] = count is not None
        engine[counter] = count if count is not None else 0
    return engine


_NO_CONTEXT = _merged({})  # every field defaulted (never mutated)


# A send's recipient as a Contact (immutable): a group id or a masked number is no contact, and finding that
# out raises and catches an exception inside recipient_contact on every call.
_recipient = lru_cache(maxsize=4096)(recipient_contact)


@lru_cache(maxsize=4096)
def _recipient_facts(to: str) -> tuple[str, int, bool]:
    """A send recipient's region, calling code and whether it is a BSUID (recipient_contact)."""
    contact = _recipient(to)
    return contact.region, contact.calling_code, contact.is_bsuid


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Schemas validate the name; an unknown zone reaching here is a caller bug, not a policy.
        raise ValueError(f"unknown time zone {name!r}") from None


def day_number(day: date) -> int:
    """A day as the waba_date fact encodes it (YYYYMMDD): a number, so rules compare it as a number."""
    return day.year * 10000 + day.month * 100 + day.day


def from_day_number(number: int) -> date:
    """The day a waba_date number stands for."""
    return date(number // 10000, number // 100 % 100, number % 100)


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
