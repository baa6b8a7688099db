"""The identity desk in Debian's Chromium (Playwright) against a real `pardus serve` on loopback, on
SQLite and on PostgreSQL: a reviewer confirms a re-identification proposal with the keyboard only
(? shows the keys, 1 confirms the best candidate, n + Enter makes a new individual) and the
individual's page then shows that photo and sighting, on the map and in the list; a viewer sees
the same proposal without buttons and its keys decide nothing; the queue fits a phone's width.

The proposals are the real reid stage's on rendered leopards (`tests.web.test_identities.build_desk`).
`PARDUS_DOCS_SCREENSHOTS=docs pytest tests/web/test_browser_identities.py -k sqlite` refreshes
docs/web-identity-review.png and docs/web-individual.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.web.helpers import backend_settings, shot, sign_in
from tests.web.test_identities import Card, build_desk, make_card

from pardus.config import Settings
from pardus.people.accounts import add_user
from pardus.store import open_workspace
from pardus.store.models import Individual, IndividualEvent, Observation
from pardus.web.process import ServerProcess

pytestmark = pytest.mark.slow
PASSWORD = "kedr-2024-patrol"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Card:
    return make_card(tmp_path_factory.mktemp("card"))


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, card: Card,
           tmp_path: Path) -> Iterator[tuple[ServerProcess, Settings, dict[str, str]]]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        url = settings.database_url
        with open_workspace(settings) as ws:
            ids = build_desk(ws, card)
            add_user(ws, "olga", "reviewer", password=PASSWORD, token=False)
            add_user(ws, "guest", "viewer", password=PASSWORD, token=False)
        server = ServerProcess(settings.data_dir, pipeline=False, database_url=url).start()
        try:
            yield server, settings, ids
        finally:
            server.stop()


def _sign_in(page, base: str, name: str, then: str) -> None:
    sign_in(page, base, name, PASSWORD, then)


def test_reviewer_confirms_by_keyboard_and_the_individual_page_shows_the_sighting(browser, served) -> None:
    server, settings, ids = served
    base, p3 = server.url, ids["P3"]

    # A viewer looks: no buttons, and pressing 1 decides nothing.
    viewer = browser.new_context(viewport=PHONE)
    vpage = viewer.new_page()
    _sign_in(vpage, base, "guest", "/identities")
    assert vpage.get_attribute("#proposal", "data-proposal") == p3
    assert vpage.locator("#confirm-1").count() == 0
    vpage.keyboard.press("1")
    assert vpage.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # fits a phone
    viewer.close()

    ctx = browser.new_context(viewport=DESKTOP)
    page = ctx.new_page()
    _sign_in(page, base, "olga", "/identities")
    assert page.get_attribute("#proposal", "data-proposal") == p3
    assert "LEO_001" in page.inner_text("#confirm-1")
    page.wait_for_function("document.getElementById('sheet').complete && "
                           "document.getElementById('sheet').naturalWidth > 0", timeout=60_000)
    page.keyboard.press("?")
    page.wait_for_selector("#help-dialog[open]")
    assert "new individual" in page.inner_text("#help-dialog")
    page.keyboard.press("Escape")
    page.wait_for_selector("#help-dialog:not([open])", state="attached")
    shot(page, "identity-review")
    page.keyboard.press("1")
    page.wait_for_selector("#last-decision")
    assert "IMG_0003.JPG is LEO_001" in page.inner_text("#last-decision")
    assert page.get_attribute("#proposal", "data-proposal") == ids["P4"]  # on to the next photo

    # n opens the new-individual form; Enter in it creates the record (it does not confirm #1).
    page.keyboard.press("n")
    page.wait_for_selector("#new-dialog[open]")
    page.keyboard.press("Tab")
    page.keyboard.type("Shadow")
    page.keyboard.press("Enter")
    page.wait_for_function("(document.querySelector('#last-decision') || {}).textContent"
                           " && document.querySelector('#last-decision').textContent.includes('IMG_0004.JPG')")
    assert "IMG_0004.JPG is LEO_003" in page.inner_text("#last-decision")

    page.goto(base + "/individuals/LEO_001")
    page.wait_for_selector("#sightings-map[data-loaded='2']")
    assert page.locator(f"#sightings tr[data-media='{ids['IMG_0003.JPG']}']").count() == 1
    assert page.locator(f".flanks img[src='/media/{ids['IMG_0003.JPG']}/thumb']").count() == 1
    assert page.locator("#sightings-map .leaflet-interactive").count() >= 2
    shot(page, "individual")
    ctx.close()

    with open_workspace(settings) as ws, ws.db.session() as s:
        obs = s.scalars(select(Observation).where(Observation.media_id == ids["IMG_0003.JPG"],
                                                  Observation.classification_method == "human")).one()
        assert obs.classified_by == "olga"
        assert s.scalars(select(IndividualEvent.by).where(IndividualEvent.action == "confirm",
                                                          IndividualEvent.by != "setup")).all() == ["olga", "olga"]
        new = s.scalars(select(Individual).where(Individual.code == "LEO_003")).one()
        assert new.name == "Shadow"
