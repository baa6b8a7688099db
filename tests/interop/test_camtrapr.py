"""Issue 20 step 5: camtrapR's record table has one row per independent event the plot-year report counts."""

from __future__ import annotations

import csv
from pathlib import Path

from pardus.interop.camtrapr import RECORD_TABLE_COLUMNS, export_camtrapr
from pardus.stats.report import analyse, collect

from .conftest import Season


def test_record_table_rows_equal_the_reports_independent_events(reviewed_season: Season, tmp_path: Path) -> None:
    ws = reviewed_season.ws
    plot = next(csv.DictReader((reviewed_season.folder / "deployments.csv").open(newline="")))["plot"]
    files = export_camtrapr(ws, tmp_path / "r", plot, 2024)
    with open(files.record_table, newline="") as f:
        rows = list(csv.DictReader(f))
    with ws.db.session() as s:
        report = analyse(collect(s, plot, 2024, "Panthera pardus"))
    assert list(rows[0]) == RECORD_TABLE_COLUMNS
    assert len(rows) == files.records == len(report.events) > 5
    assert sorted((r["Station"], r["Species"]) for r in rows) == sorted((e.station, e.species) for e in report.events)
    assert not any(r["DateTimeOriginal"].startswith("2000") for r in rows)  # the reset clock dates nothing
    with open(files.camera_operation, newline="") as f:
        op = list(csv.reader(f))
    assert len(op) - 1 == files.stations == len(report.operation.stations)
    worked = sum(float(v) for row in op[1:] for v in row[1:])
    assert abs(worked - float(report.operation.days.sum())) < 0.01 * len(op)
