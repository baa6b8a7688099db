"""COCO Camera Traps JSON: the format's vocabulary in Pardus's terms, and the writer.

COCO Camera Traps (https://github.com/agentmorris/MegaDetector/blob/main/megadetector/data_management/README.md)
is COCO with camera-trap fields on each image: ``location`` (the camera's place), ``datetime``
(camera local time, no zone), and the burst it belongs to (``seq_id``, ``seq_num_frames``,
``frame_num``). Boxes are in pixels ([x, y, width, height]) or, without an image size, as
fractions (``bbox_relative``); categories are labels such as "empty", "human" or a species; an
annotation may carry ``count`` and ``sequence_level_annotation`` (the label is the burst's, not
necessarily visible in this frame).

Mapping: a location becomes a Location and one Deployment of the same id; an image becomes a
Media (burst -> sequence, ``frame_num`` = Pardus's 1-based sequence index - 1); an annotation
becomes a media-level Observation in the burst's event (box normalised by the image size; "empty"
-> blank, "human"/"person" -> human, "vehicle" -> vehicle, other labels -> animal with that label as
scientificName; ``count`` -> count), and the sequence-level annotations of one burst become one
event-level Observation. The format has no word for who labelled: Pardus writes
``classification_method`` (human / machine), ``classified_by`` and ``classification_probability``
on each annotation (Camtrap DP's terms) and reads them back. Every key the store does not model is
kept, and where the file wrote a value differently from how Pardus renders it (an integer id, a
burst count that counts frames not in the file) the original is kept in ``text_hints``, so export
after import gives back the same file. Reading is :mod:`pardus.interop.coco_import`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pardus.interop.json_input import read_json
from pardus.pipeline.sequences import SUFFIX as MACHINE_EVENT_SUFFIX
from pardus.store import Workspace
from pardus.store.models import Deployment, Media, Observation, Project

DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
IMAGE_KEYS = {"id", "file_name", "width", "height", "datetime", "seq_id", "seq_num_frames", "frame_num", "location"}
# Who labelled, in Camtrap DP's terms: COCO Camera Traps has no field for it.
WHO_KEYS = ("classification_method", "classified_by", "classification_probability")
ANN_KEYS = {"id", "image_id", "category_id", "bbox", "bbox_relative", "count", "sequence_level_annotation",
             *WHO_KEYS}
SOURCE = "coco-ct"
SEQUENCE_KEY = "coco_sequence"  # an event-level observation's extra: the sequence-level annotations it came from
PACKAGE_SOURCE = "camtrap-dp"  # photos read from a Camtrap DP package keep the package's paths


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


def coco_file_name(deployment_id: str, file_path: str, timestamp_source: str | None,
                   extra: dict[str, Any] | None) -> str:
    """An image's ``file_name``: '<deployment>/<path on the card>' for a photo from a card (every card
    holds a DCIM/100MEDIA/IMG_0001.JPG), the path as it came for one read from a COCO file or a Camtrap
    DP package (already unique in its data set)."""
    if "coco" in (extra or {}) or timestamp_source == PACKAGE_SOURCE or "://" in file_path:
        return file_path
    return f"{deployment_id}/{file_path.replace(chr(92), '/').lstrip('/')}"


def render_image(m: dict[str, Any], seq_count: int | None) -> dict[str, Any]:
    """A Media row (as a dict) in COCO Camera Traps form, before the source's own text is put back."""
    img: dict[str, Any] = {"id": m["id"], "file_name": coco_file_name(
        m["deployment_id"], m["file_path"], m.get("timestamp_source"), m["extra"])}
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


def render_who(o: dict[str, Any]) -> dict[str, Any]:
    """Count and who labelled, for an annotation: so a machine's call is never taken for a person's."""
    out: dict[str, Any] = {}
    if o.get("count") is not None:
        out["count"] = o["count"]
    for key in WHO_KEYS:
        if o.get(key) is not None:
            out[key] = o[key]
    return out


def render_annotation(o: dict[str, Any], category_id: Any) -> dict[str, Any]:
    ann: dict[str, Any] = {"id": o["id"], "image_id": o["media_id"], "category_id": category_id}
    ann.update(render_who(o))
    if o["bbox_x"] is not None and o["width"] and o["height"]:
        w, h = o["width"], o["height"]
        ann["bbox"] = [o["bbox_x"] * w, o["bbox_y"] * h, o["bbox_width"] * w, o["bbox_height"] * h]
    elif o["bbox_x"] is not None and not (o["extra"] or {}).get("coco", {}).get("bbox"):
        # Without the image's size a box cannot be given in pixels: give it as fractions of the
        # image (the format's bbox_relative) instead of dropping it (issue 20).
        ann["bbox_relative"] = [o["bbox_x"], o["bbox_y"], o["bbox_width"], o["bbox_height"]]
    ann.update((o["extra"] or {}).get("coco", {}))
    return ann


def with_hints(rendered: dict[str, Any], hints: dict[str, Any] | None) -> dict[str, Any]:
    """Put back the file's own values wherever the stored value still renders as on import."""
    for k, (canonical, original) in ((hints or {}).get("coco", {}).items()):
        if rendered.get(k) == canonical:
            if original is None:
                rendered.pop(k, None)
            else:
                rendered[k] = original
    return rendered


def hints_of(rendered: dict[str, Any], original: dict[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = {}
    for k in keys:
        if json.dumps(rendered.get(k)) != json.dumps(original.get(k)):
            out[k] = [rendered.get(k), original.get(k)]
    return {"coco": out} if out else {}


def load_coco(path: Path) -> dict[str, Any]:
    """The parsed file, refused with a clear message unless it is JSON with an ``images`` list."""
    data = read_json(path, CocoError)
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


def export_coco(
    ws: Workspace,
    out: Path | str,
    *,
    project_id: str | None = None,
    deployment_ids: Iterable[str] | None = None,
) -> dict[str, int]:
    """Write media and their observations as COCO Camera Traps, streamed to the file.

    Media-level observations are the annotations of their image; an event-level observation (a
    person's or an imported label for a whole burst) is one ``sequence_level_annotation`` on each
    image of its burst. The machine's burst votes (``...+sequence``) are left out: their frames'
    own calls are already there. Every annotation says who labelled (see the module docstring).
    """
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
        next_id = max((c["id"] for c in categories if isinstance(c["id"], int)), default=0) + 1

        def category_of(rec: dict[str, Any]) -> Any:
            nonlocal next_id
            key = (rec["observation_type"], rec["scientific_name"])
            if key not in by_key:
                categories.append({"id": next_id, "name": rec["scientific_name"] or rec["observation_type"]})
                by_key[key] = next_id
                next_id += 1
            return by_key[key]

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
                    Media.id, Media.deployment_id, Media.file_path, Media.timestamp_source, Media.width, Media.height,
                    Media.camera_time, Media.sequence_id, Media.sequence_index, Deployment.location_id, Media.extra,
                    Media.text_hints,
                )  # fmt: skip
                .join(Deployment, Deployment.id == Media.deployment_id)
                .where(Media.deployment_id.in_(deps))
                .order_by(Media.deployment_id, Media.timestamp, Media.file_path)
            )
            sep = "\n  "
            for r in s.execute(q.execution_options(yield_per=5000, stream_results=True)).mappings():
                rec = dict(r)
                img = with_hints(render_image(rec, seq_counts.get(rec["sequence_id"])), rec["text_hints"])
                f.write(sep + json.dumps(img, ensure_ascii=False))
                sep = ",\n  "
                counts["images"] += 1
            f.write('\n ],\n "annotations": [')
            sep = "\n  "
            for ann in _annotations(s, deps, category_of):
                f.write(sep + json.dumps(ann, ensure_ascii=False))
                sep = ",\n  "
                counts["annotations"] += 1
            f.write('\n ],\n "categories": ' + json.dumps(categories, ensure_ascii=False) + "\n}\n")
    return counts


_WHO_COLUMNS = (Observation.count, Observation.classification_method, Observation.classified_by,
                Observation.classification_probability)


def _annotations(s: Session, deps: list[str], category_of: Any) -> Iterable[dict[str, Any]]:
    """Every annotation of the deployments: media-level observations, then bursts' labels frame by frame."""
    q = (
        select(
            Observation.id, Observation.media_id, Observation.observation_type, Observation.scientific_name,
            Observation.bbox_x, Observation.bbox_y, Observation.bbox_width, Observation.bbox_height,
            Observation.extra, Observation.text_hints, Media.width, Media.height, *_WHO_COLUMNS,
        )  # fmt: skip
        .join(Media, Media.id == Observation.media_id)
        .where(Observation.deployment_id.in_(deps), Observation.observation_level == "media",
               Observation.superseded_by.is_(None))  # a decision a person replaced is not a label
        .order_by(Observation.id)
    )
    for r in s.execute(q.execution_options(yield_per=5000, stream_results=True)).mappings():
        rec = dict(r)
        yield with_hints(render_annotation(rec, category_of(rec)), rec["text_hints"])
    events = (
        select(
            Observation.id, Observation.observation_type, Observation.scientific_name, Observation.extra,
            *_WHO_COLUMNS, Media.id.label("media_id"), Media.text_hints.label("media_hints"),
        )  # fmt: skip
        .join(Media, (Media.sequence_id == Observation.event_id) & (Media.deployment_id == Observation.deployment_id))
        .where(Observation.deployment_id.in_(deps), Observation.observation_level == "event",
               Observation.superseded_by.is_(None),
               or_(Observation.classified_by.is_(None), ~Observation.classified_by.endswith(MACHINE_EVENT_SUFFIX)))
        .order_by(Observation.id, Media.timestamp, Media.id)
    )
    frame = 0
    last = None
    for r in s.execute(events.execution_options(yield_per=5000, stream_results=True)).mappings():
        rec = dict(r)
        frame = frame + 1 if rec["id"] == last else 1
        last = rec["id"]
        cid = category_of(rec)
        came_from = {str(a.get("image_id")): a for a in (rec["extra"] or {}).get(SEQUENCE_KEY, [])}
        image_id = with_hints({"id": rec["media_id"]}, rec["media_hints"])["id"]
        if came_from:  # read from a COCO file: its own annotations, for the frames it labelled
            original = came_from.get(str(image_id))
            if original is not None:
                yield {**original, "category_id": cid, **render_who(rec)}
            continue
        yield {"id": f"{rec['id']}-{frame}", "image_id": image_id, "category_id": cid,
               "sequence_level_annotation": True, **render_who(rec)}
