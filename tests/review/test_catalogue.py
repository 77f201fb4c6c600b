"""The rule catalogue: fresh in rules/README.md, grouped by version, marking confidence and coverage."""

import shutil

import pytest
from click.testing import CliRunner

from policy_service.cli import main
from policy_service.review.catalogue import REGENERATE, describe_effect, generate

from ..conftest import FIXTURES_DIR, RULES_DIR


@pytest.fixture(scope="module")
def text(rulebook, engine):
    return generate(rulebook, engine, FIXTURES_DIR)


def test_committed_catalogue_is_up_to_date(text):
    """rules/README.md is exactly what the rule files and fixtures generate now."""
    committed = (RULES_DIR / "README.md").read_text()
    assert committed == text, (f"rules/README.md is out of date: run `{REGENERATE}` "
                               "(.venv/bin/policy-service after bash scripts/install) and commit it")


def test_every_rule_appears_once_under_one_section(text, rulebook):
    """Each rule id has exactly one entry, so no rule is missing from the catalogue."""
    for rule in rulebook.rules:
        assert sum(line.startswith(f"### {rule.id}") and line[4 + len(rule.id)] in " :"
                   for line in text.splitlines()) == 1, rule.id


def test_rules_sit_under_their_version_or_across_versions(text):
    """A rule dated within V3 is under V3; one in force from 2022 on is under 'Across versions'."""
    v3, v4, across = text.index("\n## V3:"), text.index("\n## V4:"), text.index("\n## Across versions")
    assert v3 < text.index("\n### PMP-3:") < v4
    assert across < text.index("\n### CSW-2.open:")


def test_entries_mark_confidence_and_coverage(text):
    """Secondary and unconfirmed rules carry [S]/[R] in their heading; an unexercised rule says so."""
    assert "\n### CBP22-4.opens **[R]**: The first reply to an entry-point message opens a free conversation\n" in text
    assert "- covered by 1 fixture(s): [17a_paused_template_is_denied]" \
           "(../fixtures/scenarios/17a_paused_template_is_denied.json)" in text
    assert "- confidence: **[S]** (secondary)" in text


def test_describe_effect_spells_out_a_charge(rulebook):
    """A charge rule's effect names model, category, type, cost, what it opens and its priority."""
    assert describe_effect(rulebook.rule("CBP-3.opens")) == (
        "charge (CBP, category from template_category, regular, billable, opens a conversation for 24h), priority 32")
    assert describe_effect(rulebook.rule("CSW-2.freeform-closed")) == "deny (131047)"


def test_cli_docs_writes_and_checks_the_catalogue(tmp_path):
    """`rules docs --rules DIR` writes DIR/README.md; --check fails on a stale file and passes on a fresh one."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    (rules / "README.md").write_text("stale\n")
    runner = CliRunner()
    stale = runner.invoke(main, ["rules", "docs", "--check", "--rules", str(rules)])
    assert stale.exit_code == 1 and f"out of date: run `{REGENERATE}`" in stale.output
    assert runner.invoke(main, ["rules", "docs", "--rules", str(rules)]).exit_code == 0
    assert (rules / "README.md").read_text() == (RULES_DIR / "README.md").read_text()
    assert runner.invoke(main, ["rules", "docs", "--check", "--rules", str(rules)]).exit_code == 0
