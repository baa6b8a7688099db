"""GPS-collar import and home ranges: `pardus telemetry import` of the 47k-row fisher file against
reading the same CSV with Python's csv module, and the home-range time per individual.

The peer ("floor") is what any importer must at least do: open the gzip file, decode it and walk
every row with ``csv.DictReader``, storing nothing and checking nothing. Pardus does that and more:
checks every row (coordinates on Earth, times with a time of day, a second header), keeps every
column, writes the records to the store and flags speed spikes over each whole track. It is
measured three ways, each in its own workspace so nothing is cached between sides:

- ``command``: the real `pardus telemetry import FILE` as a child process (what a person waits
  for: Python start-up and imports included), into a fresh SQLite store, then again (a re-import
  that adds nothing); the start-up alone is `pardus telemetry tags` on the empty store;
- ``read+check``: ``read_movebank`` in this process (the file read, decoded, parsed and checked);
- ``store``: ``import_records`` of the parsed file in this process (writes and outlier flags).

Home ranges are timed per tag on the stored tracks (good fixes only): MCP 95% and the fixed-kernel
95% isopleth with the reference bandwidth (``pardus.telemetry.movement``), best of ``--repeat``.

    python bench/telemetry.py                     # the fisher file in ../shared/data
    python bench/telemetry.py --file leroy.csv.gz --repeat 5
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FISHERS = REPO.parent / "shared" / "data" / "telemetry-movebank" / "move2-fishers" / "fishers.csv.gz"


def floor_rows(path: Path) -> tuple[float, int]:
    """Seconds and rows for the floor: gunzip, decode and DictReader every row, nothing else."""
    t = time.perf_counter()
    raw = path.read_bytes()
    data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    n = 0
    for _row in csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")):
        n += 1
    return time.perf_counter() - t, n


def run_command(data_dir: Path, *args: str) -> tuple[float, str]:
    """Wall seconds of `pardus ARGS` in a child process, and what it printed."""
    env = {**os.environ, "PARDUS_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO / "src")}
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "pardus", *args], env=env, capture_output=True, text=True,
                         check=False)
    dt = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f"pardus {' '.join(args)} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
    return dt, " ".join(res.stdout.split())


def in_process(path: Path, data_dir: Path) -> tuple[float, float, int, int]:
    """(read+check seconds, store seconds, rows, stored) in this process, into a fresh store."""
    from pardus.config import Settings
    from pardus.store import open_workspace
    from pardus.telemetry.fixes import import_records
    from pardus.telemetry.movebank import read_movebank

    with open_workspace(Settings(data_dir=data_dir)) as ws:
        t = time.perf_counter()
        parsed = read_movebank(path)
        t_read = time.perf_counter() - t
        t = time.perf_counter()
        with ws.db.session() as s:
            rep = import_records(s, parsed)
        t_store = time.perf_counter() - t
    return t_read, t_store, parsed.rows, rep.stored


def home_ranges(data_dir: Path, repeat: int) -> list[tuple[str, int, float, float, float, float]]:
    """Per tag: (tag, fixes, MCP s, kernel s, MCP km², kernel km²), best of ``repeat``."""
    import numpy as np

    from pardus.config import Settings
    from pardus.store import open_workspace
    from pardus.telemetry.fixes import tracks
    from pardus.telemetry.movement import LocalPlane, kernel_home_range, mcp

    with open_workspace(Settings(data_dir=data_dir)) as ws, ws.db.session() as s:
        found = tracks(s)
    out = []
    for tr in sorted(found, key=lambda t: len(t.times)):
        if len(tr.times) < 5:
            continue
        xy = LocalPlane.about(tr.lons, tr.lats).xy(tr.lons, tr.lats)
        t_mcp, t_kde = [], []
        for _ in range(repeat):
            t = time.perf_counter()
            area_mcp, _hull = mcp(xy)
            t_mcp.append(time.perf_counter() - t)
            t = time.perf_counter()
            kr = kernel_home_range(np.asarray(xy))
            t_kde.append(time.perf_counter() - t)
        out.append((tr.tag_id, len(tr.times), min(t_mcp), min(t_kde), area_mcp / 1e6, kr.area_m2 / 1e6))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, default=FISHERS, help="a Movebank CSV export (default: the fisher file)")
    ap.add_argument("--repeat", type=int, default=3, help="home-range runs per tag (the best is shown)")
    args = ap.parse_args()
    if not args.file.is_file():
        raise SystemExit(f"{args.file} not found (the real data live in ../shared/data/telemetry-movebank)")
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    print(f"file: {args.file.name} ({args.file.stat().st_size / 1e6:.1f} MB), {os.cpu_count()} cores, "
          f"load {load:.1f}")

    t_floor, n_floor = floor_rows(args.file)
    print(f"floor  csv.DictReader (gunzip + decode + every row)   {t_floor:7.2f} s  {n_floor} rows")
    with tempfile.TemporaryDirectory(prefix="pardus-bench-telemetry-") as tmp:
        t_start, _ = run_command(Path(tmp) / "cmd", "telemetry", "tags")  # start-up, imports, open the store
        t_cmd, said = run_command(Path(tmp) / "cmd", "telemetry", "import", str(args.file))
        t_again, said_again = run_command(Path(tmp) / "cmd", "telemetry", "import", str(args.file))
        t_read, t_store, rows, stored = in_process(args.file, Path(tmp) / "inproc")
        if rows != n_floor:
            raise SystemExit(f"pardus read {rows} rows, the csv module {n_floor}")
        print(f"pardus read_movebank (read + decode + check)          {t_read:7.2f} s  {rows} rows"
              f"   ratio {t_read / t_floor:5.1f}x")
        print(f"pardus import_records (store + flag, SQLite)          {t_store:7.2f} s  {stored} stored")
        print(f"pardus telemetry import (the command, process start)  {t_cmd:7.2f} s"
              f"                ratio {t_cmd / t_floor:5.1f}x")
        print(f"  of which process start-up (`pardus telemetry tags` on an empty store) {t_start:5.2f} s")
        print(f"pardus telemetry import again (adds nothing)          {t_again:7.2f} s"
              f"                ratio {t_again / t_floor:5.1f}x")
        print(f"  first:  {said[:160]}")
        print(f"  again:  {said_again[:160]}")
        print(f"\nhome range per individual (best of {args.repeat}; MCP 95%, kernel 95% with h_ref, 200-cell grid)")
        print(f"{'tag':>12} {'fixes':>7} {'MCP ms':>8} {'kernel ms':>10} {'MCP km2':>8} {'kernel km2':>11}")
        for tag, n, tm, tk, am, ak in home_ranges(Path(tmp) / "inproc", args.repeat):
            print(f"{tag:>12} {n:7d} {tm * 1000:8.1f} {tk * 1000:10.1f} {am:8.2f} {ak:11.2f}")


if __name__ == "__main__":
    main()
