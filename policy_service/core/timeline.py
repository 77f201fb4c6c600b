"""A decision's timeline as plain data: messages, windows and periods laid out on one time axis.

The reviewer pages draw this as SVG; everything here is computed without Flask, so the layout
(which window covers the send, where each label goes) is tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from .conversations import Period
from .engine import RulesEngine
from .evaluate import ordered_history, replay
from .messages import DecisionRequest, Message
from .rulebook import Rulebook
from .window import openers_of
from .wording import category_name, period_name, show_time, zone_name

ROW = 30
LANE_GAP = 18
TITLE = 18  # room for a lane's title above its rows, in a layout that puts titles above the lanes
AXIS = 40  # room for the time axis under the lanes
# The SVG draws labels in an 11 px monospace font (style.css), whose characters are 0.6 em wide; a little
# more is assumed so a label never ends past the room it was given.
CHAR = 6.8
PAD = 4  # between a bar's edge and a label inside it
GAP = 8  # between a bar or message mark and a label beside it
MARK = 6  # half the width of a message mark
CLEAR = 4  # no label comes closer than this to the send line
STEPS = tuple(timedelta(hours=h) for h in (1, 2, 3, 6, 12, 24, 48, 168, 720))
TICK_CHARS = 11  # the longest tick label, "05-01 10:00"
MAX_ROWS = 5  # labelled rows per lane; one more holds unlabelled overflow
EDGE = 6  # no label starts closer than this to the drawing's left edge
LANE_TITLES_BY_NAME = (("messages", "Messages"), ("windows", "Customer service window"),
                       ("periods", "Conversations, free entry"))
LANE_TITLES = tuple(title for _, title in LANE_TITLES_BY_NAME)
TITLE_X = 8  # where a lane title starts


@dataclass(frozen=True)
class Layout:
    """A drawing size: its width, the margin for lane titles, and whether the titles sit above the lanes."""

    name: str
    width: int
    gutter: int
    right: int
    titles_above: bool

    @property
    def max_ticks(self) -> int:
        """As many ticks as fit without their labels touching."""
        return max(2, int((self.width - self.gutter - self.right) // (TICK_CHARS * CHAR + 12)))


# A desktop drawing with lane titles in a left margin, and a phone-width one (390 px screens) with titles above.
WIDE = Layout("wide", 960, 200, 24, titles_above=False)
NARROW = Layout("narrow", 360, 6, 6, titles_above=True)
# Module-level names the wide drawing's tests and callers have always used.
WIDTH, GUTTER = WIDE.width, WIDE.gutter


@dataclass(frozen=True)
class Mark:
    """One message (or the proposed send) at an instant."""

    kind: str  # inbound, outbound, send
    at: datetime
    shown_at: str
    label: str
    title: str
    x: float
    row: int = 0
    label_x: float = 0.0
    anchor: str = "start"
    opens_window: bool = True
    failed: bool = False
    short: str = ""  # the label without the year, tried when the full one finds no room

    @property
    def legend(self) -> str:
        """The legend entry that explains how this mark is drawn."""
        if self.kind == "inbound":
            return "inbound" if self.opens_window else "inbound-uncounted"
        return "outbound-failed" if self.failed else self.kind


@dataclass(frozen=True)
class Segment:
    """A customer service window, a conversation or a free entry point window: [start, end)."""

    kind: str
    name: str
    shown_start: str
    shown_end: str
    label: str
    title: str
    start: datetime
    end: datetime
    x: float
    width: float
    row: int
    covers_send: bool
    by_send: bool = False
    closed_by_send: bool = False
    rule: str = ""
    label_x: float = 0.0
    anchor: str = "start"
    short: str = ""

    @property
    def legend(self) -> str:
        """The legend entries that explain how this bar is drawn: its kind, then what it is at the send."""
        base = {"customer_service_window": "window", "conversation": "conversation"}.get(self.kind,
                                                                                         "free-entry-point")
        return " ".join([base, *(["covers-send"] if self.covers_send else []), *(["by-send"] if self.by_send else [])])


@dataclass(frozen=True)
class Lane:
    """A horizontal band of the timeline with its own rows (and, in a narrow layout, its title above them)."""

    name: str
    title: str
    y: float
    rows: int
    marks: tuple[Mark, ...] = ()
    segments: tuple[Segment, ...] = ()
    top: float = 0.0  # where the first row starts

    @property
    def height(self) -> float:
        """The lane's height in SVG units, its title included."""
        return self.top - self.y + self.rows * ROW


@dataclass(frozen=True)
class Tick:
    """A labelled time on the axis."""

    x: float
    label: str


@dataclass(frozen=True)
class Timeline:
    """Everything the SVG shows, in SVG coordinates, with the times in the send's UTC offset."""

    lanes: tuple[Lane, ...]
    send: Mark
    ticks: tuple[Tick, ...]
    width: int
    height: float
    zone: str
    window: str
    row: int = ROW
    gutter: int = WIDE.gutter
    layout: str = WIDE.name
    # The send line's vertical pieces: it stops where a lane title above the lanes would cross it.
    send_spans: tuple[tuple[float, float], ...] = ()

    @property
    def segments(self) -> tuple[Segment, ...]:
        """Every window and period, lane by lane."""
        return tuple(s for lane in self.lanes for s in lane.segments)

    @property
    def axis_y(self) -> float:
        """The y of the time axis, under the lanes."""
        return self.height - AXIS


def from_request(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine, *, delivered: bool,
                 layout: Layout = WIDE) -> Timeline:
    """The timeline of a request, replaying its history (and the send itself when it is delivered)."""
    return layouts_of(request, rulebook, engine, delivered=delivered, layouts=(layout,))[0]


def layouts_of(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine, *, delivered: bool,
               layouts: Sequence[Layout] = (WIDE, NARROW)) -> tuple[Timeline, ...]:
    """The same timeline drawn in each layout, replaying the history once."""
    periods = replay(request, rulebook, engine).ledger.periods
    opens: list[Period] = []
    closes: set[int] = set()
    if delivered:
        with_send = replay(replace(request, history=request.history + (request.send.as_message(),)), rulebook, engine)
        after = with_send.ledger.periods
        opens = after[len(periods):]
        # The ledger shortens a period in place when the send closes it (FEP-1), so indexes still match.
        closes = {i for i, was in enumerate(periods) if after[i].expires_at < was.expires_at}
    messages = [m for _, m in ordered_history(request)]
    return tuple(
        build(messages, request.send.at, periods, window=rulebook.parameter("customer_service_window"),
              ignored_types=rulebook.parameter("window_ignored_inbound_types"),
              counted_from=rulebook.parameter("window_inbound_types_counted_from"), send_opens=opens,
              send_closes=closes, layout=layout)
        for layout in layouts
    )


def build(messages: Sequence[Message], send_at: datetime, periods: Sequence[Period], *, window: timedelta,
          ignored_types: Iterable[str], counted_from: Mapping[str, date] | None = None,
          send_opens: Sequence[Period] = (), send_closes: Collection[int] = (), layout: Layout = WIDE) -> Timeline:
    """Lay out the messages, the window each counted inbound opens, the periods (as at the send) and the send.

    `ignored_types` and `counted_from` are the values of window_ignored_inbound_types and
    window_inbound_types_counted_from (core.window.openers_of: which inbound messages open a window).
    `send_opens` are the periods the send itself would open; `send_closes` indexes the periods it would close.
    No label overlaps another label, a bar other than its own (a label inside its bar stays inside it), a
    message mark, a lane title or the send line; a label that finds no room is left out (the item's title
    and the table under the drawing still give it).
    """
    opens = openers_of(ignored_types, counted_from).opens
    zone = send_at.tzinfo
    counted = [m for m in messages if m.direction == "inbound" and opens(m.type, m.at)]
    windows = [(m.at, m.at + window) for m in counted]
    every = [*periods, *send_opens]
    moments = [send_at, *(m.at for m in messages), *(end for _, end in windows),
               *(p.opened_at for p in every), *(p.expires_at for p in every)]
    start, end = _padded(min(moments), max(moments))
    scale = _Scale(start, end, layout)
    send_x = scale.x(send_at)

    marks = _rows([_mark(m, opens, scale, zone) for m in messages], layout, send_x, LANE_TITLES[0])
    csw = _rows([
        _segment("customer_service_window", "window", begin, until, scale, zone, send_at)
        for begin, until in windows
    ], layout, send_x, LANE_TITLES[1])
    opened = _rows([
        _segment(p.kind, period_name(p.kind, p.category), p.opened_at, p.expires_at, scale,
                 zone, send_at, by_send=i >= len(periods), closed_by_send=i in send_closes, rule=p.rule)
        for i, p in enumerate(every)
    ], layout, send_x, LANE_TITLES[2])
    lanes, y = [], 0.0
    for (name, title), marks_, segments in zip(LANE_TITLES_BY_NAME, (marks, (), ()), ((), csw, opened),
                                               strict=True):
        rows = 1 + max([i.row for i in (*marks_, *segments)], default=0)
        top = y + (TITLE if layout.titles_above else 0)
        title += "" if marks_ or segments else ": none"
        lanes.append(Lane(name, title, y, rows, tuple(marks_), tuple(segments), top))
        y = top + rows * ROW + LANE_GAP
    height = y + AXIS
    when = show_time(send_at, zone)
    label = f"send {when}"
    half = len(label) * CHAR / 2
    anchor = "end" if send_x + half > layout.width else "start" if send_x - half < 0 else "middle"
    send = Mark("send", send_at, when, label, f"proposed send at {when}", send_x, label_x=send_x, anchor=anchor)
    return Timeline(tuple(lanes), send, scale.ticks(zone), layout.width, height, zone_name(send_at),
                    _duration(window), gutter=layout.gutter, layout=layout.name,
                    send_spans=_send_spans(lanes, height - AXIS, layout))


def _send_spans(lanes: Sequence[Lane], bottom: float, layout: Layout) -> tuple[tuple[float, float], ...]:
    """From above the lanes to the axis, broken where a lane title above the lanes lies across it."""
    if not layout.titles_above:
        return ((-4.0, bottom),)
    spans, top = [], -4.0
    for lane in lanes:
        spans.append((top, lane.y))
        top = lane.top
    spans.append((top, bottom))
    return tuple(spans)


class _Scale:
    def __init__(self, start: datetime, end: datetime, layout: Layout) -> None:
        self.start, self.end, self.layout = start, end, layout
        self.span = (end - start).total_seconds()

    def x(self, at: datetime) -> float:
        plot = self.layout.width - self.layout.gutter - self.layout.right
        return round(self.layout.gutter + plot * (at - self.start).total_seconds() / self.span, 1)

    def ticks(self, zone: tzinfo | None) -> tuple[Tick, ...]:
        step = next((s for s in STEPS if (self.end - self.start) / s <= self.layout.max_ticks), STEPS[-1])
        local = self.start.astimezone(zone)
        hours = int(step.total_seconds() // 3600)
        # Ticks fall on whole multiples of the step since midnight (00:00, 06:00, ...), as a reader expects.
        first = local.replace(hour=local.hour - local.hour % hours if hours < 24 else 0, minute=0, second=0,
                              microsecond=0)
        ticks, at = [], first
        while at <= self.end:
            if at >= self.start:
                fmt = "%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"
                x, label = self.x(at), at.strftime(fmt)
                half = len(label) * CHAR / 2
                # A tick too near an edge for its centred label keeps its mark and drops the label.
                inside = self.layout.gutter - GAP <= x - half and x + half <= self.layout.width - 2
                ticks.append(Tick(x, label if inside else ""))
            at += step
        return tuple(ticks)


def _padded(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    span = max(last - first, timedelta(hours=1))
    pad = span * 0.04
    return first - pad, first + span + pad


def _mark(message: Message, opens: Callable[[str, datetime], bool], scale: _Scale, zone: tzinfo | None) -> Mark:
    when = show_time(message.at, zone)
    short = _short(message.at, zone)
    x = scale.x(message.at)
    if message.direction == "inbound":
        counted = opens(message.type, message.at)
        note = "" if counted else " (does not open the window)"
        note += " from an ad" if message.referral else ""
        return Mark("inbound", message.at, when, f"in {message.type} {when}",
                    f"inbound {message.type} at {when}{note}", x, opens_window=counted, short=f"in {short}")
    what = f"template {message.template.name} ({category_name(message.template.category)})" \
        if message.template else message.type
    failed = message.status == "failed"
    note = " (failed: not delivered)" if failed else ""
    return Mark("outbound", message.at, when, f"out {message.type} {when}", f"outbound {what} at {when}{note}", x,
                failed=failed, short=f"out {short}")


def _segment(kind: str, name: str, start: datetime, end: datetime, scale: _Scale, zone: tzinfo | None,
             send_at: datetime, *, by_send: bool = False, closed_by_send: bool = False, rule: str = "") -> Segment:
    opened = "would open with the send" if by_send else "open"
    since, until = show_time(start, zone), show_time(end, zone)
    title = f"{name}, {opened} from {since} until {until}" + (f" ({rule})" if rule else "")
    if closed_by_send:
        title += f"; the send would close it at {show_time(send_at, zone)}"
    x = scale.x(start)
    return Segment(kind, name, since, until, f"{name} {since} → {until}", title, start, end, x,
                   max(round(scale.x(end) - x, 1), 2.0), 0, covers_send=not by_send and start <= send_at < end,
                   by_send=by_send, closed_by_send=closed_by_send, rule=rule,
                   short=f"{_short(start, zone)} → {_short(end, zone)}")


def _short(at: datetime, zone: tzinfo | None) -> str:
    """A time as `show_time` shows it, less the year: for labels on a narrow drawing."""
    return show_time(at, zone)[5:]


def _rows(items: list[Any], layout: Layout, send_x: float, title: str) -> list[Any]:
    """Give each item a row and a label place where its label overlaps nothing, trying the full label first.

    A label goes inside its own bar if it fits there, else beside the bar or mark (right, then left); it
    keeps to the drawing, off the lane's title (in the left margin of its first row, in a wide layout) and
    clear of the send line. Each row keeps the
    horizontal extents (glyph and label) already placed on it. Past MAX_ROWS rows an item goes, without a
    label, on one extra row shared by all such items (its title and the table still give its times), so a
    long history stays a readable height.
    """
    taken: list[list[tuple[float, float]]] = [[] for _ in range(MAX_ROWS)]
    if not layout.titles_above:
        taken[0].append((0.0, TITLE_X + len(title) * CHAR + GAP))
    placed = []
    for item in sorted(items, key=lambda i: i.x):
        spot = _place(item, taken, layout, send_x)
        if spot is None:
            # No room for any label: the glyph alone takes the first row with room, or the overflow row.
            glyph = _glyph(item)
            row = next((r for r, extents in enumerate(taken) if _free(extents, glyph)), MAX_ROWS)
            if row < MAX_ROWS:
                taken[row].append(glyph)
            placed.append(replace(item, row=row, label="", short=""))
            continue
        row, label, label_x, anchor, extent = spot
        taken[row].append(extent)
        placed.append(replace(item, row=row, label=label, label_x=round(label_x, 1), anchor=anchor))
    return placed


def _glyph(item: Any) -> tuple[float, float]:
    """The horizontal extent of a bar or a message mark, with half a gap either side."""
    bar = getattr(item, "width", None)
    left, right = (item.x, item.x + bar) if bar is not None else (item.x - MARK, item.x + MARK)
    return left - GAP / 2, right + GAP / 2


def _free(extents: list[tuple[float, float]], extent: tuple[float, float]) -> bool:
    return all(extent[1] <= a or b <= extent[0] for a, b in extents)


def _place(item: Any, taken: list[list[tuple[float, float]]], layout: Layout,
           send_x: float) -> tuple[int, str, float, str, tuple[float, float]] | None:
    bar = getattr(item, "width", None)
    left, right = (item.x, item.x + bar) if bar is not None else (item.x - MARK, item.x + MARK)
    for label in dict.fromkeys(filter(None, (item.label, item.short))):
        text = len(label) * CHAR
        spots = []  # (label start, label end, anchor x, anchor)
        if bar is not None and text + 2 * PAD <= bar:
            spots += [(left + PAD, left + PAD + text, left + PAD, "start"),
                      (right - PAD - text, right - PAD, right - PAD, "end")]
        spots += [(right + GAP, right + GAP + text, right + GAP, "start"),
                  (left - GAP - text, left - GAP, left - GAP, "end")]
        for row, extents in enumerate(taken):
            for start, end, at, anchor in spots:
                extent = (min(left, start) - GAP / 2, max(right, end) + GAP / 2)
                if start < EDGE or end > layout.width - 2 or start - CLEAR <= send_x <= end + CLEAR:
                    continue
                if _free(extents, extent):
                    return row, label, at, anchor, extent
    return None


def _duration(length: timedelta) -> str:
    hours = length.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{length.total_seconds() / 60:g} min"
