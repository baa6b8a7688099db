"""Across rooms: a live camera's photo of an uncatalogued leopard raises "previously unknown individual".

The upload goes through the real one-file ingest and live queue, the whole default pipeline
(detection, species, re-identification on real weights) and the alert rules. Once a person has
confirmed that animal as a new catalogue individual, its next photo is matched to it and raises
nothing. This is the path issue 5 and issue 7 share: the re-id stage's ``extra["reid"]["is_new"]``
read by the alert room.

The animal's true box is stored as a detection beside the detector's own, and the species and re-id
stages are pointed at those boxes (they read one detector's boxes, ``boxes_from``): zamba's
YOLOX-tiny does not fire on the virtual park's rendered leopards at all (scores below 0.02 on these
frames, measured when this test was written), so without it the path would stop at "blank" and test
nothing. The detector still runs first, as in a park.

One encounter (a burst at one camera) raises at most one "unknown individual" alert, however many of
its frames the stage called new and even when the first alert was resolved before the next frame came.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pardus.alerts import lifecycle
from pardus.alerts.rules import parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import LiveWorker, enqueue
from pardus.models.registry import COCO_SSD, YOLOX_TINY
from pardus.reid.catalogue import Catalogue
from pardus.reid.simulated import render_animal
from pardus.reid.stage import ReidStage
from pardus.store import Workspace, open_workspace
from pardus.store.models import Alert, Detection, Media, Observation

RULES = "rules: [{name: unknown-leopard, kind: new-individual}]"


def _proposals(ws, media_id: str) -> list[Observation]:
    key = ReidStage().model_key
    with ws.db.session() as s:
        return list(s.scalars(select(Observation).where(Observation.media_id == media_id,
                                                        Observation.classified_by == key)))


TRUTH = "virtual-park-truth@1"  # the "detect stage" key of the true boxes


def _upload(ws, photo, seq: int) -> str:
    media_id = ingest_file(ws, photo.jpeg, camera_id="C7", camera_seq=seq, on_created=enqueue).media_id
    x, y, w, h = photo.box
    with ws.db.session() as s:
        s.add(Detection(media_id=media_id, category="animal", score=0.9, x=x, y=y, w=w, h=h,
                        model_name="virtual-park-truth", model_version="1", extra={"stage": TRUTH}))
    return media_id


def _new_individual_alerts(ws) -> list[str | None]:
    with ws.db.session() as s:
        return list(s.scalars(select(Alert.media_id).where(Alert.kind == "new-individual")))


@pytest.mark.slow
@pytest.mark.skipif(not (YOLOX_TINY.available() and COCO_SSD.available()), reason="detector weights not installed")
def test_uncatalogued_leopard_alerts_and_the_confirmed_one_does_not(sqlite_settings) -> None:
    from pardus.live.triage import TriageStage
    from pardus.pipeline.stages import default_stages

    ws = open_workspace(sqlite_settings)
    try:
        add_camera(ws, "C7")
        stages = default_stages(ws.settings)
        for st in stages:
            if st.name in ("species", "reid"):
                st.boxes_from = TRUTH  # type: ignore[attr-defined]
        worker = LiveWorker(ws, parse_rules(RULES), stages=stages, triage=TriageStage())
        assert any(st.name == "reid" for st in worker.stages)

        m1 = _upload(ws, render_animal("AMUR_X", "left", 41), 1)
        worker.drain()
        props = _proposals(ws, m1)
        assert props, "the species stage named a leopard and the re-id stage wrote a proposal"
        assert props[0].extra["reid"]["is_new"] is True
        assert _new_individual_alerts(ws) == [m1]

        Catalogue(ws).confirm_new(props[0].id, by="ranger test", code="PPO_900", flank="left",
                                  species="Panthera pardus orientalis")

        m2 = _upload(ws, render_animal("AMUR_X", "left", 42), 2)
        worker.drain()
        props2 = _proposals(ws, m2)
        assert props2, "the second photo was matched too"
        reid = props2[0].extra["reid"]
        assert reid["candidates"] and reid["candidates"][0]["code"] == "PPO_900", reid["candidates"][:2]
        assert reid["is_new"] is False
        assert _new_individual_alerts(ws) == [m1], "the catalogued leopard raises no unknown-individual alert"
    finally:
        ws.close()


def _new_proposal(ws: Workspace, media_id: str) -> None:
    """A re-id proposal saying "probably new", as the stage writes it (the alert room's contract)."""
    with ws.db.session() as s:
        m = s.get(Media, media_id)
        assert m is not None
        s.add(Observation(deployment_id=m.deployment_id, media_id=media_id, observation_type="animal",
                          scientific_name="Panthera pardus orientalis", classification_method="machine",
                          classified_by=ReidStage().model_key, extra={"reid": {
                              "is_new": True, "new_probability": 0.9, "candidates": [], "n_features": 400}}))


def test_one_encounter_raises_one_unknown_individual_alert(workspace: Workspace) -> None:
    from tests.live.helpers import jpeg

    add_camera(workspace, "C7")
    worker = LiveWorker(workspace, parse_rules(RULES))
    photos = [ingest_file(workspace, jpeg(seed), camera_id="C7", camera_seq=seed).media_id for seed in (1, 2, 3)]
    with workspace.db.session() as s:  # frames 1 and 2 are one burst, frame 3 another visit
        for mid, seq in zip(photos, ("burst-1", "burst-1", "burst-2"), strict=True):
            m = s.get(Media, mid)
            assert m is not None
            m.sequence_id = seq
    for mid in photos:
        _new_proposal(workspace, mid)

    first = worker.alert_on([photos[0]])
    assert len(first) == 1
    with workspace.db.session() as s:  # a ranger closes it before the burst's next frame is processed
        lifecycle.resolve(s, first[0], "ranger", "other", "checked the camera")
    assert worker.alert_on([photos[1]]) == [], "the same encounter raises no second alert"
    assert len(worker.alert_on([photos[2]])) == 1, "another encounter is another animal passing"
    assert sorted(_new_individual_alerts(workspace)) == sorted([photos[0], photos[2]])
