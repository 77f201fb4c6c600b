"""Commands over what a business is billed: a WABA's billing currency, Meta's pricing analytics, forecasts.

They run the Python API (service.python_api.PolicyService), so each reads its input with the HTTP endpoint's limits,
schema and errors, and a storage fault is the same "unavailable, retry" message, not a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ..service.python_api import ServiceError
from .errors import refusal
from .inputs import TextFile, WabaId
from .services import database_url_option, service


@click.group()
def waba() -> None:
    """A WhatsApp Business Account's own settings."""


@waba.command("currency")
@click.argument("waba_id", type=WabaId())
@click.argument("currency", required=False)
@database_url_option
def waba_currency(waba_id: str, currency: str | None, database_url: str | None) -> None:
    """Show the WABA's billing currency, or set it once (an ISO 4217 code such as BRL; one no rate card is in is set,
    and its sends are unpriced, saying why). A code that is not ISO 4217's is refused as the API refuses it. Prints
    the API's JSON body; its notes (no rate card is in the currency yet) also on stderr, as `note: ...`."""
    svc = service(database_url)
    known: dict[str, Any] = svc.set_billing_currency(waba_id, currency, source="CLI") if currency else \
        svc.billing_currency(waba_id)
    click.echo(json.dumps(known))
    for note in known["notes"]:
        click.echo(f"note: {note}", err=True)


@click.command("forecast")
@click.argument("request_file", type=TextFile())
@database_url_option
def forecast_command(request_file, database_url: str | None) -> None:
    """Price a campaign: REQUEST_FILE (or -) is the body of POST /v1/costs/forecast; prints the same JSON."""
    text = request_file.read()
    try:
        result = service(database_url).forecast(text)
    except ServiceError as error:
        raise refusal(error, "invalid forecast: " if error.code < 500 else "") from None
    click.echo(json.dumps(result, indent=2))


@click.group("analytics")
def analytics_group() -> None:
    """Meta's pricing analytics: the bill the cost report compares with."""


@analytics_group.command("import")
@click.argument("response_file", type=click.File("rb"))
@database_url_option
def import_analytics(response_file, database_url: str | None) -> None:
    """Import RESPONSE_FILE (or -): Meta's GET /<WABA_ID>?fields=pricing_analytics... response, as returned."""
    result = service(database_url).import_pricing_analytics(response_file.read())
    click.echo(json.dumps(result))
