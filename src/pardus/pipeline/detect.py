"""Detection stage: animals, people and vehicles in every photo, and the blanks marked (never deleted).

Two offline detectors run on each photo: zamba's YOLOX-tiny, trained on camera-trap frames, finds
animals (it is blind to what they are, and fires on people too), and a COCO SSD finds people and
vehicles. Where both boxed the same thing, the COCO label wins (a person is not an "animal").
Each category has its own threshold, because the costs differ: a missed poacher is worse than a
ranger looking at one more frame.

Results: ``Detection`` rows with the model that made each box, and one machine ``Observation``
per photo and category (``blank`` when nothing passed), so reviewers and exports see the
machine's call beside their own. A box at the same place on many sequences of one deployment is
a rock or a branch: ``finish`` flags it ``repeat`` for review instead of dropping it.

Videos: frames are sampled every ``video_every_s`` seconds (PyAV), each frame is detected like a
photo and its boxes carry ``frame_time_s``; the video gets one observation per category (its best
box), like a photo.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Protocol

import numpy as np
from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pardus.models.detectors import (
    TILE_ONLY,
    Box,
    CocoPersonVehicleDetector,
    YoloxAnimalDetector,
    inside,
)
from pardus.models.registry import ModelUnavailableError
from pardus.pipeline.core import ItemResult
from pardus.pipeline.decode import decode_many
from pardus.pipeline.site_thresholds import site_animal_thresholds
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation, utcnow

OBS_TYPE = {"animal": "animal", "person": "human", "vehicle": "vehicle"}
DETECTORS = ("offline", "megadetector-v5a", "megadetector-v1000-redwood", "megadetector-v6-yolov10-c")


class Detector(Protocol):
    """What the stage needs of a detector: its input size and boxes for one RGB frame."""

    size: int

    def detect(self, rgb: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class Thresholds:
    """Minimum scores per category. ``animal`` was chosen on bench/detect_eval.py: at 0.15 the
    stage keeps MegaDetector's agreement on the LILA photos (17/21, 1 animal photo missed) while
    finding more small and distant animals than at 0.2; at 0.1 it would call 7 of 10 blanks
    non-blank. People at 0.4 (rendered people score 0.3-0.9); the COCO model's weak "car" boxes
    on cameras' data strips sit below the vehicle threshold of 0.5.

    People and vehicles were checked on real photos by bench/detect_people.py (41 photos: 15 people,
    13 vehicles, 10 empty; plus 120 real photos with neither): at 0.4 / 0.5 the offline pair finds
    11/15 people and 10/13 vehicles and puts no person or vehicle box on the empties. Person 0.2
    finds one more walker (scored 0.24) but the COCO model also scores real animals 0.2-0.4 as
    people (false alerts on the 120: 3 -> 6); vehicle 0.3 finds two more vehicles for 3 -> 5. The
    set is too small for either trade to be clear, so both stay; MegaDetector v6 finds 14/15 and
    13/13 with none of those false alerts (docs/detection.md, "People and vehicles")."""

    animal: float = 0.15
    person: float = 0.4
    vehicle: float = 0.5
    # An animal only a full-resolution tile saw. bench/detect_tiles.py: from 0.30 to 0.50 tiling keeps
    # every blank and MegaDetector agreement of the plain pass (17/21) and still finds 6 more animal
    # photos (recall 0.60 -> 0.66, the camtrap-dp ducks 4/10 -> 10/10); 0.4 is the middle of that plateau.
    tile_only: float = 0.4

    def passes(self, box: Box) -> bool:
        if box.label == TILE_ONLY:
            return box.score >= max(self.tile_only, self.animal)
        return box.score >= getattr(self, box.category)


# MegaDetector v6 (from its Edge TPU file, pardus.models.mdv6): all three categories at 0.2. People: on
# the 120 real photos without people of bench/detect_people.py its best person score is below 0.1, and 14 of
# the 15 real people score 0.31-0.97 (the 15th 0), so 0.1 and 0.2 make the same calls there.
MDV6_THRESHOLDS = Thresholds(animal=0.2, person=0.2, vehicle=0.2)


@dataclass
class RepeatRule:
    """A box counts as a repeat when boxes overlapping it (IoU) appear in this many sequences."""

    iou: float = 0.85
    min_sequences: int = 5


def combine(animals: list[Box], people_vehicles: list[Box], thresholds: Thresholds) -> list[Box]:
    """Boxes that pass their threshold; an animal box mostly inside a person or vehicle box is a part
    of that person or vehicle (the animal detector often boxes a walker's upper body alone)."""
    pv = [b for b in people_vehicles if thresholds.passes(b)]
    kept = [a for a in animals if thresholds.passes(a) and not any(inside(a, p) > 0.6 for p in pv)]
    return sorted(kept + pv, key=lambda b: -b.score)


@dataclass
class DetectionStage:
    """Runs both detectors; see the module docstring."""

    size: int = 960
    thresholds: Thresholds = field(default_factory=Thresholds)
    repeats: RepeatRule = field(default_factory=RepeatRule)
    workers: int = 2
    video_every_s: float = 1.0
    video_max_frames: int = 120
    # 0: one pass per photo. 2 or 3: also grid x grid overlapping tiles at full resolution, for small
    # and distant animals; tiles only add boxes, at Thresholds.tile_only (bench/detect_tiles.py:
    # non-blank recall 0.60 -> 0.66, the camtrap-dp ducks 4/10 -> 10/10, blanks kept; 5x the time).
    tiles: int = 0
    # "offline": zamba's YOLOX-tiny + the COCO SSD (installed with Pardus). "megadetector-v6-yolov10-c":
    # MDv6 recovered from its Edge TPU file (pardus.models.mdv6). Or a field model from a file the user
    # brings (pardus.models.field): "megadetector-v5a" or "megadetector-v1000-redwood". The MegaDetectors
    # find animals, people and vehicles by themselves. ("auto" is resolved by default_stages.)
    detector: str = "offline"
    models_dir: Path | None = None  # where `pardus models download` put files (<data dir>/models)
    name: str = "detect"

    def __post_init__(self) -> None:
        self._animal: Detector | None = None
        self._coco: CocoPersonVehicleDetector | None = None
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}: choose one of {', '.join(DETECTORS)}")
        if self.detector == "megadetector-v6-yolov10-c" and self.thresholds == Thresholds():
            # The defaults above were chosen for YOLOX-tiny + COCO; MDv6 runs at MegaDetector's usual 0.2,
            # the value fixed before bench/detect_eval.py measured it (docs/detection.md).
            self.thresholds = MDV6_THRESHOLDS

    @property
    def model_key(self) -> str:
        from pardus.models.registry import COCO_SSD, YOLOX_TINY, get

        if self.detector != "offline":
            return get(self.detector).key
        # "-add": tiles only add boxes (tile-only threshold); the earlier merge let tiles boost scores.
        tiled = f"+tiles{self.tiles}-add" if self.tiles >= 2 else ""
        return f"{YOLOX_TINY.key}+{COCO_SSD.key}@{self.size}px{tiled}"

    def _models(self) -> tuple[Detector, CocoPersonVehicleDetector | None]:
        if self._animal is None:
            low = min(self.thresholds.animal, self.thresholds.person, self.thresholds.vehicle)
            if self.detector == "offline":
                self._animal = YoloxAnimalDetector(size=self.size, min_score=min(0.05, self.thresholds.animal))
                self._coco = CocoPersonVehicleDetector(
                    min_score=min(self.thresholds.person, self.thresholds.vehicle))
            elif self.detector == "megadetector-v6-yolov10-c":
                from pardus.models.mdv6 import MegaDetectorV6

                self._animal = MegaDetectorV6.installed(self.models_dir, min_score=low)
            else:
                from pardus.models.field import OnnxMegaDetector
                from pardus.models.registry import get

                info = get(self.detector)
                path = info.weights_path(self.models_dir)
                if path.suffix.lower() != ".onnx":
                    raise ModelUnavailableError(f"{path} is not an ONNX file. {info.note}")
                self._animal = OnnxMegaDetector(path, info, min_score=low)
        return self._animal, self._coco

    def eligible(self) -> Select[tuple[str]]:
        return select(Media.id).where(Media.available.is_(True), Media.file_mediatype.like("image/%")
                                      | Media.file_mediatype.like("video/%"))

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        animal, coco = self._models()
        with ws.db.session() as s:
            rows = s.execute(select(Media.id, Media.sha256, Media.file_mediatype).where(Media.id.in_(media_ids)))
            keys = {mid: (sha, kind) for mid, sha, kind in rows}
            site = site_animal_thresholds(s, media_ids)
        videos = [mid for mid in media_ids if keys.get(mid, (None, ""))[1].startswith("video/")]
        photos = [mid for mid in media_ids if mid not in set(videos)]
        paths = [str(ws.blobs.path(k)) if (k := keys.get(mid, (None, ""))[0]) else None for mid in photos]
        # Worker processes decode the next photos while the models run on this one (``workers`` = 0:
        # decode here). One image per forward pass: on 2 CPU cores a batch of 8 was slower per image.
        longest = animal.size * max(1, self.tiles)
        for mid, (rgb, error) in zip(photos, decode_many(paths, longest, self.workers), strict=True):
            if rgb is None:
                yield ItemResult(mid, error=error)
                continue
            boxes = self.boxes(rgb, animal, coco, self.thresholds_for(site.get(mid)))
            yield ItemResult(mid, payload={"boxes": [asdict(b) | {"frame_time_s": None} for b in boxes],
                                           "site_animal_threshold": site.get(mid)})
        for mid in videos:
            yield self._video(ws, mid, keys[mid][0], animal, coco, site.get(mid))

    def thresholds_for(self, site_animal: float | None) -> Thresholds:
        """The stage's thresholds, with the animal one of the photo's site where people tuned it."""
        return self.thresholds if site_animal is None else replace(self.thresholds, animal=site_animal)

    def boxes(self, rgb: np.ndarray, animal: Detector, coco: CocoPersonVehicleDetector | None,
              thresholds: Thresholds | None = None) -> list[Box]:
        """The detector(s) on one frame, combined under the thresholds."""
        tiled = getattr(animal, "detect_tiled", None)
        found = tiled(rgb, grid=self.tiles) if self.tiles >= 2 and tiled else animal.detect(rgb)
        found += coco.detect(rgb) if coco is not None else []
        return combine([b for b in found if b.category == "animal"], [b for b in found if b.category != "animal"],
                       thresholds or self.thresholds)

    def _video(self, ws: Workspace, mid: str, key: str | None, animal: Detector,
               coco: CocoPersonVehicleDetector | None, site_animal: float | None) -> ItemResult:
        """One clip, frame by frame (frames downscaled to the detector's size as they are decoded,
        so a long 4K clip costs memory like a few photos)."""
        from pardus.pipeline.video import sample_frames

        if not key or not ws.blobs.exists(key):
            return ItemResult(mid, error="the original file is missing from the blob store")
        try:
            frames = sample_frames(ws.blobs.get_bytes(key), self.video_every_s, self.video_max_frames,
                                   longest=animal.size)
        except ValueError as exc:
            return ItemResult(mid, error=str(exc))
        payload: list[dict[str, object]] = []
        for t, rgb in frames:
            boxes = self.boxes(rgb, animal, coco, self.thresholds_for(site_animal))
            payload += [asdict(b) | {"frame_time_s": t} for b in boxes]
        return ItemResult(mid, payload={"boxes": payload, "site_animal_threshold": site_animal})

    def write(self, s: Session, result: ItemResult) -> None:
        media = s.get(Media, result.media_id)
        assert media is not None
        found = result.payload["boxes"]
        times = [b.get("frame_time_s") for b in found]
        boxes = [Box(**{k: v for k, v in b.items() if k != "frame_time_s"}) for b in found]
        # A rerun of this stage after a crash between write and state: replace, never duplicate.
        s.execute(delete(Detection).where(Detection.media_id == media.id, Detection.extra["stage"].as_string()
                                          == self.model_key))
        s.execute(delete(Observation).where(Observation.media_id == media.id,
                                            Observation.classified_by == self.model_key))
        for b, frame_time in zip(boxes, times, strict=True):
            name, version = b.model.split("@", 1)
            s.add(Detection(media_id=media.id, category=b.category, score=b.score, x=b.x, y=b.y, w=b.w, h=b.h,
                            model_name=name, model_version=version, frame_time_s=frame_time,
                            extra={"stage": self.model_key, "label": b.label}))
        best: dict[str, Box] = {}
        per_frame: dict[tuple[str, float | None], int] = defaultdict(int)
        for b, frame_time in zip(boxes, times, strict=True):
            per_frame[b.category, frame_time] += 1
            if b.category not in best or b.score > best[b.category].score:
                best[b.category] = b
        counts: dict[str, int] = defaultdict(int)  # a video's count is its most crowded frame's
        for (cat, _), n in per_frame.items():
            counts[cat] = max(counts[cat], n)
        now = utcnow()
        site = result.payload["site_animal_threshold"]  # what process() applied, recorded with the call
        noted = {"site_animal_threshold": site} if site is not None else {}
        for cat, b in best.items() or [("blank", None)]:
            s.add(Observation(
                deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                observation_type=OBS_TYPE.get(cat, "blank"),
                scientific_name="Homo sapiens" if cat == "person" else None,
                count=counts[cat] if b is not None else None,
                bbox_x=b.x if b else None, bbox_y=b.y if b else None,
                bbox_width=b.w if b else None, bbox_height=b.h if b else None,
                classification_method="machine", classified_by=self.model_key,
                classification_timestamp=now,
                classification_probability=b.score if b else None,
                extra=dict(noted),
            ))

    def finish(self, ws: Workspace) -> int:
        """Flag repeated boxes (same place, many sequences, same deployment); returns how many."""
        return flag_repeats(ws, self.repeats)


def flag_repeats(ws: Workspace, rule: RepeatRule | None = None) -> int:
    """Mark ``Detection.repeat`` where a box recurs at one camera across ``min_sequences`` sequences.

    Real animals move; a box that stays put over many separate triggers is a rock, a branch or a
    reflection. Flagged boxes stay in the store for a person to look at, and are left out of alerts.
    """
    rule = rule or RepeatRule()
    flagged = 0
    with ws.db.session() as s:
        rows = s.execute(
            select(Detection, Media.deployment_id, Media.sequence_id, Media.id)
            .join(Media, Media.id == Detection.media_id)
            .where(Detection.category == "animal")
        ).all()
        by_dep: dict[str, list[tuple[Detection, str]]] = defaultdict(list)
        for det, dep, seq, mid in rows:
            by_dep[dep].append((det, seq or mid))
        for items in by_dep.values():
            xywh = np.array([(d.x, d.y, d.w, d.h) for d, _ in items], dtype=np.float64)
            _, seq = np.unique([q for _, q in items], return_inverse=True)
            x1, y1 = xywh[:, 0], xywh[:, 1]
            x2, y2 = x1 + xywh[:, 2], y1 + xywh[:, 3]
            area = xywh[:, 2] * xywh[:, 3]
            for i, (det, _) in enumerate(items):
                inter = np.clip(np.minimum(x2[i], x2) - np.maximum(x1[i], x1), 0, None) * np.clip(
                    np.minimum(y2[i], y2) - np.maximum(y1[i], y1), 0, None)
                overlap = inter / np.maximum(area[i] + area - inter, 1e-12)
                repeat = np.unique(seq[overlap >= rule.iou]).size >= rule.min_sequences
                if repeat != det.repeat:
                    det.repeat = bool(repeat)
                    flagged += int(repeat)
    return flagged
