"""policy-service: may this WhatsApp message be sent, which type must it be, what will it cost, and why.

In a Python program: `from policy_service import PolicyService; PolicyService().decide({...})` (the service
layer's Python API, service/python_api.py; importing it loads no Flask). The Flask app: `create_app()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from flask import Flask

    from .service.python_api import PolicyService, ServiceError

# Flask and flask-smorest constants of the service (not deployment settings).
FLASK_CONSTANTS = {
    "API_TITLE": "policy-service",
    "API_VERSION": "v1",
    # 3.1: a nullable object is anyOf [$ref, null], which typed clients read as `Charge | null`.
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_URL_PREFIX": "/",
    "JSON_SORT_KEYS": False,
}

__all__ = ["PolicyService", "ServiceError", "Settings", "SettingsError", "configured_app", "create_app",
           "load_settings"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: the command line imports this package and needs neither the rules nor the store.
    if name in ("PolicyService", "ServiceError"):
        from .service import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def configured_app(test_config: dict[str, Any] | None = None) -> Flask:
    """The Flask app with its settings only: defaults, then POLICY_* environment variables, then test overrides.

    The settings are validated by config.load_settings (raises config.SettingsError naming each bad
    value); test_config keys that are not settings (TESTING, PROPAGATE_EXCEPTIONS, …) go to Flask as given.
    The validated Settings are app.extensions["policy_service.settings"]. Commands that must not open the
    service (`policy-service db upgrade`) read their settings from it.
    """
    from flask import Flask

    overrides = dict(test_config or {})
    known = {name: overrides.pop(name) for name in list(overrides) if name.lower() in Settings.model_fields}
    settings = load_settings(known)
    # The pages' templates and stylesheet belong to the web layer; their URLs stay /static/ui/….
    app = Flask(__name__, instance_relative_config=True, template_folder="web/templates", static_folder="web/static")
    app.config.update(FLASK_CONSTANTS)
    app.config.update(settings.flask_config())
    app.config.update(overrides)
    app.extensions["policy_service.settings"] = settings
    return app


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the Flask app (settings as configured_app); raises store.SchemaBehind on a database behind
    this release's migrations unless DATABASE_AUTO_UPGRADE applies them."""
    from . import store
    from .contract import schemas
    from .web import (
        api,
        business_api,
        costs,
        log_api,
        login,
        logs,
        metrics,
        operations,
        pages,
        pricing_api,
        security,
        server_errors,
        template_pages,
        webhooks,
    )

    app = configured_app(test_config)

    server_errors.init_app(app)
    logs.init_app(app)
    app.extensions["policy_service"] = api.load_configured(app.config)
    schemas.warm_up()  # before the first request (and, preloaded, before gunicorn forks the workers)
    store.init_app(app)
    operations.init_app(app)
    # Metrics first: its timer must start before an API key check can end the request.
    metrics.init_app(app)
    server_errors.check_framing(app)  # a request whose body cannot be framed is refused before anything else
    security.init_app(app)
    smorest = api.PolicyApi(app)
    # The pages' 404 handler answers API paths in the API's error shape.
    app.extensions["policy_service.api"] = smorest
    security.document(smorest.spec)
    smorest.register_blueprint(api.blp)
    smorest.register_blueprint(log_api.blp)
    smorest.register_blueprint(webhooks.blp)
    smorest.register_blueprint(webhooks.admin_blp)
    smorest.register_blueprint(business_api.blp)
    smorest.register_blueprint(operations.blp)
    smorest.register_blueprint(costs.blp)
    smorest.register_blueprint(pricing_api.blp)
    template_pages.nest(pages.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(pages.home_bp)
    app.register_blueprint(login.bp)
    return app
