"""The reviewers' way into the pages from a browser: a login form taking an API key (reviewer role), then a
signed session cookie (HttpOnly, SameSite=Lax) until logout. With keys off the pages are open and the form
only says so."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from . import security
from .api import repeated_parameters
from .pages import refused_page, unknown_filters

bp = Blueprint("login", __name__, url_prefix="/ui")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The login form; a valid reviewer key starts a session and goes on to the page asked for (`next`)."""
    # `next` and `key` are read once (a second one would be dropped unseen); the form takes nothing else in its query.
    errors = unknown_filters({"next"}) if request.method == "GET" else \
        repeated_parameters(request.values, lambda name: name in ("next", "key"))
    if errors:
        return refused_page(errors)
    if not current_app.config["API_KEYS"]:
        return redirect(_next_page(), code=303)
    if request.method == "POST":
        if security.log_in(request.form.get("key", "")) is not None:
            return redirect(_next_page(), code=303)
        error = "This key is not valid, or may not read the pages (it needs the reviewer role)."
        # Refused as every page refuses: the form again to a browser, the JSON error shape to other clients.
        return refused_page({"key": [error]}, 401, message="not logged in: " + error[0].lower() + error[1:],
                            page=lambda _: render_template("ui/login.html", error=error, next=_next_page()))
    return render_template("ui/login.html", error=None, next=_next_page())


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session and show the login form again."""
    security.log_out()
    return redirect(url_for("login.login"), code=303)


def _next_page() -> str:
    """Where to go after logging in: a path on this site only (never another host: an open redirect)."""
    target = request.values.get("next", "")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("home.home")
    return target
