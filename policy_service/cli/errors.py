"""How a command shows a refusal of the service layer: one line, as the HTTP API's error body says it."""

from __future__ import annotations

import json

import click

from ..service.errors import ServiceError


def refusal(error: ServiceError, prefix: str = "") -> click.ClickException:
    """The ServiceError as the command's error: `prefix`, its message, and the fields it names (as JSON) when it
    names any (`{"data.0.name": ["must not contain a NUL character"]}`)."""
    return click.ClickException(f"{prefix}{error.message}" + (f" {json.dumps(error.errors)}" if error.errors else ""))
