"""Structured logs and request ids: one JSON object per line, written by python-json-logger.

- A decision's fields (decision_id, decision, decision_status, determining_rules, rulebook_version, latency_ms,
  error when there is one) are logged at INFO: under gunicorn with its access log on, a request that decides one
  send (POST /v1/decisions) writes them on its access line — one line, not two (a second line cost a decision
  0.3–0.5 ms of CPU under gunicorn: interleaved A/B at wrk -c4, 2026-12-08); otherwise — each decision of a
  batch, the Flask server, the Python API — each decision has a line of its own on the app's log (logger
  `policy_service.decisions`, stderr). gunicorn writes the access line once the answer is sent, so a worker
  killed (kill -9) in between loses that line, never the decision: the decision log, committed before the
  answer, is the record. Every line of a request carries that request's `request_id`.
- gunicorn's access log (`gunicorn.access`, stdout) and error log: the same formatter, configured by
  gunicorn.conf.py's `logconfig_dict` (`LOGCONFIG`); `AccessLogger` hands the access line its fields
  as values (remote, method, path, query, status, bytes, duration_ms, user_agent, referer, request_id,
  and a decision's fields), so any user agent — quotes, backslashes, control characters — stays one
  parseable JSON line.
- `policy-service serve` (Werkzeug's server): its access lines carry the same fields (install_server_logging,
  web.server_errors.RequestHandler), on stderr with Werkzeug's banner and errors, each one JSON line too.
- `X-Request-ID`: taken from the request when it is a usable id (1–128 characters of letters, digits and
  `-_.:@/+=`), else generated (32 hex digits); echoed on every response, so the access log, the app's
  lines and the client all name the same id.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler
from gunicorn.glogging import Logger as GunicornBaseLogger
from pythonjsonlogger.core import BaseJsonFormatter
from pythonjsonlogger.json import JsonFormatter
from pythonjsonlogger.orjson import OrjsonFormatter

from ..core.decision import Decision

decisions = logging.getLogger("policy_service.decisions")
# The WSGI environ key under which a request's one decision waits for its access line (AccessLogger.access).
DECISION_ENVIRON_KEY = "policy_service.decision"
# Whether this process's access lines carry decisions: set by AccessLogger.setup, which gunicorn runs in its
# master before forking the workers (and again on a reload); never set outside gunicorn.
_access_lines_carry_decisions = False
FORMAT = "{levelname}{name}{message}"
REQUEST_ID_HEADER = "X-Request-ID"
USABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9\-_.:@/+=]{1,128}")


class Formatter(OrjsonFormatter):
    """python-json-logger's orjson formatter (about half the CPU of its json one, same fields and order), falling
    back to the json one for what orjson refuses (an integer beyond 64 bits), so no line is ever lost."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fallback = JsonFormatter(*args, **kwargs)

    def jsonify_log_record(self, log_data: Any) -> str:
        try:
            return super().jsonify_log_record(log_data)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return self._fallback.jsonify_log_record(log_data)


def formatter() -> Formatter:
    """The one JSON formatter: `timestamp` (ISO 8601, UTC), `level`, `name`, `message`, then the line's fields."""
    return Formatter(FORMAT, style="{", rename_fields={"levelname": "level"}, timestamp=True)


class RequestIdFilter(logging.Filter):
    """Adds the current request's id to a line written while a request is served."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context() and not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


class _JsonHandler(logging.StreamHandler):
    """The stderr handler this module installs (a class of its own, so it is installed once)."""


def init_app(app: Flask) -> None:
    """Log the package (which is also the app's logger) in JSON at LOG_LEVEL, installed once per process;
    give every request an id (X-Request-ID) and echo it on the response."""
    logger = logging.getLogger("policy_service")
    logger.setLevel(app.config["LOG_LEVEL"])
    # Flask's plain-text handler would print every record a second time.
    logger.removeHandler(default_handler)
    # Under gunicorn (LOGCONFIG) the root logger writes JSON with request ids already: no second line.
    if not any(isinstance(handler, _JsonHandler) for handler in logger.handlers) and not _json_root():
        handler = _JsonHandler()
        handler.setFormatter(formatter())
        # On the handler, not the logger: a logger's filters do not see its children's records.
        handler.addFilter(RequestIdFilter())
        logger.addHandler(handler)
    app.after_request(echo_request_id)


# The colours Werkzeug puts around its lines for a terminal ("Press CTRL+C to quit", a 404's request line).
_ANSI_STYLE = re.compile(r"\x1b\[[0-9;]*m")


def _plain_text(record: logging.LogRecord) -> bool:
    """A handler filter: the record's message formatted and without terminal colours (a JSON line is no terminal)."""
    record.msg, record.args = _ANSI_STYLE.sub("", record.getMessage()), None
    return True


def install_server_logging() -> None:
    """`policy-service serve`: Werkzeug's logger (its banner and errors, and web.server_errors.RequestHandler's access
    lines, which carry access_fields as gunicorn's do) writes one JSON object per line on stderr through formatter(),
    at INFO, instead of Werkzeug's plain-text lines. Installed once per process."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(handler, _JsonHandler) for handler in logger.handlers):
        handler = _JsonHandler()
        handler.setFormatter(formatter())
        handler.addFilter(_plain_text)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _json_root() -> bool:
    return any(isinstance(handler.formatter, BaseJsonFormatter) for handler in logging.getLogger().handlers)


def request_id() -> str:
    """This request's id: the client's X-Request-ID when usable, else one generated (once per request)."""
    if "request_id" not in g:
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if USABLE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    return g.request_id


def echo_request_id(response: Response) -> Response:
    """Send the request's id back (also on errors), for the client and for gunicorn's access log."""
    response.headers[REQUEST_ID_HEADER] = request_id()
    return response


def log_decision(decision: Decision, seconds: float, *, alone: bool = True) -> None:
    """Log a decision's fields (id, outcome, decision_status, determining rules, rulebook version, latency in ms,
    error) with the request's id. `alone`: the request decides this one send, so under gunicorn with its access
    log on the fields go on the request's access line (AccessLogger.access); else, and for each decision of a
    batch (alone=False), a line of its own on `policy_service.decisions`."""
    fields: dict[str, Any] = {
        "decision_id": decision.decision_id,
        "decision": decision.decision,
        "decision_status": decision.status,
        "determining_rules": list(decision.determining_rules),
        "rulebook_version": decision.rulebook_version,
        "latency_ms": round(seconds * 1000, 3),
    }
    if decision.error:
        fields["error"] = decision.error
    if not decisions.isEnabledFor(logging.INFO):
        # LOG_LEVEL above INFO: no decision is logged, on a line of its own or on the access line.
        return
    if alone and _access_lines_carry_decisions and has_request_context():
        environ = request.environ
        if DECISION_ENVIRON_KEY not in environ:
            environ[DECISION_ENVIRON_KEY] = fields
            return
    # Given here (a decision is always logged within its request), so RequestIdFilter has nothing to look up.
    fields["request_id"] = request_id()
    decisions.info("decision", extra=fields)


class AccessLogger(GunicornBaseLogger):
    """gunicorn's logger, whose access line is a record with its fields as values (not a format string),
    for the JSON formatter to write. gunicorn.conf.py: logger_class."""

    def setup(self, cfg: Any) -> None:
        """gunicorn's setup, then whether access lines will be written (at INFO): if so, they carry decisions."""
        super().setup(cfg)
        global _access_lines_carry_decisions
        _access_lines_carry_decisions = self.access_log_enabled and self.access_log.isEnabledFor(logging.INFO)

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        fields = access_fields(atoms)
        decided = environ.get(DECISION_ENVIRON_KEY)
        if decided is not None:
            fields.update(decided)
        self.access_log.info("%s %s %s", fields["method"], fields["path"], fields["status"], extra=fields)


def access_fields(atoms: dict[str, Any]) -> dict[str, Any]:
    """The access line's fields from gunicorn's atoms (unescaped values; `-` for what is missing)."""
    status = str(atoms.get("s", "-"))
    return {
        "remote": atoms.get("h", "-"),
        "method": atoms.get("m") or "-",
        "path": atoms.get("U") or "-",
        "query": atoms.get("q") or "",
        "status": int(status) if status.isdigit() else status,
        "bytes": atoms.get("B") or 0,
        "duration_ms": round(atoms.get("D", 0) / 1000, 3),
        "user_agent": atoms.get("a", "-"),
        "referer": atoms.get("f", "-"),
        # The app echoes the id on every response; a response it did not make (gunicorn's own 400 on a
        # malformed request line) has only the client's, if any.
        "request_id": atoms.get("{x-request-id}o") or atoms.get("{x-request-id}i") or "-",
    }


# gunicorn.conf.py's logconfig_dict: gunicorn's access log on stdout, its error log and every other
# logger (the app's lines, libraries' warnings) on stderr, all through the JSON formatter. Applied again
# on SIGHUP, so it owns its handlers; the app adds none of its own under it (init_app).
LOGCONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": formatter}},
    "filters": {"request_id": {"()": RequestIdFilter}},
    "handlers": {
        "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        "error": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr",
                  "filters": ["request_id"]},
    },
    "loggers": {
        "gunicorn.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        "gunicorn.error": {"handlers": ["error"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["error"], "level": "WARNING"},
}
