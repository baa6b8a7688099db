"""Online sensors: tokens like cameras, readings over HTTP, real EPA and RAWS series, nothing twice."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.store import open_workspace
from pardus.store.models import Sensor, SensorReading
from pardus.telemetry.movebank import TelemetryFileError
from pardus.telemetry.sensors import add_sensor, import_sensor_file, issue_token, parse_sensor_csv, series

EPA = "sensors/epa-pm25-sf-bay-2020/ad_viz_plotval_data.csv"
RAWS = "sensors/raws-bndc1-2023-04/wx_station-BNDC1-20230411-t0755z.csv"


def _count(s) -> int:
    return s.scalar(select(func.count()).select_from(SensorReading))


def test_real_epa_and_raws_series_in_once(shared_data: Path, sqlite_settings) -> None:
    with pytest.raises(TelemetryFileError, match="--utc-offset"):
        parse_sensor_csv((shared_data / EPA).read_text(), "epa.csv")
    with open_workspace(sqlite_settings) as ws:
        with ws.db.session() as s:
            epa = import_sensor_file(s, shared_data / EPA, utc_offset_minutes=-480)
            raws = import_sensor_file(s, shared_data / RAWS)
        assert (epa.rows, epa.readings, epa.stored) == (3617, 3617, 3617)
        assert len(epa.sensors_added) == 12
        assert raws.rows == 24 and raws.stored == raws.readings and raws.sensors_added == ["BNDC1"]
        assert raws.readings + raws.empty_cells == 24 * 18
        with ws.db.session() as s:
            again = (import_sensor_file(s, shared_data / EPA, utc_offset_minutes=-480),
                     import_sensor_file(s, shared_data / RAWS))
            assert [a.stored for a in again] == [0, 0] and _count(s) == 3617 + raws.stored
            oakland = next(x for x in s.scalars(select(Sensor)) if x.name == "Oakland")
            peak = max(series(s, oakland.id, "pm25"), key=lambda r: r[2])
            assert peak[2] == pytest.approx(167.7) and peak[0].date().isoformat() == "2020-09-11"
            fm = series(s, "BNDC1", "fuel-moisture")
            assert len(fm) == 24 and fm[0][3] == "gm"
            station = s.get(Sensor, "BNDC1")
            assert station.kind == "weather" and station.latitude == pytest.approx(37.13094)


@pytest.mark.parametrize(("text", "says"), [
    ("sensor,time,kind,value\nS1,2024-05-01 06:30,pm25,12\n", "has no time zone"),
    ("sensor,time,kind,value\nS1,2024-05-01T06:30Z,pm25,abc\n", "is not a number"),
    ("sensor,time,kind,value\nS1,2024-05-01T06:30Z,pm25,nan\n", "not a finite number"),
    ("sensor,time,kind,value\n../x,2024-05-01T06:30Z,pm25,1\n", "is not a sensor id"),
    ("a,b\n1,2\n", "not a sensor file"),
])
def test_bad_sensor_files_refused(text: str, says: str) -> None:
    with pytest.raises(TelemetryFileError) as err:
        parse_sensor_csv(text, "bad.csv")
    assert says in str(err.value)


def test_readings_over_http_with_the_sensors_own_token(workspace) -> None:
    from pardus.web.app import create_app
    from pardus.web.deps import LiveConfig

    with workspace.db.session() as s:
        add_sensor(s, "PM25-07", "pm25", latitude=43.12, longitude=131.4)
        add_sensor(s, "SMOKE-1", "smoke")
        s.flush()
        token = issue_token(s, "PM25-07")
        other = issue_token(s, "SMOKE-1")
    app = create_app(workspace, LiveConfig(pipeline=False))  # pardus serve's app: the sensors' routes included
    url = "/api/v1/sensors/PM25-07/readings"
    body = {"readings": [{"time": "2024-05-01T06:30:00+10:00", "kind": "pm25", "value": 12.5, "unit": "ug/m3"},
                         {"time": "2024-05-01T07:30:00+10:00", "kind": "pm25", "value": 88.0, "unit": "ug/m3"}]}
    with TestClient(app) as c:
        assert c.post(url, json=body).status_code == 401
        assert c.post(url, json=body, headers={"Authorization": f"Bearer {other}"}).status_code == 401
        unknown = c.post("/api/v1/sensors/NOPE/readings", json=body, headers={"Authorization": f"Bearer {token}"})
        wrong = c.post(url, json=body, headers={"Authorization": "Bearer pds.PM25-07.guess"})
        # an unknown id is answered as a wrong token: probing does not list the sensors
        assert unknown.status_code == wrong.status_code == 401
        assert "wrong token" in unknown.json()["error"] and "wrong token" in wrong.json()["error"]
        auth = {"Authorization": f"Bearer {token}"}
        r = c.post(url, json=body, headers=auth)
        assert r.status_code == 200 and r.json() == {"stored": 2, "already": 0, "alerts": []}
        assert c.post(url, json=body, headers=auth).json() == {"stored": 0, "already": 2, "alerts": []}  # a retry
        bad = c.post(url, json={"time": "2024-05-01 08:30", "kind": "pm25", "value": 3}, headers=auth)
        assert bad.status_code == 400 and "no time zone" in bad.json()["error"]
        assert c.post(url, content=b"\xff{", headers=auth).status_code == 400
    with workspace.db.session() as s:
        assert [r[2] for r in series(s, "PM25-07")] == [12.5, 88.0]
        assert s.get(Sensor, "PM25-07").last_seen is not None


def test_sensors_cli(env: Path) -> None:
    from pardus.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["sensors", "add", "GATE-1", "--kind", "gate", "--lat", "43.1", "--lon", "131.3"])
    assert res.exit_code == 0 and "pds.GATE-1." in res.output
    assert runner.invoke(app, ["sensors", "add", "GATE-1", "--kind", "gate"]).exit_code == 1
    res = runner.invoke(app, ["sensors", "add", "X", "--kind", "lava"])
    assert res.exit_code == 1 and "is not one of" in res.output
    f = env / "gate.csv"
    f.write_text("sensor,time,kind,value,unit\nGATE-1,2024-05-01T06:30:00+10:00,vehicles,3,count\n")
    res = runner.invoke(app, ["sensors", "import", str(f)])
    assert res.exit_code == 0 and "1 stored" in res.output
    res = runner.invoke(app, ["sensors", "list"])
    assert res.exit_code == 0 and "GATE-1" in res.output


def test_smoke_frame_pm25_rise_and_hotspot_are_one_alert(shared_data: Path, tmp_path: Path, sqlite_settings) -> None:
    """A camera's smoke alert, a PM2.5 rise posted over HTTP by a sensor beside it and a FIRMS file
    with hotspots near it: one alert, the three pieces of evidence attached."""
    from datetime import timedelta

    from tests.telemetry.helpers import MODIS_24H, SEEN, khasansky_park

    from pardus.alerts.lifecycle import raise_alert
    from pardus.store.models import Alert, AlertEvent
    from pardus.telemetry.fire import import_hotspots
    from pardus.telemetry.firms import read_firms
    from pardus.web.app import create_app
    from pardus.web.deps import LiveConfig

    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text("""
window_minutes: 120
rules:
  - {name: smoke, kind: smoke}
  - {name: pm25-rise, kind: sensor, readings: [pm25], rise: 25, over_minutes: 120, within_m: 3000}
  - {name: fire-hotspot, kind: hotspot, within_m: 3000}
channels:
  - {type: webhook, name: rangers, url: "http://127.0.0.1:9/hook"}
""")
    from pardus.alerts.rules import load_rules

    rules = load_rules(rules_file)
    now = datetime.now(UTC)
    with open_workspace(sqlite_settings) as ws:
        with ws.db.session() as s:
            khasansky_park(s)
            add_sensor(s, "PM25-1", "pm25", latitude=42.896, longitude=131.339)
            s.flush()
            token = issue_token(s, "PM25-1")
            smoke = raise_alert(s, kind="smoke", rule="smoke", severity="high", camera_id="CAM0", deployment_id="D0",
                                media_id="photo-1", evidence={"source": "camera", "best_score": 0.8},
                                window=timedelta(minutes=120), now=now - timedelta(minutes=20)).alert.id
        app = create_app(ws, LiveConfig(pipeline=False, rules_path=rules_file))
        t0 = now - timedelta(minutes=30)
        body = {"readings": [{"time": (t0 + timedelta(minutes=10 * i)).isoformat(), "kind": "pm25",
                              "value": v, "unit": "ug/m3"} for i, v in enumerate([8, 9, 12, 60])]}
        with TestClient(app) as c:
            r = c.post("/api/v1/sensors/PM25-1/readings", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["stored"] == 4 and r.json()["alerts"] == []  # joined the smoke
        parsed = read_firms(shared_data / "fire-firms" / MODIS_24H)
        # the file's passes moved to "now", as if downloaded minutes after the overpass
        shift = now - SEEN
        parsed.hotspots = [type(h)(**{**h.__dict__, "acquired": h.acquired + shift}) for h in parsed.hotspots]
        with ws.db.session() as s:
            rep = import_hotspots(s, parsed, rules, now=now)
        assert rep.alerts_created == [] and rep.alerts_joined == 4
        with ws.db.session() as s:
            (alert,) = s.scalars(select(Alert)).all()
            assert alert.id == smoke and alert.details["sightings"] == 6
            sources = [e.details.get("source") for e in s.scalars(
                select(AlertEvent).where(AlertEvent.alert_id == smoke, AlertEvent.action == "sighting"))]
            assert sources == ["sensor"] + ["NASA FIRMS"] * 4
            ev = s.scalars(select(AlertEvent).where(AlertEvent.details["source"].as_string() == "sensor")).one()
            assert ev.details["rise"] == 52 and ev.details["nearest_cameras"][0]["camera_id"] == "CAM0"


def test_sensor_rules_checked_and_old_series_wake_nobody(shared_data: Path, sqlite_settings) -> None:
    from pardus.alerts.rules import RulesError, parse_rules

    with pytest.raises(RulesError, match="needs 'above: LEVEL' and/or 'rise: AMOUNT'"):
        parse_rules("rules:\n  - {name: pm, kind: sensor}\n")
    rules = parse_rules("rules:\n  - {name: smoky, kind: sensor, readings: [pm25], above: 35.45}\n")
    with open_workspace(sqlite_settings) as ws, ws.db.session() as s:
        rep = import_sensor_file(s, shared_data / EPA, utc_offset_minutes=-480, rules=rules)
    # the 117 site-days above the US 24-h "unhealthy for sensitive groups" breakpoint, all from 2020
    assert rep.alerts.too_old == 117 and rep.alerts.created == []
