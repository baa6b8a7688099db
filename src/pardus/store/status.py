"""Counts that answer "where does my season stand?": per deployment and per pipeline stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pardus.store.models import Deployment, Detection, Media, Observation, StageState


@dataclass
class DeploymentStatus:
    deployment_id: str
    location: str | None
    media: int = 0
    photos: int = 0
    videos: int = 0
    time_issues: int = 0
    damaged: int = 0
    sequences: int = 0
    first: str | None = None
    last: str | None = None
    stages: dict[str, dict[str, int]] = field(default_factory=dict)


def deployment_status(s: Session, deployment_id: str | None = None) -> list[DeploymentStatus]:
    """Per deployment: photos, videos, time and file problems, sequences, first and last photo, and
    each stage's states.

    Why several grouped queries rather than one: each is answered from an index or one hash
    aggregate, where the single query's count(DISTINCT sequence) sorted every photo of every
    camera (7 s at a million photos on PostgreSQL, bench/store_scale.py)."""
    deps = select(Deployment.id, Deployment.location_id).order_by(Deployment.id)
    if deployment_id:
        deps = deps.where(Deployment.id == deployment_id)
    out = {dep: DeploymentStatus(deployment_id=dep, location=loc) for dep, loc in s.execute(deps)}

    def grouped(*cols: Any) -> Any:
        q = select(Media.deployment_id, *cols).group_by(Media.deployment_id)
        return s.execute(q.where(Media.deployment_id == deployment_id) if deployment_id else q)

    for dep, n, first, last in grouped(func.count(), func.min(Media.timestamp), func.max(Media.timestamp)):
        if dep in out:
            st = out[dep]
            st.media, st.first, st.last = n, str(first)[:19] if first else None, str(last)[:19] if last else None
    for dep, times, files in grouped(func.count(Media.timestamp_issues), func.count(Media.file_issues)):
        if dep in out:
            out[dep].time_issues, out[dep].damaged = times, files
    kinds = select(Media.deployment_id, Media.file_mediatype, func.count()).group_by(
        Media.deployment_id, Media.file_mediatype)
    for dep, mediatype, n in s.execute(kinds.where(Media.deployment_id == deployment_id) if deployment_id else kinds):
        if dep in out and mediatype:
            if mediatype.startswith("image/"):
                out[dep].photos += n
            elif mediatype.startswith("video/"):
                out[dep].videos += n
    pairs = select(Media.deployment_id, Media.sequence_id).where(Media.sequence_id.is_not(None)).group_by(
        Media.deployment_id, Media.sequence_id)
    if deployment_id:
        pairs = pairs.where(Media.deployment_id == deployment_id)
    sub = pairs.subquery()
    for dep, n in s.execute(select(sub.c.deployment_id, func.count()).group_by(sub.c.deployment_id)):
        if dep in out:
            out[dep].sequences = n
    for dep, stage, status, n in _stage_counts(s):
        if dep in out:
            out[dep].stages.setdefault(stage, {})[status] = n
    return list(out.values())


def _stage_counts(s: Session) -> Any:
    """(deployment, stage, status, photos): from the states alone, by their own deployment index."""
    return s.execute(select(StageState.deployment_id, StageState.stage, StageState.status, func.count())
                     .group_by(StageState.deployment_id, StageState.stage, StageState.status))


def totals(s: Session) -> dict[str, int]:
    return {
        "deployments": s.scalar(select(func.count(Deployment.id))) or 0,
        "media": s.scalar(select(func.count(Media.id))) or 0,
        "detections": s.scalar(select(func.count(Detection.id))) or 0,
        "observations": s.scalar(select(func.count(Observation.id))) or 0,
    }


@dataclass
class OverviewRow:
    """One deployment's line of the season overview."""

    deployment_id: str
    plot: str | None
    location: str | None
    photos: int
    time_issues: int
    damaged: int
    first: str | None
    last: str | None
    stages: dict[str, dict[str, int]]  # stage -> status -> photos
    kinds: dict[str, int]  # observation type (blank, animal, human, vehicle, ...) -> photos
    reviewed: int  # photos a person has labelled


@dataclass
class Overview:
    rows: list[OverviewRow]
    stage_names: list[str]
    plots: dict[str, dict[str, int]]  # plot -> summed counts (photos, reviewed, each kind, time_issues)
    years: dict[str, list[int]]  # plot -> years with photos (for the plot-year report links)


def season_overview(s: Session) -> Overview:
    """Per plot and deployment: imported, processed per stage, blanks/animals/people/vehicles, time
    problems, reviewed. A few grouped queries, each answered from an index, whatever the season's size."""
    from pardus.store.models import Location

    # Lean counts of the photos, each from an index alone: count(*)/min/max from (deployment, time),
    # the two flags from (deployment, flags); `pardus status` keeps the fuller deployment_status.
    base = {dep: DeploymentStatus(dep, None) for (dep,) in s.execute(select(Deployment.id))}
    for dep, n, first, last in s.execute(select(Media.deployment_id, func.count(), func.min(Media.timestamp),
                                                func.max(Media.timestamp)).group_by(Media.deployment_id)):
        if dep in base:
            b = base[dep]
            b.media, b.first, b.last = n, str(first)[:19] if first else None, str(last)[:19] if last else None
    for dep, times, files in s.execute(select(Media.deployment_id, func.count(Media.timestamp_issues),
                                              func.count(Media.file_issues)).group_by(Media.deployment_id)):
        if dep in base:
            base[dep].time_issues, base[dep].damaged = times, files
    for dep, stage, status, n in _stage_counts(s):
        if dep in base:
            base[dep].stages.setdefault(stage, {})[status] = n
    places = {dep: (plot, loc) for dep, plot, loc in s.execute(
        select(Deployment.id, Location.plot, Location.id).outerjoin(Location, Location.id == Deployment.location_id))}
    kinds: dict[str, dict[str, int]] = {}
    for dep, kind, n in s.execute(
            select(Observation.deployment_id, Observation.observation_type,
                   func.count(func.distinct(Observation.media_id)))
            .where(Observation.media_id.is_not(None))
            .group_by(Observation.deployment_id, Observation.observation_type)):
        kinds.setdefault(dep, {})[kind] = n
    reviewed = dict(s.execute(
        select(Observation.deployment_id, func.count(func.distinct(Observation.media_id)))
        .where(Observation.classification_method == "human", Observation.media_id.is_not(None))
        .group_by(Observation.deployment_id)).all())
    years: dict[str, set[int]] = {}
    rows: list[OverviewRow] = []
    stage_names: set[str] = set()
    for dep_id, st in base.items():
        plot, loc = places.get(dep_id, (None, None))
        stage_names.update(st.stages)
        rows.append(OverviewRow(dep_id, plot, loc, st.media, st.time_issues, st.damaged, st.first, st.last,
                                st.stages, kinds.get(dep_id, {}), int(reviewed.get(dep_id, 0))))
        for t in (st.first, st.last):
            if plot and t and t[:4].isdigit() and st.media:
                years.setdefault(plot, set()).add(int(t[:4]))
    rows.sort(key=lambda r: (r.plot or "~", r.deployment_id))
    plots: dict[str, dict[str, int]] = {}
    for r in rows:
        p = plots.setdefault(r.plot or "(no plot)", {})
        for key, value in (("photos", r.photos), ("reviewed", r.reviewed), ("time_issues", r.time_issues),
                           *r.kinds.items()):
            p[key] = p.get(key, 0) + value
    return Overview(rows, sorted(stage_names), plots, {p: sorted(v) for p, v in years.items()})
