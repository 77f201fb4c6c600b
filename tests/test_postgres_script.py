"""scripts/postgres.sh starts and uses a PostgreSQL cluster of this checkout's own — its data directory and
port — and never another cluster (issue 22: it used whichever cluster pg_lsclusters listed first, so the
tests borrowed, and created roles in, someone else's cluster)."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "postgres.sh"
pytestmark = pytest.mark.skipif(not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
                                reason="PostgreSQL is not installed (apt-get install postgresql)")


def bash(command: str, directory: Path) -> str:
    result = subprocess.run(["bash", "-c", f"source {SCRIPT} && {command}"], capture_output=True, text=True,
                            timeout=180, env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
                                              "POLICY_POSTGRES_DIR": str(directory)})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def clusters() -> str:
    listed = shutil.which("pg_lsclusters")
    return subprocess.run([listed, "-h"], capture_output=True, text=True).stdout if listed else ""


def test_the_cluster_is_the_checkouts_own_and_no_other_is_touched():
    """The URL points at the cluster in POLICY_POSTGRES_DIR (its port, its data directory), a second start
    reuses it, and every cluster pg_lsclusters lists is exactly as before."""
    directory = Path(tempfile.mkdtemp(prefix="policy-postgres-test-"))
    directory.chmod(0o755)  # reachable by the postgres user that runs the cluster when the tests run as root
    before = clusters()
    try:
        url = bash('start_postgres 2>/dev/null && echo "$POLICY_TEST_DATABASE_URL" && cat "$POLICY_POSTGRES_DIR/port"',
                   directory)
        url, port = url.splitlines()
        assert url == f"postgresql://policy_service:policy_service@127.0.0.1:{port}/policy_service_test"
        data_directory = bash(f'as_cluster_owner "$(postgres_bin)/psql" -h "$POLICY_POSTGRES_DIR" -p {port} '
                              '-U postgres -d postgres -tAc "SHOW data_directory"', directory)
        assert Path(data_directory).resolve() == (directory / "data").resolve()
        assert bash('start_postgres 2>/dev/null && echo "$POLICY_TEST_DATABASE_URL"', directory) == url
        assert clusters() == before
    finally:
        bash("stop_postgres >/dev/null 2>&1 || true", directory)
        shutil.rmtree(directory, ignore_errors=True)
