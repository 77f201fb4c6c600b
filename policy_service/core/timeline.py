"""A decision's timeline as plain data: messages, windows and periods laid out on one time axis.

The reviewer pages draw this as SVG; everything here is computed without Flask, so the layout
(which window covers the send, where each label goes) is tested on its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from typing import Any

from .conversations import Period
from .engine import RulesEngine
from .evaluate import ordered_history, replay
from .messages import DecisionRequest, Message
from .rulebook import Rulebook

WIDTH = 960
GUTTER = 200  # left margin for lane titles
RIGHT = 24
ROW = 30
LANE_GAP = 18
AXIS = 40  # room for the time axis under the lanes
CHAR = 6.6  # approximate width of one label character at the SVG's font size
STEPS = tuple(timedelta(hours=h) for h in (1, 2, 3, 6, 12, 24, 48, 168, 720))
MAX_TICKS = 9
MAX_ROWS = 5  # labelled rows per lane; one more holds unlabelled overflow

PERIOD_NAMES = {
    "conversation": "conversation",
    "free_entry_point_conversation": "free entry point conversation",
    "free_entry_point_window": "free entry point window",
}


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


@dataclass(frozen=True)
class Lane:
    """A horizontal band of the timeline with its own rows."""

    name: str
    title: str
    y: float
    rows: int
    marks: tuple[Mark, ...] = ()
    segments: tuple[Segment, ...] = ()

    @property
    def height(self) -> float:
        """The lane's height in SVG units."""
        return self.rows * ROW


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
    gutter: int = GUTTER

    @property
    def segments(self) -> tuple[Segment, ...]:
        """Every window and period, lane by lane."""
        return tuple(s for lane in self.lanes for s in lane.segments)


def from_request(request: DecisionRequest, rulebook: Rulebook, engine: RulesEngine, *, delivered: bool) -> Timeline:
    """The timeline of a request, replaying its history (and the send itself when it is delivered)."""
    periods = replay(request, rulebook, engine).ledger.periods
    opens: list[Period] = []
    closes: set[int] = set()
    if delivered:
        with_send = replay(replace(request, history=request.history + (request.send.as_message(),)), rulebook, engine)
        after = with_send.ledger.periods
        opens = after[len(periods):]
        # The ledger shortens a period in place when the send closes it (FEP-1), so indexes still match.
        closes = {i for i, was in enumerate(periods) if after[i].expires_at < was.expires_at}
    return build(
        [m for _, m in ordered_history(request)],
        request.send.at,
        periods,
        window=rulebook.parameter("customer_service_window"),
        ignored_types=rulebook.parameter("window_ignored_inbound_types"),
        send_opens=opens,
        send_closes=closes,
    )


def build(messages: Sequence[Message], send_at: datetime, periods: Sequence[Period], *, window: timedelta,
          ignored_types: Iterable[str], send_opens: Sequence[Period] = (),
          send_closes: Collection[int] = ()) -> Timeline:
    """Lay out the messages, the window each counted inbound opens, the periods (as at the send) and the send.

    `send_opens` are the periods the send itself would open; `send_closes` indexes the periods it would close.
    """
    ignored = frozenset(ignored_types)
    zone = send_at.tzinfo
    counted = [m for m in messages if m.direction == "inbound" and m.type not in ignored]
    windows = [(m.at, m.at + window) for m in counted]
    every = [*periods, *send_opens]
    moments = [send_at, *(m.at for m in messages), *(end for _, end in windows),
               *(p.opened_at for p in every), *(p.expires_at for p in every)]
    start, end = _padded(min(moments), max(moments))
    scale = _Scale(start, end)

    marks = _rows([_mark(m, ignored, scale, zone) for m in messages])
    csw = _rows([
        _segment("customer_service_window", "window", begin, until, scale, zone, send_at)
        for begin, until in windows
    ])
    opened = _rows([
        _segment(p.kind, f"{p.category} {PERIOD_NAMES.get(p.kind, p.kind)}", p.opened_at, p.expires_at, scale,
                 zone, send_at, by_send=i >= len(periods), closed_by_send=i in send_closes, rule=p.rule)
        for i, p in enumerate(every)
    ])
    lanes, y = [], 0.0
    for name, title, marks_, segments in (
        ("messages", "Messages", marks, ()),
        ("windows", "Customer service window", (), csw),
        ("periods", "Conversations, free entry", (), opened),
    ):
        rows = 1 + max([i.row for i in (*marks_, *segments)], default=0)
        lanes.append(Lane(name, title, y, rows, tuple(marks_), tuple(segments)))
        y += rows * ROW + LANE_GAP
    when = _show(send_at, zone)
    x, label = scale.x(send_at), f"send {when}"
    half = len(label) * CHAR / 2
    anchor = "end" if x + half > WIDTH else "start" if x - half < 0 else "middle"
    send = Mark("send", send_at, when, label, f"proposed send at {when}", x, label_x=x, anchor=anchor)
    return Timeline(tuple(lanes), send, scale.ticks(zone), WIDTH, y + AXIS, _zone_name(send_at),
                    _duration(window))


class _Scale:
    def __init__(self, start: datetime, end: datetime) -> None:
        self.start, self.end = start, end
        self.span = (end - start).total_seconds()

    def x(self, at: datetime) -> float:
        return round(GUTTER + (WIDTH - GUTTER - RIGHT) * (at - self.start).total_seconds() / self.span, 1)

    def ticks(self, zone: tzinfo | None) -> tuple[Tick, ...]:
        step = next((s for s in STEPS if (self.end - self.start) / s <= MAX_TICKS), STEPS[-1])
        local = self.start.astimezone(zone)
        hours = int(step.total_seconds() // 3600)
        # Ticks fall on whole multiples of the step since midnight (00:00, 06:00, ...), as a reader expects.
        first = local.replace(hour=local.hour - local.hour % hours if hours < 24 else 0, minute=0, second=0,
                              microsecond=0)
        ticks, at = [], first
        while at <= self.end:
            if at >= self.start:
                fmt = "%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"
                ticks.append(Tick(self.x(at), at.strftime(fmt)))
            at += step
        return tuple(ticks)


def _padded(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    span = max(last - first, timedelta(hours=1))
    pad = span * 0.04
    return first - pad, first + span + pad


def _mark(message: Message, ignored: frozenset[str], scale: _Scale, zone: tzinfo | None) -> Mark:
    when = _show(message.at, zone)
    x = scale.x(message.at)
    if message.direction == "inbound":
        counted = message.type not in ignored
        note = "" if counted else " (does not open the window)"
        note += " from an ad" if message.referral else ""
        return Mark("inbound", message.at, when, f"in {message.type} {when}",
                    f"inbound {message.type} at {when}{note}", x, opens_window=counted)
    what = f"template {message.template.name} ({message.template.category})" if message.template else message.type
    failed = " (failed: not delivered)" if message.status == "failed" else ""
    return Mark("outbound", message.at, when, f"out {message.type} {when}", f"outbound {what} at {when}{failed}", x)


def _segment(kind: str, name: str, start: datetime, end: datetime, scale: _Scale, zone: tzinfo | None,
             send_at: datetime, *, by_send: bool = False, closed_by_send: bool = False, rule: str = "") -> Segment:
    opened = "would open with the send" if by_send else "open"
    since, until = _show(start, zone), _show(end, zone)
    title = f"{name}, {opened} from {since} until {until}" + (f" ({rule})" if rule else "")
    if closed_by_send:
        title += f"; the send would close it at {_show(send_at, zone)}"
    x = scale.x(start)
    return Segment(kind, name, since, until, f"{name} {since} → {until}", title, start, end, x,
                   max(round(scale.x(end) - x, 1), 2.0), 0, covers_send=not by_send and start <= send_at < end,
                   by_send=by_send, closed_by_send=closed_by_send, rule=rule)


def _rows(items: list[Any]) -> list[Any]:
    """Place each label inside the drawing, then give each item the first row where nothing overlaps it.

    Past MAX_ROWS rows an item goes, without its label, on one extra row shared by all such items (its
    title and the table under the SVG still give its times), so a long history stays a readable height.
    """
    ends: list[float] = []
    placed = []
    for item in sorted(items, key=lambda i: i.x):
        width = getattr(item, "width", 0.0)
        text = len(item.label) * CHAR
        gap = 4 if width else 10
        if item.x + gap + text <= WIDTH:
            label_x, anchor, left, right = item.x + gap, "start", item.x, max(item.x + width, item.x + gap + text)
        else:
            # Too close to the right edge: the label ends inside the drawing instead of running off it.
            label_x = min(item.x + width, WIDTH) - gap
            anchor, left, right = "end", min(item.x, label_x - text), item.x + width
        row = next((r for r, end in enumerate(ends[:MAX_ROWS]) if end <= left), len(ends))
        if row >= MAX_ROWS:
            row, item = MAX_ROWS, replace(item, label="")
        if row == len(ends):
            ends.append(0.0)
        ends[row] = max(ends[row], right + 8)
        placed.append(replace(item, row=row, label_x=round(label_x, 1), anchor=anchor))
    return placed


def _show(at: datetime, zone: tzinfo | None) -> str:
    local = at.astimezone(zone)
    return local.strftime("%Y-%m-%d %H:%M:%S" if local.second else "%Y-%m-%d %H:%M")


def _zone_name(at: datetime) -> str:
    offset = at.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _duration(length: timedelta) -> str:
    hours = length.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{length.total_seconds() / 60:g} min"
