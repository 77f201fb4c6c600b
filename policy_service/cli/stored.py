"""Commands over stored data: reconcile with Meta's pricing, the cost report, the template registry, and the
impact of candidate rules. They run the service layer (as the HTTP API and the Python API do), without Flask."""

from __future__ import annotations

import json
from pathlib import Path

import click
from marshmallow import ValidationError

from ..contract.queries import RECONCILIATION_QUERY
from ..core.engine import RulesEngine
from ..core.errors import RulebookError
from ..core.rulebook import load_rulebook
from ..review.impact import analyse
from ..service import reports
from ..service.python_api import ServiceError
from ..store import decision_log
from .errors import refusal
from .inputs import RULES_DIR, TextFile, WabaId
from .services import database_url_option, open_database, service


@click.command()
@click.option("--phone-number-id", help="Only this business phone number id.")
@click.option("--contact", help="Only this contact: a wa_id (a leading + allowed), a BSUID or a group id.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def reconcile(phone_number_id: str | None, contact: str | None, database_url: str | None, as_json: bool) -> None:
    """Compare Meta's pricing of delivered messages with the charge the rules predict."""
    try:  # the filters as GET /v1/reconciliation reads them (a contact that is no one's is refused, not empty)
        filters = RECONCILIATION_QUERY.load({name: value for name, value in (
            ("phone_number_id", phone_number_id), ("contact", contact)) if value is not None})
    except ValidationError as error:  # a usage error naming the option (Commands.invoke: cli.errors.bad_value)
        raise ServiceError.invalid(error.messages) from None
    svc = service(database_url)
    # Every comparison (the HTTP API and PolicyService.reconcile answer one page of them).
    report = reports.reconcile(svc.policy, phone_number_id=filters.get("phone_number_id"),
                               contact=filters.get("contact"))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for item in report["comparisons"]:
        if not item["modelled"]:
            click.echo(f"NOT MODELLED {item['wamid']} at {item['at']}: {item['note']}")
            continue
        verdict = "match" if item["matches"] else "MISMATCH"
        click.echo(f"{verdict} {item['wamid']} at {item['at']} ({', '.join(item['determining_rules']) or 'no rule'})")
        if item["note"]:
            click.echo(f"  {item['note']}")
        for difference in item["differences"]:
            click.echo(f"  {difference['field']}: Meta {difference['meta']!r}, rules {difference['predicted']!r}")
    click.echo(f"{report['checked']} delivered messages checked: {report['matching']} match, "
               f"{report['mismatching']} mismatch, {report['not_modelled']} category not modelled")
    if "note" in report:
        click.echo(f"note: {report['note']}")


@click.command()
@click.option("--rules", "rules_dir", required=True, type=RULES_DIR,
              help="The candidate rules directory.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def impact(rules_dir: Path, database_url: str | None, as_json: bool) -> None:
    """Replay logged decisions against candidate rules and report which would change."""
    try:
        candidate = load_rulebook(rules_dir)
    except RulebookError as error:
        raise click.ClickException(f"the candidate rules do not load: {error}") from None
    open_database(database_url)
    found = analyse(decision_log.DecisionRecord.select().order_by(decision_log.DecisionRecord.id),
                    candidate, RulesEngine(candidate))
    report = found.as_json()
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for change in report["changes"]:
        before, after = change["before"], change["after"]
        click.echo(f"{change['decision_id']} ({change['logged_at']}): {', '.join(change['fields'])} changed")
        for name in change["fields"]:
            click.echo(f"  {name}: {json.dumps(before[name])} -> {json.dumps(after[name])}")
    for decision_id, reason in report["unreplayable"].items():
        click.echo(f"{decision_id}: not replayed: {reason}")
    summary = report["summary"]
    click.echo(f"{summary['changed']} of {summary['replayed']} logged decisions would change "
               f"({summary['unreplayable']} could not be replayed)")


@click.group()
def templates() -> None:
    """The template registry fed by Meta's template webhooks."""


@templates.command("import")
@click.option("--waba-id", required=True, type=WabaId(), help="The WhatsApp Business Account the templates belong to.")
@click.argument("response_file", type=TextFile())
@database_url_option
def import_templates(waba_id: str, response_file, database_url: str | None) -> None:
    """Import a saved GET /<WABA_ID>/message_templates response (JSON) into the registry."""
    text = response_file.read()
    try:  # as POST /v1/wabas/<waba_id>/message_templates reads it: the same limits, checks and errors
        imported = service(database_url).import_templates(waba_id, text)
    except ServiceError as error:
        raise refusal(error, f"{response_file.name}: ") from None
    click.echo(f"imported {imported['imported']} templates into WABA {waba_id}'s registry")


@click.command()
@click.option("--from", "start", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="First day (UTC).")
@click.option("--to", "end", required=True, type=click.DateTime(formats=["%Y-%m-%d"]), help="Last day, included.")
@click.option("--group-by", default="month,category", show_default=True,
              help="Comma list of month, category, market.")
@click.option("--currency", default="USD", show_default=True, help="Price with the rate cards in this currency.")
@database_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON (the body of GET /v1/costs).")
def costs(start, end, group_by: str, currency: str, database_url: str | None, as_json: bool) -> None:
    """What Meta billed (stored statuses, priced by the rate cards) beside what the decisions predicted."""
    keys = tuple(dict.fromkeys(k.strip() for k in group_by.split(",") if k.strip()))
    report = service(database_url).cost_report(start.date(), end.date(), group_by=keys, currency=currency)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"costs in {currency}, {report['from']} to {report['to']}: Meta (analytics) | card price of the "
               "delivered messages | predicted")
    for row in report["rows"] + [{"total": "total", **report["totals"]}]:
        label = " ".join(str(row[k]) for k in (*keys, "total") if k in row)
        meta, billed, predicted = row["meta"], row["billed"], row["predicted"]
        averaged = f", {billed['at_meta_average']} at Meta's average rate" if billed["at_meta_average"] else ""
        click.echo(f"{label}: {meta['amount']} ({meta['count']}) | "
                   f"{billed['amount']} ({billed['count']}, {billed['unpriced']} unpriced{averaged}) | "
                   f"{predicted['amount']} ({predicted['count']}, {predicted['unpriced']} unpriced)")
        for difference in row.get("differences", []):
            causes = "; ".join(f"{c['cause']}: {c['text']}" for c in difference["causes"])
            click.echo(f"  {difference['between']}: {difference['amount']}" + (f" ({causes})" if causes else ""))
    for note in report.get("notes", []):
        click.echo(f"note: {note}")
