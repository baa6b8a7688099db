"""Sequence smoothing: one decision per burst, from the evidence of all its frames.

A camera fires a burst of 3-10 photos per trigger. Frame by frame, the animal may be half out of
the picture in one (called blank) and seen from behind in another (called the wrong species);
the burst as a whole is one event of one animal. So the per-frame machine calls are pooled per
``Media.sequence_id`` (a photo without a sequence is its own event) into event-level
observations (``observation_level='event'``, ``event_id`` = the sequence, ``event_start/end``
from its frames), Camtrap DP's way of saying "this event contains ...":

- an event is ``blank`` only when every frame is blank; a blank frame inside an animal burst is
  part of the animal event (its ``extra.blank_frames`` says how many there were);
- the species of an animal event is the name with the largest summed probability over its frames
  (a probability-weighted vote; "unknown" only when no frame was named), its probability the mean
  over the frames that were classified;
- people and vehicles become their own event rows, so a poacher walking behind a deer is not
  outvoted by the deer.

The rows are machine observations ``classified_by = <species model key>+sequence``; recomputing
replaces them, and never touches human observations or the per-frame calls.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select

from pardus.models.species import HUMAN
from pardus.store import Workspace
from pardus.store.models import Media, Observation, StageState, utcnow

SUFFIX = "+sequence"


@dataclass
class _Event:
    deployment_id: str
    frames: set[str] = field(default_factory=set)
    times: list[datetime] = field(default_factory=list)
    types: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # type -> frames
    best_p: dict[str, float] = field(default_factory=dict)  # type -> best detector probability
    votes: dict[str | None, float] = field(default_factory=lambda: defaultdict(float))
    classified_frames: set[str] = field(default_factory=set)
    per_frame: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))  # (type, frame) -> n


def smooth_sequences(ws: Workspace, species_key: str, detector_key: str | None = None) -> int:
    """Write event-level observations for every sequence that has machine calls; returns how many.

    With ``detector_key`` only that detector's calls count as evidence (another detector's boxes
    of the same photos would count each animal twice); results set aside are never evidence.
    """
    event_key = species_key + SUFFIX
    with ws.db.session() as s:
        other_detectors: set[str] = set()
        if detector_key is not None:
            other_detectors = set(s.scalars(select(StageState.model).where(StageState.stage == "detect")
                                            .distinct())) - {detector_key}
        media = {mid: (dep, seq, ts) for mid, dep, seq, ts in
                 s.execute(select(Media.id, Media.deployment_id, Media.sequence_id, Media.timestamp))}
        rows = s.execute(select(Observation.media_id, Observation.observation_type, Observation.scientific_name,
                                Observation.classification_probability, Observation.classified_by,
                                Observation.count, Observation.extra)
                         .where(Observation.classification_method == "machine",
                                Observation.observation_level == "media", Observation.media_id.is_not(None),
                                Observation.superseded_by.is_(None))).all()
        events: dict[str, _Event] = {}
        for mid, kind, name, p, by, count, extra in rows:
            if mid not in media or by.endswith(SUFFIX) or by in other_detectors:
                continue
            is_species = by == species_key
            if not is_species and (extra or {}).get("stage") == "species":
                continue  # another species model's calls: not this model's evidence
            dep, seq, ts = media[mid]
            ev = events.setdefault(seq or mid, _Event(dep))
            if mid not in ev.frames:
                ev.frames.add(mid)
                if ts is not None:
                    ev.times.append(ts)
            ev.types[kind].add(mid)
            if is_species:
                ev.votes[name] += p or 0.0
                ev.classified_frames.add(mid)
                ev.per_frame["animal-species", mid] += 1
            else:
                ev.best_p[kind] = max(ev.best_p.get(kind, 0.0), p or 0.0)
                ev.per_frame[kind, mid] = max(ev.per_frame[kind, mid], count or 0)
        s.execute(delete(Observation).where(Observation.classified_by == event_key,
                                            Observation.observation_level == "event"))
        now = utcnow()
        written = 0
        for event_id, ev in events.items():
            non_blank = [k for k in ev.types if k != "blank"]
            start, end = (min(ev.times), max(ev.times)) if ev.times else (None, None)
            blank_frames = len(ev.types.get("blank", set()) - set().union(*(ev.types[k] for k in non_blank)))
            for kind in non_blank or ["blank"]:
                out_kind = kind
                name, prob = None, ev.best_p.get(kind)
                counts = [n for (k, _), n in ev.per_frame.items() if k == kind]
                extra: dict[str, object] = {"frames": len(ev.frames), "blank_frames": blank_frames,
                                            "frames_with_this": len(ev.types[kind])}
                if kind == "animal" and ev.classified_frames:
                    named = {k: v for k, v in ev.votes.items() if k is not None}
                    if named:
                        name = max(named, key=lambda k: named[k])
                    prob = min(1.0, ev.votes[name] / len(ev.classified_frames))
                    counts += [n for (k, _), n in ev.per_frame.items() if k == "animal-species"]
                    extra["votes"] = {k or "unknown": round(v, 4) for k, v in ev.votes.items()}
                    if name == HUMAN:  # the taught head says these "animal" boxes are a person
                        if "human" in non_blank:
                            continue  # the human event says it already
                        out_kind = "human"
                s.add(Observation(
                    deployment_id=ev.deployment_id, media_id=None, event_id=event_id, event_start=start,
                    event_end=end, observation_level="event", observation_type=out_kind,
                    scientific_name=name if kind == "animal" else (HUMAN if kind == "human" else None),
                    count=max(counts) if counts and kind != "blank" else None,
                    classification_method="machine", classified_by=event_key, classification_timestamp=now,
                    classification_probability=prob, extra=extra,
                ))
                written += 1
    return written
