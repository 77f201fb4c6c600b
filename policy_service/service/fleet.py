"""Every worker of every instance on one database serves the rulebook the fleet last published.

durable_rules keeps every ruleset a process ever compiled (~1 MiB each, no way to drop one), so a process
that compiled a ruleset on each reload grew without bound (200 reloads: one worker 51 -> 254 MiB). Here a
process compiles at most once after it starts (a gunicorn worker forked from the master that preloaded the
app): a reload is *published* in the database (store/fleet.py, the generation goes up by one), and each
process follows the row:

- a process that has not compiled a ruleset yet loads the rules and serves them (a fresh worker, once);
- a process that has, and can be recycled (a gunicorn worker: `recycle_with`), is recycled: it finishes
  the request in hand, exits, and gunicorn's arbiter forks a fresh worker, which loads the rules once;
- a process that cannot be recycled (the development server, tests) compiles in place, as before.

A process checks the row at most once per `interval` seconds, on a request and (in a gunicorn worker, so an
idle one follows too) from a background thread: one primary-key read. A rules change therefore reaches every
worker of every instance within `interval` seconds plus the time a fresh worker takes to load the rules.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import peewee

from ..core.rulebook import Rulebook
from ..store import database_proxy, fleet
from ..store.database import STORAGE_FAULTS, background_fault
from ..store.fleet import NOTHING_PUBLISHED, Published

log = logging.getLogger(__name__)
Loaded = TypeVar("Loaded")

# Set in a gunicorn worker (gunicorn.conf.py's post_worker_init): ends the worker gracefully.
_recycle: Callable[[], None] | None = None


def recycle_with(recycle: Callable[[], None] | None) -> None:
    """Install how this process is recycled (None: it cannot be, and compiles in place)."""
    global _recycle
    _recycle = recycle


@contextmanager
def _connected() -> Iterator[None]:
    """This thread's connection to the database: opened (and closed after) if it is not open already."""
    database = database_proxy.obj
    opened = database is not None and database.is_closed()
    if opened:
        database.connect()
    try:
        yield
    finally:
        if opened and not database.is_closed():
            database.close()


def published_now() -> Published:
    """The fleet's published rulebook, read on this thread's connection (opened for it if need be);
    NOTHING_PUBLISHED when the database cannot tell (an empty database not migrated, a fault: logged)."""
    try:
        with _connected():
            return fleet.current()
    except peewee.PeeweeException as error:
        log.warning("could not read the fleet's published rulebook: %s", error)
        return NOTHING_PUBLISHED


class RulesNotLoaded(Exception):
    """The configured rules did not load (a broken file, a ruleset durable_rules refuses); the message says why."""


@dataclass(frozen=True)
class Following:
    """What a process serves beside what the fleet published, for /readyz and the metrics."""

    rulebook_version: str
    generation: int
    fleet: Published
    recycling: bool
    last_error: str | None

    @property
    def follows_fleet(self) -> bool:
        """True when this process serves the generation and rulebook the fleet published (or none was)."""
        return self.fleet.generation == 0 or (
            self.generation >= self.fleet.generation and self.rulebook_version == self.fleet.rulebook_version)


class RulesFollower(Generic[Loaded]):
    """Keeps one process (and the processes forked from it) serving the fleet's published rulebook.

    `read_rules()` parses and validates the rule files (raising on a broken one); `compile(rulebook)` builds
    what serves them (a rulebook and its durable_rules engine); `serve(loaded)` swaps that in and returns
    the rulebook version it serves; `served()` is the version served now.
    """

    def __init__(self, *, read_rules: Callable[[], Rulebook], compile: Callable[[Rulebook], Loaded],
                 serve: Callable[[Loaded], None], served: Callable[[], str], interval: float,
                 on_change: Callable[[str, int], None] | None = None) -> None:
        self._read_rules, self._compile, self._serve, self._served = read_rules, compile, serve, served
        self.interval = interval
        self._on_change = on_change
        self._lock = threading.RLock()
        self.generation = 0
        self.fleet = NOTHING_PUBLISHED
        self.last_error: str | None = None
        # The last rulebook that loaded without error in this process, not necessarily compiled (the gunicorn
        # master parses on SIGHUP and leaves compiling to the workers it forks).
        self._last_good: Rulebook | None = None
        self._compiled_in: int | None = None  # the pid that compiled a ruleset itself (not inherited)
        self._recycling_pid: int | None = None
        self._next_check = 0.0
        self._thread_pid: int | None = None
        self._reported_pid: int | None = None

    def start(self, published: Published) -> None:
        """Record the generation the rules loaded at start-up correspond to (the fleet's, at start)."""
        self.fleet = published
        self.generation = published.generation

    def following(self) -> Following:
        """This process's rulebook and generation beside the fleet's, as last read."""
        return Following(self._served(), self.generation, self.fleet, self._recycling_pid == os.getpid(),
                         self.last_error)

    def load(self) -> tuple[Rulebook, Loaded]:
        """Read and compile the configured rules; RulesNotLoaded says why they did not load."""
        try:
            rulebook = self._read_rules()
            return rulebook, self._compile(rulebook)
        except Exception as error:  # noqa: BLE001 - whatever breaks the new rules, the last good set must stay
            raise RulesNotLoaded(f"{type(error).__name__}: {error}") from error

    def parse(self) -> Rulebook:
        """Read the configured rules without compiling them (the gunicorn master on SIGHUP); RulesNotLoaded."""
        try:
            rulebook = self._read_rules()
        except Exception as error:  # noqa: BLE001 - as load
            self.last_error = f"{type(error).__name__}: {error}"
            raise RulesNotLoaded(self.last_error) from error
        self._last_good, self.last_error = rulebook, None
        return rulebook

    def publish(self, rulebook_version: str, *, by: str) -> Published:
        """Record a reload in the database for the whole fleet; what was published."""
        with self._lock, _connected():
            self.fleet = fleet.publish(rulebook_version, by=by)
            return self.fleet

    def adopt(self, loaded: Loaded, rulebook: Rulebook, generation: int) -> None:
        """Serve a ruleset this process compiled, for `generation`. The second one a process compiles is
        served until the process is recycled, right after the request in hand (when it can be)."""
        with self._lock:
            again = self._compiled_in == os.getpid()
            self._serve(loaded)
            self.generation, self._compiled_in, self._last_good, self.last_error = \
                generation, os.getpid(), rulebook, None
            if on_change := self._on_change:
                self._reported_pid = os.getpid()
                on_change(rulebook.version, generation)
            if again:
                self._recycle("a second ruleset was compiled in this process")

    def check(self, *, force: bool = False) -> None:
        """Follow the fleet if a check is due (every `interval` seconds, or now when forced): one read of
        the published row; a newer generation is loaded here or recycles this process. Storage errors are
        logged and retried at the next check: a decision never fails because this check did."""
        self._ensure_thread()
        if self._reported_pid != os.getpid() and (on_change := self._on_change):
            # Reported by the processes that serve (a gunicorn worker), not by the master that preloaded.
            self._reported_pid = os.getpid()
            on_change(self._served(), self.generation)
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        with self._lock:
            if not force and now < self._next_check:
                return
            self._next_check = now + self.interval
            try:
                self.fleet = fleet.current()
            except peewee.PeeweeException as error:
                log.warning("could not read the fleet's rulebook, retrying in %.0f s: %s", self.interval, error)
                return
            if self.fleet.generation > self.generation:
                self._follow(self.fleet)

    def _follow(self, published: Published) -> None:
        pid = os.getpid()
        if self._compiled_in == pid and _recycle is not None:
            self._recycle(f"the fleet published generation {published.generation} ({published.rulebook_version})")
            return
        last_good = self._last_good
        try:
            if last_good is not None and last_good.version == published.rulebook_version:
                # The master parsed these rules on SIGHUP: no need to read the files again. A later SIGHUP
                # that failed (last_error, inherited from the master) stays reported.
                error_kept = self.last_error
                self.adopt(self._compile(last_good), last_good, published.generation)
                self.last_error = error_kept
                return
            rulebook, loaded = self.load()
        except RulesNotLoaded as error:
            self.last_error = str(error)
            if last_good is None or last_good.version == self._served():
                log.error("rules of generation %s not loaded, still serving %s: %s", published.generation,
                          self._served(), error)
                self.generation = published.generation  # not retried until the next reload
                return
            log.error("rules of generation %s not loaded, serving the last good set %s: %s",
                      published.generation, last_good.version, error)
            error_kept = self.last_error
            self.adopt(self._compile(last_good), last_good, published.generation)
            self.last_error = error_kept
            return
        self.adopt(loaded, rulebook, published.generation)
        log.info("now serving %s (generation %s)", rulebook.version, published.generation)

    def _recycle(self, why: str) -> None:
        pid = os.getpid()
        if _recycle is None or self._recycling_pid == pid:
            return
        self._recycling_pid = pid
        log.info("recycling worker %s: %s", pid, why)
        _recycle()

    def _ensure_thread(self) -> None:
        """One background checker per recyclable process (each gunicorn worker starts its own), so an idle
        worker follows too. Elsewhere (the development server, tests) the check on each request suffices."""
        pid = os.getpid()
        if self._thread_pid == pid or _recycle is None:
            return
        with self._lock:
            if self._thread_pid == pid:
                return
            self._thread_pid = pid
            threading.Thread(target=self._watch, name="rules-follower", daemon=True).start()

    def _watch(self) -> None:
        pid = os.getpid()
        # Ends when the process can no longer be recycled (tests uninstall it) or a fork took over.
        while self._thread_pid == pid and _recycle is not None:
            time.sleep(max(self.interval, 0.1))
            try:
                with _connected():
                    self.check()
            except STORAGE_FAULTS as fault:
                # An outage: one line per check (requests answer 503 meanwhile), not a traceback every interval.
                background_fault("rules follower check failed", fault)
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failed check
                log.exception("rules follower check failed")
