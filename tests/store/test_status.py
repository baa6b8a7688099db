"""The season overview's counts equal what a plain join of photos, states and observations says."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from pardus.store.models import Media, Observation, StageState
from pardus.store.status import season_overview
from pardus.testing.rows import SeasonSize, fill_season


def test_season_overview_counts_match_the_rows(workspace) -> None:
    with workspace.db.engine.begin() as conn:
        fill_season(conn, SeasonSize(photos=3000, alerts=20, stations=6, plots=2, online=2, silent=1, heartbeats=5))
    with workspace.db.session() as s:
        o = season_overview(s)
        dep_of = dict(s.execute(select(Media.id, Media.deployment_id)).all())
        photos = Counter(dep_of.values())
        flagged = Counter(d for d, t in s.execute(select(Media.deployment_id, Media.timestamp_issues)) if t)
        stages = Counter((dep_of[m], st, status) for m, st, status in
                         s.execute(select(StageState.media_id, StageState.stage, StageState.status)))
        kinds = {(m, k) for m, k in s.execute(select(Observation.media_id, Observation.observation_type))}
        kind_counts = Counter((dep_of[m], k) for m, k in kinds)  # photos, not observations
        reviewed = Counter(dep_of[m] for m in {m for (m,) in s.execute(
            select(Observation.media_id).where(Observation.classification_method == "human"))})
    assert sum(r.photos for r in o.rows) == 3000 and len(o.rows) == 6
    for r in o.rows:
        assert r.photos == photos[r.deployment_id]
        assert r.time_issues == flagged[r.deployment_id]
        assert r.reviewed == reviewed[r.deployment_id]
        for stage, by_status in r.stages.items():
            for status, n in by_status.items():
                assert n == stages[(r.deployment_id, stage, status)]
        for kind, n in r.kinds.items():
            assert n == kind_counts[(r.deployment_id, kind)]
    assert sum(p["photos"] for p in o.plots.values()) == 3000
