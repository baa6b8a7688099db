"""Classifier results riding in a MegaDetector results file, as the store's machine observations.

SpeciesNet (converted with ``speciesnet_to_md``), AddaxAI and MegaDetector's own classification
scripts all write their species calls into the MegaDetector format: each box may carry
``classifications``, a list of ``[category id, confidence]`` pairs, the ids named in the file's
``classification_categories`` (and, for SpeciesNet, in ``classification_category_descriptions`` as
``uuid;class;order;family;genus;species;common name``). Kept only inside the box, those calls reach
no other format; here each call becomes what the pipeline's own stages write, so that Camtrap DP,
the Darwin Core Archive, Timelapse and the review desk see them:

- each box at or above the detection threshold that carries classifications: one media-level
  observation named by its most confident class, ``classification_method='machine'``,
  ``classified_by`` the classifier, ``classification_probability`` that class's confidence, its box;
- each box above the threshold without classifications (people and vehicles are rarely classified):
  the detector's own call (person -> human, vehicle -> vehicle, animal -> an animal not named);
- each photo the detector processed with no box above the threshold: one blank call of the detector;
- then one event-level observation per burst from the classifier's calls, by the same
  probability-weighted vote the pipeline uses (:func:`pardus.pipeline.sequences.smooth_sequences`).

Nothing here is ever a person's word: every row is machine, and a person's review replaces the
events it covers in every export. A label Pardus cannot turn into a scientific name (AddaxAI models
name classes in the model author's words) refuses the file, naming the labels, until a ``--taxa``
table says what they are: a wrong name in a GBIF record costs more than a question now.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from pardus.interop.csv_input import csv_lines, read_csv_text
from pardus.models.field import speciesnet_name
from pardus.store.models import Observation

OBSERVATION_TYPES = ("animal", "human", "vehicle", "blank", "unknown", "unclassified")
# The detection threshold MegaDetector's own documentation gives for v5 when a file does not say.
DEFAULT_MIN_CONF = 0.2
HUMAN = "Homo sapiens"
MAX_NAME = 255  # the store's observation.scientific_name and classified_by
SPECIES_STAGE = "species"  # what pipeline.sequences reads as a species model's calls
_SPECIAL: dict[str, tuple[str, str | None]] = {
    "blank": ("blank", None), "empty": ("blank", None), "animal": ("animal", None),
    "human": ("human", HUMAN), "person": ("human", HUMAN), "people": ("human", HUMAN),
    "homo sapiens": ("human", HUMAN), "homo species": ("human", HUMAN), "homo": ("human", HUMAN),
    "vehicle": ("vehicle", None), "unknown": ("unknown", None), "no cv result": ("unclassified", None),
}  # fmt: skip


class ClassificationError(ValueError):
    """Classifier results that cannot become observations as asked; the message says what to change."""


@dataclass(frozen=True)
class Label:
    """What one class of a classifier (or detector) means as a Camtrap DP observation."""

    observation_type: str
    scientific_name: str | None


@dataclass(frozen=True)
class Call:
    """One box's call as read from the file, before it is stored."""

    detection_index: int  # position of the box in the image's list
    label: Label
    probability: float | None
    box: tuple[float, float, float, float] | None  # None: the whole frame (SpeciesNet's stand-in box)
    frame_number: int | None
    source: dict[str, Any]  # the label as written, the detector's confidence, the other classes


def is_speciesnet_taxonomy(text: str) -> bool:
    """SpeciesNet's labels have seven ';'-separated parts: uuid, five ranks, common name."""
    return text.count(";") == 6


def builtin_names() -> dict[str, str]:
    """Common and scientific names Pardus already knows (its taxon maps), lower case -> scientific name."""
    from pardus.models.species import TAXON_MAPS

    names: dict[str, str] = {}
    for m in TAXON_MAPS.values():
        for t in m.taxa:
            names.setdefault(t.common_name.strip().lower(), t.scientific_name)
            names.setdefault(t.scientific_name.strip().lower(), t.scientific_name)
    return names


def read_taxa(path: Path | str) -> dict[str, Label]:
    """A table of what a classifier's labels mean: CSV with ``label`` and ``scientificName`` columns.

    An optional ``observationType`` column (animal, human, vehicle, blank, unknown, unclassified) is
    for labels that are no taxon ("nothing", "ranger"); without it a row with a name is an animal and
    a row without one an animal not named. Checked whole: a bad row refuses the table by line.
    """
    path = Path(path)
    return parse_taxa(read_csv_text(path, ClassificationError, "the taxa table "), path.name)


def parse_taxa(text: str, name: str = "taxa table") -> dict[str, Label]:
    """The body of :func:`read_taxa`, on text (so it can be tested without files)."""
    rows = csv_lines(text, name, ClassificationError)
    if not rows:
        raise ClassificationError(f"{name} is empty; it needs the columns label,scientificName")
    header = [h.strip() for h in rows[0]]
    if "label" not in header or "scientificName" not in header:
        raise ClassificationError(f"{name} needs the columns label and scientificName (it has: "
                                  f"{', '.join(h[:30] for h in header[:8]) or 'none'})")
    col = {h: i for i, h in enumerate(header)}
    out: dict[str, Label] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(header):
            raise ClassificationError(f"{name} line {n}: {len(row)} cells under {len(header)} column names")

        def cell(key: str, row: list[str] = row) -> str:
            i = col.get(key)
            return row[i].strip() if i is not None and i < len(row) else ""

        label, sci, kind = cell("label"), cell("scientificName"), cell("observationType").lower()
        if not label:
            raise ClassificationError(f"{name} line {n}: the label is empty")
        if len(label) > MAX_NAME or len(sci) > MAX_NAME:
            raise ClassificationError(f"{name} line {n}: a name is longer than {MAX_NAME} characters")
        if kind and kind not in OBSERVATION_TYPES:
            raise ClassificationError(f"{name} line {n}: observationType must be one of "
                                      f"{', '.join(OBSERVATION_TYPES)}, not {kind[:30]!r}")
        if sci and kind in ("blank", "vehicle", "unknown", "unclassified"):
            raise ClassificationError(f"{name} line {n}: a {kind} observation has no scientificName")
        key = label.lower()
        if key in out:
            raise ClassificationError(f"{name} line {n}: the label {label[:60]!r} is given twice")
        kind = kind or ("human" if sci.lower() == HUMAN.lower() else "animal")
        out[key] = Label(kind, sci or (HUMAN if kind == "human" else None))
    return out


def resolve(text: str, taxa: Mapping[str, Label], known: Mapping[str, str]) -> Label | None:
    """What a class name (or SpeciesNet taxonomy string) means, or None when Pardus cannot tell.

    In order: the user's taxa table; SpeciesNet's taxonomy string; the words every detector and
    classifier shares (blank, animal, human, vehicle ...); a name in Pardus's own taxon maps.
    """
    key = text.strip().lower()
    if key in taxa:
        return taxa[key]
    if is_speciesnet_taxonomy(key):
        common = key.rsplit(";", 1)[1].strip()
        if common in taxa:
            return taxa[common]
        name = speciesnet_name(key)
        if name is None:
            return Label(*_SPECIAL[common]) if common in _SPECIAL else None
        if name.split()[0] == "Homo":
            return Label("human", HUMAN)
        return Label("animal", name) if len(name) <= MAX_NAME else None  # longer than the store keeps: ask
    if key in _SPECIAL:
        return Label(*_SPECIAL[key])
    if key in known:
        return Label("animal", known[key])
    return None


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def check_classifications(value: object, categories: Mapping[str, str] | None, where: str) -> None:
    """A box's ``classifications``: a list of [category id, confidence 0..1], ids the file names."""
    if not isinstance(value, list):
        raise ClassificationError(f"{where}: 'classifications' must be a list of [category id, confidence]")
    for i, pair in enumerate(value):
        if not (isinstance(pair, list) and len(pair) >= 2):
            raise ClassificationError(f"{where}: classification #{i + 1} must be [category id, confidence]")
        cid, conf = pair[0], _number(pair[1])
        if isinstance(cid, bool) or not isinstance(cid, str | int) or not str(cid).strip():
            raise ClassificationError(f"{where}: classification #{i + 1} has no category id")
        if categories is None:
            raise ClassificationError(f"{where} carries classifications but the file has no "
                                      "'classification_categories' saying what they mean")
        if str(cid) not in categories:
            raise ClassificationError(f"{where}: classification category {str(cid)[:20]!r} is not in "
                                      "'classification_categories'")
        if conf is None or not 0.0 <= conf <= 1.0:
            raise ClassificationError(f"{where}: classification #{i + 1}'s confidence must be a number from 0 to 1")


def check_categories(value: object, key: str) -> dict[str, str] | None:
    """``classification_categories`` (or its ``_descriptions``): ids mapped to non-empty text."""
    if value is None:
        return None
    if not (isinstance(value, dict) and all(isinstance(v, str) and v.strip() for v in value.values())):
        raise ClassificationError(f"'{key}' must map ids to names, like {{\"0\": \"leopard\"}}")
    return {str(k): v for k, v in value.items()}


def detection_threshold(info: Mapping[str, Any], given: float | None) -> float:
    """The box confidence from which a box is a call: as given, else the file's own, else 0.2.

    MegaDetector files list boxes down to 0.01 or 0.005, and SpeciesNet's conversion puts the
    image's species on every one of them; counting those as animals would multiply every count.
    """
    if given is not None:
        if not 0.0 <= given <= 1.0 or not math.isfinite(given):
            raise ClassificationError(f"the detection threshold must be from 0 to 1, not {given}")
        return given
    meta = info.get("detector_metadata")
    typical = _number(meta.get("typical_detection_threshold")) if isinstance(meta, dict) else None
    return typical if typical is not None and 0.0 < typical <= 1.0 else DEFAULT_MIN_CONF


def classifier_name(info: Mapping[str, Any], descriptions: Mapping[str, str] | None, detector: str,
                    given: str | None) -> str:
    """``classified_by`` of the classifier's rows: as given, the file's ``info.classifier``, or a name
    that says where the calls came from."""
    for name in (given, info.get("classifier")):
        if isinstance(name, str) and name.strip():
            if len(name) > MAX_NAME - len("+sequence"):
                raise ClassificationError(f"the classifier's name is longer than {MAX_NAME - 9} characters")
            return name.strip()
    if descriptions and all(is_speciesnet_taxonomy(d) for d in descriptions.values()):
        return "speciesnet"
    return f"classifier in {detector}"[: MAX_NAME - 9]


def calls_of(
    img: Mapping[str, Any],
    det_categories: Mapping[str, str],
    cls_categories: Mapping[str, str],
    descriptions: Mapping[str, str],
    min_conf: float,
) -> tuple[list[tuple[int, dict[str, Any], str]], list[tuple[int, dict[str, Any], str]]]:
    """The boxes of an image that are calls: (index, box, text to resolve), classified and not."""
    classified, detector = [], []
    for i, d in enumerate(img.get("detections") or []):
        if d["conf"] < min_conf:
            continue
        pairs = d.get("classifications") or []
        if pairs:
            best = max(pairs, key=lambda p: float(p[1]))
            cid = str(best[0])
            described = descriptions.get(cid, "")
            classified.append((i, d, described if is_speciesnet_taxonomy(described) else cls_categories[cid]))
        else:
            detector.append((i, d, det_categories.get(d["category"], d["category"])))
    return classified, detector


def unresolved(texts: Sequence[str], taxa: Mapping[str, Label], known: Mapping[str, str]) -> list[str]:
    """The class names among ``texts`` that :func:`resolve` cannot name, each once, in order."""
    seen: dict[str, None] = {}
    for t in texts:
        if resolve(t, taxa, known) is None:
            seen.setdefault(t, None)
    return list(seen)


def unresolved_message(labels: Sequence[str], path_name: str) -> str:
    shown = ", ".join(repr(x[:60]) for x in labels[:8]) + (" ..." if len(labels) > 8 else "")
    return (f"{path_name}: {len(labels)} class name(s) Pardus cannot turn into a scientific name: {shown}. "
            "Give --taxa FILE, a CSV with the columns label,scientificName (e.g. 'amur leopard,Panthera pardus "
            "orientalis'; add observationType for labels that are no animal), or import without observations "
            "(--no-observations). Nothing was imported.")


def completion_time(info: Mapping[str, Any]) -> datetime | None:
    """When the classifier ran, if the file says so with a UTC offset (MegaDetector writes local time
    without one; a time that may be hours off is not recorded as the classification time)."""
    for key in ("classification_completion_time", "detection_completion_time"):
        text = info.get(key)
        if isinstance(text, str):
            try:
                t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            if t.tzinfo is not None:
                return t
    return None


@dataclass(frozen=True)
class Run:
    """The names and rules one results file's observations are written with."""

    detector: str
    classifier: str | None
    min_conf: float
    when: datetime | None


def replace_observations(s: Session, media_id: str, run: Run) -> None:
    """Importing the same results again replaces their observations rather than adding them twice."""
    names = [run.detector] + ([run.classifier] if run.classifier else [])
    s.execute(delete(Observation).where(
        Observation.media_id == media_id, Observation.classification_method == "machine",
        Observation.observation_level == "media", Observation.classified_by.in_(names),
        Observation.superseded_by.is_(None)))  # fmt: skip


def write_observations(
    s: Session,
    media_id: str,
    deployment_id: str,
    img: Mapping[str, Any],
    detection_ids: Sequence[int],
    labels: Mapping[str, Label],
    classified: Sequence[tuple[int, dict[str, Any], str]],
    detector_calls: Sequence[tuple[int, dict[str, Any], str]],
    run: Run,
    cls_categories: Mapping[str, str],
) -> int:
    """Write one image's calls (see the module docstring); returns how many observations."""
    n = 0
    for i, d, text in classified:
        label = labels[text]
        pairs = sorted(d["classifications"], key=lambda p: -float(p[1]))
        whole = d["bbox"] == [0.0, 0.0, 1.0, 1.0]
        boxed = label.observation_type in ("animal", "human", "vehicle") and not whole
        s.add(Observation(
            deployment_id=deployment_id, media_id=media_id, observation_level="media",
            observation_type=label.observation_type, scientific_name=label.scientific_name,
            count=1 if label.observation_type in ("animal", "human", "vehicle") else None,
            bbox_x=d["bbox"][0] if boxed else None, bbox_y=d["bbox"][1] if boxed else None,
            bbox_width=d["bbox"][2] if boxed else None, bbox_height=d["bbox"][3] if boxed else None,
            classification_method="machine", classified_by=run.classifier, classification_timestamp=run.when,
            classification_probability=float(pairs[0][1]),
            extra={"stage": SPECIES_STAGE, "detection_id": detection_ids[i],
                   "source": {"label": cls_categories.get(str(pairs[0][0]), text), "detector_conf": d["conf"],
                              "taxonomy": text if is_speciesnet_taxonomy(text) else None,
                              "frame_number": d.get("frame_number"),
                              "others": [[cls_categories.get(str(c), str(c)), float(p)] for c, p in pairs[1:5]]}},
        ))  # fmt: skip
        n += 1
    # The detector's calls: per label, its best box and the count in the most crowded frame.
    best: dict[str, dict[str, Any]] = {}
    per_frame: dict[tuple[str, int | None], int] = defaultdict(int)
    for _, d, text in detector_calls:
        per_frame[text, d.get("frame_number")] += 1
        if text not in best or d["conf"] > best[text]["conf"]:
            best[text] = d
    if not classified and not detector_calls and img.get("detections") is not None:
        s.add(Observation(
            deployment_id=deployment_id, media_id=media_id, observation_level="media", observation_type="blank",
            classification_method="machine", classified_by=run.detector, classification_timestamp=run.when,
            extra={"source": {"threshold": run.min_conf}}))  # fmt: skip
        return n + 1
    for text, d in best.items():
        label = labels[text]
        boxed = label.observation_type in ("animal", "human", "vehicle")
        s.add(Observation(
            deployment_id=deployment_id, media_id=media_id, observation_level="media",
            observation_type=label.observation_type, scientific_name=label.scientific_name,
            count=max(c for (t, _), c in per_frame.items() if t == text) if boxed else None,
            bbox_x=d["bbox"][0] if boxed else None, bbox_y=d["bbox"][1] if boxed else None,
            bbox_width=d["bbox"][2] if boxed else None, bbox_height=d["bbox"][3] if boxed else None,
            classification_method="machine", classified_by=run.detector, classification_timestamp=run.when,
            classification_probability=d["conf"], extra={"source": {"threshold": run.min_conf}},
        ))  # fmt: skip
        n += 1
    return n
