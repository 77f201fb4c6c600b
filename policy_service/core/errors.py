"""Exceptions raised by the policy core.

* PolicyError
  + RulebookError      a rule file is invalid (names file and rule)
  + EngineError        the rules engine failed; the decision fails closed
  + HistoryError       a history cannot be judged (e.g. it names no send time)

The HTTP layer maps these (and request validation errors) to one JSON error shape.
"""


class PolicyError(Exception):
    """Base of every error the policy core raises."""


class RulebookError(PolicyError):
    """A rule file is invalid; the message names the file and the rule."""

    def __init__(self, message: str, *, file: str | None = None, rule: str | None = None):
        where = ":".join(part for part in (file, rule) if part)
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.rule = rule
        self.detail = message


class EngineError(PolicyError):
    """The rules engine raised, or an action failed; the decision must fail closed."""
