"""The proposed send and the conversation history it is judged against."""

from __future__ import annotations

from dataclasses import field
from datetime import datetime
from typing import Any

from .records import record


@record
class Template:
    """An approved (or not) message template as the business would send it."""

    name: str
    language: str
    category: str
    status: str = "APPROVED"
    otp_button: bool | None = None  # authentication templates: has a one-time-password button


@record
class Message:
    """One message in the history between a business number and one user."""

    direction: str  # "inbound" | "outbound"
    at: datetime
    type: str
    template: Template | None = None
    status: str = "delivered"  # outbound only
    referral: dict[str, Any] | None = None  # inbound from an ad or post
    id: str | None = None

    @property
    def is_template(self) -> bool:
        """True for an outbound template message."""
        return self.type == "template"


@record
class Send:
    """The message a business proposes to send."""

    at: datetime
    to: str
    type: str
    template: Template | None = None
    # A marketing template sent through the Marketing Messages API (/marketing_messages).
    marketing_messages_api: bool = False
    # Direct Send: a free-form message sent with Meta's `category` field (utility or authentication).
    category: str | None = None

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
