"""The command line: replay fixtures, check one request, with text and JSON output."""

import json

import click
import pytest
from click.testing import CliRunner

from policy_service import cli
from policy_service.contract.schemas import DecisionResponseSchema
from policy_service.core.rates import load_ratebook

from ..conftest import DATA_DIR, FIXTURES_DIR
from ..core.test_rates import LONG, LONG_TIERS, META_CSV, META_TIERS, RATES

PASSING = DATA_DIR / "fixtures" / "freeform_at_exactly_24_hours_is_denied.json"
FAILING = DATA_DIR / "fixtures" / "freeform_at_exactly_24_hours_wrongly_expected_allowed.json"


@pytest.fixture
def run():
    def invoke(*args, stdin=None):
        return CliRunner().invoke(cli.main, [str(a) for a in args], input=stdin)

    return invoke


def test_test_passes_on_the_fixture_suite(run):
    """Replaying fixtures/ prints a PASS line per fixture with its deciding rules and exits 0."""
    result = run("test", FIXTURES_DIR)
    assert result.exit_code == 0, result.output
    assert "PASS 02_freeform_at_exactly_24_hours_is_denied: deny determined by CSW-2.closed" in result.output
    assert "0 failed" in result.output.splitlines()[-1]


def test_test_shows_a_diff_and_the_fired_rules_on_failure(run):
    """A failing fixture exits 1 and shows expected against actual and the rules that fired."""
    result = run("test", PASSING, FAILING)
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("PASS freeform_at_exactly_24_hours_is_denied")
    assert lines[1].startswith("FAIL freeform_at_exactly_24_hours_wrongly_expected_allowed")
    for line in ('-decision: "allow"', '+decision: "deny"', '-charge.billable: true', '+charge.billable: false',
                 '-rules: "CSW-2.open"', ' rules: "CSW-2.closed"', '-determining_rules: "NO-SUCH-RULE"'):
        assert f"    {line}" in lines
    assert "    * CSW-2.freeform-closed [C: confirmed] deny (131047): A free-form message outside the window " \
           "is refused (error 131047)" in lines
    assert lines[-1] == "2 fixtures: 1 passed, 1 failed"


def test_test_json_reports_every_fixture_and_mismatch(run):
    """--json gives a machine-readable summary, per-fixture results and mismatches."""
    result = run("test", "--json", "--coverage", PASSING, FAILING)
    assert result.exit_code == 1
    document = json.loads(result.output)
    assert document["summary"] == {"total": 2, "passed": 1, "failed": 1}
    assert document["rulebook_version"].startswith("sha256:")
    failing = document["fixtures"][1]
    assert failing["passed"] is False
    assert {"field": "decision", "expected": "allow", "actual": "deny"} in failing["mismatches"]
    assert document["coverage"]["rules"]["CSW-2.freeform-closed"] == [f.stem for f in (PASSING, FAILING)]
    assert {"field": "undefined_rule_ids", "expected": [], "actual": ["NO-SUCH-RULE"]} in failing["mismatches"]


def test_test_fails_when_no_fixture_ran(run, tmp_path):
    """An empty folder is a failure, never a vacuous pass."""
    result = run("test", tmp_path)
    assert result.exit_code != 0
    assert "no fixture ran" in result.output


def test_test_reports_an_invalid_request_as_a_failure(run, tmp_path):
    """A fixture whose request does not validate fails with the validation message; the run goes on."""
    broken = json.loads(PASSING.read_text())
    broken["request"]["send"]["to"] = "not a number"
    (tmp_path / "a_broken_request.json").write_text(json.dumps(broken))
    (tmp_path / "b_fine.json").write_text(PASSING.read_text())
    result = run("test", tmp_path)
    assert result.exit_code == 1
    assert "FAIL a_broken_request" in result.output
    assert "must be an E.164 number" in result.output
    assert "PASS b_fine" in result.output


def test_test_coverage_lists_rules_never_fired(run):
    """--coverage names the covering fixtures per rule and marks rules that never fired."""
    result = run("test", "--coverage", PASSING)
    assert result.exit_code == 0
    assert "CSW-2.freeform-closed" in result.output
    assert f"1: {PASSING.stem}" in result.output
    assert "TPL-1.approved" in result.output and "NEVER FIRED" in result.output
    assert "rule coverage: 3/" in result.output


def test_test_fail_under_fails_a_run_with_too_little_coverage(run):
    """--fail-under exits non-zero when rule coverage is below the threshold, and passes at 0."""
    low = run("test", "--fail-under", "90", PASSING)
    assert low.exit_code != 0
    assert "is under --fail-under 90%" in low.output
    assert run("test", "--fail-under", "0", PASSING).exit_code == 0


def test_test_shows_a_progress_bar_on_a_terminal_for_many_fixtures(run, monkeypatch):
    """On a terminal with at least PROGRESS_BAR_FROM fixtures the run draws a progress bar on stderr."""
    monkeypatch.setattr(cli, "PROGRESS_BAR_FROM", 2)
    monkeypatch.setattr(cli, "_on_terminal", lambda: True)
    result = CliRunner().invoke(cli.main, ["test", str(PASSING), str(FAILING)])
    assert "replaying fixtures" in result.stderr
    assert "replaying fixtures" not in result.stdout


def test_check_explains_the_decision(run):
    """check prints the decision, type, charge and each rule with its confidence and reason."""
    result = run("check", PASSING)
    assert result.exit_code == 0, result.output
    assert "decision:      deny (decided)" in result.output
    assert "message type:  template" in result.output
    assert "error codes:   131047" in result.output
    assert "because: A text message is not a template" in result.output
    assert "relies on defaults: service_conversations_this_month" in result.output


def test_check_json_reads_stdin_and_prints_the_api_body(run):
    """check --json - reads the request from stdin and prints the response schema's body."""
    request = json.loads(PASSING.read_text())["request"]
    result = run("check", "--json", "-", stdin=json.dumps(request))
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    # history_source appears only when the request named a stored history (history_ref), business_state only for a
    # send.phone_number_id the store has never seen: the optional members (DecisionResponseSchema.OPTIONAL).
    assert set(body) == set(DecisionResponseSchema().fields) - set(DecisionResponseSchema.OPTIONAL)
    assert body["decision"] == "deny" and body["error_codes"] == [131047]
    # Not logged: no decision_id that would be a dead end for reconciliation or GET /v1/decisions/<id>.
    assert body["decision_id"] is None


def test_check_refuses_an_invalid_request(run):
    """An invalid request exits non-zero with the field errors."""
    result = run("check", "-", stdin=json.dumps({"send": {"at": "2025-01-01T00:00:00+00:00"}}))
    assert result.exit_code == 1
    assert "invalid request" in result.output and "to" in result.output


def test_check_prints_the_apis_error_shape(run):
    """A refused request is reported as the API reports it: flattened field paths (send.zz, not
    {"send": {"zz": ...}}); with --json the API's error body {code, status, message, errors} as JSON."""
    body = json.loads(PASSING.read_text())["request"]
    body["send"]["zz"] = 1
    text = run("check", "-", stdin=json.dumps(body))
    assert text.exit_code == 1
    assert "  send.zz: Unknown field." in text.output and '{"send"' not in text.output
    as_json = run("check", "--json", "-", stdin=json.dumps(body))
    assert as_json.exit_code == 1
    error = json.loads(as_json.stdout)
    assert error["code"] == 422 and error["status"] == "Unprocessable Entity"
    assert error["errors"]["send.zz"] == ["Unknown field."] and error["message"].startswith("invalid request: ")
    malformed = run("check", "--json", "-", stdin="{not json")
    assert malformed.exit_code == 1 and json.loads(malformed.stdout)["code"] == 400


def test_check_decides_a_history_ref_on_the_stored_history_as_the_api_does_without_logging(client, database_url, run):
    """A request naming a stored history is decided on it (history_source counts its events), as POST
    /v1/decisions answers it; check logs nothing."""
    from ..meta_payloads import CONTACT, PHONE_NUMBER_ID, deliver, inbound_text

    deliver(client, inbound_text("wamid.in1", 1756717200))  # the user wrote at 09:00: the window is open
    request = {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+" + CONTACT, "type": "text"},
               "history_ref": {"phone_number_id": PHONE_NUMBER_ID, "contact": CONTACT}}
    result = run("check", "--json", "--database-url", database_url, "-", stdin=json.dumps(request))
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["decision"] == "allow" and body["history_source"]["events"] == 1
    over_http = client.post("/v1/decisions", json=request).json
    assert {**body, "decision_id": None} == {**over_http, "decision_id": None}
    assert client.get(f"/v1/decisions/{body['decision_id']}").status_code == 404
    assert client.get("/v1/decisions").json and len(client.get("/v1/decisions").json) == 1


def test_check_names_a_template_nobody_knows_the_category_of(run):
    """No category given and no sending number whose registry could know it: the API's 422, field by field."""
    request = {"send": {"at": "2025-09-01T10:00:00+00:00", "to": "+5511987654321", "type": "template",
                        "template": {"name": "order_update", "language": "en", "status": "APPROVED"}}}
    result = run("check", "-", stdin=json.dumps(request))
    assert result.exit_code == 1 and "send.template.category" in result.output


def test_rates_import_carries_a_meta_csv_over_with_its_source(tmp_path, run):
    """`rates import` turns Meta's CSV into a card file that loads back with the given id, dates and source."""
    (tmp_path / "rates.csv").write_text(META_CSV)
    (tmp_path / "tiers.csv").write_text(META_TIERS)
    folder = tmp_path / "rates"
    folder.mkdir()
    (folder / "markets.yaml").write_text((RATES / "markets.yaml").read_text())
    result = run("rates", "import", tmp_path / "rates.csv", "--tiers", tmp_path / "tiers.csv", "--id", "meta-usd-test",
                 "--until", "2026-06-30", "--source", "https://example.org/USD.csv", "--confidence", "S",
                 "--partial", "-o", folder / "card.yaml")
    assert result.exit_code == 0, result.output
    card = load_ratebook(folder).cards[0]
    assert (card.id, str(card.effective_until), card.source) == ("meta-usd-test", "2026-06-30",
                                                                "https://example.org/USD.csv")
    assert card.partial  # three markets of Meta's card
    # An output file in a folder that does not exist was a FileNotFoundError traceback (exit 1): a usage error
    # naming -o (exit 2).
    missing = run("rates", "import", tmp_path / "rates.csv", "--tiers", tmp_path / "tiers.csv", "--source", "s",
                  "--confidence", "S", "--partial", "-o", tmp_path / "nope" / "card.yaml")
    assert missing.exit_code == 2 and "Invalid value for '-o' / '--output': cannot write" in missing.stderr, \
        missing.output
    bad = run("rates", "import", tmp_path / "tiers.csv", "--id", "x", "--source", "s", "--confidence", "S")
    assert bad.exit_code != 0 and "tiers.csv: header must be Meta's columns" in bad.output


def test_rates_import_reads_the_shared_long_layout_one_card_per_currency_and_date(tmp_path, run):
    """The long layout gives partial cards; within a currency each ends the day before the next starts."""
    (tmp_path / "long.csv").write_text(LONG + "2026-07-01,BRL,Brazil,marketing,0.3217,S2,\n")
    (tmp_path / "tiers.csv").write_text(LONG_TIERS)
    folder = tmp_path / "rates"
    folder.mkdir()
    (folder / "markets.yaml").write_text((RATES / "markets.yaml").read_text())
    result = run("rates", "import", tmp_path / "long.csv", "--tiers", tmp_path / "tiers.csv", "--until", "2026-12-31",
                 "--source", "shared folder", "--confidence", "S", "-o", folder)
    assert result.exit_code == 0, result.output
    book = load_ratebook(folder)
    assert [(c.id, str(c.effective_until), c.partial) for c in book.cards] == [
        ("meta-aed-2026-10-01", "2026-12-31", True), ("meta-brl-2026-07-01", "2026-09-30", True),
        ("meta-brl-2026-10-01", "2026-12-31", True)]
    assert book.cards[2].source == "shared folder (rows: S5)"
    assert book.cards[2].tiers["utility"]["Brazil"][1].first == 250_001


def test_rates_import_refuses_a_market_no_market_map_names_as_lint_does(tmp_path, run):
    """A CSV row for market Narnia was written into a card (exit 0) that `rules lint` then refused: the import runs
    lint's check (core.rates.check_markets) against the --rules maps and exits non-zero naming the line and market,
    in Meta's layout and the shared long layout, writing nothing."""
    (tmp_path / "rates.csv").write_text(META_CSV.replace("India,USD", "Narnia,USD"))
    (tmp_path / "long.csv").write_text(LONG + "2026-10-01,BRL,Narnia,marketing,0.3,S5,\n")
    folder = tmp_path / "out"
    for name, line in (("rates.csv", 6), ("long.csv", 5)):
        result = run("rates", "import", tmp_path / name, "--until", "2026-12-31", "--source", "s", "--confidence", "S",
                     "-o", folder)
        assert result.exit_code == 1, result.output
        assert f"line {line}: unknown market 'Narnia': market map meta-markets-" in result.output, result.output
        assert not folder.exists()
    lint = run("rules", "lint", "--rules", RATES.parent)
    assert lint.exit_code == 0, lint.output  # the shipped rules themselves pass the same check


def test_rates_import_refuses_a_row_with_missing_or_extra_cells(tmp_path, run):
    """`rates import` of a wide row `2025-10-01,INR,Brazil,4.5` (its other categories missing) or a row with an extra
    cell wrote a card with those categories unpriced (exit 0): it exits 1 naming the line, writing nothing."""
    header = "effective_from,currency,market,marketing,utility,authentication,authentication_international,service\n"
    folder = tmp_path / "out"
    for text, message in ((header + "2025-10-01,INR,Brazil,4.5\n", "line 2: 4 cells where the header has 8"),
                          (header + "2025-10-01,INR,Brazil,4.5,0.6,0.6,n/a,n/a,9\n",
                           "line 2: 9 cells where the header has 8")):
        (tmp_path / "wide.csv").write_text(text)
        result = run("rates", "import", tmp_path / "wide.csv", "--until", "2026-12-31", "--source", "s",
                     "--confidence", "S", "-o", folder)
        assert result.exit_code == 1 and message in result.output, result.output
        assert not folder.exists()


LATIN1_REQUEST = ('{"send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "text"},'
                  ' "context": {"note": "caf\xe9"}}').encode("latin-1")


def assert_not_utf8_error(result, name):
    """Exit 1 with one line naming the input and the offending byte, and no traceback."""
    assert result.exit_code == 1, result.output
    assert f"Error: {name} is not UTF-8 text (byte 0xe9 at offset" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, UnicodeDecodeError)


def test_check_reports_a_file_that_is_not_utf8(run, tmp_path):
    """`check` on a Latin-1 file (or the same bytes on stdin) names the file and byte instead of a traceback."""
    (tmp_path / "latin1.json").write_bytes(LATIN1_REQUEST)
    assert_not_utf8_error(run("check", tmp_path / "latin1.json"), str(tmp_path / "latin1.json"))
    assert_not_utf8_error(run("check", "-", stdin=LATIN1_REQUEST), "stdin")


def test_other_file_inputs_report_a_file_that_is_not_utf8(run, tmp_path):
    """`templates import` and `rates import` refuse a non-UTF-8 file the same way."""
    (tmp_path / "latin1.json").write_bytes(LATIN1_REQUEST)
    (tmp_path / "rates.csv").write_bytes(META_CSV.replace("Brazil", "Br\xe9sil").encode("latin-1"))
    assert_not_utf8_error(run("templates", "import", "--waba-id", "1", tmp_path / "latin1.json"),
                          str(tmp_path / "latin1.json"))
    assert_not_utf8_error(run("rates", "import", tmp_path / "rates.csv", "--source", "https://example.com",
                              "--confidence", "S"), str(tmp_path / "rates.csv"))


def test_check_refuses_a_key_given_twice_as_the_api_does(run, tmp_path):
    """A request file giving a key twice (`marketing_opt_out` true, then false) is refused naming it: the last value
    would have turned the deny into an allow."""
    request = tmp_path / "twice.json"
    request.write_text('{"send": {"at": "2026-10-10T10:00:00+00:00", "to": "+5511988887777", "type": "text"},'
                       ' "context": {"marketing_opt_out": true, "marketing_opt_out": false}}')
    result = run("check", request)
    assert result.exit_code != 0 and "context.marketing_opt_out: given 2 times in one object" in result.output


def test_forecast_reads_its_file_as_check_does(run, tmp_path):
    """`forecast` reads its file as `check` does (UTF-8, a byte-order mark dropped): the same body with and without
    one gives the same forecast."""
    body = json.dumps({"at": "2026-11-10T12:00:00+00:00", "currency": "USD",
                       "lines": [{"country": "BR", "category": "marketing", "count": 10}]})
    (tmp_path / "plain.json").write_text(body)
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + body.encode())
    plain, bom = run("forecast", tmp_path / "plain.json"), run("forecast", tmp_path / "bom.json")
    assert plain.exit_code == 0 and bom.exit_code == 0, (plain.output, bom.output)
    assert json.loads(plain.output)["lines"] == json.loads(bom.output)["lines"]


@pytest.mark.parametrize("command", [("check", PASSING), ("test", PASSING), ("rules", "lint")])
def test_every_command_reads_the_settings_first(run, monkeypatch, command):
    """Like the server and `reconcile`, every command loads the settings: a bad value ends it with the
    variable named; --help still answers."""
    monkeypatch.setenv("POLICY_MAX_BATCH_SIZE", "lots")
    result = run(*command)
    assert result.exit_code == 1
    assert "POLICY_MAX_BATCH_SIZE='lots'" in result.output
    assert run(command[0], "--help").exit_code == 0


def commands(group=cli.main, prefix=()):
    """(name words, command) of every command under a group, recursively."""
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_command_reading_rule_files_takes_them_as_rules():
    """One spelling for the rules directory: every command that reads rule files takes --rules (POLICY_RULES_DIR
    by default, but impact's required candidate); the DIRECTORY argument `rules lint` and `rules docs` took is
    left only as a deprecated alias."""
    takes = {}
    for words, command in commands():
        options = {param.name: param for param in command.params}
        if "rules_dir" in options or "directory" in options:
            takes[" ".join(words)] = options
    assert {"check", "test", "impact", "rules lint", "rules docs"} <= set(takes)
    for name, options in takes.items():
        rules_option = options["rules_dir"]
        assert rules_option.opts == ["--rules"], name
        # impact's --rules names the candidate rules, required; the others default to the service's rules
        assert rules_option.required or rules_option.envvar == "POLICY_RULES_DIR", name
        assert "directory" not in options or options["directory"].deprecated, name


def test_rules_lint_and_docs_take_rules_and_keep_the_argument_as_a_deprecated_alias(run, tmp_path, monkeypatch):
    """`rules lint --rules DIR` lints DIR, POLICY_RULES_DIR is its default as for every --rules; `rules lint DIR`
    still lints DIR, saying on stderr that it is deprecated; --rules and the argument naming two directories is a
    usage error (exit 2)."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bad.yaml").write_text("rules: 3\n")
    assert run("rules", "lint", "--rules", broken).exit_code == 1
    monkeypatch.setenv("POLICY_RULES_DIR", str(broken))
    assert run("rules", "lint").exit_code == 1
    monkeypatch.delenv("POLICY_RULES_DIR")
    assert run("rules", "lint").exit_code == 0
    old_form = run("rules", "lint", broken)
    assert old_form.exit_code == 1 and "deprecated" in old_form.stderr and "--rules" in old_form.stderr
    both = run("rules", "lint", "--rules", FIXTURES_DIR.parent / "rules", broken)
    assert both.exit_code == 2 and "name two directories" in both.stderr
    assert "deprecated" in run("rules", "docs", "--check", FIXTURES_DIR.parent / "rules").stderr


def test_an_unknown_policy_variable_is_reported_by_check(run, monkeypatch, caplog):
    """A misspelt POLICY_ variable is reported as ignored by `check` too, once."""
    monkeypatch.setenv("POLICY_CHECK_TYPO", "1")
    assert run("check", PASSING).exit_code == 0
    assert caplog.text.count("POLICY_CHECK_TYPO is not a setting of policy-service and is ignored") == 1


def test_check_prices_with_the_rate_cards_the_settings_name(run, tmp_path, monkeypatch):
    """`check` reads POLICY_RATE_CARDS through the service's settings (config.load_settings), as the server
    does: a CSV it names prices the send; a path that is no file ends the command with the variable named."""
    (tmp_path / "USD.csv").write_text(META_CSV.replace("Brazil,USD,0.0625", "Brazil,USD,0.0700"))
    request = {"send": {"at": "2026-05-12T10:00:00+00:00", "to": "+5511987654321", "type": "template",
                        "template": {"name": "promo", "language": "en", "category": "marketing",
                                     "status": "APPROVED"}}}
    monkeypatch.setenv("POLICY_RATE_CARDS", str(tmp_path / "USD.csv"))
    result = run("check", "--json", "-", stdin=json.dumps(request))
    assert result.exit_code == 0, result.output
    price = json.loads(result.output)["charge"]["price"]
    assert (price["amount"], price["rate_card"]["id"]) == ("0.0700", "csv-usd-2026-04-01")

    monkeypatch.setenv("POLICY_RATE_CARDS", str(tmp_path / "missing.csv"))
    result = run("check", "--json", "-", stdin=json.dumps(request))
    assert result.exit_code != 0 and "POLICY_RATE_CARDS" in result.output, result.output


def test_version_names_the_installed_release():
    """`policy-service --version` prints the installed distribution's version (setup.cfg), as a bug report needs."""
    from importlib.metadata import version

    result = CliRunner().invoke(cli.main, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"policy-service {version('policy-service')}"


def single_valued(command):
    """The options of a command that take one value (or are one flag, or a flag pair): not multiple, count or eager."""
    return [param for param in command.params if isinstance(param, click.Option) and not param.multiple
            and not param.count and not param.is_eager]


def test_a_single_valued_option_given_twice_is_a_usage_error_on_every_command(run, monkeypatch):
    """click kept the last of --from A --from B silently: on every command, each option that takes one value (a
    flag, a flag pair --partial/--full alike) given twice is a usage error naming it (exit 2) before anything runs
    (the settings are not even read: a command body never starts); an option taking several (--table) may repeat."""
    def nothing_may_run():
        raise AssertionError("a command with a repeated option ran")

    monkeypatch.setattr(cli, "load_settings", nothing_may_run)
    checked = 0
    for path, command in commands():
        for option in single_valued(command):
            given = [option.opts[0]] if option.is_flag else [option.opts[0], "1"]
            second = [option.secondary_opts[0]] if option.secondary_opts else given
            result = run(*path, *given, *second)
            assert result.exit_code == 2, (path, option.opts, result.output)
            assert f"'{option.opts[0]}'" in result.stderr and "given 2 times; give it once" in result.stderr, \
                (path, option.opts, result.stderr)
            checked += 1
    assert checked > 30
    # --opt=value counts as the option too, in any order; a multiple option is not refused for repeating.
    assert "'--from' given 2 times" in run("costs", "--from=2026-05-01", "--to", "2026-05-02", "--from",
                                           "2026-05-03").stderr
    repeated_table = run("db", "prune", "--older-than", "400d", "--table", "decisions", "--table", "decisions")
    assert "given 2 times" not in repeated_table.output


def test_the_repeated_option_check_is_only_tokenizing(run):
    """The check reads the command line with click's own parser and converts nothing: stdin is not read twice and
    an unknown option or command is still click's own usage error."""
    assert "No such option '--nope'" in run("costs", "--nope", "--from", "1", "--from", "2").stderr
    assert "No such command 'nope'" in run("nope", "--x", "1", "--x", "2").stderr
    result = run("check", "--json", "-", stdin=json.dumps(json.loads(PASSING.read_text())["request"]))
    assert result.exit_code == 0 and json.loads(result.stdout)["decision"] == "deny", result.output


@pytest.mark.parametrize(("args", "named", "internal"), [
    (["costs", "--from", "2026-05-02", "--to", "2026-05-01"], "'--to': must not be before from", "end"),
    (["costs", "--from", "1999-05-01", "--to", "2026-05-01"], "'--from': must be between", "start"),
    (["costs", "--from", "2026-05-01", "--to", "2026-05-02", "--group-by", "week"], "'--group-by': a comma list",
     "group_by"),
    (["costs", "--from", "2026-05-01", "--to", "2026-05-02", "--currency", "XYZ"], "'--currency': must be an ISO",
     None),
    (["waba", "currency", "102290129340398", "XYZ"], "'[CURRENCY]': must be an ISO 4217", None),
    (["waba", "currency", "abc"], "'WABA_ID': WABA ids are digits", None),
    (["templates", "import", "--waba-id", "abc", "-"], "'--waba-id': WABA ids are digits", "waba_id"),
])
def test_a_bad_option_value_is_a_usage_error_naming_the_option_typed(run, database_url, args, named, internal):
    """`costs --from 2026-05-02 --to 2026-05-01` said "invalid request: end: must not be before from" (exit 1): the
    Python API's name for --to. A bad value of a command's option or argument is a usage error (exit 2) naming it
    as typed, never the internal name; an id that cannot be a WABA's is refused so too (was a 404 naming waba_id)."""
    result = run(*args, "--database-url", database_url, stdin="{}")
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {named}" in result.stderr, result.stderr
    if internal:
        assert f"{internal}:" not in result.stderr and f"'{internal}'" not in result.stderr, result.stderr


def test_every_command_names_a_refused_value_by_its_option(run):
    """Each command's refusal of a bad value its service call names by the parameter's Python name (end, waba_id,
    phone_number_id) is worded by cli.errors.bad_value with the option or argument as typed: for every parameter of
    every command; a refusal naming anything else (a field of an input file), a 404 or a 409 is not a usage error."""
    from policy_service.cli.errors import bad_value
    from policy_service.service.errors import ServiceError

    for path, command in commands():
        ctx = click.Context(command, info_name=path[-1])
        for param in command.params:
            usage = bad_value(ServiceError(422, "invalid request", {param.name: ["wrong"]}), ctx)
            assert usage is not None and usage.exit_code == 2, (path, param.name)
            assert usage.message == f"Invalid value for {param.get_error_hint(ctx)}: wrong", (path, param.name)
            assert f"'{param.name}'" not in usage.message and f"{param.name}:" not in usage.message
        assert bad_value(ServiceError(422, "invalid request", {"lines.0.count": ["wrong"]}), ctx) is None
        assert bad_value(ServiceError(404, "nothing", {p.name: ["no such"] for p in command.params[:1]}), ctx) is None


def test_a_rules_directory_or_input_that_does_not_exist_is_a_usage_error_on_every_command(run, tmp_path):
    """`rules lint --rules /tmp/nonexistent` and `check --rules /tmp/nonexistent req.json` exited 1 where `impact` and
    `test` exited 2: every command's --rules (and deprecated DIRECTORY) is the one shared type, inputs.RULES_DIR, so a
    missing directory is a usage error naming the option (exit 2); every path a command reads must exist alike."""
    from policy_service.cli import inputs

    missing = tmp_path / "nonexistent"
    request = tmp_path / "req.json"
    request.write_text(json.dumps(json.loads(PASSING.read_text())["request"]))
    for args in (["rules", "lint", "--rules", missing], ["check", "--rules", missing, request],
                 ["impact", "--rules", missing], ["test", "--rules", missing], ["rules", "docs", "--rules", missing],
                 ["rules", "lint", missing], ["test", missing]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "does not exist" in result.stderr and ("'--rules'" in result.stderr or "DIRECTORY" in result.stderr
                                                      or "PATHS" in result.stderr), (args, result.stderr)
    checked = 0
    for path, command in commands():
        for param in command.params:
            if param.name in ("rules_dir", "directory"):
                assert param.type is inputs.RULES_DIR, (path, param.name)
                checked += 1
            elif isinstance(param.type, click.Path) and param.name != "output":
                assert param.type in (inputs.INPUT_FILE, inputs.INPUT_PATH), (path, param.name)
    assert checked >= 7


def test_a_bad_database_url_or_port_is_a_usage_error_naming_the_option(run, monkeypatch):
    """`--database-url nonsense` was refused as POLICY_DATABASE_URL (exit 1), naming a variable nobody set, and
    `serve --port 99999` served on port 34463 (99999 modulo 65536): each is a usage error naming the option typed
    (exit 2), on every command that takes it, before anything runs."""
    from policy_service.cli.services import DatabaseUrl

    checked = 0
    for path, command in commands():
        for param in command.params:
            if param.name == "database_url":
                assert isinstance(param.type, DatabaseUrl), path
                checked += 1
    assert checked >= 5
    for args in (["db", "status"], ["webhooks", "backlog"], ["costs", "--from", "2026-05-01", "--to", "2026-05-02"],
                 ["check", "-"], ["impact", "--rules", RATES.parent]):
        result = run(*args, "--database-url", "nonsense", stdin="{}")
        assert result.exit_code == 2, (args, result.output)
        assert "Invalid value for '--database-url': must be a database URL" in result.stderr, (args, result.stderr)
    monkeypatch.setattr("werkzeug.serving.run_simple", lambda *args, **kwargs: pytest.fail("the server started"))
    result = run("serve", "--port", "99999")
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.stderr, result.output
