"""Satellite fire: every real FIRMS layout in once, hotspots placed against the park, one fire alert."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.telemetry.helpers import MODIS_24H, SEEN, khasansky_park
from typer.testing import CliRunner

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.notify import channels_from
from pardus.alerts.rules import MediaFacts, evaluate, load_rules, parse_rules
from pardus.store import open_workspace
from pardus.store.models import Alert, AlertEvent, FireHotspot
from pardus.telemetry.fire import import_hotspots
from pardus.telemetry.firms import parse_firms, read_firms
from pardus.telemetry.movebank import TelemetryFileError

FILES = {
    "russia-asia-viirs-snpp-24h-2021-09-29/SUOMI_VIIRS_C2_Russia_Asia_24h.csv": (6226, "24h-text", "VIIRS"),
    "global-modis-24h-2025-11-18/MODIS_C6_1_Global_24h.csv": (6624, "24h-text", "MODIS"),
    "czu-2020-modis-archive/fire_archive_M-C61_271846.csv.gz": (45429, "archive", "MODIS"),
    "czu-2020-viirs-noaa20-nrt/viirs-1-081620-092220.csv.gz": (21024, "download", "VIIRS"),
    "ukraine-2021-viirs-snpp-archive/fire_archive_SV-C2_272178.csv": (10057, "archive", "VIIRS"),
}
def test_every_real_firms_file_in_once(shared_data: Path, sqlite_settings) -> None:
    rules = load_rules(None)
    with open_workspace(sqlite_settings) as ws:
        for name, (rows, layout, instrument) in FILES.items():
            parsed = read_firms(shared_data / "fire-firms" / name)
            assert (parsed.rows, parsed.layout) == (rows, layout), name
            assert {h.instrument for h in parsed.hotspots} == {instrument}
            with ws.db.session() as s:
                rep = import_hotspots(s, parsed, rules, now=SEEN)
            assert rep.stored == rows and rep.already == 0 and rep.note  # no cameras yet
            with ws.db.session() as s:
                again = import_hotspots(s, parsed, rules, now=SEEN)
            assert (again.stored, again.already) == (0, rows)
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(FireHotspot)) == sum(v[0] for v in FILES.values())
            sats = set(s.scalars(select(FireHotspot.satellite).distinct()))
        assert sats == {"Suomi NPP", "NOAA-20", "Terra", "Aqua"}


def test_hotspots_in_the_park_raise_one_fire_alert(shared_data: Path, sqlite_settings) -> None:
    rules = parse_rules("""
window_minutes: 120
rules:
  - {name: fire-hotspot, kind: hotspot, within_m: 3000, min_score: 20}
channels:
  - {type: webhook, name: rangers, url: "http://127.0.0.1:9/hook"}
""")
    parsed = read_firms(shared_data / "fire-firms" / MODIS_24H)
    with open_workspace(sqlite_settings) as ws:
        with ws.db.session() as s:
            khasansky_park(s)
            rep = import_hotspots(s, parsed, rules, channels=channels_from(rules.channels), now=SEEN)
        # the four Slavyanka detections (05:59 Aqua pass) lie inside the cameras' outline or within 3 km;
        # Nadezhdinsky (45 km) and the rest of the world do not
        assert rep.in_park == 4 and len(rep.alerts_created) == 1 and rep.alerts_joined == 3
        with ws.db.session() as s:
            (alert,) = s.scalars(select(Alert)).all()
            assert alert.kind == "fire" and alert.camera_id == "CAM0" and alert.details["sightings"] == 4
            assert alert.details["deliveries"] == {"rangers": {"status": "pending", "tries": 0}}
            ev = alert.details["evidence"]
            assert ev["source"] == "NASA FIRMS" and ev["nearest_cameras"][0]["location_id"] == "L0"
            placed = s.scalars(select(FireHotspot).where(FireHotspot.in_park.is_(True))).all()
            assert {h.alert_id for h in placed} == {alert.id} and all(h.location_id == "L0" for h in placed)
        with ws.db.session() as s:
            again = import_hotspots(s, parsed, rules, now=SEEN)
        assert again.stored == 0 and again.alerts_created == [] and again.alerts_joined == 0
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(AlertEvent)) == 4  # created + 3 sightings


def test_a_hotspot_joins_the_cameras_own_fire_alert(shared_data: Path, sqlite_settings) -> None:
    rules = parse_rules("rules:\n  - {name: fire-hotspot, kind: hotspot, within_m: 3000}\n")
    parsed = read_firms(shared_data / "fire-firms" / MODIS_24H)
    with open_workspace(sqlite_settings) as ws:
        with ws.db.session() as s:
            khasansky_park(s)
            camera_alert = raise_alert(s, kind="fire", rule="fire", severity="critical", camera_id="CAM0",
                                       deployment_id="D0", media_id="photo-1", evidence={"best_score": 0.9},
                                       window=timedelta(minutes=30), now=SEEN - timedelta(minutes=5)).alert.id
            rep = import_hotspots(s, parsed, rules, now=SEEN)
        assert rep.alerts_created == [] and rep.alerts_joined == 4
        with ws.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Alert)) == 1
            kinds = [e.details.get("source") for e in s.scalars(select(AlertEvent).where(
                AlertEvent.alert_id == camera_alert, AlertEvent.action == "sighting"))]
            assert kinds == ["NASA FIRMS"] * 4


def test_old_hotspots_are_placed_but_wake_nobody(shared_data: Path, sqlite_settings) -> None:
    parsed = read_firms(shared_data / "fire-firms" / MODIS_24H)
    with open_workspace(sqlite_settings) as ws, ws.db.session() as s:
        khasansky_park(s)
        rep = import_hotspots(s, parsed, load_rules(None))  # now: a year after the file
        assert rep.in_park == 4 and rep.too_old_to_alert == 4 and rep.alerts_created == []


def test_hotspot_rules_never_fire_on_photos() -> None:
    rules = load_rules(None)
    assert rules.for_kind("hotspot")
    facts = MediaFacts("m", "c", "d", SEEN, False, (131.0, 43.0), False, boxes={"fire": [{"score": 0.9}]})
    assert [h.rule.kind for h in evaluate(rules, facts)] == ["fire"]


HEAD = "latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence,version,bright_t31,frp,daynight"


@pytest.mark.parametrize(("text", "says"), [
    ("lat,lon,when\n1,2,3\n", "not a FIRMS hotspot file"),
    ("latitude,longitude,acq_date,acq_time\n1,2,2024-01-01,0101\n", "instrument cannot be told"),
    (f"{HEAD}\nabc,131,300,1,1,2025-11-18,0034,T,20,6.1NRT,280,10,D\n", "latitude 'abc' is not a number"),
    (f"{HEAD}\n95,131,300,1,1,2025-11-18,0034,T,20,6.1NRT,280,10,D\n", "outside the Earth's range"),
    (f"{HEAD}\n42,131,300,1,1,2025-11-18,25:61,T,20,6.1NRT,280,10,D\n", "is not YYYY-MM-DD HHMM"),
    (f"{HEAD}\n42,131,300,1,1,18/11/2025,0034,T,20,6.1NRT,280,10,D\n", "is not YYYY-MM-DD HHMM"),
    (f"{HEAD}\n42,131,300,1,1,2025-11-18,0034,T,120,6.1NRT,280,10,D\n", "nor 0-100"),
    (f"{HEAD}\n42,131,300,1,1,2025-11-18,0034,T,20,6.1NRT,280,10\n", "fields where the header has"),
    (f"{HEAD}\n{HEAD}\n", "second header"),
])
def test_bad_firms_files_refused(text: str, says: str) -> None:
    with pytest.raises(TelemetryFileError) as err:
        parse_firms(text, "bad.csv")
    assert says in str(err.value)


def test_fire_cli_import_and_watched_folder(shared_data: Path, env: Path) -> None:
    from pardus.cli import app
    from pardus.config import get_settings

    drop = env / "drop"
    drop.mkdir()
    src = shared_data / "fire-firms" / MODIS_24H
    (drop / "modis.csv").write_bytes(src.read_bytes())
    (drop / "broken.csv").write_text(f"{HEAD}\n95,131,300,1,1,2025-11-18,0034,T,20,6.1NRT,280,10,D\n")
    runner = CliRunner()
    res = runner.invoke(app, ["fire", "watch", str(drop), "--once"])
    assert res.exit_code == 0, res.output
    assert (drop / "imported" / "modis.csv").is_file() and (drop / "refused" / "broken.csv").is_file()
    assert "outside the Earth's range" in (drop / "refused" / "broken.csv.reason.txt").read_text()
    res = runner.invoke(app, ["fire", "import", str(src)])
    assert res.exit_code == 0 and "0 stored, 6624 already stored" in res.output.replace("\n", " ")
    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        assert s.scalar(select(func.count()).select_from(FireHotspot)) == 6624
