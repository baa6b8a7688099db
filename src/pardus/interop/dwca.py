"""Darwin Core Archive for GBIF: occurrences from people's verified event-level animal observations.

GBIF's camera-trap guidance publishes Camtrap DP packages as Occurrence core archives (what the
camtrapdp R package's ``write_dwc`` makes): one occurrence per event-level animal observation, the
deployment's place and period as the sampling context, EML for the dataset's metadata. Pardus builds
the archive *from the Camtrap DP package it writes* (``export_camtrap_dp`` into a working folder,
validated), so both carry the same data: places of sensitive species rounded the same way, photos
with an untrusted time left out the same way, people's photo-by-photo review raised to events the
same way (``interop.events``). Only human-verified observations become occurrences: a machine's
call is a proposal, not a record.

Written: ``occurrence.txt`` (tab-separated, UTF-8), ``meta.xml`` (the columns' Darwin Core terms)
and ``eml.xml`` (EML 2.1.1: title, creators from the contributors, licence, geographic, temporal and
taxonomic coverage), as a folder or a .zip when ``out`` ends in .zip.
"""

from __future__ import annotations

import csv
import json
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from pardus.interop.camtrap_dp import CamtrapDPError, export_camtrap_dp

DWC = "http://rs.tdwg.org/dwc/terms/"
DC = "http://purl.org/dc/terms/"
OCCURRENCE_ROW = DWC + "Occurrence"
# (column, term namespace): the occurrence table, in order; the first is the record's id.
TERMS: list[tuple[str, str]] = [
    ("occurrenceID", DWC), ("basisOfRecord", DWC), ("occurrenceStatus", DWC), ("eventID", DWC),
    ("parentEventID", DWC), ("eventDate", DWC), ("samplingProtocol", DWC), ("samplingEffort", DWC),
    ("habitat", DWC), ("locationID", DWC), ("locality", DWC), ("decimalLatitude", DWC),
    ("decimalLongitude", DWC), ("geodeticDatum", DWC), ("coordinateUncertaintyInMeters", DWC),
    ("coordinatePrecision", DWC), ("scientificName", DWC), ("kingdom", DWC), ("individualCount", DWC),
    ("sex", DWC), ("lifeStage", DWC), ("behavior", DWC), ("organismID", DWC), ("identifiedBy", DWC),
    ("dateIdentified", DWC), ("identificationVerificationStatus", DWC), ("occurrenceRemarks", DWC),
    ("license", DC), ("rightsHolder", DC), ("datasetID", DWC), ("datasetName", DWC), ("collectionCode", DWC),
]  # fmt: skip
VERIFIED = "verified by a person from the recorded images"


class DwcaError(ValueError):
    """An archive that cannot be written or read as asked; the message says what to change."""


@dataclass
class DwcaReport:
    out: Path
    occurrences: int = 0
    left_out_machine: int = 0  # event-level animal observations only a machine made
    warnings: list[str] = field(default_factory=list)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def is_verified_animal_event(o: dict[str, str]) -> bool:
    """The observations that become occurrences: event level, an animal, named by a person."""
    return (o["observationLevel"] == "event" and o["observationType"] == "animal"
            and o["classificationMethod"] == "human")  # fmt: skip


def occurrences_from_package(package: Path) -> tuple[list[dict[str, str]], int, dict[str, Any]]:
    """(occurrence rows, machine-only event observations left out, datapackage.json) of a Camtrap DP folder."""
    meta = json.loads((package / "datapackage.json").read_text(encoding="utf-8"))
    deps = {d["deploymentID"]: d for d in _read(package / "deployments.csv")}
    licenses = {lic.get("scope"): lic.get("name") or lic.get("path") for lic in meta.get("licenses", [])}
    holders = [c["title"] for c in meta.get("contributors", []) if c.get("role") == "rightsHolder"]
    precision = meta.get("coordinatePrecision")
    rows = []
    machine = 0
    for o in _read(package / "observations.csv"):
        if o["observationLevel"] == "event" and o["observationType"] == "animal" and not is_verified_animal_event(o):
            machine += 1
        if not is_verified_animal_event(o):
            continue
        d = deps[o["deploymentID"]]
        start, end = o["eventStart"], o["eventEnd"]
        rows.append({
            "occurrenceID": o["observationID"], "basisOfRecord": "MachineObservation", "occurrenceStatus": "present",
            "eventID": o["eventID"], "parentEventID": o["deploymentID"],
            "eventDate": start if not end or end == start else f"{start}/{end}",
            "samplingProtocol": "camera trap",
            "samplingEffort": f"{d['deploymentStart']}/{d['deploymentEnd']}", "habitat": d["habitat"],
            "locationID": d["locationID"], "locality": d["locationName"], "decimalLatitude": d["latitude"],
            "decimalLongitude": d["longitude"], "geodeticDatum": "EPSG:4326",
            "coordinateUncertaintyInMeters": d["coordinateUncertainty"],
            "coordinatePrecision": "" if precision is None else str(precision),
            "scientificName": o["scientificName"], "kingdom": "Animalia", "individualCount": o["count"],
            "sex": o["sex"], "lifeStage": o["lifeStage"], "behavior": o["behavior"], "organismID": o["individualID"],
            "identifiedBy": o["classifiedBy"], "dateIdentified": o["classificationTimestamp"],
            "identificationVerificationStatus": VERIFIED, "occurrenceRemarks": o["observationComments"],
            "license": licenses.get("data") or "", "rightsHolder": " | ".join(holders),
            "datasetID": str(meta.get("id") or ""), "datasetName": str(meta.get("title") or ""),
            "collectionCode": "Camera traps",
        })  # fmt: skip
    return rows, machine, meta


def _meta_xml() -> bytes:
    root = ET.Element("archive", {"xmlns": "http://rs.tdwg.org/dwc/text/", "metadata": "eml.xml"})
    core = ET.SubElement(root, "core", {
        "encoding": "UTF-8", "fieldsTerminatedBy": "\\t", "linesTerminatedBy": "\\n", "fieldsEnclosedBy": "",
        "ignoreHeaderLines": "1", "rowType": OCCURRENCE_ROW})  # fmt: skip
    ET.SubElement(ET.SubElement(core, "files"), "location").text = "occurrence.txt"
    ET.SubElement(core, "id", {"index": "0"})
    for i, (name, ns) in enumerate(TERMS):
        ET.SubElement(core, "field", {"index": str(i), "term": ns + name})
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _eml(meta: dict[str, Any], rows: list[dict[str, str]]) -> bytes:
    """EML 2.1.1, the metadata GBIF's IPT reads: who, what, where, when, which taxa, which licence."""
    eml = ET.Element("eml:eml", {
        "xmlns:eml": "eml://ecoinformatics.org/eml-2.1.1", "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:schemaLocation": "eml://ecoinformatics.org/eml-2.1.1 http://rs.gbif.org/schema/eml-gbif-profile/1.2/eml.xsd",
        "packageId": str(meta.get("id") or "pardus"), "system": "pardus", "xml:lang": "en"})  # fmt: skip
    ds = ET.SubElement(eml, "dataset")
    ET.SubElement(ds, "title").text = str(meta.get("title") or "Camera-trap observations")
    people = [c for c in meta.get("contributors", []) if isinstance(c, dict)] or [{"title": "unknown"}]
    for tag in ("creator", "metadataProvider"):
        for c in people[:1] if tag == "metadataProvider" else people:
            el = ET.SubElement(ds, tag)
            ET.SubElement(el, "organizationName").text = c.get("title", "")
            if c.get("email"):
                ET.SubElement(el, "electronicMailAddress").text = c["email"]
    ET.SubElement(ds, "pubDate").text = datetime.now(UTC).strftime("%Y-%m-%d")
    ET.SubElement(ds, "language").text = "en"
    ET.SubElement(ET.SubElement(ds, "abstract"), "para").text = str(
        meta.get("description") or (meta.get("project") or {}).get("description") or meta.get("title") or "")
    lic = next((x for x in meta.get("licenses", []) if x.get("scope") == "data"), {})
    ET.SubElement(ET.SubElement(ds, "intellectualRights"), "para").text = (
        f"This work is licensed under {lic.get('name') or lic.get('path') or 'the licence stated by its authors'}.")
    cov = ET.SubElement(ds, "coverage")
    geo = ET.SubElement(cov, "geographicCoverage")
    ET.SubElement(geo, "geographicDescription").text = "Camera-trap locations (sensitive places rounded)"
    ring = ((meta.get("spatial") or {}).get("coordinates") or [[[0, 0]]])[0]
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    bb = ET.SubElement(geo, "boundingCoordinates")
    for tag, v in (("westBoundingCoordinate", min(lons)), ("eastBoundingCoordinate", max(lons)),
                   ("northBoundingCoordinate", max(lats)), ("southBoundingCoordinate", min(lats))):
        ET.SubElement(bb, tag).text = str(v)
    temporal = meta.get("temporal") or {}
    dates = ET.SubElement(ET.SubElement(cov, "temporalCoverage"), "rangeOfDates")
    ET.SubElement(ET.SubElement(dates, "beginDate"), "calendarDate").text = str(temporal.get("start", ""))
    ET.SubElement(ET.SubElement(dates, "endDate"), "calendarDate").text = str(temporal.get("end", ""))
    taxa = sorted({r["scientificName"] for r in rows if r["scientificName"]})
    if taxa:
        tax = ET.SubElement(cov, "taxonomicCoverage")
        for name in taxa:
            t = ET.SubElement(tax, "taxonomicClassification")
            ET.SubElement(t, "taxonRankValue").text = name
    contact = ET.SubElement(ds, "contact")
    ET.SubElement(contact, "organizationName").text = people[0].get("title", "")
    return ET.tostring(eml, encoding="utf-8", xml_declaration=True)


def write_dwca(package: Path | str, out: Path | str) -> DwcaReport:
    """Turn a Camtrap DP package folder into a Darwin Core Archive (folder, or .zip by its name)."""
    package, out = Path(package), Path(out)
    rows, machine, meta = occurrences_from_package(package)
    files = {
        "occurrence.txt": _table(rows),
        "meta.xml": _meta_xml(),
        "eml.xml": _eml(meta, rows),
    }
    if out.suffix.lower() == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in files.items():
                z.writestr(name, data)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (out / name).write_bytes(data)
    rep = DwcaReport(out=out, occurrences=len(rows), left_out_machine=machine)
    if machine:
        rep.warnings.append(f"{machine} event-level animal observation(s) made only by a machine are not "
                            "published as occurrences; review them to publish them")
    return rep


def _table(rows: list[dict[str, str]]) -> bytes:
    def clean(v: str) -> str:  # a tab or line break inside a value would split the record
        return " ".join(str(v).split()) if v else ""

    lines = ["\t".join(n for n, _ in TERMS)]
    lines += ["\t".join(clean(r[n]) for n, _ in TERMS) for r in rows]
    return ("\n".join(lines) + "\n").encode("utf-8")


def export_dwca(ws: Any, out: Path | str, **camtrap: Any) -> DwcaReport:
    """Write the store as a Darwin Core Archive, through the same Camtrap DP export GBIF would take.

    ``camtrap`` takes export_camtrap_dp's options (project, deployments, coordinate precision,
    metadata, ...). The package is validated first: an invalid one makes no archive.
    """
    with tempfile.TemporaryDirectory(prefix="pardus-dwca-") as tmp:
        pkg = Path(tmp) / "package"
        rep_dp = export_camtrap_dp(ws, pkg, **camtrap)
        if rep_dp.validation is not None and not rep_dp.validation.valid:
            raise CamtrapDPError("the Camtrap DP package the archive is made from does not pass its checks:\n"
                                 + rep_dp.validation.summary(), rep_dp.validation)
        rep = write_dwca(pkg, out)
    rep.warnings = [w for w in rep_dp.warnings if "--copy-media" not in w] + rep.warnings
    return rep


# --- checking an archive ------------------------------------------------------------------------


def check_dwca(path: Path | str) -> list[str]:
    """Problems of a Darwin Core Archive's structure (folder or .zip); an empty list means it holds together.

    Checked: meta.xml parses and names a core with a rowType, files, an id column and fields with
    term URIs; the core file exists and every row has as many columns as meta.xml says; ids are
    present and unique; the metadata file it names exists and parses as XML.
    """
    path = Path(path)
    problems: list[str] = []
    if path.is_file() and path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as z:
                files = {n: z.read(n) for n in z.namelist() if not n.endswith("/")}
        except (zipfile.BadZipFile, OSError) as exc:
            return [f"{path} is not a readable zip ({exc})"]
    elif path.is_dir():
        files = {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}
    else:
        return [f"{path} is neither an archive folder nor a .zip"]
    if "meta.xml" not in files:
        return ["meta.xml is missing: a Darwin Core Archive describes its files there"]
    try:
        root = ET.fromstring(files["meta.xml"])
    except ET.ParseError as exc:
        return [f"meta.xml is not well-formed XML ({exc})"]
    ns = "{http://rs.tdwg.org/dwc/text/}"
    core = root.find(ns + "core")
    if core is None:
        return ["meta.xml has no <core> element"]
    if not core.get("rowType"):
        problems.append("meta.xml: the core has no rowType")
    loc = core.find(f"{ns}files/{ns}location")
    if loc is None or not loc.text:
        return problems + ["meta.xml: the core names no file (<files><location>)"]
    id_el = core.find(ns + "id")
    fields = core.findall(ns + "field")
    for f in fields:
        if not (f.get("term") or "").startswith("http"):
            problems.append(f"meta.xml: field {f.get('index')} has no term URI")
    width = max([int(f.get("index", -1)) for f in fields if (f.get("index") or "").isdigit()] + [-1]) + 1
    data = files.get(loc.text)
    if data is None:
        return problems + [f"the core file {loc.text} named in meta.xml is missing"]
    sep = core.get("fieldsTerminatedBy", ",").encode().decode("unicode_escape")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return problems + [f"{loc.text} is not UTF-8 text"]
    skip = int(core.get("ignoreHeaderLines", "0") or 0)
    ids: set[str] = set()
    idx = int(id_el.get("index", "0")) if id_el is not None else None
    for n, line in enumerate(lines[skip:], start=skip + 1):
        cells = line.split(sep)
        if len(cells) < width:
            problems.append(f"{loc.text} line {n}: {len(cells)} columns, meta.xml describes {width}")
        elif idx is not None:
            if not cells[idx]:
                problems.append(f"{loc.text} line {n}: the record has no id")
            elif cells[idx] in ids:
                problems.append(f"{loc.text} line {n}: id {cells[idx]} appears twice")
            ids.add(cells[idx])
        if len(problems) > 50:
            break
    eml_name = root.get("metadata")
    if eml_name:
        if eml_name not in files:
            problems.append(f"the metadata file {eml_name} named in meta.xml is missing")
        else:
            try:
                ET.fromstring(files[eml_name])
            except ET.ParseError as exc:
                problems.append(f"{eml_name} is not well-formed XML ({exc})")
    return problems
