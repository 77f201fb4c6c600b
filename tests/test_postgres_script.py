"""scripts/postgres.sh starts and uses a PostgreSQL cluster of this checkout's own — its data directory and
port — and never another cluster (issue 22: it used whichever cluster pg_lsclusters listed first, so the
tests borrowed, and created roles in, someone else's cluster)."""

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from .conftest import ROOT

SCRIPT = ROOT / "scripts" / "postgres.sh"
needs_postgres = pytest.mark.skipif(not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")),
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


@needs_postgres
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


def port_free(port: int, directory: Path) -> bool:
    result = subprocess.run(["bash", "-c", f"source {SCRIPT} && _port_free {port}"], capture_output=True, timeout=30,
                            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "POLICY_POSTGRES_DIR": str(directory)})
    return result.returncode == 0


def test_a_port_held_only_by_closed_connections_is_kept(tmp_path):
    """The kept port is free again right after a stop, while its closed connections linger in TIME-WAIT (the
    newcomer's `stop_postgres; start_postgres` moved 36275 to 52451 and a connected service answered 503); a port
    another program listens on is still taken."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    assert not port_free(port, tmp_path)  # listened on
    accepted.close()  # the server side closes first, as a stopping cluster does: its end waits in TIME-WAIT
    client.recv(1)
    client.close()
    listener.close()
    states = subprocess.run(["ss", "-tan", f"sport = :{port}"], capture_output=True, text=True).stdout
    assert "TIME-WAIT" in states or not shutil.which("ss"), states
    assert port_free(port, tmp_path)
