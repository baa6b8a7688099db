"""A first, fast look at each live photo: people and vehicles only, so a poacher's alert does not
wait behind the full detection of every squirrel uploaded before it.

The COCO SSD of the detection stage costs about 0.05 s a photo on 2 cores; the full stage (YOLOX at
960 px plus the SSD) about 0.4 s. The live queue runs this stage on every new upload first, then
the full pipeline when there is time. Its boxes are real ``Detection`` rows (``extra['stage']`` is
this stage's model key), so the alert rules read them like any other detection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pardus.models.detectors import Box, CocoPersonVehicleDetector
from pardus.pipeline.core import ItemResult
from pardus.pipeline.decode import decode_file
from pardus.pipeline.detect import Thresholds
from pardus.store import Workspace
from pardus.store.models import Detection, Media

# The SSD looks at 300x300; decoding the JPEG at DCT scale 1/2..1/4 is enough and 3x cheaper.
DECODE_LONGEST = 640


@dataclass
class TriageStage:
    """People and vehicles only; see the module docstring."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    name: str = "triage"

    def __post_init__(self) -> None:
        self._coco: CocoPersonVehicleDetector | None = None

    @property
    def model_key(self) -> str:
        from pardus.models.registry import COCO_SSD

        return f"{COCO_SSD.key}@triage"

    @staticmethod
    def available() -> bool:
        from pardus.models.registry import COCO_SSD

        return COCO_SSD.available()

    def eligible(self) -> Select[tuple[str]]:
        return select(Media.id).where(Media.available.is_(True), Media.file_mediatype.like("image/%"))

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        if self._coco is None:
            self._coco = CocoPersonVehicleDetector(min_score=min(self.thresholds.person, self.thresholds.vehicle))
        with ws.db.session() as s:
            rows = dict(s.execute(select(Media.id, Media.sha256).where(Media.id.in_(media_ids))).all())
        for mid in media_ids:
            key = rows.get(mid)
            rgb, error = decode_file(str(ws.blobs.path(key)) if key else None, DECODE_LONGEST)
            if rgb is None:
                yield ItemResult(mid, error=error)  # missing or undecodable: this file's failure, said why
                continue
            boxes = [b for b in self._coco.detect(rgb) if self.thresholds.passes(b)]
            yield ItemResult(mid, payload=[asdict(b) for b in boxes])

    def write(self, s: Session, result: ItemResult) -> None:
        s.execute(delete(Detection).where(Detection.media_id == result.media_id,
                                          Detection.extra["stage"].as_string() == self.model_key))
        for b in (Box(**d) for d in result.payload):
            name, version = b.model.split("@", 1)
            s.add(Detection(media_id=result.media_id, category=b.category, score=b.score, x=b.x, y=b.y, w=b.w,
                            h=b.h, model_name=name, model_version=version,
                            extra={"stage": self.model_key, "label": b.label}))
