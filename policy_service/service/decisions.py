"""The decision pipeline, shared by the HTTP API, the reviewer pages, the command line and Python callers.

One validated request goes through five steps, each a function of one input with one output:

    Proposal --resolve_history--> Proposal --fill_in_business_state--> Proposal --evaluate--> Evaluated
             --fill_in_pricing--> Evaluated --respond--> Decided --log--> Decided

- `resolve_history`: a `history_ref` becomes what the rules in force can still see of the stored history of
  that business number and contact (with the numbers the user had before; store.history_reads). The log keeps
  the ref and the range read (`history_read`: from, until, events, sha256 digest), not the history: a replay
  reads the range again and compares digests (service.logged.replayable). The response names the read in
  `history_source`.
- `fill_in_business_state`: the business's stored state (template registry, account state, marketing
  preference, counts over stored statuses; service.business) fills in what the request leaves out.
- `evaluate`: the core evaluates the request (internal or engine errors fail closed inside the core).
  An internal error in any other step (a stored value the code cannot read) fails closed too (`preview`: deny,
  status error, logged like any decision); only a refusal (ServiceError) or a storage fault (503) is raised.
- `fill_in_pricing`: a billable charge priced in the WABA's stored billing currency and at the month's
  volume counted over stored statuses, where the request gives neither (service.pricing).
- `respond`: the response body (contract RESPONSE) and its JSON bytes, serialized once.
- `log`: the decision log row, written before the answer returns (store.decision_log.record), so every
  decision_id a caller sees is already logged.

A batch (`Decisions.decide_all`) is all or nothing: every request goes through every step but the log first, and
only then are all its rows logged, together (store.decision_log.record_all: as one unit through the host's writer
under gunicorn, so a batch takes the same path and durability as one decision); a request refused on the way (by
what the store holds) refuses the batch, named requests.<index>, with nothing logged.

Steps that need the rulebook or the masking setting are methods of `Decisions`, which holds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from ..contract.fastdump import dump_response
from ..contract.parsing import MAX_ERRORS, MORE, ROOT
from ..contract.schemas import REQUEST
from ..core.decision import Decision
from ..core.engine import RulesEngine
from ..core.evaluate import evaluate, failed
from ..core.identities import wa_id_forms
from ..core.lookback import history_reach
from ..core.messages import DecisionRequest
from ..core.rulebook import Rulebook, load_rulebook
from ..store import decision_log, history_reads, log_compression
from ..store.database import STORAGE_FAULTS
from . import business, pricing
from .errors import ServiceError


@dataclass(frozen=True)
class Policy:
    """The loaded rulebook and the engine compiled from it."""

    rulebook: Rulebook
    engine: RulesEngine

    @classmethod
    def load(cls, rules_dir: str, *, rate_cards: str | None = None, rate_card_tiers: str | None = None) -> Policy:
        """Load and validate the rule files in a directory (and the rate cards) and compile a new engine;
        raises core.errors.RulebookError on a bad rule file."""
        rulebook = load_rulebook(rules_dir, rate_cards=rate_cards, rate_card_tiers=rate_card_tiers)
        return cls(rulebook, RulesEngine(rulebook))


def load_policy(settings: Mapping[str, Any]) -> Policy:
    """The policy the settings name: RULES_DIR, and RATE_CARDS / RATE_CARD_TIERS when set."""
    return Policy.load(settings["RULES_DIR"], rate_cards=settings.get("RATE_CARDS") or None,
                       rate_card_tiers=settings.get("RATE_CARD_TIERS") or None)


# history_source of a request with neither `history` nor `history_ref`: decided on an empty history.
NO_HISTORY = {"given": "none", "events": 0,
              "note": "the request gives neither history nor history_ref: decided as if the user never wrote (no "
                      "customer service window, no open conversation, no entry point); send the user's history or a "
                      "history_ref to decide on what happened"}


@dataclass(frozen=True)
class Proposal:
    """A validated request on its way through the pipeline.

    `request` is what the engine reads; `logged` the request as the decision log stores it (JSON-shaped,
    the values the store supplied written in; a `history_ref` with the range read, `history_read`, so a replay
    reads the same messages again); `history_source` what a `history_ref` read ({ref, from, until, events:
    how many, digest}), else None; `business_state` {phone_number_id, note} when send.phone_number_id names a number
    the store has never seen (business.unknown_number), else None.
    """

    request: DecisionRequest
    logged: dict[str, Any]
    phone_number_id: str | None
    contact: str
    explain_why_not: bool = False
    history_source: dict[str, Any] | None = None
    api_key: str | None = None  # the name of the API key that asked (logged), None when keys are off
    business_state: dict[str, Any] | None = None


def proposal(request: DecisionRequest, raw: dict[str, Any], *, explain_why_not: bool = False,
             api_key: str | None = None) -> Proposal:
    """The pipeline's input: a request validated by contract REQUEST and the JSON it was loaded from, and the
    name of the API key that asked (None when keys are off)."""
    ref = raw.get("history_ref") or {}
    # A group's stored history is kept under the group id (store.histories), which is never a phone number:
    # only a contact or a recipient loses its "+".
    contact = ref.get("group_id") if not ref.get("contact") and ref.get("group_id") else \
        (ref.get("contact") or request.send.to).lstrip("+")
    return Proposal(request, raw, business.sending_number(raw), contact, explain_why_not, api_key=api_key)


@dataclass(frozen=True)
class Evaluated:
    """A proposal and the decision the core made for it."""

    proposal: Proposal
    decision: Decision


@dataclass(frozen=True)
class Decided:
    """A decision, its response body (`body`) and that body as JSON bytes (`text`), and the logged request."""

    decision: Decision
    body: dict[str, Any]
    text: bytes
    logged: dict[str, Any]
    api_key: str | None = None


def resolve_history(proposal: Proposal, rulebook: Rulebook) -> Proposal:
    """A `history_ref` replaced by what the rules of `rulebook` can still see of the stored history it names
    (store.history_reads.read, up to `send.at`, the user's earlier numbers included); a request without one is
    returned as is. The logged request keeps the ref and gains `history_read` (Read.logged); the response's
    `history_source` is {ref, from, until, events, digest}, with a `note` when nothing at all is stored for the
    number (a mistyped phone_number_id reads an empty history). A request with neither `history` nor
    `history_ref` gets history_source NO_HISTORY, saying it was decided on an empty history."""
    raw = proposal.logged
    if "history_ref" not in raw:
        if "history" in raw:
            return _later_events_noted(proposal)
        # Deciding on an empty history is right for a first contact, but a forgotten field looks the same:
        # the response says the history was not given, not only that the user "never wrote".
        # A copy: the body goes to callers (the Python API's dict), who must not be able to change the next one.
        return replace(proposal, history_source=dict(NO_HISTORY))
    request = proposal.request
    ref = raw["history_ref"]
    _same_user(ref, request)
    found = history_reads.read(ref["phone_number_id"], proposal.contact, request.send.at, history_reach(rulebook))
    read = found.logged()
    logged = {**raw, "history_read": read}
    shown = {**ref, "contact": proposal.contact} if "contact" in ref else dict(ref)
    source = {"ref": shown, "from": read["from"], "until": read["until"], "events": read["events"],
              "digest": read["digest"]}
    if not read["events"] and not history_reads.number_known(ref["phone_number_id"]):
        source["note"] = (f"nothing is stored for phone_number_id {ref['phone_number_id']}: no message or status "
                          "webhook has named this business number (check the id; a new number has no history yet)")
    return replace(proposal, request=replace(request, history=found.history), logged=logged, history_source=source)


def _later_events_noted(proposal: Proposal) -> Proposal:
    """An inline history with messages dated after send.at gets a history_source saying how many were not read:
    the rules see only what happened before the send, and "the user has never written" is otherwise all the
    trace says of a history whose only inbound message comes after it."""
    at = proposal.request.send.at
    later = sum(1 for message in proposal.request.history if message.at > at)
    if not later:
        return proposal
    return replace(proposal, history_source={
        "given": "history", "events": len(proposal.request.history), "after_send": later,
        "note": f"{later} of the history's messages {'is' if later == 1 else 'are'} dated after send.at and not "
                "read: a decision sees only what happened before the send (decide each send at its own time)"})


def _same_user(ref: dict[str, Any], request: DecisionRequest) -> None:
    """Refuse a `history_ref.contact` that names another user than the recipient: the decision would read
    someone else's window (a free-form send allowed on the history of a user who wrote, to one who never did).
    The contact may be the recipient itself or an identity the store holds for the same user (a BSUID linked to
    the wa_id, or the recipient being a number the contact's user had before, a stored number change); raises
    ServiceError 422 naming history_ref.contact otherwise."""
    contact, to = str(ref.get("contact") or "").lstrip("+"), request.send.to.lstrip("+")
    if not contact or to in wa_id_forms(contact):  # the recipient, or Meta's wa_id for the same number
        return
    known = {identity for part in history_reads.sources(ref["phone_number_id"], contact, request.send.at)
             for identity in part.contacts}
    if to not in known:
        raise ServiceError(422, "invalid request: history_ref.contact: names another user than send.to", {
            "history_ref.contact": [f"names another user than send.to ({request.send.to}): give the recipient's "
                                    "wa_id, or a BSUID linked to it"]})


def in_batch(refused: ServiceError, index: int) -> ServiceError:
    """`refused`, raised for the request at `index` of a batch, naming its fields as a batch's errors name them:
    requests.<index>.<field> (the request as a whole, `_request`, is requests.<index>), in the message too.
    A refusal naming no field (a 503: the storage, not the request) is returned as it is."""
    if not refused.errors:
        return refused
    at = f"requests.{index}"

    def named(key: str) -> str:
        return key if key == MORE else at if key == ROOT else f"{at}.{key}"

    errors = {named(key): messages for key, messages in refused.errors.items()}
    head = "invalid request: "
    first = next((key for key in refused.errors if refused.message.startswith(f"{head}{key}:")), None)
    message = f"{head}{named(first)}{refused.message[len(head) + len(first):]}" if first is not None \
        else f"{at}: {refused.message}"
    return ServiceError(refused.code, message, errors, retry_after=refused.retry_after)


def all_refusals(refusals: Sequence[ServiceError]) -> ServiceError:
    """One ServiceError for the refusals of several requests of a batch (each named by `in_batch`): their fields
    together, at most MAX_ERRORS of them (the rest counted under `_more`), under their one status (422 when they
    differ); the message names the first field and counts the others. One refusal is returned as it is."""
    if len(refusals) == 1:
        return refusals[0]
    errors: dict[str, list[str]] = {}
    unlisted = 0
    for refused in refusals:
        for key, messages in refused.errors.items():
            if key == MORE:  # "N more fields with errors are not listed"
                unlisted += int(messages[0].split()[0]) if messages and messages[0].split()[0].isdigit() else 1
            else:
                errors[key] = messages
    if unlisted or len(errors) > MAX_ERRORS:
        kept = MAX_ERRORS - 1
        unlisted += max(0, len(errors) - kept)
        errors = dict(list(errors.items())[:kept])
        errors[MORE] = [f"{unlisted} more fields with errors are not listed"]
    listed = [key for key in errors if key != MORE]
    more = len(listed) - 1 + unlisted
    message = f"invalid request: {listed[0]}: {errors[listed[0]][0]}" + (f" (and {more} more)" if more else "")
    codes = {refused.code for refused in refusals}
    return ServiceError(codes.pop() if len(codes) == 1 else 422, message, errors)


@dataclass(frozen=True)
class Decisions:
    """The pipeline's steps that read the policy (rulebook and engine) or the masking setting.

    `mask`: phone numbers and BSUIDs in the log keep only their country part (MASK_PHONE_NUMBERS).
    """

    policy: Policy
    mask: bool = True

    def decide(self, proposal: Proposal) -> Decided:
        """Every step in order: the decision, logged, with its response. Raises ServiceError (422) for a
        template the request and the registry leave without a category or status, and whatever the
        decision log raises when it cannot store the row (no unlogged decision is returned)."""
        return self.log(self.preview(proposal))

    def decide_all(self, proposals: Sequence[Proposal]) -> list[Decided]:
        """A batch, all or nothing: every proposal taken through every step but the log (`preview`) before
        any is logged, then every row logged all or none (decision_log.record_all: in one transaction, which may
        be shared with other decisions' rows but fails alone; inside a caller's transaction, such as an
        Idempotency-Key's, by it). Returns the decisions in order. Raises one ServiceError naming every request
        refused once the store was read, each field as requests.<index>.<field> (`in_batch`, `all_refusals`) — or
        at once a refusal naming no field (a 503: the storage) — and whatever the log raises when it cannot store
        the rows: either way no row of the batch is logged."""
        previews = []
        refusals = []
        for index, proposal in enumerate(proposals):
            try:
                previews.append(self.preview(proposal))
            except ServiceError as refused:
                if not refused.errors:  # the storage, not the request: the others cannot be judged either
                    raise
                # Every request is judged, so a client fixes them all at once (README: both named in one answer).
                refusals.append(in_batch(refused, index))
        if refusals:
            raise all_refusals(refusals)
        decision_log.record_all([decision_log.Logged(decided.decision, decided.logged, decided.body, decided.text,
                                                     decided.api_key) for decided in previews],
                                mask=self.mask, rulebook=self.policy.rulebook,
                                dictionary_samples=partial(dictionary_samples, self.policy))
        return previews

    def preview(self, proposal: Proposal) -> Decided:
        """Every step but the log: the decision the service would make now, not recorded (`policy-service
        check`). Reads the store only for a request naming its sending number (history_ref or
        send.phone_number_id). Raises ServiceError as `decide` does."""
        try:
            evaluated = self.fill_in_pricing(self.evaluate(self.fill_in_business_state(
                resolve_history(proposal, self.policy.rulebook))))
        except (ServiceError, *STORAGE_FAULTS):  # the request refused, the storage down: said as such (4xx, 503)
            raise
        except Exception as error:  # noqa: BLE001 - an internal error in any step denies, never a 500 or allow
            evaluated = Evaluated(proposal, failed(error, self.policy.rulebook))
        return self.respond(evaluated)

    def fill_in_business_state(self, proposal: Proposal) -> Proposal:
        """What the store knows of the sending business filled into the request and the logged request (and, for a
        send.phone_number_id the store has never seen, `business_state` saying so)."""
        request, logged = business.enrich(proposal.request, proposal.logged, proposal.phone_number_id,
                                          proposal.contact, self.policy.rulebook)
        unknown = business.unknown_number(proposal.logged) if proposal.phone_number_id is not None else None
        if request is proposal.request and logged is proposal.logged and unknown is None:
            return proposal
        return replace(proposal, request=request, logged=logged, business_state=unknown)

    def evaluate(self, proposal: Proposal) -> Evaluated:
        """The core's decision for the request (all rules, with the trace; why-not too when asked)."""
        return Evaluated(proposal, evaluate(proposal.request, rulebook=self.policy.rulebook,
                                            engine=self.policy.engine, explain_why_not=proposal.explain_why_not))

    def fill_in_pricing(self, evaluated: Evaluated) -> Evaluated:
        """The charge priced in the WABA's stored currency and at this month's stored volume, where the request
        gives neither (service.pricing); the logged request carries the values used."""
        proposal = evaluated.proposal
        request, logged, decision = pricing.fill_in(proposal.request, proposal.logged, proposal.phone_number_id,
                                                    evaluated.decision, self.policy.rulebook)
        if decision is evaluated.decision:
            return evaluated
        return Evaluated(replace(proposal, request=request, logged=logged), decision)

    @staticmethod
    def respond(evaluated: Evaluated) -> Decided:
        """The response body and its JSON bytes (serialized once: the log row stores the bytes the caller gets)."""
        body = dump_response(evaluated.decision)  # RESPONSE.dump, compiled (contract.fastdump)
        if evaluated.proposal.history_source is not None:
            body["history_source"] = evaluated.proposal.history_source
        if evaluated.proposal.business_state is not None:
            body["business_state"] = evaluated.proposal.business_state
        return Decided(evaluated.decision, body, decision_log.dumps(body), evaluated.proposal.logged,
                       evaluated.proposal.api_key)

    def log(self, decided: Decided) -> Decided:
        """The decision written to the decision log (one committed row) before it is returned."""
        decision_log.record(decided.decision, decided.logged, decided.body, mask=self.mask,
                            response_json=decided.text, api_key=decided.api_key, rulebook=self.policy.rulebook,
                            dictionary_samples=partial(dictionary_samples, self.policy))
        return decided


# Requests whose decisions are the sample rows of the decision log's compression dictionary (store.log_compression):
# the usual kinds of send (a template inside and outside the window, marketing allowed and refused, authentication,
# free-form refused), so most of a logged row is found whole in the dictionary. Changing them changes the
# dictionary of the rulebooks used next (a new one is stored; rows keep theirs).
DICTIONARY_EXAMPLES: tuple[dict[str, Any], ...] = (
    {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
              "template": {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}},
     "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}]},
    {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},
     "history": [{"direction": "inbound", "at": "2025-08-10T09:00:00+00:00", "type": "text"}]},
    {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+14155550100", "type": "template",
              "template": {"name": "spring_sale", "language": "en_US", "category": "marketing", "status": "APPROVED"}}},
    {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+919876543210", "type": "template",
              "template": {"name": "otp", "language": "en", "category": "authentication", "status": "APPROVED"}},
     "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"},
                 {"direction": "outbound", "at": "2025-08-12T09:05:00+00:00", "type": "text", "status": "read"}]},
    {"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
              "template": {"name": "spring_sale", "language": "pt_BR", "category": "marketing", "status": "APPROVED"}}},
)


def dictionary_samples(policy: Policy) -> list[bytes]:
    """The sample rows of the decision log's compression dictionary for this policy: each DICTIONARY_EXAMPLES
    request decided (not logged; the store is not read) and written as a row holds it (masked), its random
    decision_id as zeros, so the same rulebook and code always give the same bytes."""
    pipeline = Decisions(policy)
    samples = []
    for raw in DICTIONARY_EXAMPLES:
        decided = pipeline.preview(proposal(REQUEST.load(raw), raw))
        text = decided.text.replace(decided.decision.decision_id.encode(), b"0" * len(decided.decision.decision_id))
        samples.append(log_compression.frame(decision_log.logged_texts(decided.logged, decided.body, text, mask=True)))
    return samples
