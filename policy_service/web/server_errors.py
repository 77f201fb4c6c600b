"""The one JSON error shape for the errors the HTTP server answers itself, before the app sees a request.

gunicorn (production) refuses a request it cannot parse (a request line over `limit_request_line`: 414; headers over
its limits: 431; a malformed request line or header: 400) with an HTML page of its own (gunicorn.util.write_error).
Every other error of this service is `{code, status, message, errors}` JSON (web.api.PolicyApi), so a client's error
handling would meet a second shape only here. `install()` (called by gunicorn.conf.py, in the master, before workers
fork) replaces gunicorn's writer with `write_error`; gunicorn still decides the status and logs the request. The
local server (`policy-service serve`, Werkzeug's) refuses the same kinds of request (a line over 64 KiB: 414, over
100 headers: 431, a malformed request line: 400) through http.server's send_error, whose HTML page `RequestHandler`
replaces with the same JSON.

Two faults of a body reach the app while it reads one: a malformed chunked body (gunicorn raises its parse error
from the read: a 500 without `init_app`'s handler, now the one 400), and a chunked body longer than
MAX_CONTENT_LENGTH, which Werkzeug's stream cuts at the limit without a word (the cut JSON then read as "not valid
JSON"): `Request` reads it through a bound of its own (BoundedBody), which answers the 413 a body with
Content-Length gets.

A request whose body's framing cannot be trusted is refused before anything else of it is read (`refuse_bad_framing`,
before every request, `framing_fault`), whether its route reads a body or not (a GET's `Content-Length: -1` too): a
Content-Length that is not one number of bytes (`-1`, `abc`, or two different values, which the local server hands
over joined: `5, 9`) is a 400 naming headers.Content-Length, and Content-Length together with Transfer-Encoding
(which of them ends the body cannot be known, RFC 9112 6.1) or a Transfer-Encoding other than chunked a 400 naming
headers.Transfer-Encoding — instead of the body being read by one of them and decided, or ignored. A malformed
chunk on the local server (Werkzeug's DechunkedInput) is the 400 naming headers.Transfer-Encoding, as gunicorn's
(`body_fault`). gunicorn refuses most of these itself.

A body that stops arriving: gunicorn's worker (web/worker.py) times the socket out after POLICY_BODY_TIMEOUT seconds
without progress, and the read raises in the app. Werkzeug's stream (and BoundedBody alike) turns a failed read
into ClientDisconnected, a 400 saying nothing; `body_cut_short` answers a read that timed out with the 408 naming
the setting, and any other cut body with the 400 as before.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from http import HTTPStatus
from typing import IO, Any, cast
from urllib.parse import unquote

import flask
import orjson
from gunicorn import util
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, ClientDisconnected, RequestEntityTooLarge, RequestTimeout
from werkzeug.serving import DechunkedInput, WSGIRequestHandler
from werkzeug.utils import cached_property

from .logs import REQUEST_ID_HEADER, access_fields


def error_body(status: int, reason: str, message: str) -> bytes:
    """`{"code": status, "status": reason, "message": message or reason, "errors": {"_request": [message]}}` as
    JSON bytes (`errors` empty when the server gives no message, as on gunicorn's 500)."""
    return orjson.dumps({"code": status, "status": reason, "message": message or reason,
                         "errors": {"_request": [message]} if message else {}})


def error_response(status: int, reason: str, message: str) -> bytes:
    """The whole HTTP/1.1 response (status line, headers, JSON body; the connection closed after it) for an error
    gunicorn answers, with error_body."""
    body = error_body(status, reason, message)
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


class RequestHandler(WSGIRequestHandler):
    """Werkzeug's request handler for `policy-service serve`, answering the requests it refuses itself in the
    JSON error shape (error_body) instead of http.server's HTML page, and logging each request once answered as a
    record whose fields are gunicorn's access line's (web.logs.access_fields: remote, method, path, query, status,
    bytes, duration_ms, user_agent, referer, request_id) on Werkzeug's logger (JSON: logs.install_server_logging),
    instead of Werkzeug's Apache-style text line."""

    _started = 0.0
    _status: int | str | None = None
    _sent: dict[str, str]

    def handle_one_request(self) -> None:
        """http.server's handling of one request, then its access line (none when no request came: keep-alive's
        end)."""
        self._started, self._status, self._sent = time.perf_counter(), None, {}
        try:
            super().handle_one_request()
        finally:
            if self._status is not None:
                self._log_access(time.perf_counter() - self._started)

    def send_header(self, keyword: str, value: str) -> None:
        """http.server's send_header, keeping the response's Content-Length and X-Request-ID for the access line."""
        if keyword.lower() in ("content-length", REQUEST_ID_HEADER.lower()):
            self._sent[keyword.lower()] = value
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Called as the status line is sent: the status is kept, and logged with the rest once the answer is
        written (handle_one_request)."""
        self._status = int(code) if str(code).isdigit() else code

    def log(self, type: str, message: str, *args: Any) -> None:
        """Werkzeug's and http.server's other lines (errors) on Werkzeug's logger, the client's address as a field
        rather than Werkzeug's Apache-style prefix."""
        getattr(logging.getLogger("werkzeug"), type)(message, *args, extra={"remote": self.address_string()})

    def _log_access(self, seconds: float) -> None:
        headers = getattr(self, "headers", None)
        path, _, query = (getattr(self, "path", "") or "").partition("?")
        length = self._sent.get("content-length", "")
        # gunicorn's atoms (glogging.Logger.atoms), so the line has the same fields, filled the same way.
        fields = access_fields({
            "h": self.address_string(), "m": self.command, "U": unquote(path), "q": query,
            "s": self._status, "B": int(length) if length.isdigit() else None, "D": int(seconds * 1_000_000),
            "a": headers.get("User-Agent", "-") if headers else "-",
            "f": headers.get("Referer", "-") if headers else "-",
            "{x-request-id}o": self._sent.get(REQUEST_ID_HEADER.lower()),
            "{x-request-id}i": headers.get(REQUEST_ID_HEADER) if headers else None,
        })
        logging.getLogger("werkzeug").info("%s %s %s", fields["method"], fields["path"], fields["status"],
                                           extra=fields)

    def make_environ(self) -> Any:
        """Werkzeug's environ, with Content-Length given several times with different values handed over as they
        came, joined (`5, 9`): Werkzeug keeps the last silently, and `framing_fault` refuses the joined value."""
        environ = super().make_environ()
        lengths = self.headers.get_all("Content-Length") or []
        if len({length.strip() for length in lengths}) > 1:
            environ["CONTENT_LENGTH"] = ", ".join(length.strip() for length in lengths)
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's send_error (same status line, log line, Connection: close and body rules) with a JSON
        body: its `message` is the server's message and explanation (`message; explain`), else the status's
        standard explanation."""
        short, long = self.responses.get(code, ("???", "???"))
        reason = message or short
        if self.request_version == "HTTP/0.9":
            # A request line http.server could not read leaves the version at its HTTP/0.9 default, and an HTTP/0.9
            # answer has no status line and no headers: the client would get a bare body and no status. gunicorn
            # answers such a line with a whole HTTP/1.1 response; so does this (a real HTTP/0.9 GET never gets here).
            self.request_version = self.protocol_version
        self.log_error("code %d, message %s", code, reason)
        self.send_response(code, reason)
        self.send_header("Connection", "close")
        body = None
        # No body on 1xx, 204, 205 or 304 (RFC 7230 3.3, RFC 7231 6.3.6), as http.server does.
        if code >= 200 and code not in (HTTPStatus.NO_CONTENT, HTTPStatus.RESET_CONTENT, HTTPStatus.NOT_MODIFIED):
            body = error_body(code, short, "; ".join(text for text in (message, explain) if text) or long)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)


class BoundedBody(io.RawIOBase):
    """A body the server ends itself (chunked: no Content-Length) read up to `limit` bytes: reading on after them
    raises RequestEntityTooLarge only when the client sent more, so a body of exactly `limit` bytes is read whole.
    (Werkzeug's own bound, LimitedStream(is_max=True), cannot tell the two apart: it stops at the limit in silence,
    and refuses any read after it.) A read that fails (the socket timed out, the connection broke) raises
    ClientDisconnected from it, as Werkzeug's stream does."""

    def __init__(self, raw: Any, limit: int) -> None:
        super().__init__()
        self._raw, self._limit, self._read = raw, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        room = self._limit - self._read
        if room <= 0:
            # At the limit: one more byte from the client is a body past it (gunicorn's ParseException for a
            # malformed rest is left to body_fault: the 400).
            if self._read_raw(1):
                raise RequestEntityTooLarge()
            return 0
        data = self._read_raw(min(len(buffer), room))
        buffer[:len(data)] = data
        self._read += len(data)
        return len(data)

    def _read_raw(self, size: int) -> bytes:
        try:
            return self._raw.read(size)
        except OSError as error:
            raise ClientDisconnected() from error

    def readall(self) -> bytes:
        # RawIOBase's reads 8 KiB at a time; a body near the limit (4 MiB) is read in 64 KiB pieces.
        pieces = []
        while piece := self.read(65536):
            pieces.append(piece)
        return b"".join(pieces)


_DIGITS = frozenset("0123456789")
CONTENT_LENGTH, TRANSFER_ENCODING = "headers.Content-Length", "headers.Transfer-Encoding"


def framing_fault(environ: Any) -> dict[str, list[str]] | None:
    """Why a request's body cannot be framed safely, by header (the one error shape's `errors`), or None: a
    Transfer-Encoding other than chunked, a Content-Length that is not one number of bytes, or one sent with
    Transfer-Encoding."""
    length, coding = environ.get("CONTENT_LENGTH"), environ.get("HTTP_TRANSFER_ENCODING")
    if coding and coding.strip().lower() != "chunked":
        # gunicorn refuses any other coding itself; the local server read a gzip-coded body as no body at all.
        shown = coding if len(coding) <= 40 else coding[:40] + "…"
        return {TRANSFER_ENCODING: [f"must be chunked (the only transfer coding read here), got {shown!r}"]}
    if length is None or length == "":
        return None
    if coding:
        return {TRANSFER_ENCODING: ["must not be sent with Content-Length: which of them ends the body cannot be "
                                    "known (RFC 9112 6.1); send one"]}
    if not _DIGITS.issuperset(length):
        shown = length if len(length) <= 40 else length[:40] + "…"
        why = "given more than once with different values" if "," in length else "not a number of bytes"
        return {CONTENT_LENGTH: [f"must be one number of bytes (digits only): {why}, got {shown!r}"]}
    return None


def bad_framing(errors: dict[str, list[str]]) -> BadRequest:
    """The 400 for framing_fault's errors."""
    (field, (reason,)), = errors.items()
    bad = BadRequest(f"the body cannot be read: {field}: {reason}")
    bad.data = {"message": bad.description, "errors": errors}
    return bad


def refuse_bad_framing() -> None:
    """Before every request (check_framing): raise bad_framing's 400 for a request framing_fault finds fault with,
    so a request is refused alike whether its route reads a body or not."""
    if (fault := framing_fault(flask.request.environ)) is not None:  # two dict reads for a sound request
        raise bad_framing(fault)


def check_framing(app: flask.Flask) -> None:
    """Refuse every request whose body's framing cannot be trusted (refuse_bad_framing), before any other check of
    the app: create_app calls it once metrics' timer is started, so the 400 is timed as every answer."""
    app.before_request(refuse_bad_framing)


class Request(flask.Request):
    """The app's request (Flask's request_class): a chunked body (no Content-Length, the server ending the body:
    wsgi.input_terminated) past MAX_CONTENT_LENGTH is a 413 (as one that declares its length is) wherever it is
    read — get_data, a page's form — since `stream` reads it through BoundedBody; Werkzeug's stream would stop at
    the limit and hand over the cut body. Every other body is Werkzeug's `stream`. (A body whose framing cannot be
    trusted never gets here: refuse_bad_framing refused its request.)"""

    @cached_property
    def stream(self) -> IO[bytes]:  # type: ignore[override]
        limit = self.max_content_length
        if limit is None or self.content_length is not None or not self.environ.get("wsgi.input_terminated") \
                or self.shallow:
            return super().stream
        return cast(IO[bytes], BoundedBody(self.input_stream, limit))


def body_fault(error: ParseException | OSError):
    """A body the server could not read (a malformed chunk size, a chunk without its terminator): the one 400
    naming headers.Transfer-Encoding, as the app answers every bad request (pages answer it in HTML to a browser)."""
    bad = BadRequest(f"the body is not valid chunked transfer encoding: {error}")
    bad.data = {"message": bad.description, "errors": {TRANSFER_ENCODING: [f"not valid chunked encoding: {error}"]}}
    return flask.current_app.handle_http_exception(bad)


def body_cut_short(error: ClientDisconnected):
    """A body whose read failed (Werkzeug's ClientDisconnected, raised from the read's OSError): the 408 naming
    POLICY_BODY_TIMEOUT when the socket timed out (the client stopped sending for that long, web/worker.py), else
    the 400 Werkzeug gives (the client went away). Either way the connection is closed after the answer: gunicorn
    does not reuse one whose body read failed."""
    if type(error.__context__) is OSError and isinstance(flask.request.environ.get("wsgi.input"), DechunkedInput):
        # The local server's chunk reader raises a bare OSError ("Invalid chunk header"): the body is malformed,
        # not cut short, and is named as gunicorn's malformed chunk is.
        return body_fault(error.__context__)
    if not isinstance(error.__context__, TimeoutError):
        return flask.current_app.handle_http_exception(BadRequest(error.description))
    seconds = flask.current_app.config.get("BODY_TIMEOUT")
    within = f"POLICY_BODY_TIMEOUT ({seconds:g} s)" if isinstance(seconds, int | float) else "POLICY_BODY_TIMEOUT"
    late = RequestTimeout(f"the body stopped arriving: nothing came for {within} before its end")
    late.data = {"message": late.description,
                 "errors": {"_request": [f"the body must keep arriving: at most {within} without a byte"]}}
    return flask.current_app.handle_http_exception(late)


def init_app(app: flask.Flask) -> None:
    """Read bodies with `Request`, and answer gunicorn's body faults with `body_fault`, a body that stopped
    arriving with `body_cut_short`."""
    app.request_class = Request
    app.register_error_handler(ParseException, body_fault)
    app.register_error_handler(ClientDisconnected, body_cut_short)
