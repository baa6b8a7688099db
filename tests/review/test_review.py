"""The review room on both databases: the queue of sequences, decisions beside the machine's,
supersede and undo, bulk blanks of a camera-day, keyset pages, per-reviewer progress."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from pardus.review import decide as rd
from pardus.review import queue as rq
from pardus.store import Workspace
from pardus.store.models import Media, Observation, ReviewDecision, ReviewItem
from pardus.testing.rows import SeasonSize, fill_season

SIZE = SeasonSize(photos=300, alerts=5, stations=4, plots=2, online=1, silent=0, heartbeats=2)


@pytest.fixture
def season(workspace: Workspace) -> Workspace:
    with workspace.db.engine.begin() as conn:
        fill_season(conn, SIZE)
    with workspace.db.session() as s:
        assert rq.refresh(s) == 100  # bursts of 3
    return workspace


def _active(s) -> set[tuple]:
    return {(o.media_id, o.observation_type, o.scientific_name, o.classified_by) for o in s.scalars(
        select(Observation).where(Observation.classification_method == "human", Observation.superseded_by.is_(None)))}


def test_queue_has_one_item_per_sequence_with_the_machines_most_important_call(season: Workspace) -> None:
    with season.db.session() as s:
        items = list(s.scalars(select(ReviewItem)))
        assert sum(i.media_count for i in items) == 300
        for it in items[:30]:
            kinds = {t for (t,) in s.execute(select(Observation.observation_type).join(Media).where(
                Media.sequence_id == it.sequence_id, Observation.classification_method == "machine"))}
            expected = next((k for k in rq.PRIORITY if k in kinds), None)
            assert it.machine_type == expected
        assert rq.refresh(s) == 100  # again: same rows, nothing duplicated
        assert s.scalar(select(func.count()).select_from(ReviewItem)) == 100


def test_a_refresh_of_one_camera_redoes_its_rows_only_and_keeps_the_reviewers_decision(season: Workspace) -> None:
    """`pardus process` refreshes the cameras it wrote to (a full rebuild at a million photos reads
    every photo); a call changed on one camera reaches its row, another camera's changed call waits
    for its own refresh, and a person's decision on the row survives both."""
    with season.db.session() as s:
        deps = sorted(set(s.scalars(select(ReviewItem.deployment_id))))
        mine, other = (s.scalars(select(ReviewItem).where(
            ReviewItem.deployment_id == d, ReviewItem.machine_type == "animal")).first() for d in deps[:2])
        rd.decide(s, mine.sequence_id, "olga", "blank")
        ids = {}
        for item in (mine, other):
            ids[item.sequence_id] = list(s.scalars(select(Media.id).where(Media.sequence_id == item.sequence_id)))
            for o in s.scalars(select(Observation).where(Observation.media_id.in_(ids[item.sequence_id]),
                                                         Observation.classification_method == "machine")):
                o.observation_type, o.scientific_name = "human", None
        s.commit()
        n = rq.refresh(s, deployments=[deps[0]])
        s.commit()
        assert 0 < n < 100
        s.expire_all()
        row = s.get(ReviewItem, mine.sequence_id)
        assert (row.machine_type, row.human_type, row.disagree) == ("human", "blank", True)
        assert s.get(ReviewItem, other.sequence_id).machine_type == "animal"  # not its camera: untouched
        assert rq.refresh(s, deployments=[]) == 0
        assert rq.refresh(s) == 100
        s.commit()
        s.expire_all()
        assert s.get(ReviewItem, other.sequence_id).machine_type == "human"
        assert s.scalar(select(func.count()).select_from(ReviewItem)) == 100


@pytest.mark.parametrize("order", rq.ORDERS)
def test_keyset_pages_walk_the_whole_queue_forward_and_back(season: Workspace, order: str) -> None:
    f = rq.QueueFilter()
    with season.db.session() as s:
        seen, after = [], None
        while True:
            rows = rq.page(s, f, order=order, after=after, limit=7)
            if not rows:
                break
            seen += [r.sequence_id for r in rows]
            after = rows[-1].sequence_id
        expected = 100 if order == "camera-day" else s.scalar(
            select(func.count()).select_from(ReviewItem).where(ReviewItem.confidence.is_not(None)))
        assert len(seen) == len(set(seen)) == expected
        back = rq.page(s, f, order=order, before=seen[10], limit=5)
        assert [r.sequence_id for r in back] == seen[5:10]
        with pytest.raises(rq.QueueError):
            rq.page(s, f, order="random")
        with pytest.raises(rq.QueueError):
            rq.page(s, rq.QueueFilter(machine_type="dragon"))


def test_decisions_supersede_and_undo_brings_back_what_was_there(season: Workspace) -> None:
    with season.db.session() as s:
        item = s.scalars(select(ReviewItem).where(ReviewItem.machine_type == "animal")).first()
        before = _active(s)
        machine_before = s.scalar(select(func.count()).select_from(Observation).where(
            Observation.classification_method == "machine"))
        d1 = rd.decide(s, item.sequence_id, "olga", "accept")
        assert d1.observation_type == "animal" and d1.photos == item.media_count
        d2 = rd.decide(s, item.sequence_id, "olga", "animal", species="Nyctereutes procyonoides", count=2)
        s.flush()
        mine = s.scalars(select(Observation).where(Observation.review_decision_id == d2.decision_id)).all()
        assert len(mine) == item.media_count and {o.scientific_name for o in mine} == {"Nyctereutes procyonoides"}
        assert all(o.classified_by == "olga" and o.extra["machine"]["type"] == "animal" for o in mine)
        assert s.get(ReviewItem, item.sequence_id).human_species == "Nyctereutes procyonoides"
        with pytest.raises(rd.QueueError, match="later decision"):
            rd.undo(s, d1.decision_id, "olga")
        assert rd.last_undoable(s, "olga") == d2.decision_id
        rd.undo(s, d2.decision_id, "olga")
        s.flush()
        assert s.get(ReviewItem, item.sequence_id).human_type == "animal"  # back to the first decision
        rd.undo(s, d1.decision_id, "olga")
        s.flush()
        assert _active(s) == before
        assert s.get(ReviewItem, item.sequence_id).reviewed_at is None
        # The machine's observations were never touched; every decision row is kept.
        assert s.scalar(select(func.count()).select_from(Observation).where(
            Observation.classification_method == "machine")) == machine_before
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 2


def test_bulk_blanks_of_a_camera_day_and_one_undo(season: Workspace) -> None:
    with season.db.session() as s:
        blank = s.scalars(select(ReviewItem).where(ReviewItem.machine_type == "blank")).first()
        items = rq.camera_day_items(s, blank.deployment_id, blank.camera_day, machine_type="blank")
        before = _active(s)
        batch, n = rd.accept_blanks(s, [i.sequence_id for i in items], "ivan")
        assert n == len(items) >= 1
        s.flush()
        assert all(s.get(ReviewItem, i.sequence_id).human_type == "blank" for i in items)
        assert len(rd.undo(s, batch, "ivan")) == n
        s.flush()
        assert _active(s) == before
        assert all(s.get(ReviewItem, i.sequence_id).reviewed_at is None for i in items)
        with pytest.raises(rd.QueueError):
            rd.undo(s, batch, "ivan")


def test_hostile_decisions_are_refused_with_a_reason(season: Workspace) -> None:
    with season.db.session() as s:
        item = s.scalars(select(ReviewItem)).first()
        for kwargs, words in (({"action": "eat"}, "action must be"), ({"action": "animal"}, "which species"),
                              ({"action": "animal", "species": "x" * 300}, "255"),
                              ({"action": "human", "count": -1}, "count must be")):
            with pytest.raises(rd.QueueError, match=words):
                rd.decide(s, item.sequence_id, "olga", **kwargs)
        with pytest.raises(rd.QueueError, match="no sequence"):
            rd.decide(s, "nope", "olga", "blank")
        assert s.scalar(select(func.count()).select_from(ReviewDecision)) == 0


def test_progress_counts_sequences_per_reviewer_and_day(season: Workspace) -> None:
    with season.db.session() as s:
        items = list(s.scalars(select(ReviewItem).limit(5)))
        for it in items[:3]:
            rd.decide(s, it.sequence_id, "olga", "blank")
        rd.decide(s, items[0].sequence_id, "olga", "human")  # the same sequence again counts once
        d = rd.decide(s, items[3].sequence_id, "ivan", "vehicle")
        rd.decide(s, items[4].sequence_id, "ivan", "blank")
        s.flush()
        rd.undo(s, d.decision_id, "ivan")
        rows = {(r.by, r.sequences) for r in rd.progress(s)}
    assert rows == {("olga", 3), ("ivan", 1)}


def test_decisions_reach_the_camtrap_dp_export_and_the_teaching_set(season: Workspace, tmp_path) -> None:
    import csv

    from pardus.interop.camtrap_dp import export_camtrap_dp
    from pardus.pipeline.teach import species_examples

    with season.db.session() as s:
        item = s.scalars(select(ReviewItem).where(ReviewItem.machine_type == "animal")).first()
        rd.decide(s, item.sequence_id, "olga", "animal", species="Cervus elaphus")
        rd.decide(s, item.sequence_id, "olga", "animal", species="Moschus moschiferus")  # supersedes the first
        media = {m.id for m in rq.sequence_media(s, item.sequence_id)}
    export_camtrap_dp(season, tmp_path / "pkg", validate=False)
    rows = [r for r in csv.DictReader((tmp_path / "pkg" / "observations.csv").open(encoding="utf-8"))
            if r["mediaID"] in media and r["classificationMethod"] == "human"]
    assert {(r["scientificName"], r["classifiedBy"]) for r in rows} == {("Moschus moschiferus", "olga")}
    assert len(rows) == len(media)
    taught = {e.label for e in species_examples(season) if e.media_id in media}
    assert taught == {"Moschus moschiferus"}
