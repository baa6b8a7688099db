"""Tiled detection maps each tile's boxes back to the whole frame, on a real camera-trap photo."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pardus.models.detectors import iou
from pardus.models.registry import YOLOX_TINY

pytestmark = pytest.mark.skipif(not YOLOX_TINY.available(), reason="zamba's YOLOX-tiny weights not installed")


@pytest.fixture(scope="module")
def detector():
    from pardus.models.detectors import YoloxAnimalDetector

    return YoloxAnimalDetector(size=960)


def _bear(shared_data: Path) -> np.ndarray:
    root = shared_data / "zamba-test-assets" / "ena24_small"
    name = next(r["filepath"] for r in csv.DictReader((root / "labels.csv").open()) if "Bear" in r["label"])
    return np.asarray(Image.open(root / name).convert("RGB"))


def test_a_tile_box_lands_where_the_animal_is_in_the_frame(detector, shared_data: Path) -> None:
    photo = _bear(shared_data)
    alone = [b for b in detector.detect(photo) if b.score >= 0.3]
    assert alone, "the bear is found in its own photo"
    best = alone[0]
    # The photo in the bottom-right ninth of a frame three times its size, the rest plain grey: a
    # 3x3 tile sees the bear at almost half its size; its box must land back on the bear.
    h, w = photo.shape[:2]
    frame = np.full((3 * h, 3 * w, 3), 118, np.uint8)
    frame[2 * h:, 2 * w:] = photo
    expected = type(best)(best.category, best.score, (2 + best.x) / 3, (2 + best.y) / 3, best.w / 3, best.h / 3)

    def on_bear(boxes: list) -> float:
        return max([iou(b, expected) for b in boxes if b.score >= 0.3], default=0.0)

    tiled = detector.detect_tiled(frame, grid=3)
    assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= 1.0001 and b.y + b.h <= 1.0001 for b in tiled)
    assert on_bear(tiled) > 0.5, "a tile's box is mapped back onto the bear"


@pytest.mark.parametrize(("w", "h", "grid"), [(1920, 1080, 2), (2048, 1536, 3), (1001, 997, 2)])
def test_tiles_cover_the_frame_and_overlap(w: int, h: int, grid: int) -> None:
    from pardus.models.detectors import tile_windows

    wins = tile_windows(w, h, grid, 0.2)
    assert len(wins) == grid * grid
    covered = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in wins:
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        covered[y0:y1, x0:x1] = True
    assert covered.all()
    tile_w = wins[0][2] - wins[0][0]
    xs = sorted({(x0, x1) for x0, _, x1, _ in wins})
    for (_, a1), (b0, _) in zip(xs, xs[1:], strict=False):
        assert a1 - b0 >= 0.15 * tile_w, "neighbouring tiles share a strip"


def test_small_frames_get_the_plain_pass(detector) -> None:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    assert detector.detect_tiled(small) == detector.detect(small)


def test_tiled_stage_finds_the_small_heron_and_keeps_the_plain_results(sqlite_settings, shared_data: Path,
                                                                        tmp_path: Path) -> None:
    """A real Reconyx frame of the Camtrap DP example (a heron far off in a 1920x1080 frame), through
    the store: the tiled stage finds it, and its results sit beside the plain stage's, under its own key."""
    import shutil

    from sqlalchemy import select

    from pardus.ingest.card import import_card
    from pardus.pipeline.core import run_stage
    from pardus.pipeline.detect import DetectionStage
    from pardus.store import open_workspace
    from pardus.store.models import Detection

    src = sorted((shared_data / "camtrap-dp-example" / "example" / "media").glob("*.JPG"))[0]
    card = tmp_path / "card" / "DCIM" / "100RECNX"
    card.mkdir(parents=True)
    shutil.copy(src, card / src.name)
    ws = open_workspace(sqlite_settings)
    try:
        import_card(ws, tmp_path / "card", "D1")
        plain, tiled = DetectionStage(), DetectionStage(tiles=2)
        assert tiled.model_key == plain.model_key + "+tiles2-add"
        for stage in (plain, tiled):
            assert run_stage(ws, stage).done == 1
        with ws.db.session() as s:
            by_key = {}
            for d in s.scalars(select(Detection)):
                by_key.setdefault(d.extra["stage"], []).append(d.category)
        assert "animal" in by_key[tiled.model_key], by_key
        assert set(by_key) <= {plain.model_key, tiled.model_key}
    finally:
        ws.close()


def test_tiles_add_what_the_whole_frame_missed_and_boost_nothing_by_default(detector) -> None:
    from pardus.models.detectors import TILE_ONLY, Box

    faint = Box("animal", 0.1, 0.1, 0.1, 0.2, 0.2, "animal", "m")  # the whole frame saw something faint here
    magnified = Box("animal", 0.6, 0.11, 0.1, 0.2, 0.21, "animal", "m")  # a tile scores the same place higher
    new = Box("animal", 0.4, 0.7, 0.7, 0.05, 0.05, "animal", "m")  # only a tile saw this small one
    added = detector.merge_tiles([faint], [magnified, new])
    assert [(b.score, b.label) for b in added] == [(0.4, TILE_ONLY), (0.1, "animal")]
    boosted = detector.merge_tiles([faint], [magnified, new], boost=True)
    assert [(b.score, b.label) for b in boosted] == [(0.6, "animal"), (0.4, TILE_ONLY)]
