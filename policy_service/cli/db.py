"""`policy-service db`: schema migrations (upgrade once per release, status, new), retention (prune) and the
counters over stored billing rows (rebuild-counters)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import peewee

from .. import configured_app, store
from ..config import DatabaseUrlRefused
from ..contract.schemas import whole_number
from ..core.errors import RulebookError
from ..core.rulebook import load_rulebook
from ..service import retention as service_retention
from ..store import business_state, database, retention, schema
from .services import database_url_option

# ASCII digits: \d also matched other scripts' digits ("١٢d" was 12 days).
AGE = re.compile(r"^([0-9]+)([hdw])$")
AGE_UNITS = {"h": "hours", "d": "days", "w": "weeks"}
MAX_AGE = timedelta(days=36_500)


class Age(click.ParamType):
    """A duration such as 90d, 12w or 36h."""

    name = "AGE"

    def convert(self, value, param, ctx) -> timedelta:
        if isinstance(value, timedelta):
            return value
        match = AGE.fullmatch(str(value).strip())
        if not match:
            self.fail(f"{value!r} is not an age such as 90d, 12w or 36h", param, ctx)
        count = whole_number(match[1], most_digits=12)  # int() refuses 4,300 digits and more (a traceback)
        try:
            age = MAX_AGE + MAX_AGE if count is None else timedelta(**{AGE_UNITS[match[2]]: count})
        except OverflowError:  # past timedelta's 999,999,999 days
            age = MAX_AGE + MAX_AGE
        if age > MAX_AGE:
            # Older than a century is every row; "now minus" a larger age is not a date Python can hold.
            self.fail(f"{value!r} is more than {MAX_AGE.days}d (a hundred years)", param, ctx)
        return age


@click.group("db")
def db() -> None:
    """The database: apply migrations, show their state, prune old rows of the tables that grow."""


def _open(database_url: str | None, *, existing: bool = False):
    """The configured database (settings as the service reads them), connected; with `existing`, None for an SQLite
    file that does not exist, rather than creating it (a command that only reads)."""
    settings = configured_app({"DATABASE_URL": database_url} if database_url else None)
    opened = database.open_database(database.database_url(settings))
    if existing and isinstance(opened, peewee.SqliteDatabase) and opened.database != ":memory:" \
            and not Path(opened.database).exists():
        return None
    url = database.database_url(settings)
    if isinstance(opened, peewee.SqliteDatabase) and (unusable := database.unusable_file(opened.database)):
        # A directory or a missing folder: named as the service's start names it, not "unavailable, retry".
        raise DatabaseUrlRefused(url, unusable)
    try:
        opened.connect()  # SQLite's pragmas read the file: one that is not a database fails here
    except database.DamagedStorage as error:
        opened.close()
        raise database.not_a_database(url, error) from None
    try:
        # `db upgrade` would run the migrations into another application's database.
        database.refuse_foreign(url, opened)
    except DatabaseUrlRefused:
        opened.close()
        raise
    return opened


@db.command()
@database_url_option
def upgrade(database_url: str | None) -> None:
    """Apply every pending migration: run once per release, before the new version starts."""
    opened = _open(database_url)
    try:
        done = schema.upgrade(opened)
    finally:
        opened.close()
    for name in done:
        click.echo(f"applied {name}")
    click.echo(f"schema up to date ({schema.known()[-1]}): {len(done)} migration(s) applied")


@db.command()
@database_url_option
def status(database_url: str | None) -> None:
    """List the migrations applied and pending; exit 1 while any is pending. Reads only: an SQLite file that does
    not exist has every migration pending, and is not created."""
    opened = _open(database_url, existing=True)
    if opened is None:
        done, missing = [], schema.known()
    else:
        try:
            done, missing = schema.applied(opened), schema.pending(opened)
        finally:
            opened.close()
    for name in done:
        click.echo(f"applied  {name}")
    for name in missing:
        click.echo(f"pending  {name}")
    if missing:
        raise click.ClickException(f"{len(missing)} migration(s) pending: run `policy-service db upgrade`")


@db.command("rebuild-counters")
@database_url_option
def rebuild_counters(database_url: str | None) -> None:
    """Rebuild the counters decisions read (the month's service messages, billed volume, users reached) from
    the stored billing rows, in one transaction. `db upgrade` fills them when it creates them and the service
    keeps them with every status; run this after loading message_billing rows by other means (SQL)."""
    opened = _open(database_url)
    try:
        schema.check(opened)
        with opened.bind_ctx(store.models()):
            counted, users = business_state.rebuild_counters()
    except schema.SchemaBehind as error:
        raise click.ClickException(str(error)) from None
    finally:
        opened.close()
    click.echo(f"rebuilt {counted} counter rows and {users} reached-user rows from message_billing")


@db.command()
@click.argument("name")
def new(name: str) -> None:
    """Write migrations/NNN_NAME.py with the changes the models have since the last migration.

    For developers in a checkout: review the file, then commit it with the model change.
    """
    import peewee

    from .. import store

    scratch = peewee.SqliteDatabase(":memory:")
    created = schema.router(scratch).create(name, auto=store.models())
    if created is None:
        raise click.ClickException("the models match the migrations: nothing to write")
    path = schema.MIGRATIONS_DIR / (created + ".py")
    path.write_text(_tidy(path.read_text()))
    click.echo(f"wrote {path}: review it, then commit it with the model change")


def _tidy(source: str) -> str:
    """peewee-migrate's template as ruff accepts it: no unused postgres_ext import, no trailing blanks."""
    source = source.replace("from contextlib import suppress\n", "").replace(
        "with suppress(ImportError):\n    import playhouse.postgres_ext as pw_pext\n", "")
    source = "\n".join(line.rstrip() for line in source.splitlines()) + "\n"
    return re.sub(r"\n{4,}", "\n\n\n", source)


@db.command()
@click.option("--older-than", "age", required=True, type=Age(),
              help="Delete rows older than this (90d, 12w, 36h).")
@click.option("--table", "tables", multiple=True, type=click.Choice([t.name for t in retention.GROWING]),
              help="Only this table (repeatable); default: every table that grows with traffic.")
@click.option("--dry-run", is_flag=True, help="Only count them.")
@database_url_option
def prune(age: timedelta, tables: tuple[str, ...], dry_run: bool, database_url: str | None) -> None:
    """Delete rows older than an age from the tables that grow with traffic: logged decisions (by when they were
    logged), stored messages and priced messages (by when they were sent). Messages and billing are never
    pruned younger than the rules read them (the longest rule period, a calendar month: 32d)."""
    now = datetime.now(UTC)
    before = now - age
    settings = configured_app({"DATABASE_URL": database_url} if database_url else None).config
    try:
        rulebook = load_rulebook(settings["RULES_DIR"], rate_cards=settings.get("RATE_CARDS") or None,
                                 rate_card_tiers=settings.get("RATE_CARD_TIERS") or None)
    except RulebookError as error:
        raise click.ClickException(f"the rules in {settings['RULES_DIR']} do not load: {error}") from None
    opened = _open(database_url)
    try:
        schema.check(opened)
        with opened.bind_ctx(store.models()):
            # --table decisions --table decisions prunes (and counts) the table once.
            done = service_retention.prune(list(dict.fromkeys(tables)) or [t.name for t in retention.GROWING],
                                           before, now, rulebook, dry_run=dry_run)
    except service_retention.RetentionTooShort as error:  # too young an age: a bad value of the option
        raise click.BadParameter(str(error), param_hint="'--older-than'") from None
    except schema.SchemaBehind as error:
        raise click.ClickException(str(error)) from None
    finally:
        opened.close()
    verb = "would delete" if dry_run else "deleted"
    for pruned in done:
        click.echo(f"{verb} {pruned.count} {pruned.table.what} older than {before.isoformat(timespec='seconds')}")
