"""Alert rules as data, evaluated on facts in the store; suppression, idempotency and the lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.live.helpers import jpeg

from pardus.alerts import lifecycle
from pardus.alerts.rules import RulesError, distance_m, evaluate, media_facts, parse_rules
from pardus.ingest.one import ingest_file
from pardus.live.cameras import add_camera
from pardus.live.queue import LiveWorker, enqueue
from pardus.store import Workspace
from pardus.store.models import Alert, AlertEvent, Deployment, Detection, Location, Observation

RULES = """
window_minutes: 30
zones:
  core: [[131.30, 43.10], [131.60, 43.10], [131.60, 43.30], [131.30, 43.30]]
villages:
  Barabash: [131.50, 43.19]
  Far: [133.0, 45.0]
rules:
  - {name: people-at-night-in-core, kind: person, when: night, zones: [core]}
  - {name: cars-by-day, kind: vehicle, when: day}
  - {name: fire, kind: fire}
  - {name: tigers-near-villages, kind: species, species: [Panthera tigris], near: [Barabash], within_m: 3000}
  - {name: leopards-far, kind: species, species: [Panthera pardus], near: [Far], within_m: 3000}
  - {name: unknown-leopard, kind: new-individual}
"""


def _photo(ws: Workspace, cam: str, seed: int, lonlat: tuple[float, float] | None = (131.45, 43.18)) -> str:
    with ws.db.session() as s:
        if lonlat and s.get(Location, f"L-{cam}") is None:
            s.add(Location(id=f"L-{cam}", longitude=lonlat[0], latitude=lonlat[1], sensitive=True))
            s.add(Deployment(id=f"D-{cam}", camera_id=cam, location_id=f"L-{cam}"))
    return ingest_file(ws, jpeg(seed), camera_id=cam, camera_seq=seed, on_created=enqueue).media_id


def _det(ws: Workspace, mid: str, category: str, score: float = 0.8, repeat: bool = False) -> None:
    with ws.db.session() as s:
        s.add(Detection(media_id=mid, category=category, score=score, x=0.1, y=0.1, w=0.2, h=0.4, model_name="t",
                        model_version="1", repeat=repeat))


def _obs(ws: Workspace, mid: str, sci: str, extra: dict | None = None) -> None:
    with ws.db.session() as s:
        dep = s.scalars(select(Deployment.id).where(Deployment.camera_id == "C1")).first()
        s.add(Observation(deployment_id=dep, media_id=mid, observation_type="animal", scientific_name=sci,
                          classification_method="machine", classification_probability=0.9, extra=extra or {}))


def test_rules_file_mistakes_are_named() -> None:
    with pytest.raises(RulesError, match="kind 'poacher' is not one of"):
        parse_rules("rules: [{name: x, kind: poacher}]")
    with pytest.raises(RulesError, match="zone 'core' is not defined"):
        parse_rules("rules: [{name: x, kind: person, zones: [core]}]")
    with pytest.raises(RulesError, match="unknown field"):
        parse_rules("rules: [{name: x, kind: person, colour: red}]")
    with pytest.raises(RulesError, match="needs 'species"):
        parse_rules("rules: [{name: x, kind: species}]")
    with pytest.raises(RulesError, match="not valid YAML"):
        parse_rules("rules: [")
    assert 4000 < distance_m((131.45, 43.18), (131.50, 43.19)) < 4400  # about 4.2 km


def test_facts_from_the_store_fire_the_right_rules(workspace: Workspace) -> None:
    add_camera(workspace, "C1")
    rules = parse_rules(RULES)
    mid = _photo(workspace, "C1", 1)  # a grey (night) frame inside the core zone, 4.2 km from Barabash
    _det(workspace, mid, "person", 0.7)
    _det(workspace, mid, "vehicle", 0.9)
    _det(workspace, mid, "fire", 0.6)
    _det(workspace, mid, "smoke", 0.6, repeat=True)
    _obs(workspace, mid, "Panthera tigris altaica")
    _obs(workspace, mid, "Panthera pardus orientalis", {"reid": {"is_new": True, "candidate": "SC_026", "score": 0.3}})
    with workspace.db.session() as s:
        facts = media_facts(s, mid)
    assert facts is not None and facts.camera_id == "C1" and facts.lonlat == (131.45, 43.18)
    hits = {h.rule.name: h for h in evaluate(rules, facts)}
    # The frame's camera hour (23:05) says night; the vehicle rule wants day; the tiger is 4.2 km out.
    assert set(hits) == {"people-at-night-in-core", "fire", "unknown-leopard"}, set(hits)
    assert hits["people-at-night-in-core"].evidence["zones"] == ["core"]
    assert hits["unknown-leopard"].evidence["reid"]["candidate"] == "SC_026"
    assert "smoke" not in {h.rule.kind for h in evaluate(parse_rules("rules: [{kind: smoke}]"), facts)}, \
        "a repeat-flagged box never alerts"
    near = parse_rules(RULES.replace("within_m: 3000}\n  - {name: leopards", "within_m: 5000}\n  - {name: leopards"))
    assert "tigers-near-villages" in {h.rule.name for h in evaluate(near, facts)}
    outside = parse_rules(RULES.replace("[131.30, 43.10], [131.60, 43.10]", "[131.50, 43.10], [131.60, 43.10]")
                          .replace("[131.60, 43.30], [131.30, 43.30]", "[131.60, 43.30], [131.50, 43.30]"))
    assert "people-at-night-in-core" not in {h.rule.name for h in evaluate(outside, facts)}


def test_one_alert_per_camera_and_kind_in_the_window_and_never_twice_per_photo(workspace: Workspace) -> None:
    add_camera(workspace, "C1")
    add_camera(workspace, "C2")
    worker = LiveWorker(workspace, parse_rules("window_minutes: 30\nrules: [{name: people, kind: person}]"))
    ids = [_photo(workspace, "C1", i) for i in range(1, 4)] + [_photo(workspace, "C2", 9, (131.2, 43.0))]
    for mid in ids:
        _det(workspace, mid, "person")
    assert worker.drain() == 4
    with workspace.db.session() as s:
        alerts = {a.camera_id: a for a in s.scalars(select(Alert))}
        assert set(alerts) == {"C1", "C2"}
        assert alerts["C1"].details["sightings"] == 3
        events = s.scalar(select(func.count()).select_from(AlertEvent).where(AlertEvent.action == "sighting"))
        assert events == 2
    # Processing the same photos again (a restart after a crash) adds nothing.
    worker.alert_on(ids)
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 2
        assert s.scalar(select(func.count()).select_from(AlertEvent)) == 4
        # Past the window, a new sighting is a new alert.
        old = s.get(Alert, alerts["C1"].id)
        old.updated = old.updated - timedelta(minutes=31)
    later = _photo(workspace, "C1", 20)
    _det(workspace, later, "person")
    worker.drain()
    with workspace.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Alert).where(Alert.camera_id == "C1")) == 2


def test_lifecycle_new_acknowledged_resolved_with_audit_trail(workspace: Workspace) -> None:
    add_camera(workspace, "C1")
    mid = _photo(workspace, "C1", 1)
    _det(workspace, mid, "person")
    LiveWorker(workspace, parse_rules("rules: [{kind: person}]")).drain()
    with workspace.db.session() as s:
        alert = s.scalars(select(Alert)).one()
        with pytest.raises(lifecycle.AlertError, match="give an outcome"):
            lifecycle.resolve(s, alert.id, "ivanov", " ")
        lifecycle.acknowledge(s, alert.id[:8], "ivanov")
        lifecycle.acknowledge(s, alert.id, "petrov")  # a second ack is recorded, the first who stays
    with workspace.db.session() as s:
        lifecycle.resolve(s, alert.id, "petrov", "false alarm: our patrol")
    with workspace.db.session() as s:
        a = s.get(Alert, alert.id)
        assert a.status == "resolved" and a.acknowledged_by == "ivanov" and a.resolved_by == "petrov"
        assert a.outcome == "false alarm: our patrol" and a.acknowledged <= a.resolved
        assert [e.action for e in lifecycle.history(s, a.id)] == ["created", "acknowledged", "acknowledged", "resolved"]
        with pytest.raises(lifecycle.AlertError, match="already resolved"):
            lifecycle.acknowledge(s, a.id, "x")
        assert [x.id for x in lifecycle.list_alerts(s, "open")] == []
        assert [x.id for x in lifecycle.list_alerts(s, "resolved")] == [a.id]
        payload = lifecycle.alert_payload(s, a)
        assert payload["location"]["latitude"] == 43.18 and payload["kind"] == "person"


def test_an_animal_box_the_taught_head_calls_a_person_alerts_as_a_person(workspace: Workspace) -> None:
    """At night the detector often boxes a walker as an "animal"; a head taught on reviewed people
    names that box Homo sapiens, and the person rule must see it."""
    add_camera(workspace, "C1")
    rules = parse_rules("rules: [{name: people, kind: person, min_score: 0.5}]")
    mid = _photo(workspace, "C1", 3)
    _det(workspace, mid, "animal", 0.4)
    with workspace.db.session() as s:
        facts = media_facts(s, mid)
    assert facts is not None and not evaluate(rules, facts), "an animal box alone is not a person"
    with workspace.db.session() as s:
        dep = s.scalars(select(Deployment.id).where(Deployment.camera_id == "C1")).first()
        s.add(Observation(deployment_id=dep, media_id=mid, observation_type="human", scientific_name="Homo sapiens",
                          bbox_x=0.1, bbox_y=0.1, bbox_width=0.2, bbox_height=0.4, classification_method="machine",
                          classified_by="species-head@abc+dinov2", classification_probability=0.83,
                          extra={"stage": "species"}))
    with workspace.db.session() as s:
        facts = media_facts(s, mid)
    assert facts is not None
    [hit] = evaluate(rules, facts)
    assert hit.rule.name == "people" and hit.evidence["best_score"] == 0.83
    assert hit.evidence["boxes"][0]["model"] == "species-head@abc+dinov2"
