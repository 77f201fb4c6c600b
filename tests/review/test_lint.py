"""Rule lint: the committed rules are clean, and each kind of broken rule file gets a clear message."""

import shutil

import pytest
from click.testing import CliRunner

from policy_service.cli import main
from policy_service.review.lint import lint

from ..conftest import RULES_DIR


@pytest.fixture
def rules(tmp_path):
    """A copy of rules/ and a way to change one line of one file in it."""
    copy = tmp_path / "rules"
    shutil.copytree(RULES_DIR, copy)

    def edit(file, rule_id, old, new):
        path = copy / file
        text = path.read_text()
        start = text.index(f"id: {rule_id}\n")
        at = text.index(old, start)
        path.write_text(text[:at] + new + text[at + len(old):])
        return copy

    return edit


def messages(directory):
    return [str(finding) for finding in lint(directory)]


def test_committed_rules_have_no_findings():
    """The rules in rules/ load, and no check finds a problem in them."""
    assert messages(RULES_DIR) == []


def test_a_loading_error_names_file_and_rule(rules):
    """A test on an unknown fact is reported as file:rule: message, from the loader."""
    directory = rules("templates.yaml", "TPL-1.paused", "template_status: PAUSED", "template_state: PAUSED")
    assert messages(directory) == ["templates.yaml:TPL-1.paused: unknown fact 'template_state'"]


def test_same_priority_charges_that_can_both_apply_conflict(rules):
    """Two charge rules of one priority with different charges, both applying to some send, conflict."""
    directory = rules("pricing-v3-per-message.yaml", "PMP-4", "send_is_template: false", "csw_open: true")
    assert messages(directory)[0] == (
        "pricing-v3-per-message.yaml:PMP-4: conflicts with PMP-2 (pricing-v3-per-message.yaml): both have "
        "priority 40 and charge differently, and both apply on 2025-07-01 when csw_open=true, "
        "send_is_template=true, template_category=authentication")


def test_overlapping_effective_dates_conflict_only_where_they_overlap(rules):
    """Extending a rule's dates into its successor's is found, on the first shared day."""
    directory = rules("pricing-v2-conversations.yaml", "CBP-4.opens-service", "until: 2024-10-31", "until: 2024-11-05")
    (message,) = messages(directory)
    assert message.startswith("pricing-v2-conversations.yaml:CBP-7.free-service: conflicts with CBP-4.opens-service")
    assert "both apply on 2024-11-01 when conversation_open=false, send_is_template=false, " \
           "template_category=none" in message


def test_deny_against_allow_is_not_a_conflict(rules):
    """A deny that overlaps an allow is the design (deny overrides), so lint accepts it."""
    directory = rules("templates.yaml", "TPL-1.paused", "template_status: PAUSED", "template_status: APPROVED")
    assert messages(directory) == []


def test_a_gap_between_charge_rules_is_found(rules):
    """Starting a rule two days late leaves days on which a free-form send has no charge rule."""
    directory = rules("pricing-v2-conversations.yaml", "CBP-7.free-service", "from: 2024-11-01", "from: 2024-11-03")
    assert messages(directory) == [
        "versions.yaml:V2: free-form sends: no charge rule applies from 2024-11-01 to 2024-11-02 when "
        "conversation_open=false, entry_point_reply=false, free_entry_point_open=false"
    ]


def test_a_category_no_charge_rule_covers_is_a_gap(rules):
    """Narrowing the catch-all template charge leaves authentication templates uncharged from V3 on."""
    directory = rules("pricing-v3-per-message.yaml", "PMP-2", "send_is_template: true",
                      "template_category: {in: [marketing, utility]}")
    assert messages(directory) == [
        "versions.yaml:V3: authentication templates: no charge rule applies from 2025-07-01 to 2026-09-30 "
        "when entry_point_reply=false, free_entry_point_open=false, recipient_in_business_region=true",
        # From 2026-10-01 the group rules charge every template to a group, so the gap is for 1:1 sends only.
        "versions.yaml:V4: authentication templates: no charge rule applies from 2026-10-01 on "
        "when entry_point_reply=false, free_entry_point_open=false, recipient_in_business_region=true, "
        "send_to_group=false",
    ]


def test_a_rule_that_can_never_hold_is_found(rules):
    """A test that contradicts the rule's own effective dates makes it dead, and lint says so."""
    directory = rules("templates.yaml", "TPL-1.disabled", "template_status: DISABLED",
                      "template_status: DISABLED\n      waba_date: {lt: 20200101}")
    assert messages(directory) == ["templates.yaml:TPL-1.disabled: its condition can never hold, so the rule "
                                   "never applies"]


def test_a_sub_version_outside_its_parent_is_found(rules):
    """A sub-version that outlasts its parent version is reported against the sub-version."""
    directory = rules("versions.yaml", "V2b", "until: 2025-06-30", "until: 2025-07-15")
    assert messages(directory) == ["versions.yaml:V2b: sub-version runs from 2024-04-01 to 2025-07-15, outside "
                                   "its parent V2 (from 2023-06-01 to 2025-06-30)"]


def test_top_level_versions_must_meet(rules):
    """A day on which no top-level version is in force is reported against the later version."""
    directory = rules("versions.yaml", "V2", "from: 2023-06-01", "from: 2023-06-02")
    assert "versions.yaml:V2: no policy version is in force on 2023-06-01 (between V1 and V2)" in messages(directory)


def test_cli_lint_exits_non_zero_with_file_rule_lines(rules):
    """`policy-service rules lint --rules DIR` prints file:rule: message lines and exits 1 on any finding."""
    directory = rules("pricing-v3-per-message.yaml", "PMP-4", "send_is_template: false", "csw_open: true")
    result = CliRunner().invoke(main, ["rules", "lint", "--rules", str(directory)])
    assert result.exit_code == 1
    assert result.stdout.startswith("pricing-v3-per-message.yaml:PMP-4: conflicts with PMP-2")
    assert "2 problem(s)" in result.stderr
    assert CliRunner().invoke(main, ["rules", "lint", "--rules", str(RULES_DIR)]).exit_code == 0


def test_a_rule_in_force_before_every_version_is_found(rules):
    """A rule dated before the first policy version would apply on days no version describes."""
    directory = rules("templates.yaml", "TPL-1.approved", "{from: 2022-02-01}", "{from: 2021-01-01}")
    assert messages(directory) == ["templates.yaml:TPL-1.approved: takes effect on 2021-01-01, before the first "
                                   "policy version (V1, 2022-02-01)"]


def test_a_gap_between_rate_cards_is_a_lint_error(rules):
    """A day between two cards of one currency is reported against the later card (its prices would be null)."""
    directory = rules("rates/meta-eur-2026-10-01.yaml", "meta-eur-2026-10-01", "from: 2026-10-01", "from: 2026-10-05")
    assert messages(directory) == [
        "rates/meta-eur-2026-10-01.yaml:meta-eur-2026-10-01: gap between EUR rate card meta-eur-2026-07-01 "
        "(until 2026-09-30) and this one (from 2026-10-05)"]
