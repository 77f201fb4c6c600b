"""The one JSON error shape for the errors gunicorn answers itself, before the app sees a request.

gunicorn refuses a request it cannot parse (a request line over `limit_request_line`: 414; headers over its limits:
431; a malformed request line or header: 400) with an HTML page of its own (gunicorn.util.write_error). Every other
error of this service is `{code, status, message, errors}` JSON (web.api.PolicyApi), so a client's error handling
would meet a second shape only here. `install()` (called by gunicorn.conf.py, in the master, before workers fork)
replaces gunicorn's writer with `write_error`; gunicorn still decides the status and logs the request.
"""

from __future__ import annotations

import socket

import orjson
from gunicorn import util


def error_response(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 response (status line, headers, JSON body; the connection closed after it) for an error
    gunicorn answers: `{"code": status, "status": reason, "message": message or reason, "errors": {"_request":
    [message]}}` (`errors` empty when gunicorn gives no message, as on its 500)."""
    body = orjson.dumps({"code": status, "status": reason, "message": message or reason,
                         "errors": {"_request": [message]} if message else {}})
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn.util.write_error's signature, writing error_response instead of an HTML page."""
    util.write_nonblock(sock, error_response(status_int, reason, mesg))


def install() -> None:
    """Make gunicorn answer its own errors in the service's JSON error shape (gunicorn's workers call
    gunicorn.util.write_error through the module, so replacing it there reaches every worker forked after)."""
    util.write_error = write_error
