"""Sequence smoothing: a burst is decided as a whole, from its frames' machine calls."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from pardus.ingest.card import import_card
from pardus.ingest.synthetic import write_card
from pardus.pipeline.sequences import SUFFIX, smooth_sequences
from pardus.store import Workspace
from pardus.store.models import Media, Observation, utcnow

SPECIES = "species-head@test"
DETECT = "detector@test"


def _obs(m: Media, kind: str, by: str, name: str | None = None, p: float = 0.9, human: bool = False) -> Observation:
    return Observation(deployment_id=m.deployment_id, media_id=m.id, observation_level="media", observation_type=kind,
                       scientific_name=name, count=1 if kind != "blank" else None,
                       classification_method="human" if human else "machine", classified_by=by,
                       classification_timestamp=utcnow(), classification_probability=p,
                       extra={"stage": "species"} if by == SPECIES else {})


def test_blank_middle_frame_of_an_animal_burst_is_part_of_the_animal_event(workspace: Workspace,
                                                                            tmp_path: Path) -> None:
    write_card(tmp_path / "card", 6, datetime(2024, 6, 1, 12, 0), burst=3, size=(160, 120))
    import_card(workspace, tmp_path / "card", "C1")
    with workspace.db.session() as s:
        media = list(s.scalars(select(Media).order_by(Media.timestamp, Media.file_path)))
        seqs = sorted({m.sequence_id for m in media})
        assert len(media) == 6 and len(seqs) == 2 and all(seqs), "the importer groups two bursts of three"
        a, b = ([m for m in media if m.sequence_id == q] for q in seqs)
        # Burst one: deer, (detector saw nothing), deer seen poorly and called boar. Burst two: all blank.
        s.add_all([_obs(a[0], "animal", DETECT), _obs(a[0], "animal", SPECIES, "Cervus nippon", 0.8),
                   _obs(a[1], "blank", DETECT, p=0.0),
                   _obs(a[2], "animal", DETECT), _obs(a[2], "animal", SPECIES, "Sus scrofa", 0.55),
                   _obs(a[2], "animal", "someone", "Capreolus pygargus", 1.0, human=True)])
        s.add_all([_obs(m, "blank", DETECT, p=0.0) for m in b])
    assert smooth_sequences(workspace, SPECIES) == 2
    assert smooth_sequences(workspace, SPECIES) == 2, "recomputing replaces, never duplicates"
    with workspace.db.session() as s:
        events = {e.event_id: e for e in s.scalars(select(Observation).where(Observation.observation_level == "event"))}
        assert set(events) == set(seqs)
        first, second = events[seqs[0]], events[seqs[1]]
        assert (first.observation_type, first.scientific_name) == ("animal", "Cervus nippon")
        assert first.extra["blank_frames"] == 1 and first.extra["frames"] == 3
        assert first.event_start == a[0].timestamp and first.event_end == a[2].timestamp
        assert first.classified_by == SPECIES + SUFFIX and first.classification_method == "machine"
        # the winner's summed probability over the two classified frames
        assert abs(first.classification_probability - 0.8 / 2) < 1e-6
        assert second.observation_type == "blank" and second.extra["blank_frames"] == 3
        human = s.scalars(select(Observation).where(Observation.classification_method == "human")).one()
        assert human.scientific_name == "Capreolus pygargus", "people's labels are not part of the vote, nor changed"


def test_a_burst_the_taught_head_calls_people_is_a_human_event(workspace: Workspace, tmp_path: Path) -> None:
    write_card(tmp_path / "card", 3, datetime(2024, 6, 1, 23, 0), burst=3, size=(160, 120))
    import_card(workspace, tmp_path / "card", "C1")
    with workspace.db.session() as s:
        media = list(s.scalars(select(Media).order_by(Media.timestamp, Media.file_path)))
        s.add_all([_obs(m, "animal", DETECT) for m in media])
        s.add_all([_obs(m, "human", SPECIES, "Homo sapiens", 0.7) for m in media[:2]]
                  + [_obs(media[2], "animal", SPECIES, "Sus scrofa", 0.6)])
    assert smooth_sequences(workspace, SPECIES) == 1
    with workspace.db.session() as s:
        [event] = s.scalars(select(Observation).where(Observation.observation_level == "event")).all()
    assert (event.observation_type, event.scientific_name) == ("human", "Homo sapiens")
