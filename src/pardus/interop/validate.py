"""`pardus validate PATH`: one check for any file or folder Pardus reads or writes for others.

A data manager receives packages from several tools; this tells which format a path holds and
whether it holds together, with messages that name the file, row and column, before anything is
imported or published. Formats are told by their content, not their names: a folder (or
datapackage.json) is Camtrap DP, a folder or .zip with meta.xml a Darwin Core Archive, a JSON file
with ``annotations`` or ``categories`` COCO Camera Traps, one with ``images`` alone MegaDetector
results.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from pardus.interop.camtrap_dp_schema import validate_package
from pardus.interop.dwca import check_dwca


@dataclass
class Verdict:
    path: Path
    kind: str  # "Camtrap DP", "Darwin Core Archive", "MegaDetector results", "COCO Camera Traps", "unknown"
    problems: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def valid(self) -> bool:
        return self.kind != "unknown" and not self.problems


def _coco_problems(data: dict[str, object]) -> list[str]:
    """COCO Camera Traps' own rules: unique ids, annotations pointing at images and categories."""
    problems: list[str] = []
    images, anns, cats = data.get("images"), data.get("annotations", []), data.get("categories", [])
    if not isinstance(images, list) or not isinstance(anns, list) or not isinstance(cats, list):
        return ["images, annotations and categories must be lists"]
    image_ids: set[object] = set()
    for i, im in enumerate(images):
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            problems.append(f"images[{i}] needs an id and a file_name")
            continue
        if im["id"] in image_ids:
            problems.append(f"images[{i}]: id {im['id']!r} appears twice")
        image_ids.add(im["id"])
    cat_ids = {c.get("id") for c in cats if isinstance(c, dict)}
    for i, a in enumerate(anns):
        if not isinstance(a, dict):
            problems.append(f"annotations[{i}] is not an object")
            continue
        if a.get("image_id") not in image_ids:
            problems.append(f"annotations[{i}]: image_id {a.get('image_id')!r} is not an image of this file")
        if a.get("category_id") not in cat_ids:
            problems.append(f"annotations[{i}]: category_id {a.get('category_id')!r} is not a category of this file")
        if len(problems) > 50:
            break
    return problems


def validate_path(path: Path | str) -> Verdict:
    """Which format ``path`` holds and what is wrong with it (an empty problem list: it is valid)."""
    path = Path(path)
    if not path.exists():
        return Verdict(path, "unknown", [f"{path} does not exist"])
    if (path.is_dir() and (path / "datapackage.json").is_file()) or path.name == "datapackage.json":
        folder = path if path.is_dir() else path.parent
        report = validate_package(folder)
        return Verdict(path, "Camtrap DP", [str(i) for i in report.issues], report.summary())
    if (path.is_dir() and (path / "meta.xml").is_file()) or (path.suffix.lower() == ".zip" and _zip_has_meta(path)):
        problems = check_dwca(path)
        return Verdict(path, "Darwin Core Archive", problems, "meta.xml, its core file and EML hold together")
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            return Verdict(path, "unknown", [f"cannot read {path} as JSON ({exc})"])
        if isinstance(data, dict) and ("annotations" in data or "categories" in data):
            problems = _coco_problems(data)
            if not problems and isinstance(data.get("images"), list):
                from pardus.interop.coco_ct import CocoError
                from pardus.interop.coco_import import check_coco

                try:  # what the importer needs beyond the format's own rules (ids that fit, boxes, counts)
                    check_coco(data, path, "")
                except CocoError as exc:
                    problems = [str(exc)]
            n = len(data.get("images") or [])
            return Verdict(path, "COCO Camera Traps", problems, f"{n} images")
        if isinstance(data, dict) and "images" in data:
            from pardus.interop.megadetector_json import MegaDetectorError, read_results

            try:
                results = read_results(path)
            except MegaDetectorError as exc:
                return Verdict(path, "MegaDetector results", [str(exc)])
            n = len(results["images"])
            boxes = sum(len(i.get("detections") or []) for i in results["images"])
            return Verdict(path, "MegaDetector results", [], f"{n} images, {boxes} boxes")
    return Verdict(path, "unknown", [
        f"{path} is none of the formats Pardus checks: a Camtrap DP folder (datapackage.json), a Darwin Core "
        "Archive (folder or .zip with meta.xml), MegaDetector results or COCO Camera Traps (.json)"])


def _zip_has_meta(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return "meta.xml" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
