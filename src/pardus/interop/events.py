"""Event-level observations from people's photo-by-photo review, for every format that publishes events.

People review in Pardus photo by photo (the review desk and the catalogue write media-level human
observations); Camtrap DP consumers and GBIF's standard conversion (camtrapdp ``write_dwc``) take
their records from event-level observations only. Without this step a reviewed season reaches GBIF
as the machine's event calls alone. One function derives the events, so the Camtrap DP package and
the Darwin Core Archive publish the same verified records.

An event is what Pardus calls a sequence (a burst: ``Media.sequence_id``, the event id the pipeline
and Camtrap DP import use); a photo without a sequence is an event of its own. Within an event,
people's observations are grouped by what they say (type, taxon, individual, life stage, sex); the
event's count is the most seen in one photo (a mother and two cubs in one frame are three, the same
leopard in three frames is one). Photos whose time is untrusted (a reset clock) date nothing and
are left out, as everywhere records are dated.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from pardus.ingest.timefix import untrusted_time_clause
from pardus.store.models import Media, Observation

PACKAGE_SOURCE = "camtrap-dp"  # Media.timestamp_source of photos read from a Camtrap DP package
# What makes two people's photo observations the same event observation.
GroupKey = tuple[str, str | None, str | None, str | None, str | None]


@dataclass
class HumanEvent:
    """One event-level human observation, derived from the photo-level ones it summarises."""

    id: str
    deployment_id: str
    event_id: str
    event_start: datetime
    event_end: datetime
    observation_type: str
    scientific_name: str | None
    count: int | None
    individual_id: str | None
    life_stage: str | None
    sex: str | None
    classified_by: str | None
    classification_timestamp: datetime | None
    media_ids: list[str] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The observation as the Camtrap DP writer's row mapping (same keys as its query)."""
        return {
            "id": self.id, "deployment_id": self.deployment_id, "media_id": None, "event_id": self.event_id,
            "event_start": self.event_start, "event_end": self.event_end, "media_timestamp": None,
            "observation_level": "event", "observation_type": self.observation_type, "camera_setup_type": None,
            "scientific_name": self.scientific_name, "count": self.count, "life_stage": self.life_stage,
            "sex": self.sex, "behavior": None, "individual_id": self.individual_id, "bbox_x": None,
            "bbox_y": None, "bbox_width": None, "bbox_height": None, "classification_method": "human",
            "classified_by": self.classified_by, "classification_timestamp": self.classification_timestamp,
            "classification_probability": None, "comments": None, "extra": {}, "text_hints": None,
        }  # fmt: skip


def _event_id(media_id: str, sequence_id: str | None) -> str:
    return sequence_id or media_id


def _stable_id(*parts: str | None) -> str:
    """An observation id that is the same every export, so a republished package updates, not duplicates."""
    return "ev-" + hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:24]


def human_events(s: Session, deployment_ids: Iterable[str] | None = None) -> list[HumanEvent]:
    """Event-level human observations for every event people reviewed photo by photo.

    Events that already carry an event-level human observation, and photos read from a Camtrap DP
    package (whose events are the package's to say), are left as they are: nothing is derived twice.
    Superseded decisions are ignored.
    """
    deps = set(deployment_ids) if deployment_ids is not None else None
    trusted = ~untrusted_time_clause(Media.timestamp_issues)
    q = (
        select(Observation.deployment_id, Observation.media_id, Media.sequence_id, Media.timestamp,
               Observation.observation_type, Observation.scientific_name, Observation.individual_id,
               Observation.life_stage, Observation.sex, Observation.count, Observation.classified_by,
               Observation.classification_timestamp)
        .join(Media, Media.id == Observation.media_id)
        .where(Observation.observation_level == "media", Observation.classification_method == "human",
               Observation.superseded_by.is_(None), Media.timestamp.is_not(None), trusted,
               # a package's own photos keep the package's choice of events (its round trip is exact)
               or_(Media.timestamp_source.is_(None), Media.timestamp_source != PACKAGE_SOURCE))
    )  # fmt: skip
    if deps is not None:
        q = q.where(Observation.deployment_id.in_(deps))
    already = {
        (dep, ev)
        for dep, ev in s.execute(
            select(Observation.deployment_id, Observation.event_id).where(
                Observation.observation_level == "event", Observation.classification_method == "human",
                Observation.superseded_by.is_(None), Observation.event_id.is_not(None),
            )
        )
    }
    # (deployment, event) -> key -> media -> people counted in that photo
    per_photo: dict[tuple[str, str], dict[GroupKey, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    who: dict[tuple[str, str, GroupKey], set[str]] = defaultdict(set)
    when: dict[tuple[str, str, GroupKey], datetime] = {}
    sequences: set[str] = set()
    lone: dict[str, datetime] = {}  # photos outside any sequence: an event of one photo
    for dep, mid, seq, ts, typ, name, ind, stage, sex, n, by, at in s.execute(q):
        ev = _event_id(mid, seq)
        if (dep, ev) in already:
            continue
        key: GroupKey = (typ, name, ind, stage, sex)
        photos = per_photo[dep, ev][key]
        photos[mid] = photos.get(mid, 0) + (n or 0)
        if by:
            who[dep, ev, key].add(by)
        if at is not None and ((dep, ev, key) not in when or at > when[dep, ev, key]):
            when[dep, ev, key] = at
        if seq:
            sequences.add(seq)
        else:
            lone[mid] = ts
    # An event spans all of its trusted photos, not only those a person labelled.
    span: dict[str, tuple[datetime, datetime]] = {}
    seq_list = sorted(sequences)
    for i in range(0, len(seq_list), 500):
        for seq, a, b in s.execute(
            select(Media.sequence_id, func.min(Media.timestamp), func.max(Media.timestamp))
            .where(Media.sequence_id.in_(seq_list[i : i + 500]), trusted)
            .group_by(Media.sequence_id)
        ):
            span[seq] = (a, b)
    out = []
    for (dep, ev), groups in per_photo.items():
        if ev in span:
            start, end = span[ev]
        else:
            start = end = lone[ev]
        for key, photos in groups.items():
            typ, name, ind, stage, sex = key
            most = max(photos.values())
            out.append(HumanEvent(
                id=_stable_id(dep, ev, typ, name, ind, stage, sex), deployment_id=dep, event_id=ev,
                event_start=start, event_end=end, observation_type=typ, scientific_name=name,
                count=most if most > 0 and typ not in ("blank", "unclassified") else None,
                individual_id=ind, life_stage=stage, sex=sex,
                classified_by=" | ".join(sorted(who[dep, ev, key])) or None,
                classification_timestamp=when.get((dep, ev, key)), media_ids=sorted(photos),
            ))  # fmt: skip
    out.sort(key=lambda e: (e.deployment_id, e.event_start, e.event_id, e.id))
    return out
