"""A decision and its trace as plain text a reviewer reads in a terminal."""

from __future__ import annotations

from datetime import tzinfo

from .decision import Decision, Reason
from .rulebook import CONFIDENCE
from .wording import describe_charge, times_in_text, zone_name


def explain(decision: Decision) -> str:
    """The decision, type, charge and every rule in the trace with its effect, confidence and reason.

    Times are shown one way (wording.show_time) in the send's UTC offset, named on the `times:` line.
    """
    zone = decision.facts.at.tzinfo if decision.facts else None
    lines = [
        f"decision:      {decision.decision} ({decision.status})",
        f"message type:  {decision.required_message_type}",
        f"charge:        {describe_charge(decision.charge, sent=decision.decision == 'allow', zone=zone)}",
        f"policy:        {decision.policy_version or 'none'} (rulebook {decision.rulebook_version})",
        f"determined by: {', '.join(decision.determining_rules) or 'no rule'}",
    ]
    if decision.error_codes:
        lines.append(f"error codes:   {', '.join(map(str, decision.error_codes))}")
    if decision.error:
        lines.append(f"error:         {decision.error}")
    if decision.trace:
        lines.append("trace:")
        lines.extend(line for reason in decision.trace for line in trace_lines(reason, zone))
    defaults = sorted(decision.facts.defaults) if decision.facts else []
    lines.append(f"defaults used: {', '.join(defaults) or 'none'}")
    if decision.facts:
        lines.append(f"times:         in {zone_name(decision.facts.at)}, the send's offset")
    return "\n".join(lines)


def trace_lines(reason: Reason, zone: tzinfo | None = None) -> list[str]:
    """One rule of a trace: a headline, then its reason (times shown in `zone`), note, defaults and citation."""
    marker = "*" if reason.determining else "-"
    lines = [f"  {marker} {reason.rule} [{reason.confidence}: {CONFIDENCE[reason.confidence]}] "
             f"{reason.effect}: {reason.title}",
             f"      because: {times_in_text(reason.because, zone)}"]
    if reason.note:
        lines.append(f"      note: {reason.note}")
    if reason.defaults:
        lines.append(f"      relies on defaults: {', '.join(reason.defaults)}")
    lines.append(f"      citation: {reason.citation}")
    return lines
