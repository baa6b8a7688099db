"""The plot-year report from rows in a real workspace (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import json
import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from pardus.stats.effort import DeploymentPeriod, camera_operation
from pardus.stats.report import (
    ReportError,
    ReportOptions,
    build_report,
    headline_sentence,
    is_species,
    station_coordinates,
)
from pardus.stats.secr import Traps, grid_xy, simulate_captures
from pardus.store.models import Deployment, Individual, Location, Media, Observation

VLAD = timezone(timedelta(hours=10))
START = datetime(2024, 3, 1, 10, tzinfo=VLAD)
DAYS = 100
GAP = (datetime(2024, 4, 1, 10, tzinfo=VLAD), datetime(2024, 4, 15, 10, tzinfo=VLAD))  # S03 broken 14 days
LEOPARD = "Panthera pardus orientalis"


def _obs(
    s,
    dep: str,
    species: str,
    when: datetime,
    n: int,
    *,
    individual: str | None = None,
    method: str | None = "human",
    event_level: bool = False,
) -> None:
    media_id = f"m{n:05d}"
    s.add(
        Media(
            id=media_id,
            deployment_id=dep,
            file_path=f"{dep}/IMG_{n:05d}.JPG",
            file_mediatype="image/jpeg",
            timestamp=when,
        )
    )
    s.add(
        Observation(
            deployment_id=dep,
            media_id=media_id,
            observation_type="animal",
            scientific_name=species,
            individual_id=individual,
            classification_method=method,
            count=1,
            event_start=when if event_level else None,
            observation_level="event" if event_level else "media",
        )
    )


@pytest.fixture
def season(workspace):
    """A simulated plot-year with known truth: 12 stations, 100 days, leopards from an SECR model."""
    rng = np.random.default_rng(12)
    xy = grid_xy(4, 3, 2500.0)
    names = [f"S{k + 1:02d}" for k in range(len(xy))]
    periods = [DeploymentPeriod(n, START, START + timedelta(days=DAYS), ((GAP,) if n == "S03" else ())) for n in names]
    op = camera_operation(periods, occasion_days=1.0)
    traps = Traps(xy, detector="proximity", usage=op.usage)
    counts, _ = simulate_captures(traps, density=6e-4, detection=0.08, sigma=2500.0, detectfn="HHN", rng=rng)
    n_seen = counts.shape[0]
    assert n_seen >= 5
    lat0, lon0 = 43.1, 131.9
    n = 0
    with workspace.db.session() as s:
        for name, (x, y) in zip(names, xy, strict=True):
            s.add(
                Location(
                    id=name,
                    name=f"station {name}",
                    plot="P1",
                    x_m=float(x),
                    y_m=float(y),
                    latitude=lat0 + y / 111_195.0,
                    longitude=lon0 + x / (111_195.0 * math.cos(math.radians(lat0))),
                )
            )
        s.add(Location(id="Q01", plot="P2", x_m=0.0, y_m=0.0))
        s.flush()
        for name in names:
            extra = {"gaps": [[GAP[0].isoformat(), GAP[1].isoformat()]]} if name == "S03" else {}
            s.add(
                Deployment(id=f"D-{name}", location_id=name, start=START, end=START + timedelta(days=DAYS), extra=extra)
            )
        s.add(
            Deployment(
                id="D-S01-2023",
                location_id="S01",
                start=datetime(2023, 5, 1, tzinfo=VLAD),
                end=datetime(2023, 6, 1, tzinfo=VLAD),
            )
        )
        s.add(Deployment(id="D-Q01", location_id="Q01", start=START, end=START + timedelta(days=DAYS)))
        inds = [Individual(code=f"LP_{i:02d}", scientific_name=LEOPARD) for i in range(n_seen)]
        s.add_all(inds)
        s.flush()
        alias = Individual(code="LP_99", scientific_name=LEOPARD, merged_into=inds[0].id)  # a merge
        proposed = Individual(code="LP_77", scientific_name=LEOPARD)
        s.add_all([alias, proposed])
        s.flush()
        for i, j, k in zip(*np.nonzero(counts), strict=True):
            when = START + timedelta(days=int(j), hours=float(rng.uniform(8, 20)))  # night hours after 18:00 local
            ident = alias.id if (i == 0 and n % 2 == 0) else inds[i].id
            _obs(s, f"D-{names[k]}", LEOPARD, when, n, individual=ident, event_level=bool(n % 3 == 0))
            n += 1
        # LP_00 was already known in 2023, so it is not new in 2024
        _obs(s, "D-S01-2023", LEOPARD, datetime(2023, 5, 10, 23, tzinfo=VLAD), n, individual=inds[0].id)
        n += 1
        # a machine-proposed identity, not confirmed: must not count
        _obs(s, "D-S05", LEOPARD, START + timedelta(days=50, hours=12), n, individual=proposed.id, method="machine")
        n += 1
        # a leopard in another plot: must not count
        _obs(s, "D-Q01", LEOPARD, START + timedelta(days=5, hours=12), n, individual=inds[1].id)
        n += 1
        # a photo dated after the camera was collected (a clock error): not counted anywhere
        _obs(s, "D-S05", "Cervus nippon", START + timedelta(days=DAYS + 1), n, method="machine")
        n += 1
        # prey: 60 sika deer and 30 wild boar events, days apart at each station, never in S03's gap
        working = [m for m in names if m != "S03"]
        for sp, count in (("Cervus nippon", 60), ("Sus scrofa", 30)):
            for e in range(count):
                st = working[e % len(working)]
                day = (e // len(working)) * 7 + 1 + (0 if sp == "Cervus nippon" else 3)
                when = START + timedelta(days=day, hours=float(rng.uniform(0, 12)))
                _obs(s, f"D-{st}", sp, when, n, individual=None, method="machine")
                n += 1
    return workspace, n_seen


def test_report_on_a_simulated_season(season, tmp_path: Path):
    ws, n_seen = season
    opts = ReportOptions(n_boot=60, occasion_days=7.0)
    rep, paths = build_report(ws, "P1", 2024, tmp_path / "rep", opts)
    nums = rep.numbers()

    # individuals: exactly the animals in the data, merges followed, proposals and other plots ignored
    assert nums["individuals"]["seen"] == n_seen
    assert nums["individuals"]["new"] == n_seen - 1
    assert nums["individuals"]["mnka"] == n_seen
    assert "LP_99" not in nums["individuals"]["seen_ids"] and "LP_77" not in nums["individuals"]["seen_ids"]
    assert any("await confirmation" in m for m in rep.data.notes)
    assert any("1 animal observations fall outside" in m for m in rep.data.notes)

    # effort: 12 stations x 100 days minus the 14-day gap
    assert nums["effort"]["trap_nights"] == pytest.approx(12 * DAYS - 14)
    rai = {r["species"]: r for r in nums["rai"]}
    assert rai["Cervus nippon"]["events"] == 60
    assert rai["Cervus nippon"]["rai"]["value"] == pytest.approx(60 / (12 * DAYS - 14) * 100)

    # population size: interval never below the animals seen; headline from the chosen model
    assert rep.closed is not None and rep.closed.best is not None
    assert rep.closed.best.n_hat.lcl >= n_seen
    assert "individual leopards used plot P1 in 2024" in rep.headline
    assert rep.secr is not None and rep.secr.converged
    d = rep.secr.density_per_100km2()
    assert 0 < d.lcl < d.value < d.ucl
    assert "Cervus nippon" in rep.occupancy
    assert rep.time_basis.startswith("sun time")
    assert any(ov.species_b == "Cervus nippon" for ov in rep.overlaps)

    # the files carry the same numbers
    html = paths["report.html"].read_text(encoding="utf-8")
    assert f'id="individuals-seen">{n_seen}<' in html
    assert rep.headline.split(" (")[0] in html
    assert html.count("data:image/png;base64,") >= 4
    js = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    assert js["individuals"]["seen"] == n_seen and js["headline"] == rep.headline
    with open(paths["rai.csv"], newline="") as f:
        rows = {r["species"]: r for r in csv.DictReader(f)}
    js_rai = {r["species"]: r["rai"]["value"] for r in js["rai"]}
    assert float(rows["Cervus nippon"]["rai"]) == pytest.approx(js_rai["Cervus nippon"], rel=1e-12)
    with open(paths["capture_histories.csv"], newline="") as f:
        assert len({r["individual"] for r in csv.DictReader(f)}) == n_seen
    for name in ("effort.png", "rai.png", "map.png", "activity.png", "closed_population.csv", "secr.csv"):
        assert paths[name].stat().st_size > 0


def test_report_errors_say_what_is_missing(season, tmp_path: Path):
    ws, _ = season
    # one leopard photographed once in plot P2: reported, but no estimate is invented
    rep, _ = build_report(ws, "P2", 2024, tmp_path / "p2", ReportOptions(n_boot=40))
    assert rep.numbers()["individuals"]["seen"] == 1
    assert rep.headline.startswith("At least one individual leopard used plot P2 in 2024")
    assert rep.secr is None and any("SECR density" in m for m in rep.messages)
    with pytest.raises(ReportError, match="Known plots: P1, P2"):
        build_report(ws, "P9", 2024, tmp_path / "x")
    with pytest.raises(ReportError, match="no deployment of plot 'P1' was running in 2019"):
        build_report(ws, "P1", 2019, tmp_path / "x")


def test_headline_wording():
    assert (
        headline_sentence("Panthera pardus", "3", 2024, None, 0, 0)
        == "No individual leopard was identified in plot 3 in 2024."
    )
    assert headline_sentence("Panthera pardus", "3", 2024, None, 4, 5).startswith(
        "At least five individual leopards used plot 3 in 2024"
    )
    assert is_species("Panthera pardus orientalis", "Panthera pardus")
    assert not is_species("Panthera pardusx", "Panthera pardus")


def test_station_coordinates_project_latitude_longitude():
    from pardus.stats.report import Station

    st = [Station("a", "a", None, None, 43.0, 131.0), Station("b", "b", None, None, 43.0, 131.1)]
    xy, how = station_coordinates(st)  # type: ignore[misc]
    assert "local projection" in how
    assert np.hypot(*(xy[1] - xy[0])) == pytest.approx(8_132, rel=2e-3)  # 0.1 degree of longitude at 43 N


def test_report_command(season, tmp_path: Path, monkeypatch):
    """The CLI function: same report, readable messages, exit code 1 with a reason on bad input."""
    import typer
    from typer.testing import CliRunner

    from pardus.config import get_settings
    from pardus.stats.commands import report

    ws, n_seen = season
    monkeypatch.setenv("PARDUS_DATA_DIR", str(ws.settings.data_dir))
    if ws.settings.database_url:
        monkeypatch.setenv("PARDUS_DATABASE_URL", ws.settings.database_url)
    get_settings.cache_clear()
    app = typer.Typer()
    app.command()(report)
    runner = CliRunner()
    try:
        out = tmp_path / "cli"
        res = runner.invoke(app, ["--plot", "P1", "--year", "2024", "--out", str(out), "--bootstrap", "40"])
        assert res.exit_code == 0, res.output
        assert "individual leopards used plot P1 in 2024" in res.output
        assert json.loads((out / "report.json").read_text())["individuals"]["seen"] == n_seen
        bad = runner.invoke(app, ["--plot", "Nowhere", "--year", "2024"])
        assert bad.exit_code == 1 and "Known plots" in bad.output
    finally:
        get_settings.cache_clear()
