"""Alert rules are data: a YAML file a park's staff edit, not code.

A rule says which fact raises an alert and where or when it counts::

    window_minutes: 30            # one alert per camera and kind within this window
    zones:                        # polygons on the map, [longitude, latitude] corners
      core: [[131.30, 43.10], [131.60, 43.10], [131.60, 43.30], [131.30, 43.30]]
    villages:                     # points, [longitude, latitude]
      Barabash: [131.50, 43.19]
    rules:
      - {name: people, kind: person, when: any}
      - {name: cars-at-night-in-core, kind: vehicle, when: night, zones: [core]}
      - {name: fire, kind: fire}
      - {name: tigers-near-villages, kind: species, species: [Panthera tigris], near: [Barabash], within_m: 3000}
      - {name: unknown-leopard, kind: new-individual}
      - {name: offline, kind: camera-offline}
    channels: [...]               # see pardus.alerts.notify

The facts are read from the store for one photo (``MediaFacts``): detection boxes by category
(repeat-flagged boxes never count; an animal box the park's taught species head calls
``Homo sapiens`` counts as a person), machine observations' species, the re-identification
stage's ``extra['reid']['is_new']`` (current, undecided proposals; at most one alert per encounter),
whether the frame is a night (infrared) frame, and where the camera stands.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.store.models import Alert, Deployment, Detection, Location, Media, Observation

DETECTION_KINDS = ("person", "vehicle", "fire", "smoke")
MEDIA_KINDS = (*DETECTION_KINDS, "species", "new-individual")
CAMERA_KINDS = ("camera-offline", "camera-tampered")
# Facts from outside the cameras: a satellite fire hotspot in the park or within ``within_m`` of its
# outline raises a "fire" alert at the nearest camera (pardus.telemetry.fire); ``min_score`` is the
# least FIRMS confidence in percent (VIIRS low/nominal/high count as 0/50/100). A sensor reading at or
# above ``above`` and/or risen by ``rise`` within ``over_minutes`` raises a "fire" alert (smoke and PM2.5
# sensors) or a "sensor" alert at the nearest camera within ``within_m``. A collared animal (of
# ``species``, if given) whose track leaves the park (its ``zones``, else the hull of the camera
# locations) and comes within ``within_m`` of a village (``near``, else any) raises "conflict".
# A combination raises one "fire" alert at a camera when ``min_signals`` (default all) of its
# ``signals`` (smoke: the camera's own smoke/fire alert; sensor: a reading reaching ``above`` and/or
# risen by ``rise``; hotspot: a FIRMS hotspot) lie within ``within_m`` of it in ``over_minutes``.
SOURCE_KINDS = ("hotspot", "sensor", "conflict", "combination")
SIGNALS = ("smoke", "sensor", "hotspot")
KINDS = (*MEDIA_KINDS, *CAMERA_KINDS, *SOURCE_KINDS)
SEVERITY = {"person": "high", "vehicle": "high", "fire": "critical", "smoke": "high", "species": "medium",
            "new-individual": "medium", "camera-offline": "low", "camera-tampered": "high", "hotspot": "critical",
            "sensor": "high", "conflict": "high", "combination": "critical"}


class RulesError(ValueError):
    """The rules file is wrong; the message names the rule and what to write instead."""


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    when: str = "any"  # any | night | day
    zones: tuple[str, ...] = ()
    species: tuple[str, ...] = ()
    near: tuple[str, ...] = ()
    within_m: float = 2000.0
    min_score: float | None = None
    severity: str = ""
    # sensor rules: which reading kinds (empty: any), a level to reach and/or a rise within over_minutes
    readings: tuple[str, ...] = ()
    above: float | None = None
    rise: float | None = None
    over_minutes: float = 60.0
    # combination rules: which signals must agree, and how many of them (0: all)
    signals: tuple[str, ...] = ()
    min_signals: int = 0


@dataclass
class RuleSet:
    rules: list[Rule]
    window_minutes: float = 30.0
    zones: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    villages: dict[str, tuple[float, float]] = field(default_factory=dict)
    channels: list[dict[str, Any]] = field(default_factory=list)

    def for_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.rules if r.kind == kind]


DEFAULT_RULES = """
window_minutes: 30
rules:
  - {name: person, kind: person}
  - {name: vehicle, kind: vehicle}
  - {name: fire, kind: fire}
  - {name: smoke, kind: smoke}
  - {name: new-individual, kind: new-individual}
  - {name: camera-offline, kind: camera-offline}
  - {name: camera-tampered, kind: camera-tampered}
  - {name: fire-hotspot, kind: hotspot, within_m: 5000}
"""


def _pairs(value: Any, what: str) -> list[tuple[float, float]]:
    try:
        pts = [(float(p[0]), float(p[1])) for p in value]
    except (TypeError, ValueError, IndexError) as exc:
        raise RulesError(f"{what} must be a list of [longitude, latitude] pairs") from exc
    return pts


def parse_rules(text: str, source: str = "rules") -> RuleSet:
    """Read and check a rules document; every mistake is reported with the rule's name."""
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise RulesError(f"{source} is not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise RulesError(f"{source} must be a mapping with 'rules:' (see docs/live.md)")
    zones = {str(k): _pairs(v, f"zone {k!r}") for k, v in (doc.get("zones") or {}).items()}
    for name, pts in zones.items():
        if len(pts) < 3:
            raise RulesError(f"zone {name!r} needs at least 3 corners")
    villages: dict[str, tuple[float, float]] = {}
    for k, v in (doc.get("villages") or {}).items():
        pts = _pairs([v], f"village {k!r}")
        villages[str(k)] = pts[0]
    rules = []
    for i, raw in enumerate(doc.get("rules") or []):
        if not isinstance(raw, dict):
            raise RulesError(f"rule #{i + 1} in {source} must be a mapping like {{name: people, kind: person}}")
        name = str(raw.get("name") or f"rule-{i + 1}")
        unknown = set(raw) - {f for f in Rule.__dataclass_fields__}
        if unknown:
            raise RulesError(f"rule {name!r}: unknown field(s) {', '.join(sorted(unknown))}")
        kind = raw.get("kind")
        if kind not in KINDS:
            raise RulesError(f"rule {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
        when = raw.get("when", "any")
        if when not in ("any", "night", "day"):
            raise RulesError(f"rule {name!r}: when must be any, night or day, not {when!r}")
        rule = Rule(
            name=name, kind=kind, when=when,
            zones=tuple(raw.get("zones") or ()), species=tuple(raw.get("species") or ()),
            near=tuple(raw.get("near") or ()), within_m=float(raw.get("within_m", 2000.0)),
            min_score=None if raw.get("min_score") is None else float(raw["min_score"]),
            severity=str(raw.get("severity") or SEVERITY[kind]),
            readings=tuple(str(k) for k in raw.get("readings") or ()),
            above=None if raw.get("above") is None else float(raw["above"]),
            rise=None if raw.get("rise") is None else float(raw["rise"]),
            over_minutes=float(raw.get("over_minutes", 60.0)),
            signals=tuple(str(x) for x in raw.get("signals") or ()),
            min_signals=raw.get("min_signals") or 0,
        )
        if kind == "sensor" and rule.above is None and rule.rise is None:
            raise RulesError(f"rule {name!r}: a sensor rule needs 'above: LEVEL' and/or 'rise: AMOUNT' "
                             "(with 'over_minutes', default 60)")
        for z in rule.zones:
            if z not in zones:
                raise RulesError(f"rule {name!r}: zone {z!r} is not defined under 'zones:'")
        for v in rule.near:
            if v not in villages:
                raise RulesError(f"rule {name!r}: village {v!r} is not defined under 'villages:'")
        if kind == "combination" and (not rule.signals or set(rule.signals) - set(SIGNALS)
                                      or not isinstance(rule.min_signals, int)
                                      or not 0 <= rule.min_signals <= len(rule.signals)):
            raise RulesError(f"rule {name!r}: a combination needs 'signals:' from {', '.join(SIGNALS)} and "
                             "'min_signals' between 1 and their number (0 or none: all of them)")
        if kind == "combination" and "sensor" in rule.signals and rule.above is None and rule.rise is None:
            raise RulesError(f"rule {name!r}: a combination with the sensor signal needs 'above' and/or 'rise'")
        if kind == "conflict" and not villages:
            raise RulesError(f"rule {name!r}: a conflict rule needs villages: list them under 'villages:' as "
                             "Name: [longitude, latitude] (and name some with 'near:', else every one counts)")
        if kind == "species" and not rule.species:
            raise RulesError(f"rule {name!r}: a species rule needs 'species: [Scientific name, ...]'")
        rules.append(rule)
    channels = list(doc.get("channels") or [])
    return RuleSet(rules, float(doc.get("window_minutes", 30)), zones, villages, channels)


def load_rules(path: Path | None) -> RuleSet:
    """The rules file if it exists, else the defaults (every kind alerts, no delivery channels)."""
    if path is not None and path.is_file():
        return parse_rules(path.read_text(), str(path))
    return parse_rules(DEFAULT_RULES, "the default rules")


# --- facts ------------------------------------------------------------------------------


@dataclass
class MediaFacts:
    """What the store knows about one photo, as far as alerts care."""

    media_id: str
    camera_id: str | None
    deployment_id: str
    timestamp: datetime | None
    night: bool
    lonlat: tuple[float, float] | None
    sensitive: bool
    boxes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    species: dict[str, float] = field(default_factory=dict)
    new_individual: dict[str, Any] | None = None


def is_night(media: Media, thumbnail: bytes | None) -> bool:
    """Infrared frames are night whatever the clock says; without a picture, the camera's hour."""
    extra = media.extra or {}
    if "ir_night" in extra:
        return bool(extra["ir_night"])
    if thumbnail:
        from PIL import Image

        from pardus.pipeline.daynight import IR_CHROMA_THRESHOLD, chroma

        return chroma(Image.open(io.BytesIO(thumbnail))) < IR_CHROMA_THRESHOLD
    hour = media.camera_time.hour if media.camera_time else None
    return hour is not None and (hour >= 20 or hour < 5)


def media_facts(s: Session, media_id: str, thumbnail: bytes | None = None) -> MediaFacts | None:
    media = s.get(Media, media_id)
    if media is None:
        return None
    dep = s.get(Deployment, media.deployment_id)
    loc = s.get(Location, dep.location_id) if dep is not None and dep.location_id else None
    lonlat = (loc.longitude, loc.latitude) if loc and loc.longitude is not None and loc.latitude is not None else None
    facts = MediaFacts(
        media_id=media.id,
        camera_id=(dep.camera_id if dep else None) or (media.extra or {}).get("camera_id"),
        deployment_id=media.deployment_id,
        timestamp=media.timestamp,
        night=is_night(media, thumbnail),
        lonlat=lonlat,
        sensitive=bool(loc and loc.sensitive),
    )
    for det in s.scalars(select(Detection).where(Detection.media_id == media_id, Detection.repeat.is_(False))):
        facts.boxes.setdefault(det.category, []).append(
            {"score": round(det.score, 3), "box": [det.x, det.y, det.w, det.h], "model": det.model_name})
    for obs in s.scalars(select(Observation).where(Observation.media_id == media_id,
                                                   Observation.classification_method == "machine")):
        if obs.scientific_name:
            p = obs.classification_probability or 0.0
            facts.species[obs.scientific_name] = max(p, facts.species.get(obs.scientific_name, 0.0))
        if obs.observation_type == "human" and obs.bbox_width and (obs.extra or {}).get("stage") == "species":
            # An "animal" box that the park's taught head calls a person: a person for the rules.
            facts.boxes.setdefault("person", []).append(
                {"score": round(obs.classification_probability or 0.0, 3),
                 "box": [obs.bbox_x, obs.bbox_y, obs.bbox_width, obs.bbox_height], "model": obs.classified_by})
        reid = (obs.extra or {}).get("reid")
        if (isinstance(reid, dict) and reid.get("is_new") is True and obs.superseded_by is None
                and not reid.get("decision")):
            facts.new_individual = {"observation_id": obs.id, **{k: v for k, v in reid.items() if k != "is_new"}}
    if facts.new_individual is not None:
        facts.new_individual["encounter_alert"] = encounter_alert(s, media)
    return facts


def encounter_alert(s: Session, media: Media) -> str | None:
    """The "unknown individual" alert another photo of this encounter (its burst at this deployment)
    already raised: one animal passing the camera is one alert, however many frames say "new"
    (even when the first alert was resolved before the last frame was processed)."""
    if media.sequence_id is None:
        return None
    burst = select(Media.id).where(Media.deployment_id == media.deployment_id,
                                   Media.sequence_id == media.sequence_id, Media.id != media.id)
    return s.scalars(select(Alert.id).where(Alert.kind == "new-individual", Alert.media_id.in_(burst))).first()


# --- geometry -----------------------------------------------------------------------------


def inside_polygon(point: tuple[float, float], polygon: list[tuple[float, float]]) -> bool:
    from matplotlib.path import Path as MplPath

    return bool(MplPath(polygon).contains_point(point))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two [longitude, latitude] points (haversine, metres)."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000.0 * math.asin(math.sqrt(h))


@dataclass
class Hit:
    """A rule that fired on a photo, with the evidence a ranger sees in the message."""

    rule: Rule
    evidence: dict[str, Any]


def _where_ok(rule: Rule, rules: RuleSet, facts: MediaFacts) -> tuple[bool, dict[str, Any]]:
    info: dict[str, Any] = {}
    if rule.when == "night" and not facts.night:
        return False, info
    if rule.when == "day" and facts.night:
        return False, info
    if rule.zones:
        if facts.lonlat is None:
            return False, info  # a camera without a location cannot be placed in a zone
        zones = [z for z in rule.zones if inside_polygon(facts.lonlat, rules.zones[z])]
        if not zones:
            return False, info
        info["zones"] = zones
    if rule.near:
        if facts.lonlat is None:
            return False, info
        close = {v: round(distance_m(facts.lonlat, rules.villages[v])) for v in rule.near}
        close = {v: d for v, d in close.items() if d <= rule.within_m}
        if not close:
            return False, info
        info["near"] = close
    return True, info


def evaluate(rules: RuleSet, facts: MediaFacts) -> list[Hit]:
    """Every rule that fires on this photo (at most one hit per kind: the first matching rule)."""
    hits: dict[str, Hit] = {}
    for rule in rules.rules:
        if rule.kind in hits or rule.kind in CAMERA_KINDS or rule.kind in SOURCE_KINDS:
            continue
        evidence: dict[str, Any] = {}
        if rule.kind in DETECTION_KINDS:
            boxes = [b for b in facts.boxes.get(rule.kind, [])
                     if rule.min_score is None or b["score"] >= rule.min_score]
            if not boxes:
                continue
            evidence = {"count": len(boxes), "best_score": max(b["score"] for b in boxes), "boxes": boxes[:5]}
        elif rule.kind == "species":
            found = {sp: p for sp, p in facts.species.items()
                     if any(sp == want or sp.startswith(want + " ") for want in rule.species)
                     and (rule.min_score is None or p >= rule.min_score)}
            if not found:
                continue
            evidence = {"species": found}
        elif rule.kind == "new-individual":
            if facts.new_individual is None or facts.new_individual.get("encounter_alert"):
                continue  # nothing new, or its encounter has raised its alert already
            evidence = {"reid": facts.new_individual}
        ok, where = _where_ok(rule, rules, facts)
        if ok:
            hits[rule.kind] = Hit(rule, {**evidence, **where, "night": facts.night})
    return list(hits.values())
