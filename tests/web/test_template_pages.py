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
