"""The policy-service command line: serve, check a request, replay fixtures."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Decide WhatsApp sends: may it be sent, as which type, at what charge, and why."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the service locally (the Procfile runs gunicorn for production)."""
    from werkzeug.serving import run_simple

    from . import create_app

    run_simple(host, port, create_app(), threaded=True)


from .log_cli import impact, reconcile  # noqa: E402 - stored-data commands live in their own module

main.add_command(reconcile)
main.add_command(impact)
