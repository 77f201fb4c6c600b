"""A decision and its trace as plain text a reviewer reads in a terminal."""

from __future__ import annotations

from .decision import Charge, Decision, Reason
from .rulebook import CONFIDENCE


def explain(decision: Decision) -> str:
    """The decision, type, charge and every rule in the trace with its effect, confidence and reason."""
    lines = [
        f"decision:      {decision.decision} ({decision.status})",
        f"message type:  {decision.required_message_type}",
        f"charge:        {describe_charge(decision.charge)}",
        f"policy:        {decision.policy_version or 'none'} (rulebook {decision.rulebook_version})",
        f"determined by: {', '.join(decision.determining_rules) or 'no rule'}",
    ]
    if decision.error_codes:
        lines.append(f"error codes:   {', '.join(map(str, decision.error_codes))}")
    if decision.error:
        lines.append(f"error:         {decision.error}")
    if decision.trace:
        lines.append("trace:")
        lines.extend(line for reason in decision.trace for line in trace_lines(reason))
    defaults = sorted(decision.facts.defaults) if decision.facts else []
    lines.append(f"defaults used: {', '.join(defaults) or 'none'}")
    return "\n".join(lines)


def trace_lines(reason: Reason) -> list[str]:
    """One rule of a trace: a headline, then its reason, note, defaults and citation, indented."""
    marker = "*" if reason.determining else "-"
    lines = [f"  {marker} {reason.rule} [{reason.confidence}: {CONFIDENCE[reason.confidence]}] "
             f"{reason.effect}: {reason.title}",
             f"      because: {reason.because}"]
    if reason.note:
        lines.append(f"      note: {reason.note}")
    if reason.defaults:
        lines.append(f"      relies on defaults: {', '.join(reason.defaults)}")
    lines.append(f"      citation: {reason.citation}")
    return lines


def describe_charge(charge: Charge | None) -> str:
    """A charge in one phrase: billable or free, model, category, pricing type and deciding rule."""
    if charge is None:
        return "none"
    cost = "billable" if charge.billable else "free"
    words = [cost, charge.pricing_model, charge.category, charge.type or "not delivered"]
    if charge.opens_conversation and charge.conversation_expires_at:
        words.append(f"opens a conversation until {charge.conversation_expires_at.isoformat()}")
    elif charge.conversation_expires_at:
        words.append(f"rides a conversation open until {charge.conversation_expires_at.isoformat()}")
    return ", ".join(words) + (f" (rule {charge.rule})" if charge.rule else "")
