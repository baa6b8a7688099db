"""MegaDetector batch output (format 1.1 to 1.6): read boxes into the store, write them for Timelapse.

The format (https://lila.science/megadetector-output-format) lists images (or videos, with
``frame_rate`` and per-detection ``frame_number``), each with boxes as normalised
[x_min, y_min, width, height], a category id looked up in ``detection_categories`` and a
confidence; classifier results ride along as ``classifications``. Pardus keeps each box as a
``Detection`` (same box convention, category by name, model name and version) and each processed
image as a ``StageState`` of stage "detect", so "processed, found nothing" is not confused with
"never processed". What the store does not model (the classifications as written, run
information) is kept, so that exporting what was imported gives back the same file: same images,
boxes, categories and confidences. The classifier's calls also become machine observations
(:mod:`pardus.interop.md_classifications`), so they travel to Camtrap DP and the other formats.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from pardus.ingest.probe import MEDIA_TYPES
from pardus.interop.json_input import read_json, shown
from pardus.interop.md_classifications import (
    ClassificationError,
    Label,
    Run,
    builtin_names,
    calls_of,
    check_categories,
    check_classifications,
    classifier_name,
    completion_time,
    detection_threshold,
    read_taxa,
    replace_observations,
    resolve,
    unresolved,
    unresolved_message,
    write_observations,
)
from pardus.store import Workspace
from pardus.store.blobs import sha256_file
from pardus.store.models import Deployment, Detection, Media, StageState, utcnow

STANDARD_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
STAGE = "detect"
_RUN_KEY = "md_run"
_DET_KEYS = {"category", "conf", "bbox", "frame_number", "classifications"}
# Boxes are normalised to the image; MegaDetector rounds, so a hair outside 0..1 is still a box.
BOX_TOLERANCE = 0.01
MAX_PATH = 1024  # the store's media.file_path
MAX_NAME = 255  # the store's media.file_name
_IMAGE_KEYS = {"file", "detections", "failure", "max_detection_conf", "frame_rate", "frames_processed"}


class MegaDetectorError(ValueError):
    """A results file that cannot be read or written as asked; the message says what to change."""


def model_version(info: dict[str, Any]) -> str:
    """The model version a results file names: detector_metadata first, then the detector file name."""
    meta = info.get("detector_metadata") or {}
    if isinstance(meta, dict) and meta.get("megadetector_version"):
        return str(meta["megadetector_version"])
    name = str(info.get("detector") or "")
    for pattern in (r"v(\d+[a-z](?:\.\d+)*)", r"_(\d+[a-z])(?:_|$)", r"v(\d+(?:\.\d+)*)"):
        if m := re.search(pattern, name.lower()):
            return "v" + m.group(1)
    return "v4" if not name else "unknown"


@dataclass
class MDImportReport:
    model_name: str
    model_version: str
    images: int = 0
    detections: int = 0
    failed: int = 0
    placeholders: int = 0
    unmatched: list[str] = field(default_factory=list)
    ambiguous: list[str] = field(default_factory=list)
    classifier: str | None = None  # classified_by of the species calls, when the file carries any
    min_conf: float | None = None  # boxes from this confidence became observations
    observations: int = 0  # media-level machine observations written
    events: int = 0  # event-level observations of the classifier (all bursts, recomputed)


def _find_media(s: Session, file: str, image_root: Path | None, deployment_id: str | None) -> tuple[str | None, int]:
    """The stored photo a results entry names, and how many photos it could name (0, 1 or more).

    In order: the content (sha256) of ``image_root/file`` when the folder is given (the only way that
    cannot be fooled by two cards holding the same DCIM/100MEDIA/IMG_0001.JPG); then the path on the
    card, within ``deployment_id`` when given; then '<deployment>/<path on the card>', the form
    Pardus's own park-wide export writes. A bare file name is never enough: a camera restarts its
    numbering on every card, so names repeat across a park and a guess would attach boxes to
    another camera's photo.
    """
    norm = file.replace("\\", "/")
    if image_root is not None:
        p = image_root / norm
        if p.is_file():
            mid = s.scalars(select(Media.id).where(Media.sha256 == sha256_file(p))).first()
            if mid:
                return mid, 1
    q = select(Media.id).where(Media.file_path == norm)
    if deployment_id:
        q = q.where(Media.deployment_id == deployment_id)
    ids = list(s.scalars(q.limit(2)))
    if len(ids) == 1:
        return ids[0], 1
    many = len(ids)
    first, sep, rest = norm.partition("/")
    if sep and rest and (deployment_id is None or deployment_id == first):
        ids = list(s.scalars(select(Media.id).where(Media.deployment_id == first, Media.file_path == rest).limit(2)))
        if len(ids) == 1:
            return ids[0], 1
        many = max(many, len(ids))
    return None, many


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None when it is not one (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise MegaDetectorError(f"{what} must be text, not {shown(value)}")
    if len(value) > limit:
        raise MegaDetectorError(f"{what} is {len(value)} characters long; Pardus keeps at most {limit}")
    return value


def _checked_detection(d: object, where: str) -> dict[str, Any]:
    """One box, checked: category id, confidence 0..1, a normalised [x, y, width, height]."""
    if not isinstance(d, dict):
        raise MegaDetectorError(f"{where} must be an object with category, conf and bbox, not {shown(d)}")
    cat = d.get("category")
    if isinstance(cat, bool) or not isinstance(cat, str | int) or not str(cat).strip():
        raise MegaDetectorError(f"{where}: 'category' must be a category id such as \"1\", not {shown(cat)}")
    conf = _number(d.get("conf"))
    if conf is None or not 0.0 <= conf <= 1.0:
        raise MegaDetectorError(f"{where}: 'conf' must be a number from 0 to 1, not {shown(d.get('conf'))}")
    bbox = d.get("bbox")
    numbers = [_number(v) for v in bbox] if isinstance(bbox, list) else []
    if len(numbers) != 4 or any(v is None for v in numbers):
        raise MegaDetectorError(
            f"{where}: 'bbox' must be four numbers [x_min, y_min, width, height], not {shown(bbox)}"
        )
    x, y, w, h = (float(v) for v in numbers)  # type: ignore[arg-type]
    tol = BOX_TOLERANCE
    if not (-tol <= x <= 1 + tol and -tol <= y <= 1 + tol and 0 <= w <= 1 + tol and 0 <= h <= 1 + tol):
        raise MegaDetectorError(
            f"{where}: 'bbox' {shown(bbox)} is not normalised: x, y, width and height lie between 0 and 1"
        )
    out = {**d, "category": str(cat), "conf": conf, "bbox": [x, y, w, h]}
    if "frame_number" in d:
        frame = d["frame_number"]
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 0:
            raise MegaDetectorError(f"{where}: 'frame_number' must be a whole number from 0, not {shown(frame)}")
    return out


def _checked_image(img: object, n: int, path: Path) -> dict[str, Any]:
    """One image entry, checked, with its boxes normalised; the message names the entry to fix."""
    where = f"image #{n + 1} in {path.name}"
    if not isinstance(img, dict):
        raise MegaDetectorError(f"{where} must be an object with 'file' and 'detections', not {shown(img)}")
    if not isinstance(img.get("file"), str):
        raise MegaDetectorError(f"{where} has no 'file'")
    file = _text(img["file"], f"{where}: 'file'", MAX_PATH)
    where = f"image #{n + 1} ({file}) in {path.name}"
    if len(PurePosixPath(file.replace("\\", "/")).name) > MAX_NAME:
        raise MegaDetectorError(f"{where}: the file name is longer than {MAX_NAME} characters")
    failure = img.get("failure")
    if failure is not None and not isinstance(failure, str):
        raise MegaDetectorError(f"{where}: 'failure' must be text or null, not {shown(failure)}")
    rate = img.get("frame_rate")
    if rate is not None and ((r := _number(rate)) is None or r <= 0):
        raise MegaDetectorError(f"{where}: 'frame_rate' must be a positive number, not {shown(rate)}")
    dets = img.get("detections")
    if dets is not None and not isinstance(dets, list):
        raise MegaDetectorError(f"{where}: 'detections' must be a list of boxes or null, not {shown(dets)}")
    checked = [_checked_detection(d, f"{where}, box #{i + 1}") for i, d in enumerate(dets or [])]
    return {**img, "detections": checked if dets is not None else None}


def read_results(path: Path) -> dict[str, Any]:
    """A MegaDetector results file read and checked whole, before anything is stored.

    Every entry is checked first so that a bad box halfway down a file of 100,000 images stops
    the import with nothing written, and the message names the entry, not a Python exception.
    """
    data = read_json(path, MegaDetectorError)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise MegaDetectorError(f"{path} is not a MegaDetector results file: it has no 'images' list")
    info = data.get("info")
    if info is not None and not isinstance(info, dict):
        raise MegaDetectorError(f"{path.name}: 'info' must be an object, not {shown(info)}")
    cats = data.get("detection_categories")
    if cats is not None and not (
        isinstance(cats, dict) and all(isinstance(v, str) and v.strip() for v in cats.values())
    ):
        raise MegaDetectorError(
            f"{path.name}: 'detection_categories' must map ids to names, like {{\"1\": \"animal\"}}"
        )
    images = [_checked_image(img, n, path) for n, img in enumerate(data["images"])]
    try:
        classes = check_categories(data.get("classification_categories"), "classification_categories")
        check_categories(data.get("classification_category_descriptions"), "classification_category_descriptions")
        for n, img in enumerate(images):
            for i, d in enumerate(img["detections"] or []):
                if "classifications" in d:
                    check_classifications(d["classifications"], classes,
                                          f"image #{n + 1} ({img['file']}) in {path.name}, box #{i + 1}")
    except ClassificationError as exc:
        raise MegaDetectorError(str(exc) if path.name in str(exc) else f"{path.name}: {exc}") from None
    return {**data, "images": images}


def import_megadetector(
    ws: Workspace,
    path: Path | str,
    *,
    image_root: Path | str | None = None,
    deployment_id: str | None = None,
    skip_unmatched: bool = False,
    observations: bool | None = None,
    min_conf: float | None = None,
    taxa: Path | str | None = None,
    classifier: str | None = None,
) -> MDImportReport:
    """Import a MegaDetector results file as detections on the store's media.

    Each ``file`` is matched to a stored photo by content when ``image_root`` holds the images, else
    by its path on the card or '<deployment>/<path>' (see ``_find_media``). Every entry is matched
    before anything is written: when some match no photo, the file is refused whole with what to
    do (give ``image_root``), unless ``skip_unmatched`` (they are listed in the report) or
    ``deployment_id`` (they are recorded as unavailable media of that deployment, so no detection
    is lost). A file none of whose entries match is always refused. Importing the same results
    again replaces that model's boxes on those photos rather than adding them twice. A file with
    any entry Pardus cannot read (see ``read_results``) is refused whole.

    ``observations`` (default: when the file carries classifications) also writes the file's calls
    as machine observations, so they reach Camtrap DP and the other exports (see
    :mod:`pardus.interop.md_classifications`): boxes from ``min_conf`` (default the file's typical
    threshold, else 0.2), named through ``taxa`` (a label,scientificName CSV) where Pardus cannot
    name a class itself, ``classified_by`` ``classifier`` (default the file's ``info.classifier``).
    """
    path = Path(path)
    data = read_results(path)
    info = data.get("info") or {}
    fmt = str(info.get("format_version", "1.0"))
    cats = data.get("detection_categories") or STANDARD_CATEGORIES
    name = _text(info.get("detector") or "megadetector_v4", f"{path.name}: info.detector", 128)
    version = _text(model_version(info), f"{path.name}: the model version", 64)
    rep = MDImportReport(model_name=name, model_version=version)
    root = Path(image_root) if image_root is not None else None
    if root is not None and not root.is_dir():
        raise MegaDetectorError(f"--image-root {root} is not a folder")
    plan = _plan_observations(data, path, name, observations, min_conf, taxa, classifier)
    if plan is not None:
        rep.classifier, rep.min_conf = plan.run.classifier, plan.run.min_conf
    with ws.db.session() as s:
        if deployment_id and s.get(Deployment, deployment_id) is None:
            raise MegaDetectorError(
                f"no deployment {deployment_id!r}; create it first with `pardus deployments add {deployment_id}`"
            )
        found: list[str | None] = []
        for img in data["images"]:
            mid, candidates = _find_media(s, img["file"], root, deployment_id)
            found.append(mid)
            if mid is None:
                (rep.ambiguous if candidates > 1 else rep.unmatched).append(img["file"])
        missed = rep.unmatched + rep.ambiguous
        total = len(data["images"])
        if missed and deployment_id is None and (len(missed) == total or not skip_unmatched):
            raise MegaDetectorError(_unmatched_message(missed, rep.ambiguous, total, root))
        run = {k: v for k, v in data.items() if k != "images"}
        run["info"] = {"format_version": fmt, **info}
        run_key = ws.derived.put_bytes(json.dumps(run, sort_keys=True).encode())
        for n, (img, mid) in enumerate(zip(data["images"], found, strict=True)):
            file = img["file"]
            if mid is None:
                if deployment_id is None:
                    continue
                mid = _placeholder(s, file, deployment_id)
                rep.placeholders += 1
            boxes = _store_image(s, mid, img, cats, name, version, run_key, rep)
            if plan is not None:
                rep.observations += plan.write(s, mid, img, boxes)
            rep.images += 1
            if n % 500 == 499:
                s.flush()
    if plan is not None and plan.run.classifier is not None:
        from pardus.pipeline.sequences import smooth_sequences

        rep.events = smooth_sequences(ws, plan.run.classifier, detector_key=name)
    return rep


@dataclass
class _ObservationPlan:
    """How one file's calls become observations, settled (names resolved) before anything is written."""

    run: Run
    det_categories: dict[str, str]
    cls_categories: dict[str, str]
    descriptions: dict[str, str]
    labels: dict[str, Label]

    def write(self, s: Session, media_id: str, img: dict[str, Any], boxes: list[Detection]) -> int:
        replace_observations(s, media_id, self.run)
        if img.get("failure"):
            return 0
        if boxes:
            s.flush()  # the boxes' ids, which the observations name
        detection_ids = [d.id for d in boxes]
        classified, detector = calls_of(img, self.det_categories, self.cls_categories, self.descriptions,
                                        self.run.min_conf)
        dep = s.scalar(select(Media.deployment_id).where(Media.id == media_id))
        assert dep is not None
        return write_observations(s, media_id, dep, img, detection_ids, self.labels, classified, detector,
                                  self.run, self.cls_categories)


def _plan_observations(
    data: dict[str, Any], path: Path, detector: str, observations: bool | None, min_conf: float | None,
    taxa: Path | str | None, classifier: str | None,
) -> _ObservationPlan | None:
    """Whether and how the file's calls become observations; refuses (nothing written) a class Pardus
    cannot name, so no photo is published under a guessed species."""
    cls_categories = {str(k): v for k, v in (data.get("classification_categories") or {}).items()}
    has_classes = any(d.get("classifications") for img in data["images"] for d in img["detections"] or [])
    if not (has_classes if observations is None else observations):
        return None
    info = data.get("info") or {}
    descriptions = {str(k): v for k, v in (data.get("classification_category_descriptions") or {}).items()}
    det_categories = {str(k): v for k, v in (data.get("detection_categories") or STANDARD_CATEGORIES).items()}
    try:
        table = read_taxa(taxa) if taxa is not None else {}
        threshold = detection_threshold(info, min_conf)
        who = classifier_name(info, descriptions, detector, classifier) if has_classes else None
    except ClassificationError as exc:
        raise MegaDetectorError(str(exc)) from None
    texts: list[str] = []
    for img in data["images"]:
        if img.get("failure"):
            continue
        classified, plain = calls_of(img, det_categories, cls_categories, descriptions, threshold)
        texts += [t for _, _, t in classified] + [t for _, _, t in plain]
    known = builtin_names()
    missing = unresolved(texts, table, known)
    if missing:
        raise MegaDetectorError(unresolved_message(missing, path.name))
    labels = {t: resolve(t, table, known) for t in set(texts)}
    return _ObservationPlan(Run(detector, who, threshold, completion_time(info)), det_categories, cls_categories,
                            descriptions, {t: lab for t, lab in labels.items() if lab is not None})


def _unmatched_message(missed: list[str], ambiguous: list[str], total: int, root: Path | None) -> str:
    """Why entries found no photo, and the one thing to do about it."""
    head = f"{len(missed)} of {total} file(s) in the results match no photo in Pardus (first: {missed[0]})"
    if ambiguous:
        head += f"; {len(ambiguous)} name a path that several cards hold (first: {ambiguous[0]})"
    if root is None:
        return (head + ". Give --image-root FOLDER, the folder the results' paths are relative to, so each photo "
                "is recognised by its content; or import the missing cards first. Nothing was imported.")
    return (head + f". They are not under {root} or not in Pardus: import their cards first, or give "
            "--skip-unmatched to import the others (or -d DEPLOYMENT to record them as photos not yet here). "
            "Nothing was imported.")


def _placeholder(s: Session, file: str, deployment_id: str) -> str:
    existing = s.scalars(
        select(Media.id).where(Media.deployment_id == deployment_id, Media.file_path == file)
    ).first()
    if existing:
        return existing
    suffix = PurePosixPath(file).suffix.lower()
    m = Media(
        deployment_id=deployment_id,
        file_path=file,
        file_name=PurePosixPath(file.replace("\\", "/")).name,
        file_mediatype=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        available=False,
        timestamp_source="none",
        file_issues="known only from a MegaDetector results file; the photo itself is not in Pardus",
    )
    s.add(m)
    s.flush()
    return m.id


def _store_image(
    s: Session,
    media_id: str,
    img: dict[str, Any],
    cats: dict[str, str],
    name: str,
    version: str,
    run_key: str,
    rep: MDImportReport,
) -> list[Detection]:
    """Store one image's boxes and stage state; returns the new boxes, in the file's order."""
    s.execute(
        delete(Detection).where(
            Detection.media_id == media_id, Detection.model_name == name, Detection.model_version == version
        )
    )
    state = s.scalars(
        select(StageState).where(StageState.media_id == media_id, StageState.stage == STAGE, StageState.model == name)
    ).first() or StageState(media_id=media_id, stage=STAGE, model=name,
                            deployment_id=s.scalar(select(Media.deployment_id).where(Media.id == media_id)))
    s.add(state)
    failure = img.get("failure")
    state.status = "failed" if failure else "done"
    state.error = failure
    state.updated = utcnow()
    if failure:
        rep.failed += 1
    frame_rate = img.get("frame_rate")
    image_extra = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
    if frame_rate is not None or "frames_processed" in img:
        image_extra["frame_rate"] = frame_rate
        image_extra["frames_processed"] = img.get("frames_processed")
    added: list[Detection] = []
    for i, d in enumerate(img.get("detections") or []):
        cid = d["category"]
        bbox = d["bbox"]
        extra: dict[str, Any] = {_RUN_KEY: run_key}
        if cats.get(cid) != STANDARD_CATEGORIES.get(cid):
            extra["category_id"] = cid
        if "frame_number" in d:
            extra["frame_number"] = d["frame_number"]
        if "classifications" in d:
            extra["classifications"] = d["classifications"]
        extra.update({k: v for k, v in d.items() if k not in _DET_KEYS})
        if i == 0 and image_extra:
            extra["image"] = image_extra
        frame_time = d["frame_number"] / frame_rate if "frame_number" in d and frame_rate else None
        det = Detection(
                media_id=media_id,
                category=cats.get(cid, cid)[:16],
                score=d["conf"],
                x=float(bbox[0]), y=float(bbox[1]), w=float(bbox[2]), h=float(bbox[3]),
                frame_time_s=frame_time,
                model_name=name,
                model_version=version,
                extra=extra,
            )  # fmt: skip
        s.add(det)
        added.append(det)
        rep.detections += 1
    if not img.get("detections") and image_extra:
        # Nothing to hang the video facts on: keep them with the media itself.
        m = s.get(Media, media_id)
        if m is not None:
            m.extra = {**(m.extra or {}), "megadetector": image_extra}
    return added


def _choose_run(s: Session, model_name: str | None) -> tuple[list[str], Any]:
    """The detect-stage keys whose photos to list, and the SQL condition for their boxes.

    A results file read in is recorded under one name (the stage state's model and every box's
    model_name). The detection stage records its run under a combined key (e.g. YOLOX + COCO SSD at
    960 px) and each box under the model that found it, with the run's key in ``extra['stage']``;
    --model takes either the run's key (all its boxes) or one model's name (only that model's boxes).
    """
    runs = sorted(s.scalars(select(StageState.model).where(StageState.stage == STAGE).distinct()))
    stage_of_box = Detection.extra["stage"].as_string()
    if model_name is None:
        if len(runs) != 1:
            raise MegaDetectorError(
                "say which detector run to write with --model; this store has: " + (", ".join(runs) or "none")
                + ("" if runs else " (run `pardus process` or import a results file first)")
            )
        model_name = runs[0]
    if model_name in runs:
        return [model_name], or_(stage_of_box == model_name, Detection.model_name == model_name)
    pipeline_keys = sorted(k for k in s.scalars(
        select(stage_of_box).where(Detection.model_name == model_name).distinct()) if k)  # fmt: skip
    if pipeline_keys:
        return pipeline_keys, Detection.model_name == model_name
    names = sorted(set(runs) | {n for n in s.scalars(select(Detection.model_name).distinct()) if n})
    raise MegaDetectorError(f"no detections of model {model_name!r}; there are: {', '.join(names) or 'none'}")


def _version_tuple(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)) or (1, 0)


def export_megadetector(
    ws: Workspace,
    out: Path | str,
    *,
    model_name: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    format_version: str = "1.4",
) -> dict[str, int]:
    """Write one model's detections as a MegaDetector results file that Timelapse and AddaxAI open.

    ``file`` is each photo's path as it was on the card (or in the source results file), so point
    Timelapse at the same image folder. Every photo the model processed is listed, with an empty
    list when it found nothing and ``failure`` when it could not read the photo.
    """
    out = Path(out)
    with ws.db.session() as s:
        keys, box_filter = _choose_run(s, model_name)
        model_name = model_name or keys[0]
        q = (
            select(Media.id, Media.file_path, Media.extra, StageState.status, StageState.error, Media.deployment_id)
            .join(StageState, (StageState.media_id == Media.id) & (StageState.stage == STAGE))
            .where(StageState.model.in_(keys))
            .order_by(StageState.id)
        )
        if deployment_ids is not None:
            q = q.where(Media.deployment_id.in_(list(deployment_ids)))
        media = list(s.execute(q))
        # Two cards hold the same DCIM/100MEDIA/IMG_0001.JPG: a park-wide file names each photo
        # '<deployment>/<path on the card>', the layout of a folder with one subfolder per card.
        park_wide = len({r[5] for r in media}) > 1
        dets: dict[str, list[Detection]] = {}
        for d in s.scalars(select(Detection).where(box_filter).order_by(Detection.media_id, Detection.id)):
            dets.setdefault(d.media_id, []).append(d)
        run_keys = {d.extra.get(_RUN_KEY) for ds in dets.values() for d in ds if d.extra}
        run: dict[str, Any] = {}
        for key in sorted(k for k in run_keys if k):
            if ws.derived.exists(key):
                run = json.loads(ws.derived.get_bytes(key))
                break
        versions = {d.model_version for ds in dets.values() for d in ds}
        info = dict(run.get("info") or {})
        info["format_version"] = format_version
        info["detector"] = model_name
        if (_version_tuple(format_version) >= (1, 2) and "detector_metadata" not in info and len(versions) == 1
                and versions != {"unknown"}):  # a version Pardus could not read is not declared as one
            info["detector_metadata"] = {"megadetector_version": next(iter(versions))}
        cats = dict(run.get("detection_categories") or STANDARD_CATEGORIES)
        name_to_id = {v: k for k, v in cats.items()}
        legacy_max = _version_tuple(format_version) < (1, 3)
        images = []
        counts = {"images": 0, "detections": 0, "failed": 0}
        for mid, file_path, mextra, status, error, dep in media:
            img: dict[str, Any] = {"file": f"{dep}/{file_path}" if park_wide else file_path}
            ds = dets.get(mid, [])
            image_extra = (ds[0].extra or {}).get("image") if ds else (mextra or {}).get("megadetector")
            if image_extra:
                img.update({k: v for k, v in image_extra.items() if v is not None or k == "frame_rate"})
            if status == "failed":
                img["failure"] = error or "failed"
                img["detections"] = None
                counts["failed"] += 1
            else:
                if legacy_max:
                    img["max_detection_conf"] = max((d.score for d in ds), default=0.0)
                img["detections"] = [_detection_json(d, cats, name_to_id) for d in ds]
                counts["detections"] += len(ds)
            images.append(img)
            counts["images"] += 1
    result: dict[str, Any] = {"info": info, "detection_categories": cats}
    for k in ("classification_categories", "classification_category_descriptions"):
        if k in run:
            result[k] = run[k]
    result["images"] = images
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=1, ensure_ascii=False)
    return counts


def _detection_json(d: Detection, cats: dict[str, str], name_to_id: dict[str, str]) -> dict[str, Any]:
    extra = d.extra or {}
    cid = extra.get("category_id") or name_to_id.get(d.category)
    if cid is None:
        cid = str(max((int(k) for k in cats if k.isdigit()), default=0) + 1)
        cats[cid] = d.category
        name_to_id[d.category] = cid
    out: dict[str, Any] = {"category": cid, "conf": d.score, "bbox": [d.x, d.y, d.w, d.h]}
    if "frame_number" in extra:
        out["frame_number"] = extra["frame_number"]
    if "classifications" in extra:
        out["classifications"] = extra["classifications"]
    # the detection stage's own bookkeeping ("stage", "label") is not part of the format
    skip = {_RUN_KEY, "category_id", "image", "stage", "label"}
    out.update({k: v for k, v in extra.items() if k not in skip and k not in out})
    return out
