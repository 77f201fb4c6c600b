"""Reconciliation: Meta's `pricing` of each delivered message against the charge we predicted.

A message sent with the decision's `decision_id` as `biz_opaque_callback_data` comes back linked on its
statuses (store.business_state.MessageBilling): it is compared with the charge **predicted and logged**
at decision time (basis `logged_prediction`), and a mismatch gets a likely cause when the store knows
one (the template was re-categorised, a count boundary, a window the history did not show). Unlinked
messages are replayed through today's rules (basis `replay`), and a mismatch gets the cause the replay shows (a
window or count the stored history did not show, or today's rules denying the send). A message Meta reported
failed and also delivered, with no field differing, has the cause `contradictory_statuses`: a comparison's cause
kind is the one `summary` counts it under (CAUSES).

Each unlinked message is replayed at its delivery (Meta classifies and bills on delivery); a Groups API
message as a send to its group; a `business_agent` message as a reply written by Meta Business Agent
(send.meta_business_agent, PMP26-4.agent). Meta bills those per token, so no price is predicted: the
comparison is of pricing model, category and billable, and its note says the price was not predicted. A
message whose pricing category the rules do not model (general_purpose_ai, a future one)
is reported as "category not modelled" instead of being replayed as something it was not; one whose
type the status does not say is replayed with the type `assumed_send` assumes, and says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..contract.schemas import NOT_MODELLED
from ..core import identities
from ..core.decision import Decision
from ..core.engine import RulesEngine
from ..core.evaluate import assumed_send, evaluate
from ..core.facts import HistoryState
from ..core.incremental import IncrementalReplay
from ..core.messages import DecisionRequest, Message
from ..core.records import replace  # a Message is a msgspec Struct: dataclasses.replace cannot copy it
from ..core.rulebook import Rulebook
from ..core.vocabulary import BUSINESS_AGENT, modelled, pricing_category
from ..store import business_state, decision_log, histories
from ..store.database import loaded_time

COMPARED_FIELDS = ("pricing_model", "category", "type", "billable")
MARKETING_LITE = "marketing_lite"
# A Meta Business Agent reply is billed by the tokens the agent used (PMP26-4.agent): no per-message type or
# price to predict, so what is compared is whether it is billed, and as what.
AGENT_COMPARED_FIELDS = ("pricing_model", "category", "billable")
AGENT_NOTE = ("a Meta Business Agent reply, billed per token (PMP26-4.agent): its price is not predicted; "
              "pricing model, category and billable compared")


@dataclass(frozen=True)
class Difference:
    """One pricing field where Meta and our prediction disagree."""

    field: str
    meta: Any
    predicted: Any


# Every cause kind a comparison's cause may have, with what it means (README's reconciliation section lists them).
CAUSES = {
    "template_recategorised": "logged: the registry has the template re-categorised to Meta's category",
    "count_boundary": "the service message count put the send on the other side of the free allowance",
    "window_not_in_history": "Meta priced it free: a window or entry point the history did not show was open",
    "window_assumed": "predicted free: the history showed an open window Meta did not count",
    "sent_despite_deny": "logged: the decision denied the send, yet it was sent and priced",
    "agent_reply_not_declared": "logged: Meta billed a Meta Business Agent reply; a person's reply was decided",
    "denied_on_replay": "replayed: today's rules deny the send from the stored history, for no cause above",
    "contradictory_statuses": "Meta reported the message failed and also delivered; no field differs",
}


@dataclass(frozen=True)
class Cause:
    """The likely reason for a mismatch: a short kind (one of CAUSES, what the summary counts) and a sentence with
    its evidence."""

    kind: str
    detail: str


@dataclass(frozen=True)
class Comparison:
    """Meta's pricing of one delivered message beside the charge the rules predict for that send."""

    wamid: str
    phone_number_id: str
    contact: str
    at: str
    meta: dict[str, Any]
    predicted: dict[str, Any] | None
    decision: str | None  # allow, deny, or not_modelled (contract.schemas.ComparisonSchema)
    determining_rules: tuple[str, ...]
    differences: tuple[Difference, ...]
    note: str | None = None  # what the replay assumed, or why it was not replayed
    modelled: bool = True  # False: Meta's category is not one the rules model; nothing was predicted
    basis: str = "replay"  # logged_prediction (linked by biz_opaque_callback_data) or replay
    decision_id: str | None = None
    cause: Cause | None = field(default=None)
    # Meta's errors from a `failed` status of a message it also reported delivered (contradictory statuses):
    # each {"code", "title"}; the delivery decides the charge, and the failure stays visible here.
    failures: tuple[dict[str, Any], ...] = ()

    @property
    def matches(self) -> bool:
        """True when the message was replayed, every field Meta reported equals the prediction, and Meta did
        not also report it failed."""
        return self.modelled and not self.differences and not self.failures


def reconcile(rulebook: Rulebook, engine: RulesEngine, *, phone_number_id: str | None = None,
              contact: str | None = None) -> list[Comparison]:
    """Compare every stored delivered message with pricing to its prediction, oldest first.

    Linked messages are compared with the logged prediction of their decision; the others with a replay.
    """
    comparisons = []
    conversations: dict[tuple[str, str], _Conversation] = {}
    rows = histories.delivered_with_pricing(phone_number_id, contact)
    links = business_state.decisions_of([row.wamid for row in rows])
    for row in rows:
        logged = decision_log.get(links[row.wamid]) if row.wamid in links else None
        if logged is not None:
            comparisons.append(_compare_logged(row, logged))
            continue
        key = (row.phone_number_id, row.contact)
        if key not in conversations:
            conversations[key] = _Conversation.of(histories.history_rows(*key))
        comparisons.append(_compare(row, conversations[key], rulebook, engine))
    return [_with_failures(c, row) for c, row in zip(comparisons, rows, strict=True)]


@dataclass(frozen=True)
class _Conversation:
    """A contact's stored history, read once for all its messages: each replay takes the messages before one
    (read as the core's Messages once, found by the row's id), not every row converted again and searched.

    The replays of its messages, oldest first, share one walk of the history (core.incremental): each event is
    classified about once, not again for every later message."""

    messages: tuple[Message, ...]
    position: dict[Any, int]  # a row's id -> its place among the messages
    replays: dict[str, IncrementalReplay] = field(default_factory=dict)  # by recipient (a group or the contact)

    @classmethod
    def of(cls, rows: list[histories.StoredMessage]) -> _Conversation:
        return cls(tuple(map(histories.as_message, rows)), {row.get_id(): place for place, row in enumerate(rows)})

    def before(self, row: histories.StoredMessage) -> tuple[Message, ...]:
        return self.messages[:self.position[row.get_id()]]

    def state(self, row: histories.StoredMessage, to: str, at: datetime, rulebook: Rulebook,
              engine: RulesEngine) -> HistoryState:
        """The replayed state of the history before the row at a send to `to` at `at` (core.evaluate.replay's)."""
        replays = self.replays.get(to)
        if replays is None:
            replays = self.replays[to] = IncrementalReplay(self.messages, to, rulebook, engine)
        return replays.state(self.position[row.get_id()], at)


def _with_failures(comparison: Comparison, row: histories.StoredMessage) -> Comparison:
    """The comparison with Meta's failure of a message it also reported delivered, named in its note; when no field
    differs (nothing else explains it not matching) its cause is `contradictory_statuses`, as `summary` counts it."""
    failures = histories.failures(row)
    if not failures:
        return comparison
    codes = ", ".join(f"{f['code']}" + (f" ({f['title']})" if f.get("title") else "") for f in failures)
    said = (f"Meta reported this message failed ({codes}) and also delivered: contradictory statuses; "
            "Meta bills delivered messages, so the delivery decides the charge compared here")
    note = f"{comparison.note}; {said}" if comparison.note else said
    cause = comparison.cause
    if comparison.modelled and not comparison.differences:
        cause = Cause("contradictory_statuses", f"Meta reported this message failed ({codes}) and also delivered")
    return replace(comparison, failures=failures, note=note, cause=cause)


@dataclass(frozen=True)
class Replayed:
    """A delivered message's send, rebuilt from the stored history before it, and the decision it gets today."""

    wamid: str
    phone_number_id: str
    contact: str
    request: DecisionRequest
    decision: Decision


def replayed(rulebook: Rulebook, engine: RulesEngine, wamid: str) -> Replayed | None:
    """The decision the rules make today for one stored delivered message (by wamid), as reconciliation
    replays it; None if no such outbound message is stored or its category is not modelled."""
    if "\x00" in wamid:
        return None  # PostgreSQL refuses to compare text holding NUL, and no wamid contains one
    row = histories.StoredMessage.get_or_none(histories.StoredMessage.wamid == wamid)
    if row is None or row.direction != "outbound":
        return None
    if not modelled(histories.outbound_category(row)):
        return None
    conversation = _Conversation.of(histories.history_rows(row.phone_number_id, row.contact))
    request, _, state = _request(row, conversation, histories.outbound_category(row), rulebook, engine)
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"reconcile:{row.wamid}",
                        replayed=state)
    return Replayed(row.wamid, row.phone_number_id, row.contact, request, decision)


# Categories Meta reports under another name for the same charge: marketing_lite is the Marketing Messages
# API's marketing (billed at Cloud API marketing rates, PMP-8), which the rules classify as marketing.
SAME_CHARGE = {"marketing_lite": "marketing"}


def normalized_category(category: Any) -> Any:
    """The category as compared: Meta spells authentication-international with a hyphen in pricing and an
    underscore elsewhere, and names Marketing Messages API marketing `marketing_lite`."""
    if not isinstance(category, str):
        return category
    return SAME_CHARGE.get(category, pricing_category(category))


def report(comparisons: list[Comparison], *, page: int = 1, page_size: int | None = None) -> dict[str, Any]:
    """The comparisons as JSON (one page of them when page_size is given), with counts of matches and
    mismatches and a summary of all of them by month, Meta's category and cause.

    Every comparison is built whatever the page (one past the end too): the counts and the summary are of all of
    them, and a replayed message's place in them (match, a mismatch, contradictory) needs its prediction, which is
    the costly part (its replay and evaluate); only the JSON of the page shown is made. Since one contact's
    messages share one walk of its history (core.incremental) that cost is linear in the messages compared
    (bench/reconciliation.py)."""
    mismatching = [c for c in comparisons if c.modelled and c.differences]
    not_modelled = [c for c in comparisons if not c.modelled]
    contradictory = [c for c in comparisons if c.modelled and c.failures and not c.differences]
    shown = comparisons if page_size is None else comparisons[(page - 1) * page_size: page * page_size]
    body = {
        "checked": len(comparisons),
        "matching": len(comparisons) - len(mismatching) - len(not_modelled) - len(contradictory),
        "mismatching": len(mismatching),
        "contradictory": len(contradictory),
        "not_modelled": len(not_modelled),
        "summary": summary(comparisons),
        "comparisons": [
            {"wamid": c.wamid, "phone_number_id": c.phone_number_id, "contact": c.contact, "at": c.at,
             "matches": c.matches, "basis": c.basis, "decision_id": c.decision_id, "meta": c.meta,
             "predicted": c.predicted, "decision": c.decision, "determining_rules": list(c.determining_rules),
             "modelled": c.modelled, "note": c.note, "failures": list(c.failures),
             "differences": [{"field": d.field, "meta": d.meta, "predicted": d.predicted} for d in c.differences],
             "cause": None if c.cause is None else {"kind": c.cause.kind, "detail": c.cause.detail}}
            for c in shown
        ],
    }
    if page_size is not None:
        body["pagination"] = {"page": page, "page_size": page_size, "total": len(comparisons),
                              "pages": max(1, -(-len(comparisons) // page_size))}
    return body


def summary(comparisons: list[Comparison]) -> list[dict[str, Any]]:
    """Comparisons counted by month of the status, Meta's pricing category and cause (`match` when they agree,
    `not_modelled` when the rules do not model Meta's category)."""
    counts = Counter((c.at[:7], pricing_category(str(c.meta.get("category"))), _cause_kind(c)) for c in comparisons)
    return [{"month": month, "category": category, "cause": cause, "count": count}
            for (month, category, cause), count in sorted(counts.items())]


def _cause_kind(comparison: Comparison) -> str:
    """What the summary counts a comparison under: its cause's kind, so the two never disagree."""
    if not comparison.modelled:
        return "not_modelled"
    if comparison.matches:
        return "match"
    return comparison.cause.kind if comparison.cause else "unknown"


def _compare(row: histories.StoredMessage, conversation: _Conversation, rulebook: Rulebook,
             engine: RulesEngine) -> Comparison:
    meta = histories.pricing(row)
    at = loaded_time(row.at).isoformat()
    category = histories.outbound_category(row)
    if not modelled(category):
        return Comparison(row.wamid, row.phone_number_id, row.contact, at, meta, None, NOT_MODELLED, (), (),
                          note=f"category not modelled: {category}", modelled=False)
    request, assumption, state = _request(row, conversation, category, rulebook, engine)
    decision = evaluate(request, rulebook=rulebook, engine=engine, decision_id=f"reconcile:{row.wamid}",
                        replayed=state)
    charge = decision.charge
    predicted = None if charge is None else {
        "pricing_model": charge.pricing_model, "category": charge.category, "type": charge.type,
        "billable": charge.billable,
    }
    differences = _differences(meta, predicted, row)
    return Comparison(row.wamid, row.phone_number_id, row.contact, at, meta, predicted, decision.decision,
                      decision.determining_rules, differences, note=_agent_note(meta, assumption),
                      cause=_replay_cause(meta, predicted, decision) if differences else None)


def _compare_logged(row: histories.StoredMessage, logged: dict[str, Any]) -> Comparison:
    response = logged["response"]
    charge = response.get("charge")
    predicted = None if charge is None else {name: charge.get(name) for name in COMPARED_FIELDS}
    meta = histories.pricing(row)
    differences = _differences(meta, predicted, row)
    cause = _cause(row, meta, predicted, differences, logged) if differences else None
    return Comparison(row.wamid, row.phone_number_id, row.contact, loaded_time(row.at).isoformat(), meta, predicted,
                      response.get("decision"), tuple(response.get("determining_rules", ())), differences,
                      note=_agent_note(meta, None), basis="logged_prediction", decision_id=logged["decision_id"],
                      cause=cause)


def _differences(meta: dict[str, Any], predicted: dict[str, Any] | None,
                 row: histories.StoredMessage) -> tuple[Difference, ...]:
    """The compared fields (COMPARED_FIELDS; AGENT_COMPARED_FIELDS for an agent reply) Meta gave whose value differs
    from the prediction's, categories compared in one spelling. Under conversation-based pricing Meta's `billable`
    is the conversation's ("Indicates if the given message or conversation is billable. Default is true for all
    conversations, including those inside your free tier limit, except those initiated from free entry points":
    Meta's webhook components reference, https://developers.facebook.com/docs/whatsapp/cloud-api/webhooks/components,
    read in third-party copies of it [S]), so every message of a billed conversation says true; the prediction's
    is the message's own (false for one riding an open conversation, which charges nothing new). A message the
    rules predict rides a regular conversation (CBP, type regular, billable false: every CBP ride rule and no
    opening one) is therefore not compared on `billable`: its conversation's billability is compared on the
    message that opened it. Only when Meta agrees it rides one, though: Meta's conversation id must be that of an
    earlier message of the contact (the opener); a new id (or none) is a new conversation Meta charges, and the
    billable difference stands."""
    compared = AGENT_COMPARED_FIELDS if _agent_reply(meta) else COMPARED_FIELDS
    if _rides_cbp_conversation(meta, predicted) and _in_earlier_conversation(row):
        compared = tuple(name for name in compared if name != "billable")
    return tuple(
        Difference(name, meta[name], None if predicted is None else predicted.get(name))
        for name in compared
        if name in meta and _value(name, meta[name]) != _value(name, (predicted or {}).get(name))
    )


def _rides_cbp_conversation(meta: dict[str, Any], predicted: dict[str, Any] | None) -> bool:
    """Whether Meta priced the message under CBP and the rules predict it rides an open regular conversation."""
    return (predicted is not None and meta.get("pricing_model") == "CBP" == predicted.get("pricing_model")
            and predicted.get("type") == "regular" and predicted.get("billable") is False)


def _in_earlier_conversation(row: histories.StoredMessage) -> bool:
    """Whether Meta's conversation id of the row is that of an earlier outbound message of the same contact, i.e.
    Meta too says the message rides a conversation opened before it (one indexed lookup, made only for rides)."""
    if not row.conversation_id:
        return False
    stored = histories.StoredMessage
    return stored.select(stored.id).where(
        (stored.phone_number_id == row.phone_number_id) & (stored.contact == row.contact)
        & (stored.direction == "outbound") & (stored.at <= row.at) & (stored.id != row.id)
        & (stored.conversation_id == row.conversation_id)).exists()


def _agent_reply(meta: dict[str, Any]) -> bool:
    """Whether Meta priced the message as a Meta Business Agent reply."""
    return meta.get("category") == BUSINESS_AGENT


def _agent_note(meta: dict[str, Any], note: str | None) -> str | None:
    """The comparison's note, saying for a Meta Business Agent reply that its per-token price is not predicted."""
    if not _agent_reply(meta):
        return note
    return f"{note}; {AGENT_NOTE}" if note else AGENT_NOTE


FREE_TYPES = ("free_customer_service", "free_entry_point", "free_tier")


def _cause(row: histories.StoredMessage, meta: dict[str, Any], predicted: dict[str, Any] | None,
           differences: tuple[Difference, ...], logged: dict[str, Any]) -> Cause | None:
    """The likely cause of a mismatch between Meta's pricing and a logged prediction, from what the store knows."""
    fields_differing = {d.field for d in differences}
    request, response = logged["request"], logged["response"]
    if response.get("decision") == "deny":
        return Cause("sent_despite_deny", "the decision denied this send, yet it was sent and priced")
    template = (request.get("send") or {}).get("template")
    if "category" in fields_differing and template:
        cause = _recategorisation(row, template, meta.get("category"), logged)
        if cause is not None:
            return cause
    if _agent_reply(meta) and "category" in fields_differing and not (request.get("send") or {}).get(
            "meta_business_agent"):
        return Cause("agent_reply_not_declared", "Meta billed it as a reply written by Meta Business Agent (per "
                     "token); the decision was asked for a reply by a person (send.meta_business_agent not set)")
    seen = (response.get("facts") or {}).get("seen_by_rules") or {}
    return _window_cause(meta, predicted, seen, "the decision", "the history given to the decision")


def _replay_cause(meta: dict[str, Any], predicted: dict[str, Any] | None, decision: Decision) -> Cause | None:
    """The likely cause of a mismatch between Meta's pricing and a replay of the stored history: a window or count
    the stored history did not show (as for a logged prediction), else today's rules denying the send."""
    seen = decision.facts.engine if decision.facts is not None else {}
    denied = decision.decision == "deny"
    codes = ", ".join(map(str, decision.error_codes)) or "no error code"
    cause = _window_cause(meta, predicted, seen, "the replay", "the stored history")
    if cause is not None:
        if denied:  # e.g. 131047: no inbound message stored opens the window Meta's free price says was open
            return replace(cause, detail=f"{cause.detail}; the replay denied the send ({codes})")
        return cause
    if denied:
        rules = ", ".join(decision.determining_rules) or "no rule"
        return Cause("denied_on_replay", f"today's rules deny this send from the stored history ({codes}; {rules}), "
                     "so no charge is predicted, yet Meta delivered and priced it")
    return None


def _window_cause(meta: dict[str, Any], predicted: dict[str, Any] | None, seen: dict[str, Any], decider: str,
                  history: str) -> Cause | None:
    """A count boundary or a window one side saw and the other did not, from the types Meta and the prediction
    gave; `seen` the facts the rules saw, `decider` and `history` name who predicted from what ("the replay", "the
    stored history")."""
    predicted_type, meta_type = (predicted or {}).get("type"), meta.get("type")
    if meta.get("category") == "service" and {predicted_type, meta_type} == {"free_customer_service", "regular"}:
        count = seen.get("service_messages_this_month") if seen.get("service_messages_this_month_known") else None
        counted = f"{count:,}" if isinstance(count, int) else "an unknown number of"
        return Cause("count_boundary", f"{decider} counted {counted} service messages this month before the "
                     f"send; Meta's count at delivery put it on the other side of the free allowance")
    if meta_type in FREE_TYPES and predicted_type not in FREE_TYPES:
        return Cause("window_not_in_history", f"Meta priced it {meta_type}: a window or entry point was open that "
                     f"{history} did not show")
    if predicted_type in FREE_TYPES and meta_type not in FREE_TYPES:
        return Cause("window_assumed", f"{decider} expected {predicted_type}, but Meta saw no such open window "
                     f"({history} showed one Meta did not count)")
    return None


def _recategorisation(row: histories.StoredMessage, template: dict[str, Any], billed: Any,
                      logged: dict[str, Any]) -> Cause | None:
    """The template category change that explains Meta's category, from the registry: the category in force
    at the send (by its effective time), or a change to Meta's category the registry had received before the
    decision was made (what the store knew at send time, whatever effective time the webhook gave). The
    sentence says whether the registry knew it before the decision and which category the decision used."""
    waba_id = business_state.waba_of(row.phone_number_id)
    if waba_id is None:
        return None
    wanted = _value("category", billed)
    if not isinstance(wanted, str):
        return None
    name, language = template["name"], template["language"]
    decided_at = datetime.fromisoformat(logged["logged_at"])
    changes = [e for e in business_state.template_history(waba_id, name, language)
               if e["category"] and _value("category", e["category"].lower()) == wanted]
    in_force = business_state.template_state(waba_id, name, language, loaded_time(row.at))
    if in_force is not None and in_force.category is not None and \
            _value("category", in_force.category.value.lower()) == wanted:
        effective = [e for e in changes if datetime.fromisoformat(e["effective_at"]) <= loaded_time(row.at)]
        change = effective[-1] if effective else None
    else:
        known = [e for e in changes if datetime.fromisoformat(e["received_at"]) <= decided_at]
        change = known[-1] if known else None
        if change is None:
            return None
    used = template.get("category") or "none given"
    detail = f"template {name} ({language}) was re-categorised to {wanted}"
    if change is None:  # in force, but from an import or a previous_category: no dated change to name
        return Cause("template_recategorised", f"{detail}: {in_force.category.source}")
    received = datetime.fromisoformat(change["received_at"])
    detail += f": {change['source']} webhook at {change['effective_at']}"
    if received <= decided_at:
        detail += (f"; the registry had received it ({change['received_at']}) before the decision "
                   f"({logged['logged_at']}), which used the category {used}")
    else:
        detail += f"; the registry received it only after the decision ({change['received_at']})"
    return Cause("template_recategorised", detail)


def _request(row: histories.StoredMessage, conversation: _Conversation, category: str | None,
             rulebook: Rulebook, engine: RulesEngine) -> tuple[DecisionRequest, str | None, HistoryState]:
    """The send as delivered, after the stored history before it, what was assumed of its type, and the replayed
    state of that history at the send (the one `evaluate` replays for the request: same history, time, recipient
    and context; given to it rather than replayed twice)."""
    message = histories.as_message(row)
    # A Groups API message is stored under its group: it is replayed as a send to the group, as the send
    # side prices it (GRP-2, GRP-3: group_* categories), after the group's history.
    to = row.group_id or identities.priced_address(row.contact)
    before = conversation.before(row)
    delivered = message.delivery_time or message.at
    state = conversation.state(row, to, delivered, rulebook, engine)
    send, assumption = assumed_send(replace(message, at=delivered), state, to, rulebook)
    if row.group_id:
        send = replace(send, recipient_type="group")
    # Meta priced it as a reply its Business Agent wrote: predict that send (PMP26-4.agent), not a person's reply.
    if category == BUSINESS_AGENT and send.template is None:
        send = replace(send, meta_business_agent=True)
    # Meta reports a marketing template sent through the Marketing Messages API as marketing_lite:
    # predict that send as going through that API (PMP-8), so the categories compare like for like.
    if category == MARKETING_LITE and send.template is not None and send.template.category == "marketing":
        send = replace(send, marketing_messages_api=True)
    return DecisionRequest(send, before), assumption, state


def _value(name: str, value: Any) -> Any:
    return normalized_category(value) if name == "category" else value
