"""Commands over what a business is billed: a WABA's billing currency, Meta's pricing analytics, forecasts."""

from __future__ import annotations

import json

import click

from .. import create_app
from ..service import pricing
from ..service.errors import ServiceError


def _app(database_url: str | None):
    return create_app({"DATABASE_URL": database_url} if database_url else None)


@click.group()
def waba() -> None:
    """A WhatsApp Business Account's own settings."""


@waba.command("currency")
@click.argument("waba_id")
@click.argument("currency", required=False)
@click.option("--database-url", help="Defaults to POLICY_DATABASE_URL, else the SQLite file in instance/.")
def waba_currency(waba_id: str, currency: str | None, database_url: str | None) -> None:
    """Show the WABA's billing currency, or set it once (an ISO 4217 code such as BRL)."""
    if currency is not None and (len(currency) != 3 or not currency.isalpha() or not currency.isupper()):
        raise click.BadParameter("must be an ISO 4217 code like USD", param_hint="CURRENCY")
    if not waba_id.isdigit():
        raise click.BadParameter("WABA ids are digits", param_hint="WABA_ID")
    app = _app(database_url)
    with app.app_context():
        try:
            known = pricing.set_currency(waba_id, currency, "CLI") if currency else pricing.currency(waba_id)
        except ServiceError as error:
            raise click.ClickException(error.message) from None
    click.echo(json.dumps(known))
