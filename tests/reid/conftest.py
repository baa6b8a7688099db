"""Rendered leopards shared by the re-identification tests (rendering and extraction cost seconds)."""

from __future__ import annotations

import pytest

from pardus.reid.features import ChipFeatures, FeatureParams, extract
from pardus.reid.simulated import SimulatedPhoto, render_animal

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
