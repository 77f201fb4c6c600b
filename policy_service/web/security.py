"""Who may call what: API keys by role (decision clients, reviewers, operators), the reviewers' browser
login, CSRF protection, and security headers.

Keys are configured as `name:role:sha256` entries (API_KEYS; the digest of the key, never the key) and
compared in constant time. A request names its key in `Authorization: Bearer <key>` or `X-API-Key`; a
reviewer's browser logs in once at /ui/login and then carries a signed session cookie naming the key. Each
endpoint needs one of the roles in ROLE_ENDPOINTS: the decision log records which key (by name) made each
decision. Webhooks authenticate by Meta's signature only (web/webhooks.py), whatever the keys.

CSRF, keys on or off: every page form carries a Flask-WTF token tied to the session; a state-changing
API request sent by a browser from another site (its `Origin` or `Sec-Fetch-Site` says so) is refused,
so a cross-site form can neither decide (/ui/try) nor reload the rules.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from apispec import APISpec
from flask import Flask, Response, current_app, g, redirect, request, session, url_for
from flask_smorest import abort
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..config import ApiKey, parse_api_keys, parse_key_hashes

log = logging.getLogger(__name__)
# Probes, the spec, the login page and the stylesheet it needs stay reachable without a key.
OPEN_ENDPOINTS = frozenset({"operations.healthz", "operations.readyz", "api-docs.openapi_json", "static",
                            "login.login", "login.logout"})
# Meta cannot send our API keys: its webhooks authenticate by their own means (the X-Hub-Signature-256
# HMAC on POST, the verify token on the subscription GET), checked in web/webhooks.py whatever the keys.
SELF_AUTHENTICATED_BLUEPRINTS = frozenset({"webhooks"})
# What each role may call, by endpoint or by a whole blueprint ("ui.*"). An endpoint named nowhere here is
# for operators only: a route added later is never open to a decision client by mistake.
ROLE_ENDPOINTS = {
    "client": frozenset({"decisions.create_decision", "decisions.create_decisions", "decisions.get_decision",
                         "business.*"}),
    "reviewer": frozenset({"home.*", "ui.*"}),
    "operator": frozenset({"operations.*", "stored.*", "costs.*"}),
}
# The browser pages (and their login form): without a session they redirect to the login form instead of
# answering 401, and every form they post carries a CSRF token.
PAGE_BLUEPRINTS = frozenset({"home", "ui", "login"})
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key as a bearer token"},
    "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
# The reviewer pages load their own stylesheet and script and post their own form; nothing else.
HTML_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "form-action 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SESSION_LIFETIME = timedelta(hours=12)
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
csrf = CSRFProtect()


def init_app(app: Flask) -> None:
    """Read the keys, protect page forms against CSRF, check each request's key and role before it runs, and
    add security headers after it."""
    app.config["API_KEYS"] = configured_keys(app.config)
    if not app.config.get("SECRET_KEY"):
        # Sessions and CSRF tokens are signed with it. One per start: with gunicorn's preload the workers
        # share the master's; several instances (or restarts that must keep reviewers logged in) need
        # POLICY_SECRET_KEY.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
        if app.config["API_KEYS"]:
            log.warning("POLICY_SECRET_KEY is not set: reviewer logins last until this process restarts and "
                        "do not carry over to other instances")
    # The session cookie: never readable by scripts, never sent with another site's POST, and a reviewer logs
    # in again after a working day (Flask's defaults: no SameSite, 31 days).
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    if app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(days=31):
        app.config["PERMANENT_SESSION_LIFETIME"] = SESSION_LIFETIME
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid as long as the session
    # Flask-WTF checks only the forms it is asked to (the pages'); the API is checked by refuse_cross_site.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.before_request(refuse_cross_site)
    app.before_request(require_key)
    app.before_request(protect_page_forms)
    app.after_request(add_headers)


def document(spec: APISpec) -> None:
    """Declare both key headers in the OpenAPI spec; the empty requirement says keys may be off."""
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.options["security"] = [{}, *({name: []} for name in SECURITY_SCHEMES)]


def configured_keys(config: Any) -> tuple[ApiKey, ...]:
    """The keys of API_KEYS (`name:role:sha256` entries, roles joined by `+`), and the digests of the older
    API_KEY_HASHES setting as decision clients named key-1, key-2, …; ValueError names each bad entry by
    position (never echoing a value: a plain key configured by mistake is a secret)."""
    try:
        named = parse_api_keys(config.get("API_KEYS") or ())
    except ValueError as error:
        raise ValueError(f"API_KEYS {error}") from None
    keys = [*named,
            *(ApiKey(f"key-{n}", frozenset({"client"}), digest)
              for n, digest in enumerate(key_hashes(config.get("API_KEY_HASHES") or ()), start=1))]
    names = [key.name for key in keys]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"API_KEYS names {repeated} more than once: each key needs its own name")
    return tuple(keys)


def key_hashes(setting: list[str] | str) -> tuple[str, ...]:
    """The configured digests as lowercase hex, from a list or a comma-separated string (config.parse_key_hashes);
    raises ValueError naming the items that are not sha256 hex digests."""
    try:
        return parse_key_hashes(setting)
    except ValueError as error:
        raise ValueError(f"API_KEY_HASHES {error}") from None


def hash_key(key: str) -> str:
    """The sha256 hex digest a key is configured and compared by."""
    return hashlib.sha256(key.encode()).hexdigest()


def presented_key() -> str | None:
    """The key from `Authorization: Bearer <key>` or `X-API-Key`, if either is present."""
    return _presented()[1]


def _presented() -> tuple[str, str | None]:
    """(the header an error about the key names, the key presented or None): Authorization when it carries a
    Bearer token (it wins over X-API-Key), else X-API-Key when present, else Authorization, the one to send."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "Authorization", token.strip()
    api_key = request.headers.get("X-API-Key")
    return ("X-API-Key", api_key) if api_key else ("Authorization", None)


def matching_key(key: str, keys: tuple[ApiKey, ...]) -> ApiKey | None:
    """The configured key with this key's digest; every digest is compared, in constant time."""
    digest = hash_key(key)
    found = None
    for candidate in keys:
        if hmac.compare_digest(digest, candidate.digest):
            found = candidate
    return found


def key_name() -> str | None:
    """The name of the API key that authenticated this request; None when keys are off."""
    return g.get("api_key_name")


def needs_key(endpoint: str | None) -> bool:
    """Whether a request to this endpoint must carry a key once keys are configured."""
    if endpoint is None:
        return True
    return endpoint not in OPEN_ENDPOINTS and endpoint.partition(".")[0] not in SELF_AUTHENTICATED_BLUEPRINTS


def roles_for(endpoint: str) -> frozenset[str]:
    """The roles that may call an endpoint (operators alone for one ROLE_ENDPOINTS does not name)."""
    blueprint = endpoint.partition(".")[0] + ".*"
    allowed = frozenset(role for role, names in ROLE_ENDPOINTS.items() if endpoint in names or blueprint in names)
    return allowed or frozenset({"operator"})


def wants_html() -> bool:
    """Whether the client asks for HTML (its Accept names text/html or XHTML, as a browser's does): a page's errors
    are then HTML pages, and a page without a session redirects to the login form; any other client (an API key
    calling a page, a script, curl with its `*/*`) reads the API's JSON error shape. Werkzeug's accept_html is also
    true for `*/*`, which names no type."""
    return any(kind in _HTML_TYPES and quality > 0 for kind, quality in request.accept_mimetypes)


_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def require_key() -> Response | None:
    """Refuse the request unless keys are off, the endpoint is open, or a key (or a reviewer's login session)
    with a role the endpoint allows is presented: 401 without a valid key (a page asked for by a browser redirects
    to the login form instead), 403 with a key whose roles do not reach the endpoint."""
    keys: tuple[ApiKey, ...] = current_app.config["API_KEYS"]
    if not keys or not needs_key(request.endpoint):
        return None
    _refuse_ambiguous_keys(keys)
    header, presented = _presented()
    key = matching_key(presented, keys) if presented is not None else logged_in_key(keys)
    if key is None:
        if presented is None and _is_page(request.endpoint) and wants_html():
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")), code=303)
        message = "the API key is not valid" if presented is not None else \
            "an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`"
        abort(401, message=message, headers={"WWW-Authenticate": "Bearer"},
              errors={f"headers.{header}": ["not a configured API key" if presented is not None else _missing()]})
    g.api_key_name = key.name
    if request.endpoint is not None:
        allowed = roles_for(request.endpoint)
        if not key.roles & allowed:
            needed = " or ".join(sorted(allowed))
            article = "an" if needed[:1] in "aeiou" else "a"
            abort(403, message=f"the key {key.name!r} ({'+'.join(sorted(key.roles))}) may not call this; "
                               f"it needs {article} {needed} key",
                  errors={f"headers.{header}" if presented is not None else "session": [
                      f"the key {key.name!r} has the role {'+'.join(sorted(key.roles))}; this needs {needed}"]})
    return None


def _missing() -> str:
    """Why no key was found: "required", or, for an Authorization header of another scheme (`Basic clientkey`) or a
    Bearer without a token, what it lacks (it was "required", as if no header had been sent)."""
    sent = request.headers.get("Authorization", "").strip()
    if not sent:
        return "required"
    scheme, space, _ = sent.partition(" ")
    if scheme.lower() == "bearer":
        return "a Bearer token is required: `Authorization: Bearer <key>` (the token is missing), or `X-API-Key`"
    # The scheme is named only when it looks like one (`Basic …`): a bare value may be the key itself, never echoed.
    named = f"not {scheme}" if space and scheme.isascii() and scheme.isalpha() and len(scheme) <= 20 else \
        "not a value without the Bearer scheme"
    return f"a Bearer token is required: `Authorization: Bearer <key>`, {named}; or the key in `X-API-Key`"


def _refuse_ambiguous_keys(keys: tuple[ApiKey, ...]) -> None:
    """401 naming the headers when a request presents more than one key: an X-API-Key or Authorization header
    sent twice (the server joins repeated headers with a comma: it was "not a configured API key"), or X-API-Key
    and `Authorization: Bearer` with different keys (the bearer key was used without a word). A configured key that
    itself holds a comma is still taken."""
    errors: dict[str, list[str]] = {}
    for header in ("X-API-Key", "Authorization"):
        values = request.headers.getlist(header)
        value = values[0] if len(values) == 1 else ""
        scheme, _, token = value.partition(" ") if header == "Authorization" else ("bearer", "", value)
        # Other schemes write commas of their own (Digest): only a bearer token is judged.
        joined = scheme.lower() == "bearer" and "," in token and not matching_key(token.strip(), keys)
        if len(values) > 1 or joined:
            errors[f"headers.{header}"] = ["given more than once: send one key"]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    api_key = request.headers.get("X-API-Key")
    if not errors and scheme.lower() == "bearer" and token.strip() and api_key and token.strip() != api_key:
        errors = {"headers.Authorization": ["a different key than X-API-Key: send one key"],
                  "headers.X-API-Key": ["a different key than Authorization: send one key"]}
    if errors:
        abort(401, message="more than one API key: send one, in `Authorization: Bearer <key>` or `X-API-Key`",
              headers={"WWW-Authenticate": "Bearer"}, errors=errors)


def logged_in_key(keys: tuple[ApiKey, ...]) -> ApiKey | None:
    """The key a reviewer logged in with (session cookie), while it is still configured with the same digest."""
    name, digest = session.get("key_name"), session.get("key_digest")
    if not isinstance(name, str) or not isinstance(digest, str):
        return None
    return next((k for k in keys if k.name == name and hmac.compare_digest(k.digest, digest)), None)


def log_in(key: str) -> ApiKey | None:
    """Start a browser session for a valid key that may read the pages; None (and no session) otherwise."""
    found = matching_key(key, current_app.config["API_KEYS"])
    if found is None or not found.roles & roles_for("ui.rules"):
        return None
    session.clear()  # a fresh session (and CSRF token) at each login
    session.permanent = True
    session["key_name"], session["key_digest"] = found.name, found.digest
    return found


def log_out() -> None:
    """End the browser session."""
    session.clear()


def refuse_cross_site() -> None:
    """A state-changing request a browser sends from another site is refused (403), keys on or off: the API
    reads no cookie, but with keys off a cross-site form could otherwise decide or reload the rules. Clients
    that are not browsers send neither header; the pages' own forms are same-origin."""
    if request.method not in STATE_CHANGING or request.blueprint in SELF_AUTHENTICATED_BLUEPRINTS:
        return
    fetched_from = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    # Sec-Fetch-Site is set by the browser alone (no page can forge it); browsers without it are judged by
    # Origin ("null" included: a sandboxed frame, or a page that sends no referrer).
    if fetched_from in ("cross-site", "same-site") or (fetched_from is None and origin and not _same_origin(origin)):
        # The header that decided names the error (Sec-Fetch-Site, when the browser sent it).
        header, got = ("Sec-Fetch-Site", fetched_from) if fetched_from is not None else ("Origin", origin)
        abort(403, message="refused: a state-changing request sent by a browser from another site (CSRF)",
              errors={f"headers.{header}": [f"must be this service's own origin, got {got}"]})


def protect_page_forms() -> None:
    """Every form a page posts carries the session's CSRF token (Flask-WTF), keys on or off: 403 without it."""
    if request.method not in STATE_CHANGING or not _is_page(request.endpoint):
        return
    try:
        csrf.protect()
    except CSRFError as error:
        abort(403, message=f"refused: {error.description} Reload the page and send the form again (CSRF)",
              errors={"csrf_token": [error.description]})


def _same_origin(origin: str) -> bool:
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == request.host_url.rstrip("/")


def _is_page(endpoint: str | None) -> bool:
    return endpoint is not None and endpoint.partition(".")[0] in PAGE_BLUEPRINTS


def add_headers(response: Response) -> Response:
    """Forbid sniffing, framing and referrers; decisions and errors are never cached."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_CONTENT_SECURITY_POLICY)
        # The pages' own form posts then carry their origin (with no-referrer, browsers send `Origin: null`);
        # links to other sites (rule citations) still carry no referrer.
        response.headers.setdefault("Referrer-Policy", "same-origin")
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "api-docs.openapi_json":
        response.headers["Cache-Control"] = "no-store"
    return response
