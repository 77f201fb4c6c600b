"""Typed clients generated from the running service's /openapi.json decide a send over HTTP: TypeScript
(openapi-typescript + openapi-fetch, compiled by tsc --strict; clients/typescript) and Python
(openapi-python-client; clients/python). The TypeScript program also compiles lines that must be type
errors (a misspelt decision, reading a nullable charge), so the contract's enums and nulls are proven.

Needs Node.js and npm (Debian's nodejs and npm packages); without them the TypeScript test is skipped,
unless REQUIRE_CLIENT_TESTS=1 (CI) makes that a failure.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from ..conftest import ROOT

TYPESCRIPT = ROOT / "clients" / "typescript"
EXPECTED = {"decision": "allow", "status": "decided", "required_message_type": "any", "billable": False,
            "charge_type": "free_customer_service", "determining_rules": ["CSW-2.open", "TPL-1.approved", "PMP-3"],
            "first_reason_confidence": "C", "logged_decision": "allow"}


def run(command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


@pytest.fixture(scope="module")
def spec_file(gunicorn_server, tmp_path_factory) -> Path:
    """The running service's /openapi.json, saved."""
    path = tmp_path_factory.mktemp("spec") / "openapi.json"
    path.write_text(requests.get(f"{gunicorn_server.url}/openapi.json", timeout=10).text)
    return path


def node_tools() -> tuple[str, str] | None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    if os.environ.get("REQUIRE_CLIENT_TESTS"):
        pytest.fail("REQUIRE_CLIENT_TESTS is set but node or npm is missing (apt-get install nodejs npm)")
    pytest.skip("node and npm are not installed (apt-get install nodejs npm), so no TypeScript client is built")


def test_typescript_client_compiles_strictly_and_decides(gunicorn_server, spec_file, tmp_path):
    """openapi-typescript generates types, tsc --strict compiles check.ts (and its must-fail lines), and the
    program decides the documented example send against gunicorn, reads it back, and lists a page."""
    _node, npm = node_tools()
    work = tmp_path / "typescript"
    shutil.copytree(TYPESCRIPT, work, ignore=shutil.ignore_patterns("node_modules", "build", "generated"))
    # npm ci installs exactly package-lock.json; the checkout's node_modules is reused when already installed.
    modules = TYPESCRIPT / "node_modules"
    if not (modules / ".package-lock.json").exists() or \
            (modules / ".package-lock.json").stat().st_mtime < (TYPESCRIPT / "package-lock.json").stat().st_mtime:
        run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TYPESCRIPT)
    (work / "node_modules").symlink_to(modules)
    bin_dir = modules / ".bin"
    run([str(bin_dir / "openapi-typescript"), str(spec_file), "-o", "generated/schema.d.ts"], cwd=work)
    run([str(bin_dir / "tsc"), "-p", "."], cwd=work)
    output = run(["node", "build/check.js", gunicorn_server.url], cwd=work).stdout
    got = json.loads(output)
    assert {key: got[key] for key in EXPECTED} == EXPECTED
    assert json.loads(got["pagination"])["total"] >= 1


def test_python_client_decides_against_the_running_service(gunicorn_server, spec_file, tmp_path):
    """openapi-python-client generates a package whose typed models carry the enums and the nullable charge;
    clients/python/check.py decides, reads back, and gets the error shape for an invalid number."""
    (tmp_path / "config.yaml").write_text("post_hooks: []\n")
    run([str(Path(sys.executable).parent / "openapi-python-client"), "generate", "--path", str(spec_file),
         "--meta", "none", "--config", "config.yaml", "--output-path", "policy_service_client"], cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    output = run([sys.executable, str(ROOT / "clients" / "python" / "check.py"), gunicorn_server.url],
                 cwd=tmp_path, env=env).stdout
    got = json.loads(output)
    assert {key: got[key] for key in EXPECTED} == EXPECTED
    assert got["refused_code"] == 422
