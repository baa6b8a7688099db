"""`pardus reid ...` and `pardus individuals ...`: the machine proposes, a person decides.

    pardus reid run                      # match every new animal photo against the catalogue
    pardus reid review --out sheets/     # list open proposals, one picture per proposal
    pardus reid confirm 3f2a9c LEO_004 --flank left --by "Olga"
    pardus reid confirm IMG_0042.JPG LEO_004 --box 0.31,0.40,0.35,0.30 --by "Olga"   # no proposal
    pardus reid reject 3f2a9c LEO_004 --by "Olga" --reason "no ear notch"
    pardus reid new 3f2a9c --name Berry --sex female --flank left --by "Olga"
    pardus individuals import id-sheet.csv --species "Panthera uncia" --by "Olga"
    pardus individuals list | show LEO_004 | edit LEO_004 --species ... | merge LEO_004 LEO_009 | split ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pardus.console import console, fail, make_progress, open_cli_workspace

if TYPE_CHECKING:
    from pardus.reid.catalogue import Catalogue

reid_app = typer.Typer(help="Recognise individual leopards and tigers by their coat.", no_args_is_help=True)
individuals_app = typer.Typer(help="The catalogue of known individuals and its history.", no_args_is_help=True)

By = Annotated[str, typer.Option("--by", envvar="PARDUS_USER",
                                 help="Who decides (kept in the history); or set PARDUS_USER.")]
Flank = Annotated[str | None, typer.Option(help="Side of the animal facing the camera: left or right.")]


@contextmanager
def _catalogue() -> Iterator[Catalogue]:
    """The data folder's catalogue for one command; its workspace is closed at the end."""
    from pardus.reid.catalogue import Catalogue  # deferred so `pardus --help` stays fast

    with open_cli_workspace() as ws:
        yield Catalogue(ws)


def _run(action):  # noqa: ANN001, ANN202 - small wrapper turning catalogue errors into clear exits
    from rich.markup import escape

    from pardus.reid.catalogue import CatalogueError

    try:
        return action()
    except (CatalogueError, FileNotFoundError) as exc:
        raise fail(escape(str(exc))) from exc  # names from a sheet or a person are text, not markup


@reid_app.command("run")
def reid_run(
    retry_failed: Annotated[bool, typer.Option(help="Try again photos that failed before.")] = False,
    rematch: Annotated[bool, typer.Option(help="Match again the photos nobody has decided on yet "
                                                   "(after the catalogue grew).")] = False,
) -> None:
    """Match every animal photo that detection boxed against the catalogue (new photos only).

    Each animal gets a proposal: the most likely individuals, or "probably new". Nothing gets an
    identity until a person confirms it with `pardus reid confirm` or `pardus reid new`.
    """
    from sqlalchemy import delete, select

    from pardus.pipeline.core import run_stage, state_key
    from pardus.pipeline.stages import current_detector_key
    from pardus.reid.stage import ReidStage
    from pardus.store.models import Observation, StageState

    stage = ReidStage(boxes_from=current_detector_key())
    with _catalogue() as cat:
        ws = cat.ws
        if rematch:
            with ws.db.session() as s:
                undecided = [o.media_id for o in s.scalars(select(Observation).where(
                    Observation.classified_by == stage.model_key)) if not o.extra.get("reid", {}).get("decision")]
                s.execute(delete(StageState).where(StageState.stage == stage.name, StageState.model == state_key(stage),
                                                   StageState.media_id.in_(undecided)))
            console.print(f"Matching {len(undecided)} undecided photos again.")
        with make_progress() as progress:
            task = progress.add_task("Recognising individuals", total=None)
            run = run_stage(ws, stage, retry_failed=retry_failed,
                            progress=lambda done, total: progress.update(task, completed=done, total=total))
        with ws.db.session() as s:
            props = list(s.scalars(select(Observation).where(Observation.classified_by == stage.model_key,
                                                               Observation.superseded_by.is_(None))))
        new = sum(1 for p in props if p.extra.get("reid", {}).get("is_new"))
    console.print(f"[bold green]Done:[/] {run.done} photos matched, {run.failed} failed, "
                  f"catalogue of {len(cat.index)} photos. {len(props)} proposals so far, {new} probably new animals.")
    for mid, why in run.errors[:10]:
        console.print(f"[yellow]{mid}: {why}[/]")
    console.print("Next: [bold]pardus reid review --out review/[/] to look at them.")


@reid_app.command("review")
def reid_review(
    out: Annotated[Path, typer.Option(help="Folder for the review pictures (one JPEG per proposal).")] = Path("review"),
    proposal: Annotated[str | None, typer.Option(help="Only this proposal (id or its first characters).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many proposals, oldest first.")] = 20,
    top: Annotated[int, typer.Option(help="Candidates shown per proposal.")] = 3,
) -> None:
    """List the proposals waiting for a decision and draw each one: the photo beside its best
    candidates, with the matching coat spots joined by lines."""
    from sqlalchemy import select

    from pardus.reid.review import review_proposal
    from pardus.store.models import Media, Observation

    with _catalogue() as cat:
        ws = cat.ws
        with ws.db.session() as s:
            q = (select(Observation, Media).join(Media, Media.id == Observation.media_id)
                 .where(Observation.classification_method == "machine", Observation.classified_by.like("pardus-reid%"),
                        Observation.superseded_by.is_(None))
                 .order_by(Media.timestamp))
            rows = [(o, m) for o, m in s.execute(q).all() if not o.extra.get("reid", {}).get("decision")]
            if proposal:
                rows = [(o, m) for o, m in rows if o.id.startswith(proposal)]
            rows = rows[:limit]
            s.expunge_all()
        if not rows:
            console.print("No proposals wait for a decision. Run [bold]pardus reid run[/] after new photos.")
            return
        table = Table(title=f"Proposals waiting for a decision (pictures in {out})")
        for col in ("proposal", "photo", "camera", "machine says", "sure", "picture"):
            table.add_column(col)
        for o, m in rows:
            path, res = _run(lambda o=o: review_proposal(cat, o.id, out / f"{o.id[:8]}.jpg", top=top))
            says, sure = _verdict(o.extra["reid"])
            table.add_row(o.id[:8], m.file_name or m.file_path, m.deployment_id, says, sure, str(path))
        console.print(table)
        console.print("Decide with: pardus reid confirm ID CODE --flank left|right, pardus reid reject ID CODE, "
                      "or pardus reid new ID --name ...")


def _verdict(data: dict[str, Any]) -> tuple[str, str]:
    """What the machine says about a proposal, and how sure, for the review list."""
    best = next((c for c in data.get("candidates") or [] if c.get("probability") is not None), None)
    if data.get("is_new"):
        return "[bold yellow]probably NEW[/]", f"{100 * data['new_probability']:.0f}%"
    if data.get("new_in_encounter"):
        return f"same encounter as {str(data['new_in_encounter'])[:8]} (probably NEW)", "-"
    if best is not None:
        return best["code"], f"{100 * best['probability']:.0f}%"
    cands = data.get("candidates") or []
    if cands:
        return f"{cands[0]['code']}? (not verified)", "-"
    return "no candidate" + (f" ({data['new_withheld']})" if data.get("new_withheld") else ""), "-"


@reid_app.command("confirm")
def reid_confirm(
    proposal: Annotated[str, typer.Argument(
        help="Proposal id (or its first characters) from `pardus reid review`, or a photo without a proposal: "
             "its file name, path on the card or sha256.")],
    code: Annotated[str, typer.Argument(help="The individual's code, e.g. LEO_004.")],
    by: By,
    flank: Flank = None,
    box: Annotated[str | None, typer.Option(
        help="The animal in a photo without a proposal: x,y,w,h as fractions of the frame (top-left corner, "
             "width, height), e.g. 0.31,0.40,0.35,0.30. Left out: the whole frame.")] = None,
    deployment: Annotated[str | None, typer.Option(
        help="The photo's deployment, when several cards hold a file of that name.")] = None,
) -> None:
    """Confirm that a photo shows this individual. The photo joins the catalogue at once.

    Works for a proposal, and for a photo that has none (the detector boxed nothing, or it was never
    processed): give the photo and, if it holds more than the animal, --box. A photo with exactly one
    open proposal confirms that proposal.
    """
    from pardus.reid.catalogue import parse_box

    with _catalogue() as cat:
        obs, how = _run(lambda: cat.confirm_ref(proposal, code, by=by, flank=flank, deployment=deployment,
                                                box=parse_box(box) if box else None))
    what = {"proposal": "its proposal", "box": "the box given", "whole frame": "the whole frame"}[how]
    console.print(f"[bold green]Confirmed:[/] photo {obs.media_id} is {code}"
                  f"{f' ({flank} flank)' if flank else ''}, {what}; recorded for {by}.")


@reid_app.command("reject")
def reid_reject(
    proposal: Annotated[str, typer.Argument(help="Proposal id (or its first characters).")],
    code: Annotated[str, typer.Argument(help="The candidate that is wrong.")],
    by: By,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Say the proposal's photo does not show this candidate."""
    with _catalogue() as cat:
        _run(lambda: cat.reject(proposal, code, by=by, reason=reason))
    console.print(f"Rejected {code} for proposal {proposal}; recorded for {by}.")


@reid_app.command("new")
def reid_new(
    proposal: Annotated[str, typer.Argument(help="Proposal id (or its first characters).")],
    by: By,
    code: Annotated[str | None, typer.Option(help="Code for the new animal (default: next free, LEO_012).")] = None,
    name: Annotated[str | None, typer.Option(help="A name, e.g. Berry.")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male or unknown.")] = None,
    species: Annotated[str | None, typer.Option(help="Scientific name, e.g. 'Panthera pardus orientalis'.")] = None,
    flank: Flank = None,
) -> None:
    """The proposal shows an animal the catalogue does not have: add it, with this photo."""
    with _catalogue() as cat:
        ind = _run(lambda: cat.confirm_new(proposal, by=by, code=code, name=name, sex=sex, species=species,
                                           flank=flank))
    console.print(f"[bold green]New individual {ind.code}[/]{f' ({ind.name})' if ind.name else ''} added "
                  f"with this photo; recorded for {by}.")


@reid_app.command("calibrate")
def reid_calibrate() -> None:
    """Fit how sure the machine may be, and when it says "new", on this park's confirmed photos.

    Each confirmed photo is matched against the others, then with its animal left out; the fit
    is saved in the data folder and used by every later match.
    """
    from pardus.reid.stage import calibrate_from_catalogue, calibration_path

    with _catalogue() as cat:
        try:
            cal, rep, n = _run(lambda: calibrate_from_catalogue(cat))
        except ValueError as exc:
            raise fail(str(exc)) from exc
    console.print(f"Calibrated on {n} test matches from {cal.source}: 'probably new' below {cal.new_threshold:.0%} "
                  f"sure. On these photos, 'new' was right {rep.precision:.0%} of the times it was said "
                  f"(precision) and found {rep.recall:.0%} of the new ones (recall). "
                  f"Saved in {calibration_path(cat.ws)}.")


@reid_app.command("reindex")
def reid_reindex() -> None:
    """Rebuild the matching index from the confirmed photos (after an upgrade or a lost folder)."""
    with _catalogue() as cat:
        counts = cat.reindex()
    console.print(f"Index rebuilt from {counts['added']} confirmed photos.")


@individuals_app.command("list")
def individuals_list(
    merged: Annotated[bool, typer.Option(help="Also list records merged into others.")] = False,
) -> None:
    """Every known individual: code, name, species, sex, photos per flank, first and last seen."""
    with _catalogue() as cat:
        rows = cat.summaries(include_merged=merged)
    table = Table(title=f"{len(rows)} individuals")
    for col in ("code", "name", "species", "sex", "photos (left/right/unknown)", "first seen", "last seen", "note"):
        table.add_column(col)
    for r in rows:
        f = r.photos_per_flank
        table.add_row(r.code, r.name or "", r.species or "", r.sex or "",
                      f"{r.photos} ({f.get('left', 0)}/{f.get('right', 0)}/{f.get('unknown', 0)})",
                      f"{r.first_seen:%Y-%m-%d}" if r.first_seen else "",
                      f"{r.last_seen:%Y-%m-%d}" if r.last_seen else "",
                      "merged into another" if r.merged_into else "")
    console.print(table)


@individuals_app.command("show")
def individuals_show(code: Annotated[str, typer.Argument(help="The individual's code, e.g. LEO_004.")]) -> None:
    """One individual: its facts, its best photos per flank and its full history (merges included)."""
    with _catalogue() as cat:
        with cat.ws.db.session() as s:
            ind = _run(lambda: cat.find(s, code))
            ind_code = ind.code
        summary = cat.summaries([ind_code])[0]
        events = cat.history(ind_code)
    if ind_code != code:
        console.print(f"[yellow]{code} was merged into {ind_code}; showing {ind_code}.[/]")
    console.print(f"[bold]{summary.code}[/] {summary.name or ''}  {summary.species or 'species not set'}  "
                  f"sex {summary.sex or 'unknown'}  {summary.photos} photos at {len(summary.stations)} deployments")
    if summary.first_seen:
        console.print(f"first seen {summary.first_seen:%Y-%m-%d %H:%M} UTC, "
                      f"last seen {summary.last_seen:%Y-%m-%d %H:%M} UTC")
    for flank, ids in summary.best_photos.items():
        console.print(f"best {flank}-flank photos (observation ids): {', '.join(ids)}")
    table = Table(title="History")
    for col in ("event", "when (UTC)", "who", "what", "details"):
        table.add_column(col)
    for e in events:
        detail = ", ".join(f"{k}={v}" for k, v in e.details.items() if v not in (None, [], {}))
        table.add_row(str(e.id), f"{e.at:%Y-%m-%d %H:%M}", e.by or "", e.action, detail[:160])
    console.print(table)


@individuals_app.command("create")
def individuals_create(
    by: By,
    code: Annotated[str | None, typer.Option(help="Code, e.g. LEO_004 (default: next free).")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    species: Annotated[str | None, typer.Option(help="Scientific name.")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male or unknown.")] = None,
    notes: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Add an individual by hand (e.g. from the park's earlier ID sheets)."""
    with _catalogue() as cat:
        ind = _run(lambda: cat.create(by=by, code=code, name=name, species=species, sex=sex, notes=notes))
    console.print(f"[bold green]Created {ind.code}[/]; recorded for {by}.")


@individuals_app.command("import")
def individuals_import(
    sheet: Annotated[Path, typer.Argument(help="The ID sheet (CSV): photo (file name, path or sha256), individual "
                                               "code, and optionally name, flank, box, species, sex, deployment.")],
    by: By,
    species: Annotated[str | None, typer.Option(
        help="Scientific name for the individuals the sheet adds when it has no species column, e.g. "
             "'Panthera uncia'.")] = None,
) -> None:
    """Bring a park's existing ID records in: each row confirms one photo as one individual.

    The photos must be imported already (`pardus import-card`). The whole sheet is checked first:
    if any row is wrong, every problem is listed by row and nothing is written. Individuals the
    catalogue lacks are created; rows already in the catalogue are skipped, so importing the same
    sheet again is safe. Example: pardus individuals import id-sheet.csv --species "Panthera uncia"
    """
    from pardus.reid.idsheet import import_id_sheet

    with _catalogue() as cat, make_progress() as progress:
        task = progress.add_task("Adding the photos to the matching index", total=None)
        rep = _run(lambda: import_id_sheet(cat, sheet, by=by, species=species,
                                           progress=lambda done, total: progress.update(task, completed=done,
                                                                                        total=total)))
    made = f" New individuals: {', '.join(rep.created)}." if rep.created else ""
    console.print(f"[bold green]Imported {sheet.name}:[/] {rep.rows} rows, {rep.confirmed} photos confirmed, "
                  f"{rep.already} already in the catalogue.{made} Recorded for {by}.")


@individuals_app.command("edit")
def individuals_edit(
    code: Annotated[str, typer.Argument(help="The individual's code, e.g. LEO_004.")],
    by: By,
    name: Annotated[str | None, typer.Option()] = None,
    species: Annotated[str | None, typer.Option(help="Scientific name, e.g. 'Panthera uncia'.")] = None,
    sex: Annotated[str | None, typer.Option(help="female, male or unknown.")] = None,
    notes: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Change an individual's name, species, sex or notes (kept in its history).

    A species change renames the species of its confirmed photos and counts from the next match on.
    """
    with _catalogue() as cat:
        ind, changes = _run(lambda: cat.edit(code, by=by, name=name, species=species, sex=sex, notes=notes))
    if not changes:
        console.print(f"Nothing to change: {ind.code} already has those facts.")
        return
    said = ", ".join(f"{k.replace('scientific_name', 'species')} {old!r} -> {new!r}"
                     for k, (old, new) in changes.items())
    console.print(f"[bold green]{ind.code}:[/] {said}; recorded for {by}.")


@individuals_app.command("merge")
def individuals_merge(
    keep: Annotated[str, typer.Argument(help="The code that stays.")],
    gone: Annotated[str, typer.Argument(help="The code whose photos move to KEEP (its record and history stay).")],
    by: By,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Two codes are one animal: move every photo of GONE to KEEP. Undo with `individuals unmerge`."""
    with _catalogue() as cat:
        ind = _run(lambda: cat.merge(keep, gone, by=by, reason=reason))
    console.print(f"[bold green]Merged[/] {gone} into {ind.code}; {gone} now leads to {ind.code}.")


@individuals_app.command("unmerge")
def individuals_unmerge(
    event: Annotated[int, typer.Argument(help="The merge event's number, from `pardus individuals show`.")],
    by: By,
) -> None:
    """Undo a merge: the photos it moved go back and the merged record is restored."""
    with _catalogue() as cat:
        ind = _run(lambda: cat.undo_merge(event, by=by))
    console.print(f"[bold green]Restored[/] {ind.code}.")


@individuals_app.command("split")
def individuals_split(
    code: Annotated[str, typer.Argument(help="The individual some photos are wrongly filed under.")],
    observations: Annotated[list[str], typer.Argument(help="Observation ids of the photos that show another animal.")],
    by: By,
    new_code: Annotated[str | None, typer.Option(help="Code for the other animal (default: next free).")] = None,
    name: Annotated[str | None, typer.Option()] = None,
    reason: Annotated[str | None, typer.Option(help="Why (kept in the history).")] = None,
) -> None:
    """Some photos of CODE show another animal: move them to a new individual."""
    with _catalogue() as cat:
        ind = _run(lambda: cat.split(code, observations, by=by, new_code=new_code, name=name, reason=reason))
    console.print(f"[bold green]Split:[/] {len(observations)} photos moved from {code} to new individual {ind.code}.")
