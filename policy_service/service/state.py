"""The business's stored WhatsApp state as the API and the reviewer pages read and write it: the template
registry (import, list, one template's history) and the counts over stored statuses that decisions use.

Times are aware datetimes (UTC when stored); a template's state in force names the source of each part.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..contract.meta_webhooks import parse_message_templates
from ..contract.queries import WABA_ID
from ..store import business_state
from ..store.business_state import TemplateChange, TemplateState
from .errors import ServiceError, quoted

__all__ = ["TemplateChange", "TemplateState", "count_messages", "counted", "import_templates",
           "import_templates_response", "template", "template_history", "template_state", "templates",
           "templates_in_force", "waba", "wabas"]


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


# The answers of the endpoints over the business's state, shaped once for the HTTP API and the Python API.

def waba(waba_id: Any) -> str:
    """A WABA id as a path or an argument names one; ServiceError 404 for one that cannot be a WABA's (Meta's ids
    are digits): no such account, whatever is stored; 422 for a value that is not a string."""
    if not isinstance(waba_id, str):  # only a Python caller can pass one
        raise ServiceError(422, "invalid request: waba_id: must be a string of digits",
                           {"waba_id": [f"must be a string of digits, got {type(waba_id).__name__}"]})
    if not WABA_ID.fullmatch(waba_id):
        raise ServiceError(404, f"no WhatsApp Business Account {quoted(waba_id)}: WABA ids are digits",
                           {"waba_id": ["WABA ids are digits"]})
    return waba_id


def missing_template(waba_id: str, name: str, language: str) -> ServiceError:
    """The 404 of a template the WABA's registry has never heard of, naming `name` (in `language`)."""
    return ServiceError.not_found("name", f"the registry of WABA {waba_id} has no template {quoted(name)} in "
                                          f"{quoted(language)}", f"no template with this name in {quoted(language)}")


def import_templates_response(waba_id: str, response: dict[str, Any]) -> dict[str, int]:
    """Import Meta's GET /<WABA_ID>/message_templates response (a JSON object with `data`): {"imported": n}.
    Raises marshmallow.ValidationError naming the template fields that are not Meta's."""
    return {"imported": import_templates(parse_message_templates(waba_id, response))}


def templates_in_force(waba_id: str, at: datetime) -> dict[str, Any]:
    """{"waba_id", "templates": [each template's category and status in force at `at`, with sources]}."""
    return {"waba_id": waba_id, "templates": templates(waba_id, at)}


def template(waba_id: str, name: str, language: str, at: datetime) -> dict[str, Any] | None:
    """One template: {waba_id, name, language, category: {value, source} | None, status: {value, source} | None,
    history: [every stored event, oldest first]}, its state the one in force at `at`; None when the registry
    has never heard of it."""
    history = template_history(waba_id, name, language)
    if not history:
        return None
    known = template_state(waba_id, name, language, at)
    return {"waba_id": waba_id, "name": name, "language": language,
            "category": None if known.category is None else {"value": known.category.value,
                                                             "source": known.category.source},
            "status": None if known.status is None else {"value": known.status.value, "source": known.status.source},
            "history": history}


def counted(query: dict[str, Any]) -> dict[str, Any]:
    """GET /v1/counts' answer for a query as contract.queries.COUNT_QUERY loads it (since and until aware
    datetimes, [since, until)): {count, phone_number_id, categories, from, to (RFC 3339), contact (digits, no +),
    market, distinct_contacts, source}."""
    contact = query["contact"].lstrip("+") if query.get("contact") else None
    total = count_messages(
        since=query["since"], until=query["until"], categories=tuple(query["categories"]),
        phone_number_id=query["phone_number_id"], contact=contact, market=query.get("market"),
        distinct_contacts=query.get("distinct_contacts", False))
    return {"count": total, "phone_number_id": query["phone_number_id"], "categories": list(query["categories"]),
            "from": query["since"].isoformat(), "to": query["until"].isoformat(), "contact": contact,
            "market": query.get("market"), "distinct_contacts": query.get("distinct_contacts", False),
            "source": "counted from stored statuses"}
