"""The trend of a plot from rows in a real workspace: three years of confirmed identifications."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pardus.simulate.years import Demography, simulate_years
from pardus.stats.report import ReportOptions
from pardus.stats.secr import grid_xy
from pardus.stats.trend import build_trend
from pardus.store.models import Deployment, Individual, Location, Media, Observation

TZ = timezone(timedelta(hours=10))
DAYS = 30
LEOPARD = "Panthera pardus orientalis"


def _three_years(workspace):
    """Plot North, 16 stations, 2022-2024, every capture a confirmed identification."""
    xy = grid_xy(4, 4, 1500.0)
    park = simulate_years(
        xy,
        years=[2022, 2023, 2024],
        density_per_km2=0.5,
        sigma_m=1200.0,
        occasions=DAYS,
        lambda0=0.08,
        demography=Demography(0.85, 0.35),
        seed=21,
    )
    names = [f"N{k:02d}" for k in range(len(xy))]
    n = 0
    with workspace.db.session() as s:
        for name, (x, y) in zip(names, xy, strict=True):
            s.add(Location(id=name, name=name, plot="North", x_m=float(x), y_m=float(y)))
        s.flush()
        animals: dict[int, Individual] = {}
        for yt in park.years:
            start = datetime(yt.year, 3, 1, 10, tzinfo=TZ)
            for name in names:
                s.add(
                    Deployment(
                        id=f"D-{name}-{yt.year}", location_id=name, start=start, end=start + timedelta(days=DAYS)
                    )
                )
            s.flush()
            rows = list(yt.captures.rows())
            fresh = {int(yt.alive[i]) for i, _, _, _ in rows} - set(animals)
            animals.update({g: Individual(code=f"LP_{g:03d}", scientific_name=LEOPARD) for g in sorted(fresh)})
            s.add_all([animals[g] for g in sorted(fresh)])
            media = []
            for i, occ, k, _ in rows:
                dep = f"D-{names[k]}-{yt.year}"
                mid = f"m{n:05d}"
                when = start + timedelta(days=occ, hours=12)
                media.append((mid, dep, int(yt.alive[i])))
                s.add(
                    Media(
                        id=mid, deployment_id=dep, file_path=f"{mid}.JPG", file_mediatype="image/jpeg", timestamp=when
                    )
                )
                n += 1
            s.flush()  # media and individuals before the observations that point at them
            s.add_all(
                [
                    Observation(
                        deployment_id=dep,
                        media_id=mid,
                        observation_type="animal",
                        scientific_name=LEOPARD,
                        individual_id=animals[g].id,
                        classification_method="human",
                        count=1,
                        observation_level="media",
                    )
                    for mid, dep, g in media
                ]
            )
            s.flush()
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
