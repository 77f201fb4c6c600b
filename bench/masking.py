"""The decision log's masking per row, three ways that give the same text: the regex over the serialized JSON the
log ran before issue 25, the walk of the values (core.masking.masked and masked_request), and what the log runs
now (store.decision_log.record: the walk for the request, its long history only in chunks that may hold something
to mask, and the response masked as the JSON text it was sent as, masking.masked_json). On the fixture rows
(request and response) and on one row with a 10,000-event history.

All three produce the same text (asserted before timing; tests/core/test_masking.py and tests/store/
test_decision_log.py prove it on random values). Each includes serializing the texts. Process CPU time, median
of interleaved rounds.
Usage: python bench/masking.py [--quick]
"""

from __future__ import annotations

import argparse
import re
import time

from common import banner, fixture_requests, median, policy, table

from policy_service.contract.schemas import RESPONSE
from policy_service.core import masking
from policy_service.core.evaluate import evaluate
from policy_service.store.decision_log import _masked_request_text, dumps

# The log's masking before issue 25: one regex over the compact JSON text; its BSUID alternative starts with
# look-behinds, so it is tried at every character.
_BEFORE = re.compile(r'(?<=[{,])"(contact|wa_id)":"(\d+)"|\+\d{7,15}'
                     r'|(?:(?<=\A")|(?<=[:,\[{]")|(?<= ))([A-Z]{2}\.(?:ENT\.)?)([A-Za-z0-9]{8,128})(?![\w.])')


def _before_match(match: re.Match[str]) -> str:
    if match.group(3) is not None:
        return match.group(3) + "*" * len(match.group(4))
    if match.group(1) is None:
        return masking.mask_number(match.group())
    return f'"{match.group(1)}":"{masking.mask_number(match.group(2))}"'


def before(request: dict, response: dict, response_json: bytes) -> list[str]:
    """The row's two texts masked as before."""
    return [_BEFORE.sub(_before_match, text.decode()) for text in (dumps(request), response_json)]


def walk(request: dict, response: dict, response_json: bytes) -> list[str]:
    """The same texts masked by walking the values (core.masking)."""
    return [text.decode() for text in (dumps(masking.masked_request(request)), dumps(masking.masked(response)))]


def now(request: dict, response: dict, response_json: bytes) -> list[str]:
    """The same texts as the decision log masks them now (store.decision_log.record)."""
    return [_masked_request_text(request).decode(), masking.masked_json(response_json.decode())]


def rows() -> list[tuple[str, list[tuple[dict, dict, bytes]]]]:
    """(label, rows): the fixture rows, and one row with a 10,000-event inline history."""
    rulebook, engine = policy()
    fixtures = []
    for _, raw, request in fixture_requests():
        body = RESPONSE.dump(evaluate(request, rulebook=rulebook, engine=engine))
        fixtures.append((raw, body, dumps(body)))
    raw, body, text = fixtures[0]
    history = [{"direction": "inbound" if i % 3 == 0 else "outbound", "at": f"2025-0{1 + i // 2000}-01T00:00:00+00:00",
                "type": "text", "id": f"wamid.HBgL{i:012d}"} for i in range(10_000)]
    return [(f"fixture rows ({len(fixtures)})", fixtures),
            ("one row, 10,000-event history", [({**raw, "history": history}, body, text)])]


def measure(quick: bool = False) -> list[tuple[str, float, float, float]]:
    """(label, µs per row before, walking, now), medians of interleaved rounds."""
    results = []
    for label, items in rows():
        assert all(before(*row) == walk(*row) == now(*row) for row in items), "masking differs"
        times: dict[str, list[float]] = {"before": [], "walk": [], "now": []}
        for _ in range(3 if quick else 9):
            for name, run in (("before", before), ("walk", walk), ("now", now)):
                started = time.process_time()
                for row in items:
                    run(*row)
                times[name].append((time.process_time() - started) / len(items) * 1e6)
        results.append((label, median(times["before"]), median(times["walk"]), median(times["now"])))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    results = measure(args.quick)
    print(banner() + "; process CPU time, median of interleaved rounds\n")
    print(table(["rows", "regex over JSON µs/row", "walk µs/row", "the log now µs/row", "now ÷ regex"],
                [(label, old, walked, new, f"{new / old:.2f}") for label, old, walked, new in results]))


if __name__ == "__main__":
    main()
