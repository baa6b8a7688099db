"""Rendered virtual-park leopards and tigers for the re-identification tests and benchmarks.

Real labelled photos of Amur leopards are scarce; the virtual park draws each animal with its own
coat per flank (``pardus.simulate.textures``), so a catalogue of any size with exact truth can be
made on the spot. Each photo is a different scene, pose, distance and light, and comes with the
true Camtrap DP box, which stands in for a detection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import cv2
import numpy as np

from pardus.simulate.render import CameraInfo, FrameSpec, Subject, render, stable_seed
from pardus.simulate.shapes import LEOPARD, TIGER

SPECIES = {"leopard": LEOPARD, "tiger": TIGER}


@dataclass
class SimulatedPhoto:
    """One rendered photo of one marked animal, with its truth."""

    individual: str
    flank: str
    species: str
    night: bool
    bgr: np.ndarray
    box: tuple[float, float, float, float] | None
    station: str
    jpeg: bytes


def render_animal(individual: str, flank: str, photo_seed: int, *, species: str = "leopard", night: bool = False,
                  size: tuple[int, int] = (1280, 720), station_seed: int | None = None) -> SimulatedPhoto:
    """One photo of ``individual`` showing ``flank``; ``photo_seed`` varies scene, pose and burst."""
    sci = SPECIES.get(species, species)
    scene = station_seed if station_seed is not None else photo_seed
    when = datetime(2024, 7, 1, 23 if night else 11, 0) + timedelta(minutes=photo_seed)
    spec = FrameSpec(
        subjects=(Subject("animal", sci, individual, stable_seed(individual), flank),),
        camera=CameraInfo(name=f"LOL-S{scene % 100:02d}A"),
        camera_time=when,
        night=night,
        sun_elevation=-10.0 if night else 35.0,
        scene_seed=scene,
        burst_seed=photo_seed * 7919 + 17,
        frame_index=photo_seed % 3,
        size=size,
    )
    frame = render(spec)
    bgr = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
    box = next((o.bbox for o in frame.objects if o.individual_id == individual), None)
    return SimulatedPhoto(individual, flank, sci, night, bgr, box, f"S{scene:03d}", frame.jpeg)
