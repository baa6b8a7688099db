"""The park summary: every monitoring plot of one year on one page, with each plot's trend.

Why: a ministry reads the park, not a plot. The summary puts, for each plot with cameras running
that year, the animals identified, the minimum number known alive, the closed-population estimate
N̂ and the SECR density with their intervals, and the plot's growth per year over every earlier
year the store holds (λ from multi-session SECR, :mod:`pardus.stats.trend`), beside the number of
distinct animals identified in the whole park (an animal photographed on two plots counts once).

Each plot is analysed exactly as its plot-year report is (:func:`pardus.stats.report.collect` and
:func:`~pardus.stats.report.analyse`), leaving out the parts a summary does not show (occupancy,
activity, maps), so the numbers here are the ones the plot's own report prints. Densities of
different plots are not pooled into one park density: plots differ in habitat and design, and the
park's area between plots was not sampled.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pardus.stats.effort import EffortError
from pardus.stats.estimates import Estimate
from pardus.stats.report import (
    ReportError,
    ReportOptions,
    _clean,
    _json_default,
    _word,
    analyse,
    collect,
    common_name,
    plot_names,
)


@dataclass
class PlotSummary:
    """One plot's line of the park summary."""

    plot: str
    stations: int = 0
    trap_nights: float = 0.0
    seen: int = 0
    mnka: int = 0
    abundance: Estimate | None = None  # N̂ of the best closed-population model
    abundance_model: str = ""
    density: Estimate | None = None  # SECR, animals per 100 km²
    trend_years: tuple[int, ...] = ()
    growth: Estimate | None = None  # λ per year over trend_years, as the plot's trend sentence
    trend: str = ""  # the trend sentence, or why there is none
    seen_ids: tuple[str, ...] = field(default=(), repr=False)
    messages: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The CSV row: estimates with SE and interval, never a bare number."""

        def est(prefix: str, e: Estimate | None) -> dict[str, Any]:
            keys = ("value", "se", "lcl", "ucl")
            return {f"{prefix}_{k}" if k != "value" else prefix: (getattr(e, k) if e else "") for k in keys}

        return {
            "plot": self.plot,
            "stations": self.stations,
            "trap_nights": self.trap_nights,
            "individuals_identified": self.seen,
            "mnka": self.mnka,
            **est("N", self.abundance),
            "N_model": self.abundance_model,
            **est("D_per_100km2", self.density),
            "trend_from": self.trend_years[0] if self.trend_years else "",
            "trend_to": self.trend_years[-1] if self.trend_years else "",
            **est("lambda_per_year", self.growth),
            "trend": self.trend,
            "notes": " | ".join(self.messages),
        }


@dataclass
class ParkSummary:
    """All plots of one year: the lines, the distinct animals of the park and the headline."""

    year: int
    species: str
    plots: list[PlotSummary]
    animals: int  # distinct animals identified in the park this year
    on_several_plots: int  # of which identified on more than one plot
    headline: str
    seconds: float

    def rows(self) -> list[dict[str, Any]]:
        return [p.row() for p in self.plots]

    def numbers(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "species": self.species,
            "headline": self.headline,
            "animals_identified_in_park": self.animals,
            "animals_on_several_plots": self.on_several_plots,
            "plots": self.rows(),
            "seconds": self.seconds,
        }


def _summarise(workspace: Any, plot: str, year: int, o: ReportOptions, trend: bool) -> PlotSummary:
    from pardus.stats.trend import trend_for_report

    line = PlotSummary(plot)
    try:
        with workspace.db.session() as s:
            data = collect(s, plot, year, o.species)
        rep = analyse(data, o, population_only=True)
    except (ReportError, EffortError) as exc:
        line.messages.append(str(exc))
        line.trend = "not analysed"
        return line
    line.stations = len(rep.operation.stations)
    line.trap_nights = float(rep.operation.trap_nights.sum())
    if rep.this_year is not None:
        line.seen, line.mnka = rep.this_year.seen, rep.this_year.mnka
        line.seen_ids = tuple(rep.this_year.seen_ids)
    best = rep.closed.best if rep.closed else None
    if best is not None and best.estimable:
        line.abundance, line.abundance_model = best.n_hat, best.model
    if rep.secr is not None:
        line.density = rep.secr.density_per_100km2()
    line.messages.extend(rep.messages)
    if trend:
        t, note = trend_for_report(workspace, rep)
        if t is None:
            line.trend = note
        else:
            line.trend = t.sentence
            line.growth = t.overall
            line.trend_years = t.years if t.secr is not None else ()
            line.messages.extend(f"trend: {m}" for m in t.messages)
    return line


def park_summary(
    workspace: Any, year: int, options: ReportOptions | None = None, *, trend: bool = True
) -> ParkSummary:
    """Summarise every plot with a deployment running in ``year`` (plots as written on the locations)."""
    t0 = time.perf_counter()
    o = options or ReportOptions()
    with workspace.db.session() as s:
        plots = plot_names(s, year)
    if not plots:
        raise ReportError(
            f"no plot had a camera deployed in {year}; check the deployments' dates and the locations' plot"
        )
    lines = [_summarise(workspace, p, year, o, trend) for p in plots]
    count: dict[str, int] = {}
    for line in lines:
        for a in line.seen_ids:
            count[a] = count.get(a, 0) + 1
    animals, several = len(count), sum(1 for c in count.values() if c > 1)
    many, one = common_name(o.species), common_name(o.species, plural=False)
    noun = one if animals == 1 else many
    head = f"In {year}, {_word(animals)} individual {noun} {'was' if animals == 1 else 'were'} identified on "
    head += f"{_word(len(lines))} monitoring plot{'s' if len(lines) != 1 else ''} of the park"
    head += f" ({_word(several)} of them on more than one plot)." if several else "."
    return ParkSummary(year, o.species, lines, animals, several, head, time.perf_counter() - t0)


def park_png(summary: ParkSummary) -> bytes | None:
    """Density per plot with its 95% interval (SECR, per 100 km²); None when no plot has a density."""
    lines = [p for p in summary.plots if p.density is not None]
    if not lines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = np.array([p.density.value for p in lines])  # type: ignore[union-attr]
    lo = np.array([p.density.lcl for p in lines])  # type: ignore[union-attr]
    hi = np.array([p.density.ucl for p in lines])  # type: ignore[union-attr]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(lines) + 1.4))
    y = np.arange(len(lines))
    ax.errorbar(d, y, xerr=[d - lo, hi - d], fmt="o", color="#23402f", ecolor="#7a9", capsize=4)
    ax.set_yticks(y, [p.plot for p in lines])
    ax.set_ylim(len(lines) - 0.5, -0.5)  # first plot on top, half a row of margin
    ax.set_xlim(left=0)
    ax.set_xlabel(f"{common_name(summary.species)} per 100 km² (SECR, 95% CI)")
    ax.set_title(f"Density by plot, {summary.year}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def write_park_summary(summary: ParkSummary, out_dir: Path) -> dict[str, Path]:
    """Write ``park.html`` (self-contained, figure embedded), ``park.csv``, ``park.json`` and ``park.png``."""
    import base64

    from jinja2 import Environment, select_autoescape

    from pardus.stats.report import _fmt, _fmt_ci
    from pardus.stats.report_template import PARK_TEMPLATE

    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    rows = summary.rows()
    p = out_dir / "park.csv"
    with p.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
    paths["park.csv"] = p
    p = out_dir / "park.json"
    doc = _clean(json.loads(json.dumps(summary.numbers(), default=_json_default)))
    p.write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
    paths["park.json"] = p
    png = park_png(summary)
    if png is not None:
        p = out_dir / "park.png"
        p.write_bytes(png)
        paths["park.png"] = p
    env = Environment(autoescape=select_autoescape(default=True))
    env.filters["num"] = _fmt
    env.filters["ci"] = _fmt_ci
    env.filters["pct"] = lambda v: "–" if v is None or not math.isfinite(v) else f"{(v - 1) * 100:+.0f}%"
    html = env.from_string(PARK_TEMPLATE).render(
        s=summary,
        common=common_name,
        figure="data:image/png;base64," + base64.b64encode(png).decode() if png else None,
        generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    p = out_dir / "park.html"
    p.write_text(html, encoding="utf-8")
    paths["park.html"] = p
    return paths


def build_park_summary(
    workspace: Any, year: int, out_dir: Path, options: ReportOptions | None = None, *, trend: bool = True
) -> tuple[ParkSummary, dict[str, Path]]:
    """Summarise every plot of ``year`` and write the page and its tables."""
    summary = park_summary(workspace, year, options, trend=trend)
    return summary, write_park_summary(summary, out_dir)
