"""Reviewer pages for the template registry: each WABA's templates and one template's history
(status, category and quality changes from Meta's webhooks and imports, each with its time and source)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, render_template, request, url_for

from ..contract.queries import WABA_ID
from ..service import state
from ..service.errors import ServiceError
from .pages import page_link, refused_page, unknown_filters

# Nested in the reviewer pages' blueprint: endpoints ui.templates.*, under /ui.
bp = Blueprint("templates", __name__)


@bp.app_template_global("waba_link")
def waba_link(waba_id: str) -> str | None:
    """The address of a WABA's templates, or None for an id stored before WABA ids were checked (not digits:
    the page would refuse it with a 422), which a page then shows as text."""
    return url_for("ui.templates.index", waba_id=waba_id) if WABA_ID.fullmatch(waba_id) else None


@bp.app_template_global("template_link")
def template_link(waba_id: str, name: str, language: str) -> str | None:
    """The address of one template's page, or None when that page would refuse it (its WABA's id is not digits)
    or cannot serve it (pages.page_link: a "/" in the name)."""
    if not WABA_ID.fullmatch(waba_id):
        return None
    return page_link("ui.templates.template", waba_id=waba_id, name=name, language=language)


def nest(parent: Blueprint) -> None:
    """Register these pages inside the reviewer pages' blueprint (once, however many apps are created)."""
    if bp.name not in {child.name for child, _ in parent._blueprints}:
        parent.register_blueprint(bp)


@bp.route("/templates", endpoint="index")
def templates_index():
    """The WABAs the registry knows, or (with ?waba_id=) that WABA's templates in force now."""
    waba_id = request.args.get("waba_id", "").strip()
    errors = unknown_filters({"waba_id"})
    if waba_id and not WABA_ID.fullmatch(waba_id):
        errors["waba_id"] = ["WABA ids are digits"]
    if errors:
        return refused_page(errors)
    if not waba_id:
        return render_template("ui/templates.html", wabas=state.wabas(), waba_id=None, templates=[])
    return render_template("ui/templates.html", wabas=[], waba_id=waba_id,
                           templates=state.templates(waba_id, datetime.now(UTC)))


@bp.route("/templates/<string:waba_id>/<string:name>/<string:language>")
def template(waba_id: str, name: str, language: str):
    """One template: its category and status in force now, and every stored event, oldest first."""
    if errors := unknown_filters({}):
        return refused_page(errors)
    history = state.template_history(waba_id, name, language) if WABA_ID.fullmatch(waba_id) else []
    if not history:
        try:
            missing = state.missing_template(state.waba(waba_id), name, language)
        except ServiceError as not_a_waba:  # the id is not digits: no account has it
            missing = not_a_waba
        return refused_page(missing.errors, 404, message=missing.message,
                            page=lambda _: render_template("ui/template.html", waba_id=waba_id, name=name,
                                                         language=language, state=None, history=[]))
    known = state.template_state(waba_id, name, language, datetime.now(UTC))
    return render_template("ui/template.html", waba_id=waba_id, name=name, language=language, state=known,
                           history=history)
