"""The proposed send and the conversation history it is judged against."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime, timedelta
from typing import Any

from msgspec import Struct

from .records import record, replace
from .vocabulary import DELIVERED_STATUSES

# An outbound message known only from its status webhooks, whose category does not say whether it
# was a template (core.evaluate.assumed_send decides, and says so).
UNKNOWN_TYPE = "unknown"
UNKNOWN_TEMPLATE = "(unknown: learned from a status webhook)"


@record
class Template:
    """An approved (or not) message template as the business would send it."""

    name: str
    language: str
    category: str
    status: str = "APPROVED"
    otp_button: bool | None = None  # authentication templates: has a one-time-password button
    # Meta's message_send_ttl_seconds: how long Meta retries delivery (-1: 30 days); None: the category's default
    ttl_seconds: int | None = None


class Message(Struct, frozen=True, gc=False):
    """One message in the history between a business number and one user.

    `at` is when it was sent (outbound) or written (inbound). An outbound message reaches the user
    at `delivered_at`; Meta opens conversations and charges on delivery, so replay dates it by
    that. When only a delivering `status` is known (delivered, read, played), it was delivered at
    `at`; a message only `sent` (or failed) was not delivered.

    A frozen msgspec Struct, not a `record`: a request carries up to 10,000 of them, and a Struct is made in C
    (~0.1 µs, against ~0.7 µs for a record's __init__) and holds its fields in slots, with no __dict__. It is used
    only as a record here (no decoding): the same fields, defaults, equality, hashing, repr and immutability;
    copied with `records.replace`. gc=False: a message refers to no object that can refer back to it (times,
    strings, a Template, a referral dict of strings), so the garbage collector need not track it.
    """

    direction: str  # "inbound" | "outbound"
    at: datetime
    type: str
    template: Template | None = None
    status: str = "delivered"  # outbound only
    referral: dict[str, Any] | None = None  # inbound from an ad or post
    id: str | None = None
    delivered_at: datetime | None = None  # outbound only
    # Outbound only: sent from the WhatsApp Business app (coexistence, Meta's smb_message_echoes), not through
    # the API. A business message, taken as delivered at its time (no status follows an echo); the API's
    # pricing does not classify it, so it opens and is charged nothing here (core.evaluate.replay).
    business_app: bool = False

    @property
    def is_template(self) -> bool:
        """True for an outbound template message."""
        return self.type == "template"

    @property
    def delivery_time(self) -> datetime | None:
        """When an outbound message reached the user (its send time when only its status says it did, or
        when it was sent from the WhatsApp Business app); None when it was not delivered. An inbound message
        counts from when it was written."""
        if self.direction == "inbound" or self.delivered_at is not None:
            return self.delivered_at or self.at
        return self.at if self.status in DELIVERED_STATUSES or self.business_app else None


@record
class Send:
    """The message a business proposes to send.

    To a group (Groups API, `recipient_type` "group"), `to` is the group id and `participants` the
    members' numbers: Meta bills a billable message once per participant it is delivered to.
    """

    at: datetime
    to: str
    type: str
    template: Template | None = None
    recipient_type: str = "individual"
    participants: tuple[str, ...] = ()
    phone_number_id: str | None = None  # the sending business phone number, when the caller names it
    # A marketing template sent through the Marketing Messages API (/marketing_messages).
    marketing_messages_api: bool = False
    # Direct Send: a free-form message sent with Meta's `category` field (utility or authentication).
    category: str | None = None
    # A reply written by Meta Business Agent (Meta's AI agent) on the business's behalf.
    meta_business_agent: bool = False

    @property
    def is_template(self) -> bool:
        """True when the proposed message is a template."""
        return self.type == "template"

    def as_message(self) -> Message:
        """The send as it would stand in history once delivered."""
        return Message("outbound", self.at, self.type, self.template, "delivered")


@record
class DecisionRequest:
    """A proposed send, the history before it, and what the business knows about the user."""

    send: Send
    history: tuple[Message, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    # fact or context name -> where its value came from when not from the request itself
    # (e.g. "template_category_update webhook at 2026-10-02T10:00:00+00:00"); the trace names it.
    sources: dict[str, str] = field(default_factory=dict)

    def moved(self, by: timedelta) -> DecisionRequest:
        """The same request with the send's time and every history time (sent and delivered) moved by `by`.

        The context (counts, dated eligibility) is kept as it is. For benchmarks and tests that need a stream of
        distinct requests: the rules see the same durations, so the decision changes only where a time crosses a
        date the rules name.
        """
        history = tuple(replace(m, at=m.at + by, delivered_at=m.delivered_at + by if m.delivered_at else None)
                        for m in self.history)
        return replace(self, send=replace(self.send, at=self.send.at + by), history=history)
