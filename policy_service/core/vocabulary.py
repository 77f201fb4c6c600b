"""Meta's delivery and billing vocabulary: every status value and pricing category it has used.

These are Meta's wire terms, not regulation: what each word *means* for delivery and for which
rules can model it. Which charge applies stays in rules/. Sources: the status messages webhook
reference (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status),
the conversation-based pricing page (2022-2025 categories), the Groups API pricing page
(https://developers.facebook.com/documentation/business-messaging/whatsapp/groups/pricing/), and
/work/shared/docs/whatsapp-rules.md WH-1 to WH-5.
"""

from __future__ import annotations

from collections.abc import Iterable

# Every `statuses[].status` value Meta has sent. `played` is a voice message played on the user's
# device; `deleted` (a message deleted) and `warning` (an On-Premises catalog warning) say nothing
# about delivery by themselves.
STATUSES = ("sent", "delivered", "read", "played", "failed", "deleted", "warning")
# A status that proves the message reached the user's device: "a status is considered read only if
# it has been delivered" (status webhook reference); played implies read.
DELIVERED_STATUSES = frozenset({"delivered", "read", "played"})
# When several statuses of one message arrive, the strongest tells most; delivery beats failure
# (a message delivered to one device and failed on another was delivered, and charged).
STATUS_RANK = {"warning": 0, "deleted": 0, "sent": 1, "failed": 2, "delivered": 3, "read": 4, "played": 5}

# `pricing.category` / `conversation.origin.type` values that name a template category the rules model.
TEMPLATE_CATEGORIES = {
    "marketing": "marketing",
    "marketing_lite": "marketing",  # Marketing Messages API: Cloud API marketing rates (PMP-8)
    "utility": "utility",
    "authentication": "authentication",
    "authentication-international": "authentication",  # pricing spells it with a hyphen
    "authentication_international": "authentication",  # origin.type (and some SDKs) with an underscore
    # Groups API (groups pricing page): group_marketing a marketing template, group_utility a utility template.
    "group_marketing": "marketing",
    "group_utility": "utility",
}
# Categories that say the message was not a template (a service conversation or message; group_service: a
# non-template message to a group; business_agent: a reply written by Meta Business Agent, PMP26-4.agent).
BUSINESS_AGENT = "business_agent"
NON_TEMPLATE_CATEGORIES = frozenset({"service", "group_service", BUSINESS_AGENT})
# Categories that do not say whether the message was a template: a free entry point conversation
# (referral_conversion) carries templates and free-form alike; 2022's conversations were named by
# who started them (business_initiated, user_initiated), not by what was sent.
TYPE_OPEN_CATEGORIES = frozenset({"referral_conversion", "business_initiated", "user_initiated"})
# Every category the rules model; anything else (general_purpose_ai, a future one) is stored
# as Meta sent it and reported as not modelled rather than replayed as something else.
MODELLED_CATEGORIES = frozenset(TEMPLATE_CATEGORIES) | NON_TEMPLATE_CATEGORIES | TYPE_OPEN_CATEGORIES
# `pricing.type` values of each version (free_group_customer_service: the Groups API).
PRICING_TYPES = ("regular", "free_customer_service", "free_entry_point", "free_tier", "free_group_customer_service")
GROUP_CATEGORY_PREFIX = "group_"


def pricing_category(category: str) -> str:
    """Meta's pricing category in its `pricing` spelling: authentication_international (conversation.origin.type,
    some SDKs and senders) is authentication-international (domain notes WH-2), one category wherever categories
    are counted or reported (/v1/costs, /v1/counts, reconciliation, volume tiers); any other is returned as is."""
    return category.replace("_international", "-international")


def every_spelling(categories: Iterable[str]) -> tuple[str, ...]:
    """The categories with each one's other spelling beside it (authentication-international and
    authentication_international), in order, once each: what a query over stored categories must match, as each
    row keeps the spelling Meta (or the sender) gave."""
    found: dict[str, None] = {}
    for category in categories:
        canonical = pricing_category(category)
        found.update(dict.fromkeys((category, canonical, canonical.replace("-international", "_international"))))
    return tuple(found)


def delivered(status: str | None) -> bool:
    """True when the status proves delivery to the user's device."""
    return status in DELIVERED_STATUSES


def modelled(category: str | None) -> bool:
    """True when the rules model this pricing category (None: no category given, nothing to model)."""
    return category is None or category in MODELLED_CATEGORIES


def is_group_category(category: str | None) -> bool:
    """True for the Groups API's categories (group_marketing, group_utility, ...)."""
    return bool(category) and category.startswith(GROUP_CATEGORY_PREFIX)
