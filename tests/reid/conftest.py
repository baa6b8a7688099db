"""Rendered leopards shared by the re-identification tests (rendering and extraction cost seconds)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.reid.features import ChipFeatures, FeatureParams, extract
from pardus.reid.simulated import SimulatedPhoto, render_animal
from pardus.store import Workspace
from pardus.store.models import Detection, Media

# Fewer keypoints than the default keep the suite fast; the matching logic is the same.
TEST_PARAMS = FeatureParams(max_features=450)


@pytest.fixture(scope="session")
def sim_leopards() -> list[tuple[SimulatedPhoto, ChipFeatures]]:
    """Three leopards, both flanks, two photos per flank, every photo a different place and pose."""
    out = []
    seed = 500
    for ind in ("SIM_A", "SIM_B", "SIM_C"):
        for flank in ("left", "right"):
            for _ in range(2):
                seed += 1
                photo = render_animal(ind, flank, seed)
                out.append((photo, extract(photo.bgr, photo.box, TEST_PARAMS)))
    return out


# (file, individual, flank, seed): A and B are photographed twice on the left, C once (never catalogued)
PLAN = [("IMG_0001.JPG", "SIM_A", "left", 301), ("IMG_0002.JPG", "SIM_B", "left", 302),
        ("IMG_0003.JPG", "SIM_A", "left", 303), ("IMG_0004.JPG", "SIM_B", "left", 304),
        ("IMG_0005.JPG", "SIM_C", "right", 305)]
Card = tuple[Path, dict[str, tuple[float, float, float, float]]]


def write_card(root: Path, plan: list[tuple[str, str, str, int]],
               station_seed: Callable[[str], int | None] = lambda _name: None) -> Card:
    """Render each (file, individual, flank, seed) of ``plan`` into a card folder under ``root``;
    ``station_seed`` gives a file its camera's scene (None: a scene of its own)."""
    folder = root / "DCIM" / "100RECNX"
    folder.mkdir(parents=True)
    boxes = {}
    for name, ind, flank, seed in plan:
        photo = render_animal(ind, flank, seed, station_seed=station_seed(name))
        (folder / name).write_bytes(photo.jpeg)
        assert photo.box is not None
        boxes[name] = photo.box
    return root, boxes


@pytest.fixture(scope="session")
def card(tmp_path_factory: pytest.TempPathFactory) -> Card:
    return write_card(tmp_path_factory.mktemp("card"), PLAN)


@pytest.fixture
def load_card() -> Callable[[Workspace, Card], dict[str, str]]:
    """Import the rendered card through the real card import, with its true boxes as detections."""
    return _load


def _load(ws: Workspace, card: Card) -> dict[str, str]:
    root, boxes = card
    import_card(ws, root, "LOL-S01")
    with ws.db.session() as s:
        media = {m.file_name: m.id for m in s.scalars(select(Media))}
        for name, box in boxes.items():
            s.add(Detection(media_id=media[name], category="animal", score=0.9, x=box[0], y=box[1], w=box[2],
                            h=box[3], model_name="virtual-park-truth", model_version="1"))
    return media


