"""Teaching by example: the heads ``pardus models train-species`` fits on what people labelled.

The examples are the park's own confirmed observations (``classification_method='human'``):
for the species task, every human animal observation with a ``scientific_name`` (cropped to its
own box, else to the best animal box the detector found on that photo, else the whole frame);
for the fire task, human observations whose ``comments`` (or ``extra.hazard``) say ``fire`` or
``smoke``, against whole frames people labelled as anything else (``none``). A folder sorted
into one sub-folder per label (``sika deer/IMG_0001.JPG``) can stand in for the store.

Embeddings are cached in ``<data dir>/models/embeddings-<model>.npz`` by content hash and box,
so retraining after labelling ten more photos embeds only those ten.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Select, select

from pardus.models.species import SpeciesHead
from pardus.pipeline.classify import Box, media_crops, models_dir
from pardus.store import Workspace
from pardus.store.models import Detection, Media, Observation

HAZARDS = ("fire", "smoke")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Example:
    media_id: str
    sha256: str
    box: Box | None
    frame_time_s: float | None
    label: str


def _reviewed(q: Select[Any], until: datetime | None) -> Select[Any]:
    return q if until is None else q.where(Media.timestamp < until)


def species_examples(ws: Workspace, until: datetime | None = None) -> list[Example]:
    """One example per human-labelled animal (photo and name); repeated labels of a photo count once.
    Reviewed people (``Homo sapiens``) are examples too, so the head can tell a person the detector
    boxed as an animal (at night, in infrared) from the animals.
    ``until``: only photos taken before it (the part of a season reviewed so far)."""
    out: dict[tuple[str, str, Box | None], Example] = {}
    with ws.db.session() as s:
        rows = s.execute(_reviewed(
            select(Observation, Media.sha256).join(Media, Media.id == Observation.media_id)
            .where(Observation.classification_method == "human", Observation.scientific_name.is_not(None),
                   Observation.observation_type.in_(("animal", "human")), Media.available.is_(True)), until)
        ).all()
        for o, sha in rows:
            box: Box | None = None
            t = None
            if o.bbox_width:
                box = (o.bbox_x or 0.0, o.bbox_y or 0.0, o.bbox_width, o.bbox_height or 0.0)
            else:
                det = s.scalars(select(Detection).where(Detection.media_id == o.media_id,
                                                        Detection.category == "animal", Detection.repeat.is_(False))
                                .order_by(Detection.score.desc())).first()
                if det is not None:
                    box, t = (det.x, det.y, det.w, det.h), det.frame_time_s
            out.setdefault((o.media_id, o.scientific_name, box), Example(o.media_id, sha, box, t, o.scientific_name))
    return list(out.values())


def hazard_examples(ws: Workspace, until: datetime | None = None) -> list[Example]:
    """Whole frames labelled fire / smoke / none (anything else a person reviewed)."""
    labels: dict[str, str] = {}
    shas: dict[str, str] = {}
    with ws.db.session() as s:
        rows = s.execute(_reviewed(
            select(Observation.media_id, Observation.comments, Observation.extra, Media.sha256)
            .join(Media, Media.id == Observation.media_id)
            .where(Observation.classification_method == "human", Media.available.is_(True),
                   Media.file_mediatype.like("image/%")), until)
        ).all()
    for mid, comments, extra, sha in rows:
        said = ((extra or {}).get("hazard") or comments or "").strip().lower()
        label = said if said in HAZARDS else "none"
        shas[mid] = sha
        prev = labels.get(mid)
        if prev == "fire" or (label == "none" and prev is not None):
            continue  # a frame with flames and smoke is a fire; any hazard label beats "none"
        labels[mid] = label
    return [Example(mid, shas[mid], None, None, lab) for mid, lab in labels.items()]


def balanced(examples: list[Example], max_per_class: int) -> list[Example]:
    """At most ``max_per_class`` per label, spread evenly over the season (not just its first days)."""
    by: dict[str, list[Example]] = defaultdict(list)
    for e in examples:
        by[e.label].append(e)
    out = []
    for items in by.values():
        items.sort(key=lambda e: (e.media_id, e.box or ()))
        step = max(1, len(items) / max_per_class) if len(items) > max_per_class else 1
        out += [items[int(i * step)] for i in range(min(len(items), max_per_class))]
    return out


class EmbeddingCache:
    """Embeddings by (content hash, box, frame time), kept beside the heads in the data folder."""

    def __init__(self, folder: Path, model_key: str) -> None:
        self.path = folder / f"embeddings-{model_key.replace('/', '_').replace('@', '_')}.npz"
        self.items: dict[str, np.ndarray] = {}
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as z:
                self.items = dict(zip(z["keys"].tolist(), z["vectors"], strict=True))

    @staticmethod
    def key(sha: str, box: Box | None, t: float | None) -> str:
        return f"{sha}|{'' if box is None else ','.join(f'{v:.4f}' for v in box)}|{'' if t is None else t}"

    def save(self) -> None:
        if not self.items:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.stem + ".tmp.npz")
        np.savez(tmp, keys=np.array(list(self.items)), vectors=np.stack(list(self.items.values())))
        tmp.replace(self.path)


def embed_examples(ws: Workspace, examples: list[Example],
                   progress: Callable[[int, int], None] | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Embeddings and labels of the examples that could be read, and the problems of those that could not."""
    from pardus.models.embedder import Dinov2Embedder

    cache = EmbeddingCache(models_dir(ws), Dinov2Embedder.info.key)
    embedder: Dinov2Embedder | None = None
    vectors, labels, problems = [], [], []
    with ws.db.session() as s:
        media = {m.id: m for m in s.scalars(select(Media).where(Media.id.in_({e.media_id for e in examples})))}
        for m in media.values():
            s.expunge(m)
    for i, e in enumerate(examples):
        k = EmbeddingCache.key(e.sha256, e.box, e.frame_time_s)
        if k not in cache.items:
            try:
                crop = media_crops(ws, media[e.media_id], [(e.box, e.frame_time_s)])
            except Exception as exc:  # noqa: BLE001 - an unreadable example is skipped and reported
                problems.append(f"{media[e.media_id].file_path}: {exc}")
                continue
            embedder = embedder or Dinov2Embedder()
            cache.items[k] = embedder.embed(crop)[0]
        vectors.append(cache.items[k])
        labels.append(e.label)
        if progress:
            progress(i + 1, len(examples))
    cache.save()
    return (np.stack(vectors) if vectors else np.zeros((0, 384), np.float32)), labels, problems


def folder_examples(folder: Path) -> list[tuple[Path, str]]:
    """(image, label) for every image under ``folder``; the label is the name of its own folder."""
    return sorted((p, p.parent.name) for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.parent != Path(folder))


def train_head(ws: Workspace, task: str = "species", *, threshold: float = 0.5, min_examples: int = 3,
               max_per_class: int = 300, folder: Path | None = None, until: datetime | None = None,
               progress: Callable[[int, int], None] | None = None) -> tuple[SpeciesHead, list[str]]:
    """Fit and save the ``task`` head; returns it with the problems met on the way (skipped classes,
    unreadable photos). Raises ``ValueError`` with what to do when there is too little to learn from."""
    from pardus.models.embedder import Dinov2Embedder

    problems: list[str] = []
    if folder is not None:
        from PIL import Image

        pairs = folder_examples(folder)
        vectors, labels = [], []
        embedder = Dinov2Embedder()
        for i, (p, lab) in enumerate(pairs):
            try:
                with Image.open(p) as im:
                    rgb = np.asarray(im.convert("RGB"))
            except Exception as exc:  # noqa: BLE001 - skip and report the unreadable file
                problems.append(f"{p}: {exc}")
                continue
            vectors.append(embedder.embed([rgb])[0])
            labels.append(lab)
            if progress:
                progress(i + 1, len(pairs))
        x = np.stack(vectors) if vectors else np.zeros((0, 384), np.float32)
    else:
        examples = species_examples(ws, until) if task == "species" else hazard_examples(ws, until)
        x, labels, problems = embed_examples(ws, balanced(examples, max_per_class), progress)
    counts = defaultdict(int)
    for lab in labels:
        counts[lab] += 1
    keep = {lab for lab, n in counts.items() if n >= min_examples}
    problems += [f"{lab}: only {n} example(s), at least {min_examples} needed; left out"
                 for lab, n in sorted(counts.items()) if lab not in keep]
    mask = np.array([lab in keep for lab in labels], bool)
    if len(keep) < 2:
        where = f"in {folder}" if folder else "among the human observations"
        raise ValueError(f"not enough labelled examples {where} to train the {task} head: it needs two or more "
                         f"labels with at least {min_examples} examples each (found {dict(counts) or 'none'}). "
                         "Label more photos in review, then run this again.")
    head = SpeciesHead.train(x[mask], [lab for lab, m in zip(labels, mask, strict=True) if m],
                             threshold=threshold, task=task, embedder=Dinov2Embedder.info.key)
    head.save(models_dir(ws))
    return head, problems
