"""Combination rules in-process: a camera's smoke alert, a PM2.5 rise posted over HTTP and a real
FIRMS hotspot near them become one 'fire' alert carrying all three, delivered once to the channel
that asked for fire; fewer signs than asked raise nothing; rules checked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.telemetry.helpers import MODIS_24H, firms_text, khasansky_park

from pardus.alerts.lifecycle import raise_alert
from pardus.alerts.rules import RulesError, parse_rules
from pardus.store.models import Alert, Media
from pardus.telemetry.fire import import_hotspots
from pardus.telemetry.firms import parse_firms, read_firms
from pardus.telemetry.sensors import add_sensor, issue_token

RULES = """
window_minutes: 120
rules:
  - {name: smoke, kind: smoke}
  - {name: fire-confirmed, kind: combination, signals: [smoke, sensor, hotspot], readings: [pm25], rise: 25,
     within_m: 3000, over_minutes: 120}
channels:
  - {type: webhook, name: rangers, url: "http://127.0.0.1:9/hook", kinds: [fire]}
  - {type: webhook, name: people-desk, url: "http://127.0.0.1:9/people", kinds: [person]}
"""


def _smoke_photo(s, now: datetime) -> str:
    """CAM0's own smoke alert, raised from a stored photo (as the pipeline's camera rules do)."""
    s.add(Media(id="photo1", deployment_id="D0", file_path="DCIM/IMG_0001.JPG", file_name="IMG_0001.JPG",
                file_mediatype="image/jpeg", timestamp=now - timedelta(minutes=25)))
    s.flush()
    return raise_alert(s, kind="smoke", rule="smoke", severity="high", camera_id="CAM0", deployment_id="D0",
                       media_id="photo1", evidence={"count": 1, "best_score": 0.81},
                       window=timedelta(minutes=120), now=now - timedelta(minutes=25)).alert.id


def _readings(t0: datetime, values: list[float]) -> dict:
    return {"readings": [{"time": (t0 + timedelta(minutes=10 * i)).isoformat(), "kind": "pm25", "value": v,
                          "unit": "ug/m3"} for i, v in enumerate(values)]}


def test_three_signs_one_fire_alert_with_all_evidence(shared_data: Path, workspace_sqlite, tmp_path: Path) -> None:
    from pardus.web.app import LiveConfig, create_app

    ws = workspace_sqlite
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES)
    rules = parse_rules(RULES)
    now = datetime.now(UTC)
    with ws.db.session() as s:
        khasansky_park(s)
        add_sensor(s, "PM25-1", "pm25", latitude=42.896, longitude=131.339)
        s.flush()
        token = issue_token(s, "PM25-1")
        smoke_id = _smoke_photo(s, now)
    with TestClient(create_app(ws, LiveConfig(pipeline=False, rules_path=rules_file))) as c:
        r = c.post("/api/v1/sensors/PM25-1/readings", json=_readings(now - timedelta(minutes=30), [8, 9, 12, 60]),
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["alerts"] == []  # smoke and a rise: two of the three signs
    parsed = read_firms(shared_data / "fire-firms" / MODIS_24H)
    passed = max(h.acquired for h in parsed.hotspots if 42.8 < h.latitude < 43.0 and 131.2 < h.longitude < 131.4)
    shift = now - timedelta(minutes=5) - passed  # the file moved so its Slavyanka pass was minutes ago
    parsed.hotspots = [type(h)(**{**h.__dict__, "acquired": h.acquired + shift}) for h in parsed.hotspots]
    from pardus.alerts.notify import channels_from

    with ws.db.session() as s:
        rep = import_hotspots(s, parsed, rules, channels=channels_from(rules.channels), now=now)
    assert len(rep.alerts_created) == 1 and rep.combined_joined == 3  # the other three hotspots: raised already
    with ws.db.session() as s:
        fire = s.get(Alert, rep.alerts_created[0])
        ev = fire.details["evidence"]
        assert (fire.kind, fire.camera_id, fire.details["rule"], fire.details["severity"]) == (
            "fire", "CAM0", "fire-confirmed", "critical")
        assert ev["agree"] == ["smoke", "sensor", "hotspot"]
        (smoke,) = ev["signals"]["smoke"]
        assert (smoke["alert_id"], smoke["media_id"], smoke["best_score"]) == (smoke_id, "photo1", 0.81)
        (sensor,) = ev["signals"]["sensor"]
        assert (sensor["sensor"], sensor["value"], sensor["rise"]) == ("PM25-1", 60, 52)
        assert len(ev["signals"]["hotspot"]) == 4 and {h["satellite"] for h in ev["signals"]["hotspot"]} == {"Aqua"}
        assert all(h["distance_m"] <= 3000 for h in ev["signals"]["hotspot"])
        # Delivered once, to the channel that asked for fire; the smoke alert went to nobody.
        assert fire.details["deliveries"] == {"rangers": {"status": "pending", "tries": 0}}
        assert s.get(Alert, smoke_id).details["deliveries"] == {}
        assert len(s.scalars(select(Alert).where(Alert.kind == "fire")).all()) == 1
        # The same file again, or another rise in the window: nothing more.
        assert import_hotspots(s, parsed, rules, now=now).alerts_created == []


def test_fewer_signs_than_asked_raise_nothing_and_min_signals(workspace_sqlite) -> None:
    now = datetime.now(UTC)
    rules = parse_rules(RULES)
    two = parse_rules(RULES.replace("over_minutes: 120}", "over_minutes: 120, min_signals: 2}"))
    spot = firms_text([(now - timedelta(minutes=10), 131.338, 42.896)])
    with workspace_sqlite.db.session() as s:
        khasansky_park(s)
        # A hotspot beside CAM0 with no smoke and no sensor: all three asked, nothing raised.
        assert import_hotspots(s, parse_firms(spot, "a.csv"), rules, now=now).alerts_created == []
        _smoke_photo(s, now)
        # Two of three, when two are enough: a fire alert at CAM0.
        spot2 = firms_text([(now - timedelta(minutes=8), 131.336, 42.894)])
        rep = import_hotspots(s, parse_firms(spot2, "b.csv"), two, now=now)
        assert len(rep.alerts_created) == 1
        assert s.get(Alert, rep.alerts_created[0]).details["evidence"]["agree"] == ["smoke", "hotspot"]
        # A hotspot 50 km away completes nothing.
        far = firms_text([(now - timedelta(minutes=5), 131.0, 42.5)])
        assert import_hotspots(s, parse_firms(far, "c.csv"), two, now=now).alerts_created == []


@pytest.mark.parametrize(("doc", "says"), [
    ("  - {name: c, kind: combination}", "needs 'signals:'"),
    ("  - {name: c, kind: combination, signals: [smoke, lava]}", "needs 'signals:'"),
    ("  - {name: c, kind: combination, signals: [smoke, hotspot], min_signals: 3}", "between 1 and"),
    ("  - {name: c, kind: combination, signals: [smoke, hotspot], min_signals: two}", "between 1 and"),
    ("  - {name: c, kind: combination, signals: [sensor, hotspot]}", "needs 'above' and/or 'rise'"),
])
def test_combination_rules_checked(doc: str, says: str) -> None:
    with pytest.raises(RulesError, match=says):
        parse_rules("rules:\n" + doc + "\n")


def test_a_smoke_photo_arriving_last_completes_the_combination_at_once(workspace_sqlite) -> None:
    """The PM2.5 rise and the satellite pass are in first; the camera's smoke frame, triaged by the
    live worker, is the sign that completes the rule: the fire alert is raised then, not at the
    next sensor reading, and once."""
    from pardus.live.queue import LiveWorker
    from pardus.store.models import Detection
    from pardus.telemetry.sensors import Reading, alert_on_readings, store_readings

    ws = workspace_sqlite
    now = datetime.now(UTC)
    rules = parse_rules(RULES.replace("over_minutes: 120}", "over_minutes: 120, min_signals: 3}"))
    with ws.db.session() as s:
        khasansky_park(s)
        add_sensor(s, "PM25-1", "pm25", latitude=42.896, longitude=131.339)
        s.flush()
        new, _ = store_readings(s, "PM25-1", [Reading(now - timedelta(minutes=30 - 10 * i), "pm25", v, "ug/m3")
                                              for i, v in enumerate([8, 9, 60])])
        assert alert_on_readings(s, "PM25-1", new, rules, now=now).created == []  # one sign of three
        spot = firms_text([(now - timedelta(minutes=10), 131.338, 42.896)])
        assert import_hotspots(s, parse_firms(spot, "a.csv"), rules, now=now).alerts_created == []  # two
        s.add(Media(id="photo9", deployment_id="D0", file_path="DCIM/IMG_0009.JPG", file_name="IMG_0009.JPG",
                    file_mediatype="image/jpeg", timestamp=now - timedelta(minutes=2)))
        s.flush()
        s.add(Detection(media_id="photo9", category="smoke", score=0.8, x=0.1, y=0.1, w=0.5, h=0.3,
                        model_name="fire-head", model_version="1"))
    worker = LiveWorker(ws, rules)
    created = worker.alert_on(["photo9"])
    with ws.db.session() as s:
        kinds = sorted(s.get(Alert, a).kind for a in created)
        assert kinds == ["fire", "smoke"]
        fire = next(s.get(Alert, a) for a in created if s.get(Alert, a).kind == "fire")
        assert fire.details["evidence"]["agree"] == ["smoke", "sensor", "hotspot"]
        assert fire.details["evidence"]["trigger"] == "photo:photo9"
    assert worker.alert_on(["photo9"]) == []  # the same photo again raises nothing twice
