"""The trend of a plot from rows in a real workspace: three years of confirmed identifications."""

from __future__ import annotations

import json
from pathlib import Path

from pardus.stats.report import ReportOptions
from pardus.stats.trend import build_trend

from .plot_years_rows import NORTH_DAYS, north_park, write_plot_years


def _three_years(workspace):
    """Plot North, 16 stations, 2022-2024, every capture a confirmed identification."""
    park, xy = north_park()
    with workspace.db.session() as s:
        write_plot_years(s, "North", park, xy, days=NORTH_DAYS, prefix="N")
    return park


def test_trend_of_a_plot_over_three_years(workspace, tmp_path: Path):
    park = _three_years(workspace)
    rep, paths = build_trend(
        workspace,
        "North",
        [2021, 2022, 2023, 2024],
        tmp_path,
        ReportOptions(occasion_days=6.0, n_boot=10, mask_buffer_m=4800.0, mask_spacing_m=1000.0),
    )
    assert rep.years == (2022, 2023, 2024)
    assert any(m.startswith("2021:") for m in rep.messages)  # no camera ran in 2021: said, not hidden
    assert rep.secr is not None and rep.secr.converged and len(rep.growth) == 2
    assert rep.sentence.startswith("Between 2022 and 2024 the number of leopards on plot North ")
    assert rep.pradel is not None and rep.pradel.n_animals == len(park.encounter_histories()[1])
    assert json.loads(paths["trend.json"].read_text())["sentence"] == rep.sentence
    assert rep.secr_open is not None and rep.secr_open.n_animals == rep.pradel.n_animals  # same stations each year
    assert "trend_demography_spatial.csv" in paths


def test_pardus_trend_prints_the_sentence_and_writes_the_tables(env: Path):
    from typer.testing import CliRunner

    from pardus.cli import app
    from pardus.config import get_settings
    from pardus.store import open_workspace

    with open_workspace(get_settings()) as ws:
        _three_years(ws)
    run = CliRunner().invoke(app, ["trend", "--plot", "North", "--from", "2022", "--to", "2024", "--occasion-days",
                                   "6", "--bootstrap", "40", "--mask-buffer", "4800", "--mask-spacing", "1000"],
                             env={"COLUMNS": "200"})
    assert run.exit_code == 0, run.output
    assert "Between 2022 and 2024 the number of leopards on plot North" in " ".join(run.output.split())
    assert (env / "data" / "reports" / "North-trend" / "trend.json").is_file()
    bad = CliRunner().invoke(app, ["trend", "--plot", "North", "--from", "2024", "--to", "2022"])
    assert bad.exit_code == 1 and "must come after" in bad.output
