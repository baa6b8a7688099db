"""Helpers for the interop tests: reading packages cell by cell, and frictionless against the official schemas."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

TABLES = ("deployments", "media", "observations")
KEYS = {"deployments": "deploymentID", "media": "mediaID", "observations": "observationID"}


def read_table(path: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """Header and rows keyed by primary key, as text (BOM tolerated)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        key = KEYS.get(path.stem, header[0])
        rows = {r[key]: r for r in reader}
    return header, rows


def cell_differences(a: Path, b: Path) -> list[str]:
    """Every cell that differs between two packages' tables (empty list = identical)."""
    diffs = []
    for t in TABLES:
        ha, ra = read_table(a / f"{t}.csv")
        hb, rb = read_table(b / f"{t}.csv")
        if ha != hb:
            diffs.append(f"{t}: header {ha} != {hb}")
        for k in sorted(set(ra) | set(rb)):
            if k not in ra or k not in rb:
                diffs.append(f"{t} {k}: only in {'first' if k in ra else 'second'}")
                continue
            for col in ha:
                if ra[k].get(col) != rb[k].get(col):
                    diffs.append(f"{t} {k} {col}: {ra[k].get(col)!r} != {rb[k].get(col)!r}")
    return diffs


def frictionless_errors(package_dir: Path, schemas_dir: Path, tmp: Path) -> list[str]:
    """Validate with frictionless against the official Camtrap DP profile and table schemas.

    The package names its profile and schemas by URL; they are pointed at the local official copies.
    The profile itself $refs two remote schemas: the Data Package one (frictionless applies its own
    built-in Data Package rules anyway, so that $ref is dropped) and GeoJSON for `spatial` (resolved
    to the copy frictionless ships).
    """
    import frictionless
    from frictionless import system, validate

    profile = json.loads((schemas_dir / "camtrap-dp-profile.json").read_text())
    geojson = Path(frictionless.__file__).parent / "assets" / "profiles" / "geojson.json"

    def patch(o: Any) -> Any:
        if isinstance(o, dict):
            if o.get("$ref") == "https://specs.frictionlessdata.io/schemas/data-package.json":
                return {}
            if o.get("$ref") == "http://json.schemastore.org/geojson.json":
                o = {**o, "$ref": geojson.as_uri()}
            return {k: patch(v) for k, v in o.items()}
        if isinstance(o, list):
            return [patch(v) for v in o]
        return o

    local_profile = tmp / "camtrap-dp-profile.json"
    local_profile.write_text(json.dumps(patch(profile)))
    # The profile wants each table schema named by a path that carries the version (1.0.2).
    versioned = tmp / "camtrap-dp" / "1.0.2"
    versioned.mkdir(parents=True, exist_ok=True)
    desc = json.loads((package_dir / "datapackage.json").read_text())
    desc["profile"] = str(local_profile)
    for r in desc["resources"]:
        if r.get("name") in TABLES:
            local = versioned / f"{r['name']}-table-schema.json"
            local.write_bytes((schemas_dir / local.name).read_bytes())
            r["schema"] = str(local)
    checked = package_dir / "datapackage.local.json"
    checked.write_text(json.dumps(desc))
    with system.use_context(trusted=True):
        report = validate(str(checked))
    checked.unlink()
    return [f"{e[0]}: {e[1]}" for e in report.flatten(["type", "note"])]
