"""web.server_errors: requests the HTTP server refuses itself, before the app sees them, get the one JSON error
shape. gunicorn's side is proven against a running gunicorn in tests/web/test_serving.py; here the local server's
(`policy-service serve`, Werkzeug) and the response gunicorn's writer sends, and a chunked body read up to the
limit and refused past it (web.server_errors.Request)."""

import io
import json
import socket
import threading

import pytest
from werkzeug.serving import make_server

from policy_service.web.server_errors import RequestHandler, error_response

from ..conftest import assert_error_shape, csrf_token


def test_gunicorn_errors_are_a_whole_http_response_with_the_json_shape():
    """The bytes written for gunicorn's 414: status line, JSON content type and length, the error shape."""
    response = error_response(414, "URI Too Long", "Request Line is too large (9000 > 8190)")
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 414 URI Too Long"
    assert b"Content-Type: application/json" in head and b"Content-Length: %d" % len(body) in head
    assert json.loads(body) == {"code": 414, "status": "URI Too Long", "message": "Request Line is too large "
                                "(9000 > 8190)", "errors": {"_request": ["Request Line is too large (9000 > 8190)"]}}
    # gunicorn's 500 carries no message: the reason stands in, and no field is blamed
    assert json.loads(error_response(500, "Internal Server Error", "").partition(b"\r\n\r\n")[2])["errors"] == {}


@pytest.fixture
def local_server():
    """Werkzeug's server with the service's RequestHandler (as `policy-service serve` runs it), on a free port."""
    server = make_server("127.0.0.1", 0, lambda environ, start: [], threaded=True, request_handler=RequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


@pytest.mark.parametrize(("request_head", "status"), [
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n", 431),
    # a request line without a readable HTTP version: a whole response all the same (not HTTP/0.9's bare body)
    (b"NOT A REQUEST LINE AT ALL\r\n\r\n", 400),
    (b"GET /healthz HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/9.9\r\n\r\n", 505),
])
def test_the_local_server_refuses_in_the_json_error_shape(local_server, request_head, status):
    """A request line over 64 KiB, over 100 headers, a malformed request line or version: refused by http.server
    before the app, in a whole HTTP/1.1 response (status line and headers, also for a line it could not read) with
    {code, status, message, errors} JSON and the server's own explanation, not its HTML page."""
    answer = _answer(local_server, request_head)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status) and b"Content-Type: application/json" in head, answer[:300]
    error = json.loads(body)
    assert set(error) == {"code", "status", "message", "errors"} and error["code"] == status, error
    assert error["message"] and error["errors"]["_request"] == [error["message"]], error


def _answer(port: int, raw: bytes) -> bytes:
    """The whole answer (until the server closes the connection) of a local server to the raw request."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def send_chunked(client, path: str, body: bytes, content_type: str = "application/json"):
    """POST `body` as a server hands over a chunked one: no Content-Length, the server ending the stream
    (wsgi.input_terminated, which gunicorn sets). The test client computes a CONTENT_LENGTH gunicorn never sets
    beside Transfer-Encoding (both are refused: framing_fault): it is taken out."""
    return client.post(path, input_stream=io.BytesIO(body), content_type=content_type,
                       headers={"Transfer-Encoding": "chunked"}, environ_overrides=AS_GUNICORN_CHUNKED)


AS_GUNICORN_CHUNKED = {"wsgi.input_terminated": True, "CONTENT_LENGTH": ""}


def test_a_chunked_body_is_read_whole_up_to_the_limit_and_is_the_413_one_byte_past_it(app, client, example_request):
    """With MAX_CONTENT_LENGTH 1,000: a chunked body of exactly 1,000 bytes is decided; 1,001 bytes are the 413
    naming the setting (not the first 1,000 read as a whole body)."""
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    text = json.dumps(example_request).encode()
    exact = text[:-1] + b" " * (1_000 - len(text)) + b"}"
    assert send_chunked(client, "/v1/decisions", exact).json["decision"] == "allow"
    refused = send_chunked(client, "/v1/decisions", exact + b" ")
    assert refused.status_code == 413 and "POLICY_MAX_CONTENT_LENGTH (1,000 bytes)" in refused.json["message"]


def test_a_chunked_form_past_the_limit_is_the_413_not_a_cut_form(app, client):
    """A page's form sent chunked past the limit is the 413 too: the form is read through the same bound (it was
    parsed from the first MAX_CONTENT_LENGTH bytes, the cut request then refused as not valid JSON)."""
    app.config["MAX_CONTENT_LENGTH"] = 1_000
    form = f"csrf_token={csrf_token(client)}&request=".encode() + b"x" * 2_000
    refused = send_chunked(client, "/ui/try", form, "application/x-www-form-urlencoded")
    assert refused.status_code == 413 and refused.json["code"] == 413, refused.get_data(as_text=True)[:300]


class _Stalling(io.BytesIO):
    """A 100-byte request body of which only `head` arrives: the read after it raises `fault`, as gunicorn's input
    does once the client stopped sending (TimeoutError: web.worker's body timeout) or went away
    (ConnectionResetError)."""

    def __init__(self, head: bytes, fault: OSError) -> None:
        super().__init__(head.ljust(100))
        self._arrived, self._fault = len(head), fault

    def read(self, size=-1) -> bytes:
        if self.tell() >= self._arrived:
            raise self._fault
        wanted = self._arrived - self.tell()
        return super().read(wanted if size is None or size < 0 else min(size, wanted))

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_read_that_times_out_is_the_408_naming_the_setting(app, client, example_request, chunked):
    """The read of a body (declared length, or chunked through BoundedBody) times out after 10 of its bytes: the
    408 in the error shape naming POLICY_BODY_TIMEOUT and its value, not Werkzeug's unexplained 400 nor a 500."""
    app.config["BODY_TIMEOUT"] = 1.5
    stalled = _Stalling(json.dumps(example_request).encode()[:10], TimeoutError("timed out"))
    if chunked:
        response = client.post("/v1/decisions", input_stream=stalled, content_type="application/json",
                               headers={"Transfer-Encoding": "chunked"}, environ_overrides=AS_GUNICORN_CHUNKED)
    else:
        response = client.post("/v1/decisions", input_stream=stalled, content_type="application/json")
    error = assert_error_shape(response, 408)
    assert "POLICY_BODY_TIMEOUT (1.5 s)" in error["message"] and error["errors"]["_request"], error


def test_a_body_cut_by_the_client_going_away_is_still_the_400(client):
    """A read that fails otherwise (the connection reset) stays the 400 it was."""
    stalled = _Stalling(b'{"send": ', ConnectionResetError("reset"))
    response = client.post("/v1/decisions", input_stream=stalled, content_type="application/json")
    assert assert_error_shape(response, 400)["errors"]["_request"]


@pytest.fixture
def dev_server(app):
    """The service on Werkzeug's server with its RequestHandler, as `policy-service serve` (scripts/serve) runs it."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=RequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port
    server.shutdown()


def _exchange(port: int, raw: bytes) -> tuple[int, dict]:
    """The status and JSON body a local server answers to the raw request."""
    head, _, body = _answer(port, raw).partition(b"\r\n\r\n")
    if b"Transfer-Encoding: chunked" in head:  # the dev server chunks an answer without a length
        body = b"".join(body.split(b"\r\n")[1::2])
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(("headers", "body", "named", "says"), [
    (b"Content-Length: 2\r\nContent-Length: 40\r\n", b"{}", "headers.Content-Length",
     "given more than once with different values, got '2, 40'"),
    (b"Content-Length: -1\r\n", b"{}", "headers.Content-Length", "not a number of bytes, got '-1'"),
    (b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n", b"2\r\n{}\r\n0\r\n\r\n",
     "headers.Transfer-Encoding", "must not be sent with Content-Length"),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\n{}\r\n0\r\n\r\n", "headers.Transfer-Encoding",
     "not valid chunked encoding: Invalid chunk header"),
    (b"Transfer-Encoding: gzip\r\n", b"{}", "headers.Transfer-Encoding", "must be chunked"),
])
@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/webhooks/whatsapp"])
def test_the_dev_server_refuses_a_body_it_cannot_frame_naming_the_header(dev_server, path, headers, body, named,
                                                                          says):
    """On the dev server (scripts/serve): two different Content-Lengths were read as "not valid JSON: Unterminated
    string", Content-Length -1 as "not valid JSON", a malformed chunk got Werkzeug's generic text, and Content-Length
    with Transfer-Encoding: chunked was decided (200), a gzip transfer coding read as no body. Each is a 400 in the
    one error shape naming the header."""
    status, error = _exchange(dev_server, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                              b"application/json\r\n" + headers + b"Connection: close\r\n\r\n" + body)
    assert status == 400 and set(error) == {"code", "status", "message", "errors"}, error
    assert list(error["errors"]) == [named] and says in error["errors"][named][0], error


@pytest.mark.parametrize("path", ["/healthz", "/v1/decisions", "/ui/rules", "/openapi.json", "/no/such/path"])
def test_a_request_without_a_body_read_is_refused_for_framing_it_cannot_trust(client, path):
    """A GET's bad Content-Length (-1, abc, two different values, as the local server hands them over joined) or
    transfer coding was answered 200, since only a read of the body checked it: every request is refused alike, the
    400 in the one error shape naming the header (HTML to a browser on a page), before a key is asked for or a path
    looked up. A GET with no Content-Length, or Content-Length: 0, is answered as before."""
    for environ, named in (({"CONTENT_LENGTH": "-1"}, "headers.Content-Length"),
                           ({"CONTENT_LENGTH": "abc"}, "headers.Content-Length"),
                           ({"CONTENT_LENGTH": "0, 5"}, "headers.Content-Length"),
                           ({"CONTENT_LENGTH": "0", "HTTP_TRANSFER_ENCODING": "chunked"}, "headers.Transfer-Encoding"),
                           ({"HTTP_TRANSFER_ENCODING": "gzip"}, "headers.Transfer-Encoding")):
        response = client.get(path, environ_overrides=environ)
        assert list(assert_error_shape(response, 400)["errors"]) == [named], (path, environ, response.json)
    page = client.get("/ui/rules", environ_overrides={"CONTENT_LENGTH": "-1"}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and page.mimetype == "text/html"
    expected = 404 if path == "/no/such/path" else 200
    assert client.get(path).status_code == expected
    assert client.get(path, environ_overrides={"CONTENT_LENGTH": "0"}).status_code == expected


def test_the_dev_server_refuses_a_get_with_two_content_lengths(dev_server):
    """On the dev server: a GET sending Content-Length twice with different values was answered 200 (the app never
    read a body); it is the 400 naming headers.Content-Length, as a POST's is."""
    status, error = _exchange(dev_server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                              b"Content-Length: 7\r\nConnection: close\r\n\r\n")
    assert status == 400 and list(error["errors"]) == ["headers.Content-Length"], error


def test_the_wsgi_app_refuses_content_length_it_cannot_trust(client, example_request):
    """Under any WSGI server: a Content-Length that is not digits, or one sent with Transfer-Encoding, is the 400
    naming the header (refused before anything is read); a sound request is decided as before."""
    body = json.dumps(example_request).encode()
    for environ, named in (({"CONTENT_LENGTH": "-1"}, "headers.Content-Length"),
                           ({"CONTENT_LENGTH": "+5"}, "headers.Content-Length"),
                           ({"CONTENT_LENGTH": str(len(body)), "HTTP_TRANSFER_ENCODING": "chunked"},
                            "headers.Transfer-Encoding")):
        response = client.post("/v1/decisions", input_stream=io.BytesIO(body), content_type="application/json",
                                environ_overrides=environ)
        assert list(assert_error_shape(response, 400)["errors"]) == [named], response.json
    assert client.post("/v1/decisions", data=body, content_type="application/json").status_code == 200
