"""Forecasts: lines priced by the card in force, tiers marginal from the month's volume, unpriced lines kept apart."""

from datetime import date
from decimal import Decimal

from policy_service.core.forecast import (
    CUSTOMER_SERVICE_WINDOW,
    FREE_ENTRY_POINT,
    OUTSIDE_WINDOWS,
    Answers,
    Free,
    Line,
    RuledCharge,
    forecast,
)
from policy_service.core.rates import load_ratebook

from ..conftest import RULES_DIR

BOOK = load_ratebook(RULES_DIR / "rates")
NOV = date(2026, 11, 10)


def test_done_when_brazil_campaign_in_brl():
    """Issue 23: 10,000 marketing and 5,000 utility templates to Brazil on 2026-11-10 in BRL: 3217 + 175 = 3392."""
    result = forecast([("BR", "marketing", 10_000), ("BR", "utility", 5_000)], day=NOV, currency="BRL", rates=BOOK)
    assert [line.amount for line in result.lines] == [Decimal("3217"), Decimal("175")]
    assert result.total == Decimal("3392") and not result.unpriced
    assert result.lines[1].segments[0].tier_number == 1


def test_tiers_continue_from_the_stored_volume_and_across_lines():
    """249,000 delivered already: the next 5,000 Brazil utility are 1,000 at tier 1 and 4,000 at tier 2; a second
    Brazil utility line continues from there."""
    result = forecast([("BR", "utility", 5_000), ("BR", "utility", 10)], day=NOV, currency="BRL", rates=BOOK,
                      volumes={("Brazil", "utility"): 249_000})
    first, second = result.lines
    assert [(s.tier_number, s.count, s.rate) for s in first.segments] == [(1, 1_000, Decimal("0.035")),
                                                                           (2, 4_000, Decimal("0.0333"))]
    assert first.amount == Decimal("35") + Decimal("133.2")
    assert (second.volume_before, second.segments[0].first) == (254_000, 254_001)


def test_unpriced_lines_are_listed_with_the_reason_and_left_out_of_the_total():
    """A market the partial card lacks, and INR volume beyond the first message without sourced tiers."""
    result = forecast([("BR", "marketing", 2), ("GB", "marketing", 5)], day=NOV, currency="BRL", rates=BOOK)
    assert result.total == Decimal("0.6434") and [line.index for line in result.unpriced] == [1]
    assert "no rate for market United Kingdom" in result.unpriced[0].reason
    india = forecast([("IN", "utility", 3)], day=date(2026, 2, 10), currency="INR", rates=BOOK)
    assert india.total == 0 and "at most 0.3450 INR" in india.unpriced[0].reason


def test_answers_find_where_the_rules_start_charging_in_few_questions():
    """Whatever threshold the rules hold (here 1,000, then 7), the free messages are counted exactly, asking about
    2·log2(count) times, not once per message; all free, none free and no charge at all are said as such."""
    asked = []

    def rules(threshold):
        def charge_of(n):
            asked.append(n)
            return RuledCharge(False, "free", f"{n} so far") if n < threshold else RuledCharge(True, "paid", "")
        return charge_of

    assert Answers(rules(1000)).free(0, 1_000_000) == Free(1000, "free", "0 so far", "paid")
    assert len(asked) < 45
    assert Answers(rules(7)).free(3, 10) == Free(4, "free", "3 so far", "paid")
    assert Answers(rules(7)).free(7, 10) == Free(0, "paid", "", "paid")
    assert Answers(rules(7)).free(0, 5) == Free(5, "free", "0 so far")
    assert Answers(lambda n: None).free(0, 5) is None


def test_answers_ask_each_count_once_and_name_the_first_messages_own_count():
    """One Answers serves lines that continue one count: what is known (free at 999, charged at 1000) is read off,
    not searched again, yet the sentence of a line's first message is the rules' own for its count (600), never the
    one of a neighbouring count."""
    asked = []

    def charge_of(n):
        asked.append(n)
        return RuledCharge(n >= 1000, "paid" if n >= 1000 else "free", f"{n} so far")

    answers = Answers(charge_of)
    assert answers.free(0, 600) == Free(600, "free", "0 so far")
    assert answers.free(600, 600) == Free(400, "free", "600 so far", "paid")
    assert len(asked) == len(set(asked)) == answers.questions
    before = answers.questions
    assert answers.free(0, 1100) == Free(1000, "free", "0 so far", "paid")
    assert answers.questions == before + 1  # the last message's own answer; the boundary is known


def test_an_allowance_line_continues_one_count_and_prices_only_the_charged():
    """Service lines share the month's count (per number, not per market); a wholly free line costs 0."""
    def charge_of(country, category, window, n):
        return RuledCharge(n >= 1000, "charged" if n >= 1000 else "allowance", "")

    result = forecast([("BR", "service", 600), ("BR", "service", 600)], day=NOV, currency="BRL", rates=BOOK,
                      allowance=("service",), charge_of=charge_of)
    assert [(line.free.count, line.amount) for line in result.lines] == [(600, 0), (400, Decimal("7.000"))]


def test_free_entry_point_messages_are_asked_in_their_window_and_counted_first():
    """A line's free entry point messages are decided in that window (free whatever the count, here) and come first
    in the month's count when the rules give them a counted category, so 1,000 used before leaves all 1,500 window
    messages charged (52.5 BRL, not 70); given an uncounted category they leave the allowance to the others."""
    def charge_of(category):
        def ask(country, line_category, window, n):
            if window == FREE_ENTRY_POINT:
                return RuledCharge(False, "entry", "in the window", category)
            return RuledCharge(n >= 1000, "charged" if n >= 1000 else "allowance", f"{n} so far", "service")
        return ask

    counted = forecast([Line("BR", "service", 2000, 500)], day=NOV, currency="BRL", rates=BOOK,
                       allowance=("service",), charge_of=charge_of("service"), allowance_before=1000)
    (line,) = counted.lines
    assert (line.free.count, line.amount, line.free_entry_point) == (500, Decimal("52.500"), 500)
    assert [(run.window, run.messages, run.count, run.rule) for run in line.free.runs] == [
        (FREE_ENTRY_POINT, 500, 500, "entry"), (CUSTOMER_SERVICE_WINDOW, 1500, 0, "charged")]
    early = forecast([Line("BR", "service", 1000, 600)], day=NOV, currency="BRL", rates=BOOK,
                     allowance=("service",), charge_of=charge_of("service"))
    assert early.lines[0].free.count == 1000  # 600 in the window, then 400 of the allowance's 1,000 left
    apart = forecast([Line("BR", "service", 2000, 600), Line("BR", "service", 1)], day=NOV, currency="BRL",
                     rates=BOOK, allowance=("service",), charge_of=charge_of("other"))
    assert [line.free.count for line in apart.lines] == [1600, 0]  # 600 + 1,000; the next line's count is 1,400


def test_a_template_line_is_asked_window_by_window_and_only_the_charged_priced():
    """A windowed (template) line's messages are asked of the rules in the window each is sent in (free entry point,
    customer service window, outside both); only the charged ones are priced and count toward the volume tiers
    (2,000 of 5,000 free: 3,000 Brazil utility at tier 1, 105.000 BRL); a run outside both windows the rules charge
    in full is priced as charged without a `free` entry."""
    asked = []

    def charge_of(country, category, window, n):
        asked.append((category, window))
        if window == FREE_ENTRY_POINT:
            return RuledCharge(False, "entry", "in the window", category)
        return RuledCharge(True, "charged", "", category)

    result = forecast([Line("BR", "utility", 5000, 2000), Line("BR", "marketing", 1)], day=NOV, currency="BRL",
                      rates=BOOK, windowed=("marketing", "utility"), charge_of=charge_of)
    utility, marketing = result.lines
    assert (utility.free.count, utility.amount, utility.segments[0].last) == (2000, Decimal("105.000"), 3000)
    assert [(run.window, run.messages) for run in utility.free.runs] == [(FREE_ENTRY_POINT, 2000)]
    assert marketing.free is None and marketing.amount == Decimal("0.3217")
    assert set(asked) == {("utility", FREE_ENTRY_POINT), ("utility", OUTSIDE_WINDOWS), ("marketing", OUTSIDE_WINDOWS)}


def test_customer_service_window_messages_of_a_template_line_are_decided_in_that_window():
    """Template lines had no way to say "sent inside an open customer service window", so a utility template free
    there (PMP-3, until 2026-09-30) was priced as charged: a line's customer_service_window messages are now asked in
    that window and those the rules leave free cost nothing (3,000 of 5,000: 2,000 x 0.035 = 70.000 BRL)."""
    def charge_of(country, category, window, n):
        return RuledCharge(window != CUSTOMER_SERVICE_WINDOW, "window" if window == CUSTOMER_SERVICE_WINDOW else
                           "charged", "", category)

    (line,) = forecast([Line("BR", "utility", 5000, 0, 3000)], day=NOV, currency="BRL", rates=BOOK,
                       windowed=("utility",), charge_of=charge_of).lines
    assert (line.amount, line.free.count, line.customer_service_window) == (Decimal("70.000"), 3000, 3000)
    assert [(run.window, run.messages, run.rule) for run in line.free.runs] == [
        (CUSTOMER_SERVICE_WINDOW, 3000, "window")]


def test_messages_the_rules_deny_are_neither_priced_nor_counted():
    """A line the rules deny in full has no amount, its reason naming the denying rule and sentence, and is left out
    of the total; a line denied in part (here its messages outside both windows) prices only the rest, and the
    denied messages take nothing from the allowance or the tiers (the next line's count starts after 400, not 1,000).
    A denied answer is never read as a free one."""
    def charge_of(country, category, window, n):
        if country == "US" or window == OUTSIDE_WINDOWS:
            return RuledCharge(False, "DENY-1", "not delivered there", denied=True)
        return RuledCharge(n >= 1000, "charged" if n >= 1000 else "allowance", f"{n} so far", category)

    result = forecast([Line("US", "marketing", 10), Line("BR", "service", 1000, 0, 400), Line("BR", "service", 700)],
                      day=NOV, currency="BRL", rates=BOOK, allowance=("service",), windowed=("marketing",),
                      charge_of=charge_of)
    us, partly, after = result.lines
    assert us.amount is None and us in result.unpriced and us.denied.count == 10
    assert us.reason == "not delivered: the rules deny every message of the line (DENY-1: not delivered there)"
    assert [(run.window, run.count) for run in us.denied.runs] == [(OUTSIDE_WINDOWS, 10)]
    assert (partly.amount, partly.free.count, partly.denied.count, partly.denied.rule) == (0, 400, 600, "DENY-1")
    assert (after.free.count, after.amount) == (600, Decimal("3.500"))  # 400 + 600 free: the allowance's 1,000
    assert result.total == Decimal("3.500")
    assert Answers(lambda n: RuledCharge(False, "DENY-1", "", denied=True)).free(0, 5) is None
