"""A small simulated season (4 cameras x 10 days): layout, truth, determinism, mess, import.

Frames are rendered at 640x360 here to keep the suite fast; the pipeline is the same as at the
default 1280x720.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from pardus.ingest.exif import read_camera_metadata
from pardus.simulate import SeasonError, simulate_season
from pardus.simulate.load import import_season
from pardus.simulate.shapes import LEOPARD
from pardus.store import open_workspace
from pardus.store.models import Media

SMALL = {"cameras": 4, "days": 10, "seed": 1, "frame_size": (640, 360)}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def season(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("season") / "s"
    seen: list[tuple[int, int]] = []
    summary = simulate_season(out, workers=1, progress=lambda d, t: seen.append((d, t)), **SMALL)
    assert seen[-1] == (summary.images, summary.images)
    assert summary.images == len(_rows(out / "truth" / "images.csv"))
    return out


def _jpgs(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.JPG"))}


def test_layout_and_deployments(season: Path) -> None:
    deps = _rows(season / "deployments.csv")
    assert len(deps) == 4
    stations = Counter(d["locationID"] for d in deps)
    assert 2 in stations.values(), "a station with two cameras facing each other"
    for d in deps:
        assert 42.8 < float(d["latitude"]) < 43.3 and 131.0 < float(d["longitude"]) < 131.6
        assert d["utcOffset"] == "+10:00" and d["deploymentStart"].endswith("+10:00")
        assert (season / "cards" / d["deploymentID"] / "DCIM" / "100MEDIA" / "IMG_0001.JPG").is_file()
    pair = [d for d in deps if stations[d["locationID"]] == 2]
    assert (int(pair[0]["cameraHeading"]) - int(pair[1]["cameraHeading"])) % 360 == 180
    assert any(d["deploymentComments"] for d in deps), "at least one camera failed early"
    params = json.loads((season / "truth" / "params.json").read_text())
    assert params["species"][LEOPARD]["sigma_m"] == 2500.0 and params["occasions"] == 10


def test_truth_matches_the_cards(season: Path) -> None:
    images = _rows(season / "truth" / "images.csv")
    on_cards = {k for k in _jpgs(season) if "-copy/" not in k}
    assert {r["path"] for r in images} == on_cards
    kinds = Counter(r["content"] for r in images)
    for k in ("blank", "animal", "human", "vehicle", "fire", "smoke"):
        assert kinds[k] > 0, f"no {k} frame in the season"
    alerts = Counter(r["event_kind"] for r in images if r["event_kind"])
    assert {"person-at-night", "vehicle-at-night", "fire", "smoke", "new-leopard"} <= set(alerts)
    assert all(r["night"] == "1" for r in images if r["event_kind"] in ("person-at-night", "vehicle-at-night"))
    for r in images:
        if r["content"] != "blank":
            x, y, w, h = (float(r[k]) for k in ("bbox_x", "bbox_y", "bbox_width", "bbox_height"))
            assert 0 <= x <= 1 and 0 <= y <= 1 and w > 0 and x + w <= 1.0001 and y + h <= 1.0001
    # EXIF says what the truth says it says.
    sample = [r for r in images if r["damaged"] == "0"][::7]
    for r in sample:
        meta = read_camera_metadata((season / r["path"]).read_bytes())
        assert meta.camera_time == datetime.strptime(r["exif_time"], "%Y:%m:%d %H:%M:%S")
        assert meta.make and meta.model and meta.serial


def test_captures_are_the_leopard_and_tiger_photos(season: Path) -> None:
    """Each photographed marked animal is a capture in captures.csv on that occasion at that
    station, and each capture was photographed (a paired station gives a burst per camera)."""
    caps = {(c["individual_id"], int(c["occasion"]), c["detector"]): int(c["count"])
            for c in _rows(season / "truth" / "captures.csv")}
    animals = {a["individual_id"]: a for a in _rows(season / "truth" / "animals.csv")}
    start = datetime.fromisoformat(json.loads((season / "truth" / "params.json").read_text())["season_start_local"])
    images = {r["path"]: r for r in _rows(season / "truth" / "images.csv")}
    bursts: dict[tuple[str, int, str], set[str]] = {}
    for o in _rows(season / "truth" / "objects.csv"):
        if not o["individual_id"]:
            continue
        r = images[o["path"]]
        local = datetime.fromisoformat(r["true_time_utc"].rstrip("Z")) + timedelta(hours=10)
        key = (o["individual_id"], (local.date() - start.date()).days + 1, r["station"])
        bursts.setdefault(key, set()).add(r["sequence_id"])
    assert caps, "the season has at least one leopard capture (the late arrival)"
    assert set(bursts) <= set(caps)
    for key, n in caps.items():
        assert key[0] in animals
        assert len(bursts.get(key, ())) <= 2 * n
    assert len(set(bursts)) >= 0.8 * len(caps)
    late = [a for a in animals.values() if int(a["arrival_day"]) > 0]
    assert len(late) == 1 and late[0]["in_density_model"] == "false"
    assert all(k[1] > int(late[0]["arrival_day"]) for k in caps if k[0] == late[0]["individual_id"])


def test_the_mess_of_real_cards(season: Path) -> None:
    mess = json.loads((season / "truth" / "mess.json").read_text())
    images = _rows(season / "truth" / "images.csv")
    reset = [r for r in images if r["deployment_id"] == mess["clock_reset_deployment"]]
    assert any(r["exif_time"].startswith("2000:01:0") for r in reset)
    assert any(r["exif_time"].startswith("2024") for r in reset)
    cut = season / mess["truncated_file"]
    assert cut.is_file() and [r["damaged"] for r in images if r["path"] == mess["truncated_file"]] == ["1"]
    assert not cut.read_bytes().endswith(b"\xff\xd9")
    assert _jpgs(season / mess["duplicate_card"]) == _jpgs(season / mess["duplicate_of"])


def test_same_seed_same_bytes_whatever_the_workers(season: Path, tmp_path: Path) -> None:
    again = simulate_season(tmp_path / "again", workers=2, **SMALL)
    a, b = _jpgs(season), _jpgs(again.out)
    assert a.keys() == b.keys() and a == b
    for name in ("images.csv", "objects.csv", "captures.csv", "animals.csv", "params.json"):
        assert (season / "truth" / name).read_bytes() == (again.out / "truth" / name).read_bytes(), name
    assert (season / "deployments.csv").read_bytes() == (again.out / "deployments.csv").read_bytes()


def test_another_seed_another_season(season: Path, tmp_path: Path) -> None:
    other = simulate_season(tmp_path / "other", workers=1, **{**SMALL, "seed": 2, "days": 3})
    assert (season / "truth" / "animals.csv").read_bytes() != (other.out / "truth" / "animals.csv").read_bytes()


def test_season_imports_with_the_mess_reported(season: Path, sqlite_settings) -> None:
    ws = open_workspace(sqlite_settings)
    try:
        reports = {r.deployment_id + ("-copy" if i else ""): r for i, r in _by_card(import_season(ws, season))}
        mess = json.loads((season / "truth" / "mess.json").read_text())
        images = _rows(season / "truth" / "images.csv")
        with ws.db.session() as s:
            assert s.scalar(select(func.count(Media.id))) == len(images)
            flagged = s.scalars(select(Media).where(Media.deployment_id == mess["clock_reset_deployment"])).all()
            resets = [m for m in flagged if m.camera_time.year == 2000]
            assert resets and all("clock-reset" in (m.timestamp_issues or "") for m in resets)
        dup_dep = mess["duplicate_of"].split("/")[-1]
        copy = reports[dup_dep + "-copy"]
        assert set(copy.counts) == {"duplicate"}, copy.counts  # the copy adds 0 rows
        trunc_dep = mess["truncated_file"].split("/")[1]
        problems = {p: st for p, st, _ in reports[trunc_dep].problems}
        card_rel = mess["truncated_file"].split("/", 2)[2]
        assert problems.get(card_rel) == "damaged"
    finally:
        ws.close()


def _by_card(reports: list) -> list[tuple[int, object]]:
    seen: set[str] = set()
    out = []
    for r in reports:
        out.append((1 if r.deployment_id in seen else 0, r))
        seen.add(r.deployment_id)
    return out


def test_bad_requests_say_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(SeasonError, match="unknown season parameter"):
        simulate_season(tmp_path / "x", cameras=2, days=2, leopard_sigma=3)
    with pytest.raises(SeasonError, match="at least one camera"):
        simulate_season(tmp_path / "y", cameras=0, days=2)
    (tmp_path / "z" / "truth").mkdir(parents=True)
    with pytest.raises(SeasonError, match="already holds a season"):
        simulate_season(tmp_path / "z", cameras=1, days=2)
