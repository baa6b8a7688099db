"""The map's collar tracks, fire hotspots and sensors in Debian's Chromium, against a real
`pardus serve` on loopback (SQLite; no pipeline, nothing to detect).

A ranger opens the map: the collared leopard's track (49 hourly fixes), the two satellite hotspots and
the PM2.5 sensor are drawn beside the three cameras; moving the time slider back to the end of the
first day hides the later fixes and the later hotspot, and moving it forward again brings them back.
The leopard's page draws its track beside its sightings; the sensor's page shows its plot. A viewer
is told the collar is rounded; no request leaves the machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from tests.telemetry.helpers import TRACK_START, collared_park
from tests.web.helpers import shot, sign_in

from pardus.config import Settings
from pardus.people.accounts import add_user
from pardus.store import open_workspace
from pardus.web.process import ServerProcess

PASSWORD = "kedr-2024-patrol"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp("map-layers") / "data"
    with open_workspace(Settings(data_dir=data)) as ws:
        with ws.db.session() as s:
            collared_park(s)
        add_user(ws, "ivanov", "ranger", password=PASSWORD, token=False)
        add_user(ws, "guest", "viewer", password=PASSWORD, token=False)
    server = ServerProcess(data, pipeline=False).start()
    try:
        yield server
    finally:
        server.stop()


def _slide(page, when: float) -> None:
    """Move the range input as a person dragging it would: set the value, fire 'input'."""
    page.evaluate("""(t) => { const s = document.getElementById('map-time'); s.value = String(t);
                    s.dispatchEvent(new Event('input', {bubbles: true})); }""", when)


def test_layers_appear_and_the_slider_hides_later_points(browser, served: ServerProcess) -> None:
    base = served.url
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = ctx.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(base) else None)
    sign_in(page, base, "ivanov", PASSWORD, then="/alerts")
    page.goto(base + "/map")
    page.wait_for_selector("#map[data-layers='1']")
    assert page.get_attribute("#map", "data-loaded") == "3"  # the three cameras
    assert page.locator("path[data-station]").count() == 3
    assert page.locator("path[data-track='TAG-LEO7']").count() == 1
    assert page.get_attribute("#map", "data-track-points") == "49"
    assert page.locator("path[data-hotspot]").count() == 2
    assert page.locator("path[data-sensor='PM25-1']").count() == 1
    assert page.locator(".leaflet-control-layers").count() == 1
    assert "1 collar tracks, 2 fire hotspots, 1 sensors" in page.inner_text("#layers-note")

    # Back to the end of the first day: 25 fixes (00:00 to 24:00) and the first hotspot (12:00) stay.
    _slide(page, (TRACK_START + timedelta(hours=24)).timestamp())
    page.wait_for_function("document.getElementById('map').dataset.trackPoints === '25'")
    assert page.get_attribute("path[data-track='TAG-LEO7']", "data-points") == "25"
    assert page.get_attribute("#map", "data-hotspots") == "1"
    assert page.locator("path[data-hotspot]").count() == 1
    assert "2025-06-02 00:00" in page.inner_text("#map-time-label")
    shot(page, "map-layers")
    # At the slider's start only the first fix is drawn (the slider stops there); at the end all is back.
    _slide(page, TRACK_START.timestamp() - 3600)
    page.wait_for_function("document.getElementById('map').dataset.trackPoints === '1'")
    assert page.locator("path[data-hotspot]").count() == 0 and page.locator("path[data-track-end]").count() == 1
    assert page.locator("path[data-sensor]").count() == 1 and page.locator("path[data-station]").count() == 3
    page.evaluate("""() => { const s = document.getElementById('map-time'); s.value = s.max;
                    s.dispatchEvent(new Event('input', {bubbles: true})); }""")
    page.wait_for_function("document.getElementById('map').dataset.trackPoints === '49'")
    assert page.locator("path[data-hotspot]").count() == 2

    # The sensor's popup links to its page, which shows its readings as a plot.
    page.locator("path[data-sensor='PM25-1']").click(force=True)
    page.wait_for_selector(".leaflet-popup-content a")
    assert page.locator(".leaflet-popup-content img").count() == 1
    page.click(".leaflet-popup-content a")
    page.wait_for_url(base + "/sensors/PM25-1")
    assert page.locator("section.plot[data-kind='pm25'] svg polyline").count() == 1
    assert "Ridge <b>mast</b>" in page.inner_text("h1")  # the name as text, not markup

    # The leopard's page: its collar track beside its sightings.
    page.goto(base + "/individuals/LEO_007")
    page.wait_for_selector("#sightings-map[data-tracks='1']")
    assert page.locator("#sightings-map path[data-track='TAG-LEO7']").get_attribute("data-points") == "49"
    assert "TAG-LEO7: 49 fixes" in page.inner_text("#track-note")
    assert foreign == []

    viewer = browser.new_context()
    vpage = viewer.new_page()
    sign_in(vpage, base, "guest", PASSWORD, then="/alerts")
    vpage.goto(base + "/map")
    vpage.wait_for_selector("#map[data-layers='1']")
    assert "rounded to 0.1°" in vpage.inner_text("#layers-note")
    assert int(vpage.get_attribute("#map", "data-track-points")) < 5  # a handful of rounded places
    for c in (ctx, viewer):
        c.close()


def test_server_log_is_clean(served: ServerProcess) -> None:
    text = Path(served.log).read_text(errors="replace")
    assert "Traceback" not in text
