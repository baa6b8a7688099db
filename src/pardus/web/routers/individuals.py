"""Leopard and tiger identities: the queue of the machine's re-identification proposals, decided by
keyboard, the catalogue with one page per individual, a photo without a proposal identified by
hand, and a park's ID sheet imported.

Routes only translate. What a page shows comes from :mod:`pardus.reid.desk`; every decision goes
through :class:`pardus.reid.catalogue.Catalogue` with the signed-in person's name, so the web page
and `pardus reid confirm` write the same history. Deciding needs ``REVIEW`` (reviewer, admin): a
viewer sees every page, and each of their POSTs is refused 403 by ``page_person(REVIEW)``.
"""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from pardus.live import stations as st
from pardus.people.accounts import REVIEW, Person
from pardus.reid import desk
from pardus.reid.catalogue import Catalogue, CatalogueError, same_box
from pardus.reid.idsheet import IdSheetError, SheetReport, import_id_sheet
from pardus.reid.stage import MARKED_SPECIES
from pardus.store import Workspace
from pardus.web.deps import AppState, app_state, page_person, workspace
from pardus.web.problems import HTTPProblem
from pardus.web.render import render

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,31}")
# A name is words: no markup, quotes or control characters (it shows on maps, exports and sheets).
NAME = re.compile(r"[^\W_]([\w .'\-]{0,126}[\w.])?")
SEXES = ("female", "male", "unknown")
MAX_ID = 64
QUEUE_SHOWN = 8
# One catalogue change at a time: each decision also rewrites the feature index on disk.
_catalogue_lock = threading.Lock()


def _decide(ws: Workspace, action: Callable[[Catalogue], T]) -> T:
    """Run one catalogue operation under the lock; a refusal becomes a 400 with its own words."""
    with _catalogue_lock:
        try:
            return action(Catalogue(ws))
        except CatalogueError as exc:
            raise HTTPProblem(400, str(exc)) from exc


def _id(value: str, what: str = "proposal") -> str:
    if not value or len(value) > MAX_ID or not value.isalnum():
        raise HTTPProblem(404, f"no such {what}")
    return value


def _flank(value: str) -> str | None:
    if value in ("", "unknown"):
        return None
    if value not in ("left", "right"):
        raise HTTPProblem(400, "flank must be left, right or unknown")
    return value


def _optional_code(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not CODE.fullmatch(value):
        raise HTTPProblem(400, "code: use letters, digits, '_' and '-' only (up to 32), e.g. LEO_012")
    return value


def _name(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not NAME.fullmatch(value):
        raise HTTPProblem(400, "name: letters, digits, spaces and . ' - only (up to 128), e.g. Berry")
    return value


def _sex(value: str) -> str | None:
    if value == "":
        return None
    if value not in SEXES:
        raise HTTPProblem(400, f"sex must be one of {', '.join(SEXES)}")
    return value


# --- the identity queue -----------------------------------------------------------------------------

def _queue_page(ws: Workspace, who: Person, proposal_id: str | None, last: str | None) -> dict[str, Any]:
    with ws.db.session() as s:
        if proposal_id is None:
            first = desk.pending_proposals(s, 1)
            p = first[0] if first else None
        else:
            p = desk.proposal(s, proposal_id)
            if p is None:
                raise HTTPProblem(404, "no such re-identification proposal; the queue lists those waiting")
        prev_id, next_id = desk.neighbours(s, p.id) if p else (None, None)
        queue = desk.pending_proposals(s, QUEUE_SHOWN, after=p.id) if p else []
        encounter = desk.encounter_pending(s, p.id) if p and not p.decision else []
        last_p = desk.proposal(s, last) if last and last.isalnum() and len(last) <= MAX_ID else None
        next_code = Catalogue(ws).next_code(s, p.likely_species) if p else None
        waiting = desk.pending_count(s)
    return {"p": p, "prev_id": prev_id, "next_id": next_id, "queue": queue, "encounter": encounter,
            "last": last_p, "next_code": next_code, "waiting": waiting, "can_decide": who.may(REVIEW),
            "species": MARKED_SPECIES}


@router.get("/identities")
async def identities(request: Request, last: str | None = None, who: Person = Depends(page_person()),
                     ws: Workspace = Depends(workspace)) -> Response:
    """The first proposal waiting for a decision (or word that none waits)."""
    ctx = await run_in_threadpool(_queue_page, ws, who, None, last)
    return render(request, "identities.html", {**ctx, "who": who, "page": "identities"})


# --- a photo without a proposal, and an ID sheet ---------------------------------------------------
# (registered before /identities/{proposal_id}, whose one path segment would otherwise take "photo"
# and "import")

REGIONS = ("frame", "box")
MAX_SHEET_BYTES = 5 * 1024 * 1024  # an ID sheet of ~50,000 rows; a bigger upload is a mistake or an attack
SHEET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._\-]{0,99}")


def _species(value: str) -> str | None:
    if value == "":
        return None
    if value not in MARKED_SPECIES:
        raise HTTPProblem(400, f"species must be one of {', '.join(MARKED_SPECIES)}")
    return value


@router.get("/identities/photo")
async def find_photo(ref: str = "", deployment: str = "", code: str = "", _: Person = Depends(page_person()),
                     ws: Workspace = Depends(workspace)) -> Response:
    """A photo named as on the card (file name, path or sha256): its "identify" page."""
    if len(ref) > 1000 or len(deployment) > MAX_ID or (code and not CODE.fullmatch(code)):
        raise HTTPProblem(400, "name the photo by its file name, path on the card or sha256")

    def run() -> str:
        with ws.db.session() as s:
            try:
                return Catalogue(ws).find_photo(s, ref, deployment=deployment.strip() or None).id
            except CatalogueError as exc:
                raise HTTPProblem(404 if "no photo" in str(exc) else 400, str(exc)) from exc

    media_id = await run_in_threadpool(run)
    return RedirectResponse(f"/identities/photo/{media_id}" + (f"?code={code}" if code else ""), status_code=303)


def _photo_page(ws: Workspace, who: Person, media_id: str, code: str | None) -> dict[str, Any]:
    with ws.db.session() as s:
        photo = desk.photo_to_identify(s, _id(media_id, "photo"))
        if photo is None:
            raise HTTPProblem(404, "no such photo")
        rows = desk.catalogue_rows(s)
        next_code = Catalogue(ws).next_code(s, None)
    return {"photo": photo, "individuals": rows, "chosen": code, "next_code": next_code,
            "can_decide": who.may(REVIEW), "species": MARKED_SPECIES}


@router.get("/identities/photo/{media_id}")
async def identify_photo(request: Request, media_id: str, code: str = "", who: Person = Depends(page_person()),
                         ws: Workspace = Depends(workspace)) -> Response:
    """Identify a photo that has no proposal: the whole frame or the machine's best animal box."""
    ctx = await run_in_threadpool(_photo_page, ws, who, media_id, code[:32] or None)
    return render(request, "identify_photo.html", {**ctx, "who": who, "page": "identities"})


@router.post("/identities/photo/{media_id}/confirm")
async def confirm_photo(media_id: str, individual: str = Form(..., max_length=32),
                        region: str = Form("frame", max_length=10), flank: str = Form("", max_length=10),
                        code: str = Form("", max_length=32), name: str = Form("", max_length=128),
                        sex: str = Form("", max_length=10), species: str = Form("", max_length=128),
                        who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """This photo (whole frame, or the machine's best animal box) shows ``individual`` (a code, or
    ``new``: a new record with code, name, sex, species). The same catalogue operations as
    `pardus reid confirm PHOTO CODE [--box]` and `pardus individuals create`."""
    mid, side = _id(media_id, "photo"), _flank(flank)
    if region not in REGIONS:
        raise HTTPProblem(400, "region must be frame (the whole photo) or box (the machine's animal box)")
    new = individual == "new"
    target = None if new else _optional_code(individual)
    if not new and target is None:
        raise HTTPProblem(400, "choose an individual, or new")
    new_code, new_name, new_sex, new_species = _optional_code(code), _name(name), _sex(sex), _species(species)

    def run() -> str:
        with ws.db.session() as s:
            photo = desk.photo_to_identify(s, mid)
        if photo is None:
            raise HTTPProblem(404, "no such photo")
        if photo.open_proposals:
            raise HTTPProblem(409, "this photo has a re-identification proposal waiting: decide it on its identity "
                                   f"page, /identities/{photo.open_proposals[0]}")
        box = photo.best_box if region == "box" else None
        if region == "box" and box is None:
            raise HTTPProblem(400, "the machine boxed no animal in this photo; confirm the whole frame")
        taken = next((i for i in photo.identities if same_box(i.box, box)), None)
        if taken is not None:
            raise HTTPProblem(409, f"{'this box' if box else 'the whole frame'} of this photo is already confirmed as "
                                   f"{taken.code}; change it on the individual's page (split or merge)")

        def act(cat: Catalogue) -> str:
            chosen = target
            if new:
                chosen = cat.create(by=who.name, code=new_code, name=new_name, species=new_species, sex=new_sex,
                                    details={"media_id": mid, "source": "identify a photo (web)"}).code
            assert chosen is not None
            cat.confirm_photo(mid, chosen, by=who.name, box=box, flank=side)
            with ws.db.session() as s:
                return cat.find(s, chosen).code  # a merged record's photos go to its survivor

        return _decide(ws, act)

    return _back(await run_in_threadpool(run))


def _sheet_name(filename: str | None) -> str:
    """The uploaded file's own name (kept in the history as the source), reduced to safe letters."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base if SHEET_NAME.fullmatch(base) else "id-sheet.csv"


@router.get("/identities/import")
async def import_page(request: Request, who: Person = Depends(page_person()),
                      ws: Workspace = Depends(workspace)) -> Response:
    """The form to bring a park's ID sheet in (reviewers and admins)."""
    return render(request, "identities_import.html", {"who": who, "page": "identities", "can_decide": who.may(REVIEW),
                                                      "species": MARKED_SPECIES, "result": None})


@router.post("/identities/import")
async def import_sheet(request: Request, sheet: UploadFile = File(...), species: str = Form("", max_length=128),
                       who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """Check the uploaded ID sheet whole and import it (`pardus individuals import`): the summary,
    or every problem by its row with nothing written (422)."""
    sp = _species(species)
    data = await sheet.read(MAX_SHEET_BYTES + 1)
    if len(data) > MAX_SHEET_BYTES:
        raise HTTPProblem(413, f"the ID sheet is larger than {MAX_SHEET_BYTES // (1024 * 1024)} MB; split it")
    if not data.strip():
        raise HTTPProblem(400, "the uploaded ID sheet is empty; choose the CSV file")
    name = _sheet_name(sheet.filename)

    def run() -> tuple[SheetReport | None, list[str]]:
        with tempfile.TemporaryDirectory(prefix="pardus-idsheet-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)

            def act(cat: Catalogue) -> tuple[SheetReport | None, list[str]]:
                try:
                    return import_id_sheet(cat, path, by=who.name, species=sp, photos_beside=False), []
                except IdSheetError as exc:
                    return None, exc.problems

            return _decide(ws, act)

    report, problems = await run_in_threadpool(run)
    result = {"name": name, "report": report, "problems": problems}
    status = 422 if problems else 200
    if request.headers.get("hx-request") == "true":
        return render(request, "_import_result.html", {"result": result}, status=status)
    return render(request, "identities_import.html", {"who": who, "page": "identities", "can_decide": True,
                                                      "species": MARKED_SPECIES, "result": result},
                  status=status)


@router.get("/identities/{proposal_id}")
async def identity(request: Request, proposal_id: str, last: str | None = None,
                   who: Person = Depends(page_person()), ws: Workspace = Depends(workspace)) -> Response:
    ctx = await run_in_threadpool(_queue_page, ws, who, _id(proposal_id), last)
    return render(request, "identities.html", {**ctx, "who": who, "page": "identities"})


@router.get("/identities/{proposal_id}/matches.jpg")
async def matches_sheet(proposal_id: str, _: Person = Depends(page_person()),
                        ws: Workspace = Depends(workspace)) -> Response:
    """The sheet `pardus reid review` draws: this photo beside each candidate, matched spots joined."""
    pid = _id(proposal_id)

    def draw() -> bytes:
        with ws.db.session() as s:
            if desk.proposal(s, pid) is None:
                raise HTTPProblem(404, "no such re-identification proposal")
        try:
            return _decide(ws, lambda cat: desk.review_sheet(cat, pid))
        except (FileNotFoundError, ValueError) as exc:  # the photo is gone or cannot be decoded
            raise HTTPProblem(404, f"the match picture cannot be drawn: {exc}") from exc

    data = await run_in_threadpool(draw)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=60",
                                                            "X-Content-Type-Options": "nosniff"})


def _pending(ws: Workspace, pid: str, encounter: bool) -> tuple[desk.Proposal, list[str]]:
    """The proposal to decide and every proposal the decision covers; refuses a decided one."""
    with ws.db.session() as s:
        p = desk.proposal(s, pid)
        if p is None:
            raise HTTPProblem(404, "no such re-identification proposal")
        if p.decision:
            raise HTTPProblem(409, f"this photo was already confirmed as {p.decision.get('code')} by "
                                   f"{p.decision.get('by')}; change it on the individual's page (split or merge)")
        ids = desk.encounter_pending(s, pid) if encounter else [pid]
    return p, ids


def _after(pid: str, next_id: str | None, stay: bool) -> RedirectResponse:
    if stay:
        return RedirectResponse(f"/identities/{pid}?last={pid}", status_code=303)
    return RedirectResponse(f"/identities/{next_id}?last={pid}" if next_id else f"/identities?last={pid}",
                            status_code=303)


def _next_after(ws: Workspace, pid: str) -> str | None:
    with ws.db.session() as s:
        later = desk.pending_proposals(s, 1, after=pid)
    return later[0].id if later else None


@router.post("/identities/{proposal_id}/confirm")
async def confirm(proposal_id: str, rank: int = Form(..., ge=1, le=5), flank: str = Form("", max_length=10),
                  encounter: bool = Form(False), who: Person = Depends(page_person(REVIEW)),
                  ws: Workspace = Depends(workspace)) -> Response:
    """The n-th candidate is this animal (for every undecided photo of the encounter, if asked)."""
    pid, side = _id(proposal_id), _flank(flank)

    def run() -> str | None:
        p, ids = _pending(ws, pid, encounter)
        if rank > len(p.candidates):
            raise HTTPProblem(400, f"this proposal has {len(p.candidates)} candidate(s), not {rank}")
        target = p.candidates[rank - 1].individual_id
        _decide(ws, lambda cat: [cat.confirm(i, target, by=who.name, flank=side) for i in ids])
        return _next_after(ws, pid)

    return _after(pid, await run_in_threadpool(run), stay=False)


@router.post("/identities/{proposal_id}/reject")
async def reject(proposal_id: str, rank: int | None = Form(None, ge=1, le=5),
                 reason: str = Form("", max_length=500), encounter: bool = Form(False),
                 who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """The n-th candidate (by default the best one not yet rejected) is not this animal. The photo
    stays in the queue, now led by the next candidate, until someone confirms or makes it new."""
    pid = _id(proposal_id)

    def run() -> None:
        p, ids = _pending(ws, pid, encounter)
        if rank is None:
            if not p.open_candidates:
                raise HTTPProblem(400, "every candidate is already rejected; make it a new individual (n)")
            cand = p.open_candidates[0]
        elif rank > len(p.candidates):
            raise HTTPProblem(400, f"this proposal has {len(p.candidates)} candidate(s), not {rank}")
        else:
            cand = p.candidates[rank - 1]
        _decide(ws, lambda cat: [cat.reject(i, cand.individual_id, by=who.name, reason=reason.strip() or None)
                                 for i in ids])

    await run_in_threadpool(run)
    return _after(pid, None, stay=True)


@router.post("/identities/{proposal_id}/new")
async def new_individual(proposal_id: str, code: str = Form("", max_length=32), name: str = Form("", max_length=128),
                         sex: str = Form("", max_length=10), flank: str = Form("", max_length=10),
                         species: str = Form("", max_length=128), encounter: bool = Form(False),
                         who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """The photo shows an animal the catalogue does not have: create it (code, name, sex) with it."""
    pid, side = _id(proposal_id), _flank(flank)
    new_code, new_name, new_sex = _optional_code(code), _name(name), _sex(sex)
    if species and species not in MARKED_SPECIES:
        raise HTTPProblem(400, f"species must be one of {', '.join(MARKED_SPECIES)}")

    def run() -> str | None:
        p, ids = _pending(ws, pid, encounter)

        def make(cat: Catalogue) -> None:
            ind = cat.confirm_new(ids[0], by=who.name, code=new_code, name=new_name, sex=new_sex,
                                  species=species or p.likely_species, flank=side)
            for other in ids[1:]:
                cat.confirm(other, ind.id, by=who.name, flank=side)

        _decide(ws, make)
        return _next_after(ws, pid)

    return _after(pid, await run_in_threadpool(run), stay=False)


# --- the catalogue and individual pages ------------------------------------------------------------

@router.get("/individuals")
async def individuals(request: Request, who: Person = Depends(page_person()),
                      ws: Workspace = Depends(workspace)) -> Response:
    def q() -> list[desk.CatalogueRow]:
        with ws.db.session() as s:
            return desk.catalogue_rows(s)

    rows = await run_in_threadpool(q)
    return render(request, "individuals.html", {"rows": rows, "who": who, "page": "identities"})


def _timeline(sightings: list[desk.Sighting]) -> list[dict[str, Any]]:
    """Each sighting's place along the strip (0-1 between the first and the last)."""
    times = [sg.timestamp for sg in sightings if sg.timestamp is not None]
    if not times:
        return []
    t0, t1 = min(times), max(times)
    span = (t1 - t0).total_seconds() or 1.0
    return [{"x": (sg.timestamp - t0).total_seconds() / span, "s": sg} for sg in sightings if sg.timestamp]


def _individual(ws: Workspace, who: Person, code: str) -> dict[str, Any]:
    if not code or len(code) > MAX_ID:
        raise HTTPProblem(404, "no individual with this code")
    with ws.db.session() as s:
        page = desk.individual_page(s, code, exact_places=who.exact_places)
        if page is None:
            raise HTTPProblem(404, f"no individual with the code {code[:MAX_ID]!r}; the catalogue lists them")
        others = [r.code for r in desk.catalogue_rows(s)
                  if r.code != page.code and (not r.species or not page.species or r.species == page.species)]
        items = st.stations(s, exact_places=who.exact_places)
    points = [{"lat": sg.latitude, "lon": sg.longitude, "when": sg.timestamp.isoformat() if sg.timestamp else None,
               "place": sg.place or sg.deployment_id, "media": sg.media_id, "rounded": sg.rounded}
              for sg in page.sightings if sg.latitude is not None]
    plots = {k: [list(p) for p in v] for k, v in st.plot_outlines(items).items()}
    first = page.sightings[0].timestamp if page.sightings else None
    last = page.sightings[-1].timestamp if page.sightings else None
    return {"ind": page, "others": others, "map": {"points": points, "plots": plots},
            "timeline": _timeline(page.sightings), "span": (first, last), "can_edit": who.may(REVIEW)}


@router.get("/individuals/{code}")
async def individual(request: Request, code: str, who: Person = Depends(page_person()),
                     state: AppState = Depends(app_state)) -> Response:
    ctx = await run_in_threadpool(_individual, state.ws, who, code)
    return render(request, "individual.html", {**ctx, "tiles": state.config.map_tiles, "who": who,
                                               "page": "identities"})


def _known(ws: Workspace, code: str) -> str:
    if not code or len(code) > MAX_ID:
        raise HTTPProblem(404, "no individual with this code")
    with ws.db.session() as s:
        if desk.individual_id(s, code) is None:
            raise HTTPProblem(404, f"no individual with the code {code[:MAX_ID]!r}")
    return code


def _back(code: str) -> RedirectResponse:
    return RedirectResponse(f"/individuals/{code}", status_code=303)


@router.post("/individuals/{code}/merge")
async def merge(code: str, other: str = Form(..., max_length=MAX_ID), reason: str = Form("", max_length=500),
                who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """``other`` is this same animal: its photos join this record, which keeps its code."""
    def run() -> None:
        _known(ws, code)
        _known(ws, other)
        _decide(ws, lambda cat: cat.merge(code, other, by=who.name, reason=reason.strip() or None))

    await run_in_threadpool(run)
    return _back(code)


@router.post("/individuals/{code}/split")
async def split(code: str, observations: list[str] = Form(..., max_length=10_000),
                new_code: str = Form("", max_length=32), name: str = Form("", max_length=128),
                sex: str = Form("", max_length=10), reason: str = Form("", max_length=500),
                who: Person = Depends(page_person(REVIEW)), ws: Workspace = Depends(workspace)) -> Response:
    """The ticked photos show another animal: they move to a new record."""
    if any(not o.isalnum() or len(o) > MAX_ID for o in observations):
        raise HTTPProblem(400, "observations: photo ids are letters and digits")
    nc, nn, ns = _optional_code(new_code), _name(name), _sex(sex)

    def run() -> str:
        _known(ws, code)
        ind = _decide(ws, lambda cat: cat.split(code, observations, by=who.name, new_code=nc, name=nn, sex=ns,
                                                reason=reason.strip() or None))
        return ind.code

    return _back(await run_in_threadpool(run))


@router.post("/individuals/{code}/undo")
async def undo(code: str, event: int = Form(..., ge=1, le=2**62), who: Person = Depends(page_person(REVIEW)),
               ws: Workspace = Depends(workspace)) -> Response:
    """Undo a merge (the merged record comes back with its photos) or a split (merged back)."""
    def run() -> None:
        with ws.db.session() as s:
            page = desk.individual_page(s, _known(ws, code), exact_places=False)
        ev = next((e for e in page.history if e.id == event), None) if page else None
        if ev is None or ev.undo is None:
            raise HTTPProblem(400, f"event {event} of {code} is not a merge or split that can be undone")
        if ev.undo == "unmerge":
            _decide(ws, lambda cat: cat.undo_merge(event, by=who.name))
        else:
            _decide(ws, lambda cat: cat.undo_split(event, by=who.name))

    await run_in_threadpool(run)
    return _back(code)
