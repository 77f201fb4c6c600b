"""Following the fleet's rulebook: a process compiles at most once after it starts, then is recycled; broken
rules leave the last good set serving; a check reads the database at most once per interval."""

from dataclasses import dataclass

import peewee
import pytest

from policy_service.service import fleet
from policy_service.store import fleet as published


@dataclass(frozen=True)
class Book:
    """A stand-in rulebook: only its version matters to the follower."""

    version: str


class Process:
    """A follower over fake rule files, counting what it compiles and how often it is recycled."""

    def __init__(self, interval=0.0):
        self.files = "v1"
        self.serving = "v1"
        self.compiled: list[str] = []
        self.recycled = 0
        self.follower = fleet.RulesFollower(read_rules=self.read, compile=self.compile, serve=self.serve,
                                            served=lambda: self.serving, interval=interval)

    def read(self):
        if self.files == "broken":
            raise ValueError("templates.yaml: not a rule")
        return Book(self.files)

    def compile(self, book):
        self.compiled.append(book.version)
        return book

    def serve(self, book):
        self.serving = book.version

    def recycle(self):
        self.recycled += 1


@pytest.fixture
def process(app):
    """A follower in a process whose recycling is counted, not done."""
    running = Process()
    fleet.recycle_with(running.recycle)
    with app.app_context():
        running.follower.start(fleet.published_now())
        yield running
    fleet.recycle_with(None)


def test_a_fresh_process_loads_a_published_reload_once_then_is_recycled(process):
    """The first published reload is compiled in the process; the next recycles it instead of compiling again."""
    process.files = "v2"
    published.publish("v2")
    process.follower.check()
    assert (process.serving, process.compiled, process.recycled) == ("v2", ["v2"], 0)
    assert process.follower.following().follows_fleet

    process.files = "v3"
    published.publish("v3")
    process.follower.check()
    assert (process.serving, process.compiled, process.recycled) == ("v2", ["v2"], 1)
    assert process.follower.following().recycling and not process.follower.following().follows_fleet
    process.follower.check(force=True)
    assert process.recycled == 1  # asked once; the worker is on its way out


def test_adopting_a_second_compiled_ruleset_serves_it_and_recycles_after(process):
    """The reload endpoint's path: the process's second compiled ruleset serves at once, then the process goes."""
    process.follower.adopt(Book("v2"), Book("v2"), 1)
    assert process.recycled == 0
    process.follower.adopt(Book("v3"), Book("v3"), 2)
    assert (process.serving, process.recycled) == ("v3", 1)


def test_a_process_that_cannot_be_recycled_compiles_in_place(process):
    """The development server and tests: no recycling, each published reload is compiled where it runs."""
    fleet.recycle_with(None)
    for version in ("v2", "v3"):
        process.files = version
        published.publish(version)
        process.follower.check()
    assert (process.serving, process.compiled, process.recycled) == ("v3", ["v2", "v3"], 0)


def test_broken_rule_files_keep_the_served_rules_and_say_why(process):
    """A generation whose files do not load leaves the rules served, records why, and is not retried."""
    process.files = "broken"
    published.publish("v2")
    process.follower.check()
    following = process.follower.following()
    assert (process.serving, process.compiled) == ("v1", [])
    assert "templates.yaml" in following.last_error and following.generation == 1
    process.follower.check(force=True)
    assert process.compiled == []


def test_a_worker_forked_after_sighup_compiles_what_the_master_parsed(process):
    """The master parses on SIGHUP and publishes; a worker it forks compiles that rulebook without reading the
    files again, and if the files broke since, still the master's last good set."""
    process.files = "v2"
    process.follower.parse()
    process.follower.publish("v2", by="sighup")
    process.files = "broken"
    process.follower.check()
    assert (process.serving, process.compiled, process.follower.last_error) == ("v2", ["v2"], None)


def test_checks_read_the_database_at_most_once_per_interval(app, monkeypatch):
    """Between two due checks, requests cost no database read."""
    running = Process(interval=60)
    reads = []
    monkeypatch.setattr(published, "current", lambda: reads.append(1) or published.NOTHING_PUBLISHED)
    with app.app_context():
        for _ in range(100):
            running.follower.check()
    assert len(reads) == 1


def test_a_storage_fault_at_start_up_reads_as_nothing_published(app, monkeypatch):
    """Start-up when the row cannot be read (a fault, logged) serves what it loaded, as generation 0."""
    def unreadable():
        raise peewee.OperationalError("database is locked")

    monkeypatch.setattr(published, "current", unreadable)
    with app.app_context():
        assert fleet.published_now() == published.NOTHING_PUBLISHED
