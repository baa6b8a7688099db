"""The web app's telemetry views in-process: the map's layers, an individual's collar track, the
sensors' pages and plots; places rounded for a viewer; hostile input answered plainly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from tests.telemetry.helpers import TRACK_START, collared_park

from pardus.people.accounts import add_user
from pardus.telemetry.plot import series_svg
from pardus.web.app import LiveConfig, create_app


@pytest.fixture
def park(workspace_sqlite):
    with workspace_sqlite.db.session() as s:
        collared_park(s)
    tokens = {role: add_user(workspace_sqlite, role, role, token=True) for role in ("ranger", "viewer")}
    with TestClient(create_app(workspace_sqlite, LiveConfig(pipeline=False))) as client:
        yield client, {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}


def test_map_layers_tracks_hotspots_sensors_and_rounding(park) -> None:
    client, auth = park
    assert client.get("/api/v1/map/layers").status_code == 401
    data = client.get("/api/v1/map/layers", headers=auth["ranger"]).json()
    (track,) = data["tracks"]
    assert (track["tag_id"], track["individual"], track["fixes"], track["rounded"]) == ("TAG-LEO7", "LEO_007", 49,
                                                                                        False)
    assert track["points"][0] == [42.9, 131.3, int(TRACK_START.timestamp())]
    assert [h["time"] for h in data["hotspots"]] == [int((TRACK_START + timedelta(hours=h)).timestamp())
                                                     for h in (12, 42)]
    assert all(h["in_park"] for h in data["hotspots"])
    (sensor,) = data["sensors"]
    assert sensor["id"] == "PM25-1" and sensor["latest"]["pm25"]["unit"] == "ug/m3"
    assert data["span"] == [int(TRACK_START.timestamp()), int((TRACK_START + timedelta(hours=48)).timestamp())]

    # A viewer sees the collar rounded to 0.1°, each rounded place once; hotspots and sensors exactly.
    seen = client.get("/api/v1/map/layers", headers=auth["viewer"]).json()
    vt = seen["tracks"][0]
    assert vt["rounded"] and vt["fixes"] == 49
    assert {(p[0], p[1]) for p in vt["points"]} <= {(round(la, 1), round(lo, 1)) for la in (42.9, 43.0)
                                                   for lo in (131.3, 131.4)}
    assert len(vt["points"]) < 5
    assert seen["hotspots"] == data["hotspots"] and seen["sensors"] == data["sensors"]

    # A period, thinning, and bad requests answered plainly.
    day1 = client.get("/api/v1/map/layers?from=2025-06-01&to=2025-06-01", headers=auth["ranger"]).json()
    assert len(day1["tracks"][0]["points"]) == 24 and len(day1["hotspots"]) == 1
    thin = client.get("/api/v1/map/layers?max_points=10", headers=auth["ranger"]).json()["tracks"][0]
    assert thin["thinned_every"] == 5 and len(thin["points"]) == 11 and thin["points"][-1] == track["points"][-1]
    for q, says in (("from=yesterday", "must be a day"), ("from=2025-06-03&to=2025-06-01", "must not be before")):
        r = client.get(f"/api/v1/map/layers?{q}", headers=auth["ranger"])
        assert r.status_code == 400 and says in r.json()["error"]
    assert client.get("/api/v1/map/layers?max_points=0", headers=auth["ranger"]).status_code in (400, 422)


def test_individual_track_and_pages(park) -> None:
    client, auth = park
    r = client.get("/api/v1/individuals/LEO_007/track", headers=auth["viewer"])
    assert r.status_code == 200 and r.json()["tracks"][0]["rounded"]
    exact = client.get("/api/v1/individuals/LEO_007/track", headers=auth["ranger"]).json()["tracks"][0]
    assert len(exact["points"]) == 49 and not exact["rounded"]
    assert client.get("/api/v1/individuals/NOPE/track", headers=auth["ranger"]).status_code == 404
    assert client.get("/api/v1/individuals/" + "X" * 40 + "/track", headers=auth["ranger"]).status_code == 404
    page = client.get("/individuals/LEO_007", headers=auth["viewer"])
    assert page.status_code == 200 and 'data-code="LEO_007"' in page.text and 'id="track-note"' in page.text
    m = client.get("/map", headers=auth["viewer"])
    assert 'id="map-time"' in m.text and 'id="layers-note"' in m.text


def test_sensor_pages_plot_and_escaping(park) -> None:
    client, auth = park
    listing = client.get("/sensors", headers=auth["viewer"])
    assert listing.status_code == 200 and 'data-sensor="PM25-1"' in listing.text
    assert "<b>mast</b>" not in listing.text and "&lt;b&gt;mast&lt;/b&gt;" in listing.text
    page = client.get("/sensors/PM25-1", headers=auth["viewer"])
    assert page.status_code == 200 and 'data-kind="pm25" data-readings="24"' in page.text
    assert "<b>mast</b>" not in page.text
    svg = client.get("/sensors/PM25-1/plot.svg?kind=pm25", headers=auth["viewer"])
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(svg.text)  # well-formed XML
    assert root.get("data-points") == "24" and "highest 48" in root.get("aria-label")
    assert client.get("/sensors/PM25-1?days=1", headers=auth["viewer"]).status_code == 200
    assert client.get("/sensors/NOPE", headers=auth["viewer"]).status_code == 404
    assert client.get("/sensors/..%2Fetc", headers=auth["viewer"]).status_code == 404
    assert client.get("/sensors/PM25-1?days=0", headers=auth["viewer"]).status_code in (400, 422)
    assert client.get("/sensors/PM25-1/plot.svg?kind=%3Cscript%3E", headers=auth["viewer"]).status_code == 400
    assert client.get("/sensors/PM25-1/plot.svg?kind=pm25").status_code == 401


def test_series_svg_keeps_spikes_of_a_long_series_and_escapes_text() -> None:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    times = [t0 + timedelta(minutes=i) for i in range(100_000)]
    values = [10.0 + (i % 7) * 0.1 for i in range(100_000)]
    values[54_321] = 500.0  # one spike among 100k readings must still reach the top of the plot
    svg = series_svg(times, values, title="S1 <pm25>", unit='ug"m3')
    root = ET.fromstring(svg)
    line = root.find("{http://www.w3.org/2000/svg}polyline").get("points").split()
    assert len(line) < 2000 and len(svg) < 100_000
    assert min(float(p.split(",")[1]) for p in line) == pytest.approx(18.0)  # the top of the plot area
    assert "<pm25>" not in svg and "&lt;pm25&gt;" in svg
    empty = series_svg([t0], [None], title="x")
    assert "no numeric readings" in empty and ET.fromstring(empty) is not None
