"""camtrapR's record table, camera operation matrix and detection histories, for people who continue in R.

camtrapR (Niedballa et al. 2016) starts from a *record table* (one row per independent record:
Station, Species, DateTimeOriginal, Date, Time, delta.time.*, Directory, FileName) and a *camera
operation matrix* (stations x days: 1 working, 0 set up but not working, a fraction for part of a
day, NA not set up), from which ``detectionHistory`` and ``spatialDetectionHistory`` build the
inputs of unmarked and secr. Pardus writes both from exactly what its plot-year report uses
(``stats.report.collect``: people's observations only, untrusted times left out;
``stats.effort.independent_events`` with the same threshold), so the record table has one row per
independent event the report counts, and R sees the same effort.

It also writes what ``detectionHistory(recordTable, species, camOp, occasionLength, day1 = "survey",
includeEffort = TRUE, scaleEffort = FALSE, writecsv = TRUE)`` writes from those two tables, one pair
of files per species, named as camtrapR names them: the species x station x occasion matrix
(1 detected, 0 not, NA when the station did not work in that occasion) and its effort (active days
per occasion). camtrapR's rules, from its source (camtrapR 2.x ``detectionHistory`` and
``calculateTrappingEffort``): occasions are ``occasionLength`` consecutive days of the camera
operation matrix from its first day (the last one may be shorter); a record falls in occasion
``ceiling((time - first day 00:00) / occasionLength days)``; an occasion's effort is the sum of its
days, NA when none of its days is set up and working (for one-day occasions the day's own value,
so a set-up day that did not work is 0, not NA); a detection history cell is NA where the effort is.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from pardus.stats.effort import DeploymentPeriod, camera_operation, independent_events
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
    detection_histories: dict[str, tuple[Path, Path]] = field(default_factory=dict)  # species -> (history, effort)


def export_camtrapr(
    ws: Workspace, out: Path | str, plot: str, year: int, *, species: str = "Panthera pardus",
    threshold_minutes: float = 30.0, occasion_days: int = 7, written: date | None = None,
) -> CamtraprFiles:
    """Write ``recordTable.csv``, ``camOp.csv`` and each species' detection history and effort of one
    plot and year into the folder ``out``.

    Times are local to the plot's cameras, as camtrapR reads EXIF times. ``delta.time.*`` is the time
    since the previous independent record of the same species at the station (0 for the first), as
    camtrapR's ``deltaTimeComparedTo = "lastRecord"`` writes it. Directory and FileName are left
    empty: an independent event is several photos. The detection histories use occasions of
    ``occasion_days`` days; their file names end in ``written`` (default today), as camtrapR's end in
    the date they were written.
    """
    if isinstance(occasion_days, bool) or not isinstance(occasion_days, int) or occasion_days < 1:
        raise CamtraprError(f"the occasion length must be a whole number of days from 1, not {occasion_days!r}")
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
    cells = [[_cell(v) if _set_up(data.deployments, st_id, day) else "NA" for v, day in
              zip(op.days[i], op.occasion_starts, strict=True)] for i, st_id in enumerate(op.stations)]
    cam = out / "camOp.csv"
    first_day = (op.occasion_starts[0] + offset).date()
    with open(cam, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["Station", *((d + offset).strftime("%Y-%m-%d") for d in op.occasion_starts)])
        for st_id, row in zip(op.stations, cells, strict=True):
            w.writerow([st_id, *row])
    files = CamtraprFiles(table, cam, len(events), len(op.stations))
    effort = occasion_effort(cells, occasion_days)
    start = datetime.combine(first_day, datetime.min.time())
    stamp = (written or date.today()).isoformat()
    for sp in sorted({e.species for e in events}):
        local = [(e.station, (e.start + offset).replace(tzinfo=None)) for e in events if e.species == sp]
        history = detection_history(local, op.stations, cells, start, occasion_days)
        tail = f"{occasion_days}_days_per_occasion__occasionStart0h__first_day_from_survey__{stamp}.csv"
        h_path = out / f"{sp}__detection_history__with_effort__{tail}"
        e_path = out / f"{sp}__effort__not_scaled_{tail}"
        _write_r_matrix(h_path, op.stations, history)
        _write_r_matrix(e_path, op.stations, effort)
        files.detection_histories[sp] = (h_path, e_path)
    return files


class CamtraprError(ValueError):
    """camtrapR tables that cannot be written as asked; the message says what to change."""


def _set_up(deployments: list[DeploymentPeriod], station: str, day: datetime) -> bool:
    """Whether any camera stood at ``station`` during the day from ``day`` (camtrapR: else NA, not 0)."""
    end = day + timedelta(days=1)
    return any(d.station == station and d.start < end and d.end > day for d in deployments)


def occasion_effort(cells: list[list[str]], occasion_days: int) -> list[list[float | None]]:
    """Active days per station and occasion from the camera operation cells, as camtrapR sums them.

    One-day occasions are the day's value (NA stays NA, 0 stays 0); longer ones are the sum of the
    days that are not NA, and NA when no day of the occasion is set up and working.
    """
    out: list[list[float | None]] = []
    for row in cells:
        values = [None if c == "NA" else float(c) for c in row]
        if occasion_days == 1:
            out.append(values)
            continue
        occ: list[float | None] = []
        for k in range(0, len(values), occasion_days):
            part = values[k:k + occasion_days]
            worked = [v for v in part if v is not None]
            occ.append(sum(worked) if any(v != 0 for v in worked) else None)
        out.append(occ)
    return out


def detection_history(
    records: list[tuple[str, datetime]], stations: tuple[str, ...], cells: list[list[str]],
    first_day: datetime, occasion_days: int,
) -> list[list[int | None]]:
    """The 0/1/NA matrix (stations x occasions) of one species' records, camtrapR's way (module docstring).

    As camtrapR's ``cleanSubsetSpecies``, a record before its station's first set-up day or after
    its last one counts nowhere.
    """
    index = {st: i for i, st in enumerate(stations)}
    hist: list[list[int | None]] = [[None if e is None else 0 for e in row]
                                    for row in occasion_effort(cells, occasion_days)]
    span = occasion_days * 86400.0
    for station, t in records:
        i = index.get(station)
        if i is None:
            continue
        set_up = [d for d, c in enumerate(cells[i]) if c != "NA"]
        day = math.floor((t - first_day).total_seconds() / 86400.0)
        if not set_up or not set_up[0] <= day <= set_up[-1]:
            continue
        k = max(1, math.ceil((t - first_day).total_seconds() / span)) - 1
        if 0 <= k < len(hist[i]) and hist[i][k] is not None:
            hist[i][k] = 1
    return hist


def _r_number(v: float | int | None) -> str:
    """A number as R's write.csv prints it: NA, whole numbers without a point, else up to 15 digits."""
    if v is None:
        return "NA"
    if float(v).is_integer():
        return str(int(v))
    return f"{v:.15g}"


Matrix = list[list[float | None]] | list[list[int | None]]


def _write_r_matrix(path: Path, stations: tuple[str, ...], rows: Matrix) -> None:
    """A matrix as R's ``write.csv`` writes it: quoted row names and header, "" over the row names, o1..oN."""
    n = max((len(r) for r in rows), default=0)
    lines = [",".join(['""', *(f'"o{k + 1}"' for k in range(n))])]
    lines += [",".join([_quoted(st), *(_r_number(v) for v in row)]) for st, row in zip(stations, rows, strict=True)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _cell(days: float) -> str:
    """A day's operation as camtrapR writes it: 1 worked, 0 not, a fraction for part of a day."""
    if days >= 1 - 1e-9:
        return "1"
    if days <= 1e-9:
        return "0"
    return f"{days:.3f}"
