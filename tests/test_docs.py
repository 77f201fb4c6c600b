"""Generated documentation stays true: docs/example-response.json is the service's answer to README's example,
and README names the command line's options as they are.

When the answer changes (a rule, the response shape, the rulebook's hash), this test rewrites the file and
fails once, so the change is reviewed and committed; under CI (CI=true) it only fails.
"""

import json
import os
import re

import click

from policy_service.contract.schemas import DECISION_REQUEST_EXAMPLE

from .conftest import ROOT

EXAMPLE = ROOT / "docs" / "example-response.json"
# A decision id is random per call; the documented one is fixed so the file changes only with the answer.
DOCUMENTED_ID = "e3727ae234074b87a633c437695cfb8d"


def test_docs_example_response_is_what_the_service_answers(client):
    """POST README's example request: the body, with its id fixed, equals docs/example-response.json."""
    body = client.post("/v1/decisions", json=DECISION_REQUEST_EXAMPLE).get_json()
    body["decision_id"] = DOCUMENTED_ID
    text = json.dumps(body, indent=4, sort_keys=True) + "\n"
    if EXAMPLE.read_text() == text:
        return
    if not os.environ.get("CI"):
        EXAMPLE.write_text(text)
    raise AssertionError(f"{EXAMPLE} was stale" + ("" if os.environ.get("CI") else ": rewritten, review and commit it"))


README = ROOT / "README.md"


def commands() -> dict[tuple[str, ...], click.Command]:
    """Every command and group of `policy-service` by its path (() is the program, ("db", "prune") a command)."""
    from policy_service.cli import main

    found: dict[tuple[str, ...], click.Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        found[path] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(main, ())
    return found


def options(command: click.Command) -> set[str]:
    """The long and short option names a command takes (--help included)."""
    names = {"--help"}
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts, param.secondary_opts)
    return names


def test_every_option_of_every_command_is_in_the_readme():
    """`reconcile --contact`, `costs --currency`, `rules docs --check` and others were in --help but nowhere in
    README: every option of every command is named there (in its section or a synopsis)."""
    readme = README.read_text()
    missing = [f"policy-service {' '.join(path)} {name}".replace("  ", " ")
               for path, command in commands().items() for name in sorted(options(command) - {"--help"})
               if name.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", readme)]
    assert missing == []


def _spans(text: str) -> list[str]:
    """The code of README: each line of a fenced block, and each inline code span (which may wrap a line)."""
    fence = r"^ *```[^\n]*\n(.*?)^ *```"  # a fence may be indented (in a list item)
    fenced = re.findall(fence, text, flags=re.M | re.S)
    rest = re.sub(fence, "", text, flags=re.M | re.S)
    return [line for block in fenced for line in block.splitlines()] + re.findall(r"`([^`]+)`", rest)


def test_every_option_the_readme_gives_a_command_exists():
    """Each `policy-service COMMAND ... --option` README writes (a synopsis, an example) names an option that the
    command (or a group it is in) takes."""
    known = commands()
    wrong = []
    for span in _spans(README.read_text()):
        starts = [match.end() for match in re.finditer(r"(?<![\w.-])policy-service(?![\w-])", span)]
        if not starts:
            continue
        words, path = span[starts[-1]:].split(), ()
        while words and (*path, words[0]) in known:
            path, words = (*path, words[0]), words[1:]
        takes = set().union(*(options(known[path[:depth]]) for depth in range(len(path) + 1)))
        wrong += [f"{span!r}: {word}" for word in re.findall(r"(?<![\w-])--?[a-z][\w-]*", " ".join(words))
                  if word.split("=")[0] not in takes]
    assert wrong == []


def test_every_confidence_the_readme_gives_a_rule_is_the_rule_files(rulebook):
    """README's `RULE-ID [C|S|R]` (BSUID-1.template [S], PMP-8.marketing-lite [S] and MM-2.sunset [S] disagreed with
    their rule files' C, C and R): each names a rule, or a family of rules (DS-2: DS-2.*), of that confidence."""
    confidence = {rule.id: rule.confidence for rule in rulebook.rules}
    wrong = []
    for rule_id, said in re.findall(r"(?<![\w.-])([A-Z][A-Z0-9]*(?:-[0-9A-Za-z]+)+(?:\.[a-z0-9-]+)?) \[([CSR])\]",
                                    README.read_text()):
        family = {confidence[rule_id]} if rule_id in confidence else {
            value for other, value in confidence.items() if other.startswith(rule_id + ".")}
        if family != {said}:
            wrong.append(f"{rule_id} [{said}]: the rules say {sorted(family) or 'no such rule'}")
    assert wrong == []


def test_the_readme_names_settings_by_their_variables():
    """A setting is named as the variable that sets it (`POLICY_WEBHOOK_PROCESSING`), never by the bare key the
    README's Python API paragraph once used (WEBHOOK_PROCESSING), which sets nothing."""
    from policy_service.config import Settings

    text = README.read_text()
    bare = [f"line {text.count(chr(10), 0, match.start()) + 1}: {match.group()}" for name in Settings.model_fields
            for match in re.finditer(rf"(?<![A-Z_]){name.upper()}(?![A-Z_])", text)]
    assert bare == []
