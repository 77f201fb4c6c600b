"""The spine: history order does not matter, failed sends open nothing, internal errors fail closed."""

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from policy_service.core.decision import Charge
from policy_service.core.evaluate import evaluate, marketing_delivered_recently, replay, times_in_order
from policy_service.core.messages import DecisionRequest, Message, Send, Template
from policy_service.core.window import window_openers

T0 = datetime(2024, 3, 5, 8, tzinfo=UTC)
MARKETING = Template("promo", "en", "marketing")


def request(history, at=T0 + timedelta(hours=5), send_type="text"):
    """A free-form send to a Brazilian number after the given history."""
    return DecisionRequest(Send(at, "+5511987654321", send_type), tuple(history))


def test_history_order_does_not_matter(rulebook, engine):
    """The same history shuffled gives the same decision, charge and trace."""
    history = [Message("outbound", T0, "template", MARKETING), Message("inbound", T0 + timedelta(hours=4), "text"),
               Message("outbound", T0 + timedelta(hours=4, minutes=30), "text")]
    first = evaluate(request(history), rulebook=rulebook, engine=engine)
    for seed in range(5):
        shuffled = history[:]
        random.Random(seed).shuffle(shuffled)
        again = evaluate(request(shuffled), rulebook=rulebook, engine=engine)
        assert (again.decision, again.charge, [r.rule for r in again.trace]) == (
            first.decision, first.charge, [r.rule for r in first.trace])


def test_failed_outbound_messages_open_nothing(rulebook, engine):
    """A template that failed to deliver opened no conversation, so a later free-form message opens service."""
    history = [Message("outbound", T0, "template", MARKETING, status="failed"),
               Message("inbound", T0 + timedelta(hours=4), "text")]
    decision = evaluate(request(history), rulebook=rulebook, engine=engine)
    assert decision.charge.category == "service" and decision.charge.opens_conversation


def test_replay_records_which_message_opened_each_conversation(rulebook, engine):
    """Past sends are classified by the same rules; each period names the history index that opened it."""
    history = [Message("inbound", T0 + timedelta(hours=4), "text"), Message("outbound", T0, "template", MARKETING)]
    state = replay(request(history), rulebook, engine)
    (period,) = state.ledger.periods
    assert (period.category, period.opened_by, period.rule) == ("marketing", 1, "CBP-3.opens")


def test_events_after_the_send_are_ignored(rulebook, engine):
    """A message later than the proposed send cannot change its decision."""
    later = [Message("inbound", T0 + timedelta(hours=6), "text")]
    decision = evaluate(request(later), rulebook=rulebook, engine=engine)
    assert decision.decision == "deny"


def test_internal_errors_fail_closed(rulebook, engine, monkeypatch):
    """A bug anywhere in evaluation gives deny with status error, never an exception or an allow."""
    import policy_service.core.evaluate as spine

    def broken(*_args, **_kwargs):
        raise KeyError("bug")

    monkeypatch.setattr(spine, "derive_facts", broken)
    decision = evaluate(request([]), rulebook=rulebook, engine=engine)
    assert (decision.decision, decision.status) == ("deny", "error")


def test_a_riding_send_names_the_message_that_opened_its_conversation(rulebook, engine):
    """The trace of a send riding a conversation says which earlier history entry opened it, and when."""
    history = [Message("outbound", T0, "template", MARKETING), Message("inbound", T0 + timedelta(hours=4), "text")]
    decision = evaluate(request(history), rulebook=rulebook, engine=engine)
    reason = next(r for r in decision.trace if r.rule == "CBP-4.rides")
    assert f"opened by the message delivered at {T0.isoformat()} (history[0])" in reason.because


def test_a_message_only_sent_opens_nothing_and_is_reported_undelivered(rulebook, engine):
    """A template with status `sent` opened no conversation: the next template opens one, and TS-1.undelivered
    names the message; once delivered (same times) it would have opened one that the send rides."""
    sent = Message("outbound", T0, "template", MARKETING, status="sent")
    decision = evaluate(DecisionRequest(Send(T0 + timedelta(hours=4), "+5511987654321", "template", MARKETING),
                                        (sent,)), rulebook=rulebook, engine=engine)
    assert decision.charge.opens_conversation and decision.charge.billable
    assert "history[0]" in next(r for r in decision.trace if r.rule == "TS-1.undelivered").because
    delivered = DecisionRequest(Send(T0 + timedelta(hours=4), "+5511987654321", "template", MARKETING),
                                (Message("outbound", T0, "template", MARKETING, status="delivered"),))
    assert not evaluate(delivered, rulebook=rulebook, engine=engine).charge.billable


def test_replay_dates_a_message_by_its_delivery(rulebook, engine):
    """Delivered ten hours after sending, a marketing template's conversation runs 24 h from delivery."""
    late = Message("outbound", T0, "template", MARKETING, status="read", delivered_at=T0 + timedelta(hours=10))
    state = replay(DecisionRequest(Send(T0 + timedelta(hours=30), "+5511987654321", "template", MARKETING), (late,)),
                   rulebook, engine)
    (period,) = state.ledger.periods
    assert (period.opened_at, period.expires_at) == (T0 + timedelta(hours=10), T0 + timedelta(hours=34))


def test_undelivered_before_skips_failed_delivered_and_expired_messages():
    """Only a message sent before the send, not failed, not delivered by then and within the lifetime counts."""
    from policy_service.core.evaluate import times_in_order, undelivered_before

    at, lifetime = T0 + timedelta(days=2), timedelta(days=30)
    history = (Message("outbound", T0 - timedelta(days=31), "text", status="sent"),  # beyond the lifetime
               Message("outbound", T0, "text", status="failed"),
               Message("outbound", T0, "text", status="delivered"),
               Message("outbound", T0 + timedelta(hours=1), "text", status="deleted"),
               Message("outbound", T0 + timedelta(hours=2), "text", status="read",
                       delivered_at=at + timedelta(minutes=1)),  # delivered only after the send
               Message("outbound", at + timedelta(hours=1), "text", status="sent"))  # after the send
    assert undelivered_before(history, at, lambda _: lifetime) == (4, history[4])
    assert undelivered_before(history[:3], at, lambda _: lifetime) is None
    # Bounded by the times (a history in order is bisected): the same answers.
    for part in (history, history[:3]):
        assert undelivered_before(part, at, lambda _: lifetime, times=times_in_order(part), longest=lifetime) == \
            undelivered_before(part, at, lambda _: lifetime)


def test_a_template_living_past_the_default_is_still_found_in_a_history_in_order(rulebook):
    """replay bounds its look for a pending message by the longest time-to-live: a template's own (45 days)
    counts, not only the rulebook's defaults (30 days)."""
    long_lived = Template("order", "en", "utility", ttl_seconds=45 * 86400)
    send_at = T0 + timedelta(days=40)
    history = (Message("outbound", T0, "template", long_lived, status="sent"),
               Message("inbound", send_at - timedelta(days=1), "text"))
    from .test_replay_equivalence import every_history_bisected

    with every_history_bisected():
        state = replay(DecisionRequest(Send(send_at, "+5511987654321", "text"), history), rulebook, None)
    assert times_in_order(history) is not None and state.undelivered == (0, history[0])
    assert state.undelivered_until == T0 + timedelta(days=45)


def test_each_message_is_pending_only_within_its_own_time_to_live(rulebook):
    """Meta's time-to-live page: an authentication template is retried 10 minutes by default, other templates
    30 days, and a template's own message_send_ttl_seconds (-1: 30 days) replaces its category's default."""
    from policy_service.core.evaluate import delivery_lifetimes

    lifetime_of = delivery_lifetimes(rulebook)
    auth, utility = Template("otp", "en", "authentication"), Template("order", "en", "utility")
    assert lifetime_of(Message("outbound", T0, "template", auth)) == timedelta(minutes=10)
    assert lifetime_of(Message("outbound", T0, "template", utility)) == timedelta(days=30)
    assert lifetime_of(Message("outbound", T0, "text")) == timedelta(days=30)
    assert lifetime_of(Message("outbound", T0, "template", replace(utility, ttl_seconds=3600))) == timedelta(hours=1)
    assert lifetime_of(Message("outbound", T0, "template", replace(auth, ttl_seconds=-1))) == timedelta(days=30)


def test_decision_ids_are_distinct_version_4_uuids():
    """new_decision_id gives what uuid.uuid4().hex gives: 32 hex digits, version 4, RFC 4122 variant, no repeats."""
    import uuid

    from policy_service.core.evaluate import new_decision_id

    ids = [new_decision_id() for _ in range(2_000)]
    assert len(set(ids)) == len(ids)
    for value in ids:
        parsed = uuid.UUID(value)
        assert parsed.hex == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_worker_never_reuses_its_parents_decision_ids():
    """The ids are drawn from a pool of random numbers; a child process (a gunicorn worker) starts with none."""
    import os

    from policy_service.core.evaluate import new_decision_id

    new_decision_id()  # the pool now holds numbers the parent will use next
    read, write = os.pipe()
    child = os.fork()
    if child == 0:
        os.write(write, new_decision_id().encode())
        os._exit(0)
    os.waitpid(child, 0)
    assert os.read(read, 64).decode() != new_decision_id()


def test_remembered_prices_follow_the_rate_book_and_the_context_given(rulebook, engine):
    """Prices are remembered per rate book object (not its version: service.pricing builds books that share
    one) and per pricing context as given, so a remembered price never stands in for a different one."""
    from policy_service.core.rates import RateBook

    send = Send(datetime(2026, 6, 1, 15, tzinfo=UTC), "+5511987654321", "template", MARKETING)

    def price_reason(context, book=rulebook):
        decision = evaluate(DecisionRequest(send, (), context), rulebook=book, engine=engine)
        return decision.charge.price, decision.trace[-1].because, decision.trace[-1].defaults

    priced, because, defaults = price_reason({})
    assert priced is not None and price_reason({}) == (priced, because, defaults) and "currency" in defaults
    assert "currency" not in price_reason({"currency": "USD"})[2]  # given, not defaulted
    bid = price_reason({"marketing_max_price": "0.5"})[1]
    assert "bid of 0.5 USD" in bid and "bid of 0.50 USD" in price_reason({"marketing_max_price": "0.50"})[1]
    empty = replace(rulebook, rates=RateBook(version=rulebook.rates.version))
    assert price_reason({}, empty)[0] is None and price_reason({})[0] == priced


def test_a_remembered_group_price_is_the_price_of_those_participants(rulebook, engine):
    """A group send's price (a line per participant, at each one's market) is remembered per participants."""
    at = datetime(2026, 6, 1, 15, tzinfo=UTC)

    def lines(participants):
        send = Send(at, "Y2FwaV9ncm91cDpHUk9VUDE", "template", MARKETING, recipient_type="group",
                    participants=participants)
        decision = evaluate(DecisionRequest(send), rulebook=rulebook, engine=engine)
        return [(line.participant, line.country) for line in decision.charge.price_lines]

    brazil, germany = ("+5511976540001", "+5511976540002"), ("+4915112345678",)
    assert lines(brazil) == [(number, "BR") for number in brazil]
    assert lines(brazil + germany) == [*lines(brazil), ("+4915112345678", "DE")]
    # More than Meta's eight (the rules deny such a send): priced each time, never remembered.
    from policy_service.core import evaluate as evaluation

    many = tuple(f"+55119765400{n:02d}" for n in range(10))
    charge = Charge(True, "PMP", "group_marketing", "regular", False, None, participants=len(many))
    price, _ = evaluation._price(charge, at.date(), "ZZ", many, {}, rulebook.rates)
    assert [line.participant for line in price.lines] == list(many)
    assert all(many not in key for memo in evaluation._PRICES.values() for key in memo[1])


def test_a_marketing_template_after_a_call_counts_unless_the_call_opened_a_window(rulebook):
    """marketing_delivered_recently counts a marketing template delivered outside a window the user opened: an
    hour after a call made before window_inbound_types_counted_from's day (CSW-8) it counts, since that call
    opened nothing; an hour after a call from that day on it does not."""
    start = window_openers(rulebook).counted_from["call"]
    marketing = Template("promo", "en", "marketing", "APPROVED")
    for called, counted in ((start - timedelta(minutes=30), 1), (start, 0)):
        history = (Message("inbound", called, "call"),
                   Message("outbound", called + timedelta(hours=1), "template", marketing, status="delivered"))
        assert marketing_delivered_recently(history, called + timedelta(days=2), rulebook) == counted
