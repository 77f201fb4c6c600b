"""The business's stored WhatsApp state as the API and the reviewer pages read and write it: the template
registry (import, list, one template's history) and the counts over stored statuses that decisions use.

Times are aware datetimes (UTC when stored); a template's state in force names the source of each part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..store import business_state
from ..store.business_state import TemplateChange, TemplateState

__all__ = ["TemplateChange", "TemplateState", "count_messages", "import_templates", "template_history",
           "template_state", "templates", "wabas"]


def import_templates(changes: list[TemplateChange]) -> int:
    """Store templates read from Meta's GET /<WABA_ID>/message_templates; how many were imported."""
    return business_state.import_templates(changes)


def wabas() -> list[str]:
    """Every WABA id the registry knows, sorted."""
    return business_state.wabas()


def templates(waba_id: str, at: datetime) -> list[dict[str, Any]]:
    """The WABA's templates with the category and status in force at `at`, and where each came from."""
    return business_state.templates(waba_id, at)


def template_state(waba_id: str, name: str, language: str, at: datetime) -> TemplateState | None:
    """One template's category and status in force at `at` (each with its source); None if never heard of."""
    return business_state.template_state(waba_id, name, language, at)


def template_history(waba_id: str, name: str | None = None, language: str | None = None) -> list[dict[str, Any]]:
    """Every stored event of a WABA's templates (or of one template), oldest first."""
    return business_state.template_history(waba_id, name, language)


def count_messages(**filters: Any) -> int:
    """Outbound messages Meta priced, as decisions count them (store.business_state.count_messages filters:
    since, until, categories, phone_number_id or phone_number_ids, contact, market, distinct_contacts)."""
    return business_state.count_messages(**filters)
