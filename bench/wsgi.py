"""The service as gunicorn serves it, plus two bench-only routes (never in the product app).

/bench/trivial answers a fixed JSON body: the ceiling for this app, server and configuration.
/bench/decisions-unlogged is POST /v1/decisions (the same view) with the decision log write skipped for that
request only: the skip is a flag on the request's `flask.g`, read by the log function this module installs
once at import, so concurrent requests on other threads (gthread workers) are logged as usual.
"""

from __future__ import annotations

from typing import Any

import flask

from policy_service import create_app
from policy_service.store import decision_log
from policy_service.web import api

app = create_app()
_record = decision_log.record


def _record_unless_skipped(*args: Any, **kwargs: Any) -> None:
    """decision_log.record, except in a request of /bench/decisions-unlogged."""
    if not flask.g.get("bench_unlogged"):
        _record(*args, **kwargs)


decision_log.record = _record_unless_skipped


@app.post("/bench/trivial")
def trivial() -> dict[str, Any]:
    """A fixed JSON answer, through the same app and server."""
    return {"decision": "allow", "status": "decided"}


@app.post("/bench/decisions-unlogged")
def decisions_unlogged() -> Any:
    """The decisions endpoint, this request's decision log write replaced by nothing."""
    flask.g.bench_unlogged = True
    return api.create_decision()
