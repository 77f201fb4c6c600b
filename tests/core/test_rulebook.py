"""Rule files load strictly: every mistake names its file and rule, and the real rules are complete."""

import shutil
from datetime import date, timedelta

import pytest
import yaml

from policy_service.core.errors import RulebookError
from policy_service.core.rulebook import CONFIDENCE, compile_condition, load_rulebook, parse_duration, version_family

from ..conftest import RULES_DIR

GOOD_RULE = {
    "id": "TST-1",
    "title": "A test rule",
    "description": "Used only by tests.",
    "citation": "https://example.org/policy",
    "confidence": "C",
    "effective": {"from": "2024-01-01"},
    "when": {"csw_open": True},
    "then": {"decision": "allow"},
}


def rules_dir_with(tmp_path, rule=None, **document):
    """A copy of rules/ plus one extra file holding the given rule (or document)."""
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIR, target, ignore=shutil.ignore_patterns("*.md"))
    body = document or {"rules": [rule]}
    (target / "zz-test.yaml").write_text(yaml.safe_dump(body))
    return target


def test_the_real_rulebook_loads(rulebook):
    """Every rule file in rules/ is valid, and every rule carries a citation and a confidence."""
    assert len(rulebook.rules) >= 40
    for rule in rulebook.rules:
        assert rule.citation.startswith("https://"), rule.id
        assert rule.confidence in CONFIDENCE, rule.id


def test_unconfirmed_rules_are_marked(rulebook):
    """The rules the domain reference marks unconfirmed ([R]) are marked R in their files."""
    assert rulebook.rule("CSW-7.uncounted-inbound").confidence == "R"
    assert rulebook.parameters["window_ignored_inbound_types"].confidence == "R"


def test_every_october_2026_rule_is_secondary(rulebook):
    """V4 comes only from third-party quotes, so no V4-only rule may claim to be confirmed: each is secondary,
    or unconfirmed where it assumes what no source says (GRP-2 for groups from October 2026) or rests on a
    single secondary source (MM-2, the 2027 Marketing Messages API sunset)."""
    v4_only = [r for r in rulebook.rules if r.effective_from >= date(2026, 10, 1)]
    assert v4_only and all(r.confidence in ("S", "R") for r in v4_only)
    assert sorted(r.id for r in v4_only if r.confidence == "R") == ["GRP-2.window-free-from-october-2026",
                                                                     "MM-2.sunset"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"meta": 1}, "unknown rule key(s): meta"),
        ({"when": {"csw_opne": True}}, "unknown fact 'csw_opne'"),
        ({"when": {"csw_open": "true"}}, "fact 'csw_open' is bool; 'true' is str"),
        ({"when": {"seconds_until_csw_close": {"lt": "1800"}}}, "is int; '1800' is str"),
        ({"when": {"template_status": {"lt": 3}}}, "lt needs a numeric fact"),
        ({"effective": {"from": "2024-13-01"}}, "effective.from is not a date"),
        ({"effective": {"from": "2024-02-01", "until": "2024-01-01"}}, "is before effective.from"),
        ({"confidence": "X"}, "confidence must be one of C, S, R"),
        ({"then": {"decision": "maybe"}}, "then.decision must be allow or deny"),
        ({"then": {}}, "then must set decision, message_type, charge or advice"),
        ({"because": "at {no_such_value}"}, "because names unknown value(s): no_such_value"),
        ({"citation": None}, "rule is missing citation"),
        ({"then": {"charge": {"pricing_model": "PMP", "category": "utility", "type": "regular",
                              "billable": True, "opens": "conversation"}}}, "charge.lasts goes with charge.opens"),
    ],
)
def test_invalid_rules_are_refused_with_file_and_rule(tmp_path, change, message):
    """A mistake in a rule file stops loading with a message naming the file, the rule and the problem."""
    with pytest.raises(RulebookError) as caught:
        load_rulebook(rules_dir_with(tmp_path, {**GOOD_RULE, **change}))
    assert str(caught.value).startswith("zz-test.yaml:TST-1: ")
    assert message in str(caught.value)


def test_duplicate_ids_are_refused(tmp_path):
    """Two rules with one id are refused, naming both files."""
    with pytest.raises(RulebookError, match="duplicate rule id"):
        load_rulebook(rules_dir_with(tmp_path, {**GOOD_RULE, "id": "CSW-2.open"}))


def test_unknown_file_keys_are_refused(tmp_path):
    """A typo at the top of a file (rulez:) is refused rather than silently loading nothing."""
    with pytest.raises(RulebookError, match="unknown file key"):
        load_rulebook(rules_dir_with(tmp_path, rulez=[GOOD_RULE]))


def test_invalid_yaml_is_refused(tmp_path):
    """A file that is not YAML is refused with its name."""
    target = rules_dir_with(tmp_path, GOOD_RULE)
    (target / "zz-test.yaml").write_text("rules: [\n")
    with pytest.raises(RulebookError, match="zz-test.yaml: not valid YAML"):
        load_rulebook(target)


def test_a_missing_parameter_is_refused(tmp_path):
    """Fact derivation needs every parameter; a rules directory without the window length is refused."""
    target = rules_dir_with(tmp_path, GOOD_RULE)
    (target / "customer-service-window.yaml").unlink()
    with pytest.raises(RulebookError, match="missing parameters: customer_service_window"):
        load_rulebook(target)


def test_rulebook_version_is_a_content_hash(tmp_path, rulebook):
    """The version changes when any rule file changes, and only then."""
    assert load_rulebook(RULES_DIR).version == rulebook.version
    assert load_rulebook(rules_dir_with(tmp_path, GOOD_RULE)).version != rulebook.version


def test_conditions_compile_with_effective_dates():
    """Effective dates become numeric comparisons on the WABA date; `in` becomes an $or of equalities."""
    rule = load_rulebook(RULES_DIR).rule("AUTH-2")
    compiled = compile_condition(rule)
    assert {"$gte": {"waba_date": 20230601}} in compiled["$and"]
    assert {"$lte": {"waba_date": 20240630}} in compiled["$and"]
    tpl = load_rulebook(RULES_DIR).rule("TPL-1.not-approved")
    assert {"$or": [{"template_status": s} for s in ("REJECTED", "PENDING", "PENDING_DELETION")]} in compile_condition(
        tpl
    )["$and"]


def test_policy_version_is_the_most_specific_in_force(rulebook):
    """On a day covered by V2 and its sub-versions, the latest-starting one is reported."""
    assert rulebook.version_on(date(2023, 6, 1)).id == "V2"
    assert rulebook.version_on(date(2024, 11, 1)).id == "V2e"
    assert rulebook.version_on(date(2025, 7, 1)).id == "V3"
    assert rulebook.version_on(date(2026, 10, 1)).id == "V4"
    assert rulebook.version_on(date(2022, 1, 31)) is None


def test_top_level_versions_leave_no_gaps(rulebook):
    """V1..V4 follow each other day after day from 2022-02-01."""
    top = [v for v in rulebook.versions if len(v.id) == 2]
    for earlier, later in zip(top, top[1:], strict=False):
        assert earlier.effective_until + timedelta(days=1) == later.effective_from


@pytest.mark.parametrize(("text", "seconds"), [("24h", 86400), ("72h", 259200), ("30m", 1800), ("90s", 90)])
def test_durations_parse(text, seconds):
    """Durations in rule files read as a number and a unit."""
    assert parse_duration(text).total_seconds() == seconds


def test_bad_durations_are_refused():
    """A duration without a unit is refused rather than guessed."""
    with pytest.raises(ValueError):
        parse_duration("24")


def test_rules_and_versions_remember_where_they_come_from(rulebook):
    """Each rule carries its file's `area`, and each version the file that defines it."""
    assert rulebook.rule("MKT-4").area == "Country restrictions"
    assert rulebook.rule("MKT-4").file == "country-restrictions.yaml"
    assert {v.file for v in rulebook.versions} == {"versions.yaml"}


def test_a_rule_overlaps_the_versions_it_is_in_force_during(rulebook):
    """A rule overlaps a version when it is in force on at least one of the version's days."""
    by_id = {v.id: v for v in rulebook.versions}
    auth2 = rulebook.rule("AUTH-2")  # 2023-06-01 .. 2024-06-30
    assert auth2.overlaps(by_id["V2"]) and auth2.overlaps(by_id["V2c"])
    assert not auth2.overlaps(by_id["V2d"]) and not auth2.overlaps(by_id["V1"])
    assert rulebook.rule("CSW-2.open").overlaps(by_id["V4"])


def test_rules_confirmed_from_meta_pages_quote_them(rulebook):
    """Each rule and parameter raised to [C] from Meta's own page (issue 24) is confirmed and quotes the page;
    the single-source sunset is unconfirmed."""
    quoted = ["MKT-4", "PMP-8.marketing-lite", "BSUID-1.template", "OPT-2", "GRP-2.window-free"]
    rules = {r.id: r for r in rulebook.rules}
    for rule_id in quoted:
        assert rules[rule_id].confidence == "C" and '"' in rules[rule_id].description, rule_id
    for parameter_id in ("TS-1.undelivered-lifetime", "TS-1.authentication-ttl", "LIM-1.counted"):
        parameter = next(p for p in rulebook.parameters.values() if p.id == parameter_id)
        assert parameter.confidence == "C" and '"' in parameter.description, parameter_id
    version = next(v for v in rulebook.versions if v.id == "V2g")
    assert version.confidence == "C" and "+1 dialing code and a US area code" in version.description
    assert rules["MM-2.sunset"].confidence == "R"


def test_a_call_counts_from_the_day_csw_8_call_starts(rulebook):
    """window_inbound_types_counted_from maps an inbound type to a day; the call's day is CSW-8.call's start."""
    days = rulebook.parameter("window_inbound_types_counted_from")
    assert days == {"call": rulebook.rule("CSW-8.call").effective_from}


@pytest.mark.parametrize("value", ["[call]", "{call: soon}", "{call: 2024-10}"])
def test_a_dated_parameter_without_days_is_refused(tmp_path, value):
    """A dates parameter must map names to YYYY-MM-DD days; anything else is a RulebookError naming it."""
    target = rules_dir_with(tmp_path, GOOD_RULE)
    path = target / "customer-service-window.yaml"
    path.write_text(path.read_text().replace("value: {call: 2024-10-01}", f"value: {value}"))
    with pytest.raises(RulebookError, match="window_inbound_types_counted_from"):
        load_rulebook(target)


def test_a_version_ending_in_a_digit_names_its_sub_versions(rulebook):
    """version_family: V3 -> V3 and V3a…V3z (every sub-version of the rulebook among them), V3b -> V3b alone,
    V30 is not V3's; the rulebook's sub-versions all follow the one-letter pattern the filter relies on."""
    family = version_family("V3")
    assert family[0] == "V3" and {"V3a", "V3b"} <= set(family) and "V30" not in family and len(family) == 27
    assert version_family("V3b") == ("V3b",)
    assert version_family("V2") == ("V2", *(f"V2{letter}" for letter in "abcdefghijklmnopqrstuvwxyz"))
    ids = [version.id for version in rulebook.versions]
    tops = [version for version in ids if version[-1].isdigit()]
    assert sorted(ids) == sorted(other for top in tops for other in version_family(top) if other in ids)
