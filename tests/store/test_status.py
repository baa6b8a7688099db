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


def test_pardus_status_counts_match_the_rows_for_all_and_for_one_deployment(workspace) -> None:
    """`pardus status`'s grouped queries (one per index, bench/store_scale.py) say what the rows say,
    for the whole store and for one deployment."""
    from pardus.store.status import deployment_status

    with workspace.db.engine.begin() as conn:
        fill_season(conn, SeasonSize(photos=900, alerts=5, stations=4, plots=2, online=1, silent=0, heartbeats=2))
    with workspace.db.session() as s:
        one = s.scalars(select(Media).limit(1)).one()
        one.file_mediatype, one.sequence_id, one.file_issues = "video/mp4", None, "truncated"
        s.commit()
        rows = s.execute(select(Media.deployment_id, Media.file_mediatype, Media.sequence_id, Media.timestamp,
                                Media.timestamp_issues, Media.file_issues)).all()
        every = deployment_status(s)
        single = deployment_status(s, one.deployment_id)
    assert len(every) == 4 and [r.deployment_id for r in single] == [one.deployment_id]
    for st in every:
        mine = [r for r in rows if r[0] == st.deployment_id]
        assert st.media == len(mine)
        assert st.photos == sum(r[1].startswith("image/") for r in mine)
        assert st.videos == sum(r[1].startswith("video/") for r in mine)
        assert st.sequences == len({r[2] for r in mine if r[2]})
        assert st.time_issues == sum(r[4] is not None for r in mine)
        assert st.damaged == sum(r[5] is not None for r in mine)
        assert st.first == str(min(r[3] for r in mine))[:19]
        assert sum(st.stages.get("detect", {}).values()) > 0
    assert single[0] == next(st for st in every if st.deployment_id == one.deployment_id)
    assert next(st for st in every if st.deployment_id == one.deployment_id).videos == 1
