"""The web app in Debian's Chromium (Playwright), against a real `pardus serve` on loopback with a
simulated season imported, on SQLite and on PostgreSQL.

A ranger signs in on a phone-width screen; a camera uploads a night frame with a person; the alert
appears in the open inbox by itself (no reload); the ranger acknowledges and resolves it with a
note, and the store holds that history. A viewer sees the inbox without buttons and a forged POST
from their session is refused; a POST without the CSRF token is refused; a wrong password is said
so plainly; the map shows every camera of the season and a silent camera as offline.

`PARDUS_DOCS_SCREENSHOTS=docs pytest tests/web/test_browser.py -k sqlite` refreshes docs/web-*.png.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from tests.live.test_queue_health import NIGHT, PERSON_SEED
from tests.web.helpers import backend_settings, shot, sign_in

from pardus.config import Settings
from pardus.live.cameras import add_camera
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.people.accounts import add_user
from pardus.simulate import render_frame, simulate_season
from pardus.simulate.load import import_season
from pardus.store import open_workspace
from pardus.store.models import Alert, AlertEvent, Camera, Deployment, Location, utcnow
from pardus.web.process import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed"),
]
PASSWORD = "kedr-2024-patrol"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("web-season") / "season"
    simulate_season(out, cameras=6, days=12, seed=3, frame_size=(320, 180), workers=1)
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, season: Path,
           tmp_path: Path) -> Iterator[tuple[ServerProcess, Settings, str]]:
    with backend_settings(request.param, tmp_path / "data") as settings:
        url = settings.database_url
        with open_workspace(settings) as ws:
            import_season(ws, season)
            token = add_camera(ws, "LIVE1")
            add_camera(ws, "SILENT", expected_interval_s=3600)
            with ws.db.session() as s:
                loc = s.scalars(select(Location).order_by(Location.id)).first()
                for cam, dlat in (("LIVE1", 0.01), ("SILENT", -0.01)):
                    s.add(Location(id=f"L-{cam}", name=f"post {cam}", plot=loc.plot, latitude=loc.latitude + dlat,
                                   longitude=loc.longitude + 0.01))
                    s.add(Deployment(id=f"D-{cam}", location_id=f"L-{cam}", camera_id=cam,
                                     start=utcnow() - timedelta(days=2)))
                silent = s.get(Camera, "SILENT")
                silent.last_seen = utcnow() - timedelta(hours=6)  # made silent: 6 h without a heartbeat
            add_user(ws, "ivanov", "ranger", password=PASSWORD, token=False)
            add_user(ws, "guest", "viewer", password=PASSWORD, token=False)
        rules = tmp_path / "rules.yaml"
        rules.write_text("window_minutes: 30\nrules:\n  - {name: people-at-night, kind: person, when: night}\n")
        server = ServerProcess(settings.data_dir, rules=rules, database_url=url).start()
        try:
            yield server, settings, token
        finally:
            server.stop()


def _sign_in(page, base: str, name: str, password: str = PASSWORD) -> None:
    sign_in(page, base, name, password)


def test_ranger_inbox_live_alert_ack_resolve_viewer_csrf_and_map(browser, served) -> None:
    server, settings, token = served
    base = server.url
    health = server.health()  # every background loop of the server reports itself alive
    assert health["ok"] and set(health["loops"]) == {"live-triage", "live-full", "alert-delivery"}
    assert all(health["loops"].values())
    ranger = browser.new_context(viewport=PHONE)
    page = ranger.new_page()
    # A wrong password is refused and said so plainly.
    _sign_in(page, base, "ivanov", "not the password")
    assert "Wrong user name or password" in page.inner_text("#signin-error")
    shot(page, "signin")
    _sign_in(page, base, "ivanov")
    page.wait_for_url(base + "/alerts")
    assert page.locator("li.alert").count() == 0
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#live-state:not(.off)")
    time.sleep(0.5)  # the stream is open before the upload

    frame = render_frame("person", night=True, seed=PERSON_SEED, when=NIGHT)
    r = httpx.post(f"{base}/api/v1/cameras/LIVE1/media", headers={"Authorization": f"Bearer {token}"},
                   files={"file": ("IMG_0001.JPG", frame, "image/jpeg")}, data={"seq": "1"}, timeout=30)
    assert r.status_code == 201, r.text
    uploaded = time.monotonic()
    page.wait_for_selector("li.alert", timeout=30_000)
    appeared = time.monotonic() - uploaded
    assert page.evaluate("window.__sameDocument === true"), "the inbox reloaded instead of updating in place"
    assert appeared < 15, f"the alert took {appeared:.1f} s to appear"
    card = page.locator("li.alert").first
    assert "person" in card.inner_text().lower() and "LIVE1" in card.inner_text()
    shot(page, "inbox-phone")
    alert_id = card.get_attribute("data-alert-id")

    # A POST without the CSRF token is refused, even from the ranger's own session.
    assert ranger.request.post(f"{base}/alerts/{alert_id}/ack", form={"note": "x"}).status == 403

    page.click(f"li.alert[data-alert-id='{alert_id}'] a.kind")
    page.wait_for_selector("#ack-button")
    page.fill("form[action$='/ack'] input[name=note]", "patrol 3 on its way <b>now</b>")
    page.click("#ack-button")
    page.wait_for_function("document.querySelector('#alert-status').textContent === 'acknowledged'")
    page.select_option("select[name=outcome]", "poachers detained")
    page.fill("textarea[name=note]", "two men with a snare line, handed to the police")
    page.click("#resolve-button")
    page.wait_for_function("document.querySelector('#alert-status').textContent === 'resolved'")
    assert "patrol 3 on its way <b>now</b>" in page.inner_text("table.history")  # text, not markup
    shot(page, "alert-phone")
    desk = browser.new_context(viewport={"width": 1280, "height": 900})
    dpage = desk.new_page()
    _sign_in(dpage, base, "ivanov")
    dpage.goto(f"{base}/alerts/{alert_id}")
    dpage.wait_for_selector("#minimap .leaflet-interactive")
    shot(dpage, "alert")
    dpage.goto(f"{base}/alerts?state=all")
    shot(dpage, "inbox")

    with open_workspace(settings) as ws, ws.db.session() as s:
        a = s.get(Alert, alert_id)
        assert (a.status, a.acknowledged_by, a.resolved_by, a.outcome) == (
            "resolved", "ivanov", "ivanov", "poachers detained")
        trail = [(e.action, e.by, e.details) for e in s.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id, AlertEvent.action != "sighting")
            .order_by(AlertEvent.id))]
        assert trail[0][0] == "created"
        assert ("acknowledged", "ivanov", {"note": "patrol 3 on its way <b>now</b>"}) in trail
        assert trail[-1] == ("resolved", "ivanov", {"outcome": "poachers detained",
                                                    "note": "two men with a snare line, handed to the police"})

    # The viewer sees the inbox, with no buttons; a forged POST from their session is refused.
    viewer = browser.new_context(viewport=PHONE)
    vpage = viewer.new_page()
    _sign_in(vpage, base, "guest")
    vpage.goto(f"{base}/alerts?state=all")
    vpage.wait_for_selector("li.alert")
    assert vpage.locator("button.ack").count() == 0
    vpage.goto(f"{base}/alerts/{alert_id}")
    assert vpage.locator("#ack-button, #resolve-button").count() == 0
    csrf = vpage.locator("form.signout input[name=csrf_token]").get_attribute("value")
    forged = viewer.request.post(f"{base}/alerts/{alert_id}/ack", form={"note": "x", "csrf_token": csrf})
    assert forged.status == 403
    with open_workspace(settings) as ws, ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(AlertEvent).where(
            AlertEvent.alert_id == alert_id, AlertEvent.by == "guest")) == 0

    # The map shows every camera of the season; the silent one is offline.
    dpage.goto(f"{base}/map")
    dpage.wait_for_selector("#map[data-loaded]")
    with open_workspace(settings) as ws, ws.db.session() as s:
        placed = s.scalar(select(func.count()).select_from(Deployment).join(Location)
                          .where(Location.latitude.is_not(None)))
    assert int(dpage.get_attribute("#map", "data-loaded")) == placed >= 8
    assert dpage.locator("path[data-station]").count() == placed
    assert dpage.get_attribute("path[data-station='D-SILENT']", "data-state") == "offline"
    assert dpage.locator(".leaflet-control-scale").count() == 1
    assert dpage.locator("img.leaflet-tile").count() == 0  # no tile server: nothing is fetched from elsewhere
    dpage.locator("path[data-station='D-SILENT']").click(force=True)
    dpage.wait_for_selector("#station h2")
    assert "offline" in dpage.inner_text("#station") and "silent" in dpage.inner_text("#station")
    shot(dpage, "map")

    dpage.goto(f"{base}/overview")
    assert dpage.locator("table.overview").count() == 2
    rows = dpage.locator("table.overview").nth(1).locator("tbody tr").count()
    with open_workspace(settings) as ws, ws.db.session() as s:
        assert rows == s.scalar(select(func.count()).select_from(Deployment))
    shot(dpage, "overview")
    for ctx in (ranger, desk, viewer):
        ctx.close()


def test_no_request_leaves_the_machine(browser, served) -> None:
    """Every page loads only from the Pardus server itself (a field station is offline)."""
    server, _settings, _token = served
    ctx = browser.new_context()
    page = ctx.new_page()
    foreign: list[str] = []
    page.on("request", lambda r: foreign.append(r.url) if not r.url.startswith(server.url) else None)
    _sign_in(page, server.url, "ivanov")
    for path in ("/alerts", "/map", "/overview"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
    assert foreign == []
    ctx.close()
