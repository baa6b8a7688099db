"""The review desk: a season's sequences reviewed by keyboard, blanks in bulk, undo.

Everyone signed in may look; deciding needs the reviewer or admin role (a viewer's POST is 403).
The page is a shell; ``static/review.js`` asks for one sequence panel at a time (``/review/seq``)
and posts decisions (``/review/decide``), which answer with the next sequence's panel, so a
decision is one round trip. Filters travel in the query string of every request.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from pardus.people.accounts import REVIEW, Person
from pardus.review import decide as rd
from pardus.review import queue as rq
from pardus.store import Workspace
from pardus.store.models import Detection, Media, ReviewItem
from pardus.web.deps import page_person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.render import render

router = APIRouter(prefix="/review", include_in_schema=False)
KEYED_SPECIES = 9
BOX_MIN_SCORE = 0.2


def queue_filter(plot: str | None = Query(None, max_length=128), camera: str | None = Query(None, max_length=64),
                 since: date | None = None, until: date | None = None,
                 machine: str | None = Query(None, max_length=16), species: str | None = Query(None, max_length=255),
                 confidence: str | None = Query(None, max_length=8), unreviewed: bool = False,
                 disagree: bool = False, time_issues: bool = False) -> rq.QueueFilter:
    f = rq.QueueFilter(plot=plot or None, deployment_id=camera or None, since=since, until=until,
                       machine_type=machine or None, species=species or None, confidence=confidence or None,
                       unreviewed=unreviewed, disagree=disagree, time_issues=time_issues)
    try:
        return f.check()
    except rq.QueueError as exc:
        raise HTTPProblem(400, str(exc)) from exc


def _order(order: str = Query("camera-day", max_length=16)) -> str:
    if order not in rq.ORDERS:
        raise HTTPProblem(400, f"order must be one of {', '.join(rq.ORDERS)}")
    return order


def _panel(s: Any, f: rq.QueueFilter, order: str, *, at: str | None = None, after: str | None = None,
           before: str | None = None) -> dict[str, Any]:
    """Everything one sequence's panel shows, with its neighbours for next / previous / prefetch."""
    try:
        if at:
            item = s.get(ReviewItem, at[:64])
            if item is None:
                raise HTTPProblem(404, f"no sequence {at[:64]!r} in the review queue")
        else:
            rows = rq.page(s, f, order=order, after=after, before=before, limit=1)
            item = rows[0] if rows else None
        if item is None:
            return {"item": None}
        ahead = rq.page(s, f, order=order, after=item.sequence_id, limit=4)
        behind = rq.page(s, f, order=order, before=item.sequence_id, limit=1)
    except rq.QueueError as exc:
        raise HTTPProblem(400, str(exc)) from exc
    media = rq.sequence_media(s, item.sequence_id)
    ids = [m.id for m in media]
    boxes: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for d in s.scalars(select(Detection).where(Detection.media_id.in_(ids), Detection.score >= BOX_MIN_SCORE)
                       .order_by(Detection.score.desc()).limit(200)):
        boxes[d.media_id].append({"category": d.category, "score": d.score, "x": d.x, "y": d.y, "w": d.w,
                                  "h": d.h, "t": d.frame_time_s})
    ahead_media = {r.sequence_id: r.first_media_id for r in ahead}
    return {"item": item, "media": [_media(m) for m in media], "boxes": boxes,
            "next": ahead[0].sequence_id if ahead else "", "prev": behind[0].sequence_id if behind else "",
            "prefetch": list(ahead_media.values())[:3]}


def _media(m: Media) -> dict[str, Any]:
    return {"id": m.id, "file_name": m.file_name, "timestamp": m.timestamp.isoformat() if m.timestamp else None,
            "image": (m.file_mediatype or "").startswith("image/"), "issues": m.timestamp_issues}


def _species(s: Any) -> list[dict[str, Any]]:
    return [{"key": str(i + 1) if i < KEYED_SPECIES else "", "name": n, "common": c}
            for i, (n, c) in enumerate(rq.species_choices(s))]


@router.get("")
async def review_page(request: Request, at: str | None = Query(None, max_length=64),
                      f: rq.QueueFilter = Depends(queue_filter), order: str = Depends(_order),
                      who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    def q() -> dict[str, Any]:
        with ws.db.session() as s:
            empty = rq.is_empty(s)
            plots = sorted(p for (p,) in s.execute(select(ReviewItem.plot).distinct()) if p)
            cameras = sorted(c for (c,) in s.execute(select(ReviewItem.deployment_id).distinct()))
            return {"panel": _panel(s, f, order, at=at), "species": _species(s), "empty": empty,
                    "plots": plots, "cameras": cameras}

    ctx = await run_in_threadpool(q)
    return render(request, "review.html", {**ctx, "who": who, "page": "review", "f": f, "order": order,
                                           "can_decide": who.may(REVIEW), "orders": rq.ORDERS,
                                           "bands": list(rq.CONFIDENCE_BANDS), "types": rq.TYPES})


@router.get("/seq")
async def sequence_panel(request: Request, at: str | None = Query(None, max_length=64),
                         after: str | None = Query(None, max_length=64),
                         before: str | None = Query(None, max_length=64),
                         f: rq.QueueFilter = Depends(queue_filter), order: str = Depends(_order),
                         who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    def q() -> dict[str, Any]:
        with ws.db.session() as s:
            return _panel(s, f, order, at=at, after=after, before=before)

    panel = await run_in_threadpool(q)
    return render(request, "_review_seq.html", {"panel": panel, "who": who, "can_decide": who.may(REVIEW)})


@router.post("/decide")
async def decide_page(request: Request, sequence_id: str = Form(..., max_length=64),
                      action: str = Form(..., max_length=16), species: str = Form("", max_length=255),
                      count: int | None = Form(None, ge=0, le=rd.MAX_COUNT),
                      f: rq.QueueFilter = Depends(queue_filter), order: str = Depends(_order),
                      who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    def do() -> tuple[str, dict[str, Any]]:
        with ws.db.session() as s:
            try:
                decided = rd.decide(s, sequence_id, who.name, action, species=species or None, count=count)
            except rq.QueueError as exc:
                raise HTTPProblem(400, str(exc)) from exc
            s.flush()
            panel = _panel(s, f, order, after=sequence_id)
            return decided.decision_id, panel

    decision_id, panel = await run_in_threadpool(do)
    return render(request, "_review_seq.html", {"panel": panel, "who": who, "can_decide": True},
                  headers={"X-Pardus-Decision": decision_id})


@router.post("/undo")
async def undo_page(request: Request, decision: str = Form("", max_length=64),
                    f: rq.QueueFilter = Depends(queue_filter), order: str = Depends(_order),
                    who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """Undo ``decision`` (a decision or a bulk batch), or this person's latest; show what was undone."""
    def do() -> dict[str, Any]:
        with ws.db.session() as s:
            target = decision or rd.last_undoable(s, who.name)
            if not target:
                raise HTTPProblem(400, "nothing of yours to undo")
            try:
                undone = rd.undo(s, target, who.name)
            except rq.QueueError as exc:
                raise HTTPProblem(400, str(exc)) from exc
            s.flush()
            return _panel(s, f, order, at=undone[0])

    panel = await run_in_threadpool(do)
    return render(request, "_review_seq.html", {"panel": panel, "who": who, "can_decide": True,
                                                "undone": True})


@router.get("/blanks")
async def blanks_page(request: Request, camera: str = Query(..., max_length=64), day: date = Query(...),
                      who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    def q() -> list[ReviewItem]:
        with ws.db.session() as s:
            return rq.camera_day_items(s, camera, day.isoformat(), machine_type="blank")

    items = await run_in_threadpool(q)
    return render(request, "review_blanks.html", {"items": items, "camera": camera, "day": day.isoformat(),
                                                  "who": who, "page": "review", "can_decide": who.may(REVIEW)})


@router.post("/blanks")
async def accept_blanks(request: Request, who: Person = Depends(page_person(REVIEW)),
                        ws: Workspace = Depends(workspace)) -> Response:
    form = await request.form()
    ids = [v for v in form.getlist("sequence_id") if isinstance(v, str) and len(v) <= 64]

    def do() -> tuple[str, int]:
        with ws.db.session() as s:
            try:
                return rd.accept_blanks(s, ids, who.name)
            except rq.QueueError as exc:
                raise HTTPProblem(400, str(exc)) from exc

    batch, n = await run_in_threadpool(do)
    camera, day = str(form.get("camera", ""))[:64], str(form.get("day", ""))[:10]
    return render(request, "review_blanks_done.html", {"batch": batch, "n": n, "camera": camera, "day": day,
                                                       "who": who, "page": "review"})


@router.post("/blanks/undo")
async def undo_blanks(batch: str = Form(..., max_length=64), camera: str = Form("", max_length=64),
                      day: str = Form("", max_length=10), who: Person = Depends(page_person(REVIEW)),
                      ws: Workspace = Depends(workspace)) -> Response:
    def do() -> None:
        with ws.db.session() as s:
            try:
                rd.undo(s, batch, who.name)
            except rq.QueueError as exc:
                raise HTTPProblem(400, str(exc)) from exc

    await run_in_threadpool(do)
    target = "/review/blanks?" + urlencode({"camera": camera, "day": day}) if camera and day else "/review"
    return RedirectResponse(target, status_code=303)


@router.post("/refresh")
async def refresh_queue(who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    def do() -> None:
        with ws.db.session() as s:
            rq.refresh(s)

    await run_in_threadpool(do)
    return RedirectResponse("/review", status_code=303)


@router.get("/progress")
async def progress_page(request: Request, who: Person = Depends(page_person()),
                        ws: Workspace = Depends(workspace)) -> Response:
    def q() -> list[rd.ProgressRow]:
        with ws.db.session() as s:
            return rd.progress(s)

    return render(request, "review_progress.html", {"rows": await run_in_threadpool(q), "who": who,
                                                    "page": "review"})
