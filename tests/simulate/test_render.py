"""Single frames: realistic JPEG + EXIF for each content kind, and coats fit for re-identification."""

from __future__ import annotations

import io
from datetime import datetime

import cv2
import numpy as np
import pytest
from PIL import Image

from pardus.ingest.exif import read_camera_metadata
from pardus.simulate import render_frame
from pardus.simulate.render import CameraInfo, FrameSpec, Subject, render
from pardus.simulate.shapes import LEOPARD, TIGER
from pardus.simulate.textures import coat_for

NIGHT = datetime(2024, 7, 14, 23, 5, 9)
DAY = datetime(2024, 7, 14, 13, 5, 9)


def _img(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("content", ["blank", "leopard", "tiger", "poacher", "vehicle", "smoke", "fire", "animal"])
def test_each_content_is_a_camera_jpeg_with_exif(content: str) -> None:
    cam = CameraInfo(serial="H600HTEST01")
    data = render_frame(content, when=NIGHT, camera=cam, seed=3, size=(640, 360))
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    meta = read_camera_metadata(data)
    assert meta.make == "RECONYX" and meta.model == "HC600 HYPERFIRE" and meta.serial == "H600HTEST01"
    assert meta.camera_time == NIGHT
    arr = _img(data).astype(int)
    # Night frames are infrared greyscale (JPEG chroma rounding allows a small difference).
    assert np.abs(arr[:, :, 0] - arr[:, :, 2]).mean() < 2.5


def test_day_frames_are_colour_and_same_arguments_same_bytes() -> None:
    a = render_frame("leopard", when=DAY, individual_id="PO_007", seed=5, size=(640, 360))
    b = render_frame("leopard", when=DAY, individual_id="PO_007", seed=5, size=(640, 360))
    assert a == b
    arr = _img(a).astype(int)
    assert np.abs(arr[:, :, 0] - arr[:, :, 2]).mean() > 10


def test_truth_boxes_cover_the_subject() -> None:
    spec = FrameSpec(subjects=(Subject("animal", TIGER, "PT_001", 99, "right"),), camera_time=DAY, burst_seed=4,
                     size=(640, 360))
    blank = FrameSpec(subjects=(), camera_time=DAY, burst_seed=4, size=(640, 360))
    with_tiger, without = render(spec), render(blank)
    assert len(with_tiger.objects) == 1 and without.objects == []
    o = with_tiger.objects[0]
    assert o.individual_id == "PT_001" and o.flank == "right" and 0 <= o.occluded <= 1
    x, y, w, h = o.bbox
    diff = np.abs(_img(with_tiger.jpeg).astype(int) - _img(without.jpeg).astype(int)).sum(axis=2) > 60
    ys, xs = np.nonzero(diff[20:-20])  # ignore the data strips
    ys = ys + 20
    inside = (xs >= x * 640 - 4) & (xs <= (x + w) * 640 + 4) & (ys >= y * 360 - 4) & (ys <= (y + h) * 360 + 4)
    assert inside.mean() > 0.9


def test_coats_are_fixed_per_individual_and_flank() -> None:
    left = coat_for(LEOPARD, 1234, "left")
    assert np.array_equal(left, coat_for(LEOPARD, 1234, "left"))
    assert np.abs(left - coat_for(LEOPARD, 1234, "right")).mean() > 15
    assert np.abs(left - coat_for(LEOPARD, 4321, "left")).mean() > 15
    assert np.abs(coat_for(TIGER, 5, "left") - coat_for(TIGER, 5, "right")).mean() > 15


def _sift_inliers(a: bytes, b: bytes, box_a: tuple, box_b: tuple) -> int:
    """RANSAC-verified SIFT matches between two animal crops (what HotSpotter-style matching does)."""
    sift = cv2.SIFT_create()

    def crop(data: bytes, box: tuple) -> np.ndarray:
        g = cv2.cvtColor(_img(data), cv2.COLOR_RGB2GRAY)
        H, W = g.shape
        x, y, w, h = box
        return g[int(y * H):int((y + h) * H), int(x * W):int((x + w) * W)]

    ka, da = sift.detectAndCompute(crop(a, box_a), None)
    kb, db = sift.detectAndCompute(crop(b, box_b), None)
    if da is None or db is None or len(ka) < 4 or len(kb) < 4:
        return 0
    pairs = cv2.BFMatcher().knnMatch(da, db, k=2)
    good = [m for m, n in (p for p in pairs if len(p) == 2) if m.distance < 0.8 * n.distance]
    if len(good) < 4:
        return len(good) // 2
    src = np.float32([ka[m.queryIdx].pt for m in good])
    dst = np.float32([kb[m.trainIdx].pt for m in good])
    _, inliers = cv2.findHomography(src, dst, cv2.RANSAC, 8.0)
    return int(inliers.sum()) if inliers is not None else 0


def test_same_flank_matches_and_other_flank_does_not() -> None:
    """Two sightings of one flank (other camera, pose, light) share many verified keypoints;
    the other flank of the same animal and another animal share few: re-ID is possible, not given."""
    def sighting(coat_seed: int, flank: str, scene: int) -> tuple[bytes, tuple]:
        spec = FrameSpec(subjects=(Subject("animal", LEOPARD, "X", coat_seed, flank),), camera_time=DAY,
                         scene_seed=scene, burst_seed=scene * 31 + 1, frame_index=1)
        r = render(spec)
        return r.jpeg, r.objects[0].bbox

    a = sighting(77, "left", 1)
    b = sighting(77, "left", 2)
    other_flank = sighting(77, "right", 3)
    other_cat = sighting(78, "left", 4)
    same = _sift_inliers(*a[:1], *b[:1], a[1], b[1])
    flank = _sift_inliers(a[0], other_flank[0], a[1], other_flank[1])
    cat = _sift_inliers(a[0], other_cat[0], a[1], other_cat[1])
    assert same >= 15, same
    assert same > 2 * max(flank, cat), (same, flank, cat)
