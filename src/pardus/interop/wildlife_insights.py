"""Wildlife Insights bulk upload: the four CSV tables (projects, cameras, deployments, images) and the writer.

Wildlife Insights (https://www.wildlifeinsights.org) takes a project's existing data as four CSV
files whose columns are fixed by its batch-upload templates (v1.0, as MegaDetector's ``cct_to_wi``
fills them), and gives data back in the same shape (its downloads add a few columns, such as
``is_blank`` and ``cv_confidence``). Images carry their identification in the same row: Wildlife
Insights' taxonomy (``wi_taxon_id`` and class, order, family, genus, species, common name; the ids
are the ones SpeciesNet's labels start with), ``number_of_objects``, who identified it.

What the writer does, and why:

- **people's identifications only.** Wildlife Insights shows an uploaded identification as the
  uploader's; a machine's call written there would come back as verified. A photo no person labelled
  is written without an identification, for Wildlife Insights' own AI. A burst labelled as a whole
  (an event-level observation) names each of its photos that has no label of its own.
- **times are the cameras' local times** (the template's ``YYYY-MM-DD HH:MM:SS``), and a photo whose
  time cannot be trusted (a reset clock) is left out, as in every export.
- **sensitive places leave rounded** to ``coordinate_precision`` (Wildlife Insights publishes
  locations after the embargo).
- **no guessed vocabulary.** Fields whose values Wildlife Insights draws from its own lists
  (feature type, camera functioning, sensor height) are written only from what Pardus recorded,
  otherwise left empty for the person uploading to choose; project fields Pardus does not know can be
  given (``project_fields``). ``wi_taxon_id`` is written where Pardus knows it (blank, human, vehicle,
  unnamed animal, and names that came from SpeciesNet); otherwise Wildlife Insights matches the
  genus and species.

Reading the tables back is :mod:`pardus.interop.wi_import`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pardus.ingest.timefix import time_is_trusted
from pardus.interop.camtrap_dp import DEFAULT_SENSITIVE_PRECISION, round_to
from pardus.store import Workspace
from pardus.store.models import Camera, Deployment, Individual, Location, Media, Observation, Project

PROJECT_COLUMNS = (
    "project_id", "project_name", "project_short_name", "project_objectives", "project_species",
    "project_species_individual", "project_sensor_layout", "project_sensor_layout_targeted_type", "project_bait_use",
    "project_bait_type", "project_stratification", "project_stratification_type", "project_sensor_method",
    "project_individual_animals", "project_blank_images", "project_sensor_cluster", "project_admin",
    "project_admin_email", "project_admin_organization", "country_code", "embargo", "initiative_id",
    "metadata_license", "image_license",
)  # fmt: skip
CAMERA_COLUMNS = ("project_id", "camera_id", "make", "model", "serial_number", "year_purchased")
DEPLOYMENT_COLUMNS = (
    "project_id", "deployment_id", "subproject_name", "subproject_design", "placename", "longitude", "latitude",
    "start_date", "end_date", "event_name", "event_description", "event_type", "bait_type", "bait_description",
    "feature_type", "feature_type_methodology", "camera_id", "quiet_period", "camera_functioning", "sensor_height",
    "height_other", "sensor_orientation", "orientation_other", "recorded_by",
)  # fmt: skip
IMAGE_COLUMNS = (
    "project_id", "deployment_id", "image_id", "location", "identified_by", "wi_taxon_id", "class", "order",
    "family", "genus", "species", "common_name", "uncertainty", "timestamp", "number_of_objects", "highlighted",
    "age", "sex", "animal_recognizable", "individual_id", "individual_animal_notes", "markings",
)  # fmt: skip
TABLES = {"projects": PROJECT_COLUMNS, "cameras": CAMERA_COLUMNS, "deployments": DEPLOYMENT_COLUMNS,
          "images": IMAGE_COLUMNS}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
TAXON_KEYS = ("wi_taxon_id", "class", "order", "family", "genus", "species", "common_name")
# Wildlife Insights' (and SpeciesNet's) ids of the taxa that are no species.
BLANK_ID = "f1856211-cfb7-4a5b-9158-c0f72fd09ee6"
HUMAN_ID = "990ae9dd-7a59-4344-afcb-1b7b21368000"
VEHICLE_ID = "e2895ed5-780b-48f6-8a11-9e27cb594511"
ANIMAL_ID = "1f689929-883d-4dae-958c-3d57ab5b6c16"
SPECIAL_TAXA: dict[str, dict[str, str]] = {
    "blank": {"wi_taxon_id": BLANK_ID, "common_name": "Blank"},
    "human": {"wi_taxon_id": HUMAN_ID, "class": "Mammalia", "order": "Primates", "family": "Hominidae",
              "genus": "Homo", "species": "sapiens", "common_name": "Human"},
    "vehicle": {"wi_taxon_id": VEHICLE_ID, "common_name": "Vehicle"},
    "animal": {"wi_taxon_id": ANIMAL_ID, "common_name": "Animal"},
}  # fmt: skip
KEPT_PATHS = ("wildlife-insights", "camtrap-dp", "coco-ct")
CLASSES = frozenset({"Mammalia", "Aves", "Reptilia", "Amphibia", "Insecta", "Actinopterygii"})


class WildlifeInsightsError(ValueError):
    """Tables that cannot be written or read as asked; the message says what to change."""


@dataclass
class WIExportReport:
    counts: dict[str, int] = field(default_factory=dict)
    obscured_locations: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)


def rank_of(name: str) -> str:
    """The rank a one-word scientific name stands at, by the codes' endings (family -idae, order -formes)."""
    if name in CLASSES:
        return "class"
    if name.endswith("idae"):
        return "family"
    if name.endswith("formes") or name in ("Carnivora", "Primates", "Rodentia", "Artiodactyla",
                                            "Cetartiodactyla", "Lagomorpha", "Eulipotyphla", "Chiroptera"):
        return "order"
    return "genus"


def taxon_columns(kind: str, name: str | None, taxonomy: str | None, common: Mapping[str, str]) -> dict[str, str]:
    """An observation's Wildlife Insights taxonomy columns (empty dict: no identification to write)."""
    if kind in ("blank", "human", "vehicle"):
        return dict(SPECIAL_TAXA[kind])
    if kind != "animal":
        return {}
    if not name:
        return dict(SPECIAL_TAXA["animal"])
    out: dict[str, str] = {}
    if taxonomy and taxonomy.count(";") == 6:  # SpeciesNet's: uuid;class;order;family;genus;species;common
        uuid, cls, order, family, genus, species, common_name = (p.strip() for p in taxonomy.split(";"))
        return {"wi_taxon_id": uuid, "class": cls.capitalize(), "order": order.capitalize(),
                "family": family.capitalize(), "genus": genus.capitalize(), "species": species.lower(),
                "common_name": common_name.capitalize()}  # fmt: skip
    words = name.split()
    if len(words) >= 2:
        out["genus"], out["species"] = words[0].capitalize(), words[1].lower()
    else:
        out[rank_of(words[0])] = words[0]
    known = common.get(name.lower()) or (common.get(" ".join(words[:2]).lower()) if len(words) > 2 else None)
    if known:
        out["common_name"] = known
    return out


def _same_taxon(came: Mapping[str, str], kind: str, name: str | None) -> bool:
    """Whether Wildlife Insights' own taxonomy columns still say what the observation says."""
    from pardus.interop.wi_import import identification

    return identification(dict(came)) == (kind, name)


def _common_names() -> dict[str, str]:
    """Scientific name (lower case) -> common name, from Pardus's taxon maps."""
    from pardus.models.species import TAXON_MAPS

    out: dict[str, str] = {}
    for m in TAXON_MAPS.values():
        for t in m.taxa:
            if "(" not in t.common_name:
                out.setdefault(t.scientific_name.lower(), t.common_name)
    return out


def _local(t: datetime | None, offset_minutes: int) -> str:
    return "" if t is None else (t + timedelta(minutes=offset_minutes)).strftime(TIME_FORMAT)


def _write(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> int:
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
            n += 1
    return n


def export_wildlife_insights(
    ws: Workspace,
    out: Path | str,
    *,
    project_id: str | None = None,
    deployment_ids: Iterable[str] | None = None,
    wi_project_id: str | None = None,
    project_fields: Mapping[str, str] | None = None,
    coordinate_precision: float = DEFAULT_SENSITIVE_PRECISION,
    media_url: str | None = None,
) -> WIExportReport:
    """Write ``projects.csv``, ``cameras.csv``, ``deployments.csv`` and ``images.csv`` into the folder ``out``.

    ``wi_project_id`` is the project's id in Wildlife Insights (default: Pardus's project id);
    ``project_fields`` fills project template columns Pardus does not know (country_code, embargo,
    licences ...); ``media_url`` is put before each photo's '<deployment>/<path on the card>' in
    ``location`` (the bucket or web folder the photos are uploaded to). Checked before anything is
    written: unknown project fields, a bad precision.
    """
    fields = dict(project_fields or {})
    unknown = sorted(set(fields) - set(PROJECT_COLUMNS))
    if unknown:
        raise WildlifeInsightsError(f"{unknown[0]!r} is not a column of Wildlife Insights' project template "
                                    f"(they are: {', '.join(PROJECT_COLUMNS)})")
    if not coordinate_precision > 0:
        raise WildlifeInsightsError("the coordinate precision must be a positive number of degrees, e.g. 0.1")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise WildlifeInsightsError(f"{out} is a file; give a folder for the four tables")
    rep = WIExportReport()
    with ws.db.session() as s:
        project = _project(s, project_id)
        dq = select(Deployment, Location).outerjoin(Location, Location.id == Deployment.location_id)
        if deployment_ids is not None:
            dq = dq.where(Deployment.id.in_(list(deployment_ids)))
        elif project is not None and project_id:
            dq = dq.where(Deployment.project_id == project.id)
        deps = [(d, loc) for d, loc in s.execute(dq.order_by(Deployment.id))]
        if not deps:
            raise WildlifeInsightsError("there are no deployments to export; record them with `pardus deployments add`")
        pid = wi_project_id or fields.get("project_id") or (project.id if project else "pardus")
        out.mkdir(parents=True, exist_ok=True)
        prow = {"project_name": project.title if project else "Camera-trap data from Pardus",
                "project_short_name": project.id if project else "",
                "project_objectives": project.description if project else "", **fields, "project_id": pid}
        rep.counts["projects"] = _write(out / "projects.csv", PROJECT_COLUMNS, [prow])
        rep.files.append(out / "projects.csv")
        rep.counts["cameras"] = _write(out / "cameras.csv", CAMERA_COLUMNS, _cameras(s, deps, pid))
        rep.files.append(out / "cameras.csv")
        dep_rows = list(_deployments(s, deps, pid, coordinate_precision, rep))
        rep.counts["deployments"] = _write(out / "deployments.csv", DEPLOYMENT_COLUMNS, dep_rows)
        rep.files.append(out / "deployments.csv")
        rep.counts["images"] = _write(out / "images.csv", IMAGE_COLUMNS,
                                      _images(s, deps, pid, media_url, rep))
        rep.files.append(out / "images.csv")
    return rep


def _project(s: Session, project_id: str | None) -> Project | None:
    if project_id:
        project = s.get(Project, project_id)
        if project is None:
            raise WildlifeInsightsError(f"there is no project {project_id!r}")
        return project
    projects = list(s.scalars(select(Project).limit(2)))
    return projects[0] if len(projects) == 1 else None


def _camera_id(dep: Deployment) -> str:
    return dep.camera_id or f"{dep.id}-camera"  # the template needs a camera; which one is not recorded


def _cameras(s: Session, deps: list[tuple[Deployment, Location | None]], pid: str) -> Iterable[dict[str, Any]]:
    seen: set[str] = set()
    for dep, _ in deps:
        cid = _camera_id(dep)
        if cid in seen:
            continue
        seen.add(cid)
        cam = s.get(Camera, dep.camera_id) if dep.camera_id else None
        yield {"project_id": pid, "camera_id": cid, "make": cam.make if cam else None,
               "model": cam.model if cam else None, "serial_number": cam.serial if cam else None}


def _deployments(s: Session, deps: list[tuple[Deployment, Location | None]], pid: str, precision: float,
                 rep: WIExportReport) -> Iterable[dict[str, Any]]:
    ids = [d.id for d, _ in deps]
    spans = {dep: (a, b) for dep, a, b in s.execute(
        select(Media.deployment_id, func.min(Media.timestamp), func.max(Media.timestamp))
        .where(Media.deployment_id.in_(ids)).group_by(Media.deployment_id))}  # fmt: skip
    for dep, loc in deps:
        lat, lon = (loc.latitude, loc.longitude) if loc else (None, None)
        if loc is not None and loc.sensitive and lat is not None and lon is not None:
            lat, lon = round_to(lat, precision), round_to(lon, precision)
            rep.obscured_locations.append(loc.id)
        if lat is None or lon is None:
            rep.warnings.append(f"deployment {dep.id} has no latitude/longitude; Wildlife Insights needs them")
        start, end = dep.start, dep.end
        if start is None or end is None:
            a, b = spans.get(dep.id, (None, None))
            start, end = start or a, end or b
            rep.warnings.append(f"deployment {dep.id}: start/end taken from its first and last photo")
        off = dep.utc_offset_minutes or 0
        yield {
            "project_id": pid, "deployment_id": dep.id, "placename": (loc.name or loc.id) if loc else dep.id,
            "longitude": lon, "latitude": lat, "start_date": _local(start, off), "end_date": _local(end, off),
            "bait_type": "None" if dep.bait_use is False else None, "feature_type": dep.feature_type,
            "camera_id": _camera_id(dep),
            "sensor_height": "Other" if dep.camera_height is not None else None,
            "height_other": f"{dep.camera_height:g} m" if dep.camera_height is not None else None,
            "sensor_orientation": "Other" if dep.camera_tilt is not None else None,
            "orientation_other": f"tilt {dep.camera_tilt} degrees" if dep.camera_tilt is not None else None,
            "recorded_by": dep.setup_by,
        }  # fmt: skip


_SEX = {"female": "Female", "male": "Male", "f": "Female", "m": "Male"}
_AGE = {"adult": "Adult", "subadult": "Subadult", "juvenile": "Juvenile"}


def _images(s: Session, deps: list[tuple[Deployment, Location | None]], pid: str, media_url: str | None,
            rep: WIExportReport) -> Iterable[dict[str, Any]]:
    """One row per person's identification of a photo (several for several species), one bare row per
    photo nobody labelled; photos whose time cannot be trusted are left out."""
    offsets = {d.id: d.utc_offset_minutes or 0 for d, _ in deps}
    codes = {i: c for i, c in s.execute(select(Individual.id, Individual.code))}
    common = _common_names()
    human = (Observation.classification_method == "human") & Observation.superseded_by.is_(None)
    labels: dict[str, list[Observation]] = defaultdict(list)
    for o in s.scalars(select(Observation).where(human, Observation.observation_level == "media",
                                                 Observation.deployment_id.in_(list(offsets)))):
        labels[o.media_id or ""].append(o)
    bursts: dict[tuple[str, str], list[Observation]] = defaultdict(list)
    for o in s.scalars(select(Observation).where(human, Observation.observation_level == "event",
                                                 Observation.event_id.is_not(None),
                                                 Observation.deployment_id.in_(list(offsets)))):
        bursts[o.deployment_id, o.event_id or ""].append(o)
    left_out = 0
    q = (select(Media).where(Media.deployment_id.in_(list(offsets)),
                             or_(Media.file_mediatype.like("image/%"), Media.file_mediatype.is_(None)))
         .order_by(Media.deployment_id, Media.timestamp, Media.id))  # fmt: skip
    base = (media_url.rstrip("/") + "/") if media_url else ""
    for m in s.scalars(q.execution_options(yield_per=2000)):
        if m.timestamp is None or not time_is_trusted(m.timestamp_issues):
            left_out += 1
            continue
        path = m.file_path.replace("\\", "/").lstrip("/")
        # A path read from a data set (Wildlife Insights, Camtrap DP, COCO) is already unique: as it came.
        kept = "://" in path or m.timestamp_source in KEPT_PATHS or "coco" in (m.extra or {})
        row = {"project_id": pid, "deployment_id": m.deployment_id, "image_id": m.id,
               "location": path if kept else f"{base}{m.deployment_id}/{path}",
               "timestamp": _local(m.timestamp, offsets[m.deployment_id]),
               "highlighted": "1" if m.favorite else "0"}  # fmt: skip
        mine = labels.get(m.id) or (bursts.get((m.deployment_id, m.sequence_id)) if m.sequence_id else None) or []
        written = False
        for o in mine:
            taxon = taxon_columns(o.observation_type, o.scientific_name,
                                  ((o.extra or {}).get("source") or {}).get("taxonomy"), common)
            if not taxon:
                continue
            came = ((o.extra or {}).get("wildlife_insights") or {}).get("taxon")
            if came and _same_taxon(came, o.observation_type, o.scientific_name):
                taxon = {k: came.get(k, "") for k in TAXON_KEYS}  # read from Wildlife Insights: as it came
            code = codes.get(o.individual_id or "")
            yield {**row, **taxon, "identified_by": o.classified_by,
                   "number_of_objects": o.count if o.observation_type != "blank" else 0,
                   "age": _AGE.get((o.life_stage or "").lower()), "sex": _SEX.get((o.sex or "").lower()),
                   "animal_recognizable": "Yes" if code else "No", "individual_id": code}  # fmt: skip
            written = True
        if not written:
            yield row
    if left_out:
        rep.warnings.append(f"{left_out} photo(s) without a time that can be trusted were left out")
