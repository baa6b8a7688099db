"""camtrapR's record table and camera operation matrix, for people who continue in R.

camtrapR (Niedballa et al. 2016) starts from a *record table* (one row per independent record:
Station, Species, DateTimeOriginal, Date, Time, delta.time.*, Directory, FileName) and a *camera
operation matrix* (stations x days: 1 working, 0 not, NA not set up), from which
``detectionHistory`` and ``spatialDetectionHistory`` build the inputs of unmarked and secr. Pardus
writes both from exactly what its plot-year report uses (``stats.report.collect``: people's
observations only, untrusted times left out; ``stats.effort.independent_events`` with the same
threshold), so the record table has one row per independent event the report counts, and R sees
the same effort.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from pardus.stats.effort import camera_operation, independent_events
from pardus.stats.report import collect
from pardus.store import Workspace

RECORD_TABLE_COLUMNS = [
    "Station", "Species", "DateTimeOriginal", "Date", "Time", "delta.time.secs", "delta.time.mins",
    "delta.time.hours", "delta.time.days", "Directory", "FileName", "n_records",
]  # fmt: skip


@dataclass
class CamtraprFiles:
    record_table: Path
    camera_operation: Path
    records: int
    stations: int


def export_camtrapr(
    ws: Workspace, out: Path | str, plot: str, year: int, *, species: str = "Panthera pardus",
    threshold_minutes: float = 30.0,
) -> CamtraprFiles:
    """Write ``recordTable.csv`` and ``camOp.csv`` of one plot and year into the folder ``out``.

    Times are local to the plot's cameras, as camtrapR reads EXIF times. ``delta.time.*`` is the time
    since the previous independent record of the same species at the station (0 for the first), as
    camtrapR's ``deltaTimeComparedTo = "lastRecord"`` writes it. Directory and FileName are left
    empty: an independent event is several photos.
    """
    out = Path(out)
    with ws.db.session() as s:
        data = collect(s, plot, year, species)
    recs = data.records
    events = independent_events([r.station for r in recs], [r.species for r in recs], [r.time for r in recs],
                                threshold_minutes)  # fmt: skip
    offset = timedelta(minutes=data.utc_offset_minutes)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "recordTable.csv"
    with open(table, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(RECORD_TABLE_COLUMNS)
        previous: dict[tuple[str, str], object] = {}
        for e in events:
            local = (e.start + offset).replace(tzinfo=None)
            before = previous.get((e.station, e.species))
            secs = (e.start - before).total_seconds() if before is not None else 0.0  # type: ignore[operator]
            previous[(e.station, e.species)] = e.start
            w.writerow([e.station, e.species, local.strftime("%Y-%m-%d %H:%M:%S"), local.strftime("%Y-%m-%d"),
                        local.strftime("%H:%M:%S"), f"{secs:.0f}", f"{secs / 60:.1f}", f"{secs / 3600:.1f}",
                        f"{secs / 86400:.1f}", "", "", e.n_records])  # fmt: skip
    op = camera_operation(data.deployments, data.season_start, data.season_end, occasion_days=1.0,
                          stations=[st.id for st in data.stations])  # fmt: skip
    cam = out / "camOp.csv"
    with open(cam, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Station", *((d + offset).strftime("%Y-%m-%d") for d in op.occasion_starts)])
        for i, st_id in enumerate(op.stations):
            w.writerow([st_id, *(_cell(v) for v in op.days[i])])
    return CamtraprFiles(table, cam, len(events), len(op.stations))


def _cell(days: float) -> str:
    """A day's operation as camtrapR writes it: 1 worked, 0 not, a fraction for part of a day."""
    if days >= 1 - 1e-9:
        return "1"
    if days <= 1e-9:
        return "0"
    return f"{days:.3f}"
