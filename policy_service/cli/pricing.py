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


@click.command("forecast")
@click.argument("request_file", type=click.File("r"))
@click.option("--database-url", help="Defaults to POLICY_DATABASE_URL, else the SQLite file in instance/.")
def forecast_command(request_file, database_url: str | None) -> None:
    """Price a campaign: REQUEST_FILE (or -) is the body of POST /v1/costs/forecast; prints the same JSON."""
    from marshmallow import ValidationError

    from ..contract.parsing import BodyRefused, flatten_errors, parse_json
    from ..contract.pricing import FORECAST, FORECAST_LIMITS
    from ..service import forecast

    try:
        body = FORECAST.load(parse_json(request_file.read(), FORECAST_LIMITS))
    except BodyRefused as refused:
        raise click.ClickException(refused.message) from None
    except ValidationError as error:
        raise click.ClickException(f"invalid forecast: {json.dumps(flatten_errors(error.messages))}") from None
    app = _app(database_url)
    with app.app_context():
        try:
            result = forecast.forecast_costs(app.extensions["policy_service"], body)
        except ServiceError as error:
            raise click.ClickException(error.message) from None
    click.echo(json.dumps(result, indent=2))


@click.group("analytics")
def analytics_group() -> None:
    """Meta's pricing analytics: the bill the cost report compares with."""


@analytics_group.command("import")
@click.argument("response_file", type=click.File("rb"))
@click.option("--database-url", help="Defaults to POLICY_DATABASE_URL, else the SQLite file in instance/.")
def import_analytics(response_file, database_url: str | None) -> None:
    """Import RESPONSE_FILE (or -): Meta's GET /<WABA_ID>?fields=pricing_analytics... response, as returned."""
    from ..service import analytics

    app = _app(database_url)
    with app.app_context():
        try:
            result = analytics.import_analytics(response_file.read())
        except ServiceError as error:
            raise click.ClickException(f"{error.message} {json.dumps(error.errors)}") from None
    click.echo(json.dumps(result))
