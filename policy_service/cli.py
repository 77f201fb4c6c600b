"""The policy-service command line: serve, check a request, replay fixtures."""

from __future__ import annotations

import contextlib
import signal

import click


@click.group()
def main() -> None:
    """Decide WhatsApp sends: may it be sent, as which type, at what charge, and why."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the service locally (the Procfile runs gunicorn for production); SIGHUP reloads the rules."""
    from werkzeug.serving import run_simple

    from . import create_app
    from .operations import ReloadFailed, reload_rules

    app = create_app()

    def reload_on_hangup(_signum: int, _frame: object) -> None:
        # reload_rules has logged the reason; the previous rules stay active.
        with contextlib.suppress(ReloadFailed):
            reload_rules(app)

    signal.signal(signal.SIGHUP, reload_on_hangup)
    run_simple(host, port, app, threaded=True)
