"""Combine the rules that fired into one decision, with the trace that explains it.

The combining algorithm (also in README.md):
1. Any rule that denies wins: the decision is deny, determined by every denying rule.
2. Otherwise, if a rule allows, the decision is allow, determined by every allowing rule.
3. Otherwise no rule applied: deny, with status "not_applicable" (never a silent allow).
Required message type: "template" if any applying rule requires one, else "any" if a rule
permits any type, else "template" (the stricter answer). Charge: among the charge rules that
applied, the one with the lowest priority number decides; the others are shown as overridden.
On a deny no charge rule is determining: a denied send is not delivered, so nothing is billed, and
no sentence of its trace says it is billed or counts toward a limit (a rule's `because_if_denied`,
or for a charge rule NOT_DELIVERED, replaces its sentence).
An engine or action error never reaches here: evaluation returns `fail_closed` instead.
"""

from __future__ import annotations

import string
from bisect import bisect_right
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from msgspec import Struct

from .facts import Facts, text_maker
from .pricing import Price, PriceLine
from .rulebook import CONFIDENCE, PolicyVersion, Rule, Rulebook

DECIDED, NOT_APPLICABLE, ERROR = "decided", "not_applicable", "error"
# A charge rule's sentence on a denied send: what it would classify never happens.
NOT_DELIVERED = ("Not applied: the send is denied, so Meta does not deliver it; it opens nothing and nothing is "
                 "billed for it.")


class Charge(Struct, frozen=True, gc=False):
    """How Meta will charge the send, in the vocabulary of its webhook `pricing` object.

    Immutable, compared and hashed field by field, as the frozen dataclass it was; a msgspec Struct (made in C,
    fields in slots; records.replace copies it) because each decision makes two or three (classified, priced).
    """

    billable: bool
    pricing_model: str
    category: str
    type: str | None
    opens_conversation: bool
    conversation_expires_at: datetime | None
    opens: str | None = None
    lasts_until: datetime | None = None
    closes_others: bool = False
    rule: str | None = None
    participants: int | None = None  # Groups API: participants billed if it reaches every one
    # --- pricing (issue 11): set by evaluate after combining; `price` is None when it cannot be known.
    price: Price | None = None
    price_reason: str | None = None
    price_lines: tuple[PriceLine, ...] = ()  # group sends: each participant's price (or why it has none)


class Reason(Struct, frozen=True, gc=False):
    """One rule in the trace: what it did and why, in a sentence with the concrete values.

    Immutable, compared field by field and hashed without `sources`, as a frozen dataclass with
    `field(hash=False)` is; a msgspec Struct because a decision makes one per trace entry (~5): made in C
    from its fields (~0.13 µs, against ~0.4 µs for a record's dict copy), its fields in slots
    (records.replace copies it). Never part of a reference cycle (strings, tuples and a dict of strings):
    the collector does not track it.
    """

    rule: str
    title: str
    effect: str
    citation: str
    confidence: str
    because: str
    determining: bool
    defaults: tuple[str, ...] = ()
    note: str | None = None
    # fact -> where its value came from (a stored webhook and its time, a count over stored statuses)
    sources: dict[str, str] = {}  # a new empty dict for each Reason made without it

    def __hash__(self) -> int:
        return hash((self.rule, self.title, self.effect, self.citation, self.confidence, self.because,
                     self.determining, self.defaults, self.note))


# Prices a charge: (the charge priced, the trace entry saying how or None, the facts with what pricing used).
Pricing = Callable[[Charge, Facts], tuple[Charge, Reason | None, Facts]]


class Decision(Struct, frozen=True, gc=False):
    """The answer for one proposed send.

    Immutable and compared field by field, as the frozen dataclass it was; a msgspec Struct (made in C, fields in
    slots; records.replace copies it), made once per decision.
    """

    decision: str
    status: str
    required_message_type: str
    charge: Charge | None
    policy_version: str | None
    rulebook_version: str
    trace: tuple[Reason, ...]
    facts: Facts | None
    error_codes: tuple[int, ...] = ()
    error: str | None = None
    classified_charge: Charge | None = None
    decision_id: str = ""
    why_not: tuple = ()

    @property
    def determining_rules(self) -> tuple[str, ...]:
        """Ids of the rules that determined the outcome."""
        return tuple(r.rule for r in self.trace if r.determining)


def combine(fired: tuple[str, ...], facts: Facts, rulebook: Rulebook, *, explain: bool = True,
            decision_id: str = "", price: Pricing | None = None) -> Decision:
    """Combine fired rule ids into a decision (deny overrides allow; named resolution for type and charge).

    `price`, given, prices the charge (core.evaluate.price_parts): its trace entry, when it returns one, ends
    the trace, and its facts (with the pricing defaults and sources it used) are the decision's.
    """
    outcome = _outcome(fired, rulebook)
    rule = outcome.charge_rule
    classified = _charge(rule, facts) if rule else None
    charge = classified if outcome.decision == "allow" or classified is None else _undelivered(classified)
    trace = _trace(outcome, facts) if explain else ()
    version = _VERSIONS.get((rulebook.version, facts.day), _UNKNOWN)  # _version_on's common case, a call less
    if version is _UNKNOWN:
        version = _version_on(rulebook, facts.day)
    if price is not None and charge is not None:
        charge, priced, facts = price(charge, facts)
        if priced is not None:
            trace = (*trace, priced)
    return Decision(outcome.decision, outcome.status, outcome.required, charge, version.id if version else None,
                    rulebook.version, trace, facts, outcome.error_codes,
                    _no_version(rulebook, facts.day) if version is None else None, classified, decision_id)


def _no_version(rulebook: Rulebook, day: date) -> str:
    """Why a send on a day no policy version covers is not decided (status not_applicable: no rule is in force),
    with the versions' days read from the rule files."""
    if not rulebook.versions:
        return f"no policy version is in force on {day}: the rulebook defines none"
    first = min(rulebook.versions, key=lambda v: v.effective_from)
    if day < first.effective_from:
        return (f"no policy version is in force on {day}: the rules begin with {first.id} on "
                f"{first.effective_from} (rules/versions.yaml); nothing here decides an earlier send")
    return f"no policy version is in force on {day} (rules/versions.yaml): nothing here decides it"


def _trace(outcome: _Outcome, facts: Facts) -> tuple[Reason, ...]:
    """The trace entries of the outcome's rules, in its order, for these facts."""
    defaults = facts.defaults
    zone_days = _zone_days(outcome, facts) if "waba_timezone" in defaults and facts.day in outcome.near_changes \
        else None
    sources = facts.sources
    if sources:
        # Each value a sentence names, in words, made once for all the sentences of the decision.
        values = facts.texts(outcome.named) if outcome.named else {}
        return tuple(Reason(*step.head, step.sentence(values), step.determining, step.defaults(defaults, zone_days),
                            step.note, {f: sources[f] for f in sorted(step.rule.facts_read & sources.keys())})
                     for step in outcome.ordered)
    # Without sources an entry depends on the facts only through its sentence: the rest of it is made once
    # per outcome and defaults used (a compiled builder, _builder), and an entry whose sentence names no value is
    # made once whole.
    key = (defaults, zone_days)
    build = outcome.builders.get(key)
    if build is None:
        build = _builder(outcome, defaults, zone_days)
        if len(outcome.builders) < _CACHE_SIZE:
            outcome.builders[key] = build
    return build(outcome.texts(facts) if outcome.named else ())


def _zone_days(outcome: _Outcome, facts: Facts) -> tuple[date, date] | None:
    """The span of local days the send's instant has in some zone (zone_span), when the WABA time zone was
    defaulted and some rule of the outcome comes into or goes out of force within it; else None."""
    # Only a rule whose in-force state changes on a day of that span can depend on the zone; with the zone
    # defaulted (UTC) that span lies within a day of `facts.day`.
    if "waba_timezone" not in facts.defaults or facts.day not in outcome.near_changes:
        return None
    zone_days = zone_span(facts.at)
    changes = outcome.changes
    at = bisect_right(changes, zone_days[0])
    return zone_days if at < len(changes) and changes[at] <= zone_days[1] else None




def _builder(outcome: _Outcome, defaults: frozenset[str],
             zone_days: tuple[date, date] | None) -> Callable[[tuple[str, ...]], tuple[Reason, ...]]:
    """A function of the words of `outcome.named` (facts.text_maker's tuple) giving the outcome's trace for facts
    with these defaults used (and `zone_days`, see _trace) and no sources: what _trace's sources branch makes.

    Written as source and compiled once per outcome and defaults: each entry whose sentence names a value is a
    Reason made from its fields fixed once (its own empty `sources`), its sentence filled in C
    (`pattern % words`); an entry whose sentence names none is made once whole.
    """
    namespace: dict[str, Any] = {"Reason": Reason}
    entries = []
    for number, step in enumerate(outcome.ordered):
        made = Reason(*step.head, "" if step.named else step.sentence({}), step.determining,
                      step.defaults(defaults, zone_days), step.note, {})
        if not step.named:
            namespace[f"entry{number}"] = made
            entries.append(f"entry{number}")
            continue
        # Reason's fields in order as names of the namespace, `because` (the sixth) an expression set below.
        fixed = [f"{name}{number}" for name in _REASON_FIELDS]
        namespace.update((name, getattr(made, field)) for name, field in zip(fixed, _REASON_FIELDS, strict=True)
                         if field != "because")
        pattern, named = step.filler
        if named is None:  # a sentence with a format spec or conversion: str.format, from the words by name
            namespace[f"template{number}"], namespace["names"] = pattern, outcome.named
            because = f"template{number}.format_map(dict(zip(names, words)))"
        else:
            namespace[f"pattern{number}"] = pattern
            picked = "".join(f"words[{outcome.named.index(name)}], " for name in named)
            because = f"pattern{number} % ({picked})"
        fixed[5] = because
        entries.append(f"Reason({', '.join(fixed)}, {{}})")
    source = f"def build(words):\n    return ({''.join(f'{entry}, ' for entry in entries)})\n"
    exec(source, namespace)  # noqa: S102 - source made here from positions only (no name or value is in it)
    return namespace["build"]


_REASON_FIELDS = Reason.__struct_fields__[:-1]  # every field but `sources`, in order


def _filler(template: str) -> tuple[str, tuple[str, ...] | None]:
    """The sentence template as a printf-style pattern and the names whose words fill it, in order:
    `pattern % tuple(values[name] for name in names)` is `template.format_map(values)` for plain names with text
    values, made in C. A template with a format spec, conversion or a name that is not plain stays itself (names
    None)."""
    pieces, names = [], []
    for literal, name, spec, conversion in string.Formatter().parse(template):
        pieces.append(literal.replace("%", "%%"))
        if name is not None:
            if spec or conversion or not name.isidentifier():
                return template, None
            pieces.append("%s")
            names.append(name)
    return "".join(pieces), tuple(names)


def charge_terms(charge: Charge | None) -> tuple[Any, ...] | None:
    """What Meta would bill: model, category, type, billable, and whether it opens a conversation."""
    return None if charge is None else (charge.pricing_model, charge.category, charge.type, charge.billable,
                                        charge.opens_conversation)


def classify(fired: tuple[str, ...], facts: Facts, rulebook: Rulebook) -> Charge | None:
    """The charge the fired rules give a send, as combine() classifies it, without building a decision."""
    rule = _outcome(fired, rulebook).charge_rule
    return _charge(rule, facts) if rule else None


class _Step:
    """One rule of the trace as combining orders it; what does not depend on the facts is made once."""

    __slots__ = ("rule", "determining", "note", "effect", "head", "named", "template", "filler", "_fixed",
                 "_defaults")

    def __init__(self, rule: Rule, determining: bool, note: str | None, *, denied: bool = False) -> None:
        self.rule, self.determining, self.note, self.effect = rule, determining, note, rule.effect
        self.head = (rule.id, rule.title, self.effect, rule.citation, rule.confidence)  # a Reason's first fields
        prefix = f"[{rule.confidence}: {CONFIDENCE[rule.confidence]}] " if rule.confidence != "C" else ""
        # On a deny the send is never delivered: a sentence that assumes delivery gives way to one that does not.
        if denied and rule.because_if_denied:
            template = rule.because_if_denied
        elif denied and rule.charge is not None:
            template = NOT_DELIVERED.replace("{", "{{").replace("}", "}}")
        else:
            template = rule.because
        # The names the sentence reads (rulebook.py admits only plain fact and display names).
        self.named = tuple(dict.fromkeys(name for _, name, _, _ in string.Formatter().parse(template) if name))
        self.template = prefix.replace("{", "{{").replace("}", "}}") + template
        self.filler = _filler(self.template)  # (pattern, names): the sentence made in C (decision._builder)
        # A sentence that names no value is the same for every decision.
        self._fixed = (self.template.format_map({}) if template else prefix + rule.description) if not self.named \
            else None
        self._defaults: dict[frozenset[str], tuple[str, ...]] = {}

    def sentence(self, values: dict[str, str]) -> str:
        """The `because` sentence with the facts' values (the description when the rule has none); `values`
        holds the text of every name in `named`."""
        fixed = self._fixed
        return fixed if fixed is not None else self.template.format_map(values)

    def defaults(self, used: frozenset[str], zone_days: tuple[date, date] | None = None) -> tuple[str, ...]:
        """The context defaults this rule read, of those the facts used, sorted.

        The WABA time zone is read through the WABA-local day: by a rule testing `waba_date`, and, when the
        zone was defaulted (`zone_days`, zone_span of the send's time), by a rule whose being in force at that
        instant depends on the zone (the send is within a day of one of its effective dates).
        """
        found = self._defaults.get(used)
        if found is None:
            names = self.rule.facts_read & used
            if "waba_timezone" in used and "waba_date" in self.rule.facts_read:
                names = names | {"waba_timezone"}
            found = tuple(sorted(names))
            if len(self._defaults) < _CACHE_SIZE:
                self._defaults[used] = found
        if zone_days is not None and "waba_timezone" not in found and _in_force_varies(self.rule, *zone_days):
            found = tuple(sorted((*found, "waba_timezone")))
        return found


@dataclass(frozen=True)
class _Outcome:
    """Everything combining decides from the fired rule ids alone, before any fact is read."""

    decision: str
    status: str
    required: str
    charge_rule: Rule | None
    ordered: tuple[_Step, ...]  # trace order
    error_codes: tuple[int, ...]
    named: tuple[str, ...] = ()  # every name the sentences of `ordered` read, once
    changes: tuple[date, ...] = ()  # sorted: each day on which a rule of `ordered` comes into or goes out of force
    # (defaults used, zone_days) -> the function making the trace from the words of `named` (_builder); filled as
    # decisions are made.
    builders: dict[tuple[Any, ...], Callable[[tuple[str, ...]], tuple[Reason, ...]]] = field(default_factory=dict,
                                                                                           compare=False)
    # Every day within a day of one of `changes`: a send on another (UTC) day has the same rules in force in every
    # zone.
    near_changes: frozenset[date] = frozenset()
    # The words of `named` for facts (facts.text_maker).
    texts: Callable[[Facts], tuple[str, ...]] = field(default=tuple, compare=False)


# Combining depends only on which rules fired, and few distinct sets of them occur; bounded, cleared when full.
_OUTCOMES: dict[tuple[str, tuple[str, ...]], _Outcome] = {}
_VERSIONS: dict[tuple[str, date], PolicyVersion | None] = {}
# id of a tuple of fired rule ids -> (that tuple, the rulebook, their _Outcome), see _outcome.
_OUTCOMES_OF: dict[int, tuple[tuple[str, ...], Rulebook, _Outcome]] = {}
_CACHE_SIZE = 4096
_UNKNOWN: Any = object()


# The offsets a WABA time zone can have (UTC-12:00 to UTC+14:00): the local day of one instant spans these.
_EARLIEST_OFFSET, _LATEST_OFFSET = timedelta(hours=-12), timedelta(hours=14)


def zone_decides(rule: Rule, at: datetime) -> bool:
    """True when whether `rule` is in force at instant `at` depends on the WABA time zone: some zone's local
    day at `at` is in the rule's effective dates and another's is not."""
    return _in_force_varies(rule, *zone_span(at))


def zone_span(at: datetime) -> tuple[date, date]:
    """The first and last local day any WABA time zone can have at instant `at`."""
    utc = at.astimezone(UTC)
    return (utc + _EARLIEST_OFFSET).date(), (utc + _LATEST_OFFSET).date()


def _in_force_varies(rule: Rule, first: date, last: date) -> bool:
    # The rule is in force on one interval of days (Rule.in_force), so over the days first..last it is in
    # force on some and not on others exactly when that interval meets the span without covering it.
    until = rule.effective_until or date.max
    meets = max(first, rule.effective_from) <= min(last, until)
    covers = rule.effective_from <= first and last <= until
    return meets and not covers


def _outcome(fired: tuple[str, ...], rulebook: Rulebook) -> _Outcome:
    # The engine's memo hands out one tuple per set of fired rules: found first by its id (held, so the id is not
    # reused while remembered), without hashing the rule ids.
    held = _OUTCOMES_OF.get(id(fired))
    if held is not None and held[0] is fired and held[1] is rulebook:
        return held[2]
    key = (rulebook.version, fired)
    outcome = _OUTCOMES.get(key)
    if outcome is None:
        outcome = _combine_rules(fired, rulebook)
        _remember(_OUTCOMES, key, outcome)
    _remember(_OUTCOMES_OF, id(fired), (fired, rulebook, outcome))
    return outcome


def _version_on(rulebook: Rulebook, day: date) -> PolicyVersion | None:
    key = (rulebook.version, day)
    version = _VERSIONS.get(key, _UNKNOWN)
    if version is not _UNKNOWN:
        return version
    version = rulebook.version_on(day)
    _remember(_VERSIONS, key, version)  # another thread may clear the cache at any time: keep our own
    return version


def _remember(cache: dict, key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value


def _combine_rules(fired: tuple[str, ...], rulebook: Rulebook) -> _Outcome:
    rules = sorted((rulebook.rule(rule_id) for rule_id in fired), key=lambda r: (r.priority, r.id))
    denies = [r for r in rules if r.decision == "deny"]
    allows = [r for r in rules if r.decision == "allow"]
    if denies:
        decision, status, deciders = "deny", DECIDED, denies
    elif allows:
        decision, status, deciders = "allow", DECIDED, allows
    else:
        decision, status, deciders = "deny", NOT_APPLICABLE, []

    template_rules = [r for r in rules if r.message_type == "template"]
    any_rules = [r for r in rules if r.message_type == "any"]
    required = "template" if template_rules or not any_rules else "any"
    type_deciders = template_rules or any_rules

    charge_rules = [r for r in rules if r.charge is not None]
    determining = {r.id for r in deciders} | {r.id for r in type_deciders}
    if charge_rules and decision == "allow":  # a denied send is not delivered: no charge rule decides anything
        determining.add(charge_rules[0].id)
    ordered = sorted(rules, key=lambda r: (r.id not in determining, r.charge is not None, r.priority, r.id))
    steps = tuple(_Step(rule, rule.id in determining, _note(rule, charge_rules, decision), denied=decision != "allow")
                  for rule in ordered)
    named = tuple(dict.fromkeys(name for step in steps for name in step.named))
    error_codes = tuple(r.error_code for r in denies if r.error_code)
    return _Outcome(
        decision=decision,
        status=status,
        required=required,
        charge_rule=charge_rules[0] if charge_rules else None,
        ordered=steps,
        error_codes=error_codes,
        named=named,
        texts=text_maker(named),
        changes=tuple(sorted({day for rule in rules for day in _changes(rule)})),
        near_changes=_near({day for rule in rules for day in _changes(rule)}),
    )


def _near(days: set[date]) -> frozenset[date]:
    """The days within a day of one of `days`."""
    near = set()
    for day in days:
        for step in (-1, 0, 1):
            with suppress(OverflowError):  # past date.min or date.max: no such day
                near.add(day + timedelta(days=step))
    return frozenset(near)


def _changes(rule: Rule) -> tuple[date, ...]:
    """The days on which the rule's being in force differs from the day before (Rule.in_force)."""
    start, until = rule.effective_from, rule.effective_until
    if until is None:
        return (start,)
    if until < start:
        return ()  # never in force
    return (start, until + timedelta(days=1)) if until < date.max else (start,)


def fail_closed(error: Exception, rulebook_version: str, facts: Facts | None = None) -> Decision:
    """The decision when evaluation itself failed: deny, flagged as an error, never as a rule's deny."""
    return Decision(
        decision="deny",
        status=ERROR,
        required_message_type="template",
        charge=None,
        policy_version=None,
        rulebook_version=rulebook_version,
        trace=(),
        facts=facts,
        error=str(error),
    )


def _charge(rule: Rule, facts: Facts) -> Charge:
    # What does not depend on the facts is made once per rule (a rule is immutable and lives in its rulebook,
    # which the memo holds, so its id is not reused while remembered).
    held = _CHARGES.get(id(rule))
    if held is None or held[0] is not rule:
        held = (rule, *_charge_plan(rule))
        _remember(_CHARGES, id(rule), held)
    _rule, (billable, model, category, kind, opens_conversation, opens, closes_others, rule_id), lasts, rides, \
        category_of, per_participant = held
    expires = until = None
    if opens:
        if lasts:
            expires = until = facts.at + lasts
    elif rides:
        expires = facts.expiries.get(rides)
    if category_of is not None:
        category = category_of(facts.engine)
    return Charge(billable, model, category, kind, opens_conversation, expires, opens, until, closes_others, rule_id,
                  facts.engine["group_participants"] if per_participant else None)


def _charge_plan(rule: Rule) -> tuple[tuple[Any, ...], timedelta | None, str | None,
                                      Callable[[dict[str, Any]], str] | None, bool]:
    """What _charge reads of a charge rule's effect: the Charge fields that do not depend on the facts (billable,
    pricing_model, category or "" when the facts choose it, type, opens_conversation, opens, closes_others, rule),
    how long what it opens lasts, the period it rides, the function choosing its category from the facts (None
    when it names one), and whether it is billed per participant."""
    effect = rule.charge
    assert effect is not None
    named = isinstance(effect.category, str)
    fixed = (effect.billable, effect.pricing_model, effect.category if named else "", effect.type,
             effect.opens in ("conversation", "free_entry_point_conversation"), effect.opens, effect.closes_others,
             rule.id)
    return fixed, effect.lasts, effect.rides, None if named else effect.category_for, effect.per_participant


# id of a charge rule -> (the rule, held so the id is not reused; then _charge_plan of it).
_CHARGES: dict[int, tuple[Any, ...]] = {}


def _undelivered(classified: Charge) -> Charge:
    # A denied send is not delivered, so Meta charges nothing and opens nothing.
    return Charge(
        billable=False,
        pricing_model=classified.pricing_model,
        category=classified.category,
        type=None,
        opens_conversation=False,
        conversation_expires_at=None,
        rule=classified.rule,
    )


def _note(rule: Rule, charge_rules: list[Rule], decision: str) -> str | None:
    if rule.charge is None:
        return None
    if rule is not charge_rules[0]:
        return f"overridden by {charge_rules[0].id} (lower priority number)"
    if decision != "allow":
        return "not determining: a denied send is not delivered, so this classification never happens"
    return None
