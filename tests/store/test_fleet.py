"""The fleet's published rulebook: nothing before the first reload, then one generation more per publish."""

from datetime import UTC, datetime

from policy_service.store import fleet


def test_nothing_is_published_on_a_new_database(app):
    """Generation 0 and no version until a reload is published."""
    with app.app_context():
        assert fleet.current() == fleet.NOTHING_PUBLISHED


def test_each_publish_is_one_generation_more_naming_the_rulebook_and_who(app):
    """Generations 1, 2, 3 in order; the row names the last rulebook, when (UTC) and by which key name."""
    with app.app_context():
        before = datetime.now(UTC)
        assert [fleet.publish(f"sha256:{n:016x}", by="ops-laptop").generation for n in range(3)] == [1, 2, 3]
        published = fleet.current()
    assert (published.generation, published.rulebook_version, published.published_by) == \
        (3, "sha256:0000000000000002", "ops-laptop")
    assert before.replace(microsecond=0) <= published.published_at <= datetime.now(UTC)
