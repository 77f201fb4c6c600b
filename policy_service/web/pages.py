"""Reviewer pages: a home, the rule catalogue, the decision log, a logged decision on a timeline, a form to try
a history, and reconciliation of Meta's bill with our predictions."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import HTTPException

from ..contract.parsing import (
    BodyRefused,
    bounded_errors,
    decision_limits,
    error_message,
    flatten_errors,
    parse_json,
)
from ..contract.queries import POLICY_VERSION, RULE_ID, ReconciliationQuerySchema
from ..contract.schemas import (
    DECISION_REQUEST_EXAMPLE,
    REQUEST,
    RESPONSE,
    ContactField,
    FromBeforeTo,
    RefusesNul,
    WholeNumber,
    day_field,
    phone_number_id_field,
)
from ..core import masking, timeline, wording
from ..core.decision import Charge
from ..core.errors import EngineError
from ..core.identities import WA_ID
from ..core.messages import DecisionRequest
from ..core.rulebook import CONFIDENCE, Rule, Rulebook, version_family
from ..review import coverage
from ..review.fixtures import Fixture, discover, run_fixture
from ..service import logged, reports
from ..service.errors import ServiceError, quoted
from ..service.logged import day_start as _day_start
from .api import Policy, decide, policy, repeated_parameters
from .security import wants_html

bp = Blueprint("ui", __name__, url_prefix="/ui")
home_bp = Blueprint("home", __name__)
# Keyed by rulebook version: the rules directory cannot change under a loaded rulebook.
_CACHE: dict[tuple[str, ...], Any] = {}
PAGE_SIZE = 25
UTC_NAME = "UTC+00:00"


@home_bp.route("/")
def home():
    """Where a reviewer starts: what each page is for, with the decision log's latest counts."""
    if errors := unknown_filters({}):  # it takes no query parameter: one given is refused, not ignored
        return refused_page(errors)
    return render_template("ui/home.html", rulebook=policy().rulebook, **logged.summary(), extra=_extra_pages())


@bp.route("/")
def index():
    """The reviewer pages start at the home page; the query string goes along as sent, so the home page refuses a
    parameter it does not take (query.<name>) as every page does, instead of the redirect dropping it unseen."""
    target = url_for("home.home")
    if request.query_string:
        # As sent (repeats, order, escapes); a raw byte a client sent unescaped is escaped for the Location header.
        target += "?" + quote(request.query_string, safe=QUERY_SAFE)
    return redirect(target)


# What a query may hold unescaped (RFC 3986 3.4: pchar, "/" and "?"), and "%" to keep the escapes sent.
QUERY_SAFE = "!$&'()*+,;=:@/?%"


@bp.route("/rules")
def rules():
    """Every rule, filtered by policy version, area and confidence, grouped by area with a table of contents."""
    loaded = policy()
    book = loaded.rulebook
    chosen = {key: request.args.get(key, "") for key in ("version", "area", "confidence")}
    allowed = {"version": [v.id for v in book.versions], "area": sorted({rule.area for rule in book.rules}),
               "confidence": list(CONFIDENCE)}
    # An area may be named as the page shows it or as its anchor (?area=customer-service-window, #area-…).
    chosen["area"] = {_slug(name): name for name in allowed["area"]}.get(chosen["area"], chosen["area"])
    errors = unknown_filters(allowed)
    errors.update({key: [f"must be one of {', '.join(allowed[key])}"] for key, value in chosen.items()
                   if value and value not in allowed[key]})
    if errors:
        return refused_page(errors)
    version = next((v for v in book.versions if v.id == chosen["version"]), None)
    shown = sorted((
        rule for rule in book.rules
        if (version is None or rule.overlaps(version))
        and (not chosen["area"] or rule.area == chosen["area"])
        and (not chosen["confidence"] or rule.confidence == chosen["confidence"])
    ), key=lambda rule: (rule.area, _natural(rule.id)))
    groups: dict[str, list[Rule]] = {}
    for rule in shown:
        groups.setdefault(rule.area, []).append(rule)
    return render_template(
        "ui/rules.html", rulebook=book, rules=shown, groups=groups, chosen=chosen,
        area_names=sorted({rule.area for rule in book.rules}), confidence=CONFIDENCE,
        versions_of={rule.id: [v.id for v in book.versions if rule.overlaps(v)] for rule in shown},
        in_version={v.id: sum(1 for rule in book.rules if rule.overlaps(v)) for v in book.versions},
        coverage=fixture_coverage(loaded, _fixtures_dir()), slug=_slug,
    )


class DecisionFilterSchema(RefusesNul, FromBeforeTo, Schema):
    """The decision log page's filters: dates are whole UTC days, `to` included."""

    since = day_field(data_key="from")
    until = day_field(data_key="to")
    decision = fields.String(validate=validate.OneOf(("allow", "deny")))
    rule = fields.String(validate=RULE_ID)
    policy_version = fields.String(validate=POLICY_VERSION)
    contact = ContactField(WA_ID)  # a phone number or a BSUID, as GET /v1/decisions?contact= takes it
    phone_number_id = phone_number_id_field()
    page = WholeNumber(validate=validate.Range(min=1, max=1_000_000))


@bp.route("/decisions")
def decisions():
    """The decision log, newest first: filtered by day, outcome, rule, recipient, business number and version."""
    book = policy().rulebook
    given = {key: value.strip() for key, value in request.args.items() if value.strip()}
    errors: dict[str, list[str]] = {}
    try:
        chosen = DecisionFilterSchema().load(given)
    except ValidationError as error:
        errors, chosen = flatten_errors(error.messages), {}
    if repeated := repeated_filters():
        errors, chosen = {**errors, **repeated}, {}
    page = chosen.pop("page", 1)
    query = logged.DecisionQuery(
        since=_day_start(chosen.pop("since")) if "since" in chosen else None,
        until=_day_start(chosen.pop("until") + timedelta(days=1)) if "until" in chosen else None,
        **chosen,
    )
    total = 0 if errors else logged.count(query)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    entries = [] if errors else [_row(entry) for entry in logged.page(query, page, PAGE_SIZE)]
    today = datetime.now(UTC).date()
    filters = {key: value for key, value in given.items() if key != "page" and not errors}

    def shown(named: dict[str, list[str]] | None = None) -> str:  # named: the errors as refused_page names them
        return render_template(
            "ui/decisions.html", entries=entries, total=total, page=page, pages=pages, given=given, errors=named or {},
            filters=filters, rule_ids=sorted((r.id for r in book.rules), key=_natural),
            versions=_version_choices(book), today=today.isoformat(),
            yesterday=(today - timedelta(days=1)).isoformat(), week_ago=(today - timedelta(days=6)).isoformat(),
            utc=UTC)
    return refused_page(errors, page=shown) if errors else shown()


def _version_choices(book: Rulebook) -> list[tuple[str, str]]:
    """The version filter's (value, label) choices: a version with sub-versions says it matches them too
    ("V3 (with V3a, V3b)"), as the filter does (core.rulebook.version_family)."""
    ids = [v.id for v in book.versions]
    choices = []
    for version in ids:
        subs = [other for other in version_family(version)[1:] if other in ids]
        choices.append((version, f"{version} (with {', '.join(subs)})" if subs else version))
    return choices


@bp.route("/decisions/<string:decision_id>")
def decision(decision_id: str):
    """A logged decision: the outcome, its trace and its timeline."""
    if errors := unknown_filters({}):
        return refused_page(errors)
    found = logged.decision(decision_id)
    if found is None:
        missing = logged.missing(decision_id)
        return refused_page(missing.errors, 404, message=missing.message,
                            page=lambda _: render_template("ui/not_found.html", decision_id=decision_id))
    view = decision_view(found["request"], found["response"])
    return render_template("ui/decision.html", logged=found, **view)


@bp.route("/try", methods=["GET", "POST"])
def try_request():
    """Pick a fixture or edit the sample request, and *Decide*: the decision is logged and shown on its own page."""
    fixtures = {f.name: f for f in discover([_fixtures_dir()])}
    picked = request.values.get("fixture", "")
    if request.method == "GET":
        refused = unknown_filters({"fixture"})
        if picked and picked not in fixtures:
            refused["fixture"] = [f"no fixture is named {picked[:80]}"]
        if refused:
            return refused_page(refused)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        text = request.form.get("request", "")
        errors, raw, proposal = _parse(text)
        if repeated := repeated_parameters(request.form, lambda name: name == "request"):
            errors, proposal = repeated, None  # which of two requests was meant cannot be known: decide neither
        if proposal is not None:
            try:
                body = decide(proposal, raw)
            except ServiceError as refused:
                # A refusal of the pipeline (a template nobody knows the category of) is shown in the form too.
                errors = refused.errors
            else:
                # POST, redirect, GET: the decision has an address to share, and reloading it decides nothing again.
                return redirect(url_for("ui.decision", decision_id=body["decision_id"]), code=303)
    elif picked in fixtures:
        text = json.dumps(fixtures[picked].request, indent=2)
    else:
        text = json.dumps(DECISION_REQUEST_EXAMPLE, indent=2)

    def shown(named: dict[str, list[str]] | None = None) -> str:  # named: the errors as refused_page names them
        return render_template("ui/try.html", folders=_by_folder(fixtures.values()), fixtures=fixtures,
                               picked=picked, text=text, errors=named or {})
    return refused_page(errors, page=shown) if errors else shown()


# The page's ?page= and ?page_size= are GET /v1/reconciliation's (the same bounds, the same default page size).
RECONCILIATION_PAGING = ReconciliationQuerySchema(only=("page", "page_size"))


@bp.route("/reconciliation")
def reconciliation_page():
    """Meta's pricing of each delivered message beside our prediction: mismatches first, with what differs; one page
    (?page=, ?page_size= as GET /v1/reconciliation takes them) of the comparisons, the counts of them all."""
    errors = unknown_filters(RECONCILIATION_PAGING.fields)
    given = {key: value.strip() for key, value in request.args.items() if value.strip()}
    try:
        paging = RECONCILIATION_PAGING.load({key: value for key, value in given.items() if key not in errors})
    except ValidationError as error:
        errors = {**errors, **flatten_errors(error.messages)}
    if errors:
        return refused_page(errors)
    comparisons = sorted(reports.comparisons(policy()), key=lambda c: c.at, reverse=True)
    # Mismatches first, then messages whose category the rules do not model, then matches; each newest first.
    rank = {"mismatch": 0, "not-modelled": 1, "match": 2}
    ordered = sorted(comparisons, key=lambda c: rank[_outcome(c)])
    page, page_size = paging["page"], paging["page_size"]
    first = (page - 1) * page_size
    # Only the page shown is rendered: every comparison on one page was megabytes of HTML for a few thousand messages.
    shown_page = [_comparison(c) for c in ordered[first:first + page_size]]
    return render_template("ui/reconciliation.html", comparisons=shown_page,
                           total=len(comparisons), page=page, pages=max(1, math.ceil(len(comparisons) / page_size)),
                           first=first, filters={key: value for key, value in given.items() if key != "page"},
                           mismatching=sum(_outcome(c) == "mismatch" for c in comparisons),
                           not_modelled=sum(_outcome(c) == "not-modelled" for c in comparisons))


# path: Meta's wamids are base64, which may hold a "/" (a string converter would not serve such a message's page).
@bp.route("/reconciliation/<path:wamid>")
def replayed(wamid: str):
    """The decision our rules make today for a delivered message's send, replayed from the stored history."""
    if errors := unknown_filters({}):
        return refused_page(errors)
    found = reports.replayed(policy(), wamid)
    if found is None:
        return refused_page({"wamid": ["no delivered message has this id"]}, 404,
                            message=f"no delivered message with id {quoted(wamid)}",
                            page=lambda _: render_template("ui/not_found.html", decision_id=wamid,
                                                         what="delivered message"))
    view = decision_view(None, shown(RESPONSE.dump(found.replayed.decision)), proposal=found.replayed.request)
    # A replayed decision was never logged: its id (reconcile:<wamid>) names no decision page to link.
    return render_template("ui/replayed.html", wamid=wamid, replayed=True,
                           comparison=found.comparison and _comparison(found.comparison), **view)


def unknown_filters(known: Any) -> dict[str, list[str]]:
    """The query parameters a page does not take (`known` holds the ones it does), and those given more than once,
    as field errors: a parameter a page would ignore is refused, as /ui/decisions refuses one."""
    return {key: ["not a filter of this page"] for key in request.args if key not in known} | repeated_filters()


def repeated_filters() -> dict[str, list[str]]:
    """The query parameters given more than once (?page=1&page=2), as field errors: a page reads one value, and
    which one a reader meant cannot be known (the API refuses them alike)."""
    return repeated_parameters(request.args)




def refused_page(errors: dict[str, list[str]], status: int = 422, heading: str = "These filters are not valid", *,
                 page: Callable[[dict[str, list[str]]], str] | None = None, message: str | None = None):
    """A page's answer to a request it refuses, with `errors` {parameter or field: [messages]} and `status` (422 a
    bad query or form, 404 a path or an id naming nothing). Each parameter is named as the API names its locations
    (located): query.<name>, path.<name>. To a browser (wants_html) HTML: `page(errors)` (the errors so named) when
    the page shows the errors itself (its form), else each parameter with its message and a link to the page
    without them (with 404, to the reviewer pages). To any other client the API's one JSON error shape with the
    same status and errors, `message` (default: the first error) its message."""
    errors = located(errors)
    if not wants_html():
        api = current_app.extensions["policy_service.api"]
        return api.handle_service_error(ServiceError(status, message or error_message(errors), errors))
    if page is not None:
        return page(errors), status
    if status == 404:
        return render_template("ui/refused.html", errors=errors, heading=heading, back=url_for("home.home"),
                               back_text="The reviewer pages"), status
    return render_template("ui/refused.html", errors=bounded_errors(errors), heading=heading, back=request.path,
                           back_text="The page without filters"), status


# What a refusal names besides parameters: a URL no page serves, a method, the request as a whole (ERRORS_NAMED).
UNLOCATED = ("path", "method", "_request")


def located(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """`errors` as a page names them (a parameter bare: from, waba_id, lines.3) named as the API names them
    (api.ERRORS_NAMED): a parameter of the page's path path.<name>, any other of a GET page query.<name> (a GET page
    takes nothing else: a filter, or a form sent as GET, like /ui/forecast's), a form's field (POST: /ui/try's
    request body, /ui/login's key) and UNLOCATED as they are. The same names in HTML and JSON."""
    in_path = request.view_args or {}
    in_query = request.method in ("GET", "HEAD")

    def name(key: str) -> str:
        root = key.split(".", 1)[0]
        if root in in_path:
            return f"path.{key}"
        if in_query and (root in request.args or key not in UNLOCATED):
            return f"query.{key}"
        return key
    return {name(key): messages for key, messages in errors.items()}


# The HTTP errors a browser can meet on a page: a path no page serves (404), a form without its CSRF token or a
# key whose role does not reach the page (403), a method the page does not take (405), a body over the size
# limit (413) or not a form (415), a bad request (400), too many requests (429).
PAGE_ERRORS = (400, 403, 404, 405, 408, 413, 415, 429)


def page_error(error: HTTPException):
    """An HTTP error on a path under /ui/ is, like every refusal of a page (refused_page), an HTML page saying what
    is wrong when a browser asks (wants_html), since a reviewer's browser would show raw JSON; otherwise, and
    outside /ui/, the API's one JSON error shape (a client calling a page with an API key reads JSON). The page
    keeps the error's status and headers."""
    api = current_app.extensions["policy_service.api"]
    if not (request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/")):
        return api.handle_http_exception(error)
    if error.code == 404:
        return refused_page({"path": [f"{request.path} is not a page of this service"]}, 404, "No such page",
                            message=f"no such page: {quoted(request.path, 200)}")
    if not wants_html():
        return api.handle_http_exception(error)
    payload, status, headers = api.handle_http_exception(error)
    page = render_template("ui/refused.html", errors=payload["errors"], heading=payload["message"],
                           back=url_for("home.home"), back_text="The reviewer pages")
    return page, status, headers


for _code in PAGE_ERRORS:
    bp.app_errorhandler(_code)(page_error)


@bp.app_context_processor
def navigation() -> dict[str, Any]:
    """Every page's menu also links the pages other work adds, once they exist."""
    return {"extra_pages": _extra_pages()}


@bp.app_template_global("page_link")
def page_link(endpoint: str, **values: Any) -> str | None:
    """The address of a page for stored values (a template's name, a wamid), or None when the page cannot serve
    them: the address does not lead back to that page with those values (a "/" in a template name moves the rest
    along the path; a "." or ".." segment is resolved away by the browser). A page shows such a value as text,
    not as a link that answers 404."""
    url = url_for(endpoint, **values)
    path = unquote(url.partition("?")[0].removeprefix(request.script_root))
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    try:
        matched, arguments = current_app.create_url_adapter(request).match(path, method="GET")
    except HTTPException:
        return None
    routed = {key: value for key, value in values.items() if key in arguments}
    return url if matched == endpoint and arguments == routed else None


@bp.app_template_filter("http_url")
def http_url(url: str) -> str:
    """The URL if it is http(s), else "#": a citation in a rule file must never become a script link."""
    return url if re.match(r"^https?://", url or "", re.IGNORECASE) else "#"


@bp.app_template_filter("when")
def when(value: str | datetime | None, zone: tzinfo | None = None) -> str:
    """A time (RFC 3339 text or datetime) shown the one way reviewers read times (wording.show_time)."""
    if not value:
        return ""
    try:
        # upper(): RFC 3339 allows a lowercase t and z, which a logged request keeps as the client sent them.
        at = value if isinstance(value, datetime) else \
            datetime.fromisoformat(str(value).upper().replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return wording.show_time(at if at.tzinfo else at.replace(tzinfo=UTC), zone)


@bp.app_template_filter("times")
def times(text: str | None, zone: tzinfo | None = None) -> str:
    """Text (a trace sentence) with its RFC 3339 times shown the one way (wording.times_in_text)."""
    return wording.times_in_text(text or "", zone)


@bp.app_template_global("category_name")
def category_name(category: str | None) -> str:
    """Meta's pricing category in words, for templates."""
    return wording.category_name(category)


def decision_view(raw_request: dict[str, Any] | None, response: dict[str, Any], *,
                  proposal: DecisionRequest | None = None) -> dict[str, Any]:
    """What the decision template needs: the response, the charge in words, the zone its times are shown in,
    and its timeline in the wide and the narrow layout (None if the request cannot be replayed, and
    `replay_problem` then says why when a history_ref's stored history changed since)."""
    loaded = policy()
    problem = None
    try:
        if proposal is None:
            region = response.get("facts", {}).get("seen_by_rules", {}).get("recipient_region", "ZZ")
            # A history_ref decision is drawn on the stored messages of the range it read, read again.
            replayable, problem = logged.replayable(logged.with_example_recipient(raw_request, region))
            proposal = REQUEST.load(replayable) if problem is None else None
        drawn = timeline.layouts_of(proposal, loaded.rulebook, loaded.engine,
                                    delivered=response.get("decision") == "allow") if proposal is not None else None
    except (ValidationError, EngineError):
        # The decision itself is already made and logged; a page without a picture beats an error page.
        drawn = None
    zone = proposal.send.at.tzinfo if proposal is not None else UTC
    return {"response": response, "timelines": drawn, "replay_problem": problem, "confidence": CONFIDENCE,
            "zone": zone,
            "zone_name": wording.zone_name(proposal.send.at) if proposal is not None else UTC_NAME,
            "charge_words": describe(response, zone)}


def describe(response: dict[str, Any], zone: tzinfo | None = None) -> str:
    """The response's charge in words (wording.describe_charge), as the command line words it."""
    raw = response.get("charge")
    charge = None if not raw else Charge(
        billable=bool(raw.get("billable")), pricing_model=raw.get("pricing_model", ""),
        category=raw.get("category", ""), type=raw.get("type"), opens_conversation=bool(raw.get("opens_conversation")),
        conversation_expires_at=_time(raw.get("conversation_expires_at")), rule=raw.get("rule"))
    return wording.describe_charge(charge, sent=response.get("decision") == "allow", zone=zone)


def fixture_coverage(loaded: Policy, directory: str) -> dict[str, tuple[str, ...]]:
    """Rule id -> names of the fixtures whose decision trace names it (computed once per rulebook)."""
    key = ("coverage", loaded.rulebook.version, directory)
    if key not in _CACHE:
        results = (run_fixture(f, rulebook=loaded.rulebook, engine=loaded.engine) for f in discover([directory]))
        _CACHE[key] = coverage.measure(loaded.rulebook, results).covering
    return _CACHE[key]


def _row(entry: dict[str, Any]) -> dict[str, Any]:
    send = entry["request"].get("send", {}) if isinstance(entry["request"], dict) else {}
    return {**entry, "send_at": send.get("at", ""), "to": send.get("to", ""),
            "charge_words": describe(entry["response"], UTC)}


def _comparison(c: reports.Comparison) -> dict[str, Any]:
    """A comparison with its causes in words and the address of the decision behind the prediction."""
    decision_id = getattr(c, "decision_id", None)
    if decision_id:
        link = url_for("ui.decision", decision_id=decision_id)
    else:
        link = page_link("ui.replayed", wamid=c.wamid) if c.modelled else None
    causes = [f"Meta billed {d.field} {_word(d.field, d.meta)}; we predicted {_word(d.field, d.predicted)}"
              for d in c.differences]
    likely = getattr(c, "cause", None)  # what the store knows of why (a re-categorised template, a count...)
    if likely is not None:
        causes.append(f"Likely cause: {likely.detail}")
    contact = c.contact if not c.contact.isdecimal() else "+" + c.contact
    return {"c": c, "link": link, "logged": bool(decision_id), "causes": causes, "outcome": _outcome(c),
            "contact": shown(contact)}


def shown(value: Any) -> Any:
    """A value as pages show it: numbers and BSUIDs masked as the decision log masks them (core.masking) when
    MASK_PHONE_NUMBERS is on, so no page shows more of a number than the log keeps."""
    return masking.masked(value) if current_app.config["MASK_PHONE_NUMBERS"] else value


def _outcome(c: reports.Comparison) -> str:
    if not c.modelled:
        return "not-modelled"
    return "match" if c.matches else "mismatch"


def _word(field: str, value: Any) -> str:
    if value is None:
        return "nothing"
    if field == "category":
        return f"{wording.category_name(value)} ({value})"
    if field == "type":
        return f"{wording.type_name(value)} ({value})"
    if field == "billable":
        return "billable" if value else "not billable"
    return str(value)


def _by_folder(fixtures: Any) -> dict[str, list[Fixture]]:
    """Fixtures grouped by their folder under fixtures/ (scenarios, boundaries, v1...), in path order."""
    root = Path(_fixtures_dir())
    folders: dict[str, list[Fixture]] = {}
    for fixture in fixtures:
        folder = fixture.path.parent.relative_to(root).as_posix() if fixture.path.is_relative_to(root) else "other"
        folders.setdefault(folder if folder != "." else "fixtures", []).append(fixture)
    return folders


def _extra_pages() -> list[tuple[str, str, str]]:
    """Pages other work adds (templates, costs), linked from home and the menu once the app serves them."""
    known = (("/ui/templates", "Templates", "Each template's status and category over time, from Meta's webhooks."),
             ("/ui/costs", "Costs", "What the logged decisions predicted and what Meta billed, in money."),
             ("/ui/forecast", "Forecast", "What a campaign will cost: messages per country and category, priced."))
    served = {rule.rule for rule in current_app.url_map.iter_rules() if "GET" in (rule.methods or ())}
    return [(path, title, text) for path, title, text in known if path in served]


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _natural(rule_id: str) -> list[Any]:
    """CSW-2 before CSW-10: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", rule_id)]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _parse(text: str) -> tuple[dict[str, list[str]], Any, Any]:
    # The form's text goes through the same parser and limits as an API body.
    try:
        raw = parse_json(text, decision_limits())
    except BodyRefused as refused:
        return refused.errors, None, None
    try:
        return {}, raw, REQUEST.load(raw)
    except ValidationError as error:
        return bounded_errors(flatten_errors(error.messages)), raw, None


def _fixtures_dir() -> str:
    return str(current_app.config["FIXTURES_DIR"])
