"""Features, index and matching on real snow-leopard photos and rendered virtual-park leopards."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from pardus.reid.features import ChipFeatures, FeatureParams, data_strip_rows, extract, is_infrared
from pardus.reid.foreground import scenery_grey, suppress_camera_scenery
from pardus.reid.index import Annotation, FeatureIndex
from pardus.reid.match import MatchParams, match
from pardus.reid.simulated import SimulatedPhoto, render_animal

Sim = list[tuple[SimulatedPhoto, ChipFeatures]]
TEST_PARAMS = FeatureParams(max_features=450)  # the same as the sim_leopards fixture's


def _index(items: Sim, keep: list[int], root: Path | None = None) -> FeatureIndex:
    idx = FeatureIndex.open(root, TEST_PARAMS.key)
    for i in keep:
        photo, feats = items[i]
        idx.add(Annotation(i, photo.individual, photo.flank, photo.species), feats, save=False)
    idx.save()
    return idx


def test_real_photo_features_skip_the_data_strip(shared_data: Path) -> None:
    root = shared_data / "snow-leopard-reid"
    with open(root / "labels.csv", newline="") as fh:
        row = next(r for r in csv.DictReader(fh) if r["width"] == "1920")
    img = cv2.imread(str(root / row["file"]))
    top, bottom = data_strip_rows(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    assert top > 0 or bottom < img.shape[0], "the Reconyx data strip was not found"
    feats = extract(img, None, TEST_PARAMS)
    assert 200 <= len(feats) <= TEST_PARAMS.max_features
    y = feats.image_xy()[:, 1]
    assert y.min() >= top and y.max() <= bottom
    # RootSIFT: unit L2 norm, stored x512 as uint8
    norms = np.linalg.norm(feats.desc.astype(np.float32), axis=1) / 512
    assert np.allclose(np.median(norms), 1.0, atol=0.02)
    # gravity frames: lower-triangular with positive diagonal
    assert (feats.kpts[:, 2] > 0).all() and (feats.kpts[:, 4] > 0).all()


def test_damaged_bytes_and_empty_boxes_are_refused() -> None:
    from pardus.reid.features import decode_image

    with pytest.raises(ValueError, match="not a picture"):
        decode_image(b"not a jpeg")
    with pytest.raises(ValueError, match="empty detection box"):
        extract(np.zeros((100, 100), np.uint8), (0.1, 0.1, 0.0, 0.2))


def test_night_frames_are_recognised_as_infrared() -> None:
    night = render_animal("SIM_N", "left", 11, night=True)
    day = render_animal("SIM_N", "left", 11, night=False)
    assert is_infrared(night.bgr) and not is_infrared(day.bgr)
    assert extract(night.bgr, night.box, TEST_PARAMS).night


def test_each_rendered_leopard_is_found_on_the_same_flank(sim_leopards: Sim) -> None:
    idx = _index(sim_leopards, list(range(len(sim_leopards))))
    for i, (photo, feats) in enumerate(sim_leopards):
        res = match(feats, idx, exclude=[i])
        assert res.best is not None
        assert res.best.individual == photo.individual, (i, res.top())
        assert res.best.flank == photo.flank
        # the runner-up is another animal with far less evidence
        if len(res.candidates) > 1:
            assert res.candidates[1].score < 0.5 * res.best.score


def test_left_never_matches_right(sim_leopards: Sim) -> None:
    # catalogue: every photo except the left flank of SIM_A; query: SIM_A's left flank
    keep = [i for i, (p, _) in enumerate(sim_leopards) if not (p.individual == "SIM_A" and p.flank == "left")]
    idx = _index(sim_leopards, keep)
    query = sim_leopards[0][1]  # SIM_A, left flank
    res = match(query, idx, flank="left")
    assert all(idx.annotation(pm.annotation_id).flank != "right" for c in res.candidates for pm in c.photos)
    # the same query with the flank unknown: the right-flank photos of SIM_A verify no better than
    # any other leopard (coats differ per side), far below a same-side match
    same_side = match(query, _index(sim_leopards, list(range(len(sim_leopards)))), exclude=[0])
    unknown = match(query, idx)
    a_right = next((c.score for c in unknown.candidates if c.individual == "SIM_A"), 0.0)
    assert a_right < 0.2 * same_side.best.score  # type: ignore[union-attr]


def test_a_mirrored_coat_does_not_verify(sim_leopards: Sim) -> None:
    idx = _index(sim_leopards, list(range(1, len(sim_leopards))))
    photo, _ = sim_leopards[0]
    straight = match(extract(photo.bgr, photo.box, TEST_PARAMS), idx)
    x, y, w, h = photo.box  # type: ignore[misc]
    mirrored = match(extract(cv2.flip(photo.bgr, 1), (1 - x - w, y, w, h), TEST_PARAMS), idx)
    best_mirrored = max((c.score for c in mirrored.candidates if c.individual == photo.individual), default=0.0)
    assert straight.best is not None and straight.best.individual == photo.individual
    assert best_mirrored < 0.2 * straight.best.score


def test_spatial_verification_drops_scattered_votes(sim_leopards: Sim) -> None:
    idx = _index(sim_leopards, list(range(1, len(sim_leopards))))
    _, feats = sim_leopards[0]
    verified = match(feats, idx)
    raw = match(feats, idx, params=MatchParams(verify=False))
    wrong_verified = sum(c.score for c in verified.candidates[1:])
    wrong_raw = sum(c.score for c in raw.candidates[1:])
    assert wrong_verified < 0.5 * wrong_raw
    assert verified.best.photos[0].transform is not None  # type: ignore[union-attr]


def test_index_on_disk_grows_without_rebuild_and_reopens(sim_leopards: Sim, tmp_path: Path) -> None:
    root = tmp_path / "reid"
    idx = _index(sim_leopards, list(range(6)), root)
    idx.fold()
    graph = (root / "main.faiss").stat()
    photo, feats = sim_leopards[6]
    idx.add(Annotation(6, photo.individual, photo.flank, photo.species), feats)
    assert (root / "main.faiss").stat().st_mtime_ns == graph.st_mtime_ns  # the graph was not rewritten
    again = FeatureIndex.open(root, TEST_PARAMS.key)
    assert len(again) == 7 and again.ntotal == idx.ntotal
    query = sim_leopards[7][1]
    a, b = match(query, idx), match(query, again)
    assert a.top() == b.top() and a.best.individual == "SIM_B"  # type: ignore[union-attr]
    # relabels survive reopening; withdrawn photos are not matched
    again.relabel([6, 0], "SIM_X")
    again.set_active([6], False)
    third = FeatureIndex.open(root, TEST_PARAMS.key)
    assert third.annotation(0).individual == "SIM_X" and not third.annotation(6).active
    assert all(pm.annotation_id != 6 for c in match(query, third).candidates for pm in c.photos)
    with pytest.raises(ValueError, match="reindex"):
        FeatureIndex.open(root, "other-features")
    with pytest.raises(ValueError, match="already in the index"):
        third.add(Annotation(6, "x"), feats)


def test_scenery_at_one_camera_is_suppressed() -> None:
    # two different leopards in front of the same camera (same scene), whole frames, no animal mask
    plain = FeatureParams(max_features=450, foreground="none")
    a = render_animal("SIM_P", "left", 41, station_seed=7)
    b = render_animal("SIM_Q", "right", 42, station_seed=7)
    elsewhere = render_animal("SIM_Q", "right", 43, station_seed=8)
    fa = extract(a.bgr, None, plain)
    ga, gb, ge = (scenery_grey(p.bgr) for p in (a, b, elsewhere))
    same = fa.subset(np.arange(len(fa)))
    assert suppress_camera_scenery(same, ga, [gb]) > 0.2 * len(fa), "the shared scenery was not recognised"
    other = fa.subset(np.arange(len(fa)))
    assert suppress_camera_scenery(other, ga, [ge]) < 0.05 * len(fa), "another place was called scenery"
    # the animal's own features keep their weight, the rocks around it lose theirs
    x, y, w, h = a.box  # type: ignore[misc]
    xy = fa.image_xy() / np.array([a.bgr.shape[1], a.bgr.shape[0]])
    on_animal = (xy[:, 0] > x) & (xy[:, 0] < x + w) & (xy[:, 1] > y) & (xy[:, 1] < y + h)
    assert same.weight[on_animal].mean() > 2 * same.weight[~on_animal].mean()


def test_a_shortlist_limits_the_search_to_its_individuals(sim_leopards: Sim) -> None:
    idx = _index(sim_leopards, list(range(1, len(sim_leopards))))
    query = sim_leopards[0][1]  # SIM_A
    full = match(query, idx)
    assert full.best.individual == "SIM_A"  # type: ignore[union-attr]
    res = match(query, idx, shortlist=["SIM_B", "SIM_C"])
    assert {c.individual for c in res.candidates} <= {"SIM_B", "SIM_C"}
    assert set(res.top(5)) <= {"SIM_B", "SIM_C"}
    # its own coat is not on the shortlist, so nothing matches well
    assert res.best is None or res.best.score < 0.2 * full.best.score  # type: ignore[union-attr]
