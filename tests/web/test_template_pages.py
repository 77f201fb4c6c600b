"""The template registry's reviewer pages: the WABA's templates, and one template's history."""

import pytest

from ..conftest import as_browser
from ..meta_business_payloads import category_completed, template_status
from ..meta_payloads import WABA_ID, deliver

T0 = 1756717200  # 2025-09-01T09:00:00Z


@pytest.fixture
def client(app):
    """A reviewer's browser: every request says Accept: text/html (the pages answer other clients in JSON)."""
    return as_browser(app.test_client())


def test_the_registry_pages_show_each_template_and_its_history(client):
    """The list names the state in force and its source; the history lists each event in time order."""
    deliver(client, template_status("order_update", "en_US", "APPROVED", T0, category="UTILITY"),
            category_completed("order_update", "en_US", "UTILITY", "MARKETING", T0 + 600))
    index = client.get("/ui/templates").get_data(as_text=True)
    assert f"WABA {WABA_ID}" in index
    listing = client.get(f"/ui/templates?waba_id={WABA_ID}").get_data(as_text=True)
    assert "order_update" in listing and "marketing" in listing
    assert "template_category_update webhook at 2025-09-01T09:10:00+00:00" in listing
    page = client.get(f"/ui/templates/{WABA_ID}/order_update/en_US")
    table = page.get_data(as_text=True).split("<tbody>")[1]
    assert page.status_code == 200
    assert table.index("2025-09-01T09:00:00+00:00") < table.index("2025-09-01T09:10:00+00:00")
    assert "utility → marketing" in table


def test_an_unknown_template_page_is_a_404(client):
    """A template the registry never heard of is a 404 page, not an error."""
    response = client.get(f"/ui/templates/{WABA_ID}/nothing/en")
    assert response.status_code == 404 and "has no template nothing" in response.get_data(as_text=True)


def test_rows_stored_before_ids_were_checked_are_shown_as_text_not_links_the_pages_refuse(app, client):
    """A template event stored earlier under a WABA id that is not digits (before webhooks refused one) was listed as
    a link to /ui/templates?waba_id=<it>, which answers 422: it is shown as text, the digit WABA beside it still a
    link. In a WABA's list, a template whose stored name no page address can carry (a "/" moves the language along
    the path, ".." is resolved away by the browser) is shown as text too, the others linked, and every link shown
    answers 200."""
    import re
    from datetime import UTC, datetime

    from policy_service.store.business_state import TemplateEvent

    deliver(client, template_status("order_update", "en_US", "APPROVED", T0, category="UTILITY"))
    at = datetime(2025, 9, 1, 9, tzinfo=UTC)
    with app.app_context():
        for waba, name in (("waba-1", "old_one"), (WABA_ID, "a/b"), (WABA_ID, "..")):
            TemplateEvent.create(waba_id=waba, name=name, language="en", source="test", status="APPROVED",
                                 effective_at=at, received_at=at)
    index = client.get("/ui/templates").get_data(as_text=True)
    assert "waba_id=waba-1" not in index and "WABA <code>waba-1</code>" in index
    assert f'href="/ui/templates?waba_id={WABA_ID}"' in index
    assert client.get("/ui/templates?waba_id=waba-1").status_code == 422  # what the link led to
    listing = client.get(f"/ui/templates?waba_id={WABA_ID}").get_data(as_text=True)
    assert "<code>a/b</code>" in listing and "<code>..</code>" in listing
    links = re.findall(r'href="(/ui/templates/[^"]+)"', listing)
    assert links == [f"/ui/templates/{WABA_ID}/order_update/en_US"], links
    for link in [*links, *re.findall(r'href="(/ui/templates\?[^"]+)"', index)]:
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link
