"""Camtrap DP export of a large store: time and peak memory, against the floor of just writing the CSV.

The store is filled with synthetic rows (450 deployments as in the Land of the Leopard park, one
photo per two observations, a sensitive location every tenth deployment). Pardus then exports the
whole store as a Camtrap DP package. Two floors: the same rows read from the store (every column
of media and observation, streamed) and written as plain CSV with str() of each value, what
"writing the same rows as plain CSV" costs (issue 21's target: Pardus within 1.5x of it); and the
same number of rows made on the fly in Python with no database at all, what any exporter must at
least do. Each side runs in its own process so its peak RSS is its own.

    python bench/export.py                    # 1,000,000 observations, SQLite
    python bench/export.py -n 100000 --validate
    python bench/export.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

TARGET_SECONDS = 60.0
TARGET_MB = 1024.0


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss it does not carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fill(url: str | None, data_dir: Path, n_obs: int) -> None:
    from sqlalchemy import insert

    from pardus.config import Settings
    from pardus.store import open_workspace
    from pardus.store.models import Deployment, Location, Media, Observation, Project

    ws = open_workspace(Settings(data_dir=data_dir, database_url=url))
    n_media = n_obs // 2
    n_dep = 450
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    with ws.db.engine.begin() as conn:
        conn.execute(insert(Project), [{"id": "lotl", "title": "Land of the Leopard camera traps", "extra": {}}])
        conn.execute(insert(Location), [
            {"id": f"L{d:03d}", "name": f"station {d}", "latitude": 42.8 + d * 0.001, "longitude": 131.2 + d * 0.001,
             "sensitive": d % 10 == 0, "extra": {}}
            for d in range(n_dep)
        ])  # fmt: skip
        conn.execute(insert(Deployment), [
            {"id": f"D{d:03d}", "project_id": "lotl", "location_id": f"L{d:03d}", "start": t0,
             "end": t0 + timedelta(days=365), "utc_offset_minutes": 600, "clock_offset_s": 0.0,
             "timestamp_issues": False, "extra": {}, "text_hints": {}}
            for d in range(n_dep)
        ])  # fmt: skip
        chunk = 20000
        for start in range(0, n_media, chunk):
            conn.execute(insert(Media), [
                {"id": f"m{i:08d}", "deployment_id": f"D{i % n_dep:03d}", "file_path": f"DCIM/100RECNX/IMG_{i:08d}.JPG",
                 "file_name": f"IMG_{i:08d}.JPG", "file_mediatype": "image/jpeg", "file_public": True,
                 "available": True, "timestamp_source": "exif", "timestamp": t0 + timedelta(seconds=31 * i),
                 "camera_time": datetime(2024, 1, 1, 10) + timedelta(seconds=31 * i),
                 "capture_method": "activityDetection", "favorite": False, "imported": t0, "extra": {},
                 "text_hints": {}, "sha256": f"{i:064x}"}
                for i in range(start, min(n_media, start + chunk))
            ])  # fmt: skip
        species = ["Panthera pardus orientalis", "Panthera tigris altaica", "Capreolus pygargus", "Sus scrofa", None]
        for start in range(0, n_obs, chunk):
            conn.execute(insert(Observation), [
                {"id": f"o{i:08d}", "deployment_id": f"D{(i // 2) % n_dep:03d}", "media_id": f"m{i // 2:08d}",
                 "event_id": f"e{i // 10:07d}", "observation_level": "media",
                 "observation_type": "animal" if species[i % 5] else "blank", "scientific_name": species[i % 5],
                 "count": 1 if species[i % 5] else None, "classification_method": "machine",
                 "classified_by": "SpeciesNet v4.0.1a", "classification_probability": 0.5 + (i % 50) / 100,
                 "bbox_x": 0.1, "bbox_y": 0.2, "bbox_width": 0.3, "bbox_height": 0.25, "extra": {}, "text_hints": {}}
                for i in range(start, min(n_obs, start + chunk))
            ])  # fmt: skip
    ws.close()


def run_pardus(url: str | None, data_dir: Path, out: Path, validate: bool) -> None:
    from pardus.config import Settings
    from pardus.interop.camtrap_dp import export_camtrap_dp
    from pardus.interop.camtrap_dp_schema import validate_package
    from pardus.store import open_workspace

    ws = open_workspace(Settings(data_dir=data_dir, database_url=url))
    t = time.perf_counter()
    rep = export_camtrap_dp(ws, out, validate=False)
    dt = time.perf_counter() - t
    ws.close()
    vt = ""
    if validate:
        t = time.perf_counter()
        v = validate_package(out)
        vt = f" validate={time.perf_counter() - t:.2f}s valid={v.valid}"
    print(f"RESULT {dt:.3f} {peak_mb():.1f} obs={rep.counts['observations']} media={rep.counts['media']}"
          f" obscured={len(rep.obscured_locations)}{vt}")  # fmt: skip


def run_floor(n_obs: int, out: Path) -> None:
    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "media.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for i in range(n_obs // 2):
            w.writerow((f"m{i:08d}", f"D{i % 450:03d}", "activityDetection", f"2024-01-01T10:00:{i % 60:02d}+10:00",
                        f"media/D{i % 450:03d}/IMG_{i:08d}.JPG", "true", f"IMG_{i:08d}.JPG", "image/jpeg", "", "false",
                        ""))  # fmt: skip
    with open(out / "observations.csv", "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        for i in range(n_obs):
            w.writerow((f"o{i:08d}", f"D{(i // 2) % 450:03d}", f"m{i // 2:08d}", f"e{i // 10:07d}",
                        "2024-01-01T10:00:00+10:00", "2024-01-01T10:00:00+10:00", "media", "animal", "",
                        "Panthera pardus orientalis", 1, "", "", "", "", "", "", "", 0.1, 0.2, 0.3, 0.25, "machine",
                        "SpeciesNet v4.0.1a", "", 0.5 + (i % 50) / 100, "", ""))  # fmt: skip
    print(f"RESULT {time.perf_counter() - t:.3f} {peak_mb():.1f}")


def run_db_floor(url: str | None, data_dir: Path, out: Path) -> None:
    """The same rows read from the store (every media and observation column, streamed) and written
    as plain CSV with str() of each value: what "writing the same rows as plain CSV" costs."""
    from sqlalchemy import select

    from pardus.config import Settings
    from pardus.store import open_workspace
    from pardus.store.models import Media, Observation

    ws = open_workspace(Settings(data_dir=data_dir, database_url=url))
    t = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    with ws.db.engine.connect() as conn:
        for name, table in (("media.csv", Media.__table__), ("observations.csv", Observation.__table__)):
            with open(out / name, "w", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(table.columns.keys())
                result = conn.execution_options(stream_results=True, yield_per=10_000).execute(select(table))
                for part in result.partitions():
                    w.writerows(part)
    print(f"RESULT {time.perf_counter() - t:.3f} {peak_mb():.1f}")
    ws.close()


def child(args: list[str]) -> tuple[float, float, str]:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=True)
    line = next(x for x in res.stdout.splitlines() if x.startswith("RESULT"))
    parts = line.split()
    return float(parts[1]), float(parts[2]), " ".join(parts[3:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", "--observations", type=int, default=1_000_000)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--validate", action="store_true", help="also time Pardus's own check of the package")
    ap.add_argument("--child", choices=["pardus", "floor", "dbfloor"], help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child == "pardus":
        run_pardus(a.database_url, a.dir / "data", a.dir / "pkg", a.validate)
        return
    if a.child == "floor":
        run_floor(a.observations, a.dir / "floor")
        return
    if a.child == "dbfloor":
        run_db_floor(a.database_url, a.dir / "data", a.dir / "dbfloor")
        return
    from pardus.testing.postgres import drop_schema, new_schema

    server_url, schema = a.database_url, None
    with tempfile.TemporaryDirectory(prefix="pardus-bench-export-") as tmp:
        d = Path(tmp)
        if a.database_url:  # a throw-away schema, dropped after the run
            schema, a.database_url = new_schema(a.database_url, "pardus_bench_export")
        try:
            f_s, f_mb, d_s, d_mb, p_s, p_mb, info = _measure(a, d)
        finally:
            if schema is not None:
                drop_schema(server_url, schema)
    _print(f_s, f_mb, d_s, d_mb, p_s, p_mb, info)


def _measure(a: argparse.Namespace, d: Path) -> tuple[float, float, float, float, float, float, str]:
    """Fill the store, then time the two floors and Pardus, each in its own process."""
    t = time.perf_counter()
    fill(a.database_url, d / "data", a.observations)
    print(f"filled a store with {a.observations:,} observations and {a.observations // 2:,} media "
          f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
    common = ["-n", str(a.observations), "--dir", str(d)] + (
        ["--database-url", a.database_url] if a.database_url else []
    )
    f_s, f_mb, _ = child(["--child", "floor", *common])
    d_s, d_mb, _ = child(["--child", "dbfloor", *common])
    p_s, p_mb, info = child(["--child", "pardus", *common, *(["--validate"] if a.validate else [])])
    return f_s, f_mb, d_s, d_mb, p_s, p_mb, info


def _print(f_s: float, f_mb: float, d_s: float, d_mb: float, p_s: float, p_mb: float, info: str) -> None:
    print(f"\n{'':40}{'seconds':>10}{'peak RSS MB':>14}")
    print(f"{'floor: csv module, rows made in Python':40}{f_s:>10.2f}{f_mb:>14.1f}")
    print(f"{'same rows read from the store, plain CSV':40}{d_s:>10.2f}{d_mb:>14.1f}")
    print(f"{'Pardus export_camtrap_dp':40}{p_s:>10.2f}{p_mb:>14.1f}")
    print(f"{'ratio Pardus / plain CSV from the store':40}{p_s / d_s:>10.2f}{p_mb / d_mb:>14.2f}  (target <= 1.5x)")
    print(f"{'ratio Pardus / floor':40}{p_s / f_s:>10.2f}{p_mb / f_mb:>14.2f}")
    print(f"({info})")
    ok = p_s < TARGET_SECONDS and p_mb < TARGET_MB
    print(f"target: under {TARGET_SECONDS:.0f} s and {TARGET_MB:.0f} MB -> {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
