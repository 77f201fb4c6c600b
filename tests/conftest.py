"""Shared fixtures: rulebook and engine, an app on SQLite (and PostgreSQL if configured), a gunicorn on loopback."""

import copy
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from playhouse.db_url import connect

from policy_service import create_app, store
from policy_service.contract.schemas import DECISION_REQUEST_EXAMPLE
from policy_service.core.engine import RulesEngine
from policy_service.core.rulebook import load_rulebook
from policy_service.store import schema

from .meta_payloads import APP_SECRET, VERIFY_TOKEN, deliver, inbound_text, pmp, status

ROOT = Path(__file__).resolve().parent.parent
RULES_DIR = ROOT / "rules"
FIXTURES_DIR = ROOT / "fixtures"
# CI (.ci/run) starts PostgreSQL and sets this; the storage tests then run on both databases.
POSTGRES_URL = os.environ.get("POLICY_TEST_DATABASE_URL")
DATABASES = ["sqlite", "postgresql"]
NO_POSTGRES = "PostgreSQL: POLICY_TEST_DATABASE_URL is not set (bash scripts/test starts a local one when installed)"


@pytest.fixture(scope="session")
def rulebook():
    return load_rulebook(RULES_DIR)


@pytest.fixture(scope="session")
def engine(rulebook):
    return RulesEngine(rulebook)


def empty_database(url: str) -> None:
    """Drop every table in a test database (SQLite file or the PostgreSQL test database)."""
    database = connect(url)
    for table in database.get_tables():
        database.execute_sql(f'DROP TABLE IF EXISTS "{table}"' + (" CASCADE" if url.startswith("postgres") else ""))
    database.close()


def upgraded(url: str) -> str:
    """The database at url with every migration applied, as `policy-service db upgrade` leaves it."""
    database = connect(url)
    schema.upgrade(database)
    database.close()
    return url


@pytest.fixture(params=DATABASES)
def empty_database_url(request, tmp_path):
    """An empty database: a new SQLite file, or the PostgreSQL test database with every table dropped."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.sqlite3'}"
    if not POSTGRES_URL:
        if os.environ.get("REQUIRE_POSTGRES_TESTS"):
            pytest.fail(NO_POSTGRES + ", and REQUIRE_POSTGRES_TESTS is set")
        pytest.skip(NO_POSTGRES)
    empty_database(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def database_url(empty_database_url):
    """A database with the current schema (every migration applied), as a deployment has it."""
    return upgraded(empty_database_url)


@pytest.fixture
def app(database_url):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET,
                      "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN})
    yield app
    store.close_all()


@pytest.fixture
def client(app):
    return app.test_client()
DATA_DIR = Path(__file__).resolve().parent / "data"


@pytest.fixture
def example_request():
    """The documented example request: a utility template inside an open window (allowed)."""
    return copy.deepcopy(DECISION_REQUEST_EXAMPLE)


# The Accept header a browser sends: the pages answer it in HTML, any other client in the JSON error shape.
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def as_browser(client):
    """The test client sending a browser's Accept header with every request (explicit headers still win)."""
    client.environ_base["HTTP_ACCEPT"] = BROWSER["Accept"]
    return client


def csrf_token(client, page: str = "/ui/try") -> str:
    """The CSRF token a page's form carries for this client's session (every page form must send it)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(page).get_data(as_text=True))
    assert found, f"{page} has no CSRF token"
    return found[1]


def assert_error_shape(response, status: int) -> dict:
    """The response is the one JSON error shape {code, status, message, errors} with this status."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert all(isinstance(v, list) for v in body["errors"].values())
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A gunicorn master serving the app on loopback, with its decision log and metrics directory."""

    process: subprocess.Popen
    url: str
    database: Path
    metrics_dir: Path
    log: Path

    def pids(self) -> set[int]:
        """Process ids that wrote Prometheus samples (each worker writes its own files)."""
        return {int(path.stem.rsplit("_", 1)[1]) for path in self.metrics_dir.glob("*.db")}


def start_gunicorn(directory: Path, *, workers: int = 2, preload: bool = True, env: dict | None = None) -> Server:
    """Start gunicorn with gunicorn.conf.py on 127.0.0.1, as the Procfile does (through the launcher, cli/launcher.py),
    and wait (at most 60 s) until /readyz answers 200."""
    port = free_port()
    database = directory / "log.sqlite3"
    metrics_dir = directory / "prometheus"
    log = directory / "gunicorn.log"
    environment = {
        **os.environ, "HOST": "127.0.0.1", "PORT": str(port), "POLICY_WORKERS": str(workers),
        "POLICY_PRELOAD": "true" if preload else "false", "POLICY_DATABASE_URL": f"sqlite:///{database}",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **(env or {}),
    }
    upgraded(environment["POLICY_DATABASE_URL"])
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "policy_service.cli.launcher", "-c", str(ROOT / "gunicorn.conf.py"),
             "policy_service:create_app()"],
            cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT,
        )
    server = Server(process, f"http://127.0.0.1:{port}", database, metrics_dir, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stop_gunicorn(server)
    raise RuntimeError(f"gunicorn did not become ready:\n{log.read_text()[-3000:]}")


def stop_gunicorn(server: Server) -> None:
    """Stop the master (and so its workers), gracefully if it answers within 20 s."""
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def gunicorn_server(tmp_path_factory):
    """One gunicorn with --preload and 2 workers for the whole session."""
    server = start_gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield server
    stop_gunicorn(server)


BILLED_T0 = 1754989200  # 2025-08-12T09:00:00Z: per-message pricing (V3)


@pytest.fixture
def billed_history(client):
    """A user writes at 09:00; Meta prices a utility reply, a marketing template and an authentication template."""
    deliver_billed_history(client)


def deliver_billed_history(client):
    """Meta's webhooks for billed_history, signed and posted to the app behind `client`."""
    deliver(
        client,
        inbound_text("wamid.in", BILLED_T0),
        status("wamid.utility", "sent", BILLED_T0 + 3600, pricing=pmp("utility", "free_customer_service", False)),
        status("wamid.utility", "delivered", BILLED_T0 + 3605),
        status("wamid.marketing", "delivered", BILLED_T0 + 7200, pricing=pmp("marketing", "regular", True)),
        status("wamid.auth", "delivered", BILLED_T0 + 10800,
               pricing=pmp("authentication_international", "regular", True)),
        status("wamid.failed", "failed", BILLED_T0 + 12000),
        status("wamid.in-flight", "sent", BILLED_T0 + 13000, pricing=pmp("utility", "free_customer_service", False)),
    )


def pytest_terminal_summary(terminalreporter):
    """End a run that skipped tests with a banner: how many, and why (a skip must never pass unnoticed)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: dict[str, int] = {}
    for report in skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reasons[reason.removeprefix("Skipped: ")] = reasons.get(reason.removeprefix("Skipped: "), 0) + 1
    terminalreporter.write_sep("!", f"{len(skipped)} TESTS SKIPPED: this run is less than CI's", red=True, bold=True)
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f"  {count:4d} skipped: {reason}", red=True)
