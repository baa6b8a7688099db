"""Conflict alerts: a collared leopard leaving the park toward a village, on a constructed track
around the Khasansky cameras and on a real fisher track (times moved to now) with a park boundary."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.telemetry.helpers import khasansky_park, movebank_text
from typer.testing import CliRunner

from pardus.alerts.rules import parse_rules
from pardus.store.models import Alert, AlertEvent, Individual
from pardus.telemetry.conflict import conflict_alerts
from pardus.telemetry.fixes import import_records, link_tag
from pardus.telemetry.movebank import parse_movebank, read_movebank

NOW = datetime.now(UTC).replace(microsecond=0)
VILLAGE = (131.42, 42.90)  # east of the cameras' hull
RULES = f"""
window_minutes: 120
villages: {{Slavyanka: [{VILLAGE[0]}, {VILLAGE[1]}], Far: [131.0, 42.0]}}
rules:
  - {{name: leopard-to-village, kind: conflict, species: [Panthera pardus], near: [Slavyanka], within_m: 3000}}
channels:
  - {{type: webhook, name: rangers, url: "http://127.0.0.1:9/hook"}}
"""


def haversine(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Written out again here, so the test does not check the code with itself."""
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


def walk(start: datetime, lon0: float, dlon: float, hours: int,
         lat: float = 42.90) -> list[tuple[datetime, float, float]]:
    return [(start + timedelta(hours=h), lon0 + dlon * h, lat) for h in range(hours)]


def _leopard(s, points, tag: str = "TAG-LEO7", code: str = "LEO_007") -> None:
    if s.scalars(select(Individual).where(Individual.code == code)).first() is None:
        s.add(Individual(code=code, scientific_name="Panthera pardus orientalis"))
        s.flush()
    import_records(s, parse_movebank(movebank_text(points, tag=tag), f"{tag}.csv"))
    link_tag(s, code, tag, by="test")


def test_leaving_toward_the_village_raises_one_alert_with_the_fixes(workspace_sqlite) -> None:
    rules = parse_rules(RULES)
    # Inside the hull at 131.28, east 0.01 deg (about 815 m) an hour: out past the hull's east corner
    # (131.337), within 3 km of the village from 131.39 on (hour 11).
    out = walk(NOW - timedelta(hours=20), 131.28, 0.01, 15)
    with workspace_sqlite.db.session() as s:
        khasansky_park(s)
        _leopard(s, out)
        rep = conflict_alerts(s, ["TAG-LEO7"], rules, now=NOW)
        assert len(rep.created) == 1 and rep.too_old == 0
        alert = s.get(Alert, rep.created[0])
        ev = alert.details["evidence"]
        assert (alert.kind, alert.camera_id, alert.details["severity"]) == ("conflict", "CAM0", "high")
        assert (ev["individual"], ev["village"], ev["tag"]) == ("LEO_007", "Slavyanka", "TAG-LEO7")
        t_hit = out[11][0]
        assert ev["time"] == t_hit.isoformat() and ev["longitude"] == pytest.approx(131.39)
        assert ev["distance_to_village_m"] == round(haversine(131.39, 42.9, *VILLAGE))
        fixes = ev["fixes"]
        # from the last fix inside the hull to the one that came within reach, each with its distance:
        # the hull's north-east edge (131.337, 42.895)-(131.25, 42.95) crosses latitude 42.90 at 131.329
        assert fixes[-1]["time"] == t_hit.isoformat() and fixes[0]["longitude"] == pytest.approx(131.32)
        assert len(fixes) == 8 and ev["fixes_left_out"] == 0
        assert [f["to_village_m"] for f in fixes] == sorted((f["to_village_m"] for f in fixes), reverse=True)
        assert all(f["to_village_m"] == round(haversine(f["longitude"], f["latitude"], *VILLAGE)) for f in fixes)
        assert alert.details["deliveries"] == {}  # no channel given to this call
        # The same fixes again raise nothing twice.
        again = conflict_alerts(s, ["TAG-LEO7"], rules, now=NOW)
        assert (again.created, again.already) == ([], 1)
        # What a chat channel or a viewer gets: the collar's places rounded to 0.1 deg, distances to the
        # kilometre (a trusted channel or a ranger gets them exact); the nearest camera's place follows
        # its location's own sensitive flag, as for every alert.
        from pardus.alerts.lifecycle import alert_payload

        exact, public = (alert_payload(s, alert, exact_location=e)["evidence"] for e in (True, False))
        assert exact == ev
        assert public["longitude"] == 131.4 and public["distance_to_village_m"] % 1000 == 0
        assert {(f["latitude"], f["longitude"]) for f in public["fixes"]} <= {(42.9, 131.3), (42.9, 131.4)}
        assert all(f["to_village_m"] % 1000 == 0 for f in public["fixes"])


def test_away_from_villages_along_the_edge_old_and_outsiders_raise_nothing(workspace_sqlite) -> None:
    rules = parse_rules(RULES)
    with workspace_sqlite.db.session() as s:
        khasansky_park(s)
        # West out of the park, away from the village.
        _leopard(s, walk(NOW - timedelta(hours=20), 131.28, -0.01, 15), tag="WEST")
        # Never inside: comes from the east right up to the village (a dispersing stranger).
        _leopard(s, walk(NOW - timedelta(hours=10), 131.50, -0.01, 10), tag="STRANGER", code="LEO_008")
        # Last year's collar data: it did walk to the village, but that wakes nobody now.
        _leopard(s, walk(NOW - timedelta(days=300), 131.28, 0.01, 15), tag="OLD", code="LEO_009")
        rep = conflict_alerts(s, ["WEST", "STRANGER", "OLD"], rules, now=NOW)
        assert rep.created == [] and rep.too_old == 1
        # A fisher's collar is not a leopard's: the rule's species leaves it out.
        import_records(s, parse_movebank(movebank_text(walk(NOW - timedelta(hours=20), 131.28, 0.01, 15),
                                                       tag="FISHER", animal="F1"), "f.csv"))
        assert conflict_alerts(s, ["FISHER"], rules, now=NOW).created == []
        # With the park's own boundary reaching past the village, leaving the hull is not leaving the park.
        wide = parse_rules(RULES.replace("villages:", "zones: {park: [[131.1, 42.7], [131.6, 42.7], [131.6, 43.1], "
                                         "[131.1, 43.1]]}\nvillages:").replace("within_m: 3000}",
                                                                               "within_m: 3000, zones: [park]}"))
        _leopard(s, walk(NOW - timedelta(hours=20), 131.28, 0.01, 15), tag="INPARK", code="LEO_010")
        assert conflict_alerts(s, ["INPARK"], wide, now=NOW).created == []
        assert conflict_alerts(s, ["INPARK"], rules, now=NOW).created != []  # the hull alone: it left


def test_a_second_excursion_joins_the_open_alert(workspace_sqlite) -> None:
    rules = parse_rules(RULES)
    start = NOW - timedelta(hours=30)
    there = walk(start, 131.28, 0.01, 12)  # out to the village (hour 11)
    back = [(start + timedelta(hours=12 + h), 131.39 - 0.01 * (h + 1), 42.90) for h in range(8)]  # home
    again = walk(start + timedelta(hours=20), 131.31, 0.01, 9)  # and out again
    with workspace_sqlite.db.session() as s:
        khasansky_park(s)
        _leopard(s, there + back + again)
        rep = conflict_alerts(s, ["TAG-LEO7"], rules, now=NOW)
        assert len(rep.created) == 1 and rep.joined == 1
        (alert,) = s.scalars(select(Alert)).all()
        sighting = s.scalars(select(AlertEvent).where(AlertEvent.alert_id == alert.id,
                                                      AlertEvent.action == "sighting")).one()
        assert sighting.details["source"] == "collar" and sighting.details["time"] > alert.details["evidence"]["time"]


def test_a_real_fisher_track_leaving_its_first_weeks_range(shared_data: Path, workspace_sqlite) -> None:
    """Fisher F1 (tag 1072, New York, 2011): the park is the box of its first week's fixes, the
    'village' the fix farthest from it; the times moved so its last fix is an hour ago."""
    parsed = read_movebank(shared_data / "telemetry-movebank" / "move2-fishers" / "fishers.csv.gz")
    recs = sorted((r for r in parsed.records if r.tag_id == "1072" and r.latitude is not None and r.visible),
                  key=lambda r: r.timestamp)
    shift = NOW - timedelta(hours=1) - recs[-1].timestamp
    pts = [(r.timestamp + shift, r.longitude, r.latitude) for r in recs]
    week = [p for p in pts if p[0] < pts[0][0] + timedelta(days=7)]
    lo_lon, hi_lon = min(p[1] for p in week), max(p[1] for p in week)
    lo_lat, hi_lat = min(p[2] for p in week), max(p[2] for p in week)
    cx, cy = (lo_lon + hi_lon) / 2, (lo_lat + hi_lat) / 2
    far = max(pts, key=lambda p: haversine(p[1], p[2], cx, cy))
    rules = parse_rules(f"""
window_minutes: 1
zones: {{range: [[{lo_lon}, {lo_lat}], [{hi_lon}, {lo_lat}], [{hi_lon}, {hi_lat}], [{lo_lon}, {hi_lat}]]}}
villages: {{farm: [{far[1]}, {far[2]}]}}
rules:
  - {{name: fisher-to-farm, kind: conflict, zones: [range], within_m: 500}}
""")
    with workspace_sqlite.db.session() as s:
        import_records(s, parse_movebank(movebank_text(pts, tag="1072", animal="F1"), "f1.csv"))
        rep = conflict_alerts(s, ["1072"], rules, now=NOW, alert_max_age=timedelta(days=400))
        assert rep.created and rep.too_old == 0
        events = [a.details["evidence"] for a in s.scalars(select(Alert))] + [
            e.details for e in s.scalars(select(AlertEvent).where(AlertEvent.action == "sighting"))]
    assert len(events) == len(rep.created) + rep.joined
    for ev in events:
        first, last = ev["fixes"][0], ev["fixes"][-1]
        inside = lo_lon <= first["longitude"] <= hi_lon and lo_lat <= first["latitude"] <= hi_lat
        assert inside or ev["fixes_left_out"] > 0  # the exit fix, unless the excursion was longer than shown
        assert all(not (lo_lon <= f["longitude"] <= hi_lon and lo_lat <= f["latitude"] <= hi_lat)
                   for f in ev["fixes"][1:])
        d_last = haversine(last["longitude"], last["latitude"], far[1], far[2])
        assert d_last <= 500 and round(d_last) == ev["distance_to_village_m"] < ev["exit_distance_to_village_m"]


def test_conflict_rules_checked_and_the_import_command_alerts(env: Path) -> None:
    from pardus.alerts.rules import RulesError
    from pardus.cli import app

    with pytest.raises(RulesError, match="needs villages"):
        parse_rules("rules:\n  - {name: c, kind: conflict}\n")
    with pytest.raises(RulesError, match="not defined under 'villages:'"):
        parse_rules("villages: {A: [1, 2]}\nrules:\n  - {name: c, kind: conflict, near: [B]}\n")
    from pardus.config import get_settings
    from pardus.store import open_workspace

    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        khasansky_park(s)
    rules = env / "rules.yaml"
    rules.write_text(RULES.replace("species: [Panthera pardus], ", ""))
    track = env / "leo.csv"
    track.write_text(movebank_text(walk(NOW - timedelta(hours=20), 131.28, 0.01, 15)))
    runner = CliRunner()
    res = runner.invoke(app, ["telemetry", "import", str(track), "--rules", str(rules)])
    assert res.exit_code == 0, res.output
    assert "15 stored" in res.output and "1 raised" in res.output
    res = runner.invoke(app, ["telemetry", "import", str(track), "--rules", str(rules)])
    assert res.exit_code == 0 and "0 stored" in res.output and "0 raised" in res.output
    with open_workspace(get_settings()) as ws, ws.db.session() as s:
        (alert,) = s.scalars(select(Alert)).all()
        assert alert.kind == "conflict" and alert.details["deliveries"]["rangers"]["status"] == "pending"
