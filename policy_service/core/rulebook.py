"""Load rule files from rules/, validate them strictly, and compile them for the engine."""

from __future__ import annotations

import hashlib
import re
import string
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml

from .errors import RulebookError
from .facts import DISPLAY_VALUES, FACT_TYPES, PARAMETER_TYPES, day_number
from .periods import CALENDAR_MONTH
from .rates import RateBook, load_ratebook

CONFIDENCE = {"C": "confirmed", "S": "secondary", "R": "unconfirmed"}
DECISIONS = ("allow", "deny")
MESSAGE_TYPES = ("template", "any")
OPENS = ("conversation", "free_entry_point_conversation", "free_entry_point_window")
RIDES = ("same_category", "any_conversation", "free_entry_point")
OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in")

FILE_KEYS = {"area", "about", "versions", "parameters", "rules"}
RULE_KEYS = {
    "id", "title", "description", "citation", "source", "confidence", "effective",
    "when", "then", "because", "because_if_denied", "priority",
}
THEN_KEYS = {"decision", "error_code", "message_type", "charge", "advice"}
CHARGE_KEYS = {"pricing_model", "category", "type", "billable", "opens", "lasts", "rides", "closes_others",
               "per_participant"}
VERSION_KEYS = {"id", "title", "from", "until", "pricing_model", "citation", "confidence", "description"}
PARAMETER_KEYS = {"id", "name", "title", "description", "citation", "source", "confidence", "effective", "value"}
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[0-9A-Za-z]+)*(\.[a-z0-9-]+)?$")


@dataclass(frozen=True)
class ChargeEffect:
    """How a rule classifies the send's charge, in Meta's webhook vocabulary."""

    pricing_model: str
    category: str | dict[str, str]
    type: str
    billable: bool
    opens: str | None = None
    lasts: timedelta | None = None
    rides: str | None = None
    closes_others: bool = False
    per_participant: bool = False  # Groups API: billed once per participant it is delivered to

    def category_for(self, facts: dict[str, Any]) -> str:
        """The category, taken from a fact when the rule names one."""
        if isinstance(self.category, dict):
            return str(facts[self.category["fact"]])
        return self.category


@dataclass(frozen=True)
class Rule:
    """One encoded regulation: conditions over named facts and the effect they have."""

    id: str
    title: str
    description: str
    citation: str
    confidence: str
    effective_from: date
    effective_until: date | None
    when: dict[str, Any]
    file: str
    source: str | None = None
    decision: str | None = None
    error_code: int | None = None
    message_type: str | None = None
    charge: ChargeEffect | None = None
    advice: bool = False
    because: str = ""
    because_if_denied: str = ""  # the sentence when the send is denied (an advice that assumes delivery)
    priority: int = 100
    facts_read: frozenset[str] = frozenset()
    area: str = ""  # the `area` its file names (the file name when it names none)

    @property
    def effect(self) -> str:
        """A short description of what this rule does when it applies."""
        parts = []
        if self.decision:
            parts.append(self.decision + (f" ({self.error_code})" if self.error_code else ""))
        if self.message_type:
            parts.append("require template" if self.message_type == "template" else "any message type")
        if self.charge:
            parts.append("charge")
        if self.advice or not parts:
            parts.append("advice")
        return ", ".join(parts)

    def in_force(self, on: date) -> bool:
        """True when the rule's effective dates cover the given day."""
        return self.effective_from <= on and (self.effective_until is None or on <= self.effective_until)

    def overlaps(self, version: PolicyVersion) -> bool:
        """True when the rule is in force on at least one day of the version."""
        rule_end, version_end = self.effective_until or date.max, version.effective_until or date.max
        return self.effective_from <= version_end and version.effective_from <= rule_end


@dataclass(frozen=True)
class PolicyVersion:
    """A dated version of WhatsApp's messaging and pricing policy."""

    id: str
    title: str
    effective_from: date
    effective_until: date | None
    pricing_model: str
    citation: str
    confidence: str
    description: str = ""
    file: str = ""  # the rule file that defines it

    def covers(self, on: date) -> bool:
        """True when the version is in force on the given day."""
        return self.effective_from <= on and (self.effective_until is None or on <= self.effective_until)


# Sub-versions are the same id and one lower-case letter (V2b … V2g, V3a, V3b), as README's table groups them.
SUB_VERSION_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def version_family(version_id: str) -> tuple[str, ...]:
    """The policy versions a filter on `version_id` names: an id ending in a digit (V3) names itself and its
    sub-versions (V3a, V3b … V3z: every one the letter could make, so decisions logged under a sub-version an older
    rulebook had still match); any other id (V3b) names only itself. E.g. "V3" -> ("V3", "V3a", …, "V3z")."""
    if not version_id[-1:].isdigit():
        return (version_id,)
    return (version_id, *(version_id + letter for letter in SUB_VERSION_LETTERS))


@dataclass(frozen=True)
class Parameter:
    """A cited regulatory value that fact derivation reads (a window length, a list of types)."""

    id: str
    name: str
    title: str
    description: str
    citation: str
    confidence: str
    value: Any
    file: str


@dataclass(frozen=True)
class Rulebook:
    """Every rule, policy version and parameter in a rules directory, validated."""

    rules: tuple[Rule, ...]
    versions: tuple[PolicyVersion, ...]
    parameters: dict[str, Parameter]
    version: str
    directory: str
    by_id: dict[str, Rule] = field(default_factory=dict)
    rates: RateBook = field(default_factory=RateBook)  # rate cards and market maps (rules/rates/)

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id."""
        return self.by_id[rule_id]

    def parameter(self, name: str) -> Any:
        """The value of a named parameter."""
        return self.parameters[name].value

    def version_on(self, on: date) -> PolicyVersion | None:
        """The most specific policy version in force on a day (the latest to start)."""
        covering = [v for v in self.versions if v.covers(on)]
        return max(covering, key=lambda v: v.effective_from) if covering else None

    def durable_ruleset(self) -> dict[str, dict[str, Any]]:
        """The rules compiled to durable_rules' JSON ruleset syntax (without actions)."""
        return {rule.id: {"all": [{"m": compile_condition(rule)}]} for rule in self.rules}


RATES_DIR = "rates"  # rules/rates/ holds rate cards and market maps, read by rates.load_ratebook


def load_rulebook(directory: str | Path, *, rate_cards: str | Path | None = None,
                  rate_card_tiers: str | Path | None = None) -> Rulebook:
    """Read and validate every *.yaml file under a rules directory, and its rate cards (rules/rates/).

    `rate_cards` (with `rate_card_tiers`) names Meta's downloaded CSV for the business's currency, or its
    BSP's rates in that layout, to price with instead of the shipped cards. Raises RulebookError
    (RateCardError for the cards) naming file and rule or card.
    """
    root = Path(directory)
    if not root.is_dir():
        raise RulebookError(f"rules directory {root} does not exist")
    rules: list[Rule] = []
    versions: list[PolicyVersion] = []
    parameters: dict[str, Parameter] = {}
    digest = hashlib.sha256()
    files = sorted(p for p in root.rglob("*.yaml") if p.is_file() and p.relative_to(root).parts[0] != RATES_DIR)
    if not files:
        raise RulebookError(f"no rule files (*.yaml) in {root}")
    for path in files:
        relative = str(path.relative_to(root))
        raw = path.read_bytes()
        digest.update(relative.encode() + b"\0" + raw + b"\0")
        document = _parse_yaml(raw, relative)
        if document is None:
            continue
        _check_keys(document, FILE_KEYS, relative, None, "file")
        versions.extend(_version(v, relative) for v in _list(document, "versions", relative))
        for item in _list(document, "parameters", relative):
            parameter = _parameter(item, relative)
            if parameter.name in parameters:
                raise RulebookError(f"parameter {parameter.name!r} defined twice", file=relative, rule=parameter.id)
            parameters[parameter.name] = parameter
        area = str(document.get("area") or relative)
        rules.extend(_rule(item, relative, area) for item in _list(document, "rules", relative))
    by_id: dict[str, Rule] = {}
    for rule in rules:
        if rule.id in by_id:
            raise RulebookError(f"duplicate rule id (also in {by_id[rule.id].file})", file=rule.file, rule=rule.id)
        by_id[rule.id] = rule
    missing = sorted(set(PARAMETER_TYPES) - set(parameters))
    if missing:
        raise RulebookError(f"missing parameters: {', '.join(missing)}")
    if not versions:
        raise RulebookError("no policy versions defined")
    rates = load_ratebook(root / RATES_DIR, csv_rates=rate_cards, csv_tiers=rate_card_tiers)
    digest.update(rates.version.encode())
    return Rulebook(
        rules=tuple(rules),
        versions=tuple(sorted(versions, key=lambda v: v.effective_from)),
        parameters=parameters,
        version="sha256:" + digest.hexdigest()[:16],
        directory=str(root),
        by_id=by_id,
        rates=rates,
    )


def compile_condition(rule: Rule) -> dict[str, Any]:
    """Translate a rule's `when` block and effective dates into a durable_rules expression."""
    terms = [{"$gte": {"waba_date": day_number(rule.effective_from)}}]
    if rule.effective_until is not None:
        terms.append({"$lte": {"waba_date": day_number(rule.effective_until)}})
    terms.extend(_compile_block(rule.when))
    return {"$and": terms}


def parse_period(text: Any) -> str | timedelta:
    """A counting period: `calendar_month` (in the WABA time zone) or a moving duration such as 24h."""
    if text == CALENDAR_MONTH:
        return CALENDAR_MONTH
    try:
        return parse_duration(text)
    except ValueError:
        raise ValueError(f"not a period: {text!r} (use calendar_month or a duration such as 24h)") from None


def parse_duration(text: Any) -> timedelta:
    """Parse '24h', '72h', '30m', '90s' or '7d' into a timedelta."""
    match = _DURATION.fullmatch(str(text).strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 24h, 30m, 90s)")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _compile_block(block: dict[str, Any]) -> list[dict[str, Any]]:
    terms: list[dict[str, Any]] = []
    for name, test in block.items():
        if name == "any_of":
            terms.append({"$or": [{"$and": _compile_block(alt)} for alt in test]})
            continue
        operator, value = _operator(test)
        if operator == "eq":
            terms.append({name: value})
        elif operator == "ne":
            terms.append({"$neq": {name: value}})
        elif operator == "in":
            terms.append({"$or": [{name: v} for v in value]})
        elif operator == "not_in":
            terms.append({"$and": [{"$neq": {name: v}} for v in value]})
        else:
            terms.append({"$" + operator: {name: value}})
    return terms


def _operator(test: Any) -> tuple[str, Any]:
    if isinstance(test, dict):
        ((operator, value),) = test.items()
        return operator, value
    return "eq", test


def _parse_yaml(raw: bytes, file: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as error:
        raise RulebookError(f"not valid YAML: {error}", file=file) from None


def _list(document: dict[str, Any], key: str, file: str) -> list[dict[str, Any]]:
    items = document.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RulebookError(f"'{key}' must be a list of mappings", file=file)
    return items


def _check_keys(item: dict[str, Any], allowed: set[str], file: str, rule: str | None, what: str) -> None:
    if not isinstance(item, dict):
        raise RulebookError(f"{what} must be a mapping", file=file, rule=rule)
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise RulebookError(f"unknown {what} key(s): {', '.join(unknown)}", file=file, rule=rule)


def _required(item: dict[str, Any], keys: tuple[str, ...], file: str, rule: str | None, what: str) -> None:
    missing = [k for k in keys if item.get(k) in (None, "")]
    if missing:
        raise RulebookError(f"{what} is missing {', '.join(missing)}", file=file, rule=rule)


def _date(value: Any, file: str, rule: str | None, what: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise RulebookError(f"{what} is not a date (YYYY-MM-DD): {value!r}", file=file, rule=rule) from None


def _confidence(value: Any, file: str, rule: str | None) -> str:
    if value not in CONFIDENCE:
        raise RulebookError(f"confidence must be one of C, S, R (got {value!r})", file=file, rule=rule)
    return str(value)


def _effective(item: dict[str, Any], file: str, rule: str) -> tuple[date, date | None]:
    effective = item.get("effective")
    if not isinstance(effective, dict) or "from" not in effective:
        raise RulebookError("effective must be a mapping with from (and optional until)", file=file, rule=rule)
    _check_keys(effective, {"from", "until"}, file, rule, "effective")
    start = _date(effective["from"], file, rule, "effective.from")
    end = effective.get("until")
    until = None if end is None else _date(end, file, rule, "effective.until")
    if until is not None and until < start:
        raise RulebookError(f"effective.until {until} is before effective.from {start}", file=file, rule=rule)
    return start, until


def _version(item: dict[str, Any], file: str) -> PolicyVersion:
    rid = item.get("id")
    _check_keys(item, VERSION_KEYS, file, rid, "version")
    _required(item, ("id", "title", "from", "pricing_model", "citation", "confidence"), file, rid, "version")
    until = item.get("until")
    return PolicyVersion(
        id=str(rid),
        title=str(item["title"]),
        effective_from=_date(item["from"], file, rid, "from"),
        effective_until=None if until is None else _date(until, file, rid, "until"),
        pricing_model=str(item["pricing_model"]),
        citation=str(item["citation"]),
        confidence=_confidence(item["confidence"], file, rid),
        description=str(item.get("description", "")).strip(),
        file=file,
    )


def _parameter(item: dict[str, Any], file: str) -> Parameter:
    pid = item.get("id")
    _check_keys(item, PARAMETER_KEYS, file, pid, "parameter")
    _required(item, ("id", "name", "title", "citation", "confidence"), file, pid, "parameter")
    name = item["name"]
    if name not in PARAMETER_TYPES:
        raise RulebookError(f"unknown parameter name {name!r}", file=file, rule=pid)
    kind = PARAMETER_TYPES[name]
    value = item.get("value")
    try:
        if kind == "duration":
            value = parse_duration(value)
        elif kind == "period":
            value = parse_period(value)
        elif kind == "list[str]":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("must be a list of strings")
            value = tuple(value)
        elif kind == "dates":  # a day per name: from when the name counts ({call: 2024-10-01})
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ValueError("must be a mapping of names to dates (YYYY-MM-DD)")
            value = {k: _date(v, file, pid, f"{name}.{k}") for k, v in value.items()}
    except ValueError as error:
        raise RulebookError(f"parameter {name}: {error}", file=file, rule=pid) from None
    return Parameter(
        id=str(pid), name=name, title=str(item["title"]), description=str(item.get("description", "")).strip(),
        citation=str(item["citation"]), confidence=_confidence(item["confidence"], file, pid), value=value, file=file,
    )


def _rule(item: dict[str, Any], file: str, area: str) -> Rule:
    rid = item.get("id")
    _check_keys(item, RULE_KEYS, file, rid, "rule")
    _required(item, ("id", "title", "description", "citation", "confidence", "effective", "when", "then"),
              file, rid, "rule")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        raise RulebookError(f"rule id {rid!r} must look like CSW-2 or CSW-2.window-open", file=file)
    start, until = _effective(item, file, rid)
    when = item["when"]
    facts_read = _check_block(when, file, rid)
    then = item["then"]
    _check_keys(then, THEN_KEYS, file, rid, "then")
    decision = then.get("decision")
    if decision is not None and decision not in DECISIONS:
        raise RulebookError(f"then.decision must be allow or deny (got {decision!r})", file=file, rule=rid)
    error_code = then.get("error_code")
    if error_code is not None and (decision != "deny" or not isinstance(error_code, int)):
        raise RulebookError("then.error_code must be a number and goes with decision: deny", file=file, rule=rid)
    message_type = then.get("message_type")
    if message_type is not None and message_type not in MESSAGE_TYPES:
        raise RulebookError(f"then.message_type must be template or any (got {message_type!r})",
                            file=file, rule=rid)
    charge = _charge(then["charge"], file, rid) if "charge" in then else None
    if charge and isinstance(charge.category, dict):
        facts_read |= {charge.category["fact"]}
    advice = bool(then.get("advice", False))
    if not (decision or message_type or charge or advice):
        raise RulebookError("then must set decision, message_type, charge or advice", file=file, rule=rid)
    because = str(item.get("because", "")).strip()
    facts_read |= _check_template(because, file, rid) & set(FACT_TYPES)
    because_if_denied = " ".join(str(item.get("because_if_denied", "")).split())
    facts_read |= _check_template(because_if_denied, file, rid) & set(FACT_TYPES)
    priority = item.get("priority", 100)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RulebookError("priority must be a whole number", file=file, rule=rid)
    return Rule(
        id=rid, title=str(item["title"]).strip(), description=" ".join(str(item["description"]).split()),
        citation=str(item["citation"]), confidence=_confidence(item["confidence"], file, rid),
        effective_from=start, effective_until=until, when=when, file=file, source=item.get("source"),
        decision=decision, error_code=error_code, message_type=message_type, charge=charge, advice=advice,
        because=because, because_if_denied=because_if_denied, priority=priority,
        facts_read=frozenset(facts_read), area=area,
    )


def _check_block(block: Any, file: str, rule: str) -> set[str]:
    if not isinstance(block, dict) or not block:
        raise RulebookError("when must be a non-empty mapping of fact: test", file=file, rule=rule)
    read: set[str] = set()
    for name, test in block.items():
        if name == "any_of":
            if not isinstance(test, list) or len(test) < 2:
                raise RulebookError("any_of must list at least two alternatives", file=file, rule=rule)
            for alternative in test:
                read |= _check_block(alternative, file, rule)
            continue
        if name not in FACT_TYPES:
            raise RulebookError(f"unknown fact {name!r}", file=file, rule=rule)
        kind = FACT_TYPES[name]
        if isinstance(test, dict):
            if len(test) != 1 or next(iter(test)) not in OPERATORS:
                raise RulebookError(f"test of {name!r} must be a value or one of {', '.join(OPERATORS)}",
                                    file=file, rule=rule)
            operator, value = next(iter(test.items()))
        else:
            operator, value = "eq", test
        values = value if operator in ("in", "not_in") else [value]
        if operator in ("in", "not_in") and (not isinstance(value, list) or not value):
            raise RulebookError(f"{operator} on {name!r} needs a non-empty list", file=file, rule=rule)
        if operator in ("lt", "lte", "gt", "gte") and kind not in (int, float):
            raise RulebookError(f"{operator} needs a numeric fact; {name!r} is {kind.__name__}", file=file, rule=rule)
        for v in values:
            if not _fits(v, kind):
                # The engine compares a string with a number as text, so a mismatch must never load.
                raise RulebookError(f"fact {name!r} is {kind.__name__}; {v!r} is {type(v).__name__}",
                                    file=file, rule=rule)
        read.add(name)
    return read


def _fits(value: Any, kind: type) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind in (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def _charge(item: Any, file: str, rule: str) -> ChargeEffect:
    _check_keys(item, CHARGE_KEYS, file, rule, "charge")
    _required(item, ("pricing_model", "category", "type"), file, rule, "charge")
    if not isinstance(item.get("billable"), bool):
        raise RulebookError("charge.billable must be true or false", file=file, rule=rule)
    category = item["category"]
    if isinstance(category, dict):
        if set(category) != {"fact"} or FACT_TYPES.get(category["fact"]) is not str:
            raise RulebookError("charge.category must be a name or {fact: <text fact>}", file=file, rule=rule)
    opens, rides = item.get("opens"), item.get("rides")
    if opens is not None and opens not in OPENS:
        raise RulebookError(f"charge.opens must be one of {', '.join(OPENS)}", file=file, rule=rule)
    if rides is not None and rides not in RIDES:
        raise RulebookError(f"charge.rides must be one of {', '.join(RIDES)}", file=file, rule=rule)
    if opens and rides:
        raise RulebookError("a charge either opens or rides, not both", file=file, rule=rule)
    if bool(opens) != ("lasts" in item):
        raise RulebookError("charge.lasts goes with charge.opens (and only with it)", file=file, rule=rule)
    try:
        lasts = parse_duration(item["lasts"]) if opens else None
    except ValueError as error:
        raise RulebookError(f"charge.lasts: {error}", file=file, rule=rule) from None
    return ChargeEffect(
        pricing_model=str(item["pricing_model"]), category=category, type=str(item["type"]),
        billable=item["billable"], opens=opens, lasts=lasts, rides=rides,
        closes_others=bool(item.get("closes_others", False)), per_participant=bool(item.get("per_participant", False)),
    )


def _check_template(text: str, file: str, rule: str) -> set[str]:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name}
    except ValueError as error:
        raise RulebookError(f"because: {error}", file=file, rule=rule) from None
    unknown = sorted(names - set(FACT_TYPES) - set(DISPLAY_VALUES))
    if unknown:
        raise RulebookError(f"because names unknown value(s): {', '.join(unknown)}", file=file, rule=rule)
    return names
