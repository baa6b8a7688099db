"""Species stage: a name for every animal box the detection stage found.

Each animal ``Detection`` (not flagged as a repeat) is cropped from its photo, or from its video
frame at ``frame_time_s``, and classified. With a head the park trained (``pardus models
train-species``, saved in ``<data dir>/models/``) the crop's DINOv2 embedding goes through that
head; without one, the ImageNet network's classes are mapped to the park's taxa. Either way the
answer is a machine ``Observation`` (``observation_type='animal'``, ``scientific_name`` or none for
"unknown", the probability, ``classified_by`` = the model key; ``observation_type='human'`` when
a head taught on reviewed people says ``Homo sapiens``). Human observations are never
touched, and a new head is a new model key: its results are added beside the old ones.

``boxes_from`` names the detect stage whose boxes are classified (others' are ignored). It is part
of the stage's state key: after a detector change every photo the new detector has boxed is
classified again, once, and the calls made on the old boxes are set aside (superseded, kept).

After a run, ``finish`` decides each burst as a whole (see :mod:`pardus.pipeline.sequences`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Select, delete, select
from sqlalchemy.orm import Session

from pardus.models.species import HUMAN, LAND_OF_THE_LEOPARD, SpeciesCall, SpeciesHead, TaxonMap, square_crop
from pardus.pipeline.core import ItemResult, keyed_on, set_aside_stale
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation, utcnow

Box = tuple[float, float, float, float]
# A box its detector is unsure of is "unknown" whatever the classifier says (issue 16: a rock
# MegaDetector v6 boxed was named a snow leopard at 0.5-0.9); its best name stays in ``extra.best``.
# Per detector (Detection.model_name), the score below which a box counts as unsure:
# - MDv6: 0.35. docs/detection.md's threshold table: from 0.20 to 0.35 MegaDetector v5a's empty LILA
#   photos that MDv6 calls non-blank fall from 5 to 1 while non-blank recall only goes 0.94 -> 0.92.
# - the offline YOLOX-tiny: 0.2. The stage keeps its boxes from 0.15 to find small, distant animals
#   (bench/detect_eval.py); those between 0.15 and 0.2 are the ones it is least sure of.
UNSURE_BOX = {"megadetector-v6-yolov10-c": 0.35, "zamba-yolox-tiny": 0.2}
# HUMAN: a head taught on reviewed people names them too. The detector often boxes a person at night
# as an "animal", and a taught "Homo sapiens" turns that box into a person for the alerts.


def load_rgb(ws: Workspace, media: Media, frame_time_s: float | None = None, longest: int = 1600) -> np.ndarray:
    """The photo (or the video frame at ``frame_time_s``) as RGB; raises ``ValueError`` saying why not."""
    from pardus.pipeline.decode import decode_bytes

    if not media.sha256 or not ws.blobs.exists(media.sha256):
        raise ValueError("the original file is missing from the blob store")
    data = ws.blobs.get_bytes(media.sha256)
    if media.file_mediatype.startswith("video/"):
        from pardus.pipeline.video import frame_at

        return frame_at(data, frame_time_s or 0.0)
    return decode_bytes(data, longest)


def media_crops(ws: Workspace, media: Media, boxes: Sequence[tuple[Box | None, float | None]]) -> list[np.ndarray]:
    """Square crops of ``boxes`` (None = whole frame), decoding each photo or video frame once."""
    frames: dict[float | None, np.ndarray] = {}
    out = []
    for box, t in boxes:
        if t not in frames:
            frames[t] = load_rgb(ws, media, t)
        out.append(square_crop(frames[t], box))
    return out


def animal_boxes(boxes_from: str | None) -> tuple[ColumnElement[bool], ...]:
    """Conditions for the animal boxes a later stage works on: not repeats, and from the detect
    stage ``boxes_from`` when named (never another detector's boxes mixed in)."""
    conds: tuple[ColumnElement[bool], ...] = (Detection.category == "animal", Detection.repeat.is_(False))
    if boxes_from is not None:
        conds += (Detection.extra["stage"].as_string() == boxes_from,)
    return conds


def models_dir(ws: Workspace) -> Path:
    """Where trained heads live: the data folder, beside the store they were trained from."""
    return ws.settings.data_dir / "models"


class SpeciesClassifier:
    """One of the classifiers behind ``classify(crops)`` and a ``key`` to record: the park's taught
    head, the ImageNet mapping, or SpeciesNet from an ONNX file the user brings."""

    def __init__(self, head: SpeciesHead | None, taxon_map: TaxonMap, threshold: float,
                 speciesnet: Path | None = None) -> None:
        self.head = head
        self.taxon_map = taxon_map
        self.threshold = threshold
        self.speciesnet = speciesnet
        self._model: object | None = None

    @property
    def key(self) -> str:
        if self.speciesnet is not None:
            from pardus.models.registry import SPECIESNET

            return SPECIESNET.key
        if self.head is not None:
            from pardus.models.registry import DINOV2_VITS14

            return f"{self.head.key}+{DINOV2_VITS14.key}"
        from pardus.models.registry import MOBILENET_V2_IMAGENET

        return f"{MOBILENET_V2_IMAGENET.key}/{self.taxon_map.name}"

    def classify(self, crops: list[np.ndarray]) -> list[SpeciesCall]:
        if self.speciesnet is not None:
            from pardus.models.field import OnnxSpeciesNet

            if self._model is None:
                self._model = OnnxSpeciesNet(self.speciesnet)
            assert isinstance(self._model, OnnxSpeciesNet)
            # SpeciesNet names ~2,000 taxa itself; below the threshold its answer is kept as "best" only.
            return [SpeciesCall(name if name is not None and p >= self.threshold else None, p, name or common)
                    for name, p, common in self._model.classify(crops)]
        if self.head is not None:
            from pardus.models.embedder import Dinov2Embedder

            if self._model is None:
                self._model = Dinov2Embedder()
            assert isinstance(self._model, Dinov2Embedder)
            return self.head.classify_embeddings(self._model.embed(crops))
        from pardus.models.species import ImagenetTaxonClassifier

        if self._model is None:
            self._model = ImagenetTaxonClassifier(self.taxon_map, self.threshold)
        assert isinstance(self._model, ImagenetTaxonClassifier)
        return self._model.classify(crops)


@dataclass
class SpeciesStage:
    """See the module docstring. ``whole_frame``: classify whole photos (used when no detector is
    installed, so there are no boxes); otherwise only photos with animal boxes are eligible."""

    head_dir: Path | None = None
    taxon_map: TaxonMap = LAND_OF_THE_LEOPARD
    imagenet_threshold: float = 0.35
    whole_frame: bool = False
    speciesnet: Path | None = None  # SpeciesNet's ONNX (labels.txt beside it): this stage runs SpeciesNet
    unsure_box: dict[str, float] = field(default_factory=lambda: dict(UNSURE_BOX))
    boxes_from: str | None = None  # the detect stage's model key whose boxes are classified (None: any)
    name: str = "species"
    _classifier: SpeciesClassifier | None = field(default=None, init=False, repr=False)

    @property
    def classifier(self) -> SpeciesClassifier:
        if self._classifier is None:
            head = SpeciesHead.current(self.head_dir) if self.head_dir is not None and not self.speciesnet else None
            self._classifier = SpeciesClassifier(head, self.taxon_map, self.imagenet_threshold, self.speciesnet)
        return self._classifier

    @property
    def model_key(self) -> str:
        return self.classifier.key

    @property
    def state_key(self) -> str:
        return keyed_on(self.model_key, None if self.whole_frame else self.boxes_from)

    def prepare(self, ws: Workspace) -> int:
        """Set aside this head's calls made on another detector's boxes (see the module docstring)."""
        if self.whole_frame or self.boxes_from is None:
            return 0
        return set_aside_stale(ws, classified_by=self.model_key, input_stage="detect", input_key=self.boxes_from)

    def eligible(self) -> Select[tuple[str]]:
        media = Media.available.is_(True) & (Media.file_mediatype.like("image/%")
                                             | Media.file_mediatype.like("video/%"))
        if self.whole_frame:
            return select(Media.id).where(media)
        boxed = select(Detection.media_id).where(*animal_boxes(self.boxes_from))
        return select(Media.id).where(media, Media.id.in_(boxed))

    def _boxes(self, s: Session, media_id: str) -> list[tuple[int | None, Box | None, float | None, bool]]:
        """(detection id, box, frame time, unsure) of each animal box; the whole frame when none."""
        dets = s.scalars(select(Detection).where(Detection.media_id == media_id, *animal_boxes(self.boxes_from))
                         .order_by(Detection.id)).all()
        if not dets:
            return [(None, None, None, False)]
        return [(d.id, (d.x, d.y, d.w, d.h), d.frame_time_s, d.score < self.unsure_box.get(d.model_name, 0.0))
                for d in dets]

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        clf = self.classifier
        with ws.db.session() as s:
            jobs = [(s.get(Media, mid), self._boxes(s, mid)) for mid in media_ids]
            for m, _ in jobs:
                if m is not None:
                    s.expunge(m)
        for media, boxes in jobs:
            if media is None:
                continue
            try:
                crops = media_crops(ws, media, [(b, t) for _, b, t, _ in boxes])
            except Exception as exc:  # noqa: BLE001 - this file's problem, recorded with the reason
                yield ItemResult(media.id, error=f"could not be read for classification ({type(exc).__name__}: {exc})")
                continue
            calls = clf.classify(crops)
            yield ItemResult(media.id, payload=[
                {"detection_id": d, "box": b, "frame_time_s": t, "name": None if unsure else c.scientific_name,
                 "p": c.probability, "best": c.best, "unsure_box": unsure}
                for (d, b, t, unsure), c in zip(boxes, calls, strict=True)])

    def write(self, s: Session, result: ItemResult) -> None:
        media = s.get(Media, result.media_id)
        assert media is not None
        key = self.model_key
        # A rerun replaces this head's current calls; those set aside (other boxes) stay as they are.
        s.execute(delete(Observation).where(Observation.media_id == media.id, Observation.classified_by == key,
                                            Observation.observation_level == "media",
                                            Observation.superseded_by.is_(None)))
        now = utcnow()
        for r in result.payload:
            box = r["box"]
            s.add(Observation(
                deployment_id=media.deployment_id, media_id=media.id, observation_level="media",
                observation_type="human" if r["name"] == HUMAN else "animal", scientific_name=r["name"], count=1,
                bbox_x=box[0] if box else None, bbox_y=box[1] if box else None,
                bbox_width=box[2] if box else None, bbox_height=box[3] if box else None,
                classification_method="machine", classified_by=key, classification_timestamp=now,
                classification_probability=r["p"],
                extra={"stage": self.name, "detection_id": r["detection_id"], "best": r["best"],
                       "frame_time_s": r["frame_time_s"], "boxes_from": self.boxes_from}
                | ({"unsure_box": True} if r.get("unsure_box") else {}),
            ))

    def finish(self, ws: Workspace) -> int:
        """Decide each burst from its frames (event-level observations); returns how many events."""
        from pardus.pipeline.sequences import smooth_sequences

        return smooth_sequences(ws, self.model_key, detector_key=None if self.whole_frame else self.boxes_from)
