"""How much of a stored history the rules in force can still see, from the rulebook's own parameters.

A `history_ref` decision needs, of the stored messages before the send, only:
- every event from `send.at - look_back` on (the counts and time-to-lives that look back a fixed time);
- every event from the latest quiet point on (a delivered send at least `quiet_gap` after the delivered send
  before it: nothing opened before it is open at or after it, core.conversations.quiet_point), because
  replay classifies the past sends from there;
- before that, the carried events (core.chronology.carried_before): the last counted inbound message, the
  last uncounted one (`openers`, core.window: a type the window ignores, or one counted only from a day that
  came before it), the last entry point (an inbound message with a referral of
  `referral_source_types`), and the events from that entry point on while its reply deadline
  (`entry_point_deadline`) reaches past the start, since whether it was answered matters only then.

`HistoryReach` carries these values; store.history_reads reads by them and the core decides on what it read
exactly as on the whole history (tests/store/test_history_reads.py). No duration is written here: each
comes from a parameter or a rule in rules/.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from .conversations import longest_lifetime
from .records import record
from .window import WindowOpeners, window_openers


@record
class HistoryReach:
    """What a read of a stored history must cover for a decision at some time.

    `look_back` and `quiet_gap` and `entry_point_deadline` are durations; `openers` says which inbound messages
    open a customer service window (core.window, the decision's own test); `referral_source_types` the referral
    source types that make an inbound message an entry point.
    """

    look_back: timedelta
    quiet_gap: timedelta
    entry_point_deadline: timedelta
    openers: WindowOpeners
    referral_source_types: frozenset[str]


_REACHES: dict[str, HistoryReach] = {}  # rulebook version -> its reach


def history_reach(rulebook) -> HistoryReach:
    """The reach of the rulebook's history facts (core.rulebook.Rulebook; cached per rulebook version).

    `look_back` is the longest of:
    - `marketing_recent_period` + `customer_service_window`: marketing templates delivered in the recent
      period are counted unless delivered inside a window a user message opened, which may have opened
      up to a window's length before the period (core.evaluate.marketing_delivered_recently);
    - `undelivered_message_lifetime`, `authentication_template_ttl`, `freeform_message_lifetime`: a message
      sent within its time-to-live before the send and not delivered may still be delivered
      (core.evaluate.undelivered_before). A stored message has no template TTL of its own (statuses do not
      carry it), so the category defaults bound it.
    The other look-backs need no fixed range: `customer_service_window` and `entry_point_reply_deadline` count
    from the last inbound message and the last entry point, which are carried whatever their age; the rules'
    `lasts` (the longest is `quiet_gap`) end at the quiet point; `delivery_delay_considered` looks forward
    from the send, over the periods already open.
    """
    reach = _REACHES.get(rulebook.version)
    if reach is None:
        parameter = rulebook.parameter
        look_back = max(parameter("marketing_recent_period") + parameter("customer_service_window"),
                        parameter("undelivered_message_lifetime"), parameter("authentication_template_ttl"),
                        parameter("freeform_message_lifetime"))
        reach = _REACHES[rulebook.version] = HistoryReach(
            look_back=look_back,
            quiet_gap=longest_lifetime(rule.charge.lasts for rule in rulebook.rules if rule.charge),
            entry_point_deadline=parameter("entry_point_reply_deadline"),
            openers=window_openers(rulebook),
            referral_source_types=frozenset(parameter("entry_point_referral_source_types")))
    return reach


def quiet_start(delivered: Sequence[datetime], send_at: datetime, quiet_gap: timedelta, read_from: datetime, *,
                complete: bool) -> datetime | None:
    """From when replay must see every event, given the delivery times (oldest first, none after `send_at`) of
    every delivered send in a read that holds everything from `read_from` on; None when the read must reach
    further back to tell.

    It is the latest quiet point: the latest of the sends (the proposed one at `send_at` included) that
    follows the send before it by at least `quiet_gap`. The oldest send read is one when it lies `quiet_gap`
    after `read_from`, or when nothing older is stored (`complete`): replay then needs nothing before it but the
    carried events (with no earlier send, it classifies from the first event, which the carried events stand
    for exactly).
    """
    times = [*delivered, send_at]
    for position in range(len(times) - 1, 0, -1):
        if times[position] - times[position - 1] >= quiet_gap:
            return times[position]
    if complete or times[0] - read_from >= quiet_gap:
        return times[0]
    return None
