"""The stored history a `history_ref` decision reads: only what the rules in force can still see.

A history_ref {phone_number_id, contact | group_id} names one user's stored messages (store.histories: the
contact and every identity linked to it, wa_id <-> BSUID) and those of the numbers the user had before
(store.business_state.previous_contacts, each up to when the user left it). Of these, a decision at `until`
needs (core.lookback, which says which rule parameter bounds what):
- every event whose time in the replay (its delivery for a delivered outbound message, else when it was sent
  or written) is at or after `start`, the earlier of `until - look_back` and the latest quiet point: the read
  reaches back in growing chunks until it finds a quiet gap or nothing older is stored;
- of the events before `start`, the carried ones (the last counted inbound message, the last uncounted one,
  the last entry point), each found by one indexed seek (migration 030); an entry point whose reply deadline
  reaches past `start` moves `start` back to it.

`read` returns the history (oldest first, in the order the whole stored history has: core.evaluate decides on
it exactly as on the whole, tests/store/test_history_reads.py) and the range read, which the decision log keeps
instead of the history; `read_again` reads the same range to replay a logged decision and says whether the
store still holds what was read (the sha256 digest of the history's canonical JSON).

The range ends at `until` (send.at) inclusive: a message dated the very instant of the send that was stored when
the decision was made is history it saw. One stored later at that instant is not: most often it is the message
the decision allowed (Meta's statuses are dated to the second, a send.at often too), which would otherwise make
every such decision unreplayable. So the log names the events read at `until` (`at_until`), and a replay leaves
out any other stored there since. Likewise a status dated after `until` (a read receipt of a message the decision
read as delivered) was not stored when the decision was made: a replay may read such messages as they stood at
`until`, when that gives the logged digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..core.lookback import HistoryReach, quiet_start
from ..core.masking import masked
from ..core.messages import Message
from . import business_state
from .database import loaded_time, stored_time
from .histories import CALL, MESSAGE_COLUMNS, StoredMessage, history_json, linked_contacts, message_of

# A read selects the row id and contact, then the columns histories.message_of takes.
_COLUMNS = ", ".join(f'"{column}"' for column in ("id", "contact", *MESSAGE_COLUMNS))
_TIME_COLUMNS = (4, 7)  # positions of at and delivered_at in a selected row
_MICROSECOND = timedelta(microseconds=1)
# A referral seek reads this many entry points at once (one whose source type or message type does not make an
# entry point is skipped: rare).
_REFERRALS_AT_ONCE = 4


@dataclass(frozen=True)
class Source:
    """One identity's part of a history: its linked contacts, read up to `until` (aware UTC)."""

    contacts: tuple[str, ...]
    until: datetime


@dataclass(frozen=True)
class Read:
    """A stored history as read for a decision.

    `history`: the messages, oldest first (what the core decides on). `start`, `until`: every event whose
    replay time lies in [start, until] was read (aware UTC); `carried`: the wamids of the events read from
    before `start`; `anchor`: the wamid of a stored message of the ref's contact (None when it has none), by which
    a masked logged ref is found again.
    """

    history: tuple[Message, ...]
    start: datetime
    until: datetime
    carried: tuple[str, ...]
    anchor: str | None

    @property
    def digest(self) -> str:
        """'sha256:' and the hex sha256 of the history's canonical JSON (histories.history_json, keys sorted)."""
        return digest(self.history)

    def logged(self) -> dict[str, Any]:
        """The range read as the decision log keeps it: from, until (RFC 3339, UTC), events (how many), digest,
        and carried / at_until (the wamids of the events read dated exactly `until`) / anchor when there are
        any."""
        kept: dict[str, Any] = {"from": self.start.astimezone(UTC).isoformat(),
                                "until": self.until.astimezone(UTC).isoformat(),
                                "events": len(self.history), "digest": self.digest}
        if self.carried:
            kept["carried"] = list(self.carried)
        if at_until := sorted({message.id for message in self.history if message.at == self.until}):
            kept["at_until"] = at_until
        if self.anchor:
            kept["anchor"] = self.anchor
        return kept


def digest(history: tuple[Message, ...]) -> str:
    """'sha256:' and the hex sha256 of a history's canonical JSON (compact, keys sorted)."""
    text = json.dumps(history_json(history), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def sources(phone_number_id: str, contact: str, until: datetime) -> list[Source]:
    """The parts of a user's history: each number the user had before (most recent first, each up to when the
    user left it), then the contact itself (up to `until`)."""
    earlier = [Source(tuple(linked_contacts(phone_number_id, old)), min(until, changed_at))
               for old, changed_at in business_state.previous_contacts(phone_number_id, contact)]
    return [*earlier, Source(tuple(linked_contacts(phone_number_id, contact)), until)]


def number_known(phone_number_id: str) -> bool:
    """Whether any message or status of this business number is stored (one indexed seek): a history_ref that
    read nothing names a number no webhook ever brought, which is most often a mistyped phone_number_id."""
    return StoredMessage.select(StoredMessage.id).where(
        StoredMessage.phone_number_id == phone_number_id).limit(1).exists()


def read(phone_number_id: str, contact: str, until: datetime, reach: HistoryReach) -> Read:
    """What a decision at `until` (aware) on the history of a business number and contact needs of the store:
    see the module docstring. Raises what the database raises (service.errors maps it to a 503)."""
    parts = sources(phone_number_id, contact, until)
    since, step = until - reach.look_back, reach.look_back
    rows: dict[int, tuple] = {}
    _add_range(rows, phone_number_id, parts, since, None)
    while True:
        delivered = sorted(moment for moment in map(_delivery, rows.values()) if moment is not None
                           and moment <= until)
        complete = not _older_stored(phone_number_id, parts, since)
        start = quiet_start(delivered, until, reach.quiet_gap, since, complete=complete)
        if start is not None:
            break
        # No quiet gap yet: reach further back, twice as far each time.
        earlier = since - step
        _add_range(rows, phone_number_id, parts, earlier, since)
        since, step = earlier, step * 2
    start = min(start, until - reach.look_back)
    while True:
        carried = _carried(phone_number_id, parts, start, reach)
        entry = max((row for row in carried if _entry_point(row, reach)), key=_order, default=None)
        if entry is None or _time(entry[4]) + reach.entry_point_deadline <= start:
            break
        # An entry point whose reply deadline reaches past the start: whether it was answered still decides,
        # so everything from it on is read.
        entry_at = _time(entry[4])
        if entry_at < since:
            _add_range(rows, phone_number_id, parts, entry_at, since)
            since = entry_at
        start = entry_at
    kept = [row for row in rows.values() if _replayed_from(row, start)]
    history = _assembled(parts, kept, carried)
    # The anchor: the latest message read of the contact, else of an identity linked to it, else of a number the
    # user had before; else the contact's (or a linked identity's) latest stored message (a query).
    read_rows = (*kept, *carried)
    anchor = next((max(found, key=_order)[2] for found in (
        [row for row in read_rows if row[1] == contact], [row for row in read_rows if row[1] in parts[-1].contacts],
        list(read_rows)) if found), None) or _anchor(phone_number_id, contact, parts[-1])
    return Read(history, start, until, tuple(sorted({row[2] for row in carried})), anchor)


def read_again(phone_number_id: str, contact: str, logged: dict[str, Any]) -> tuple[tuple[Message, ...], str | None]:
    """The history a logged range read (Read.logged) names, read again from the store, and None when it is the
    history the decision read (same digest); else the history now stored and why it differs, in words.

    What was stored after the decision and dated from `until` (send.at) on is not read: of the events dated
    exactly `until`, only those the log names (`at_until`; any other is most often the message the decision
    allowed), and a message whose latest status is dated after `until` (a read receipt) is read as it stood at
    `until` when the history as stored now is not the one read (_as_of). A row logged before `at_until` existed
    names none: its events at `until` are tried none, then the first stored, the first two… The digest decides
    which of these is the history read. Raises ValueError when the logged range is malformed."""
    start, until = _logged_time(logged, "from"), _logged_time(logged, "until")
    parts = sources(phone_number_id, contact, until)
    rows: dict[int, tuple] = {}
    _add_range(rows, phone_number_id, parts, start, None)
    carried = _by_wamid(logged.get("carried") or ())
    seen = logged.get("at_until")
    if seen is not None and not (isinstance(seen, list) and all(isinstance(wamid, str) for wamid in seen)):
        raise ValueError("the logged history read's 'at_until' is not a list of wamids")
    later = sorted(key for key, row in rows.items() if _time(row[4]) == until and row[2] not in (seen or ()))
    history = _assembled(parts, [row for key, row in rows.items() if key not in later], carried)
    if digest(history) == logged.get("digest"):
        return history, None
    restored = _as_of(rows.values(), until)
    tries = []
    # Logged before at_until: the decision read those of the events at `until` stored by then, the first ones by
    # row id (ids grow as rows are stored).
    for count in range(len(later) + 1 if seen is None else 1):
        candidate = [row for key, row in rows.items() if key not in later[count:]]
        tries += [candidate] if count else []
        if restored:
            # A row that was neither sent nor delivered from `start` on was not in the range then.
            tries.append([row for row in (restored.get(row[0], row) for row in candidate)
                          if _replayed_from(row, start)])
    for then in tries:
        assembled = _assembled(parts, then, carried)
        if digest(assembled) == logged.get("digest"):
            return assembled, None
    return history, (f"the stored history changed since the decision: {len(history)} events are stored now in the "
                     f"range it read ({logged['from']} to {logged['until']}), {logged.get('events')} then, and "
                     "their digest differs (messages pruned, or webhooks that arrived after the decision); it is "
                     "not replayed on a history it did not read")


def _as_of(rows: Iterable[tuple], until: datetime) -> dict[int, tuple]:
    """The outbound rows among `rows` whose latest status is dated after `until`, by row id, as they stood at
    `until`: delivered when a delivering status dates delivery by then, else sent (a status of that later
    instant cannot have been read by a decision made at `until`)."""
    outbound = {row[0]: row for row in rows if row[3] == "outbound"}
    if not outbound:
        return {}
    later = StoredMessage.select(StoredMessage.id).where(
        StoredMessage.id.in_(sorted(outbound)) & (StoredMessage.status_at > stored_time(until))).tuples()
    restored = {}
    for (key,) in later:
        row = list(outbound[key])
        delivered = row[7] if row[7] is not None and _time(row[7]) <= until else None
        row[6], row[7] = ("delivered" if delivered is not None else "sent"), delivered
        restored[key] = tuple(row)
    return restored


def replayable(request: Any) -> tuple[Any, str | None]:
    """A logged request (JSON-shaped) as a request that replays as the decision was made, and None; or the
    request unchanged and why it cannot be replayed, in words.

    A request naming a stored history (`history_ref` with the range read, `history_read`) gets the messages of
    that range read again from the store, inline (`history`), when their digest is the logged one; when the
    store changed since (messages pruned, late webhooks), or the masked contact cannot be found again, it is not
    replayed (a replay on another history would answer for a different request). A request logged with its
    history inline (rows logged before history_read existed) replays as it is."""
    if not isinstance(request, dict) or "history_ref" not in request:
        return request, None
    ref, read = request["history_ref"], request.get("history_read")
    if not isinstance(ref, dict) or not isinstance(read, dict):
        return request, "the logged request names a stored history (history_ref) without the range it read"
    rest = {key: value for key, value in request.items() if key not in ("history_ref", "history_read")}
    if read.get("digest") == digest(()):
        return {**rest, "history": []}, None  # nothing was read: the empty history is what the decision saw
    phone_number_id, shown = str(ref.get("phone_number_id", "")), ref.get("contact")
    if shown is None:
        candidates = [str(ref.get("group_id"))]
    elif "*" in str(shown):
        candidates = contacts_of(phone_number_id, str(shown), read.get("anchor"))
        if not candidates:
            return request, ("the log masked the history_ref contact, and the stored message that named it (the "
                             "logged anchor) is gone: the history it read cannot be found again")
    else:
        candidates = [str(shown).lstrip("+")]
    problem = None
    for contact in candidates:
        try:
            history, problem = read_again(phone_number_id, contact, read)
        except ValueError as error:
            return request, str(error)
        if problem is None:
            break
    if problem is not None:
        return request, problem
    return {**rest, "history": history_json(history)}, None


def contacts_of(phone_number_id: str, shown: str, anchor: str | None) -> list[str]:
    """The contacts a masked logged ref may name (`shown`, as the log masked it), found from the logged anchor (a
    wamid of a stored message of the user): the identities linked to the anchor's contact, and the numbers the
    user changed to from those (user_changed_number), that mask to `shown` (an old and a new number of one
    country mask alike: the digest tells them apart); none when the anchor is gone."""
    if not anchor:
        return []
    found = StoredMessage.select(StoredMessage.contact).where(
        (StoredMessage.wamid == anchor) & (StoredMessage.phone_number_id == phone_number_id)).tuples().first()
    if found is None:
        return []
    user = set(linked_contacts(phone_number_id, found[0]))
    frontier = set(user)
    for _ in range(business_state.MAX_NUMBER_CHANGES):
        change = business_state.ContactChange
        newer = {new for (new,) in change.select(change.new_contact).where(
            (change.phone_number_id == phone_number_id) & change.old_contact.in_(sorted(frontier))).tuples()} - user
        if not newer:
            break
        frontier = {linked for contact in newer for linked in linked_contacts(phone_number_id, contact)} - user
        user |= frontier | newer
    shown = shown.lstrip("+")  # a wa_id given with its "+" is masked with it
    return [contact for contact in sorted(user) if masked({"contact": contact})["contact"] == shown]


def _assembled(parts: list[Source], rows: list[tuple], carried: list[tuple]) -> tuple[Message, ...]:
    # Each part's rows in the order the whole stored history has them (time sent, then row id), the carried
    # rows in every part that holds them; the parts together in time order, earlier numbers first at one
    # instant (the stable sort the whole history's merge uses).
    histories = []
    for part in parts:
        mine = {row[0]: row for row in rows if _holds(part, row)}
        mine.update((row[0], row) for row in carried if _holds(part, row))
        histories.append([_message(row) for row in sorted(mine.values(), key=_order)])
    if len(histories) == 1:
        return tuple(histories[0])
    return tuple(sorted((message for part in histories for message in part), key=lambda message: message.at))


def _holds(part: Source, row: tuple) -> bool:
    return row[1] in part.contacts and _time(row[4]) <= part.until


def _order(row: tuple) -> tuple[datetime, int]:
    return _time(row[4]), row[0]


def _message(row: tuple) -> Message:
    return message_of(*row[2:12])


def _time(value: Any) -> datetime:
    return loaded_time(StoredMessage.at.python_value(value))


def _delivery(row: tuple) -> datetime | None:
    """When a delivered outbound message reached the user, as replay places it (None for any other row)."""
    if row[3] != "outbound" or row[5] == CALL:
        return None
    return _message(row).delivery_time


def _replayed_from(row: tuple, start: datetime) -> bool:
    """Whether a row's time in the replay (a delivered outbound message at its delivery) is at or after start."""
    if _time(row[4]) >= start:
        return True
    return row[3] == "outbound" and row[7] is not None and _time(row[7]) >= start


def _entry_point(row: tuple, reach: HistoryReach) -> bool:
    # Only an inbound message that opens the window is an entry point (core.facts.HistoryState.receive).
    if row[3] != "inbound" or not row[9] or not reach.openers.opens(row[5], _time(row[4])):
        return False
    return json.loads(row[9]).get("source_type", "ad") in reach.referral_source_types


# --- the queries: hand-written SQL (peewee building each query cost more than running it), one per shape ------

_SQL: dict[tuple, str] = {}


def _execute(key: tuple, build, params: list[Any]) -> list[tuple]:
    database = StoredMessage._meta.database
    param = database.param
    sql = _SQL.get((*key, param))
    if sql is None:
        sql = _SQL[(*key, param)] = build(param)
    rows = database.execute_sql(sql, params).fetchall()
    return [_loaded(row) for row in rows]


def _loaded(row: tuple) -> tuple:
    # Times as the database driver returns them (text in SQLite) made datetimes once, as peewee would.
    values = list(row)
    for position in _TIME_COLUMNS:
        if values[position] is not None:
            values[position] = StoredMessage.at.python_value(values[position])
    return tuple(values)


def _stored(moment: datetime) -> Any:
    return StoredMessage.at.db_value(stored_time(moment))


def _in(param: str, count: int) -> str:
    return "(" + ", ".join([param] * count) + ")"


def _add_range(rows: dict[int, tuple], phone_number_id: str, parts: list[Source], since: datetime,
               before: datetime | None) -> None:
    """Add the history rows whose replay time is at or after `since` (and, with `before`, those sent before it)
    of each part: those sent from `since` on, and the outbound ones delivered from `since` on."""
    for part in parts:
        upper = min(part.until + _MICROSECOND, before) if before is not None else part.until + _MICROSECOND
        count = len(part.contacts)

        def build(p: str, count: int = count) -> str:
            # Two seeks, each on its own index: sent in [since, upper), delivered from since on (filtered below;
            # a condition on "at" or "direction" here would lead SQLite to walk the contact's older rows instead).
            where = f'"phone_number_id" = {p} AND "contact" IN {_in(p, count)}'
            return (f'SELECT {_COLUMNS} FROM "stored_message" WHERE {where} AND "at" >= {p} AND "at" < {p} '
                    f'UNION ALL SELECT {_COLUMNS} FROM "stored_message" WHERE {where} AND "delivered_at" >= {p}')

        base = [phone_number_id, *part.contacts]
        found = _execute(("range", count), build, [*base, _stored(since), _stored(upper), *base, _stored(since)])
        until = part.until
        # An inbound row never moves to a delivery time (a stray status on it changes nothing).
        rows.update((row[0], row) for row in found if _is_history(row) and _time(row[4]) <= until
                    and (row[3] == "outbound" or _time(row[4]) >= since))


def _is_history(row: tuple) -> bool:
    return not (row[3] == "outbound" and row[5] == CALL)


def _older_stored(phone_number_id: str, parts: list[Source], since: datetime) -> bool:
    """Whether any part holds a row sent before `since`."""
    for part in parts:
        count = len(part.contacts)

        def build(p: str, count: int = count) -> str:
            return (f'SELECT "id" FROM "stored_message" WHERE "phone_number_id" = {p} AND "contact" IN '
                    f'{_in(p, count)} AND "at" < {p} LIMIT 1')

        database = StoredMessage._meta.database
        key = ("older", count, database.param)
        sql = _SQL.get(key) or _SQL.setdefault(key, build(database.param))
        upper = min(since, part.until + _MICROSECOND)
        if database.execute_sql(sql, [phone_number_id, *part.contacts, _stored(upper)]).fetchone():
            return True
    return False


def _carried(phone_number_id: str, parts: list[Source], start: datetime, reach: HistoryReach) -> list[tuple]:
    """The carried events before `start` (core.chronology.carried_before) of each part: its last counted inbound
    message, its last uncounted one and its last entry point, each found per contact by an indexed seek (one
    statement per contact). Every part's own are kept: an older extra inbound message changes no decision.

    Counted and uncounted as the decision counts them (reach.openers, core.window): a type the window ignores is
    uncounted; a type counted only from an instant (a user's call) is read by two seeks of its own, the last one
    from that instant (counted) and the last one before it (uncounted)."""
    openers = reach.openers
    ignored, dated = sorted(openers.ignored_types), sorted(openers.counted_from.items())
    # The kind of each arm of _carried_sql, by its number (the last column of a row).
    arm_kinds = ["counted", *["uncounted"] * len(ignored), *["counted"] * len(dated), *["uncounted"] * len(dated),
                 "entry point"]
    found: dict[int, tuple] = {}
    for part in parts:
        before = min(start, part.until + _MICROSECOND)
        upper = _stored(before)
        kinds: dict[str, list[tuple]] = {"counted": [], "uncounted": [], "entry point": []}
        for contact in part.contacts:
            params = [phone_number_id, contact, *sorted(openers.uncounted_types), upper]
            for kind in ignored:
                params += [phone_number_id, contact, kind, upper]
            for kind, counted_from in dated:
                params += [phone_number_id, contact, kind, _stored(counted_from), upper]
            for kind, counted_from in dated:
                params += [phone_number_id, contact, kind, _stored(min(counted_from, before))]
            rows = _execute(("carried", len(ignored), len(dated)),
                            lambda p: _carried_sql(p, len(ignored), len(dated)),
                            [*params, phone_number_id, contact, upper])
            kinds["counted"] += [row for row in rows if arm_kinds[row[-1]] == "counted"]
            kinds["uncounted"] += [row for row in rows if arm_kinds[row[-1]] == "uncounted"]
            referrals = [row for row in rows if arm_kinds[row[-1]] == "entry point"]
            entry = next((row for row in referrals if _entry_point(row, reach)), None)
            if entry is None and len(referrals) == _REFERRALS_AT_ONCE:
                entry = _walk_entry_points(phone_number_id, contact, upper, reach)
            kinds["entry point"] += [entry] if entry is not None else []
        for rows in kinds.values():
            if rows:
                latest = max(rows, key=_order)
                found[latest[0]] = latest
    return sorted(found.values(), key=_order)


def _carried_sql(p: str, ignored: int, dated: int) -> str:
    # One arm per kind, each its own seek; the last column says which arm a row came from: the last inbound
    # message of a type always counted, the last of each ignored type, the last of each dated type from its
    # instant on, the last of each dated type before it, the last few with a referral.
    inbound = f'"phone_number_id" = {p} AND "contact" = {p} AND "direction" = \'inbound\''
    counted = f' AND "type" NOT IN {_in(p, ignored + dated)}' if ignored + dated else ""
    arms = [f'{inbound}{counted} AND "at" < {p} ORDER BY "at" DESC, "id" DESC LIMIT 1']
    of_type = f'"phone_number_id" = {p} AND "contact" = {p} AND "type" = {p} AND "direction" = \'inbound\''
    arms += [f'{of_type} AND "at" < {p} ORDER BY "at" DESC, "id" DESC LIMIT 1' for _ in range(ignored)]
    arms += [f'{of_type} AND "at" >= {p} AND "at" < {p} ORDER BY "at" DESC, "id" DESC LIMIT 1' for _ in range(dated)]
    arms += [f'{of_type} AND "at" < {p} ORDER BY "at" DESC, "id" DESC LIMIT 1' for _ in range(dated)]
    # Without a condition on "direction", so that SQLite seeks the partial index of the rows with a referral.
    arms.append(f'"phone_number_id" = {p} AND "contact" = {p} AND "referral" IS NOT NULL AND "at" < {p} '
                f'ORDER BY "at" DESC, "id" DESC LIMIT {_REFERRALS_AT_ONCE}')
    return " UNION ALL ".join(f'SELECT * FROM (SELECT {_COLUMNS}, {n} AS "arm" FROM "stored_message" WHERE {arm}) '
                              f'AS arm{n}' for n, arm in enumerate(arms))


def _walk_entry_points(phone_number_id: str, contact: str, upper: Any, reach: HistoryReach) -> tuple | None:
    """The last entry point before `upper` when the first few rows with a referral were none (rare)."""
    def build(p: str) -> str:
        return (f'SELECT {_COLUMNS} FROM "stored_message" WHERE "phone_number_id" = {p} AND "contact" = {p} AND '
                f'"referral" IS NOT NULL AND "at" < {p} ORDER BY "at" DESC, "id" DESC')
    return next((row for row in _execute(("entry points",), build, [phone_number_id, contact, upper])
                 if _entry_point(row, reach)), None)


def _by_wamid(wamids: Iterable[str]) -> list[tuple]:
    wamids = sorted(set(wamids))
    if not wamids:
        return []
    return _execute(("wamids", len(wamids)),
                    lambda p: f'SELECT {_COLUMNS} FROM "stored_message" WHERE "wamid" IN {_in(p, len(wamids))}',
                    wamids)


def _anchor(phone_number_id: str, contact: str, part: Source) -> str | None:
    """The wamid of the contact's latest stored message, else of a linked identity's (None if none is stored)."""
    for name in (contact, *(c for c in part.contacts if c != contact)):
        found = (StoredMessage.select(StoredMessage.wamid)
                 .where((StoredMessage.phone_number_id == phone_number_id) & (StoredMessage.contact == name))
                 .order_by(StoredMessage.at.desc()).limit(1).tuples().first())
        if found is not None:
            return found[0]
    return None


def _logged_time(logged: dict[str, Any], name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(logged[name])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"the logged history read has no valid {name!r} time") from None
    if moment.tzinfo is None:
        raise ValueError(f"the logged history read's {name!r} time has no offset")
    return moment
