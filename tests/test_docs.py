"""Generated documentation stays true: docs/example-response.json is the service's answer to README's example.

When the answer changes (a rule, the response shape, the rulebook's hash), this test rewrites the file and
fails once, so the change is reviewed and committed; under CI (CI=true) it only fails.
"""

import json
import os

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
