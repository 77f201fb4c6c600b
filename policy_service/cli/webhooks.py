"""`policy-service webhooks`: process stored webhook payloads now, and show the backlog."""

from __future__ import annotations

import json

import click

from .. import create_app
from .inputs import WholeRange
from .services import database_url_option


def _app(database_url: str | None):
    # This command processes the payloads itself: the app it opens starts no background thread.
    return create_app({"WEBHOOK_PROCESSING": "off", **({"DATABASE_URL": database_url} if database_url else {})})


@click.group("webhooks")
def webhooks() -> None:
    """Meta's webhook payloads: stored as received, processed after (by the service, or here)."""


@webhooks.command("process")
# At most a billion: more than any backlog, and a LIMIT every database takes (64-bit integers).
@click.option("--limit", type=WholeRange(min=1, max=1_000_000_000), help="Process at most this many payloads.")
@click.option("--retry-failed", is_flag=True, help="Also retry payloads that failed every attempt.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def process(limit: int | None, retry_failed: bool, database_url: str | None, as_json: bool) -> None:
    """Store the events of every payload left pending (oldest first), as the service's background thread does.

    Safe beside running servers: a payload a live processor holds is left to it. Exits 1 when a payload failed.
    """
    from ..service import ingest
    from ..web.webhooks import settings

    app = _app(database_url)
    with app.app_context():
        counts = ingest.process_pending(settings(app), limit=limit, retry_failed=retry_failed)
    if as_json:
        click.echo(json.dumps(counts))
    else:
        click.echo(f"processed {counts['processed']} payload(s), {counts['failed']} failed, "
                   f"{counts['pending']} still pending")
    if counts["failed"]:
        raise SystemExit(1)


@webhooks.command("backlog")
@database_url_option
def backlog(database_url: str | None) -> None:
    """Print the backlog as JSON: payloads pending and failed, and the age of the oldest pending one (seconds)."""
    from ..service import ingest

    app = _app(database_url)
    with app.app_context():
        click.echo(json.dumps(ingest.backlog()))
