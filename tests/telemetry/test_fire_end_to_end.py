"""Issue 22's end-to-end fire test, on a real `pardus serve` on loopback (SQLite, the full pipeline):

a camera uploads a smoke frame (the park's fire head, taught from rendered frames, finds it), a
PM2.5 sensor beside it posts a rise over HTTP, and the real MODIS 24-hour file, its Slavyanka pass
moved to minutes ago, is dropped into the folder `pardus fire watch` looks at. The park's rules say:
the camera's own smoke alerts for the smoke desk, and a fire when all three signs agree within
3 km and 2 hours (a combination). Exactly one fire alert reaches the rangers' webhook (a server on
loopback), carrying the three pieces of evidence: the photo, the sensor's rise and the hotspots.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from tests.live.helpers import Receiver
from tests.telemetry.helpers import MODIS_24H

from pardus.config import Settings
from pardus.live.cameras import add_camera
from pardus.models.registry import COCO_SSD, DINOV2_VITS14, YOLOX_TINY
from pardus.store import open_workspace
from pardus.store.models import Alert, Camera, Deployment, Location, Media, Observation, utcnow
from pardus.telemetry.sensors import add_sensor, issue_token
from pardus.web.process import ServerProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (DINOV2_VITS14.available() and YOLOX_TINY.available() and COCO_SSD.available()),
                       reason="the fire head needs DINOv2 and the pipeline its detectors"),
]
REPO = Path(__file__).resolve().parents[2]
# Rendered frames a ranger labelled on the review desk: smoke, and frames without any hazard.
TEACH = [("smoke", s) for s in range(1, 5)] + [("blank", 1), ("blank", 2), ("animal", 1), ("animal", 2)]
RULES = """
window_minutes: 120
rules:
  - {{name: smoke, kind: smoke}}
  - {{name: fire-confirmed, kind: combination, signals: [smoke, sensor, hotspot], readings: [pm25], rise: 25,
     within_m: 3000, over_minutes: 120}}
channels:
  - {{type: webhook, name: rangers, url: "{url}/fire", kinds: [fire]}}
"""


def _teach_fire_head(ws, card: Path) -> None:
    """The park's fire head, taught from rendered frames as a ranger would from the review desk."""
    from pardus.ingest.card import import_card
    from pardus.pipeline.teach import train_head
    from pardus.simulate import render_frame

    card.mkdir(parents=True)
    t = datetime(2024, 7, 14, 12, 0)
    labels = {}
    for i, (content, seed) in enumerate(TEACH):
        name = f"IMG_{i:04d}.JPG"
        (card / name).write_bytes(render_frame(content, night=False, seed=seed, when=t + timedelta(minutes=9 * i)))
        labels[name] = content
    import_card(ws, card, "TEACH")
    with ws.db.session() as s:
        for m in s.scalars(select(Media)):
            content = labels[m.file_name]
            s.add(Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media",
                              observation_type="unknown" if content == "smoke" else
                              ("blank" if content == "blank" else "animal"),
                              comments="smoke" if content == "smoke" else None, classification_method="human",
                              classified_by="ranger", classification_timestamp=utcnow()))
    head, _ = train_head(ws, "fire", threshold=0.5)
    assert "smoke" in head.classes


def _firms_minutes_ago(src: Path, out: Path, minutes: int) -> None:
    """The real file, every row moved by the same amount so its Slavyanka pass was ``minutes`` ago."""
    rows = list(csv.reader(io.StringIO(src.read_text(), newline="")))
    head, body = rows[0], rows[1:]
    lat, lon, day, hhmm = (head.index(c) for c in ("latitude", "longitude", "acq_date", "acq_time"))

    def when(r: list[str]) -> datetime:
        return datetime.strptime(f"{r[day]} {int(r[hhmm]):04d}", "%Y-%m-%d %H%M").replace(tzinfo=UTC)

    passed = max(when(r) for r in body if 42.8 < float(r[lat]) < 43.0 and 131.2 < float(r[lon]) < 131.4)
    target = (datetime.now(UTC) - timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    shift = target - passed
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(head)
    for r in body:
        t = when(r) + shift
        r[day], r[hhmm] = f"{t:%Y-%m-%d}", f"{t:%H%M}"
        w.writerow(r)
    out.write_text(buf.getvalue())


@pytest.fixture(scope="module")
def park(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("fire-e2e")
    data = root / "data"
    hook = Receiver()
    with open_workspace(Settings(data_dir=data)) as ws:
        _teach_fire_head(ws, root / "card")
        cam_token = add_camera(ws, "CAM0")
        with ws.db.session() as s:
            # Three camera stations around the Slavyanka hotspot cluster of the real MODIS file.
            for i, (lon, lat) in enumerate([(131.337, 42.895), (131.25, 42.85), (131.25, 42.95)]):
                if i:
                    s.add(Camera(id=f"CAM{i}"))
                s.add(Location(id=f"L{i}", name=f"station {i}", plot="KH-1", latitude=lat, longitude=lon))
                s.add(Deployment(id=f"D{i}", location_id=f"L{i}", camera_id=f"CAM{i}",
                                 start=utcnow() - timedelta(days=2)))
            add_sensor(s, "PM25-1", "pm25", latitude=42.896, longitude=131.339)
            s.flush()
            sensor_token = issue_token(s, "PM25-1")
    rules = root / "rules.yaml"
    rules.write_text(RULES.format(url=hook.url))
    server = ServerProcess(data, rules=rules).start()
    try:
        yield {"server": server, "data": data, "rules": rules, "hook": hook, "root": root,
               "cam_token": cam_token, "sensor_token": sensor_token}
    finally:
        server.stop()
        hook.close()


def _wait(what: str, check, timeout_s: float) -> object:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"{what} did not happen in {timeout_s:.0f} s")


def test_smoke_frame_pm25_rise_and_dropped_firms_file_one_fire_alert_delivered(shared_data: Path, park) -> None:
    from pardus.simulate import render_frame

    server, data, hook = park["server"], park["data"], park["hook"]
    settings = Settings(data_dir=data)

    # 1. The camera uploads a smoke frame; the pipeline's fire head finds smoke: the camera's own alert.
    frame = render_frame("smoke", night=False, seed=101, when=datetime.now(UTC).replace(tzinfo=None))
    r = httpx.post(f"{server.url}/api/v1/cameras/CAM0/media", headers={"Authorization": f"Bearer {park['cam_token']}"},
                   files={"file": ("IMG_0101.JPG", frame, "image/jpeg")}, data={"seq": "101"}, timeout=60)
    assert r.status_code == 201, r.text

    def smoke_alert() -> Alert | None:
        with open_workspace(settings) as ws, ws.db.session() as s:
            return s.scalars(select(Alert).where(Alert.kind == "smoke", Alert.camera_id == "CAM0")).first()

    smoke = _wait("the camera's smoke alert", smoke_alert, 180)
    assert smoke.details["deliveries"] == {}  # the rangers' channel asked for fire, not for smoke

    # 2. The PM2.5 sensor beside it posts a rise over HTTP: two signs of three, nothing sent yet.
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    body = {"readings": [{"time": (t0 + timedelta(minutes=10 * i)).isoformat(), "kind": "pm25", "value": v,
                          "unit": "ug/m3"} for i, v in enumerate([8, 9, 12, 60])]}
    r = httpx.post(f"{server.url}/api/v1/sensors/PM25-1/readings", json=body,
                   headers={"Authorization": f"Bearer {park['sensor_token']}"}, timeout=30)
    assert r.status_code == 200 and r.json()["stored"] == 4 and r.json()["alerts"] == [], r.text

    # 3. The download job drops the FIRMS file into the watched folder; `pardus fire watch` takes it.
    drop = park["root"] / "firms-drop"
    drop.mkdir()
    _firms_minutes_ago(shared_data / "fire-firms" / MODIS_24H, drop / "MODIS_C6_1_Global_24h.csv", minutes=10)
    env = {**os.environ, "PARDUS_DATA_DIR": str(data), "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-m", "pardus", "fire", "watch", str(drop), "--once",
                          "--rules", str(park["rules"])], env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (drop / "imported" / "MODIS_C6_1_Global_24h.csv").is_file()
    assert "6624 stored" in " ".join(res.stdout.split())

    # Exactly one fire alert reaches the webhook, with the photo, the rise and the satellite's pass.
    assert hook.arrived.wait(30), "nothing was delivered"
    time.sleep(3)  # a second delivery, if any were wrongly made, would arrive in this time
    assert len(hook.requests) == 1, [json.loads(q["body"]).get("kind") for q in hook.requests]
    sent = json.loads(hook.requests[0]["body"])
    assert hook.requests[0]["path"] == "/fire"
    assert (sent["kind"], sent["camera_id"], sent["rule"], sent["severity"]) == ("fire", "CAM0", "fire-confirmed",
                                                                                  "critical")
    ev = sent["evidence"]
    assert ev["agree"] == ["smoke", "sensor", "hotspot"]
    (photo,) = ev["signals"]["smoke"]
    assert photo["alert_id"] == smoke.id and photo["media_id"] == smoke.media_id
    (rise,) = ev["signals"]["sensor"]
    assert (rise["sensor"], rise["value"], rise["rise"]) == ("PM25-1", 60, 52)
    spots = ev["signals"]["hotspot"]
    assert len(spots) == 4 and all(h["instrument"] == "MODIS" and h["distance_m"] <= 3000 for h in spots)
    with open_workspace(settings) as ws, ws.db.session() as s:
        fires = s.scalars(select(Alert).where(Alert.kind == "fire")).all()
        assert [a.id for a in fires] == [sent["id"]]
        assert fires[0].details["deliveries"]["rangers"]["status"] == "delivered"
    assert "Traceback" not in server.log.read_text(errors="replace")
