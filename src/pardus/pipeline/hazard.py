"""Fire and smoke stage: the teach-by-example head, trained with ``--task fire``, on whole frames.

Smoke over a ridge fills much of the frame and has no outline a box detector was trained on, so
the question is asked of the whole frame: its DINOv2 embedding goes through the park's fire head
(classes ``fire`` / ``smoke`` / ``none``). A frame whose fire or smoke probability passes the
head's threshold gets a ``Detection`` with ``category`` ``fire`` or ``smoke`` and the whole frame
as its box, so the alert room reads people, vehicles, fire and smoke the same way, from
``Detection.category``. The stage exists only once a park has trained a fire head; no real fire
imagery ships with Pardus (the virtual park's rendered smoke and flames stand in, see docs/species.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from pardus.models.species import SpeciesHead
from pardus.pipeline.classify import load_rgb
from pardus.pipeline.core import ItemResult
from pardus.store import Workspace
from pardus.store.models import Detection, Media

HAZARD_CATEGORIES = ("fire", "smoke")


@dataclass
class FireSmokeStage:
    head_dir: Path
    name: str = "fire-smoke"
    _head: SpeciesHead | None = field(default=None, init=False, repr=False)
    _embedder: object | None = field(default=None, init=False, repr=False)

    @property
    def head(self) -> SpeciesHead:
        if self._head is None:
            head = SpeciesHead.current(self.head_dir, "fire")
            if head is None:
                raise ValueError("no fire head trained yet: run `pardus models train-species --task fire`")
            self._head = head
        return self._head

    @property
    def model_key(self) -> str:
        from pardus.models.registry import DINOV2_VITS14

        return f"{self.head.key}+{DINOV2_VITS14.key}"

    def eligible(self) -> Select[tuple[str]]:
        return select(Media.id).where(Media.available.is_(True), Media.file_mediatype.like("image/%"))

    def process(self, ws: Workspace, media_ids: Sequence[str]) -> Iterable[ItemResult]:
        from pardus.models.embedder import Dinov2Embedder

        if self._embedder is None:
            self._embedder = Dinov2Embedder()
        assert isinstance(self._embedder, Dinov2Embedder)
        with ws.db.session() as s:
            media = [m for m in (s.get(Media, mid) for mid in media_ids) if m is not None]
            for m in media:
                s.expunge(m)
        frames, ok = [], []
        for m in media:
            try:
                frames.append(load_rgb(ws, m, longest=448))
                ok.append(m.id)
            except Exception as exc:  # noqa: BLE001 - this file's problem, recorded with the reason
                yield ItemResult(m.id, error=f"could not be read ({type(exc).__name__}: {exc})")
        probs = self.head.probabilities(self._embedder.embed(frames))
        for mid, row in zip(ok, probs, strict=True):
            found = {c: float(p) for c, p in zip(self.head.classes, row, strict=True)
                     if c in HAZARD_CATEGORIES and p >= self.head.threshold}
            yield ItemResult(mid, payload=found)

    def write(self, s: Session, result: ItemResult) -> None:
        key = self.model_key
        s.execute(delete(Detection).where(Detection.media_id == result.media_id,
                                          Detection.extra["stage"].as_string() == key))
        for category, p in result.payload.items():
            s.add(Detection(media_id=result.media_id, category=category, score=p, x=0.0, y=0.0, w=1.0, h=1.0,
                            model_name=f"{self.head.task}-head", model_version=self.head.version,
                            extra={"stage": key, "region": "whole frame"}))
