"""gunicorn's gthread worker, accepting new connections least-connections first across the host's workers.

Why: every worker waits on the same listening socket, and the first to wake takes what is pending. A gthread
worker's main thread only accepts and hands over (the requests run in its thread pool), so it is back in its
poller at once and often takes every connection of a burst: with 2 workers and 4 keep-alive clients, one worker
held all 4 connections in 14 to 22 of 40 trials (35–55 %; chance alone gives 12.5 %) while the other core idled, which
halved the throughput of those clients for as long as they stayed connected (bench/http_load.py saw whole runs
served by one worker). With few long-lived connections — a BSP's backend with a small keep-alive pool, a proxy's
upstream pool — that is how the service is used.

How: each worker publishes how many connections it holds in a small table shared by the host's workers (shared
memory made by the master before it forks them: `SLOTS` slots, one per live worker). A worker about to accept
while another live worker holds fewer connections steps aside for at most `DEFER` seconds (it stops polling the
listening socket), so the less loaded worker takes the connection; if nobody has taken it by then (that worker
is busy), it accepts after all. A connection therefore waits at most `DEFER` longer, and only when this worker
is the more loaded one. Beyond `SLOTS` workers, the extra ones accept as gthread does.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 64
# Long enough for an idle sibling to wake and take a pending connection (its main thread may wait for its
# GIL: gunicorn's poller shares the process with request threads), short beside a request's own latency.
DEFER = 0.02

# Made at import, in the master (gunicorn imports the worker class before forking any worker): one pid and one
# connection count per slot, 0 for a free slot. Written without locks: each slot has one writer (its worker; the
# master only when it hands a free slot out), and a stale count costs at most one deferral of DEFER.
_pids = multiprocessing.RawArray(ctypes.c_long, SLOTS)
_connections = multiprocessing.RawArray(ctypes.c_long, SLOTS)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# In the master: slot -> the worker object it was handed to (gunicorn sets its pid, an int, after the fork).
_handed: dict[int, Any] = {}


def _free_slot(worker: Any) -> int | None:
    """A slot for `worker` (in the master, as the worker is made), one whose holder has exited, or None when all
    SLOTS are held."""
    for slot in range(SLOTS):
        holder = _handed.get(slot)
        if holder is None or (isinstance(holder.pid, int) and not _alive(holder.pid)):
            _handed[slot] = worker
            _pids[slot] = 0  # the forked worker writes its pid here
            _connections[slot] = 0
            return slot
    return None


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's ThreadWorker that lets a less loaded sibling take a new connection first (module docstring).
    gunicorn.conf.py: worker_class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._slot = _free_slot(self)  # in the master, before the fork
        self._defer_until = 0.0
        self._accept_now = False

    def init_process(self) -> None:
        if self._slot is not None:
            _pids[self._slot] = os.getpid()
            _connections[self._slot] = 0
        try:
            super().init_process()
        finally:
            if self._slot is not None and _pids[self._slot] == os.getpid():
                _pids[self._slot] = 0

    def _publish(self) -> None:
        if self._slot is not None:
            _connections[self._slot] = self.nr_conns

    def _others_hold_fewer(self) -> bool:
        mine, me = self.nr_conns, self._slot
        return any(_pids[slot] > 0 and slot != me and _connections[slot] < mine for slot in range(SLOTS))

    def accept(self, listener: Any) -> None:
        if self._slot is not None and not self._accept_now and self._others_hold_fewer():
            # Step aside: stop polling the listener until the deferral ends (set_accept_enabled keeps it off).
            self._defer_until = time.monotonic() + DEFER
            super().set_accept_enabled(False)
            return
        self._accept_now = False
        super().accept(listener)
        self._publish()

    def set_accept_enabled(self, enabled: bool) -> None:
        if enabled and self._defer_until:
            if time.monotonic() < self._defer_until:
                return
            # The deferral is over: a connection still pending now was left for us, take it whatever the counts.
            self._defer_until = 0.0
            self._accept_now = True
        super().set_accept_enabled(enabled)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self._publish()
        if self._defer_until:
            timeout = max(0.0, min(timeout, self._defer_until - time.monotonic()))
        pending = self._accept_now
        super().wait_for_and_dispatch_events(timeout)
        # The callbacks just run may have closed connections (a client's close, a kept-alive one expiring): say so
        # now, not after the next poll, or a sibling would step aside for counts that are no longer true.
        self._publish()
        if pending:
            # One poll with the listener back on has passed (accept() used the flag if a connection was left):
            # balance again from now on.
            self._accept_now = False
