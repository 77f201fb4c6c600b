"""Every fixture's whole response stays the same, byte for byte, unless its change is meant.

A speed-up of evaluate() must not change a single byte of any decision: the response JSON (decision, charge,
price, trace sentences, facts and their texts, why-not) of each fixture, with and without why-not, and moved in
time by a few seconds (a distinct request: nothing remembered from the unmoved one may leak into it), is compared
by digest with tests/data/responses/fixture-responses.json.

When a rule, a fixture or the response shape changes on purpose, write the responses out before and after the
change and read the difference, then record the new digests:
    python -m tests.core.test_fixture_responses --dump DIR     # one JSON file per response, to diff
    python -m tests.core.test_fixture_responses --update       # rewrite the digests
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import orjson

from policy_service.contract.fastdump import dump_response
from policy_service.contract.schemas import REQUEST
from policy_service.core.engine import RulesEngine
from policy_service.core.evaluate import evaluate
from policy_service.core.rulebook import Rulebook, load_rulebook
from policy_service.review.fixtures import discover

from ..conftest import FIXTURES_DIR, RULES_DIR

DIGESTS = Path(__file__).resolve().parent.parent / "data" / "responses" / "fixture-responses.json"
MOVES = {"": timedelta(0), "+7s": timedelta(seconds=7)}


def responses(rulebook: Rulebook, engine: RulesEngine) -> Iterator[tuple[str, bytes]]:
    """(fixture name, why-not flag and move, response JSON) for every fixture, in a fixed order."""
    for fixture in discover([FIXTURES_DIR]):
        request = REQUEST.load(fixture.request)
        for move, by in MOVES.items():
            moved = request.moved(by) if by else request
            for why_not in (False, True):
                decision = evaluate(moved, rulebook=rulebook, engine=engine, decision_id="fixed",
                                    explain_why_not=why_not)
                yield f"{fixture.name}{move}{' why-not' if why_not else ''}", orjson.dumps(dump_response(decision))


def digests(rulebook: Rulebook, engine: RulesEngine) -> dict[str, str]:
    """Response name -> the SHA-256 of its JSON (hex, first 24 digits)."""
    return {name: hashlib.sha256(text).hexdigest()[:24] for name, text in responses(rulebook, engine)}


def test_every_fixture_response_is_unchanged(rulebook, engine):
    """All 170 fixtures × (as given, moved 7 s) × (without, with why-not): the recorded bytes."""
    recorded = json.loads(DIGESTS.read_text())
    found = digests(rulebook, engine)
    assert len(found) == 4 * len(discover([FIXTURES_DIR])) >= 4 * 15
    changed = sorted(name for name in found.keys() | recorded.keys() if found.get(name) != recorded.get(name))
    assert not changed, (f"{len(changed)} responses changed, e.g. {changed[:5]}; if meant, see this module's "
                         "docstring to compare them and record the new digests")


def test_the_comparison_sees_a_changed_byte(rulebook, engine):
    """A digest is of the whole response: one changed byte in it (here the decision id) changes the digest."""
    name, text = next(responses(rulebook, engine))
    assert hashlib.sha256(text).hexdigest()[:24] == json.loads(DIGESTS.read_text())[name]
    assert hashlib.sha256(text.replace(b'"fixed"', b'"fixee"')).hexdigest()[:24] != json.loads(
        DIGESTS.read_text())[name]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--update", action="store_true", help="rewrite the recorded digests")
    parser.add_argument("--dump", metavar="DIR", help="write each response as DIR/<name>.json")
    args = parser.parse_args()
    rulebook = load_rulebook(RULES_DIR)
    engine = RulesEngine(rulebook)
    if args.dump:
        folder = Path(args.dump)
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in responses(rulebook, engine):
            (folder / f"{name.replace('/', '__')}.json").write_bytes(orjson.dumps(orjson.loads(text),
                                                                               option=orjson.OPT_INDENT_2))
    if args.update:
        DIGESTS.write_text(json.dumps(digests(rulebook, engine), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
