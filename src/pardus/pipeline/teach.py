"""Teaching by example: the heads ``pardus models train-species`` fits on what people labelled.

The examples are the park's own confirmed observations (``classification_method='human'``):
for the species task, every human animal observation with a ``scientific_name`` (cropped to its
own box, else to the best animal box the detector found on that photo, else the whole frame);
for the fire task, human observations whose ``comments`` (or ``extra.hazard``) say ``fire`` or
``smoke``, against whole frames people labelled as anything else (``none``). A folder sorted
into one sub-folder per label (``sika deer/IMG_0001.JPG``) can stand in for the store; its photos
are cropped by the detect stage's own detector, as the species stage will crop the photos it names.

:func:`teach_head` fits the head (class-balanced, calibrated, with an open-set "unknown"), writes
its teaching report beside it and makes it current only when it is not worse than the current head.

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

from pardus.config import Settings
from pardus.models.head_report import TeachingReport
from pardus.models.species import HUMAN, SpeciesHead, square_crop
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
            .where(Observation.classification_method == "human", Observation.superseded_by.is_(None),
                   Observation.scientific_name.is_not(None),
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
            .where(Observation.classification_method == "human", Observation.superseded_by.is_(None),
                   Media.available.is_(True),
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


class StageCropper:
    """The crop the species stage would see of a photo that is not in the store (a sorted folder, a
    bench): the detect stage's own detector (``detect_choice``: MDv6 where installed, else the
    offline pair) and its thresholds, the best animal box, the same square crop. A head taught on
    whole frames and applied to detector crops learns the background, not the animal."""

    def __init__(self, settings: Settings) -> None:
        from pardus.pipeline.detect import DetectionStage
        from pardus.pipeline.stages import detect_choice

        self.stage = DetectionStage(detector=detect_choice(settings), workers=0,
                                    models_dir=settings.data_dir / "models")

    @property
    def detector_key(self) -> str:
        return self.stage.model_key

    def box(self, rgb: np.ndarray, label: str | None = None) -> Box | None:
        """The best animal box (for a labelled person also a person box, which the detector often
        finds instead of an animal one), or None when the detector found nothing."""
        animal, coco = self.stage._models()
        found = self.stage.boxes(rgb, animal, coco)
        want = ("animal", "person") if label == HUMAN else ("animal",)
        best = max((b for b in found if b.category in want), key=lambda b: (b.category == "animal", b.score),
                   default=None)
        return None if best is None else (best.x, best.y, best.w, best.h)

    def crop(self, data: bytes, label: str | None = None, longest: int = 1600) -> tuple[np.ndarray, Box | None]:
        """(square crop, its box) of one photo's bytes, decoded as the species stage decodes them."""
        from pardus.pipeline.decode import decode_bytes

        rgb = decode_bytes(data, longest)
        box = self.box(rgb, label)
        return square_crop(rgb, box), box


def folder_examples(folder: Path) -> list[tuple[Path, str]]:
    """(image, label) for every image under ``folder``; the label is the name of its own folder."""
    return sorted((p, p.parent.name) for p in Path(folder).rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.parent != Path(folder))


@dataclass
class Teaching:
    """What one teaching run produced: the head (saved; current or not, see ``report.made_current``),
    its report (saved beside it) and the problems met (unreadable photos, whole frames used)."""

    head: SpeciesHead
    report: TeachingReport
    problems: list[str]


def _folder_embeddings(ws: Workspace, folder: Path, progress: Callable[[int, int], None] | None
                       ) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(embeddings, labels, problems, notes) of a sorted folder, each photo cropped as the species stage
    would crop it (:class:`StageCropper`); the whole frame only where the detector found no animal,
    and said so. Cached by content hash and box like the store's examples."""
    import hashlib

    from pardus.models.embedder import Dinov2Embedder

    pairs = folder_examples(folder)
    cache = EmbeddingCache(models_dir(ws), Dinov2Embedder.info.key)
    cropper = StageCropper(ws.settings)
    embedder: Dinov2Embedder | None = None
    vectors, labels, problems, whole = [], [], [], []
    for i, (p, lab) in enumerate(pairs):
        try:
            data = p.read_bytes()
            crop, box = cropper.crop(data, lab)
        except Exception as exc:  # noqa: BLE001 - skip and report the unreadable file
            problems.append(f"{p}: {exc}")
            continue
        if box is None:
            whole.append(str(p.relative_to(folder)))
        k = EmbeddingCache.key(hashlib.sha256(data).hexdigest(), box, None)
        if k not in cache.items:
            embedder = embedder or Dinov2Embedder()
            cache.items[k] = embedder.embed([crop])[0]
        vectors.append(cache.items[k])
        labels.append(lab)
        if progress:
            progress(i + 1, len(pairs))
    cache.save()
    notes = [f"cropped to the best animal box of {cropper.detector_key} (as the species stage does)"]
    if whole:
        notes.append(f"{len(whole)} of {len(labels)} photos had no animal box: taught on the whole frame "
                     f"({', '.join(whole[:5])}{', ...' if len(whole) > 5 else ''})")
    x = np.stack(vectors) if vectors else np.zeros((0, 384), np.float32)
    return x, labels, problems, notes


def teach_head(ws: Workspace, task: str = "species", *, threshold: float = 0.5, min_examples: int = 3,
               max_per_class: int = 300, folder: Path | None = None, until: datetime | None = None,
               make_current: bool = False, progress: Callable[[int, int], None] | None = None) -> Teaching:
    """Fit, judge and save the ``task`` head. It becomes the current head (the one ``pardus process``
    uses) when it is the first, when its cross-validated balanced accuracy is at least the current
    head's, or with ``make_current``; otherwise it is saved beside it and the report says why not.
    Raises ``ValueError`` with what to do when there is too little to learn from."""
    from pardus.models.embedder import Dinov2Embedder
    from pardus.models.head_report import compare_with_current, teaching_report

    notes: list[str] = []
    if folder is not None:
        x, labels, problems, notes = _folder_embeddings(ws, folder, progress)
    else:
        examples = species_examples(ws, until) if task == "species" else hazard_examples(ws, until)
        x, labels, problems = embed_examples(ws, balanced(examples, max_per_class), progress)
        if task == "species":
            whole = sum(e.box is None for e in examples)
            if whole:
                notes.append(f"{whole} labelled photo(s) had no animal box: taught on the whole frame")
    counts: dict[str, int] = defaultdict(int)
    for lab in labels:
        counts[lab] += 1
    keep = {lab for lab, n in counts.items() if n >= min_examples}
    left_out = {lab: f"only {n} example(s), at least {min_examples} needed (--min-examples)"
                for lab, n in sorted(counts.items()) if lab not in keep}
    if len(keep) < 2:
        where = f"in {folder}" if folder else "among the human observations"
        raise ValueError(f"not enough labelled examples {where} to train the {task} head: it needs two or more "
                         f"labels with at least {min_examples} examples each (found {dict(counts) or 'none'}). "
                         "Label more photos in review, then run this again.")
    mask = np.array([lab in keep for lab in labels], bool)
    kept = [lab for lab, m in zip(labels, mask, strict=True) if m]
    head = SpeciesHead.train(x[mask], kept, threshold=threshold, task=task, embedder=Dinov2Embedder.info.key)
    report = teaching_report(head, x[mask], kept, left_out, notes)
    folder_out = models_dir(ws)
    compare_with_current(report, SpeciesHead.current(folder_out, task), folder_out, x[mask], kept, make_current)
    head.save(folder_out, make_current=report.made_current)
    report.save(folder_out)
    return Teaching(head, report, problems)


def train_head(ws: Workspace, task: str = "species", *, threshold: float = 0.5, min_examples: int = 3,
               max_per_class: int = 300, folder: Path | None = None, until: datetime | None = None,
               make_current: bool = False,
               progress: Callable[[int, int], None] | None = None) -> tuple[SpeciesHead, list[str]]:
    """:func:`teach_head` for callers that want the head and a flat list of what to tell the user
    (problems, labels left out, and whether the head was made current)."""
    t = teach_head(ws, task, threshold=threshold, min_examples=min_examples, max_per_class=max_per_class,
                   folder=folder, until=until, make_current=make_current, progress=progress)
    said = [f"{lab}: {why}; left out" for lab, why in t.report.left_out.items()]
    if not t.report.made_current:
        said.append(t.report.decision)
    return t.head, t.problems + said
