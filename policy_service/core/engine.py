"""The one seam around durable_rules: match flat facts against a compiled rulebook.

durable_rules 2.0.28 is not thread-safe (concurrent calls crash the process), keeps at most
1,024 live states per ruleset, fires only one rule per event, swallows action exceptions
into the state, and cannot re-register a ruleset name. So: one process-wide lock around
every engine call, a fresh state per evaluation deleted in `finally`, facts rather than
events, a catch-all rule so no fact goes unhandled, and a unique ruleset name per engine
(docs/durable-rules-findings.md lists each constraint with the test that proves it).

The ruleset is registered through durable's Host, but facts are asserted and actions drained
through its C extension directly: the Python layer parses the whole state and message JSON for
every fired rule and writes the state back, which cost more than the matching itself. We only
need each fired rule's id, which is the first key of the message the extension returns.
"""

from __future__ import annotations

import itertools
import json
import threading
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

import durable_rules_engine as extension
from durable import engine as durable

from .errors import EngineError
from .rulebook import Rulebook

# The C extension's state is process-global, so one lock must guard every engine instance.
_ENGINE_LOCK = threading.Lock()
_ENGINE_NUMBERS = itertools.count(1)
_NOT_HANDLED, _OBSERVED = 1, 2  # durable's result codes for "no rule matched" and "fact already asserted"
# Matches every fact: deleting a state in which no rule matched crashes durable_rules (segfault or
# "free(): invalid pointer", e.g. for any send before the first rule's date). Never reported as
# fired; seeing it drained proves the whole evaluation ran.
_EVERY_FACT = "$every-fact"
_MEMO_SIZE = 4096


class _QuietHost(durable.Host):
    """A Host without the timer threads that would call into the engine outside our lock."""

    def _run(self) -> None:
        """Start no dispatcher threads: every action completes inside assert_fact."""


class RulesEngine:
    """A compiled rulebook in durable_rules, safe to call from any thread."""

    def __init__(self, rulebook: Rulebook, *, action: Callable[[str], None] | None = None) -> None:
        self.rulebook_version = rulebook.version
        self.ruleset = f"policy_{next(_ENGINE_NUMBERS)}"
        self._sids = itertools.count(1)
        self._action = action
        self._rule_ids = frozenset(rule.id for rule in rulebook.rules) | {_EVERY_FACT}
        self._host = _QuietHost()
        definition: dict[str, Any] = {}
        for rule_id, compiled in rulebook.durable_ruleset().items():
            # Actions never run through durable's Python layer (see the module docstring).
            definition[rule_id] = {**compiled, "run": _unused_action}
        definition[_EVERY_FACT] = {"all": [{"m": {"$gte": {"waba_date": 0}}}], "run": _unused_action}
        self._cuts = _numeric_constants(definition)
        self._memo: dict[tuple[Any, ...], tuple[str, ...]] = {}
        # The set of fact names -> the function making memo keys of facts with those names (_key_maker; the number
        # standing for that set in its keys comes from _orders, unique even across threads).
        self._plans: dict[frozenset[str], Callable[[Mapping[str, Any]], tuple[Any, ...]]] = {}
        self._orders = itertools.count()
        # (how many names, the plan) of the last facts seen: derive_facts makes every fact with one set of names.
        self._last_plan: tuple[int, Callable[[Mapping[str, Any]], tuple[Any, ...]] | None] = (-1, None)
        try:
            with _ENGINE_LOCK:
                self._host.set_rulesets({self.ruleset: definition})
                self._handle = self._host.get_ruleset(self.ruleset)._handle
        except Exception as error:
            raise EngineError(f"durable_rules refused the compiled rulebook: {error}") from error

    def match(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """Assert the facts as one fact in a fresh state; return the ids of every rule that fired."""
        with _ENGINE_LOCK:
            sid = str(next(self._sids))
            try:
                fired = self._fire(json.dumps({**facts, "sid": sid}, ensure_ascii=False))
            except _Unhandled:
                # Its state must not be deleted (that is the crash); it stays, counting toward 1,024.
                raise EngineError("no rule, not even the catch-all, handled the facts") from None
            except EngineError:
                self._delete(sid)
                raise
            except Exception as error:
                self._delete(sid)
                raise EngineError(f"durable_rules failed: {type(error).__name__}: {error}") from error
            self._delete(sid)
            return fired

    def match_memoized(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """match(), remembered for facts the rules cannot tell apart (for replaying past sends)."""
        key = self._indistinct(facts)
        fired = self._memo.get(key)
        if fired is None:
            fired = self.match(facts)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()  # bounded; clearing is atomic where LRU bookkeeping would race
            self._memo[key] = fired
        return fired

    def _indistinct(self, facts: Mapping[str, Any]) -> tuple[Any, ...]:
        # A number is tested only against the rules' constants, so its place among them (and whether
        # it equals one) decides every test: 61 and 1799 seconds are the same to `lt: 1800`.
        # The fact names stand in the key as a number given to each set of names seen (hashing and comparing
        # ~50 names again for every memo lookup cost more than the rest of the key). The last plan serves facts
        # with as many names when it finds each of its names in them: then they have the same names (a JSON
        # object's order of names means nothing to durable_rules).
        size, plan = self._last_plan
        if size == len(facts):
            try:
                return plan(facts)  # type: ignore[misc]
            except KeyError:
                pass
        names = frozenset(facts)
        found = self._plans.get(names)
        if found is None:
            found = _key_maker(names, self._cuts, names)  # beyond the bound: the names themselves (never a number)
            if len(self._plans) < _MEMO_SIZE:
                found = self._plans.setdefault(names, _key_maker(names, self._cuts, next(self._orders)))
        self._last_plan = (len(names), found)
        return found(facts)

    def _fire(self, fact: str) -> tuple[str, ...]:
        code, state = extension.assert_fact(self._handle, fact)
        if code == _NOT_HANDLED:
            raise _Unhandled
        if code == _OBSERVED:
            raise EngineError("durable_rules saw this fact before in a fresh state")
        fired: list[str] = []
        complete = False
        started = extension.start_action_for_state(self._handle, state)
        message = started[1] if started else None
        while message:
            rule_id = self._rule_of(message)
            if rule_id == _EVERY_FACT:
                complete = True
                message = extension.complete_and_start_action(self._handle, state)
                continue
            if self._action is not None:
                try:
                    self._action(rule_id)
                except Exception as error:
                    extension.abandon_action(self._handle, state)
                    raise EngineError(f"a rule action failed: {type(error).__name__}: {error}") from error
            fired.append(rule_id)
            message = extension.complete_and_start_action(self._handle, state)
        if not complete:
            raise EngineError("evaluation did not complete: the catch-all rule was never drained")
        return tuple(fired)

    def _rule_of(self, message: str) -> str:
        # The message is {"<rule id>": {...}}; rule ids contain no quote (rulebook.py checks them).
        rule_id = message[2:message.find('"', 2)]
        if not message.startswith('{"') or rule_id not in self._rule_ids:
            raise EngineError(f"durable_rules returned an action for an unknown rule: {message[:80]!r}")
        return rule_id

    def _delete(self, sid: str) -> None:
        try:
            extension.delete_state(self._handle, sid)
        except Exception:
            # No state exists when assert_fact itself failed before creating one.
            pass


def _key_maker(names: Iterable[str], cuts: dict[str, tuple[list[int], tuple[object, ...]]],
               order: Any) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A function of facts with these names giving their memo key: `order`, the values of the names no rule
    compares with numbers (in sorted order of names), then for each name that is compared with numbers, its
    value, an integer replaced by the object standing for its class (bisect_right of it in its bounds, see
    _numeric_constants). KeyError when one of the names is missing.

    Written as source and compiled once per set of names: the plain values fetched in C (operator.itemgetter),
    one term per compared name, one tuple, no loop.
    """
    names = sorted(names)
    plain = [name for name in names if name not in cuts]
    namespace: dict[str, Any] = {"bisect_right": bisect_right, "order": order,
                                 "plain": itemgetter(*plain) if plain else (lambda _facts: ())}
    terms = []
    for position, name in enumerate(name for name in names if name in cuts):
        bounds, classes = cuts[name]
        namespace[f"name{position}"], namespace[f"bounds{position}"] = name, bounds
        namespace.update((f"class{position}_{number}", item) for number, item in enumerate(classes))
        namespace[f"classes{position}"] = classes
        if len(bounds) == 2 and bounds[1] == bounds[0] + 1:
            # One constant c (bounds c, c + 1): below it, it, above it; compared here rather than bisected.
            namespace[f"constant{position}"] = bounds[0]
            which = (f"class{position}_0 if v < constant{position} else class{position}_1 "
                     f"if v == constant{position} else class{position}_2")
        else:
            which = f"classes{position}[bisect_right(bounds{position}, v)]"
        terms.append(f"({which}) if (v := facts[name{position}]).__class__ is int else v")
    source = f"def key(facts):\n    return order, plain(facts), {''.join(f'{term}, ' for term in terms)}\n"
    exec(source, namespace)  # noqa: S102 - source made here from positions only (no name or value is in it)
    return namespace["key"]


class _Unhandled(Exception):
    """durable_rules matched no rule at all (impossible while the catch-all rule is compiled in)."""


def _numeric_constants(definition: Mapping[str, Any]) -> dict[str, tuple[list[int], tuple[object, ...]]]:
    """For each fact a rule compares with numbers, from the compiled rulebook: the bounds that split the integers
    into the classes no rule tells apart, and an object standing for each class.

    Each constant c the rules compare it with is a class of its own ([c, c + 1)), and so is each stretch between
    two constants: bisect_right(bounds, n) is the class of integer n. Its object equals nothing else (not even a
    number a fact of another type might hold), so a memo key never confuses a class with a value.
    """
    found: defaultdict[str, set[int]] = defaultdict(set)

    def walk(expression: Any) -> None:
        if isinstance(expression, list):
            for item in expression:
                walk(item)
        elif isinstance(expression, dict):
            for key, value in expression.items():
                if key.startswith("$"):
                    walk(value)
                elif type(value) is int:
                    found[key].add(value)

    for rule in definition.values():
        for term in rule["all"]:
            walk(term["m"])
    classes = {}
    for name, values in found.items():
        bounds = sorted({bound for value in values for bound in (value, value + 1)})
        classes[name] = (bounds, tuple(object() for _ in range(len(bounds) + 1)))
    return classes


def _unused_action(_closure: Any) -> None:
    """Registered so durable accepts the ruleset; actions are drained in RulesEngine._fire."""
