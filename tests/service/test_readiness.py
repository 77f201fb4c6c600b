"""Readiness (service/readiness.py): a process is not ready while the rulebook it serves is not the one the fleet
published, and the reason names both versions and why they differ; it is ready again once it follows."""

from policy_service.service import fleet, readiness
from policy_service.store import fleet as published

from . import test_fleet
from .test_fleet import Book

# The follower over fake rule files (serving v1) in a process whose recycling is counted, not done.
process = test_fleet.process


def _problem(process) -> str | None:
    return readiness.rules_problem(process.follower.following())


def test_nothing_published_or_the_published_rulebook_is_ready(process):
    """Before any reload (generation 0) and once the process serves what the fleet published: no problem."""
    assert _problem(process) is None
    process.files = "v2"
    published.publish("v2")
    process.follower.check()
    assert process.serving == "v2" and _problem(process) is None


def test_other_rule_files_here_are_not_ready_until_the_published_ones_are_loaded(process):
    """The fleet publishes v2 but this instance's files are v3: the process follows the generation yet serves
    v3, which is named beside v2 with the files as the cause; once the same files are deployed and published
    again, it is ready."""
    process.files = "v3"
    published.publish("v2")
    process.follower.check()
    problem = _problem(process)
    assert process.serving == "v3" and problem is not None
    assert "serves rulebook v3 (generation 1)" in problem and "published v2 (generation 1)" in problem
    assert "POLICY_RULES_DIR" in problem
    fleet.recycle_with(None)  # compiled once already: follow in place rather than be recycled
    process.files = "v2"
    published.publish("v2")
    process.follower.check()
    assert process.serving == "v2" and _problem(process) is None


def test_rules_that_did_not_load_here_are_named(process):
    """Files that do not load here leave v1 serving while the fleet published v2: the load error is the cause."""
    process.files = "broken"
    published.publish("v2")
    process.follower.check()
    problem = _problem(process)
    assert "serves rulebook v1" in problem and "published v2" in problem and "templates.yaml" in problem


def test_a_worker_being_recycled_is_not_ready(process):
    """A worker that compiled once is recycled for the next generation: until it is gone it still serves the
    old rulebook, and says it is being replaced."""
    process.follower.adopt(Book("v2"), Book("v2"), 0)
    process.files = "v3"
    published.publish("v3")
    process.follower.check()
    problem = _problem(process)
    assert process.recycled == 1 and "serves rulebook v2" in problem and "replaced" in problem


def test_a_fleet_generation_that_went_back_is_named(process):
    """The published row at a lower generation than the process serves (the table reset or restored, then another
    rulebook published): a process follows higher generations only, so it says the generation went back and asks
    for a reload."""
    process.follower.adopt(Book("v2"), Book("v2"), 5)
    published.publish("v3")
    process.follower.check(force=True)
    problem = _problem(process)
    assert "serves rulebook v2 (generation 5)" in problem and "published v3 (generation 1)" in problem
    assert "went back" in problem
