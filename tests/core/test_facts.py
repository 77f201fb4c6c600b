"""Fact derivation: the window, entry points and open conversations, computed from history alone."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_service.core.conversations import Period
from policy_service.core.facts import DISPLAY_VALUES, FACT_TYPES, derive_facts, iso_time, new_state, text_maker
from policy_service.core.messages import Message, Send, Template

T0 = datetime(2025, 8, 12, 9, tzinfo=UTC)
TO = "+5511987654321"


def facts_at(rulebook, at, inbound=(), context=None, send_type="text", template=None, to=TO):
    """Facts for a send at `at` after the given inbound messages (type, time) pairs."""
    state = new_state(rulebook)
    for message in inbound:
        state.receive(message)
    return derive_facts(Send(at, to, send_type, template), state, context or {}, rulebook)


@pytest.mark.parametrize(
    ("offset", "is_open"),
    [(timedelta(0), True), (timedelta(hours=23, minutes=59, seconds=59), True), (timedelta(hours=24), False),
     (timedelta(hours=30), False)],
)
def test_window_is_half_open(rulebook, offset, is_open):
    """The window opened at T0 covers [T0, T0+24h): open at T0 and 23:59:59 later, closed at exactly 24h."""
    facts = facts_at(rulebook, T0 + offset, [Message("inbound", T0, "text")])
    assert facts.engine["csw_open"] is is_open


def test_each_inbound_message_resets_the_window(rulebook):
    """A second inbound message moves the window's end to 24 hours after it."""
    inbound = [Message("inbound", T0, "text"), Message("inbound", T0 + timedelta(hours=10), "text")]
    facts = facts_at(rulebook, T0 + timedelta(hours=30), inbound)
    assert facts.engine["csw_open"] is True
    assert facts.display["csw_expires_at"] == (T0 + timedelta(hours=34)).isoformat()


def test_a_reaction_does_not_open_the_window_but_is_flagged(rulebook):
    """Reactions are ignored types (CSW-7 [R]): the window stays closed and the fact says one was ignored."""
    facts = facts_at(rulebook, T0, [Message("inbound", T0 - timedelta(hours=1), "reaction")])
    assert facts.engine["csw_open"] is False
    assert facts.engine["csw_ever_opened"] is False
    assert facts.engine["uncounted_inbound_in_window"] is True


def test_an_ad_message_makes_the_first_reply_an_entry_point_reply(rulebook):
    """A referral from an ad makes the first business reply within 24 hours an entry point reply."""
    ad = Message("inbound", T0, "text", referral={"source_type": "ad", "ctwa_clid": "x"})
    assert facts_at(rulebook, T0 + timedelta(hours=2), [ad]).engine["entry_point_reply"] is True
    assert facts_at(rulebook, T0 + timedelta(hours=25), [ad]).engine["entry_point_reply"] is False


def test_a_later_reply_is_not_an_entry_point_reply(rulebook):
    """Only the first reply after the ad message counts; after a delivered reply the fact is false."""
    state = new_state(rulebook)
    state.receive(Message("inbound", T0, "text", referral={"source_type": "ad"}))
    state.deliver(None, closes_others=False)
    facts = derive_facts(Send(T0 + timedelta(hours=3), TO, "text"), state, {}, rulebook)
    assert facts.engine["entry_point_reply"] is False


def test_open_conversations_come_from_the_ledger(rulebook):
    """A conversation opened earlier is open (same category) until it expires, then closed."""
    state = new_state(rulebook)
    state.ledger.open(Period("conversation", "utility", "CBP", T0, T0 + timedelta(hours=24), 0, "CBP-3.opens"),
                      closes_others=False)
    utility = Template("u", "en", "utility", "APPROVED")
    inside = derive_facts(Send(T0 + timedelta(hours=5), TO, "template", utility), state, {}, rulebook)
    after = derive_facts(Send(T0 + timedelta(hours=24), TO, "template", utility), state, {}, rulebook)
    assert inside.engine["conversation_open_same_category"] is True
    assert inside.engine["ridden_conversation_category"] == "utility"
    assert after.engine["conversation_open"] is False


@pytest.mark.parametrize(("number", "region", "code"),
                         [("+12125550123", "US", 1), ("+14165550123", "CA", 1), ("+919876543210", "IN", 91)])
def test_recipient_region_comes_from_the_number(rulebook, number, region, code):
    """+1 numbers resolve by area code (US vs Canada); other numbers by country code."""
    facts = facts_at(rulebook, T0, to=number)
    assert (facts.engine["recipient_region"], facts.engine["recipient_calling_code"]) == (region, code)


def test_waba_date_follows_the_waba_time_zone(rulebook):
    """Calendar boundaries fall at midnight in the WABA's zone: 23:30 UTC is the next day in Kolkata."""
    at = datetime(2025, 6, 30, 23, 30, tzinfo=UTC)
    assert facts_at(rulebook, at).engine["waba_date"] == 20250630
    assert facts_at(rulebook, at, context={"waba_timezone": "Asia/Kolkata"}).engine["waba_date"] == 20250701


def test_defaults_are_recorded(rulebook):
    """Context fields not given are defaulted and listed, so the trace can name them."""
    facts = facts_at(rulebook, T0, context={"opted_in": False})
    assert facts.engine["opted_in"] is False
    assert "opted_in" not in facts.defaults
    assert {"marketing_opt_out", "waba_timezone"} <= facts.defaults


def test_every_fact_is_present_with_its_declared_type(rulebook):
    """Facts are total and typed: the engine compares text with numbers as text, so no fact may drift."""
    facts = facts_at(rulebook, T0, [Message("inbound", T0, "text")])
    assert set(facts.engine) == set(FACT_TYPES)
    for name, kind in FACT_TYPES.items():
        value = facts.engine[name]
        assert isinstance(value, kind) and (kind is bool or not isinstance(value, bool)), name


def test_authentication_international_starts_per_country_with_exceptions(rulebook):
    """Meta's eligibility: one start_time, and exception_countries with their own; the exception wins for its
    country, the general start for every other, compared at the instant (not the day)."""
    start, late = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 7, 10, 12, tzinfo=UTC)
    context = {"authentication_international_eligibility": {
        "start_time": start, "exception_countries": [{"country_code": "ID", "start_time": late}]}}
    started = {}
    for to, at in (("+6281234567890", late - timedelta(seconds=1)), ("+6281234567890", late),
                   ("+919876543210", late - timedelta(seconds=1)), ("+919876543210", start - timedelta(seconds=1))):
        facts = facts_at(rulebook, at, context=context, to=to)
        started[(to[:3], at)] = facts.engine["authentication_international_started"]
        assert facts.engine["authentication_international_eligible"]  # the eligibility implies it
    assert started == {("+62", late - timedelta(seconds=1)): False, ("+62", late): True,
                       ("+91", late - timedelta(seconds=1)): True, ("+91", start - timedelta(seconds=1)): False}
    shown = facts_at(rulebook, late, context=context, to="+6281234567890").display
    assert shown["authentication_international_start_at"] == f"{late.isoformat()} (the exception for ID)"


def test_an_unverified_primary_location_never_makes_the_recipient_local(rulebook):
    """business_region counts as the business's country only once verified (default: not verified)."""
    for verified, local in ((None, False), (False, False), (True, True)):
        context = {"business_region": "IN", "primary_business_location_verified": verified}
        facts = facts_at(rulebook, T0, context=context, to="+919876543210")
        assert facts.engine["recipient_in_business_region"] is local
    assert "primary_business_location_verified" in facts_at(rulebook, T0, to="+919876543210").defaults


def test_each_text_written_alone_equals_the_full_display(rulebook):
    """facts.text(name), which a trace sentence uses, gives what the response's display shows, for every name."""
    inbound = [Message("inbound", T0, "text"), Message("inbound", T0 + timedelta(hours=1), "reaction")]
    utility = Template("order_update", "en", "utility")
    for context in ({}, {"conversations_this_month": 3, "waba_timezone": "America/Sao_Paulo"}):
        alone = facts_at(rulebook, T0 + timedelta(hours=2), inbound, context, "template", utility)
        texts = {name: alone.text(name) for name in facts_at(rulebook, T0 + timedelta(hours=2), inbound, context,
                                                              "template", utility).display}
        assert texts == alone.display and "csw_expires_at" in texts
    with pytest.raises(KeyError):
        alone.text("conversations_this_month")  # given in this context: no "unknown" text


def test_the_window_history_says_when_the_user_never_wrote(rulebook):
    """A user with no inbound message reads as never having written, not "last counted message at none"; one
    who only reacted is named with the uncounted event; one who wrote gets the time and the window's end."""
    never = facts_at(rulebook, T0).text("window_history")
    assert "never written" in never and "none" not in never
    reacted = facts_at(rulebook, T0 + timedelta(hours=1), [Message("inbound", T0, "reaction")]).text("window_history")
    assert "reaction" in reacted and "none" not in reacted
    wrote = facts_at(rulebook, T0 + timedelta(hours=30), [Message("inbound", T0, "text")]).text("window_history")
    assert wrote == (f"the user's last counted message was at {T0.isoformat()}, and its window ended at "
                     f"{(T0 + timedelta(hours=24)).isoformat()}")


def test_a_replayed_send_has_no_texts(rulebook):
    """display=False (replay classifying a past send) writes no text and changes no engine fact."""
    state = new_state(rulebook)
    send = Send(T0, TO, "text")
    quiet = derive_facts(send, state, {}, rulebook, display=False)
    assert quiet.display == {} and quiet.engine == derive_facts(send, state, {}, rulebook).engine


def test_texts_are_the_words_a_sentence_shows(rulebook):
    """Facts.texts gives a fact's value in words ("yes"/"no", numbers as digits) and each display text as
    `text` and `display` give it, before and after the display texts are all written; KeyError for another name."""
    facts = facts_at(rulebook, T0 + timedelta(hours=2), [Message("inbound", T0, "text")])
    names = ("csw_open", "seconds_until_csw_close", "send_type", "csw_expires_at", "recipient", "messaging_limit",
             "conversations_this_month")
    words = facts.texts(names)
    assert words["csw_open"] == "yes" and words["seconds_until_csw_close"] == str(22 * 3600)
    assert words["send_type"] == "text" and words["conversations_this_month"] == "0"  # the fact, not its display
    assert all(words[name] == facts.text(name) for name in ("csw_expires_at", "recipient", "messaging_limit"))
    assert words["csw_expires_at"] == (T0 + timedelta(hours=24)).isoformat()
    assert facts.display and facts.texts(names) == words
    with pytest.raises(KeyError):
        facts.texts(("no_such_name",))


@settings(max_examples=150, deadline=None)
@given(order=st.permutations(sorted({*FACT_TYPES, *DISPLAY_VALUES})), size=st.integers(1, 12),
       given_context=st.booleans())
def test_text_maker_writes_the_words_texts_writes(rulebook, order, size, given_context):
    """text_maker(names), compiled once per tuple of names (a decision's sentences read it), gives for facts made
    by derive_facts the words Facts.texts gives, in the names' order: any facts, display texts and counters, the
    context given or not, before and after the display is written; KeyError for another name."""
    context = {"conversations_this_month": 3, "waba_timezone": "America/Sao_Paulo", "messaging_limit": 1000} \
        if given_context else {}
    inbound = [Message("inbound", T0, "text"), Message("inbound", T0 + timedelta(hours=1), "reaction")]
    names = tuple(order[:size])
    made = text_maker(names)
    assert text_maker(names) is made
    # The send in UTC as its history, and in another offset (its times are shown converted to the send's offset).
    for at in (T0 + timedelta(hours=2), (T0 + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5, minutes=30)))):
        facts = facts_at(rulebook, at, inbound, context, "template", Template("order_update", "en", "utility"))
        assert made(facts) == tuple(facts.texts(names).values())
        assert facts.display and made(facts) == tuple(facts.texts(names).values())
    with pytest.raises(KeyError):
        text_maker((*names, "no_such_name"))(facts_at(rulebook, T0))


_ZONES = st.one_of(st.none(), st.just(UTC), st.just(ZoneInfo("America/Sao_Paulo")),
                   st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                                    max_value=timedelta(hours=23, minutes=59))))


@given(moment=st.datetimes(timezones=_ZONES))
def test_iso_time_writes_what_isoformat_writes(moment):
    """Every time, naive or with any offset (seconds and microseconds in it too), reads as isoformat writes it; so
    does another time of the same day, written from the day's text iso_time remembered."""
    assert iso_time(moment) == moment.isoformat() == iso_time(moment)
    later = moment.replace(hour=(moment.hour + 7) % 24, minute=(moment.minute + 13) % 60)
    assert iso_time(later) == later.isoformat()


def test_a_recipients_facts_are_its_contacts():
    """facts._recipient_facts (cached per recipient text) gives the region, calling code and BSUID kind that
    recipient_contact gives, for a phone number, a +1 number, a BSUID, a group id and a masked number."""
    from policy_service.core.facts import _recipient_facts
    from policy_service.core.identities import recipient_contact

    for to in ("+5511987654321", "+14155550123", "US.13491208655302741918", "120363025246125486@g.us",
               "+55119876*****"):
        contact = recipient_contact(to)
        assert _recipient_facts(to) == (contact.region, contact.calling_code, contact.is_bsuid)


def test_facts_compare_by_what_the_rules_see_and_a_copy_writes_its_texts_anew(rulebook):
    """Facts (a msgspec Struct) are equal when at, day, engine, defaults, expiries and periods are, whatever their
    display inputs and sources (as the frozen dataclass they were compared); they are unhashable (a dict field)
    and immutable; `display` is written once, and records.replace makes a copy that writes its own."""
    from policy_service.core.facts import Facts
    from policy_service.core.records import replace

    send = Send(at=T0, to="+14155550100", type="text")
    facts = derive_facts(send, new_state(rulebook), {}, rulebook)
    quiet = derive_facts(send, new_state(rulebook), {}, rulebook, display=False, sources={"opted_in": "stored"})
    assert type(facts) is Facts and facts == quiet and not facts != quiet and facts.sources != quiet.sources
    assert facts != replace(facts, defaults=facts.defaults | {"other"}) and facts != "facts"
    assert facts != replace(facts, engine={**facts.engine, "csw_open": True})
    with pytest.raises(TypeError):
        hash(facts)
    with pytest.raises(AttributeError):
        facts.day = T0.date()  # type: ignore[misc]
    assert facts.display is facts.display and facts.display["send_at"] == iso_time(T0)
    copy = replace(facts, at=T0 + timedelta(hours=1))
    assert "display" not in copy.__dict__ and copy.display is not facts.display and copy.display == facts.display
    assert quiet.display == {}


def test_a_call_counts_for_the_window_only_from_the_rulebooks_start(rulebook):
    """A call opens the window only from window_inbound_types_counted_from's day (CSW-8.call's start, 00:00 UTC):
    a call a second before is uncounted (and flagged), one at the start opens the window."""
    start = rulebook.parameter("window_inbound_types_counted_from")["call"]
    midnight = datetime(start.year, start.month, start.day, tzinfo=UTC)
    before = facts_at(rulebook, midnight + timedelta(hours=1), [Message("inbound", midnight - timedelta(seconds=1),
                                                                        "call")])
    assert before.engine["csw_open"] is False
    assert before.engine["uncounted_inbound_in_window"] is True
    on = facts_at(rulebook, midnight + timedelta(hours=1), [Message("inbound", midnight, "call")])
    assert on.engine["csw_open"] is True
    assert on.engine["last_inbound_type"] == "call"


def test_a_scheduled_ban_is_reached_from_its_time_on(rulebook):
    """account_ban_scheduled_at (context) makes account_ban_scheduled true, and account_ban_date_reached true from
    that instant on (a second before it false); the display names the time. Without it both are false."""
    ban = T0 + timedelta(hours=5)
    for at, reached in ((ban - timedelta(seconds=1), False), (ban, True)):
        facts = facts_at(rulebook, at, [], context={"account_ban_scheduled_at": ban})
        assert facts.engine["account_ban_scheduled"] is True and facts.engine["account_ban_date_reached"] is reached
        assert facts.display["account_ban_scheduled_at"] == ban.isoformat()
    plain = facts_at(rulebook, ban, [])
    assert plain.engine["account_ban_scheduled"] is False and plain.engine["account_ban_date_reached"] is False
