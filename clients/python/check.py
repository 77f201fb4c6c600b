"""Decide one send with a client generated from the running service's /openapi.json (openapi-python-client),
read it back from the decision log, and print what it got as JSON.

Usage: PYTHONPATH=<folder holding policy_service_client> python clients/python/check.py http://127.0.0.1:8000
(tests/web/test_typed_clients.py generates the client and runs this.)
"""

import json
import sys

from policy_service_client import Client
from policy_service_client.api.decisions import create_decision, get_decision
from policy_service_client.models import Charge, DecisionRequest, DecisionResponse, Error

REQUEST = {
    "send": {"at": "2025-08-12T12:00:00+00:00", "to": "+5511987654321", "type": "template",
             "template": {"name": "order_update", "language": "en", "category": "utility", "status": "APPROVED"}},
    "history": [{"direction": "inbound", "at": "2025-08-12T09:00:00+00:00", "type": "text"}],
}


def main(base_url: str) -> None:
    client = Client(base_url=base_url, raise_on_unexpected_status=True)
    decided = create_decision.sync(client=client, body=DecisionRequest.from_dict(REQUEST))
    if not isinstance(decided, DecisionResponse):
        raise SystemExit(f"decision refused: {decided}")
    # Enums arrive as enum members and the nullable charge as Charge or None, as the contract says.
    charge = decided.charge if isinstance(decided.charge, Charge) else None
    logged = get_decision.sync(client=client, decision_id=decided.decision_id)
    if isinstance(logged, Error) or logged is None:
        raise SystemExit(f"decision {decided.decision_id} not found in the log: {logged}")
    refused = create_decision.sync(client=client, body=DecisionRequest.from_dict(
        {**REQUEST, "send": {**REQUEST["send"], "to": "0"}}))
    print(json.dumps({
        "decision": decided.decision.value,
        "status": decided.status.value,
        "required_message_type": decided.required_message_type.value,
        "billable": None if charge is None else charge.billable,
        "charge_type": None if charge is None or charge.type_ is None else charge.type_.value,
        "determining_rules": decided.determining_rules,
        "first_reason_confidence": decided.trace[0].confidence.value,
        "logged_decision": logged.decision.value,
        "refused_code": refused.code if isinstance(refused, Error) else None,
    }))


if __name__ == "__main__":
    main(sys.argv[1])
