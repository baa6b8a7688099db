"""Reading a COCO Camera Traps file into the store (the vocabulary is in :mod:`pardus.interop.coco_ct`).

The whole file is checked before anything is written, so that a bad annotation halfway down a
LILA-sized file stops the import with nothing stored and a message naming the item. What the checks
ask is what the store needs: ids that fit its keys and are unique, images that annotations name,
categories that exist, boxes of four finite numbers, counts that are whole numbers, who labelled in
Camtrap DP's words.

Two of the format's fields change what an annotation means, and are honoured:

- ``count``: how many animals; kept as the observation's count (absent: not counted, not 1).
- ``sequence_level_annotation``: the label is the burst's (Snapshot Serengeti labels sequences and
  copies the label to every frame, blank frames included). Such annotations of one burst become one
  event-level observation (``event_id`` = the burst, start and end from its frames), not a claim
  that the animal is in each frame; the annotations themselves are kept with it so the export gives
  them back as they came. A frame-level annotation lands in its burst's event too (``event_id``),
  which is how ``seq_id`` reaches Camtrap DP's ``eventID``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.orm import Session

from pardus.ingest.deployments import MAX_ID
from pardus.ingest.probe import MEDIA_TYPES
from pardus.ingest.timefix import to_utc
from pardus.interop.coco_ct import (
    ANN_KEYS,
    IMAGE_KEYS,
    SEQUENCE_KEY,
    SOURCE,
    WHO_KEYS,
    CocoError,
    hints_of,
    label_to_observation,
    load_coco,
    normalised_bbox,
    relative_bbox,
    render_annotation,
    render_image,
)
from pardus.interop.json_input import shown
from pardus.store import Workspace
from pardus.store.models import Deployment, Location, Media, Observation, Project

DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S")
MAX_PATH = 1024  # the store's media.file_path
MAX_NAME = 255  # the store's media.file_name and observation.classified_by
METHODS = ("human", "machine")


@dataclass
class CocoImportReport:
    project_id: str
    images: int = 0
    annotations: int = 0
    locations: int = 0
    events: int = 0  # event-level observations made from sequence-level annotations
    warnings: list[str] = field(default_factory=list)


def _parse_dt(text: str) -> datetime | None:
    for fmt in DATETIME_FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    return None


def _is_id(v: object) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, str) and bool(v.strip()))


def _finite(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _whole(v: object, least: int) -> bool:
    """A whole number from ``least`` that the store's 32-bit columns keep (frame_num + 1 included):
    a larger one was a DataError on PostgreSQL and an OverflowError on SQLite at the import's end."""
    return isinstance(v, int) and not isinstance(v, bool) and least <= v < MAX_WHOLE


MAX_WHOLE = 2**31 - 1


def _key(what: str, v: object, prefix: str, where: str) -> str:
    """An id as the store keeps it (prefix + text), checked to fit: 1-64 characters, no control characters."""
    if not _is_id(v):
        raise CocoError(f"{where}: '{what}' must be a number or text, not {shown(v)}")
    key = prefix + str(v)
    if len(key) > MAX_ID or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise CocoError(f"{where}: '{what}' {shown(v)} must be 1-{MAX_ID} characters (with the prefix) "
                        "without control characters")
    return key


@dataclass
class _Checked:
    """The file after :func:`check_coco`: categories by id, and per image its key, location and burst."""

    data: dict[str, Any]
    categories: dict[Any, str]
    image_keys: dict[str, str]  # str(image id) -> media id
    warnings: list[str]


def check_coco(data: dict[str, Any], path: Path, prefix: str) -> _Checked:
    """Check every item the store will keep (see the module docstring); the message names the item."""
    name = path.name
    cats: dict[Any, str] = {}
    raw_cats = data.get("categories", [])
    if not isinstance(raw_cats, list):
        raise CocoError(f"{name}: 'categories' must be a list of {{\"id\": ..., \"name\": ...}}")
    for n, c in enumerate(raw_cats):
        where = f"category #{n + 1} in {name}"
        if not isinstance(c, dict) or not _is_id(c.get("id")):
            raise CocoError(f"{where} needs an 'id' (a number or text), not {shown(c)}")
        if not isinstance(c.get("name"), str) or not c["name"].strip() or len(c["name"]) > MAX_NAME:
            raise CocoError(f"{where} needs a 'name' of 1-{MAX_NAME} characters, not {shown(c.get('name'))}")
        if c["id"] in cats:
            raise CocoError(f"{where}: the id {shown(c['id'])} is given twice")
        cats[c["id"]] = c["name"]
    images: dict[str, str] = {}
    untimed = 0
    for n, img in enumerate(data["images"]):
        where = f"image #{n + 1} in {name}"
        if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
            raise CocoError(f"{where} needs an 'id' and a 'file_name'")
        key = _key("id", img["id"], prefix, where)
        where = f"image {shown(img['id'])} in {name}"
        if str(img["id"]) in images:
            raise CocoError(f"{where}: its id is given twice")
        images[str(img["id"])] = key
        file_name = img["file_name"]
        if not isinstance(file_name, str) or not file_name.strip() or len(file_name) > MAX_PATH:
            raise CocoError(f"{where}: 'file_name' must be a path of 1-{MAX_PATH} characters")
        if len(PurePosixPath(file_name.replace("\\", "/")).name) > MAX_NAME:
            raise CocoError(f"{where}: the file name is longer than {MAX_NAME} characters")
        for dim in ("width", "height"):
            if img.get(dim) is not None and not _whole(img[dim], 1):
                raise CocoError(f"{where}: '{dim}' must be a whole number of pixels, not {shown(img[dim])}")
        dt = img.get("datetime")
        if dt is not None and not isinstance(dt, str):
            raise CocoError(f"{where}: 'datetime' must be text like \"2024-06-01 21:00:00\", not {shown(dt)}")
        if isinstance(dt, str) and _parse_dt(dt) is None:
            untimed += 1
        if img.get("seq_id") is not None:
            _key("seq_id", img["seq_id"], prefix, where)
        if img.get("frame_num") is not None and not _whole(img["frame_num"], 0):
            raise CocoError(f"{where}: 'frame_num' must be a whole number from 0, not {shown(img['frame_num'])}")
        if img.get("location") is not None:
            _key("location", img["location"], prefix, where)
    anns = data.get("annotations", [])
    if not isinstance(anns, list):
        raise CocoError(f"{name}: 'annotations' must be a list")
    seen: set[str] = set()
    for n, ann in enumerate(anns):
        where = f"annotation #{n + 1} in {name}"
        if not isinstance(ann, dict):
            raise CocoError(f"{where} must be an object with id, image_id and category_id, not {shown(ann)}")
        _key("id", ann.get("id"), prefix, where)
        where = f"annotation {shown(ann['id'])} in {name}"
        if str(ann["id"]) in seen:
            raise CocoError(f"{where}: its id is given twice")
        seen.add(str(ann["id"]))
        if str(ann.get("image_id")) not in images:
            raise CocoError(f"{where} refers to image {shown(ann.get('image_id'))}, which is not in the file")
        cid = ann.get("category_id")
        if not _is_id(cid) or cid not in cats:
            raise CocoError(f"{where} has category {shown(cid)}, not in 'categories'")
        _check_annotation(ann, where)
    warnings = [f"{untimed} image(s) have a 'datetime' Pardus cannot read (it reads YYYY-MM-DD HH:MM:SS and "
                "YYYY:MM:DD HH:MM:SS); they are imported without a time"] if untimed else []
    return _Checked(data, cats, images, warnings)


def _check_annotation(ann: dict[str, Any], where: str) -> None:
    bbox = ann.get("bbox")
    if bbox is not None and not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)
                                 and bbox[2] >= 0 and bbox[3] >= 0):
        raise CocoError(f"{where}: 'bbox' must be [x, y, width, height] in pixels, not {shown(bbox)}")
    if ann.get("bbox_relative") is not None and relative_bbox(ann["bbox_relative"]) is None:
        raise CocoError(f"{where}: 'bbox_relative' must be [x, y, width, height] as fractions inside the image, "
                        f"not {shown(ann['bbox_relative'])}")
    if ann.get("count") is not None and not _whole(ann["count"], 0):
        raise CocoError(f"{where}: 'count' must be a whole number, not {shown(ann['count'])}")
    seq = ann.get("sequence_level_annotation")
    if seq is not None and not isinstance(seq, bool):
        raise CocoError(f"{where}: 'sequence_level_annotation' must be true or false, not {shown(seq)}")
    method = ann.get("classification_method")
    if method is not None and method not in METHODS:
        raise CocoError(f"{where}: 'classification_method' must be human or machine, not {shown(method)}")
    who = ann.get("classified_by")
    if who is not None and not (isinstance(who, str) and len(who) <= MAX_NAME):
        raise CocoError(f"{where}: 'classified_by' must be a name of at most {MAX_NAME} characters")
    p = ann.get("classification_probability")
    if p is not None and not (_finite(p) and 0 <= p <= 1):
        raise CocoError(f"{where}: 'classification_probability' must be a number from 0 to 1, not {shown(p)}")


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
    to (0 = UTC). Importing the same file again updates the rows it made. A file with any item the
    store cannot keep is refused whole (see :func:`check_coco`).
    """
    path = Path(path)
    data = load_coco(path)
    checked = check_coco(data, path, prefix)
    cats = checked.categories
    by_key: dict[tuple[str, str | None], Any] = {}
    for cid, name in cats.items():
        by_key[label_to_observation(name)] = cid  # the last of synonyms wins, as on export
    pid = project_id or f"coco-{path.stem}"[:MAX_ID]
    rep = CocoImportReport(project_id=pid, warnings=list(checked.warnings))
    with ws.db.session() as s:
        project = s.get(Project, pid) or Project(id=pid, title="")
        s.add(project)
        info = data.get("info") or {}
        project.title = str(info.get("description") or pid)[:500] if isinstance(info, dict) else pid
        project.extra = {
            **(project.extra or {}),
            "coco": {k: v for k, v in data.items() if k not in ("images", "annotations")},
        }
        media = _import_images(s, data, pid, utc_offset_minutes, prefix, rep)
        _import_annotations(s, data, media, by_key, cats, prefix, rep)
    return rep


@dataclass
class _Image:
    media_id: str
    deployment_id: str
    width: int | None
    height: int | None
    sequence_id: str | None
    timestamp: datetime | None


def _import_images(s: Session, data: dict[str, Any], pid: str, offset: int, prefix: str,
                   rep: CocoImportReport) -> dict[str, _Image]:
    seq_counts: dict[Any, int] = defaultdict(int)
    for img in data["images"]:
        if img.get("seq_id") is not None:
            seq_counts[img["seq_id"]] += 1
    locations: dict[str, Deployment] = {}
    out: dict[str, _Image] = {}
    for n, img in enumerate(data["images"]):
        loc_raw = img.get("location")
        loc_id = prefix + (str(loc_raw) if loc_raw is not None else "unknown-location")
        dep = locations.get(loc_id) or _ensure_location(s, loc_id, pid, offset)
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
        m.sequence_index = fnum + 1 if fnum is not None else None
        # 'coco' is always there: it marks a path that came from a data set, written back as it came.
        m.extra = {"coco": {k: v for k, v in img.items() if k not in IMAGE_KEYS}}
        rec = {
            "id": mid, "deployment_id": dep.id, "file_path": file_name, "width": m.width, "height": m.height,
            "camera_time": m.camera_time, "sequence_id": m.sequence_id, "sequence_index": m.sequence_index,
            "location_id": dep.location_id, "extra": m.extra,
        }  # fmt: skip
        rendered = render_image(rec, seq_counts.get(seq) if seq is not None else None)
        m.text_hints = hints_of(rendered, img, IMAGE_KEYS)
        out[str(img["id"])] = _Image(mid, dep.id, m.width, m.height, m.sequence_id, m.timestamp)
        rep.images += 1
        if n % 1000 == 999:
            s.flush()
    s.flush()
    return out


def _who(ann: dict[str, Any]) -> dict[str, Any]:
    """The annotation's count and who labelled, as Observation columns (same names)."""
    return {k: ann.get(k) for k in ("count", *WHO_KEYS)}


def _import_annotations(s: Session, data: dict[str, Any], media: dict[str, _Image],
                        by_key: dict[tuple[str, str | None], Any], cats: dict[Any, str], prefix: str,
                        rep: CocoImportReport) -> None:
    # A burst's label is copied to each of its frames: the frames' copies are one observation. Two
    # alike labels on one frame (two mallards told apart) are two observations: the k-th copy on each
    # frame belongs to the k-th observation.
    bursts: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    copies: dict[tuple[Any, ...], int] = defaultdict(int)
    for n, ann in enumerate(data.get("annotations", [])):
        img = media[str(ann.get("image_id"))]
        if ann.get("sequence_level_annotation") is True and img.sequence_id is not None:
            label = (img.deployment_id, img.sequence_id, ann["category_id"], *_who(ann).values())
            copies[(*label, img.media_id)] += 1
            bursts[(*label, copies[(*label, img.media_id)])].append(ann)
            continue
        oid = prefix + str(ann["id"])
        o = s.get(Observation, oid)
        if o is None:
            o = Observation(id=oid, deployment_id=img.deployment_id)
            s.add(o)
        o.deployment_id = img.deployment_id
        o.media_id = img.media_id
        o.event_id = img.sequence_id
        o.observation_level = "media"
        o.observation_type, o.scientific_name = label_to_observation(cats[ann["category_id"]])
        for k, v in _who(ann).items():
            setattr(o, k, v)
        bbox = ann.get("bbox")
        if (box := normalised_bbox(bbox, img.width, img.height)) is not None:
            o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height = box
        elif (rel := relative_bbox(ann.get("bbox_relative"))) is not None:
            o.bbox_x, o.bbox_y, o.bbox_width, o.bbox_height = rel
        else:
            o.bbox_x = o.bbox_y = o.bbox_width = o.bbox_height = None
        extra = {k: v for k, v in ann.items() if k not in ANN_KEYS}
        if bbox and not (img.width and img.height):
            extra["bbox"] = bbox  # pixels without an image size cannot be normalised; keep as given
        o.extra = {"coco": extra} if extra else {}
        rec = {
            "id": oid, "media_id": img.media_id, "bbox_x": o.bbox_x, "bbox_y": o.bbox_y, "bbox_width": o.bbox_width,
            "bbox_height": o.bbox_height, "width": img.width, "height": img.height, "extra": o.extra, **_who(ann),
        }  # fmt: skip
        rendered = render_annotation(rec, by_key[(o.observation_type, o.scientific_name)])
        o.text_hints = hints_of(rendered, {**ann, "image_id": ann.get("image_id")}, ANN_KEYS)
        rep.annotations += 1
        if n % 1000 == 999:
            s.flush()
    times: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for img in media.values():
        if img.sequence_id is not None and img.timestamp is not None:
            times[img.deployment_id, img.sequence_id].append(img.timestamp)
    for (dep, seq, cid, *_), anns in bursts.items():
        oid = prefix + str(anns[0]["id"])
        o = s.get(Observation, oid)
        if o is None:
            o = Observation(id=oid, deployment_id=dep)
            s.add(o)
        o.deployment_id, o.media_id, o.event_id, o.observation_level = dep, None, seq, "event"
        when = times.get((dep, seq))
        o.event_start, o.event_end = (min(when), max(when)) if when else (None, None)
        o.observation_type, o.scientific_name = label_to_observation(cats[cid])
        for k, v in _who(anns[0]).items():
            setattr(o, k, v)
        o.bbox_x = o.bbox_y = o.bbox_width = o.bbox_height = None
        o.extra = {SEQUENCE_KEY: anns}
        o.text_hints = {}
        rep.annotations += len(anns)
        rep.events += 1


def _ensure_location(s: Session, loc_id: str, project_id: str, offset: int) -> Deployment:
    if s.get(Location, loc_id) is None:
        s.add(Location(id=loc_id, sensitive=False))
    dep = s.get(Deployment, loc_id)
    if dep is None:
        dep = Deployment(id=loc_id, project_id=project_id, location_id=loc_id, utc_offset_minutes=offset)
        s.add(dep)
    s.flush()
    return dep
