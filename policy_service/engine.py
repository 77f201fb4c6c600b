"""The one seam around durable_rules: match flat facts against a compiled rulebook.

durable_rules 2.0.28 is not thread-safe (concurrent calls crash the process), keeps at most
1,024 live states per ruleset, fires only one rule per event, swallows action exceptions
into the state, and cannot re-register a ruleset name. So: one process-wide lock around
every engine call, a fresh state per evaluation deleted in `finally`, facts rather than
events, the state checked for an action exception, and a unique ruleset name per engine.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from typing import Any

from durable import engine as durable

from .errors import EngineError
from .rulebook import Rulebook

# The C extension's state is process-global, so one lock must guard every engine instance.
_ENGINE_LOCK = threading.Lock()
_ENGINE_NUMBERS = itertools.count(1)
# A fact no rule matches still creates a state, and deleting that state segfaults (measured on
# 2.0.28), so every fact must match something: this catch-all rule, run last. Its firing also
# proves every earlier action completed (an action exception stops the ones after it).
# It matches a marker added to every fact by plain equality ($ex conditions were seen to hang).
_SENTINEL = "evaluation_complete"
_SENTINEL_RULE = {"all": [{"m": {_SENTINEL: 1}}], "pri": 1_000_000}


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
        self._fired: list[str] = []
        self._host = _QuietHost()
        definition: dict[str, Any] = {}
        for rule_id, compiled in rulebook.durable_ruleset().items():
            definition[rule_id] = {**compiled, "run": self._recorder(rule_id, action)}
        definition[_SENTINEL] = {**_SENTINEL_RULE, "run": self._recorder(_SENTINEL, None)}
        try:
            with _ENGINE_LOCK:
                self._host.set_rulesets({self.ruleset: definition})
        except Exception as error:
            raise EngineError(f"durable_rules refused the compiled rulebook: {error}") from error

    def match(self, facts: Mapping[str, Any]) -> tuple[str, ...]:
        """Assert the facts as one fact in a fresh state; return the ids of every rule that fired."""
        with _ENGINE_LOCK:
            sid = str(next(self._sids))
            self._fired = []
            try:
                state = self._host.assert_fact(self.ruleset, {**facts, _SENTINEL: 1, "sid": sid})
            except durable.MessageNotHandledException:
                # Unreachable while the sentinel matches; its state must not be deleted (segfault).
                raise EngineError("no rule, not even the sentinel, handled the facts") from None
            except Exception as error:
                self._delete(sid)
                raise EngineError(f"durable_rules failed: {type(error).__name__}: {error}") from error
            try:
                if isinstance(state, dict) and state.get("exception"):
                    raise EngineError(f"a rule action failed: {state['exception']}")
                if not self._fired or self._fired[-1] != _SENTINEL:
                    raise EngineError("evaluation did not complete: the final sentinel rule did not fire")
                return tuple(self._fired[:-1])
            finally:
                self._delete(sid)

    def _delete(self, sid: str) -> None:
        try:
            self._host.delete_state(self.ruleset, sid)
        except Exception:
            # No state exists when assert_fact itself failed before creating one.
            pass

    def _recorder(self, rule_id: str, action: Callable[[str], None] | None) -> Callable[[Any], None]:
        def record(_closure: Any) -> None:
            if action is not None:
                action(rule_id)
            self._fired.append(rule_id)

        return record
