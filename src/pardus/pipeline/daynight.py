"""Day or night from the picture itself: infrared night frames carry (almost) no colour.

Camera traps switch to infrared at night and write greyscale frames, whatever their clock says;
a clock can be wrong, the picture cannot. Alert rules ("people at night") and activity analysis
use this flag next to the timestamp.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from pardus.pipeline.core import ItemResult
from pardus.store import Workspace
from pardus.store.models import Media

# Mean absolute difference between colour channels (0..255) below which a frame counts as IR.
IR_CHROMA_THRESHOLD = 4.0


def chroma(img: Image.Image) -> float:
    """Mean spread between the colour channels; about 0 for greyscale/IR, tens for daylight."""
    if img.mode == "L":
        return 0.0
    arr = np.asarray(img.convert("RGB"), dtype=np.int16)
    return float(np.mean(np.max(arr, axis=2) - np.min(arr, axis=2)))


class DayNightStage:
    """Marks each photo or video thumbnail as infrared night (``Media.extra['ir_night']``)."""

    name = "daynight"
    model_key = "chroma@1"

    def eligible(self) -> Select[tuple[str]]:
        return select(Media.id).where(Media.available.is_(True))

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        with ws.db.session() as s:
            rows = s.execute(select(Media.id, Media.thumbnail_key).where(Media.id.in_(media_ids)))
            keys = {mid: key for mid, key in rows}
        for mid in media_ids:
            key = keys.get(mid)
            if not key or not ws.derived.exists(key):
                yield ItemResult(mid, error="no thumbnail to look at (the file could not be decoded at import)")
                continue
            value = chroma(Image.open(io.BytesIO(ws.derived.get_bytes(key))))
            yield ItemResult(mid, payload={"chroma": round(value, 2), "ir_night": value < IR_CHROMA_THRESHOLD})

    def write(self, s: Session, result: ItemResult) -> None:
        media = s.get(Media, result.media_id)
        assert media is not None
        media.extra = {**(media.extra or {}), **result.payload}
