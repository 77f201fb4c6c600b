"""Optional API keys (stored as sha256 digests, compared in constant time) and security headers."""

from __future__ import annotations

import hashlib
import hmac

from apispec import APISpec
from flask import Flask, Response, current_app, request
from flask_smorest import abort

from ..config import parse_key_hashes

# Probes and the spec stay reachable without a key, so orchestrators and client generators work.
OPEN_ENDPOINTS = frozenset({"operations.healthz", "operations.readyz", "api-docs.openapi_json"})
# Meta cannot send our API keys: its webhooks authenticate by their own means (the X-Hub-Signature-256
# HMAC on POST, the verify token on the subscription GET), checked in web/webhooks.py whatever the keys.
SELF_AUTHENTICATED_BLUEPRINTS = frozenset({"webhooks"})
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


def init_app(app: Flask) -> None:
    """Check API keys before each request (when any are configured) and add security headers after it."""
    app.config["API_KEY_HASHES"] = key_hashes(app.config["API_KEY_HASHES"])
    app.before_request(require_key)
    app.after_request(add_headers)


def document(spec: APISpec) -> None:
    """Declare both key headers in the OpenAPI spec; the empty requirement says keys may be off."""
    for name, scheme in SECURITY_SCHEMES.items():
        spec.components.security_scheme(name, scheme)
    spec.options["security"] = [{}, *({name: []} for name in SECURITY_SCHEMES)]


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
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("X-API-Key") or None


def key_accepted(key: str, hashes: tuple[str, ...]) -> bool:
    """True when the key's digest matches a configured one; every digest is compared, in constant time."""
    digest = hash_key(key)
    matched = False
    for expected in hashes:
        matched |= hmac.compare_digest(digest, expected)
    return matched


def needs_key(endpoint: str | None) -> bool:
    """Whether a request to this endpoint must carry a key once keys are configured."""
    if endpoint is None:
        return True
    return endpoint not in OPEN_ENDPOINTS and endpoint.partition(".")[0] not in SELF_AUTHENTICATED_BLUEPRINTS


def require_key() -> None:
    """Refuse the request with 401 unless API keys are off, the endpoint is open, or the key matches."""
    hashes = current_app.config["API_KEY_HASHES"]
    if not hashes or not needs_key(request.endpoint):
        return
    key = presented_key()
    if key is None:
        abort(401, message="an API key is required: send `Authorization: Bearer <key>` or `X-API-Key`",
              headers={"WWW-Authenticate": "Bearer"})
    if not key_accepted(key, hashes):
        abort(401, message="the API key is not valid", headers={"WWW-Authenticate": "Bearer"})


def add_headers(response: Response) -> Response:
    """Forbid sniffing, framing and referrers; decisions and errors are never cached."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", HTML_CONTENT_SECURITY_POLICY)
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "api-docs.openapi_json":
        response.headers["Cache-Control"] = "no-store"
    return response
