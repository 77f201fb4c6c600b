"""The policy-service command line: serve, check a request, replay fixtures."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from . import create_app


@click.group(cls=FlaskGroup, create_app=create_app, add_default_commands=False)
def main() -> None:
    """Decide WhatsApp sends: may it be sent, as which type, at what charge, and why."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Run the service locally (use gunicorn via the Procfile in production)."""
    create_app().run(host=host, port=port, threaded=True)
