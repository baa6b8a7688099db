"""Issue 20: camtrapR's record table has one row per independent event the plot-year report counts; its detection
histories are what camtrapR's detectionHistory makes of the record table and camera operation matrix."""

from __future__ import annotations

import csv
import math
from datetime import date, datetime
from pathlib import Path

import pytest

from pardus.interop.camtrapr import (
    RECORD_TABLE_COLUMNS,
    CamtraprError,
    detection_history,
    export_camtrapr,
    occasion_effort,
)
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
    worked = sum(float(v) for row in op[1:] for v in row[1:] if v != "NA")  # NA: not set up, as camtrapR says
    assert abs(worked - float(report.operation.days.sum())) < 0.01 * len(op)


def _read_r(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """A matrix as R's read.csv(row.names = 1) sees it."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][0] == ""
    return rows[0][1:], {r[0]: r[1:] for r in rows[1:]}


@pytest.mark.parametrize("occasion_days", [1, 7])
def test_detection_histories_are_what_camtrapr_makes_of_the_tables(reviewed_season: Season, tmp_path: Path,
                                                                   occasion_days: int) -> None:
    """Read back the written record table and camera operation matrix and apply camtrapR's rules
    (detectionHistory, day1 = "survey", includeEffort = TRUE) to them: the same matrices come out."""
    ws = reviewed_season.ws
    plot = next(csv.DictReader((reviewed_season.folder / "deployments.csv").open(newline="")))["plot"]
    files = export_camtrapr(ws, tmp_path / "r", plot, 2024, occasion_days=occasion_days, written=date(2025, 1, 2))
    with open(files.record_table, newline="") as f:
        records = list(csv.DictReader(f))
    with open(files.camera_operation, newline="") as f:
        op = list(csv.reader(f))
    days, camop = op[0][1:], {r[0]: r[1:] for r in op[1:]}
    first = datetime.fromisoformat(days[0])
    n_occ = math.ceil(len(days) / occasion_days)
    assert sorted(files.detection_histories) == sorted({r["Species"] for r in records})
    for species, (h_path, e_path) in files.detection_histories.items():
        assert h_path.name == (f"{species}__detection_history__with_effort__{occasion_days}_days_per_occasion__"
                               "occasionStart0h__first_day_from_survey__2025-01-02.csv")
        assert e_path.name.startswith(f"{species}__effort__not_scaled_{occasion_days}_days_per_occasion__")
        names, hist = _read_r(h_path)
        _, effort = _read_r(e_path)
        assert names == [f"o{k + 1}" for k in range(n_occ)] and list(hist) == list(camop)
        for st, cells in camop.items():
            for k in range(n_occ):
                part = cells[k * occasion_days:(k + 1) * occasion_days]
                worked = [float(c) for c in part if c != "NA"]
                if occasion_days == 1:
                    want = "NA" if part[0] == "NA" else part[0]
                else:
                    want = "NA" if not any(worked) else f"{sum(worked):.15g}"
                assert (effort[st][k] == "NA") == (want == "NA") and (want == "NA" or
                                                                      float(effort[st][k]) == float(want))
                set_up = [d for d, c in enumerate(cells) if c != "NA"]
                detected = any(
                    r["Species"] == species and r["Station"] == st and max(1, math.ceil(
                        (datetime.fromisoformat(r["DateTimeOriginal"]) - first).total_seconds()
                        / (occasion_days * 86400))) == k + 1
                    and set_up[0] <= (datetime.fromisoformat(r["DateTimeOriginal"]) - first).days <= set_up[-1]
                    for r in records)
                assert hist[st][k] == ("NA" if want == "NA" else "1" if detected else "0"), (species, st, k)
        if species.startswith("Panthera pardus"):
            assert sum(v == "1" for row in hist.values() for v in row) > 3  # the leopards were seen


def test_camtrapr_rules_on_a_small_case() -> None:
    # Two stations, ten days: A works throughout but fails on day 3; B is set up from day 4.
    cells = [["1", "1", "0", "1", "1", "1", "1", "1", "0.5", "1"],
             ["NA", "NA", "NA", "1", "0", "0", "0", "1", "1", "1"]]
    assert occasion_effort(cells, 1)[1][:5] == [None, None, None, 1.0, 0.0]  # one-day occasions keep 0
    effort = occasion_effort(cells, 4)
    assert effort == [[3.0, 4.0, 1.5], [1.0, 1.0, 2.0]]  # the last occasion is shorter
    assert occasion_effort([["0", "NA", "0", "0"]], 4) == [[None]]  # set up, never worked: NA
    first = datetime(2024, 6, 1)
    records = [("A", datetime(2024, 6, 1, 0, 0, 0)),  # the first instant counts in occasion 1
               ("A", datetime(2024, 6, 5, 0, 0, 0)),  # midnight ending day 4: still occasion 1
               ("B", datetime(2024, 6, 2, 10, 0)),  # before B was set up: counts nowhere
               ("B", datetime(2024, 6, 9, 12, 0)), ("X", datetime(2024, 6, 9))]
    assert detection_history(records, ("A", "B"), cells, first, 4) == [[1, 0, 0], [0, 0, 1]]
    gone = [["1", "1", "NA", "NA"]]  # taken away after day 2: its third occasion is NA at one-day occasions
    assert detection_history([("A", datetime(2024, 6, 3, 8))], ("A",), gone, first, 1) == [[0, 0, None, None]]
    with pytest.raises(CamtraprError, match="whole number of days from 1"):
        export_camtrapr(None, Path("/nonexistent"), "P", 2024, occasion_days=0)  # type: ignore[arg-type]
