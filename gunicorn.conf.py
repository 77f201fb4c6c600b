"""gunicorn settings for policy-service; the Procfile and the image run
`policy-service-gunicorn -c gunicorn.conf.py "policy_service:create_app()"` (gunicorn with the service's start checks,
policy_service/cli/launcher.py: a start error is its message, not a traceback).

Environment: PORT (8000), HOST (0.0.0.0), PROMETHEUS_MULTIPROC_DIR, and the service's settings
(policy_service.config, validated before anything starts): POLICY_WORKERS or WEB_CONCURRENCY (CPU count),
POLICY_THREADS, POLICY_TIMEOUT (30 s), POLICY_KEEPALIVE, POLICY_PRELOAD (true), POLICY_HEADER_TIMEOUT (5 s: a
request's head must arrive within it) and POLICY_BODY_TIMEOUT (10 s: the most a client may pause sending its body
or taking its answer; both answered 408 and the connection closed); POLICY_DECISION_LOG_SYNC_SECONDS (0.1): how soon
the decision log's commits are forced to disk (0: each one, through one writer in the master unless
POLICY_LOG_WRITER is false).
`kill -HUP <master pid>` reloads the rules: the master reads and publishes them (policy_service/service/fleet.py),
and every worker of every instance on the database follows, each in a fresh process.
"""

import gc
import multiprocessing
import os
import signal
import sys
from pathlib import Path

from policy_service.config import SettingsError, listen_address, load_settings, web_concurrency
from policy_service.web import server_errors
from policy_service.web.logs import LOGCONFIG
from policy_service.web.worker import BalancedThreadWorker

try:
    settings = load_settings()
    # durable_rules runs behind one process-wide lock, so processes, not threads, add throughput. WEB_CONCURRENCY
    # (the platform's) when POLICY_WORKERS is unset: checked as the settings are.
    workers = settings.workers or web_concurrency() or multiprocessing.cpu_count()
    bind = listen_address()
except SettingsError as error:
    # gunicorn would print a traceback for an exception here; the message alone says what to fix.
    print(error, file=sys.stderr)
    sys.exit(2)

# gunicorn's own 400/414/431 (a request it cannot parse) in the service's JSON error shape, not an HTML page.
server_errors.install()
# Threads are for waiting clients, not for speed: a sync worker is held by one idle or slow connection
# (two idle TCP connections stalled /healthz 30 s). The worker waits for a new connection's first bytes in its
# poller without a thread (closing it after 5 s of silence), and closes a connection idle for `keepalive`
# seconds; a slow (trickling) client holds one thread for at most the client timeouts below.
# Behind the internet, a buffering proxy should take slow clients off the workers (README, production).
# gthread, except that a worker takes a new connection only after the less loaded workers of the host had their
# chance (policy_service/web/worker.py): plain gthread gave one worker all 4 connections of 4 keep-alive clients
# in 35–55 % of tries, leaving the other core idle.
worker_class = "policy_service.web.worker.BalancedThreadWorker"
# gthread reads a request with no timeout once its first bytes came: threads + 1 clients stalled mid-head or
# mid-body held every thread for good. The worker times the head out after header_timeout, a body or an answer
# without progress for body_timeout (408 in the JSON error shape, the connection closed, the thread freed).
BalancedThreadWorker.client_timeouts(header=settings.header_timeout, body=settings.body_timeout)
threads = settings.threads
timeout = settings.timeout
graceful_timeout = 30
keepalive = settings.keepalive
# Connections one worker keeps (in requests and parked idle); beyond it, new ones wait in the backlog.
worker_connections = 1000
# The engine survives fork (tests/test_serving.py proves it), so rules load once, in the master.
preload_app = settings.preload
limit_request_line = 8190
# gunicorn 27's control socket sits at one path per user, so two instances on a host would collide.
control_socket_disable = True
# One JSON object per line (python-json-logger): the access log on stdout, with a timestamp and the
# request's X-Request-ID, and gunicorn's own messages on stderr (policy_service/web/logs.py).
logger_class = "policy_service.web.logs.AccessLogger"
logconfig_dict = LOGCONFIG
accesslog = "-"
errorlog = "-"


def on_starting(server):
    """Empty the Prometheus multiprocess directory: samples of a previous run must not be added in."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        try:
            Path(directory).mkdir(parents=True, exist_ok=True)
            for stale in Path(directory).glob("*.db"):
                stale.unlink()
        except OSError as error:
            # A file there, or no permission: the start ends as for a bad setting, before any socket is opened.
            print(f"policy-service settings cannot be read:\n  PROMETHEUS_MULTIPROC_DIR={directory!r}: cannot be "
                  f"the metrics directory ({error.strerror})", file=sys.stderr)
            sys.exit(2)


def when_ready(server):
    """With the app preloaded on the embedded SQLite file, make the master the keeper of the decision log's
    durability for the workers forked next (policy_service/store/log_writer.py): with POLICY_DECISION_LOG_SYNC_SECONDS
    N > 0 (default 0.1) each worker commits its own rows, written but not forced to disk, and a thread of the master
    forces them to disk within N s; with 0 (every commit forced to disk) one writer in the master commits every
    worker's rows, sharing each fsync (unless POLICY_LOG_WRITER is false: then each worker commits and forces its own).
    """
    if not server.cfg.preload_app:
        return
    from policy_service.store.decision_log import start_host_syncer, start_host_writer

    seconds = settings.decision_log_sync_seconds
    if seconds > 0:
        if start_host_syncer(seconds):
            server.log.info("decision log: each worker commits its rows (SQLite), forced to disk within %g s", seconds)
    elif settings.log_writer and start_host_writer():
        server.log.info("decision log: one writer for this host's workers (SQLite), every commit forced to disk")


def on_reload(server):
    """On SIGHUP with preload the master keeps its app: it reads the rules (compiling nothing: durable_rules
    would keep every ruleset) and publishes them; the workers it forks next load them, once each."""
    # What pre_fork froze becomes collectable again: the rules replaced now must not stay in the master for good.
    gc.unfreeze()
    if server.cfg.preload_app:
        from policy_service.web.operations import ReloadFailed, reload_rules

        try:
            reload_rules(server.app.wsgi())
        except ReloadFailed as error:
            server.log.error("rules not reloaded, the previous rules stay active: %s", error)


def pre_fork(server, worker):
    """Freeze what the master holds (with preload: the app, its rulebook and engine) out of the garbage collector's
    reach before forking, as Python's gc.freeze documentation advises for pre-fork servers: a worker's full
    collections then skip those ~85,000 long-lived objects (a full collection of them costs ~30 ms) and never
    write to their pages, which stay shared with the master instead of being copied into every worker."""
    gc.freeze()


def post_worker_init(worker):
    """A rules reload recycles this worker instead of compiling a second ruleset in it: it sends itself
    SIGTERM (gunicorn's graceful exit: the requests in hand finish) and the arbiter forks a fresh one. What the
    worker loaded itself (all of the app without preload) is frozen as the master's objects are (pre_fork)."""
    from policy_service.service.fleet import recycle_with

    recycle_with(lambda: os.kill(os.getpid(), signal.SIGTERM))
    gc.freeze()


def child_exit(server, worker):
    """Tell prometheus_client a worker died, as its multiprocess mode requires."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
