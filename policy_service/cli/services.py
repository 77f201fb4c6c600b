"""How a command reaches the service and its database: the --database-url option every command over stored data
takes, the Python API on that database, or the database alone opened as the service opens it."""

from __future__ import annotations

from typing import Any

import click

from ..config import load_settings
from ..service.python_api import PolicyService, open_store
from .inputs import DatabaseUrl

database_url_option = click.option(
    "--database-url", type=DatabaseUrl(),
    help="Defaults to POLICY_DATABASE_URL, else the SQLite file in the instance folder.")


def overrides(database_url: str | None) -> dict[str, Any]:
    """The settings --database-url overrides: {"database_url": URL} when given, else none (POLICY_DATABASE_URL,
    else the embedded SQLite file)."""
    return {"database_url": database_url} if database_url else {}


def service(database_url: str | None) -> PolicyService:
    """The Python API (service.python_api.PolicyService) with the settings the server reads, --database-url over
    POLICY_DATABASE_URL. Raises ServiceError 503 when the database is unavailable (Commands.invoke words it as
    the API does)."""
    return PolicyService(**overrides(database_url))


def open_database(database_url: str | None) -> None:
    """The configured database (the settings as the server reads them, --database-url over them) opened as this
    process's, for a command that reads the store without the rest of the service."""
    open_store(load_settings(overrides(database_url)).flask_config())
