"""The trend a park reports: density per year, growth between years, survival and recruitment.

Why a module of its own: the plot-year report (:mod:`pardus.stats.report`) answers one season; the
trend joins several seasons of one plot. It takes the yearly reports' capture histories as
sessions of one multi-session SECR model (``D ~ session``, detection and sigma shared, as a
stable camera grid warrants; :mod:`pardus.stats.secr_multi`), derives λ per year with its
log-scale interval, and, when at least three years have confirmed identities, fits Pradel's
φ(.) f(.) p(t) (:mod:`pardus.stats.open_pop`). Its headline is the park's sentence:

    "Between 2022 and 2024 the number of leopards on plot North grew by 12% a year
    (95% interval -3% to +29%; multi-session SECR, 3.1 to 3.9 per 100 km²)."

References: Borchers & Efford (2008) Biometrics 64:377-385; Efford & Fewster (2013) Oikos
122:918-928; Pradel (1996) Biometrics 52:703-709.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pardus.stats.effort import EffortError
from pardus.stats.estimates import Estimate
from pardus.stats.open_pop import OpenPopulationError, PradelFit, fit_pradel
from pardus.stats.report import (
    PlotYearReport,
    ReportError,
    ReportOptions,
    analyse,
    collect,
    common_name,
    plot_years,
)
from pardus.stats.secr import SecrError, Traps, make_mask
from pardus.stats.secr_multi import SecrMultiFit, Session, fit_secr_multi
from pardus.stats.secr_open import SecrOpenFit, fit_secr_open


def _pct(x: float) -> str:
    return f"{(x - 1) * 100:+.0f}%"


def trend_sentence(
    species: str, plot: str, fit: SecrMultiFit, i: int = 0, j: int | None = None, recaptured: int | None = None
) -> str:
    """The park's trend sentence from the yearly rate between sessions ``i`` and ``j`` (default last).

    "grew" or "fell" only when the interval excludes no change; otherwise the sentence says the
    change is not distinguishable from none, and always gives the interval and the densities.
    With ``recaptured`` (animals identified in both years) the interval is the realised one, for
    the animals that were on the plot, with the covariance of those present in both years (the
    interval whose coverage ``bench/secr_trend.py`` measures at 0.955); without it, the Poisson
    interval of the process, which is conservative for λ.
    """
    j = len(fit.sessions) - 1 if j is None else j
    lam = fit.growth(i, j, realised=recaptured is not None, recaptured=recaptured)
    return sentence_from_growth(species, plot, fit, lam, i, j)


def sentence_from_growth(species: str, plot: str, fit: SecrMultiFit, lam: Estimate, i: int, j: int) -> str:
    """The park's sentence for a yearly rate ``lam`` already computed between sessions ``i`` and ``j``.

    Kept apart from :func:`trend_sentence` so the report prints the very estimate it tabulates.
    """
    many = common_name(species)
    pct = round(lam.level * 100)
    d0 = fit.density[i].value * 1e4
    d1 = fit.density[j].value * 1e4
    tail = (
        f" ({pct}% interval {_pct(lam.lcl)} to {_pct(lam.ucl)} a year; multi-session SECR, "
        f"{d0:.1f} to {d1:.1f} {many} per 100 km²)."
    )
    change = abs(lam.value - 1) * 100
    head = f"Between {fit.sessions[i]} and {fit.sessions[j]} the number of {many} on plot {plot}"
    if lam.lcl > 1:
        return f"{head} grew by {change:.0f}% a year" + tail
    if lam.ucl < 1:
        return f"{head} fell by {change:.0f}% a year" + tail
    word = "grew" if lam.value >= 1 else "fell"
    return f"{head} {word} by {change:.0f}% a year, not distinguishable from no change" + tail


@dataclass
class TrendReport:
    """Several years of one plot: the multi-session fit, yearly growth, demography and the sentence."""

    plot: str
    species: str
    years: tuple[int, ...]
    secr: SecrMultiFit | None
    growth: list[Estimate]
    pradel: PradelFit | None
    sentence: str
    messages: list[str] = field(default_factory=list)
    secr_open: SecrOpenFit | None = None
    overall: Estimate | None = None  # λ per year from the first to the last year: the sentence's estimate
    interval: str = ""  # which interval λ carries (realised with shared animals, or expected)

    def density_rows(self) -> list[dict[str, Any]]:
        """Density per year: the fit's estimate per ha and per 100 km² (the report's unit), animals identified."""
        if self.secr is None:
            return []
        rows = []
        for k, s in enumerate(self.secr.sessions):
            d = self.secr.density[k]
            rows.append(
                dict(
                    d.as_dict(),
                    year=s,
                    animals_identified=self.secr.n_individuals[k],
                    D_per_100km2=d.value * 1e4,
                    se_per_100km2=d.se * 1e4,
                    lcl_per_100km2=d.lcl * 1e4,
                    ucl_per_100km2=d.ucl * 1e4,
                    model=self.secr.model,
                )
            )
        return rows

    def growth_rows(self) -> list[dict[str, Any]]:
        """λ per year between consecutive years, then over the whole span when there are more than two years."""
        if self.secr is None:
            return []
        s = self.secr.sessions
        rows = [
            dict(e.as_dict(), from_year=s[k], to_year=s[k + 1], interval_target=self.interval, model=self.secr.model)
            for k, e in enumerate(self.growth)
        ]
        if self.overall is not None and len(s) > 2:
            rows.append(
                dict(self.overall.as_dict(), from_year=s[0], to_year=s[-1], interval_target=self.interval,
                     model=self.secr.model)
            )
        return rows

    def numbers(self) -> dict[str, Any]:
        """The trend as JSON-ready values (``trend.json`` and the plot-year report's ``report.json``)."""
        return {
            "plot": self.plot,
            "species": self.species,
            "years": self.years,
            "sentence": self.sentence,
            "growth_per_year": self.overall.as_dict() if self.overall else None,
            "interval": self.interval,
            "density": self.density_rows(),
            "secr": self.secr.as_dict() if self.secr else None,
            "pradel": self.pradel.table() if self.pradel else None,
            "secr_open": self.secr_open.table() if self.secr_open else None,
            "messages": self.messages,
        }

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The CSV tables: density per year, growth per year, demography (when estimated)."""
        t: dict[str, list[dict[str, Any]]] = {}
        if self.secr is not None:
            t["trend_density.csv"] = self.density_rows()
            t["trend_growth.csv"] = self.growth_rows()
        if self.pradel is not None:
            t["trend_demography.csv"] = [dict(r, model=self.pradel.model) for r in self.pradel.table()]
        if self.secr_open is not None:
            t["trend_demography_spatial.csv"] = [dict(r, model=self.secr_open.model) for r in self.secr_open.table()]
        return t


def session_ids_from_reports(reports: Sequence[PlotYearReport]) -> list[tuple[str, ...]]:
    """The individuals of each session's rows, in the order of :func:`sessions_from_reports`."""
    return [
        r.capture.individuals
        for r in reports
        if r.capture is not None and r.coords is not None and r.capture.n_individuals > 0
    ]


def sessions_from_reports(reports: Sequence[PlotYearReport], buffer_m: float | None = None) -> list[Session]:
    """One SECR session per yearly report that has confirmed captures and station coordinates.

    Uses the stations with effort that year and their usage, as the yearly SECR fit does; the mask
    buffer is ``buffer_m`` or 4 x the largest sigma of the yearly fits (Efford's rule).
    """
    if buffer_m is None:
        sig = [r.secr.sigma.value for r in reports if r.secr is not None]
        if not sig:
            raise SecrError("no year has an SECR fit to take the mask buffer from; give buffer_m")
        buffer_m = 4.0 * max(sig)
    out = []
    for r in reports:
        if r.capture is None or r.coords is None or r.capture.n_individuals == 0:
            continue
        used = r.operation.trap_nights > 0
        xy = r.coords[0][used]
        counts = r.capture.detections()[:, :, used]
        traps = Traps(xy, detector="proximity", usage=r.operation.usage[used])
        spacing = r.options.mask_spacing_m
        out.append(Session(str(r.data.year), counts, traps, make_mask(xy, buffer_m, spacing=spacing), r.data.year))
    return out


def analyse_trend(
    plot: str,
    sessions: Sequence[Session],
    *,
    species: str = "Panthera pardus",
    identities: Sequence[tuple[str, int]] = (),
    session_ids: Sequence[Sequence[str]] | None = None,
    detectfn: str = "HHN",
    level: float = 0.95,
) -> TrendReport:
    """Fit the trend of one plot from its yearly sessions and (individual, year) confirmed identities.

    ``identities`` (e.g. ``PlotYearData.focus_ids_all_years``) feed Pradel's model over the years of
    the sessions; with fewer than three such years it is not fitted and the report says so.
    """
    msgs: list[str] = []
    years = tuple(int(s.time) for s in sessions)
    fit = None
    growth: list[Estimate] = []
    overall: Estimate | None = None
    interval = ""
    sentence = f"Fewer than two years of {common_name(species)} captures on plot {plot}: no trend is estimated."
    if len(sessions) >= 2:
        try:
            fit = fit_secr_multi(sessions, density="session", detectfn=detectfn, level=level)  # type: ignore[arg-type]
            seen = {y: {a for a, yy in identities if yy == y} for y in years}
            last = len(years) - 1
            if identities:
                both = [len(seen[years[k]] & seen[years[k + 1]]) for k in range(len(years) - 1)]
                growth = [fit.growth(k, k + 1, realised=True, recaptured=m) for k, m in enumerate(both)]
                m_all = len(seen[years[0]] & seen[years[-1]])
                overall = fit.growth(0, last, realised=True, recaptured=m_all)
                interval = "realised (animals on the plot; covariance of animals identified in both years)"
            else:
                growth = fit.growth_rates()
                overall = fit.growth(0, last)
                interval = "expected (the process; Poisson)"
            sentence = sentence_from_growth(species, plot, fit, overall, 0, last)
            if not fit.converged:
                msgs.append("Multi-session SECR did not converge; treat the trend with caution.")
        except SecrError as exc:
            msgs.append(f"Multi-session SECR: {exc}")
    pradel = None
    if identities:
        ys = sorted(set(years))
        ids = sorted({i for i, y in identities if y in ys})
        hist = np.zeros((len(ids), len(ys)))
        row = {a: k for k, a in enumerate(ids)}
        for a, y in identities:
            if y in ys:
                hist[row[a], ys.index(y)] = 1
        try:
            pradel = fit_pradel(hist, ys, level=level)
        except OpenPopulationError as exc:
            msgs.append(f"Survival and recruitment (Pradel): {exc}")
    spatial = None
    if session_ids is not None and len(sessions) >= 3:
        if all(np.array_equal(s.mask.xy, sessions[0].mask.xy) for s in sessions):
            try:
                spatial = fit_secr_open(sessions, session_ids, detectfn=detectfn, level=level)  # type: ignore[arg-type]
            except (OpenPopulationError, SecrError) as exc:
                msgs.append(f"Spatial open-population model: {exc}")
        else:
            msgs.append("Spatial open-population model: the years' stations differ, so they have no common mask.")
    return TrendReport(plot, species, years, fit, growth, pradel, sentence, msgs, spatial, overall, interval)


def write_trend(rep: TrendReport, out_dir: Path) -> dict[str, Path]:
    """Write ``trend.json``, the trend CSV tables and ``trend.png`` (density per year) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, rows in rep.tables().items():
        p = out_dir / name
        with p.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        paths[name] = p

    def default(o: Any) -> Any:
        if isinstance(o, np.generic | np.ndarray):
            return o.tolist()
        raise TypeError(f"cannot write {type(o).__name__} to JSON")

    p = out_dir / "trend.json"
    p.write_text(json.dumps(rep.numbers(), indent=2, default=default))
    paths["trend.json"] = p
    png = trend_png(rep)
    if png is not None:
        p = out_dir / "trend.png"
        p.write_bytes(png)
        paths["trend.png"] = p
    return paths


def trend_png(rep: TrendReport) -> bytes | None:
    """Density per year with its interval (per 100 km²), and the growth of the sentence written on it.

    None without a multi-session fit (fewer than two years with captures).
    """
    if rep.secr is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = rep.density_rows()
    years = [int(r["year"]) for r in rows]
    d = np.array([r["D_per_100km2"] for r in rows])
    lo = np.array([r["lcl_per_100km2"] for r in rows])
    hi = np.array([r["ucl_per_100km2"] for r in rows])
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(years, d, yerr=[d - lo, hi - d], fmt="o-", color="#23402f", ecolor="#7a9", capsize=4, lw=1.5)
    for y, v, r in zip(years, d, rows, strict=True):
        ax.annotate(f"n={r['animals_identified']}", (y, v), textcoords="offset points", xytext=(6, -12), fontsize=7)
    ax.set_xticks(years, [str(y) for y in years])
    ax.set_xlim(years[0] - 0.3, years[-1] + 0.4)  # room for the last year's label
    ax.set_ylim(bottom=0)
    ax.set_xlabel("year")
    ax.set_ylabel(f"{common_name(rep.species)} per 100 km² (95% CI)")
    title = f"Density on plot {rep.plot}, multi-session SECR"
    if rep.overall is not None:
        title += f": λ = {rep.overall.value:.2f} a year ({rep.overall.lcl:.2f}-{rep.overall.ucl:.2f})"
    ax.set_title(title, fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def yearly_reports(
    workspace: Any,
    plot: str,
    years: Sequence[int],
    options: ReportOptions,
    known: Mapping[int, PlotYearReport] | None = None,
) -> tuple[list[PlotYearReport], list[tuple[str, int]], list[str]]:
    """Each year of a plot collected and analysed as the plot-year report does (population part only).

    ``known`` reports (e.g. the plot-year report being written) are used as they are. Returns the
    reports in year order, the plot's confirmed (individual, year) identities, and one message per
    year that could not be analysed.
    """
    known = dict(known or {})
    reports: list[PlotYearReport] = []
    msgs: list[str] = []
    identities: list[tuple[str, int]] = []
    for year in sorted(set(years)):
        if year in known:
            reports.append(known[year])
            identities = list(known[year].data.focus_ids_all_years)
            continue
        try:
            with workspace.db.session() as s:
                data = collect(s, plot, year, options.species)
            identities = list(data.focus_ids_all_years)
            reports.append(analyse(data, options, population_only=True))
        except (EffortError, ReportError) as exc:
            msgs.append(f"{year}: {exc}")
    return reports, identities, msgs


def trend_from_reports(
    plot: str,
    reports: Sequence[PlotYearReport],
    identities: Sequence[tuple[str, int]],
    options: ReportOptions,
    years: Sequence[int],
) -> TrendReport:
    """The trend of a plot from its yearly reports: sessions, multi-session SECR, Pradel and the spatial model."""
    o = options
    msgs: list[str] = []
    try:
        sessions = sessions_from_reports(reports, buffer_m=o.mask_buffer_m)
        session_ids: list[tuple[str, ...]] | None = session_ids_from_reports(reports)
    except SecrError as exc:
        sessions, session_ids = [], None
        msgs.append(f"Multi-session SECR: {exc}")
    for r in reports:
        if str(r.data.year) not in {s.name for s in sessions}:
            msgs.append(f"{r.data.year}: no confirmed {common_name(o.species)} captures with station coordinates")
    chosen = set(years)
    rep = analyse_trend(
        plot,
        sessions,
        species=o.species,
        identities=[(a, y) for a, y in identities if y in chosen],
        session_ids=session_ids,
        detectfn=o.detectfn,
        level=o.level,
    )
    rep.messages[:0] = msgs
    return rep


def build_trend(
    workspace: Any, plot: str, years: Sequence[int], out_dir: Path, options: ReportOptions | None = None
) -> tuple[TrendReport, dict[str, Path]]:
    """Collect and analyse each year of a plot (as the plot-year report does), then fit and write its trend.

    Years that cannot be analysed (no deployments, no captures) are left out and named in the
    trend's messages; Pradel uses every confirmed identification of the plot in the chosen years.
    """
    o = options or ReportOptions()
    reports, identities, msgs = yearly_reports(workspace, plot, years, o)
    rep = trend_from_reports(plot, reports, identities, o, years)
    rep.messages[:0] = msgs
    return rep, write_trend(rep, out_dir)


def trend_for_report(workspace: Any, report: PlotYearReport) -> tuple[TrendReport | None, str]:
    """The trend section of a plot-year report: every year the store holds for the plot up to the report's.

    Returns the trend, or None and the plain sentence that says why there is none (one year only).
    """
    plot, year = report.data.plot, report.data.year
    with workspace.db.session() as s:
        years = [y for y in plot_years(s, plot) if y <= year]
    if year not in years:
        years.append(year)
    if len(years) < 2:
        return None, (
            f"A trend needs two or more years of monitoring; the store holds only {year} for plot {plot}. "
            "Next year's report will show the change."
        )
    reports, identities, msgs = yearly_reports(workspace, plot, years, report.options, known={year: report})
    rep = trend_from_reports(plot, reports, identities, report.options, years)
    rep.messages[:0] = msgs
    return rep, ""
