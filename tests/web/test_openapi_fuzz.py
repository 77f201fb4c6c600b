"""schemathesis drives every documented operation in-process (WSGI) from the spec: no 5xx, responses conform."""

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.config import SchemathesisConfig

from policy_service import create_app

EXAMPLES_PER_OPERATION = 100
# The spec cannot say which strings are IANA zones, so schema-valid requests may rightly get a 422.
EXCLUDED_CHECKS = [checks.positive_data_acceptance]
calls = {"total": 0}


# schemathesis reads the spec when this module is collected (its from_fixture fails on pytest 9),
# so the app and its decision log are made here, in a directory removed after the module.
_workdir = tempfile.TemporaryDirectory(prefix="policy-fuzz-")
# Configured like production: without an app secret every webhook rightly fails closed with 503.
_app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                   "DATABASE_URL": f"sqlite:///{Path(_workdir.name) / 'log.sqlite3'}",
                   "WHATSAPP_APP_SECRET": "fuzz-secret", "WHATSAPP_VERIFY_TOKEN": "fuzz-token"})
# Reloading rules is left out: slow, and not driven by its (empty) input.
# schemathesis' default statuses for rejecting invalid data, plus 413: an invalid body (e.g. a history past
# maxItems) can be too large before it is invalid, and the body-size limit then answers first.
CONFIG = SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {"expected-statuses": [
    "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]}}})
schema = schemathesis.openapi.from_wsgi("/openapi.json", _app, config=CONFIG).exclude(path="/v1/admin/reload-rules")


@pytest.fixture(scope="module", autouse=True)
def _remove_workdir():
    yield
    _workdir.cleanup()


@schema.parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
def test_operation(case):
    """No generated request, valid or not, gets a server error, and every response matches the spec."""
    calls["total"] += 1
    excluded = list(EXCLUDED_CHECKS)
    if case.operation.path == "/v1/decisions" and case.method == "GET":
        # flask-smorest documents X-Pagination as an object; on the wire it is that object as a JSON string.
        excluded.append(checks.response_headers_conformance)
    case.call_and_validate(excluded_checks=excluded)


def test_fuzzing_ran():
    """The fuzz run above sent requests (a run that generated nothing must fail, not pass)."""
    assert calls["total"] >= EXAMPLES_PER_OPERATION
