"""Words for reviewers: one time format, Meta's ids in words, and one phrase per charge."""

from datetime import UTC, datetime, timedelta, timezone

from policy_service.core.decision import Charge
from policy_service.core.wording import (
    category_name,
    describe_charge,
    period_name,
    show_time,
    times_in_text,
    type_name,
    zone_name,
)

PLUS_TWO = timezone(timedelta(hours=2))


def charge(**changes):
    fields = {"billable": True, "pricing_model": "PMP", "category": "marketing", "type": "regular",
              "opens_conversation": False, "conversation_expires_at": None, "rule": "PMP-2"}
    return Charge(**{**fields, **changes})


def test_a_denied_send_is_not_sent_and_not_charged_whatever_rule_applied():
    """A deny reads "not sent, not charged", even when a charge rule also applied (the reviewer's case)."""
    free_entry = charge(pricing_model="CBP", category="referral_conversion", type=None, billable=False)
    assert describe_charge(free_entry, sent=False) == "not sent, not charged"


def test_charges_read_in_words_with_their_model_and_rule():
    """Billable and free charges name the category, the pricing type and the model in words, and the rule."""
    assert describe_charge(charge()) == "charged: marketing message, regular rate (per-message pricing; rule PMP-2)"
    free = charge(billable=False, category="utility", type="free_customer_service", rule="PMP-3")
    assert describe_charge(free) == \
        "not charged: utility message, free customer service (per-message pricing; rule PMP-3)"
    assert describe_charge(None) == "no charge rule applied"


def test_a_conversation_charge_says_until_when_in_the_one_time_format():
    """A CBP charge opening (or riding) a conversation gives its end as `YYYY-MM-DD HH:MM`, in the zone asked."""
    until = datetime(2024, 9, 11, 9, 0, tzinfo=UTC)
    opens = charge(pricing_model="CBP", category="utility", opens_conversation=True, conversation_expires_at=until,
                   rule="CBP-3.opens")
    assert describe_charge(opens) == \
        "charged: utility conversation, regular rate; opens it until 2024-09-11 09:00 " \
        "(conversation-based pricing; rule CBP-3.opens)"
    rides = charge(pricing_model="CBP", category="referral_conversion", type="free_entry_point", billable=False,
                   conversation_expires_at=until, rule="FEP-1.rides")
    assert describe_charge(rides, zone=PLUS_TWO) == \
        "not charged: free entry point conversation, free entry point; rides one open until 2024-09-11 11:00 " \
        "(conversation-based pricing; rule FEP-1.rides)"


def test_meta_ids_have_human_names_and_unknown_ids_stay_as_they_are():
    """referral_conversion is a free entry point conversation; an id we do not know is shown unchanged."""
    assert category_name("referral_conversion") == "free entry point conversation"
    assert category_name("authentication-international") == "international authentication"
    assert type_name("free_tier") == "monthly free tier"
    assert category_name("something_new") == "something_new"
    assert period_name("conversation", "utility") == "utility conversation"
    assert period_name("free_entry_point_conversation", "referral_conversion") == "free entry point conversation"


def test_times_show_one_way_and_sentences_are_rewritten_to_it():
    """`show_time` drops zero seconds; `times_in_text` rewrites RFC 3339 times (any offset) into the zone asked."""
    assert show_time(datetime(2024, 5, 1, 10, 0, tzinfo=UTC)) == "2024-05-01 10:00"
    assert show_time(datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)) == "2024-05-01 10:00:05"
    assert zone_name(datetime(2024, 5, 1, tzinfo=PLUS_TWO)) == "UTC+02:00"
    assert zone_name(datetime(2024, 5, 1, tzinfo=timezone(timedelta(hours=-3, minutes=-30)))) == "UTC-03:30"
    text = "open until 2024-03-06T10:00:00+00:00 and sent at 2024-03-06T12:30:00Z, not 2024-03-06 alone"
    assert times_in_text(text, PLUS_TWO) == \
        "open until 2024-03-06 12:00 and sent at 2024-03-06 14:30, not 2024-03-06 alone"
