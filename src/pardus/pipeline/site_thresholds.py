"""Animal thresholds per camera site, learned from the photos people reviewed there.

One threshold for every camera is a compromise: a site that looks at swaying grass or sun-lit
rocks fills the review queue with empty photos the detector calls "animal", while a site on a
quiet trail does not. Once people have reviewed enough of a site's photos, the reviews say how
high its threshold can go without losing an animal the reviewers saw:

    threshold(site) = max(default, margin x the lowest best animal score among the reviewed
                          non-blank photos the default found)

so no reviewed animal at that site would have been lost (the margin keeps room for a fainter one
next time); photos the default missed say nothing about raising it. Only the animal threshold is
tuned: the people and vehicle thresholds are the rangers' safety net and never rise by themselves.
The result lives in ``Location.extra['detect_thresholds']`` with its evidence, the detect stage
applies it to photos it processes from then on (recorded in the observation's ``extra``), and
``pardus detect thresholds`` shows and sets it. Measured by bench/detect_site_thresholds.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store import Workspace
from pardus.store.models import Deployment, Detection, Location, Media, Observation, utcnow

KEY = "detect_thresholds"


@dataclass(frozen=True)
class SiteTuning:
    location_id: str
    reviewed: int  # reviewed photos at the site with a detection result
    reviewed_non_blank: int
    false_alarms: int  # reviewed blank photos the default threshold called animal
    lowest_animal_score: float | None  # among reviewed non-blank photos the default found
    threshold: float | None  # None: not enough reviews, the default stays
    false_alarms_removed: int  # of those, how many the site threshold would have removed
    why: str


def site_tunings(ws: Workspace, default: float, *, margin: float = 0.9, min_reviewed: int = 20,
                 min_non_blank: int = 5, until: datetime | None = None,
                 detect_key: str | None = None) -> list[SiteTuning]:
    """What the reviews of each site say (see the module docstring); nothing is written."""
    with ws.db.session() as s:
        site_of = {mid: loc for mid, loc in s.execute(
            select(Media.id, Deployment.location_id).join(Deployment, Deployment.id == Media.deployment_id)
            .where(*([Media.timestamp < until] if until is not None else [])))}
        truth: dict[str, bool] = {}
        for mid, kind in s.execute(select(Observation.media_id, Observation.observation_type)
                                   .where(Observation.classification_method == "human",
                                          Observation.superseded_by.is_(None),
                                          Observation.media_id.is_not(None))):
            if mid in site_of:
                truth[mid] = truth.get(mid, False) or kind != "blank"
        processed = select(Observation.media_id).where(Observation.classification_method == "machine",
                                                       Observation.observation_level == "media")
        if detect_key is not None:
            processed = processed.where(Observation.classified_by == detect_key)
        done = set(s.scalars(processed))
        q = select(Detection.media_id, Detection.score).where(Detection.category == "animal",
                                                            Detection.repeat.is_(False))
        if detect_key is not None:
            q = q.where(Detection.extra["stage"].as_string() == detect_key)
        best: dict[str, float] = {}
        for mid, score in s.execute(q):
            best[mid] = max(score, best.get(mid, 0.0))
    per_site: dict[str, list[tuple[bool, float]]] = defaultdict(list)
    for mid, non_blank in truth.items():
        if mid in done and site_of.get(mid):
            per_site[site_of[mid]].append((non_blank, best.get(mid, 0.0)))
    out = []
    for loc, rows in sorted(per_site.items()):
        found = [sc for nb, sc in rows if nb and sc >= default]
        alarms = [sc for nb, sc in rows if not nb and sc >= default]
        n_nb = sum(nb for nb, _ in rows)
        low = min(found) if found else None
        if len(rows) < min_reviewed or n_nb < min_non_blank or low is None:
            out.append(SiteTuning(loc, len(rows), n_nb, len(alarms), low, None, 0,
                                  f"not enough reviews (needs {min_reviewed} photos, {min_non_blank} with animals)"))
            continue
        t = max(default, round(margin * low, 3))
        removed = sum(sc < t for sc in alarms)
        why = ("no reviewed animal scored near the default: raised" if t > default
               else "a reviewed animal scored near the default: kept")
        out.append(SiteTuning(loc, len(rows), n_nb, len(alarms), low, t, removed, why))
    return out


def save_site_thresholds(ws: Workspace, tunings: list[SiteTuning], *, by: str = "pardus") -> int:
    """Record the tuned thresholds (only where they differ from the default); returns how many sites."""
    n = 0
    with ws.db.session() as s:
        for t in tunings:
            loc = s.get(Location, t.location_id)
            if loc is None or t.threshold is None:
                continue
            extra = dict(loc.extra or {})
            extra[KEY] = {"animal": t.threshold, "reviewed": t.reviewed, "reviewed_non_blank": t.reviewed_non_blank,
                          "lowest_animal_score": t.lowest_animal_score, "false_alarms_removed": t.false_alarms_removed,
                          "by": by, "at": utcnow().isoformat()}
            loc.extra = extra
            n += 1
    return n


def set_site_threshold(ws: Workspace, location_id: str, animal: float | None, *, by: str) -> None:
    """A person's own threshold for a site (``None`` clears it, back to the default)."""
    if animal is not None and not 0.0 < animal < 1.0:
        raise ValueError(f"a threshold is a score between 0 and 1, not {animal}")
    with ws.db.session() as s:
        loc = s.get(Location, location_id)
        if loc is None:
            raise KeyError(f"no camera site {location_id!r}; `pardus deployments list` shows them")
        extra = dict(loc.extra or {})
        if animal is None:
            extra.pop(KEY, None)
        else:
            extra[KEY] = {"animal": animal, "by": by, "at": utcnow().isoformat()}
        loc.extra = extra


def site_animal_thresholds(s: Session, media_ids: Sequence[str]) -> dict[str, float]:
    """The tuned animal threshold of each photo's site, for the photos whose site has one."""
    rows = s.execute(select(Media.id, Location.extra).join(Deployment, Deployment.id == Media.deployment_id)
                     .join(Location, Location.id == Deployment.location_id).where(Media.id.in_(media_ids)))
    return {mid: float(extra[KEY]["animal"]) for mid, extra in rows
            if isinstance(extra, dict) and isinstance(extra.get(KEY), dict) and "animal" in extra[KEY]}
