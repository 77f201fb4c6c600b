"""The service as gunicorn serves it, plus two bench-only routes (never in the product app).

/bench/trivial answers a fixed JSON body: the ceiling for this app, server and configuration.
/bench/decisions-unlogged is POST /v1/decisions with the decision log write skipped, to measure
the log's share. gunicorn's sync workers serve one request at a time, so the swap is safe there.
"""

from __future__ import annotations

from typing import Any

from policy_service import create_app
from policy_service.store import decision_log
from policy_service.web import api

app = create_app()


@app.post("/bench/trivial")
def trivial() -> dict[str, Any]:
    """A fixed JSON answer, through the same app and server."""
    return {"decision": "allow", "status": "decided"}


@app.post("/bench/decisions-unlogged")
def decisions_unlogged() -> Any:
    """The decisions endpoint with the decision log write replaced by nothing."""
    record = decision_log.record
    decision_log.record = _skip
    try:
        return api.create_decision()
    finally:
        decision_log.record = record


def _skip(*_args: Any, **_kwargs: Any) -> None:
    """Log nothing."""
