"""The timeline layout: windows from counted inbound messages, periods, the send, rows and ticks."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from policy_service.contract.schemas import DecisionRequestSchema
from policy_service.core import timeline
from policy_service.core.conversations import Period
from policy_service.core.messages import Message, Template
from policy_service.review.fixtures import discover, run_fixture

from ..conftest import FIXTURES_DIR

UTC = UTC
T0 = datetime(2025, 9, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


def inbound(at, kind="text"):
    return Message("inbound", at, kind)


def load(name):
    (fixture,) = [f for f in discover([FIXTURES_DIR]) if f.name == name]
    return DecisionRequestSchema().load(fixture.request)


def test_each_counted_inbound_opens_a_window_of_the_given_length():
    """Every counted inbound opens [t, t + window); the window length is the one passed in."""
    shown = timeline.build([inbound(T0), inbound(T0 + timedelta(hours=3))], T0 + timedelta(hours=5), [],
                           window=timedelta(hours=7), ignored_types=())
    windows = shown.lanes[1].segments
    assert [(w.start, w.end) for w in windows] == [(T0, T0 + timedelta(hours=7)),
                                                   (T0 + timedelta(hours=3), T0 + timedelta(hours=10))]
    assert all(w.covers_send for w in windows)
    assert [w.row for w in windows] == [0, 1]
    assert shown.window == "7 h"


def test_ignored_inbound_types_open_no_window_but_still_show():
    """A reaction appears among the messages, says it opens no window, and draws no window."""
    shown = timeline.build([inbound(T0, "reaction")], T0 + timedelta(hours=1), [], window=DAY,
                           ignored_types=("reaction",))
    (mark,) = shown.lanes[0].marks
    assert "does not open the window" in mark.title
    assert shown.lanes[1].segments == ()


def test_window_is_half_open_at_the_send():
    """A send at exactly t + window is outside the window it drew."""
    shown = timeline.build([inbound(T0)], T0 + DAY, [], window=DAY, ignored_types=())
    (window,) = shown.segments
    assert not window.covers_send
    assert window.label == "window 2025-09-01 09:00 → 2025-09-02 09:00"
    assert shown.send.label == "send 2025-09-02 09:00"


def test_periods_are_labelled_and_the_one_opened_by_the_send_is_marked():
    """A period from history covers the send; the send's own period is marked as would-open, not open."""
    old = Period("free_entry_point_window", "service", "PMP", T0, T0 + 3 * DAY, 0, "FEP-2.opens")
    new = Period("conversation", "marketing", "CBP", T0 + DAY, T0 + 2 * DAY, 1, "CBP-2.opens")
    shown = timeline.build([inbound(T0)], T0 + DAY, [old], window=DAY, ignored_types=(), send_opens=[new])
    first, second = shown.lanes[2].segments
    assert first.covers_send and not first.by_send
    assert first.label == "free entry point window 2025-09-01 09:00 → 2025-09-04 09:00"  # no pricing id in words
    assert second.by_send and not second.covers_send
    assert "would open with the send" in second.title


def test_labels_near_the_right_edge_end_inside_the_drawing():
    """A message and the send at the very end are labelled leftwards, so no label runs off the SVG."""
    shown = timeline.build([inbound(T0), inbound(T0 + DAY, "reaction")], T0 + DAY, [], window=DAY,
                           ignored_types=("reaction",))
    first, last = shown.lanes[0].marks
    assert (first.anchor, last.anchor, shown.send.anchor) == ("start", "end", "end")
    assert last.label == "in reaction 2025-09-02 09:00" and not last.opens_window
    assert all(m.label_x <= timeline.WIDTH for m in (first, last, shown.send))


def test_overlapping_bars_and_labels_take_separate_rows():
    """Two periods whose bars or labels would overlap are drawn on different rows."""
    periods = [Period("conversation", c, "CBP", T0 + timedelta(minutes=i), T0 + DAY, i, "R") for i, c in
               enumerate(("utility", "marketing", "service"))]
    shown = timeline.build([], T0 + timedelta(hours=1), periods, window=DAY, ignored_types=())
    assert sorted(s.row for s in shown.lanes[2].segments) == [0, 1, 2]
    assert shown.lanes[2].rows == 3


def test_from_request_shows_a_conversation_the_send_would_close_as_open_at_the_send(rulebook, engine):
    """In 15a the utility conversation is open at the send, which would close it by opening a free one."""
    shown = timeline.from_request(load("15a_reply_to_an_ad_opens_a_free_entry_point_conversation_and_closes_utility"),
                                  rulebook, engine, delivered=True)
    utility, free = shown.lanes[2].segments
    assert utility.covers_send and utility.closed_by_send
    assert "the send would close it at 2024-05-01 22:00" in utility.title
    assert free.by_send and free.kind == "free_entry_point_conversation"


def test_a_long_history_keeps_each_lane_to_a_few_rows():
    """Forty inbound messages an hour apart draw forty windows: labelled rows, then one unlabelled row."""
    messages = [inbound(T0 + timedelta(hours=i)) for i in range(40)]
    shown = timeline.build(messages, T0 + timedelta(hours=41), [], window=DAY, ignored_types=())
    assert len(shown.lanes[0].marks) == 40 and len(shown.lanes[1].segments) == 40
    assert shown.lanes[0].rows == shown.lanes[1].rows == timeline.MAX_ROWS + 1
    unlabelled = [s for s in shown.lanes[1].segments if not s.label]
    # Without room for a label, a bar goes where its bar alone fits, else on the shared overflow row.
    assert unlabelled and all(s.row <= timeline.MAX_ROWS and "open from" in s.title for s in unlabelled)
    assert all(s.row < timeline.MAX_ROWS for s in shown.lanes[1].segments if s.label)


def test_positions_stay_inside_the_drawing_and_ticks_are_in_order():
    """Every x lies between the lane titles and the right edge; ticks increase and use the send's offset."""
    plus_two = timezone(timedelta(hours=2))
    send = (T0 + timedelta(hours=30)).astimezone(plus_two)
    out = Message("outbound", T0 + timedelta(hours=1), "template", Template("n", "en", "utility"))
    shown = timeline.build([inbound(T0), out], send, [], window=DAY, ignored_types=())
    xs = [shown.send.x, *(m.x for m in shown.lanes[0].marks), *(s.x + s.width for s in shown.segments)]
    assert all(timeline.GUTTER <= x <= timeline.WIDTH for x in xs)
    assert [t.x for t in shown.ticks] == sorted(t.x for t in shown.ticks) and len(shown.ticks) >= 3
    assert shown.zone == "UTC+02:00"
    assert shown.send.shown_at == "2025-09-02 17:00"


def test_from_request_replays_fixture_15b_with_the_closed_and_the_riding_period(rulebook, engine):
    """Replaying 15b shows the utility conversation closed by the free entry point conversation the send rides."""
    shown = timeline.from_request(load("15b_marketing_template_rides_the_free_entry_point_conversation"),
                                  rulebook, engine, delivered=True)
    utility, free = shown.lanes[2].segments
    assert (utility.name, utility.shown_end, utility.covers_send) == ("utility conversation", "2024-05-01 22:00", False)
    assert free.kind == "free_entry_point_conversation" and free.covers_send
    assert free.shown_end == "2024-05-04 22:00"
    assert [m.kind for m in shown.lanes[0].marks] == ["outbound", "inbound", "outbound"]


def test_from_request_draws_the_period_a_delivered_send_would_open(rulebook, engine):
    """Fixture 01's send opens a service conversation, drawn only when the send is delivered."""
    request = load("01_freeform_just_before_window_closes_opens_a_service_conversation")
    delivered = timeline.from_request(request, rulebook, engine, delivered=True)
    denied = timeline.from_request(request, rulebook, engine, delivered=False)
    (opened,) = delivered.lanes[2].segments
    assert opened.by_send and opened.shown_start == "2024-03-06 09:59"
    assert denied.lanes[2].segments == ()


def test_window_length_comes_from_the_rulebook(rulebook, engine):
    """Changing the customer_service_window parameter changes the drawn window."""
    params = dict(rulebook.parameters)
    params["customer_service_window"] = replace(params["customer_service_window"], value=timedelta(hours=12))
    shorter = replace(rulebook, parameters=params)
    request = load("02_freeform_at_exactly_24_hours_is_denied")
    (window,) = timeline.from_request(request, shorter, engine, delivered=False).lanes[1].segments
    assert window.end - window.start == timedelta(hours=12)


@pytest.mark.parametrize("fixture", discover([FIXTURES_DIR]), ids=lambda f: f.name)
def test_periods_open_at_the_send_match_the_decision_facts(fixture, rulebook, engine):
    """The periods the timeline draws as open at the send are exactly the decision's facts.open_periods."""
    decision = run_fixture(fixture, rulebook=rulebook, engine=engine).decision
    shown = timeline.from_request(DecisionRequestSchema().load(fixture.request), rulebook, engine,
                                  delivered=decision.decision == "allow")
    drawn = [(s.kind, s.start, s.end) for s in shown.lanes[2].segments if s.covers_send]
    assert drawn == [(p.kind, p.opened_at, p.expires_at) for p in decision.facts.periods]


def label_box(item):
    """The horizontal extent of an item's label, from its anchor and the assumed character width."""
    text = len(item.label) * timeline.CHAR
    return (item.label_x, item.label_x + text) if item.anchor == "start" else (item.label_x - text, item.label_x)


def glyph_box(item):
    bar = getattr(item, "width", None)
    return (item.x, item.x + bar) if bar is not None else (item.x - timeline.MARK, item.x + timeline.MARK)


def apart(a, b):
    return a[1] <= b[0] or b[1] <= a[0]


@pytest.mark.parametrize("layout", [timeline.WIDE, timeline.NARROW], ids=lambda layout: layout.name)
def test_no_label_overlaps_a_bar_another_label_or_the_send_line(layout, rulebook, engine):
    """In every fixture's timeline, in both layouts, each label keeps clear of the send line, stays in the
    drawing and off its lane's title and, on its row, overlaps no other label or glyph; a label
    over its own bar lies wholly inside it. (The browser test measures the drawn text as well.)"""
    labelled = drawn = 0
    for fixture in discover([FIXTURES_DIR]):
        shown = timeline.from_request(DecisionRequestSchema().load(fixture.request), rulebook, engine,
                                      delivered=True, layout=layout)
        for lane in shown.lanes:
            items = [*lane.marks, *lane.segments]
            for item in items:
                drawn += 1
                if not item.label:
                    continue
                labelled += 1
                box = label_box(item)
                assert timeline.EDGE <= box[0] and box[1] <= layout.width, (fixture.name, item.label)
                if item.row == 0 and not layout.titles_above:  # the lane title's place in the margin
                    assert box[0] >= timeline.TITLE_X + len(lane.title) * timeline.CHAR, (fixture.name, item.label)
                assert not box[0] - timeline.CLEAR <= shown.send.x <= box[1] + timeline.CLEAR, (fixture.name, item)
                own = glyph_box(item)
                assert apart(box, own) or own[0] <= box[0] and box[1] <= own[1], (fixture.name, item.label)
                for other in items:
                    if other is item or other.row != item.row:
                        continue
                    assert apart(box, glyph_box(other)), (fixture.name, item.label, other.label)
                    if other.label:
                        assert apart(box, label_box(other)), (fixture.name, item.label, other.label)
    # Most items keep a label (the wide drawing labels all 217, the narrow one 140, at the time of writing).
    assert labelled > drawn * (0.95 if layout is timeline.WIDE else 0.6)


def test_a_narrow_drawing_fits_390_px_screens_and_shortens_labels_that_do_not_fit():
    """At phone width the drawing is 360 wide, titles sit above the lanes, and a long window label loses its year."""
    shown = timeline.build([inbound(T0)], T0 + timedelta(hours=30), [], window=DAY, ignored_types=(),
                           layout=timeline.NARROW)
    (window,) = shown.segments
    assert shown.width == 360 and shown.layout == "narrow"
    assert window.label == "09-01 09:00 → 09-02 09:00"
    assert all(lane.top == lane.y + timeline.TITLE for lane in shown.lanes)
    # The send line is broken at each title strip, so no lane title lies across it.
    assert [(a, b) for a, b in shown.send_spans][1:-1] == [(lane.top, nxt.y) for lane, nxt in
                                                            zip(shown.lanes, shown.lanes[1:], strict=False)]
    assert shown.lanes[2].title == "Conversations, free entry: none"


def test_every_drawn_style_has_a_legend_key():
    """Marks and bars name the legend entries that explain them: failed sends and would-open bars included."""
    failed = Message("outbound", T0, "text", status="failed")
    new = Period("conversation", "marketing", "CBP", T0 + DAY, T0 + 2 * DAY, 1, "CBP-2.opens")
    shown = timeline.build([inbound(T0), inbound(T0, "reaction"), failed], T0 + DAY, [], window=DAY,
                           ignored_types=("reaction",), send_opens=[new])
    assert sorted(m.legend for m in shown.lanes[0].marks) == ["inbound", "inbound-uncounted", "outbound-failed"]
    assert [s.legend for s in shown.segments] == ["window", "conversation by-send"]


def test_a_type_counted_from_a_day_opens_a_window_only_from_that_day():
    """With counted_from {call: day} (the rules' window_inbound_types_counted_from), a call before the day shows
    as not opening the window and draws none; a call from the day on draws its window."""
    midnight = T0.replace(hour=0) + DAY  # the day after T0 starts (00:00 UTC)
    early, late = inbound(midnight - timedelta(hours=1), "call"), inbound(midnight + timedelta(hours=1), "call")
    shown = timeline.build([early, late], midnight + timedelta(hours=2), [], window=DAY, ignored_types=(),
                           counted_from={"call": midnight.date()})
    first, second = shown.lanes[0].marks
    assert "does not open the window" in first.title and not first.opens_window
    assert second.opens_window and "does not open" not in second.title
    assert [(w.start, w.end) for w in shown.lanes[1].segments] == [(late.at, late.at + DAY)]
