"""A season's rows written straight into a store with bulk inserts, for benches of the web pages.

``fill_season`` writes what a park's store holds after a season, without any image file: 40 camera
stations in 4 plots near 43.1N 131.3E (every seventh place sensitive), 10 online cameras with health
and heartbeats (3 of them silent, so offline), photos in bursts of 3 with their pipeline stage states,
one observation per photo (blank, animal, human, vehicle in field-like shares, a tenth reviewed by a
person), detections for the non-blank ones, and alerts with their audit trail. The same parameters
and seed always give the same rows; ``refresh_cameras`` moves the online cameras' last heartbeat to
"now" so a store cached between runs shows the same map states.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.engine import Connection

from pardus.store.models import (
    Alert,
    AlertEvent,
    Camera,
    Deployment,
    Detection,
    Location,
    Media,
    Observation,
    Project,
    ReviewItem,
    SensorReading,
    StageState,
)

SEASON_START = datetime(2024, 5, 1, tzinfo=UTC)
SEASON_DAYS = 180
STAGES = ("daynight", "detect", "species", "fire-smoke", "embed")
KIND_SHARES = (("blank", 0.62), ("animal", 0.28), ("human", 0.07), ("vehicle", 0.03))
ALERT_KINDS = (("person", 0.45), ("vehicle", 0.2), ("fire", 0.05), ("camera-offline", 0.15), ("new-individual", 0.15))
ALERT_STATUSES = (("resolved", 0.65), ("acknowledged", 0.1), ("new", 0.25))
SPECIES = ("Panthera pardus orientalis", "Panthera tigris altaica", "Capreolus pygargus", "Sus scrofa",
           "Cervus nippon", "Meles leucurus")
CHUNK = 10_000


@dataclass(frozen=True)
class SeasonSize:
    photos: int = 100_000
    alerts: int = 2_000
    stations: int = 40
    plots: int = 4
    online: int = 10  # the first ``online`` stations have a live camera
    silent: int = 3  # of which this many stopped reporting (offline)
    heartbeats: int = 100  # heartbeat readings kept per online camera
    seed: int = 1
    more_calls: int = 0  # further machine observations per photo (other models: detector, species head)


def _pick(rng: random.Random, shares: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for name, p in shares:
        if x < p:
            return name
        x -= p
    return shares[-1][0]


def _chunks(rows: Iterator[dict[str, Any]], n: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for r in rows:
        batch.append(r)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch


def _write(conn: Connection, table: Any, rows: Iterator[dict[str, Any]]) -> int:
    n = 0
    for batch in _chunks(rows):
        conn.execute(insert(table), batch)
        n += len(batch)
    return n


def camera_health(i: int, now: datetime) -> dict[str, Any]:
    """Health of online camera ``i``: one with a low battery, one with weak signal, the rest fine."""
    return {"battery_pct": 15.0 if i == 4 else 60.0 + 3 * i, "signal_dbm": -110.0 if i == 5 else -80.0 - i,
            "free_storage_mb": 8000.0 - 100 * i, "heartbeat_at": now.isoformat()}


def refresh_cameras(conn: Connection, size: SeasonSize, now: datetime | None = None) -> None:
    """Online cameras heard from 10 minutes ago, the silent ones 2 days ago (past their hourly interval)."""
    now = now or datetime.now(UTC)
    for i in range(size.online):
        seen = now - (timedelta(days=2) if i < size.silent else timedelta(minutes=10))
        conn.execute(update(Camera).where(Camera.id == f"C{i:03d}")
                     .values(last_seen=seen, health=camera_health(i, seen)))


def fill_season(conn: Connection, size: SeasonSize = SeasonSize(), now: datetime | None = None) -> dict[str, int]:
    """Write a season into an empty, migrated store; returns the rows written per table."""
    rng = random.Random(size.seed)
    now = now or datetime.now(UTC)
    season_end = SEASON_START + timedelta(days=SEASON_DAYS)
    counts: dict[str, int] = {}
    conn.execute(insert(Project), [{"id": "lotl", "title": "Land of the Leopard camera traps", "extra": {}}])
    per_plot = max(1, size.stations // size.plots)
    counts["location"] = _write(conn, Location, ({
        "id": f"L{d:03d}", "name": f"station {d}", "plot": f"plot-{chr(65 + min(d // per_plot, size.plots - 1))}",
        "latitude": 43.1 + (d // per_plot) * 0.08 + (d % per_plot) % 5 * 0.012 + rng.uniform(-0.003, 0.003),
        "longitude": 131.3 + (d % per_plot) // 5 * 0.015 + rng.uniform(-0.003, 0.003),
        "coordinate_uncertainty": 10, "sensitive": d % 7 == 3, "extra": {}} for d in range(size.stations)))
    counts["camera"] = _write(conn, Camera, ({
        "id": f"C{d:03d}", "make": "Reconyx" if d >= size.online else "Browning", "model": "HF2X" if d >= size.online
        else "Defender Pro Cellular", "serial": f"SN{d:06d}", "token_hash": None,
        "expected_interval_s": 3600 if d < size.online else None, "last_seen": None, "health": {}, "extra": {}}
        for d in range(size.stations)))
    counts["deployment"] = _write(conn, Deployment, ({
        "id": f"D{d:03d}", "project_id": "lotl", "location_id": f"L{d:03d}", "camera_id": f"C{d:03d}",
        "start": SEASON_START, "end": None if d < size.online or d % 3 else season_end, "utc_offset_minutes": 600,
        "clock_offset_s": 0.0, "timestamp_issues": False, "camera_height": 0.6, "feature_type": "roadPaved"
        if d % 9 == 0 else None, "extra": {}, "text_hints": {}} for d in range(size.stations)))
    refresh_cameras(conn, size, now)

    # Photos in bursts of 3 at random moments of the season, more at busy stations.
    weights = [1.0 + (d % 5) for d in range(size.stations)]
    span = SEASON_DAYS * 86400
    media_dep: list[int] = []
    media_time: list[datetime] = []
    bursts = (size.photos + 2) // 3
    for _b in range(bursts):
        d = rng.choices(range(size.stations), weights)[0]
        t = SEASON_START + timedelta(seconds=rng.randrange(span))
        for k in range(3):
            if len(media_dep) < size.photos:
                media_dep.append(d)
                media_time.append(t + timedelta(seconds=k))
    kinds = [_pick(rng, KIND_SHARES) for _ in range(size.photos)]

    def media_rows() -> Iterator[dict[str, Any]]:
        for i in range(size.photos):
            t = media_time[i]
            yield {"id": f"m{i:08d}", "deployment_id": f"D{media_dep[i]:03d}", "sha256": f"{i:064x}",
                   "file_path": f"D{media_dep[i]:03d}/IMG_{i:08d}.JPG", "file_name": f"IMG_{i:08d}.JPG",
                   "file_mediatype": "image/jpeg", "file_size": 1_200_000 + i % 50_000, "width": 2048,
                   "height": 1536, "timestamp_source": "exif", "timestamp": t,
                   "camera_time": (t + timedelta(hours=10)).replace(tzinfo=None),
                   "timestamp_issues": "clock reset" if i % 997 == 0 else None,
                   "file_issues": "truncated JPEG" if i % 4999 == 0 else None,
                   "capture_method": "activityDetection", "sequence_id": f"s{i // 3:08d}", "sequence_index": i % 3,
                   "imported": t + timedelta(days=1), "extra": {}, "text_hints": {}}

    counts["media"] = _write(conn, Media, media_rows())

    def stage_rows() -> Iterator[dict[str, Any]]:
        for i in range(size.photos):
            for stage in STAGES:
                failed = stage == "species" and i % 211 == 0
                yield {"media_id": f"m{i:08d}", "deployment_id": f"D{media_dep[i]:03d}", "stage": stage, "model": "",
                       "status": "failed" if failed else "done",
                       "error": "model error" if failed else None, "updated": media_time[i] + timedelta(days=1)}

    counts["stage_state"] = _write(conn, StageState, stage_rows())

    def observation_rows() -> Iterator[dict[str, Any]]:
        for i in range(size.photos):
            kind = kinds[i]
            human = i % 10 == 0
            yield {"id": f"o{i:08d}", "deployment_id": f"D{media_dep[i]:03d}", "media_id": f"m{i:08d}",
                   "event_id": f"s{i // 3:08d}", "observation_level": "media", "observation_type": kind,
                   "scientific_name": SPECIES[i % len(SPECIES)] if kind == "animal" else None,
                   "count": None if kind == "blank" else 1, "classification_method": "human" if human else "machine",
                   "classified_by": "ranger" if human else "SpeciesNet v4.0.1a",
                   "classification_timestamp": media_time[i] + timedelta(days=2),
                   "classification_probability": None if human else 0.5 + (i % 50) / 100, "extra": {},
                   "text_hints": {}}
            for k in range(size.more_calls):
                yield {"id": f"o{i:08d}-{k}", "deployment_id": f"D{media_dep[i]:03d}", "media_id": f"m{i:08d}",
                       "event_id": f"s{i // 3:08d}", "observation_level": "media", "observation_type": kind,
                       "scientific_name": SPECIES[(i + k) % len(SPECIES)] if kind == "animal" else None,
                       "count": None if kind == "blank" else 1, "classification_method": "machine",
                       "classified_by": f"model-{k}@1", "classification_timestamp": media_time[i] + timedelta(days=1),
                       "classification_probability": 0.4 + (i % 60) / 100, "extra": {}, "text_hints": {}}

    counts["observation"] = _write(conn, Observation, observation_rows())
    category = {"animal": "animal", "human": "person", "vehicle": "vehicle"}

    def detection_rows() -> Iterator[dict[str, Any]]:
        for i in range(size.photos):
            if kinds[i] == "blank":
                continue
            for j in range(1 + (i % 4 == 0)):
                yield {"media_id": f"m{i:08d}", "category": category[kinds[i]], "score": 0.3 + (i % 70) / 100,
                       "x": 0.1 + 0.3 * j, "y": 0.3, "w": 0.2, "h": 0.25, "model_name": "MDV6-yolov10-e",
                       "model_version": "6.0", "repeat": False, "created": media_time[i] + timedelta(days=1),
                       "extra": {}}

    counts["detection"] = _write(conn, Detection, detection_rows())

    alerts: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for a in range(size.alerts):
        kind = _pick(rng, ALERT_KINDS)
        i = rng.randrange(size.photos)
        d = media_dep[i]
        created = SEASON_START + timedelta(seconds=span * (a + rng.random()) / size.alerts)
        status = _pick(rng, ALERT_STATUSES)
        sightings = rng.choice((1, 1, 1, 2, 3))
        aid = f"a{a:07d}{rng.getrandbits(64):016x}"
        ack = created + timedelta(minutes=rng.randrange(5, 240)) if status != "new" else None
        res = ack + timedelta(hours=rng.randrange(1, 48)) if status == "resolved" and ack else None
        severity = {"person": "high", "vehicle": "high", "fire": "critical"}.get(kind, "normal")
        alerts.append({
            "id": aid, "kind": kind, "status": status, "camera_id": f"C{d:03d}", "deployment_id": f"D{d:03d}",
            "media_id": None if kind == "camera-offline" else f"m{i:08d}", "created": created,
            "updated": res or ack or created, "acknowledged_by": "ranger" if ack else None, "acknowledged": ack,
            "resolved_by": "ranger" if res else None, "resolved": res,
            "outcome": "false alarm" if res else None,
            "details": {"rule": f"{kind}-rule", "severity": severity, "sightings": sightings,
                        "evidence": {"score": round(0.5 + rng.random() / 2, 3)}, "deliveries": {}}})
        events.append({"alert_id": aid, "action": "created", "at": created, "by": None,
                       "details": {"media_id": alerts[-1]["media_id"], "rule": f"{kind}-rule"}})
        if ack:
            events.append({"alert_id": aid, "action": "acknowledged", "at": ack, "by": "ranger", "details": {}})
        if res:
            events.append({"alert_id": aid, "action": "resolved", "at": res, "by": "ranger",
                           "details": {"outcome": "false alarm"}})
    counts["alert"] = _write(conn, Alert, iter(alerts))
    events.sort(key=lambda e: e["at"])
    counts["alert_event"] = _write(conn, AlertEvent, iter(events))

    def reading_rows() -> Iterator[dict[str, Any]]:
        for c in range(size.online):
            for k in range(size.heartbeats):
                at = now - timedelta(hours=size.heartbeats - k + (48 if c < size.silent else 0))
                kind, unit, value = (("battery", "%", 90.0 - k * 0.3), ("signal", "dBm", -80.0 - k % 7),
                                     ("free_storage", "MB", 9000.0 - 10 * k))[k % 3]
                yield {"source_id": f"C{c:03d}", "timestamp": at, "kind": kind, "value": value, "unit": unit,
                       "extra": {}}

    counts["sensor_reading"] = _write(conn, SensorReading, reading_rows())
    return counts


def fill_review_queue(conn: Connection, photos: int = 1_000_000, *, stations: int = 40, plots: int = 4,
                      reviewed_share: float = 0.1, seed: int = 1, chunk: int = 50_000,
                      progress: Any = None) -> dict[str, int]:
    """Write a big season's photos and its review queue into an empty, migrated store, for the
    review desk's speed bench: ``photos`` Media rows in bursts of 3 (a burst is a sequence), one
    ReviewItem per burst with the machine's call (blank, animal with a species, human, vehicle in
    field-like shares, a confidence for the non-blank ones), a share already reviewed by a person, and
    one machine box per photo of the non-blank bursts (what the panel draws). No Observation rows: the
    queue and its panel read ``review_item``, ``media`` and ``detection`` only. Same parameters and
    seed, same rows. ``progress(table, rows_done)`` is called after each chunk."""
    rng = random.Random(seed)
    counts: dict[str, int] = {}
    conn.execute(insert(Project), [{"id": "lotl", "title": "Land of the Leopard camera traps", "extra": {}}])
    per_plot = max(1, stations // plots)
    plot_of = [f"plot-{chr(65 + min(d // per_plot, plots - 1))}" for d in range(stations)]
    conn.execute(insert(Location), [{
        "id": f"L{d:03d}", "name": f"station {d}", "plot": plot_of[d], "latitude": 43.1 + d * 0.01,
        "longitude": 131.3 + d * 0.01, "coordinate_uncertainty": 10, "sensitive": False, "extra": {}}
        for d in range(stations)])
    conn.execute(insert(Camera), [{"id": f"C{d:03d}", "make": "Reconyx", "model": "HF2X", "serial": f"SN{d:06d}",
                                   "health": {}, "extra": {}} for d in range(stations)])
    conn.execute(insert(Deployment), [{
        "id": f"D{d:03d}", "project_id": "lotl", "location_id": f"L{d:03d}", "camera_id": f"C{d:03d}",
        "start": SEASON_START, "end": None, "utc_offset_minutes": 600, "clock_offset_s": 0.0,
        "timestamp_issues": False, "extra": {}, "text_hints": {}} for d in range(stations)])
    counts.update(project=1, location=stations, camera=stations, deployment=stations)

    bursts = (photos + 2) // 3
    span = SEASON_DAYS * 86400
    weights = [1.0 + (d % 5) for d in range(stations)]
    dep = rng.choices(range(stations), weights, k=bursts)
    start = [SEASON_START + timedelta(seconds=rng.randrange(span)) for _ in range(bursts)]
    kinds = [_pick(rng, KIND_SHARES) for _ in range(bursts)]
    conf = [None if k == "blank" else round(0.3 + 0.7 * rng.random(), 4) for k in kinds]
    reviewed = [rng.random() < reviewed_share for _ in range(bursts)]
    media_t, item_t, det_t = Media.__table__, ReviewItem.__table__, Detection.__table__
    category = {"animal": "animal", "human": "person", "vehicle": "vehicle"}

    def media_rows() -> Iterator[dict[str, Any]]:
        for i in range(photos):
            b = i // 3
            t = start[b] + timedelta(seconds=i % 3)
            yield {"id": f"m{i:08d}", "deployment_id": f"D{dep[b]:03d}", "sha256": f"{i:064x}",
                   "file_path": f"D{dep[b]:03d}/IMG_{i:08d}.JPG", "file_name": f"IMG_{i:08d}.JPG",
                   "file_mediatype": "image/jpeg", "file_size": 1_200_000, "file_public": True, "available": True,
                   "width": 2048, "height": 1536, "timestamp_source": "exif", "timestamp": t,
                   "timestamp_issues": None, "capture_method": "activityDetection", "sequence_id": f"s{b:08d}",
                   "sequence_index": i % 3, "favorite": False, "imported": t + timedelta(days=1), "extra": {},
                   "text_hints": {}}

    def item_rows() -> Iterator[dict[str, Any]]:
        for b in range(bursts):
            k = kinds[b]
            n = min(3, photos - 3 * b)
            t = start[b]
            sp = SPECIES[b % len(SPECIES)] if k == "animal" else None
            yield {"sequence_id": f"s{b:08d}", "deployment_id": f"D{dep[b]:03d}", "plot": plot_of[dep[b]],
                   "camera_day": (t + timedelta(minutes=600)).date().isoformat(), "start": t,
                   "end": t + timedelta(seconds=n - 1), "media_count": n, "first_media_id": f"m{3 * b:08d}",
                   "time_issues": False, "machine_type": k, "machine_species": sp, "confidence": conf[b],
                   "human_type": k if reviewed[b] else None, "human_species": sp if reviewed[b] else None,
                   "reviewed_by": "ranger" if reviewed[b] else None,
                   "reviewed_at": t + timedelta(days=3) if reviewed[b] else None, "disagree": False}

    def detection_rows() -> Iterator[dict[str, Any]]:
        for i in range(photos):
            b = i // 3
            if kinds[b] == "blank":
                continue
            yield {"media_id": f"m{i:08d}", "category": category[kinds[b]], "score": conf[b], "x": 0.3, "y": 0.3,
                   "w": 0.2, "h": 0.25, "model_name": "MDV6-yolov10-e", "model_version": "6.0", "repeat": False,
                   "created": start[b] + timedelta(days=1), "extra": {}}

    for name, table, rows in (("media", media_t, media_rows()), ("review_item", item_t, item_rows()),
                              ("detection", det_t, detection_rows())):
        n = 0
        for batch in _chunks(rows, chunk):
            conn.execute(insert(table), batch)
            n += len(batch)
            if progress:
                progress(name, n)
        counts[name] = n
    return counts


def machine_calls_from_truth(s: Any, season: Any, *, wrong_every: int = 7) -> int:
    """Machine observations and boxes on a simulated season's imported photos as a detector and
    species head would write them, read from the season's truth instead of running the models (every
    ``wrong_every``-th animal named wrongly; fire and smoke frames called blank); ``s`` is a Session.
    Returns the photos given a call. Run ``pardus.review.queue.refresh`` after it to fill the queue."""
    from sqlalchemy import select

    from pardus.simulate.load import truth_media
    from pardus.store.models import utcnow

    kinds = {"animal": "animal", "human": "human", "vehicle": "vehicle"}
    by_hash = {sha: mid for mid, sha in s.execute(select(Media.id, Media.sha256))}
    n = 0
    for k, (row, media_id) in enumerate(truth_media(season, by_hash)):
        if media_id is None:
            continue
        m = s.get(Media, media_id)
        kind = kinds.get(row["content"], "blank")
        name = row["scientific_name"] or None
        if kind == "animal" and k % wrong_every == 0:
            name = "Sus scrofa" if name != "Sus scrofa" else "Cervus nippon"
        s.add(Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media",
                          observation_type=kind, scientific_name=name if kind != "blank" else None,
                          classification_method="machine", classified_by="truth-fixture",
                          classification_timestamp=utcnow(), classification_probability=0.35 + (k % 13) / 20))
        if row["bbox_width"] not in ("", None) and kind != "blank":
            s.add(Detection(media_id=m.id, category={"human": "person"}.get(kind, kind), score=0.8,
                            x=float(row["bbox_x"]), y=float(row["bbox_y"]), w=float(row["bbox_width"]),
                            h=float(row["bbox_height"]), model_name="truth-fixture", model_version="1"))
        n += 1
    return n
