"""One decision per encounter: the proposals of one burst ranked together, in the store.

A camera trap fires a burst of frames a second apart: one animal passing, seen from a few
angles, sometimes with its flank half out of frame in one of them. Deciding each frame alone
lets one lucky match on a rock outvote two frames that found the right cat; deciding them
together (:func:`pardus.reid.match.decide_encounter`, what ``bench/reid.py`` measures per
encounter) does not. An *encounter* here is the current re-id proposals on the photos of one
burst (``Media.sequence_id``) at one deployment; a photo without a sequence is its own.

Each proposal keeps its own photo's evidence in ``extra["reid"]["photo"]`` (every verified
candidate with its raw score and flank, the unverified ones, the photo's own "new" call and
whether its box may be called new at all), the form :func:`photo_result` rebuilds a
:class:`~pardus.reid.match.MatchResult` from. Whenever a photo of the burst is written, the
*undecided* proposals of the burst are ranked together and each gets the combined decision at
the top level, where the desk and the alert room read it (``candidates``, ``is_new``,
``new_probability``), and an ``encounter`` block saying which proposals were combined and how
many photos found each candidate. Proposals a person decided are left exactly as they are and
take no part in the ranking: the person's word is better evidence about that photo than the
machine's, whose stored match may predate the catalogue (it counts once the photo is confirmed,
as a catalogue photo the others are matched against; `pardus reid run --rematch`).

Which proposals are combined: those on photos with exactly one proposal. A photo with two
animals (a mother and her cub) cannot say which of its boxes is the same animal as the next
frame's without tracking, so each of its boxes is decided alone. Two animals passing one after
the other within the sequence's minute are told apart when two frames each name a different cat
decisively (:func:`pardus.reid.match.split_animals`); each is then an encounter of its own.

"New" is said once per encounter (the sequence): a group is new when its combined best is below
the calibration's threshold and at least one of its boxes may be called new (a coat-patterned
species for sure, enough coat; see :class:`pardus.reid.stage.ReidStage`). One proposal carries
``is_new``: the one that said it before (an alert may already name it; a person may have decided
it), else the photo just written (the alert room reads the photos just processed), else the
earliest eligible one; the others name it in ``new_in_encounter``. When a later frame makes the
encounter known, ``is_new`` is taken back from the undecided proposals (an alert already raised
stays raised; a person closes it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pardus.reid.match import (
    FLANK_UNKNOWN,
    Calibration,
    Candidate,
    EncounterDecision,
    MatchResult,
    PhotoMatch,
    decide_encounter,
    split_animals,
)
from pardus.store.models import Media, Observation

Names = dict[str, tuple[str, str | None]]  # individual id -> (code, name)


def candidate_entries(res: MatchResult, names: Names, keep: int, photo_ref: Callable[[PhotoMatch], str | None]
                      ) -> list[dict[str, Any]]:
    """A photo's ranked candidates as a proposal stores them: every verified one (with its raw
    score, the form :func:`photo_result` reads back), then unverified ones up to ``keep`` in all.

    ``photo_ref`` names a matched catalogue photo (the stage: its observation id)."""
    cands: list[dict[str, Any]] = []
    for c in res.candidates[:keep]:
        code, name = names.get(c.individual, (c.individual, None))
        photos = [ref for p in c.photos if (ref := photo_ref(p))]
        cands.append({"individual_id": c.individual, "code": code, "name": name, "score": round(c.score, 4),
                      "probability": round(c.probability, 4), "flank": c.flank, "photos": photos,
                      "inliers": int(sum(len(p.query_idx) for p in c.photos)), "verified": True})
    shown = {c["individual_id"] for c in cands}
    for ind in res.unverified:
        if len(cands) >= keep:
            break
        if ind in shown:
            continue
        code, name = names.get(ind, (ind, None))
        cands.append({"individual_id": ind, "code": code, "name": name, "score": None, "probability": None,
                      "flank": None, "photos": [], "inliers": 0, "verified": False})
    return cands


def photo_block(res: MatchResult, cands: list[dict[str, Any]], *, may_be_new: bool, withheld: str | None,
                calibration: Calibration) -> dict[str, Any]:
    """One photo's own evidence, as ``extra["reid"]["photo"]`` keeps it: its candidates, its own
    "new" call, whether its box may be called new at all (``new_withheld``: why not), and the
    calibration it was matched under (the encounter is decided with the newest photo's, in the
    store's writer, which has no workspace to read the park's calibration from)."""
    return {"candidates": cands, "is_new": bool(res.is_new and may_be_new),
            "new_probability": round(float(res.new_probability), 4), "flank": res.flank,
            "n_features": res.n_features, "may_be_new": may_be_new, "new_withheld": withheld,
            "calibration": asdict(calibration)}


def photo_result(block: dict[str, Any]) -> MatchResult:
    """The photo's :class:`MatchResult` rebuilt from its stored block (or from a proposal written
    before encounter decisions, whose top level was its photo's own): scores, flanks and the
    unverified ones, without the matched pairs, which a combined ranking does not need."""
    verified, unverified = [], []
    for c in block.get("candidates") or []:
        if c.get("verified", True) and c.get("score") is not None:
            verified.append(Candidate(str(c["individual_id"]), c.get("flank") or FLANK_UNKNOWN, float(c["score"]),
                                      float(c.get("probability") or 0.0)))
        else:
            unverified.append(str(c["individual_id"]))
    return MatchResult(verified, int(block.get("n_features") or 0), block.get("flank"), bool(block.get("is_new")),
                       float(block.get("new_probability", 1.0)), unverified=unverified)


def encounter_entries(dec: EncounterDecision, blocks: Sequence[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """The combined ranking in the same form as a photo's candidates: ``score`` is the mean over the
    photos (the scale the calibration is for), ``photos`` the catalogue photos the encounter's
    photos matched (the best photo's first), ``inliers`` the most spots one photo lined up, and
    ``support`` how many of the encounter's photos verified it."""
    per: dict[str, list[dict[str, Any]]] = {}
    for b in blocks:
        for c in b.get("candidates") or []:
            per.setdefault(str(c["individual_id"]), []).append(c)
    out: list[dict[str, Any]] = []
    for c in dec.result.candidates[:keep]:
        seen = sorted((e for e in per.get(c.individual, []) if e.get("verified", True) and e.get("score") is not None
                       and (e.get("flank") or FLANK_UNKNOWN) == c.flank), key=lambda e: -float(e["score"]))
        first = (per.get(c.individual) or [{}])[0]
        photos = list(dict.fromkeys(p for e in seen for p in e.get("photos") or []))
        out.append({"individual_id": c.individual, "code": first.get("code", c.individual), "name": first.get("name"),
                    "score": round(c.score, 4), "probability": round(c.probability, 4), "flank": c.flank,
                    "photos": photos, "inliers": max((int(e.get("inliers") or 0) for e in seen), default=0),
                    "verified": True, "support": dec.support.get(c.individual, 0)})
    shown = {c["individual_id"] for c in out}
    for ind in dec.result.unverified:
        if len(out) >= keep:
            break
        if ind in shown:
            continue
        first = (per.get(ind) or [{}])[0]
        out.append({"individual_id": ind, "code": first.get("code", ind), "name": first.get("name"), "score": None,
                    "probability": None, "flank": None, "photos": [], "inliers": 0, "verified": False, "support": 0})
    return out


def _reid(obs: Observation) -> dict[str, Any]:
    return dict((obs.extra or {}).get("reid") or {})


def _photo(data: dict[str, Any]) -> dict[str, Any]:
    """A proposal's own photo evidence; a proposal written before encounter decisions kept it at
    its top level (top five candidates), which is read once and then kept as its ``photo``."""
    if "photo" in data:
        return dict(data["photo"])
    own = {k: data.get(k) for k in ("candidates", "is_new", "new_probability", "flank", "n_features")}
    return {**own, "may_be_new": not data.get("new_withheld"), "new_withheld": data.get("new_withheld")}


def encounter_proposals(s: Session, media: Media, model_key: str) -> list[Observation]:
    """The current proposals of ``media``'s encounter, in photo time order (then file, then id)."""
    if media.sequence_id is None:
        photos = [(media.id, media.timestamp, media.file_path)]
    else:
        photos = list(s.execute(select(Media.id, Media.timestamp, Media.file_path).where(
            Media.deployment_id == media.deployment_id, Media.sequence_id == media.sequence_id)).all())
    order = {mid: k for k, (mid, _, _) in enumerate(sorted(
        photos, key=lambda r: (r[1] is None, r[1].timestamp() if r[1] else 0.0, r[2] or "")))}
    props = s.scalars(select(Observation).where(Observation.media_id.in_(list(order)),
                                                Observation.classified_by == model_key,
                                                Observation.superseded_by.is_(None)))
    return sorted(props, key=lambda o: (order[o.media_id or ""], o.id))


def stored_calibration(props: Sequence[Observation], media_id: str) -> Calibration:
    """The calibration ``media_id``'s proposals were matched under, else the newest proposal's, else
    the default: stored scores are raw, so the whole encounter is decided on one current curve."""
    def fit(o: Observation) -> dict[str, Any] | None:
        return _photo(_reid(o)).get("calibration")

    def written(o: Observation) -> float:
        return o.classification_timestamp.timestamp() if o.classification_timestamp else 0.0

    mine = [o for o in props if o.media_id == media_id and fit(o)]
    rest = sorted((o for o in props if fit(o)), key=written, reverse=True)
    found = fit((mine or rest)[0]) if (mine or rest) else None
    return Calibration(**found) if found else Calibration()


def decide_proposals(s: Session, media: Media, model_key: str, calibration: Calibration | None = None, *,
                     keep: int = 5) -> None:
    """Decide ``media``'s encounter again over its current proposals and store the decision on the
    undecided ones (see the module docstring). Called after ``media``'s proposals are written
    (also when it has none left: a rerun that boxed nothing changes its burst's decision)."""
    props = encounter_proposals(s, media, model_key)
    if not props:
        return
    calibration = calibration or stored_calibration(props, media.id)
    per_photo: dict[str, int] = {}
    for o in props:
        per_photo[o.media_id or ""] = per_photo.get(o.media_id or "", 0) + 1
    # a person's decision is better evidence than the machine's about that photo (whose stored
    # match may be older than the catalogue): decided proposals take no part in the ranking
    undecided = [o for o in props if not _reid(o).get("decision")]
    combined = [o for o in undecided if per_photo[o.media_id or ""] == 1]
    results = [photo_result(_photo(_reid(o))) for o in combined]
    groups = [[combined[i] for i in g] for g in split_animals(results, calibration)]
    groups += [[o] for o in undecided if per_photo[o.media_id or ""] > 1]
    decisions = []
    for group in groups:
        blocks = [_photo(_reid(o)) for o in group]
        dec = decide_encounter([photo_result(b) for b in blocks], calibration)
        eligible = [o for o, b in zip(group, blocks, strict=True) if b.get("may_be_new")]
        decisions.append((group, blocks, dec, eligible, bool(dec.result.is_new and eligible)))

    new_groups = [d for d in decisions if d[4]]
    holder: Observation | None = None
    if new_groups:
        members = [o for d in new_groups for o in d[0]]
        # the encounter's "new" stays where it was said (an alert may name it; a person may have
        # decided it); the photo just written starts with its own call, which is not "said before"
        said = [o for o in props if _reid(o).get("is_new") is True
                and (_reid(o).get("decision") or (o in members and o.media_id != media.id))]
        holder = (next(iter(said), None)
                  or next((o for o in members if o.media_id == media.id), None)
                  or next((o for d in new_groups for o in d[3]), None)
                  or members[0])
    for group, blocks, dec, eligible, says_new in decisions:
        cands = encounter_entries(dec, blocks, keep)
        withheld = None
        if dec.result.is_new and not eligible:
            withheld = next((b.get("new_withheld") for b in blocks if b.get("new_withheld")), None)
        block = {"proposals": [o.id for o in group], "photos": len(group),
                 "support": dict(sorted(dec.support.items(), key=lambda kv: -kv[1])),
                 "flank": dec.result.flank}
        best = next((c for c in cands if c["verified"]), None)
        for o, own in zip(group, blocks, strict=True):
            data = _reid(o)
            data.update({"photo": own, "candidates": cands,
                         "new_probability": round(float(dec.result.new_probability), 4),
                         "is_new": says_new and o is holder,
                         "new_in_encounter": holder.id if says_new and holder is not None and o is not holder
                         else None,
                         "new_withheld": withheld, "encounter": block})
            o.extra = {**(o.extra or {}), "reid": data}
            o.classification_probability = best["probability"] if best else None
