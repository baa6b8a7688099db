"""COCO Camera Traps JSON in and out: the format of LILA BC data sets and of many training sets.

COCO Camera Traps (https://github.com/agentmorris/MegaDetector/blob/main/megadetector/data_management/README.md)
is COCO with camera-trap fields on each image: ``location`` (the camera's place), ``datetime``
(camera local time, no zone), and the burst it belongs to (``seq_id``, ``seq_num_frames``,
``frame_num``). Boxes are in pixels ([x, y, width, height]); categories are labels such as
"empty", "human" or a species.

Mapping: a location becomes a Location and one Deployment of the same id; an image becomes a
Media (burst -> sequence, ``frame_num`` = Pardus's 1-based sequence index - 1); an annotation
becomes a media-level Observation (box normalised by the image size; "empty" -> blank,
"human"/"person" -> human, "vehicle" -> vehicle, other labels -> animal with that label as
scientificName). Every key the store does not model is kept, and where the file wrote a value
differently from how Pardus renders it (an integer id, a burst count that counts frames not in
the file) the original is kept in ``text_hints``, so export after import gives back the same file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.ingest.probe import MEDIA_TYPES
from pardus.ingest.timefix import to_utc
from pardus.store import Workspace
from pardus.store.models import Deployment, Location, Media, Observation, Project

DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
_IMAGE_KEYS = {"id", "file_name", "width", "height", "datetime", "seq_id", "seq_num_frames", "frame_num", "location"}
_ANN_KEYS = {"id", "image_id", "category_id", "bbox", "bbox_relative"}
SOURCE = "coco-ct"


class CocoError(ValueError):
    """A COCO Camera Traps file that cannot be read or written as asked; says what to change."""


def label_to_observation(name: str) -> tuple[str, str | None]:
    """(observationType, scientificName) of a COCO category name."""
    n = name.strip().lower()
    if n in ("empty", "blank", "none", "nothing"):
        return "blank", None
    if n in ("human", "person", "people", "humans"):
        return "human", None
    if n in ("vehicle", "car", "truck", "motorcycle"):
        return "vehicle", None
    if n in ("unknown", "unidentifiable", "unidentified"):
        return "unknown", None
    return "animal", name


@dataclass
class CocoImportReport:
    project_id: str
    images: int = 0
    annotations: int = 0
    locations: int = 0
    warnings: list[str] = field(default_factory=list)


def _parse_dt(text: str) -> datetime | None:
    for fmt in DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def render_image(m: dict[str, Any], seq_count: int | None) -> dict[str, Any]:
    """A Media row (as a dict) in COCO Camera Traps form, before the source's own text is put back."""
    img: dict[str, Any] = {"id": m["id"], "file_name": m["file_path"]}
    if m["width"] is not None:
        img["width"] = m["width"]
    if m["height"] is not None:
        img["height"] = m["height"]
    if m["camera_time"] is not None:
        img["datetime"] = m["camera_time"].strftime("%Y-%m-%d %H:%M:%S")
    if m["sequence_id"] is not None:
        img["seq_id"] = m["sequence_id"]
        if seq_count is not None:
            img["seq_num_frames"] = seq_count
        if m["sequence_index"] is not None:
            img["frame_num"] = m["sequence_index"] - 1
    if m["location_id"] is not None:
        img["location"] = m["location_id"]
    img.update((m["extra"] or {}).get("coco", {}))
    return img


def render_annotation(o: dict[str, Any], category_id: Any) -> dict[str, Any]:
    ann: dict[str, Any] = {"id": o["id"], "image_id": o["media_id"], "category_id": category_id}
    if o["bbox_x"] is not None and o["width"] and o["height"]:
        w, h = o["width"], o["height"]
        ann["bbox"] = [o["bbox_x"] * w, o["bbox_y"] * h, o["bbox_width"] * w, o["bbox_height"] * h]
    elif o["bbox_x"] is not None and not (o["extra"] or {}).get("coco", {}).get("bbox"):
        # Without the image's size a box cannot be given in pixels: give it as fractions of the
        # image (the format's bbox_relative) instead of dropping it (issue 20).
        ann["bbox_relative"] = [o["bbox_x"], o["bbox_y"], o["bbox_width"], o["bbox_height"]]
    ann.update((o["extra"] or {}).get("coco", {}))
    return ann


def _with_hints(rendered: dict[str, Any], hints: dict[str, Any] | None) -> dict[str, Any]:
    """Put back the file's own values wherever the stored value still renders as on import."""
    for k, (canonical, original) in ((hints or {}).get("coco", {}).items()):
        if rendered.get(k) == canonical:
            if original is None:
                rendered.pop(k, None)
            else:
                rendered[k] = original
    return rendered


def _hints(rendered: dict[str, Any], original: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = {}
    for k in keys:
        if json.dumps(rendered.get(k)) != json.dumps(original.get(k)):
            out[k] = [rendered.get(k), original.get(k)]
    return {"coco": out} if out else {}


def load_coco(path: Path) -> dict[str, Any]:
    """The parsed file, refused with a clear message unless it is JSON with an ``images`` list."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as exc:
        raise CocoError(f"cannot read {path} as JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CocoError(f"{path} is not COCO Camera Traps: it has no 'images' list")
    return data


def relative_bbox(bbox: Any) -> tuple[float, float, float, float] | None:
    """A ``bbox_relative`` ([x, y, width, height] as fractions of the image), checked; None when absent
    or not four numbers inside the image (a hair of rounding outside is tolerated)."""
    if not isinstance(bbox, list | tuple) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    if not all(map(math.isfinite, (x, y, w, h))) or w <= 0 or h <= 0 or x < -0.01 or y < -0.01 \
            or x + w > 1.01 or y + h > 1.01:
        return None
    return x, y, w, h


def normalised_bbox(bbox: Any, width: Any, height: Any) -> tuple[float, float, float, float] | None:
    """A COCO box ([x, y, width, height] in pixels) as fractions of the image; None without a box or
    without the image's size."""
    if not bbox or not (width and height):
        return None
    return bbox[0] / width, bbox[1] / height, bbox[2] / width, bbox[3] / height


def import_coco(
    ws: Workspace,
    path: Path | str,
    *,
    project_id: str | None = None,
    utc_offset_minutes: int = 0,
    prefix: str = "",
) -> CocoImportReport:
    """Import a COCO Camera Traps file: locations, images (as media, not fetched) and annotations.

    Image times in COCO CT have no zone; ``utc_offset_minutes`` says which zone the cameras were set
    to (0 = UTC). Importing the same file again updates the rows it made.
    """
    path = Path(path)
    data = load_coco(path)
    cats = {c["id"]: c["name"] for c in data.get("categories", [])}
    by_key: dict[tuple[str, str | None], Any] = {}
    for cid, name in cats.items():
        by_key[label_to_observation(name)] = cid  # the last of synonyms wins, as on export
    pid = project_id or f"coco-{path.stem}"
    rep = CocoImportReport(project_id=pid)
    with ws.db.session() as s:
        project = s.get(Project, pid) or Project(id=pid, title="")
        s.add(project)
        info = data.get("info") or {}
        project.title = str(info.get("description") or pid)[:500]
        project.extra = {
            **(project.extra or {}),
            "coco": {k: v for k, v in data.items() if k not in ("images", "annotations")},
        }
        seq_counts: dict[Any, int] = {}
        for img in data["images"]:
            if img.get("seq_id") is not None:
                seq_counts[img["seq_id"]] = seq_counts.get(img["seq_id"], 0) + 1
        locations: dict[str, Deployment] = {}
        media_info: dict[str, tuple[str, Any, Any]] = {}
        for n, img in enumerate(data["images"]):
            if "id" not in img or "file_name" not in img:
                raise CocoError(f"image #{n + 1} in {path} needs an 'id' and a 'file_name'")
            loc_raw = img.get("location")
            loc_id = prefix + (str(loc_raw) if loc_raw is not None else "unknown-location")
            dep = locations.get(loc_id) or _ensure_location(s, loc_id, pid, utc_offset_minutes)
            if loc_id not in locations:
                locations[loc_id] = dep
                rep.locations += 1
            mid = prefix + str(img["id"])
            m = s.get(Media, mid)
            if m is None:
                m = Media(id=mid)
                s.add(m)
            file_name = img["file_name"]
            m.deployment_id = dep.id
            m.file_path = file_name
            m.file_name = PurePosixPath(file_name.replace("\\", "/")).name
            m.file_mediatype = MEDIA_TYPES.get(PurePosixPath(file_name).suffix.lower(), "image/jpeg")
            m.available = False
            m.width, m.height = img.get("width"), img.get("height")
            dt_text = img.get("datetime")
            m.camera_time = _parse_dt(dt_text) if isinstance(dt_text, str) else None
            m.timestamp = to_utc(m.camera_time, dep.utc_offset_minutes, 0.0) if m.camera_time else None
            m.timestamp_source = SOURCE if m.camera_time else "none"
            seq = img.get("seq_id")
            m.sequence_id = prefix + str(seq) if seq is not None else None
            fnum = img.get("frame_num")
            m.sequence_index = int(fnum) + 1 if isinstance(fnum, int | float) else None
            unmodelled = {k: v for k, v in img.items() if k not in _IMAGE_KEYS}
            m.extra = {"coco": unmodelled} if unmodelled else {}
            rec = {
                "id": mid, "file_path": file_name, "width": m.width, "height": m.height,
                "camera_time": m.camera_time, "sequence_id": m.sequence_id, "sequence_index": m.sequence_index,
                "location_id": dep.location_id, "extra": m.extra,
            }  # fmt: skip
            rendered = render_image(rec, seq_counts.get(seq) if seq is not None else None)
            m.text_hints = _hints(rendered, img, _IMAGE_KEYS)
            media_info[str(img["id"])] = (mid, m.width, m.height)
            rep.images += 1
            if n % 1000 == 999:
                s.flush()
        s.flush()
        for n, ann in enumerate(data.get("annotations", [])):
            key = str(ann.get("image_id"))
            if key not in media_info:
                raise CocoError(
                    f"annotation {ann.get('id')!r} refers to image {ann.get('image_id')!r}, which is not in the file"
                )
            mid, w, h = media_info[key]
            cat = cats.get(ann.get("category_id"))
            if cat is None:
                raise CocoError(
                    f"annotation {ann.get('id')!r} has category {ann.get('category_id')!r}, not in 'categories'"
                )
            oid = prefix + str(ann["id"])
            media = s.get(Media, mid)
            assert media is not None
            o = s.get(Observation, oid)
            if o is None:
                o = Observation(id=oid, deployment_id=media.deployment_id)
                s.add(o)
            o.deployment_id = media.deployment_id
            o.media_id = mid
            o.observation_level = "media"
            o.observation_type, o.scientific_name = label_to_observation(cat)
            bbox = ann.get("bbox")
            if (box := normalised_bbox(bbox, w, h)) is not None:
                o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height = box
            elif (rel := relative_bbox(ann.get("bbox_relative"))) is not None:
                o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height = rel
            else:
                o.bbox_x = o.bbox_y = o.bbox_width = o.bbox_height = None
            extra = {k: v for k, v in ann.items() if k not in _ANN_KEYS}
            if bbox and not (w and h):
                extra["bbox"] = bbox  # pixels without an image size cannot be normalised; keep as given
            o.extra = {"coco": extra} if extra else {}
            rec = {
                "id": oid, "media_id": mid, "bbox_x": o.bbox_x, "bbox_y": o.bbox_y, "bbox_width": o.bbox_width,
                "bbox_height": o.bbox_height, "width": w, "height": h, "extra": o.extra,
            }  # fmt: skip
            rendered = render_annotation(rec, by_key[(o.observation_type, o.scientific_name)])
            original = {**ann, "image_id": ann.get("image_id")}
            o.text_hints = _hints(rendered, original, _ANN_KEYS)
            rep.annotations += 1
            if n % 1000 == 999:
                s.flush()
    return rep


def _ensure_location(s: Session, loc_id: str, project_id: str, offset: int) -> Deployment:
    if s.get(Location, loc_id) is None:
        s.add(Location(id=loc_id, sensitive=False))
    dep = s.get(Deployment, loc_id)
    if dep is None:
        dep = Deployment(id=loc_id, project_id=project_id, location_id=loc_id, utc_offset_minutes=offset)
        s.add(dep)
    s.flush()
    return dep


def export_coco(
    ws: Workspace,
    out: Path | str,
    *,
    project_id: str | None = None,
    deployment_ids: Iterable[str] | None = None,
) -> dict[str, int]:
    """Write media and their media-level observations as COCO Camera Traps, streamed to the file."""
    out = Path(out)
    counts = {"images": 0, "annotations": 0}
    with ws.db.session() as s:
        project = s.get(Project, project_id) if project_id else None
        if project_id and project is None:
            raise CocoError(f"there is no project {project_id!r}")
        if project is None:
            projects = list(s.scalars(select(Project).limit(2)))
            project = projects[0] if len(projects) == 1 else None
        coco_meta = dict((project.extra or {}).get("coco", {})) if project else {}
        categories = list(coco_meta.get("categories") or [])
        by_key = {label_to_observation(c["name"]): c["id"] for c in categories}
        if ("blank", None) not in by_key and all(c["id"] != 0 for c in categories):
            # the format's convention: an empty photo is category 0, named "empty" (issue 20)
            categories.insert(0, {"id": 0, "name": "empty"})
            by_key[("blank", None)] = 0
        dep_q = select(Deployment.id)
        if deployment_ids is not None:
            dep_q = dep_q.where(Deployment.id.in_(list(deployment_ids)))
        elif project_id:
            dep_q = dep_q.where(Deployment.project_id == project_id)
        deps = list(s.scalars(dep_q))
        seq_counts = dict(
            s.execute(
                select(Media.sequence_id, func.count())
                .where(Media.sequence_id.is_not(None), Media.deployment_id.in_(deps))
                .group_by(Media.sequence_id)
            ).all()
        )
        info = coco_meta.get("info") or {
            "version": "1.0",
            "description": project.title if project else "Camera-trap images exported by Pardus",
            "date_created": datetime.now().strftime("%Y-%m-%d"),
        }
        with open(out, "w", encoding="utf-8") as f:
            f.write('{\n "info": ' + json.dumps(info, ensure_ascii=False))
            for k, v in coco_meta.items():
                if k not in ("info", "categories"):
                    f.write(f",\n {json.dumps(k)}: " + json.dumps(v, ensure_ascii=False))
            f.write(',\n "images": [')
            q = (
                select(
                    Media.id, Media.file_path, Media.width, Media.height, Media.camera_time, Media.sequence_id,
                    Media.sequence_index, Deployment.location_id, Media.extra, Media.text_hints,
                )  # fmt: skip
                .join(Deployment, Deployment.id == Media.deployment_id)
                .where(Media.deployment_id.in_(deps))
                .order_by(Media.deployment_id, Media.timestamp, Media.file_path)
            )
            sep = "\n  "
            for r in s.execute(q.execution_options(yield_per=5000, stream_results=True)).mappings():
                rec = dict(r)
                img = _with_hints(render_image(rec, seq_counts.get(rec["sequence_id"])), rec["text_hints"])
                f.write(sep + json.dumps(img, ensure_ascii=False))
                sep = ",\n  "
                counts["images"] += 1
            f.write('\n ],\n "annotations": [')
            q2 = (
                select(
                    Observation.id, Observation.media_id, Observation.observation_type, Observation.scientific_name,
                    Observation.bbox_x, Observation.bbox_y, Observation.bbox_width, Observation.bbox_height,
                    Observation.extra, Observation.text_hints, Media.width, Media.height,
                )  # fmt: skip
                .join(Media, Media.id == Observation.media_id)
                .where(Observation.deployment_id.in_(deps), Observation.observation_level == "media",
                       Observation.superseded_by.is_(None))  # a decision a person replaced is not a label
                .order_by(Observation.id)
            )
            sep = "\n  "
            next_id = max((c["id"] for c in categories if isinstance(c["id"], int)), default=0) + 1
            for r in s.execute(q2.execution_options(yield_per=5000, stream_results=True)).mappings():
                rec = dict(r)
                key = (rec["observation_type"], rec["scientific_name"])
                cid = by_key.get(key)
                if cid is None:
                    cid = next_id
                    next_id += 1
                    categories.append({"id": cid, "name": rec["scientific_name"] or rec["observation_type"]})
                    by_key[key] = cid
                ann = _with_hints(render_annotation(rec, cid), rec["text_hints"])
                f.write(sep + json.dumps(ann, ensure_ascii=False))
                sep = ",\n  "
                counts["annotations"] += 1
            f.write('\n ],\n "categories": ' + json.dumps(categories, ensure_ascii=False) + "\n}\n")
    return counts
