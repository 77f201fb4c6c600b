"""The policy-service command line: serve, check a request, replay fixtures, lint and document rules.

The top layer: may import every other subpackage and the app factory; nothing imports it.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import NoReturn

import click

from ..config import DEFAULT_FIXTURES_DIR, DEFAULT_RULES_DIR, DatabaseUrlRefused, SettingsError, load_settings
from .inputs import (
    INPUT_FILE,
    INPUT_PATH,
    RULES_DIR,
    DatabaseUrl,
    FiniteRange,
    TextFile,
    WholeRange,
    not_utf8,
    read_text,
)

FIXTURES_DIR = Path(DEFAULT_FIXTURES_DIR)
# Below this many fixtures a run is quick enough that a progress bar is only noise.
PROGRESS_BAR_FROM = 50

rules_option = click.option(
    "--rules", "rules_dir", default=DEFAULT_RULES_DIR, show_default=True, envvar="POLICY_RULES_DIR",
    type=RULES_DIR, help="Directory of rule files.",
)
# `rules lint DIRECTORY` and `rules docs DIRECTORY` took the directory as an argument (their --help said so) where
# every other command takes --rules: the argument still works, with a warning on stderr.
deprecated_directory = click.argument(
    "directory", required=False, type=RULES_DIR,
    deprecated="Use --rules DIRECTORY instead.",
)


def chosen_rules(rules_dir: Path, directory: Path | None) -> Path:
    """The rules directory of a command with --rules and the deprecated DIRECTORY argument: the argument when
    given (it named the directory before --rules did), else --rules (default: POLICY_RULES_DIR, else rules/);
    both on the command line naming two directories is a usage error."""
    if directory is None:
        return rules_dir
    given = click.get_current_context().get_parameter_source("rules_dir")
    if given is click.core.ParameterSource.COMMANDLINE and rules_dir != directory:
        raise click.UsageError(f"--rules {rules_dir} and DIRECTORY {directory} name two directories: give --rules")
    return directory


class Commands(click.Group):
    """The command group: every command first reads the settings as the service does (config.load_settings:
    a bad POLICY_ value ends it, an unknown POLICY_ variable is reported as ignored); settings that cannot be
    read, an input that is not UTF-8 (one no command reads through cli.inputs), a database that is unavailable or
    a refusal of the service layer no command words itself end any command with a message, not a traceback.
    Asking for --help skips the settings check.

    Before any command runs, a single-valued option given more than once (--from A --from B; click keeps the last
    silently) is a usage error naming it (exit 2), for every command (repeated_options); a refusal of a bad value
    (a 400 or 422 naming a command's parameter, as the Python API names it: end) is a usage error naming the
    option or argument the user typed (--to; exit 2)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["policy_service.help"] = bool(set(args) & set(ctx.help_option_names))
        ctx.meta["policy_service.args"] = list(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        leaf = None
        try:
            if not ctx.meta.get("policy_service.help") and not ctx.resilient_parsing:
                leaf = repeated_options(ctx, ctx.meta.get("policy_service.args", []))
                load_settings()
            return super().invoke(ctx)
        except SettingsError as error:
            if isinstance(error, DatabaseUrlRefused) and any(arg.split("=")[0] == "--database-url"
                                                             for arg in ctx.meta.get("policy_service.args", [])):
                # The URL typed as --database-url, not the variable: a usage error naming the option (exit 2).
                raise click.BadParameter(error.reason, leaf or ctx, param_hint="'--database-url'") from None
            raise click.ClickException(str(error)) from None
        except UnicodeDecodeError as error:
            raise not_utf8("an input file", error) from None
        except Exception as error:
            # The database unreachable, read-only or full: the one message the API gives with its 503, whatever
            # the command (imported here: --help and --version open no database).
            from ..service.errors import ServiceError
            from ..store import database
            from .errors import bad_value, refusal

            if isinstance(error, database.STORAGE_FAULTS):
                raise click.ClickException(database.unavailable_message(error)) from None
            if isinstance(error, ServiceError):
                raise (leaf and bad_value(error, leaf) or refusal(error)) from None
            raise


def repeated_options(ctx: click.Context, args: list[str]) -> click.Context | None:
    """The context of the command `args` (the command line after the program's name) runs, once no single-valued
    option of it or of its groups is given more than once; raises click.BadOptionUsage (a usage error, exit 2)
    naming the first that is (--from, or --partial/--full: one value, given twice). An option taking several
    (multiple, count) may repeat. The command line is only tokenized here (click's own parser: no value converted,
    no file opened); None when click's parse will refuse it anyway (an unknown option or command)."""
    command: click.Command = ctx.command
    current = ctx
    while True:
        try:
            _, rest, order = command.make_parser(current).parse_args(args=list(args))
        except click.UsageError:
            return None
        single = [param for param in order if isinstance(param, click.Option) and not param.multiple
                  and not param.count and not param.is_eager]
        for param in dict.fromkeys(single):
            if (times := single.count(param)) > 1:
                # A flag pair (--partial/--full) is one option: both given is the same option twice.
                named = " / ".join(f"'{opt}'" for opt in (*param.opts, *param.secondary_opts))
                raise click.BadOptionUsage(param.opts[0], f"{named} given {times} times; give it once", current)
        if not isinstance(command, click.Group) or not rest:
            return current
        try:
            name, sub, args = command.resolve_command(current, rest)
        except click.UsageError:
            return None
        if name is None or sub is None:
            return None
        command = sub
        current = click.Context(sub, info_name=name, parent=current, resilient_parsing=True)


@click.group(cls=Commands)
@click.version_option(package_name="policy-service", message="policy-service %(version)s")
def main() -> None:
    """Decide WhatsApp sends: may it be sent, as which type, at what charge, and why."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
# A port past 65535 was taken modulo 65536 (99999 served on 34463); 0 lets the system choose one.
@click.option("--port", default=8000, show_default=True, type=WholeRange(0, 65535))
def serve(host: str, port: int) -> None:
    """Run the service locally (production: policy-service-gunicorn, as the Procfile runs it); SIGHUP reloads the
    rules."""
    from werkzeug.serving import run_simple

    from .. import create_app
    from ..web.logs import install_server_logging
    from ..web.operations import ReloadFailed, reload_rules
    from ..web.server_errors import RequestHandler
    from .launcher import start_error

    # Werkzeug's banner, errors and access lines as JSON, one object a line, as the app's and gunicorn's are.
    install_server_logging()
    try:
        app = create_app()
    except Exception as error:
        # A bad rule file or a database behind the migrations was a traceback; gunicorn's start says the same.
        if (message := start_error(error)) is None:
            raise
        raise click.ClickException(message) from None

    def reload_on_hangup(_signum: int, _frame: object) -> None:
        # reload_rules has logged the reason; the previous rules stay active.
        with contextlib.suppress(ReloadFailed):
            reload_rules(app)

    signal.signal(signal.SIGHUP, reload_on_hangup)
    # Requests the server refuses itself (a line too long, too many headers) in the one JSON error shape.
    run_simple(host, port, app, threaded=True, request_handler=RequestHandler)


@main.command()
@click.argument("request_file", type=TextFile())
@click.option("--json", "as_json", is_flag=True, help="Print the API response body instead of text (its "
              "decision_id is null: nothing is logged).")
@rules_option
@click.option("--database-url", type=DatabaseUrl(),
              help="For a request naming its sending number (history_ref, send.phone_number_id): the stored history "
                   "and business state. Defaults to POLICY_DATABASE_URL, else the SQLite file.")
def check(request_file, as_json: bool, rules_dir: Path, database_url: str | None) -> None:
    """Decide one request (a JSON file, - for stdin, or a fixture) as the API would, without logging it, and
    explain the decision rule by rule."""
    from marshmallow import ValidationError

    from ..contract.parsing import BodyRefused, fixture_limits, parse_json
    from ..contract.schemas import REQUEST
    from ..core.explanation import explain
    from ..service import decisions
    from ..service.errors import ServiceError

    try:
        # The same parser and limits as an API body (a fixture file wraps the body in "request").
        document = parse_json(request_file.read(), fixture_limits())
        if isinstance(document, dict) and {"request", "expect"} <= set(document):
            document = document["request"]
        request = REQUEST.load(document)
    except BodyRefused as refused:
        _refuse(request_file.name, ServiceError.refused(refused), as_json)
    except ValidationError as error:
        _refuse(request_file.name, ServiceError.invalid(error.messages), as_json)
    proposal = decisions.proposal(request, document)
    if proposal.phone_number_id is not None:
        # The service's answer: the stored history of a history_ref, the business's stored state.
        from .services import open_database

        open_database(database_url)
    try:
        decided = decisions.Decisions(decisions.Policy(*_policy(rules_dir))).preview(proposal)
    except ServiceError as error:
        _refuse(request_file.name, error, as_json)
    # Nothing is logged, so there is no decision_id to send as biz_opaque_callback_data or to look up later.
    body = {**decided.body, "decision_id": None}
    click.echo(json.dumps(body, indent=2) if as_json else explain(decided.decision))


def _refuse(name: str, error, as_json: bool) -> NoReturn:
    """End `check` with the API's error shape (service.errors.ServiceError: flattened field paths such as
    send.to): with --json its body {code, status, message, errors} on stdout, else the message and a line
    per field; exit status 1 either way."""
    if as_json:
        click.echo(json.dumps(error.as_dict(), indent=2))
        sys.exit(1)
    fields = [f"  {path}: {'; '.join(messages)}" for path, messages in error.errors.items()]
    raise click.ClickException("\n".join([f"{name}: {error.message}", *fields]))


@main.command("test")
@click.argument("paths", nargs=-1, type=INPUT_PATH)
@click.option("--json", "as_json", is_flag=True, help="Print results (and coverage) as JSON.")
@click.option("--coverage", "show_coverage", is_flag=True, help="Report, per rule, the fixtures it fired in.")
@click.option("--fail-under", type=FiniteRange(0, 100), help="Fail when rule coverage is below PCT.",
              metavar="PCT")
@rules_option
def replay_fixtures(paths: tuple[Path, ...], as_json: bool, show_coverage: bool, fail_under: float | None,
                    rules_dir: Path) -> None:
    """Replay fixture files or folders (default: fixtures/) and compare each decision with its expectation."""
    from ..review import fixture_report
    from ..review.coverage import measure
    from ..review.fixtures import FixtureError, discover, run_fixtures

    try:
        fixtures = discover(list(paths) or [FIXTURES_DIR])
    except FixtureError as error:
        raise click.ClickException(str(error)) from None
    rulebook, engine = _policy(rules_dir)
    if _on_terminal() and len(fixtures) >= PROGRESS_BAR_FROM and not as_json:
        with click.progressbar(fixtures, label="replaying fixtures", file=sys.stderr) as bar:
            results = list(run_fixtures(bar, rulebook=rulebook, engine=engine))
    else:
        results = list(run_fixtures(fixtures, rulebook=rulebook, engine=engine))
    coverage = measure(rulebook, results) if show_coverage or fail_under is not None else None

    if as_json:
        click.echo(json.dumps(fixture_report.as_json(results, coverage), indent=2, default=str))
    else:
        click.echo("\n".join(fixture_report.text(results, coverage, per_rule=show_coverage)))
    if not results:
        raise click.ClickException("no fixture ran")
    if coverage is not None and fail_under is not None and coverage.percent < fail_under:
        raise click.ClickException(f"rule coverage {coverage.percent:.1f}% is under --fail-under {fail_under:g}%")
    if any(not r.passed for r in results):
        sys.exit(1)


@main.group()
def rules() -> None:
    """Check the rule files and generate the catalogue reviewers read."""


@rules.command("lint")
@rules_option
@deprecated_directory
def lint_rules(rules_dir: Path, directory: Path | None) -> None:
    """Validate every rule file in --rules; find conflicting charges, dead rules, version overlaps and uncharged
    days."""
    from ..review.lint import lint

    directory = chosen_rules(rules_dir, directory)
    findings = lint(directory)
    for finding in findings:
        click.echo(str(finding))
    if findings:
        raise click.ClickException(f"{len(findings)} problem(s) in {directory}")
    click.echo(f"{directory}: no problems")


@rules.command("docs")
@rules_option
@deprecated_directory
@click.option("--fixtures", "fixtures_dir", default=FIXTURES_DIR, show_default=True,
              type=INPUT_PATH, help="Fixtures whose coverage the catalogue lists.")
@click.option("--check", "check_only", is_flag=True, help="Only check that README.md in --rules is up to date.")
def document_rules(rules_dir: Path, directory: Path | None, fixtures_dir: Path, check_only: bool) -> None:
    """Write the rule catalogue README.md in --rules: every rule per policy version, with its covering fixtures."""
    from ..review.catalogue import REGENERATE, generate

    directory = chosen_rules(rules_dir, directory)
    rulebook, engine = _policy(directory)
    text = generate(rulebook, engine, fixtures_dir)
    target = directory / "README.md"
    if check_only:
        if not target.exists() or target.read_text() != text:
            raise click.ClickException(f"{target} is out of date: run `{REGENERATE}`")
        click.echo(f"{target} is up to date")
        return
    target.write_text(text)
    click.echo(f"wrote {target} ({len(rulebook.rules)} rules)")


@main.group()
def rates() -> None:
    """Rate cards: carry Meta's downloaded CSV over into rules/rates/ with its source address."""


@rates.command("import")
@click.argument("rates_csv", type=INPUT_FILE)
@click.option("--tiers", "tiers_csv", type=INPUT_FILE,
              help="The volume-tier CSV for the same cards (Meta's, or the shared folder's long layout).")
@click.option("--id", "card_id", help="Card id, e.g. meta-usd-2026-04-01 (default: meta-<currency>-<from>).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last day in force of the last card of each currency (omit: open-ended).")
@click.option("--source", required=True, help="Address the CSV was taken from (cited on every price).")
@click.option("--tiers-source", help="Address the tier CSV was taken from.")
@click.option("--confidence", type=click.Choice(["C", "S", "R"]), required=True,
              help="C read on Meta's own page, S a secondary copy, R unconfirmed.")
@click.option("--note", default="", help="How the numbers were obtained.")
@click.option("--partial/--full", default=None,
              help="The copy lists only some markets (default: partial for the long layout, else full).")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write here, not stdout: a file (one card) or a directory (one file per card).")
@rules_option
def import_rates(rates_csv: Path, tiers_csv: Path | None, card_id: str | None, until, source: str,
                 tiers_source: str | None, confidence: str, note: str, partial: bool | None,
                 output: Path | None, rules_dir: Path) -> None:
    """Read a rate card CSV (and volume tiers) and print it as rules/rates/ card files.

    Reads Meta's downloaded CSV ("Cost per message in USD ..." title, one card) and the shared
    folder's wide and long layouts (one card per currency and effective date; within a currency a
    card ends the day before the next one starts, the last at --until). A market the market maps of --rules
    do not name on the card's days (a row `Narnia`) is refused, as `rules lint` would refuse the written card.
    """
    from ..core.rates import (
        RateCardError,
        card_yaml,
        check_markets,
        load_meta_csv,
        load_ratebook,
        load_shared_csv,
        shared_layout,
    )
    from ..core.rulebook import RATES_DIR

    text = read_text(rates_csv)
    tiers = read_text(tiers_csv) if tiers_csv else None
    try:
        if shared_layout(text):
            cards = load_shared_csv(text, tiers, file=str(rates_csv), partial=partial)
        else:
            cards = [load_meta_csv(text, tiers, file=str(rates_csv))]
    except RateCardError as error:
        raise click.ClickException(str(error)) from None
    try:
        maps = load_ratebook(rules_dir / RATES_DIR).maps
    except RateCardError as error:
        raise click.ClickException(f"invalid rules in {rules_dir}: {error}") from None
    last = until.date() if until else None
    for index, card in enumerate(cards):
        later = sorted(c.effective_from for c in cards if c.currency == card.currency
                       and c.effective_from > card.effective_from)
        cards[index] = card = replace(card, effective_until=later[0] - timedelta(days=1) if later else last)
        try:  # over the days the written card will be in force, as `rules lint` reads it
            check_markets(card, maps)
        except RateCardError as error:
            raise click.ClickException(f"{error} (the maps of {rules_dir / RATES_DIR})") from None
    if card_id and len(cards) > 1:
        raise click.UsageError(f"--id names one card, but {rates_csv} holds {len(cards)}")
    files = []
    for card in cards:
        ends = card.effective_until
        refs = _source_refs(text, card) if shared_layout(text) == "long" else ""
        name = card_id or f"meta-{card.currency.lower()}-{card.effective_from.isoformat()}"
        if partial is not None and not shared_layout(text):
            card = replace(card, partial=partial)
        files.append((name, card_yaml(card, card_id=name, until=ends, source=source + refs,
                                      tiers_source=tiers_source, confidence=confidence, note=note)))
    try:
        if output and (output.is_dir() or len(files) > 1):
            output.mkdir(parents=True, exist_ok=True)
            for name, body in files:
                (output / f"{name}.yaml").write_text(body)
                click.echo(f"wrote {output / f'{name}.yaml'}")
        elif output:
            output.write_text(files[0][1])
            click.echo(f"wrote {output} ({len(cards[0].rates)} markets)")
        else:
            click.echo("\n".join(body for _, body in files), nl=False)
    except OSError as error:  # a folder that does not exist, no permission: the path typed, not a traceback
        raise click.BadParameter(f"cannot write {error.filename or output}: {error.strerror or error}",
                                 param_hint="'-o' / '--output'") from None


def _source_refs(text: str, card) -> str:
    """' (rows: S2, S3)' — the long layout's source_ref values of one card's rows, when the file has them."""
    import csv
    import io

    refs = sorted({(row.get("source_ref") or "").strip() for row in csv.DictReader(io.StringIO(text))
                   if row.get("currency", "").strip() == card.currency
                   and row.get("effective_from", "").strip() == card.effective_from.isoformat()} - {""})
    return f" (rows: {', '.join(refs)})" if refs else ""


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def _policy(rules_dir: Path):
    """The rulebook in a directory and an engine compiled from it; a bad rule file is a usage error."""
    from ..core.engine import RulesEngine
    from ..core.errors import RulebookError
    from ..core.rulebook import load_rulebook

    # Like the service, from the same settings (config.load_settings, checked by Commands.invoke before any
    # command runs): POLICY_RATE_CARDS (and POLICY_RATE_CARD_TIERS) name Meta's CSV to price with.
    settings = load_settings()
    try:
        rulebook = load_rulebook(rules_dir, rate_cards=str(settings.rate_cards) if settings.rate_cards else None,
                                 rate_card_tiers=str(settings.rate_card_tiers) if settings.rate_card_tiers else None)
    except RulebookError as error:
        raise click.ClickException(f"invalid rules in {rules_dir}: {error}") from None
    return rulebook, RulesEngine(rulebook)


from .db import db  # noqa: E402 - schema and retention commands live in their own module
from .pricing import analytics_group, forecast_command, waba  # noqa: E402 - billing commands live in their own module
from .stored import costs, impact, reconcile, templates  # noqa: E402 - stored-data commands live in their own module
from .webhooks import webhooks  # noqa: E402 - webhook processing commands live in their own module

main.add_command(reconcile)
main.add_command(impact)
main.add_command(db)
main.add_command(templates)
main.add_command(costs)
main.add_command(waba)
main.add_command(forecast_command)
main.add_command(analytics_group)
main.add_command(webhooks)
