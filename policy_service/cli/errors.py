"""How a command shows a refusal of the service layer: one line, as the HTTP API's error body says it."""

from __future__ import annotations

import json

import click

from ..service.errors import ServiceError


def refusal(error: ServiceError, prefix: str = "") -> click.ClickException:
    """The ServiceError as the command's error: `prefix`, its message, and the fields it names (as JSON) when it
    names any (`{"data.0.name": ["must not contain a NUL character"]}`)."""
    return click.ClickException(f"{prefix}{error.message}" + (f" {json.dumps(error.errors)}" if error.errors else ""))


# A refusal of these codes is of a value the caller gave (a 404 names nothing known, a 409 a state: not usage).
BAD_VALUE = (400, 422)


def bad_value(error: ServiceError, ctx: click.Context) -> click.UsageError | None:
    """The ServiceError as a usage error (exit 2) of the command `ctx` runs when it is a bad value (BAD_VALUE) and
    every field it names is one of the command's parameters by its Python name (the Python API names an argument
    so: end), each named as the user typed it: "Invalid value for '--to': must not be before from". None when it
    names anything else (a field of an input file), for `refusal` to word."""
    if error.code not in BAD_VALUE or not error.errors:
        return None
    params = {param.name: param for param in ctx.command.params}
    if not set(error.errors) <= set(params):
        return None
    lines = [f"Invalid value for {params[name].get_error_hint(ctx)}: {'; '.join(messages)}"
             for name, messages in error.errors.items()]
    return click.UsageError("\n".join(lines), ctx)
