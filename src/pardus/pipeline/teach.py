"""Teaching by example: the heads ``pardus models train-species`` fits on what people labelled.

The examples are the park's own confirmed observations (``classification_method='human'``):
for the species task, every human animal observation with a ``scientific_name`` (cropped to its
own box, else to the best animal box the detector found on that photo, else the whole frame);
for the fire task, human observations whose ``comments`` (or ``extra.hazard``) say ``fire`` or
``smoke``, against whole frames people labelled as anything else (``none``).

Photos that are not in the store teach through one path (:class:`LabelledPhoto`): a folder sorted
into one sub-folder per label (``sika deer/IMG_0001.JPG``), or a file of human labels from another
tool: a Camtrap DP package, a COCO Camera Traps JSON or a Timelapse CSV (:func:`read_label_file`,
parsed by the readers in :mod:`pardus.interop`). A box the file drew is the crop; without one the
photo is cropped by the detect stage's own detector, as the species stage will crop the photos it
names. Labels a machine made (Camtrap DP ``classificationMethod=machine``, a COCO annotation with a
``score``, a Timelapse row of Pardus's export marked ``machine``) never teach: a head taught on a
model's guesses learns that model's mistakes.

:func:`teach_head` fits the head (class-balanced, calibrated, with an open-set "unknown"), writes
its teaching report beside it and makes it current only when it is not worse than what the species
stage uses now: the current head, or for a park's first head the ImageNet map on the same crops.

Embeddings are cached in ``<data dir>/models/embeddings-<model>.npz`` by content hash and box,
so retraining after labelling ten more photos embeds only those ten.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Select, select

from pardus.config import Settings
from pardus.models.head_report import TeachingReport
from pardus.models.species import HUMAN, SpeciesHead, TaxonMap, square_crop
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


E = TypeVar("E", "Example", "LabelledPhoto")


def balanced(examples: list[E], max_per_class: int) -> list[E]:
    """At most ``max_per_class`` per label, spread evenly over the season (not just its first days)."""
    by: dict[str, list[E]] = defaultdict(list)
    for e in examples:
        by[e.label].append(e)
    out = []
    for items in by.values():
        items.sort(key=lambda e: (e.media_id if isinstance(e, Example) else str(e.path), e.box or ()))
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


class DetectorBoxCache:
    """The detector's best box of a photo outside the store (a sorted folder, a label file), by content
    hash, detector and what was looked for (an animal, or also a person for a labelled person), kept
    beside the embeddings: retraining from the same folder or file re-runs neither the detector nor
    DINOv2 on the photos it has seen, only reads them to hash them."""

    def __init__(self, folder: Path, detector_key: str) -> None:
        self.path = folder / f"detector-boxes-{detector_key.replace('/', '_').replace('@', '_')}.json"
        self.items: dict[str, list[float] | None] = {}
        self.changed = False
        if self.path.is_file():
            try:
                self.items = dict(json.loads(self.path.read_text()))
            except (OSError, ValueError, TypeError):
                self.items = {}  # a damaged cache is only slower: the detector runs again

    @staticmethod
    def key(sha: str, label: str) -> str:
        return f"{sha}|{'animal,person' if label == HUMAN else 'animal'}"

    def get(self, sha: str, label: str) -> tuple[bool, Box | None]:
        """(known, box): box None when the detector found no animal."""
        k = self.key(sha, label)
        if k not in self.items:
            return False, None
        b = self.items[k]
        return True, None if b is None else (b[0], b[1], b[2], b[3])

    def put(self, sha: str, label: str, box: Box | None) -> None:
        self.items[self.key(sha, label)] = None if box is None else list(box)
        self.changed = True

    def save(self) -> None:
        if not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.items))
        tmp.replace(self.path)


class ImagenetJudge:
    """What the species stage says without a head, on the same teaching crops: the ImageNet map
    (``taxon_map``, the stage's own) names every crop of a label it can name (see
    :func:`~pardus.models.head_report.map_names_label`), so a park's first head is compared with it
    (:func:`~pardus.models.head_report.compare_with_imagenet`). ``key`` is None when its weights are
    not installed (the stage could not run it either)."""

    def __init__(self, taxon_map: TaxonMap, labels: Iterable[str]) -> None:
        from pardus.models.head_report import map_names_label
        from pardus.models.registry import MOBILENET_V2_IMAGENET

        self.taxon_map = taxon_map
        here = MOBILENET_V2_IMAGENET.available()
        self.key = f"{MOBILENET_V2_IMAGENET.key}/{taxon_map.name}" if here else None
        self.nameable = {lab for lab in set(labels)
                         if any(map_names_label(t.scientific_name, lab) for t in taxon_map.taxa)} if here else set()
        self.calls: list[tuple[str, str | None]] = []
        self._model: Any = None

    def wants(self, label: str) -> bool:
        return label in self.nameable

    def see(self, crop: np.ndarray, label: str) -> None:
        """Record the map's name (None: "unknown") for one teaching crop of ``label``."""
        if not self.wants(label):
            return
        if self._model is None:
            from pardus.models.species import ImagenetTaxonClassifier

            self._model = ImagenetTaxonClassifier(self.taxon_map)
        self.calls.append((label, self._model.classify([crop])[0].scientific_name))


def embed_examples(ws: Workspace, examples: list[Example], progress: Callable[[int, int], None] | None = None,
                   judge: ImagenetJudge | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Embeddings and labels of the examples that could be read, and the problems of those that could not.
    ``judge``: also show the crops of the labels it can name to the ImageNet map."""
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
        if k not in cache.items or (judge is not None and judge.wants(e.label)):
            try:
                crop = media_crops(ws, media[e.media_id], [(e.box, e.frame_time_s)])
            except Exception as exc:  # noqa: BLE001 - an unreadable example is skipped and reported
                problems.append(f"{media[e.media_id].file_path}: {exc}")
                continue
            if judge is not None:
                judge.see(crop[0], e.label)
            if k not in cache.items:
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


@dataclass(frozen=True)
class LabelledPhoto:
    """A photo on disk and the label a person gave it, from a sorted folder or a label file: what
    teaching from outside the store reads. ``box``: normalised (x, y, w, h) drawn in the file, used as
    the crop; None: the detector crops it, as the species stage will. ``named``: the photo as its
    source names it, for messages."""

    path: Path
    label: str
    box: Box | None = None
    named: str = ""


@dataclass
class LabelSource:
    """The photos a folder or a label file teaches from, what it held that does not teach and why
    (``notes``: machine labels, blanks, ...), and the labelled photos that could not be found
    (``problems``)."""

    kind: str
    photos: list[LabelledPhoto] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def folder_labels(folder: Path) -> LabelSource:
    """Every image under ``folder``; its label is the name of its own folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder; give a folder with one sub-folder per label")
    photos = [LabelledPhoto(p, p.parent.name, None, str(p.relative_to(folder))) for p in sorted(folder.rglob("*"))
              if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.parent != folder]
    return LabelSource("sorted folder", photos)


class _Gathered:
    """One label file's labels turned into photos to teach from, counting what does not teach."""

    def __init__(self, kind: str, image_root: Path | None) -> None:
        self.kind, self.image_root = kind, image_root
        self.items: dict[tuple[Path, str, Box | None], LabelledPhoto] = {}
        self.machine = self.unsaid = self.not_photos = 0
        self.not_species: dict[str, int] = defaultdict(int)
        self.remote: dict[str, None] = {}  # photos known only by URL, in order
        self.missing: dict[Path, str] = {}
        self.bad: list[str] = []
        self.notes: list[str] = []

    def add(self, named: str, path: Path | None, observation_type: str, name: str | None, box: Box | None,
            method: str = "human", photo: bool = True) -> None:
        """One label: ``path`` None when the photo is only a URL; ``method`` human / machine / "" (unsaid)."""
        if method != "human":
            if method == "machine":
                self.machine += 1
            else:
                self.unsaid += 1
            return
        label = HUMAN if observation_type == "human" else (name or "").strip()
        if observation_type not in ("animal", "human") or not label:
            self.not_species[observation_type or "no species"] += 1
            return
        if not photo or (path is not None and path.suffix.lower() not in IMAGE_SUFFIXES):
            self.not_photos += 1
            return
        if path is None:
            self.remote.setdefault(named)
        elif not path.is_file():
            self.missing.setdefault(path, named)
        else:
            self.items.setdefault((path, label, box), LabelledPhoto(path, label, box, named))

    def source(self, where: Path) -> LabelSource:
        photos = list(self.items.values())
        unboxed: dict[Path, set[str]] = defaultdict(set)
        for ph in photos:
            if ph.box is None:
                unboxed[ph.path].add(ph.label)
        mixed = {p for p, labs in unboxed.items() if len(labs) > 1}
        photos = [ph for ph in photos if ph.box is not None or ph.path not in mixed]
        n = len({ph.path for ph in photos})
        notes = [f"{self.kind} {where}: {len(photos)} human label(s) on {n} photo(s) to teach from"]
        if self.machine:
            notes.append(f"{self.machine} label(s) made by a machine ignored: only people's labels teach")
        if self.unsaid:
            notes.append(f"{self.unsaid} label(s) that do not say who made them (no classificationMethod) "
                         "not used: only people's labels teach")
        if self.not_species:
            kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.not_species.items()))
            notes.append(f"labels that name no species not used ({kinds})")
        if self.not_photos:
            notes.append(f"{self.not_photos} label(s) on videos or other non-photo files not used")
        if mixed:
            notes.append(f"{len(mixed)} photo(s) with two or more species and no boxes left out "
                         "(one crop cannot say which is which)")
        notes += self.notes
        problems = list(self.bad)
        lost = len(self.remote) + len(self.missing)
        if lost:
            notes.append(f"{lost} labelled photo(s) not on this machine ({len(self.remote)} URL(s), "
                         f"{len(self.missing)} not found): not taught")
        if self.remote:
            first = next(iter(self.remote))
            problems.append(f"{len(self.remote)} labelled photo(s) are URLs (e.g. {first}); Pardus fetches "
                            "nothing: download them and give their folder as --image-root")
        problems += [f"{named}: not found at {path}" for path, named in self.missing.items()]
        if self.missing and self.image_root is None:
            problems.append("give --image-root DIR if the file's photo paths are relative to another folder")
        return LabelSource(self.kind, photos, notes, problems)


def _camtrap_dp_labels(path: Path, image_root: Path | None) -> LabelSource:
    """A Camtrap DP package's media-level observations; a photo's file is looked for in the package
    (or ``image_root``), a URL's by its ``fileName`` in ``image_root``."""
    from pardus.interop.camtrap_dp import read_media_observations

    directory, rows, events = read_media_observations(path)
    g = _Gathered("Camtrap DP package", image_root)
    for r in rows:
        if "://" in r.file_path:
            local = image_root / r.file_name if image_root is not None and r.file_name else None
        else:
            local = (image_root or directory) / r.file_path
            if image_root is not None and r.file_name and not local.is_file():
                local = image_root / r.file_name
        g.add(r.file_path, local, r.observation_type, r.scientific_name, r.bbox, r.classification_method or "",
              photo=r.file_mediatype.startswith("image/"))
    if events:
        g.notes.append(f"{events} event-level observation(s) not used: they name a sequence, not a photo")
    return g.source(directory)


def _coco_labels(path: Path, image_root: Path | None) -> LabelSource:
    """A COCO Camera Traps file's annotations; ``file_name`` is relative to ``image_root`` (default: the
    file's folder). An annotation with a ``score`` or ``conf`` is a model's (COCO's results format), and
    so is one Pardus's export marks ``classification_method: machine``."""
    from PIL import Image

    from pardus.interop.coco_ct import label_to_observation, load_coco, normalised_bbox

    data = load_coco(path)
    root = image_root or path.parent
    cats = {c.get("id"): str(c.get("name", "")) for c in data.get("categories", []) if isinstance(c, dict)}
    images = {str(m.get("id")): m for m in data["images"] if isinstance(m, dict) and m.get("file_name")}
    g = _Gathered("COCO Camera Traps file", image_root)
    for ann in data.get("annotations", []):
        img = images.get(str(ann.get("image_id"))) if isinstance(ann, dict) else None
        if img is None or ann.get("category_id") not in cats:
            what = "its image" if img is None else "its category"
            g.bad.append(f"annotation {ann.get('id') if isinstance(ann, dict) else ann!r}: {what} is not in the file")
            continue
        named = str(img["file_name"])
        local = root / named.replace("\\", "/")
        observation_type, name = label_to_observation(cats[ann["category_id"]])
        box = None
        try:
            w, h = img.get("width"), img.get("height")
            if ann.get("bbox") and not (w and h) and local.is_file():
                with Image.open(local) as im:  # the header only: a box in pixels needs the photo's size
                    w, h = im.size
            if (b := normalised_bbox(ann.get("bbox"), w, h)) is not None:
                box = (float(b[0]), float(b[1]), float(b[2]), float(b[3]))
        except (OSError, TypeError, ValueError, IndexError):
            g.bad.append(f"annotation {ann.get('id')!r}: its bbox {ann.get('bbox')!r} could not be read as "
                         "[x, y, width, height] in pixels of the photo; the detector crops it instead")
        method = "machine" if "score" in ann or "conf" in ann or ann.get("classification_method") == "machine" \
            else "human"
        g.add(named, local, observation_type, name, box, method)
    return g.source(path)


def _timelapse_labels(path: Path, image_root: Path | None) -> LabelSource:
    """A Timelapse CSV: ``RelativePath``/``File`` below ``image_root`` (default: the CSV's folder, where
    Timelapse keeps its files beside the image set). Timelapse data fields are typed by people; only a
    row of Pardus's own export marked ``ClassificationMethod=machine`` is a model's."""
    from pardus.interop.coco_ct import label_to_observation
    from pardus.interop.timelapse import read_timelapse

    rows, deleted = read_timelapse(path)
    root = image_root or path.parent
    g = _Gathered("Timelapse CSV", image_root)
    for r in rows:
        observation_type, name = (r.observation_type, r.species) if r.observation_type \
            else label_to_observation(r.species)
        g.add(r.file, root / r.file, observation_type, name, None,
              "machine" if r.classification_method.lower() == "machine" else "human")
    if deleted:
        g.notes.append(f"{deleted} row(s) marked deleted in Timelapse (DeleteFlag) not used")
    return g.source(path)


def read_label_file(path: Path, image_root: Path | None = None) -> LabelSource:
    """The human labels of a Camtrap DP package (its folder or datapackage.json), a COCO Camera Traps
    JSON or a Timelapse CSV, as photos to teach from. Raises ``ValueError`` saying what is wrong with
    the file (never a traceback); labelled photos that cannot be found are problems, not errors."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist; give a Camtrap DP package (folder or datapackage.json), "
                         "a COCO Camera Traps .json or a Timelapse .csv")
    if image_root is not None and not Path(image_root).is_dir():
        raise ValueError(f"--image-root {image_root} is not a folder")
    if path.is_dir() or path.name == "datapackage.json":
        return _camtrap_dp_labels(path, image_root)
    if path.suffix.lower() == ".json":
        return _coco_labels(path, image_root)
    if path.suffix.lower() == ".csv":
        return _timelapse_labels(path, image_root)
    raise ValueError(f"{path} is not a label file Pardus reads: give a Camtrap DP package (folder or "
                     "datapackage.json), a COCO Camera Traps .json or a Timelapse .csv")


@dataclass
class Teaching:
    """What one teaching run produced: the head (saved; current or not, see ``report.made_current``),
    its report (saved beside it) and the problems met (photos missing or unreadable)."""

    head: SpeciesHead
    report: TeachingReport
    problems: list[str]


def _photo_embeddings(ws: Workspace, photos: list[LabelledPhoto], progress: Callable[[int, int], None] | None,
                      judge: ImagenetJudge | None) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """(embeddings, labels, problems, notes) of photos from a folder or a label file: cropped to the
    file's box where it drew one, else as the species stage would crop them (:class:`StageCropper`;
    the whole frame only where the detector found no animal, and said so). The detector's boxes and
    the embeddings are cached by content hash (:class:`DetectorBoxCache`, :class:`EmbeddingCache`),
    so a photo seen before is only read and hashed."""
    import hashlib

    from pardus.models.embedder import Dinov2Embedder
    from pardus.pipeline.decode import decode_bytes

    cache = EmbeddingCache(models_dir(ws), Dinov2Embedder.info.key)
    cropper = StageCropper(ws.settings) if any(ph.box is None for ph in photos) else None
    boxes = DetectorBoxCache(models_dir(ws), cropper.detector_key) if cropper is not None else None
    embedder: Dinov2Embedder | None = None
    vectors, labels, problems, whole = [], [], [], []
    drawn = detected = 0
    for i, ph in enumerate(photos):
        try:
            data = ph.path.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            rgb: np.ndarray | None = None
            box = ph.box
            if box is None:
                assert cropper is not None and boxes is not None
                known, box = boxes.get(sha, ph.label)
                if not known:
                    rgb = decode_bytes(data, 1600)
                    box = cropper.box(rgb, ph.label)
                    boxes.put(sha, ph.label, box)
            k = EmbeddingCache.key(sha, box, None)
            crop: np.ndarray | None = None
            if k not in cache.items or (judge is not None and judge.wants(ph.label)):
                crop = square_crop(rgb if rgb is not None else decode_bytes(data, 1600), box)
        except Exception as exc:  # noqa: BLE001 - skip and report the unreadable file
            problems.append(f"{ph.path}: could not be read ({exc})")
            continue
        if ph.box is not None:
            drawn += 1
        elif box is None:
            whole.append(ph.named or str(ph.path))
        else:
            detected += 1
        if judge is not None and crop is not None:
            judge.see(crop, ph.label)
        if k not in cache.items:
            assert crop is not None
            embedder = embedder or Dinov2Embedder()
            cache.items[k] = embedder.embed([crop])[0]
        vectors.append(cache.items[k])
        labels.append(ph.label)
        if progress:
            progress(i + 1, len(photos))
    cache.save()
    if boxes is not None:
        boxes.save()
    notes = []
    if drawn:
        notes.append(f"{drawn} photo(s) cropped to the box drawn in the label file")
    if cropper is not None and (detected or whole):
        notes.append(f"{detected} photo(s) cropped to the best animal box of {cropper.detector_key} "
                     "(as the species stage does)")
    if whole:
        notes.append(f"{len(whole)} of {len(labels)} photos had no animal box: taught on the whole frame "
                     f"({', '.join(whole[:5])}{', ...' if len(whole) > 5 else ''})")
    if problems:
        notes.append(f"{len(problems)} photo(s) could not be read: not taught")
    x = np.stack(vectors) if vectors else np.zeros((0, 384), np.float32)
    return x, labels, problems, notes


def teach_head(ws: Workspace, task: str = "species", *, threshold: float = 0.5, min_examples: int = 3,
               max_per_class: int = 300, folder: Path | None = None, label_file: Path | None = None,
               image_root: Path | None = None, until: datetime | None = None, make_current: bool = False,
               taxon_map: TaxonMap | None = None,
               progress: Callable[[int, int], None] | None = None) -> Teaching:
    """Fit, judge and save the ``task`` head from the store's human observations, a sorted ``folder``
    or a ``label_file`` (Camtrap DP, COCO Camera Traps, Timelapse; photos looked for under
    ``image_root``).

    It becomes the current head (the one ``pardus process`` uses) when its cross-validated balanced
    accuracy is at least the current head's; a first species head when it is at least the ImageNet
    map's (``taxon_map``, default the species stage's) on the same crops, for the labels the map can
    name; any head with ``make_current``. Otherwise it is saved beside and the report says why not.
    Raises ``ValueError`` with what to do when there is too little to learn from."""
    from pardus.models.embedder import Dinov2Embedder
    from pardus.models.head_report import compare_with_current, compare_with_imagenet, teaching_report
    from pardus.pipeline.classify import SpeciesStage

    if folder is not None and label_file is not None:
        raise ValueError("give a sorted folder or a label file to teach from, not both")
    if label_file is not None and task != "species":
        raise ValueError("a label file teaches the species head; fire and smoke are taught from the review desk "
                         "or a sorted folder")
    if image_root is not None and label_file is None:
        raise ValueError("--image-root says where a label file's photos are; give the file with --from-labels")
    folder_out = models_dir(ws)
    current = SpeciesHead.current(folder_out, task)
    source = folder_labels(folder) if folder is not None else \
        read_label_file(label_file, image_root) if label_file is not None else None
    examples: list[Example] = []
    if source is None:
        examples = species_examples(ws, until) if task == "species" else hazard_examples(ws, until)
    judge: ImagenetJudge | None = None
    if task == "species" and current is None:
        judge = ImagenetJudge(taxon_map or SpeciesStage().taxon_map,
                              [e.label for e in examples] if source is None else [p.label for p in source.photos])
    notes: list[str] = []
    if source is not None:
        x, labels, problems, notes = _photo_embeddings(ws, balanced(source.photos, max_per_class), progress, judge)
        notes, problems = source.notes + notes, source.problems + problems
    else:
        x, labels, problems = embed_examples(ws, balanced(examples, max_per_class), progress, judge)
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
        found = f"found {dict(counts) or 'none'}"
        if source is None:
            raise ValueError(f"not enough labelled examples among the human observations to train the {task} head: "
                             f"it needs two or more labels with at least {min_examples} examples each ({found}). "
                             "Label more photos in review, then run this again.")
        said = "".join(f" {line}." for line in notes + problems[:3])
        raise ValueError(f"not enough labelled examples in {folder or label_file} to train the {task} head: it needs "
                         f"two or more labels with at least {min_examples} examples each ({found}).{said}")
    mask = np.array([lab in keep for lab in labels], bool)
    kept = [lab for lab, m in zip(labels, mask, strict=True) if m]
    head = SpeciesHead.train(x[mask], kept, threshold=threshold, task=task, embedder=Dinov2Embedder.info.key)
    report = teaching_report(head, x[mask], kept, left_out, notes)
    if judge is not None:
        compare_with_imagenet(report, judge.key, judge.calls, make_current)
    else:
        compare_with_current(report, current, folder_out, x[mask], kept, make_current)
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
