"""The rule catalogue (rules/README.md): every rule, version and parameter as a reviewer reads them."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ..core.engine import RulesEngine
from ..core.rates import BASES, RateBook
from ..core.rulebook import CONFIDENCE, ChargeEffect, Rule, Rulebook
from .coverage import RuleCoverage, measure
from .fixtures import discover, run_fixtures
from .lint import top_versions

REGENERATE = "policy-service rules docs"
MARKS = {"C": "C", "S": "**[S]**", "R": "**[R]**"}


def generate(rulebook: Rulebook, engine: RulesEngine, fixtures_dir: str | Path) -> str:
    """Replay the fixtures for their coverage and write the catalogue of the rulebook."""
    fixtures = discover([fixtures_dir])
    coverage = measure(rulebook, run_fixtures(fixtures, rulebook=rulebook, engine=engine))
    # rules/ and fixtures/ are siblings, so a link from the catalogue climbs one level.
    root = Path(fixtures_dir).resolve().parent
    links = {f.name: "../" + f.path.resolve().relative_to(root).as_posix() for f in fixtures}
    return catalogue(rulebook, coverage, links)


def catalogue(rulebook: Rulebook, coverage: RuleCoverage, links: dict[str, str]) -> str:
    """The catalogue as Markdown: versions, parameters, then each version's rules, linked to their fixtures."""
    tops = top_versions(rulebook)
    sections: dict[str, list[Rule]] = {v.id: [] for v in tops}
    across: list[Rule] = []
    for rule in rulebook.rules:
        spanned = [v for v in tops if rule.overlaps(v)]
        (sections[spanned[0].id] if len(spanned) == 1 else across).append(rule)

    lines = [
        "# Rule catalogue",
        "",
        f"Generated from the rule files in this folder and the fixtures in `fixtures/` by `{REGENERATE}`;",
        "do not edit by hand (a test fails when this file is out of date).",
        "",
        "Confidence: C confirmed on Meta's own pages; **[S]** from secondary sources only; **[R]** unconfirmed.",
        "A decision that relies on an [S] or [R] rule says so in its trace.",
        "",
        f"Rule coverage: {len(coverage.covered)} of {len(coverage.covering)} rules fire in at least one of "
        f"{len(links)} fixtures ({coverage.percent:.1f}%).",
        f"Never exercised: {', '.join(coverage.uncovered) or 'none'}.",
        "",
        "## Policy versions",
        "",
        "| version | in force | pricing | confidence | what defines it |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {v.id} | {_dates(v.effective_from, v.effective_until)} | {v.pricing_model} | {MARKS[v.confidence]} "
          f"| [{v.title}]({v.citation}) |" for v in rulebook.versions),
        "",
        "## Parameters",
        "",
        "| id | name | value | confidence | meaning |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {p.id} | `{p.name}` | {_value(p.value)} | {MARKS[p.confidence]} | [{p.title}]({p.citation}) |"
          for p in rulebook.parameters.values()),
        *rate_card_section(rulebook.rates),
    ]
    for version in tops:
        subs = [v for v in rulebook.versions if v not in tops and version.covers(v.effective_from)]
        lines += ["", f"## {version.id}: {version.title} ({_dates(version.effective_from, version.effective_until)})"]
        lines += ([""] if subs else []) + [f"- sub-version {v.id} from {v.effective_from}: {v.title}" for v in subs]
        lines += [line for rule in sections[version.id] for line in _entry(rule, coverage, links)]
    lines += ["", "## Across versions", "", "Rules in force under more than one policy version."]
    lines += [line for rule in across for line in _entry(rule, coverage, links)]
    return "\n".join(lines) + "\n"


def rate_card_section(rates: RateBook) -> list[str]:
    """The catalogue's rate cards: which currencies, dates and markets are priced, and where each number is from."""
    lines = [
        "",
        "## Rate cards",
        "",
        "Prices come from the cards in [rates/](rates/) (or Meta's CSV named by the `RATE_CARDS` setting). A send "
        "on a day, in a currency or to a market no card covers gets `charge.price: null` and a `price_reason`; "
        "no rate is invented.",
        "",
        "A *partial* card is a third-party copy of only some markets (or columns) of Meta's card: it prices what "
        "it lists, and any other market gets a `price_reason` naming what its source lacks.",
        "",
        "| card | currency | in force | basis | markets | volume tiers | confidence | source |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for card in rates.cards:
        tiers = ", ".join(f"{category} ({len(table)} markets)" for category, table in card.tiers.items() if table)
        markets = f"{len(card.rates)} (partial: {', '.join(card.rates)})" if card.partial else str(len(card.rates))
        lines.append(f"| {card.id} | {card.currency} | {_dates(card.effective_from, card.effective_until)} | "
                     f"{BASES[card.basis]} | {markets} | {tiers or 'none'} | {MARKS[card.confidence]} | "
                     f"rates: {_source(card.source)}"
                     + (f"; tiers: {_source(card.tiers_source)}" if card.tiers_source else "")
                     + f" (reproducing <{card.citation}>) |")
    if not rates.cards:
        lines.append("| none | | | | | | | |")
    lines += [
        "",
        f"Currencies covered: {', '.join(rates.currencies()) or 'none'}. Any other currency, and any day outside "
        "the dates above, has no price.",
        "",
        "| market map | in force | countries listed | every other country | confidence | source |",
        "| --- | --- | --- | --- | --- | --- |",
        *(f"| {m.id} | {_dates(m.effective_from, m.effective_until)} | {len(m.countries)} | "
          f"{m.otherwise or 'unknown: no price'} | {MARKS[m.confidence]} | <{m.citation}> |" for m in rates.maps),
    ]
    lines += [
        "",
        "Categories priced by another column, or by none (`rates/categories.yaml`):",
        "",
        "| rule | category | priced at | in force | confidence |",
        "| --- | --- | --- | --- | --- |",
        *(f"| {c.id} | {c.category} | "
          + (f"{c.column} rate" + (", per participant reached" if c.per_participant else "") if c.column
             else f"no price: {c.reason}")
          + f" | {_dates(c.effective_from, c.effective_until)} | {MARKS[c.confidence]} |" for c in rates.columns),
    ]
    for card in rates.cards:
        lines += ["", f"### {card.id}: {card.title}", "", card.note] if card.note else []
    return lines


def _source(text: str) -> str:
    """An address as a link; any other source description as it is."""
    return f"<{text}>" if text.startswith(("https://", "http://")) and " " not in text else text.replace("|", "/")


def describe_effect(rule: Rule) -> str:
    """What the rule does, with the charge spelled out for charge rules."""
    if rule.charge is None:
        return rule.effect
    return rule.effect.replace("charge", f"charge {describe_charge_effect(rule.charge)}, priority {rule.priority}")


def describe_charge_effect(charge: ChargeEffect) -> str:
    """A charge effect in words: model, category, pricing type, billable or free, and what it opens or rides."""
    category = charge.category if isinstance(charge.category, str) else f"category from {charge.category['fact']}"
    words = [charge.pricing_model, category, charge.type, "billable" if charge.billable else "free"]
    if charge.opens and charge.lasts:
        words.append(f"opens a {charge.opens.replace('_', ' ')} for {_value(charge.lasts)}")
    if charge.rides:
        words.append(f"rides {charge.rides.replace('_', ' ')}")
    if charge.closes_others:
        words.append("closes other conversations")
    return "(" + ", ".join(words) + ")"


def _entry(rule: Rule, coverage: RuleCoverage, links: dict[str, str]) -> list[str]:
    names = coverage.covering.get(rule.id, ())
    covered = ", ".join(f"[{name}]({links[name]})" for name in names) if names else "**no fixture: not exercised**"
    mark = "" if rule.confidence == "C" else f" {MARKS[rule.confidence]}"
    return [
        "",
        f"### {rule.id}{mark}: {rule.title}",
        "",
        rule.description,
        "",
        f"- effect: {describe_effect(rule)}",
        f"- in force: {_dates(rule.effective_from, rule.effective_until)}",
        f"- confidence: {MARKS[rule.confidence]} ({CONFIDENCE[rule.confidence]})",
        f"- citation: <{rule.citation}>",
        f"- file: [{rule.file}]({rule.file})",
        f"- covered by {len(names)} fixture(s): {covered}",
    ]


def _dates(start: date, end: date | None) -> str:
    return f"{start} → {end}" if end else f"{start} →"


def _value(value: Any) -> str:
    if isinstance(value, timedelta):
        hours, rest = divmod(int(value.total_seconds()), 3600)
        return f"{hours}h" if not rest else f"{int(value.total_seconds())}s"
    if isinstance(value, dict):
        return ", ".join(f"{k} from {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)
