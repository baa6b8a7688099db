"""The ``pardus`` command: one entry point for ecologists and rangers.

Every command works on one data folder (``PARDUS_DATA_DIR``, default ``./pardus-data``) holding
the database and the stored photos; ``PARDUS_DATABASE_URL`` points it at PostgreSQL instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pardus.alerts.commands import alerts_app
from pardus.console import console, err, fail, make_progress, open_cli_workspace, workspace_cmd
from pardus.interop.commands import export_app, import_app, validate_cmd
from pardus.live.commands import cameras_app
from pardus.models.commands import models_app
from pardus.people.commands import users_app
from pardus.pipeline.commands import detect_app
from pardus.reid.commands import individuals_app, reid_app
from pardus.review.commands import review_app
from pardus.simulate.commands import simulate_cmd
from pardus.stats.commands import report, trend
from pardus.telemetry.commands import fire_app, link_tag_cmd, sensors_app, telemetry_app
from pardus.web.commands import serve

app = typer.Typer(
    name="pardus",
    help=(
        "Pardus: import camera-trap cards, find animals, recognise leopards, "
        "count populations, alert rangers."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)
deployments_app = typer.Typer(help="Where and when each camera stood.", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")
app.add_typer(export_app, name="export")
app.add_typer(import_app, name="import")
app.command("validate")(validate_cmd)
app.command("report")(report)
app.command("trend")(trend)
app.command("simulate")(simulate_cmd)
app.add_typer(models_app, name="models")
app.add_typer(detect_app, name="detect")
app.add_typer(reid_app, name="reid")
app.add_typer(individuals_app, name="individuals")
app.add_typer(review_app, name="review")
app.add_typer(cameras_app, name="cameras")
app.add_typer(users_app, name="users")
app.add_typer(alerts_app, name="alerts")
app.add_typer(telemetry_app, name="telemetry")
app.add_typer(fire_app, name="fire")
app.add_typer(sensors_app, name="sensors")
individuals_app.command("link-tag")(link_tag_cmd)
app.command("serve")(serve)


@app.command()
def init() -> None:
    """Create the data folder and the database (safe to run again: it changes nothing that exists)."""
    with open_cli_workspace() as ws:
        console.print(f"Pardus is ready. Data folder: [bold]{ws.settings.data_dir.resolve()}[/]")
        console.print(f"Database: {ws.db.engine.url.render_as_string(hide_password=True)}")


@app.command("import-card")
def import_card_cmd(
    path: Annotated[Path, typer.Argument(help="The card folder (the one holding DCIM) or a .zip of it.")],
    deployment: Annotated[str, typer.Option("--deployment", "-d", help="Deployment the card belongs to.")],
    report: Annotated[
        Path | None, typer.Option(help="Write the import report as CSV here (default: in the data folder).")
    ] = None,
) -> None:
    """Import a memory card: every photo and video, stored once, with camera and time.

    Running it again on the same card adds nothing; if it was interrupted, it finishes the rest.
    Broken files are listed by name and reason; the rest of the card goes on.

    Example: pardus import-card /media/SD_CARD --deployment LP-2024-C017
    """
    from pardus.ingest.card import CardError, import_card

    with workspace_cmd(CardError) as ws, make_progress() as progress:
        task = progress.add_task(f"Importing {path.name}", total=None)

        def on_progress(done: int, total: int, _name: str) -> None:
            progress.update(task, completed=done, total=total)

        rep = import_card(ws, path, deployment, progress=on_progress)
    for r in rep.resumes:
        console.print(
            f"[yellow]An earlier import of this card (started {r.started:%Y-%m-%d %H:%M} UTC) was interrupted "
            f"after {r.files} file(s); this import has finished it.[/]"
        )
    if rep.created_deployment:
        console.print(
            f"[yellow]Deployment {deployment} was new and has been created. "
            f"Add its place and dates with: pardus deployments add {deployment} --lat ... --lon ... --start ...[/]"
        )
    summary = ", ".join(f"{v} {k}" for k, v in sorted(rep.counts.items())) or "no files"
    console.print(f"[bold green]Done:[/] {summary}.")
    if rep.problems:
        table = Table(title="Files that need a look", show_lines=False)
        table.add_column("file")
        table.add_column("what happened")
        table.add_column("why")
        for p, status, why in rep.problems:
            table.add_row(p, status, why)
        console.print(table)
    out = report or ws.settings.data_dir / "reports" / f"import-{rep.run_id}.csv"
    try:
        rep.write_csv(out)
        console.print(f"Import report: {out}")
    except OSError as exc:
        err.print(f"[yellow]The report file {out} could not be written ({exc.strerror}); the list above is it.[/]")
    if rep.stopped:
        raise typer.Exit(code=2)


@app.command("fix-time")
def fix_time_cmd(
    deployment: Annotated[
        str, typer.Option("--deployment", "-d", help="Deployment whose camera clock was wrong.")
    ],
    offset: Annotated[
        str | None, typer.Option(help="What to add to the camera's time, e.g. +3h, -1d2h30m, +01:00:00.")
    ] = None,
    reference: Annotated[
        str | None, typer.Option(help="A photo (file name) whose true time you know, e.g. a setup photo.")
    ] = None,
    true_time: Annotated[
        str | None, typer.Option(help="The true local time of --reference, e.g. 2024-05-01T10:30:00.")
    ] = None,
    by: Annotated[str | None, typer.Option(help="Your name, kept with the correction.")] = None,
    note: Annotated[str | None, typer.Option(help="Why, kept with the correction.")] = None,
) -> None:
    """Correct a camera clock for a whole deployment. The times the camera wrote are kept unchanged.

    Examples:
      pardus fix-time -d C017 --offset +1h
      pardus fix-time -d C017 --reference IMG_0001.JPG --true-time 2024-05-01T10:30:00
    """
    from pardus.ingest.timefix import TimeFixError, fix_time, parse_offset

    with workspace_cmd(TimeFixError) as ws, ws.db.session() as s:
        seconds = parse_offset(offset) if offset is not None else None
        res = fix_time(
            s,
            deployment,
            offset_s=seconds,
            reference=reference,
            true_time=true_time,
            by=by,
            note=note,
            gap_seconds=ws.settings.sequence_gap_seconds,
        )
    console.print(
        f"Deployment {res.deployment_id}: clock offset {res.previous_offset_s:+.0f} s -> {res.offset_s:+.0f} s; "
        f"{res.media_changed} photo times recomputed (originals kept)."
    )


@app.command()
def status(
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Only this deployment.")
    ] = None,
) -> None:
    """How far each deployment has come: files, time problems, and each processing stage."""
    from pardus.ingest.card import check_import_runs
    from pardus.store.status import deployment_status, totals

    with open_cli_workspace() as ws:
        runs = check_import_runs(ws)
        with ws.db.session() as s:
            rows = deployment_status(s, deployment)
            tot = totals(s)
    stages = sorted({st for r in rows for st in r.stages})
    table = Table(title=f"Pardus status ({tot['media']} files in {tot['deployments']} deployments)")
    for col in (
        "deployment",
        "location",
        "photos",
        "videos",
        "bursts",
        "time issues",
        "damaged",
        "first",
        "last",
    ):
        table.add_column(col, justify="right" if col in ("photos", "videos", "bursts") else "left")
    for st in stages:
        table.add_column(st)
    for r in rows:
        cells = [
            r.deployment_id,
            r.location or "-",
            str(r.photos),
            str(r.videos),
            str(r.sequences),
            str(r.time_issues),
            str(r.damaged),
            r.first or "-",
            r.last or "-",
        ]
        for st in stages:
            counts = r.stages.get(st, {})
            cells.append(" ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-")
        table.add_row(*cells)
    console.print(table)
    console.print(f"Detections: {tot['detections']}   Observations: {tot['observations']}")
    for r in runs.running:
        console.print(f"Import running: {r.source} into {r.deployment_id}, started {r.started:%Y-%m-%d %H:%M} UTC, "
                      f"{r.files} file(s) so far" + (f", on {r.where}" if r.where else ""))
    for r in runs.interrupted:
        console.print(
            f"[yellow]Import interrupted:[/] {r.source} into {r.deployment_id}, started {r.started:%Y-%m-%d %H:%M} "
            f"UTC, stopped after {r.files} file(s). Finish it with: pardus import-card {r.source} -d {r.deployment_id}"
        )


@app.command()
def process(
    stage: Annotated[
        list[str] | None, typer.Option("--stage", "-s", help="Run only this stage (repeatable).")
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="Try again the files a stage failed on.")] = False,
    rerun: Annotated[list[str] | None, typer.Option(
        help="Redo this stage on every file, and the stages after it (repeatable), e.g. --rerun species.")] = None,
    executor: Annotated[str | None, typer.Option(
        help="Where the stages compute: local (this process) or ray (a Ray cluster; default PARDUS_EXECUTOR). "
             "Results are written here either way.")] = None,
    address: Annotated[str | None, typer.Option(
        help="Ray cluster: auto (the one `ray start --head` runs here) or ray://host:10001; unset: a Ray "
             "instance on this machine for this run (default PARDUS_RAY_ADDRESS).")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Ray workers (one model copy each; default PARDUS_RAY_WORKERS).")] = None,
) -> None:
    """Run the processing stages over every file that still needs them.

    Safe to stop and run again: finished files are not processed twice. After a new detector
    (`pardus models fit-mdv6`) species and re-identification are redone on the new boxes, once;
    the results made on the old boxes are kept, set aside, and left out of every count.
    """
    from pardus.models.registry import ModelUnavailableError
    from pardus.pipeline.core import run_stage
    from pardus.pipeline.executors import ExecutorError, make_executor
    from pardus.pipeline.stages import default_stages

    with open_cli_workspace() as ws:
        st_ = ws.settings
        try:
            runner = make_executor(executor or st_.executor, address=address or st_.ray_address,
                                   workers=workers or st_.ray_workers)
        except ExecutorError as exc:
            raise fail(str(exc)) from None
        try:
            every = default_stages()
        except ModelUnavailableError as exc:
            raise fail(f"{exc}\nOr set PARDUS_DETECTOR=offline to use the detectors installed with Pardus.") from None
        stages = [st for st in every if not stage or st.name in stage]
        names = ", ".join(st.name for st in every)
        if stage and not stages:
            raise fail(f"no stage named {', '.join(stage)}; the stages are: {names}")
        unknown = sorted(set(rerun or []) - {st.name for st in every})
        if unknown:
            raise fail(f"--rerun: no stage named {', '.join(unknown)}; the stages are: {names}")
        redo = False
        touched: set[str] | None = set()  # cameras whose queue rows must be redone; None: all of them
        for st in stages:
            redo = redo or st.name in (rerun or [])  # a redone stage's results feed every later stage
            with make_progress() as progress:
                task = progress.add_task(f"{st.name} ({st.model_key})", total=None)
                try:
                    run = run_stage(
                        ws,
                        st,
                        retry_failed=retry_failed,
                        rerun=redo,
                        progress=lambda done, total, task=task: progress.update(task, completed=done, total=total),
                        executor=runner,
                    )
                except ExecutorError as exc:  # the cluster went away or was never there: finished work is kept
                    raise fail(f"{exc}. What was finished is kept; run again to go on.") from None
            console.print(f"{st.name}: {run.done} done, {run.failed} failed in {run.seconds:.1f} s")
            if run.set_aside:
                console.print(f"  {run.set_aside} earlier results were made on another detector's boxes: "
                              "kept, set aside, and left out of every count.")
                touched = None
            elif touched is not None:
                touched |= run.deployments
            for media_id, error in run.errors[:10]:
                err.print(f"  [yellow]{media_id}[/]: {error}")
        from pardus.review.queue import refresh

        # Only the cameras this run wrote to; a run with nothing new rebuilds it all (it may follow
        # a run stopped before this step), writing only what changed.
        with ws.db.session() as s:
            n = refresh(s, deployments=touched or None)
        where = f" of {len(touched)} camera(s)" if touched else ""
        console.print(f"Review queue: {n} sequences{where} brought up to date (the review desk: /review in "
                      "`pardus serve`).")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo season and its own data folder.")] = Path("demo"),
    cameras: Annotated[int, typer.Option(help="Cameras in the simulated season.")] = 8,
    days: Annotated[int, typer.Option(help="Days the season lasts.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same season.")] = 1,
) -> None:
    """Simulate a small season of the virtual park, import its cards and process them.

    Shows the whole path a park's cards take, on made-up data with known truth, without touching
    your real data folder. Run it again and it reuses what is there.
    """
    from pardus.demo import demo_settings, run_demo, story_lines
    from pardus.store import open_workspace
    from pardus.store.status import deployment_status, totals

    with make_progress() as progress:
        tasks: dict[str, int] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = progress.add_task(phase, total=total)
            progress.update(tasks[phase], completed=done, total=total)

        result = run_demo(out, cameras=cameras, days=days, seed=seed, progress=on_progress,
                          say=progress.console.print)
    imported = sum(r.counts.get("imported", 0) + r.counts.get("damaged", 0) for r in result.reports)
    dup = sum(r.counts.get("duplicate", 0) for r in result.reports)
    problems = [(r.deployment_id, p) for r in result.reports for p in r.problems]
    console.print(
        f"Season {'generated' if result.generated else 'reused'}: {result.season.resolve()}  "
        f"({len(result.reports)} cards; {imported} files imported now, {dup} already there or duplicated)"
    )
    for dep, (path, status_, why) in problems:
        console.print(f"  [yellow]{dep}/{path}[/]: {status_}: {why}")
    for st in result.stages:
        console.print(f"Stage {st.stage} ({st.model}): {st.done} done, {st.failed} failed")
        for media_id, error in st.errors[:3]:
            console.print(f"  [yellow]{media_id}[/]: {error}")
    if result.detection_vs_truth:
        console.print("Detection against the season's truth (photos called non-blank / photos):")
        for content, (n, found) in result.detection_vs_truth.items():
            word = "wrongly called non-blank" if content == "blank" else "found"
            console.print(f"  {content:8} {found:4d} / {n:<4d} {word}")
    for line in story_lines(result):
        console.print(line)
    with open_workspace(demo_settings(out)) as ws, ws.db.session() as s:
        tot = totals(s)
        rows = deployment_status(s)
    issues = sum(r.time_issues for r in rows)
    console.print(
        f"Store: {tot['media']} files in {tot['deployments']} deployments, {issues} with time problems flagged."
    )
    console.print("[bold green]Results:[/]")
    console.print(f"  data folder (database, photos, thumbnails): {result.data_dir.resolve()}")
    console.print(f"  import reports (CSV per card):               {(result.data_dir / 'reports').resolve()}")
    console.print(f"  the season's true content (to compare):      {(result.season / 'truth').resolve()}")
    console.print(f"Look around with: PARDUS_DATA_DIR={result.data_dir} pardus status")
    if result.sign_in:
        user, password = result.sign_in
        console.print("[bold green]See it in a browser:[/] serve the demo's data with")
        console.print(f"  PARDUS_DATA_DIR={result.data_dir} .venv/bin/pardus serve --no-pipeline", soft_wrap=True)
        console.print(f"  then open http://127.0.0.1:8000/ and sign in as [bold]{user}[/] with the password "
                      f"[bold]{password}[/] (new each run; `pardus users add` makes real accounts)")


@deployments_app.command("add")
def deployments_add(
    deployment_id: Annotated[str, typer.Argument(help="A short id, e.g. LP-2024-C017.")],
    location: Annotated[str | None, typer.Option(help="Location (station) id.")] = None,
    plot: Annotated[str | None, typer.Option(help="Monitoring plot the location belongs to.")] = None,
    lat: Annotated[float | None, typer.Option(help="Latitude, decimal degrees (WGS84).")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude, decimal degrees (WGS84).")] = None,
    start: Annotated[str | None, typer.Option(help="Set-up time, e.g. 2024-05-01T10:00:00+10:00.")] = None,
    end: Annotated[str | None, typer.Option(help="Retrieval time.")] = None,
    camera: Annotated[str | None, typer.Option(help="Camera serial number.")] = None,
    utc_offset: Annotated[str, typer.Option(help="Zone the camera clock was set in.")] = "+10:00",
    sensitive: Annotated[bool, typer.Option(help="Hide the exact place in public exports.")] = False,
) -> None:
    """Record (or update) a deployment: which camera stood where, from when to when."""
    from pardus.ingest.deployments import (
        DeploymentError,
        DeploymentSpec,
        parse_instant,
        parse_utc_offset,
        upsert_deployment,
    )

    with workspace_cmd(DeploymentError) as ws:
        off = parse_utc_offset(utc_offset)
        spec = DeploymentSpec(
            id=deployment_id,
            location_id=location,
            plot=plot,
            latitude=lat,
            longitude=lon,
            camera_id=camera,
            start=parse_instant(start, off, "--start"),
            end=parse_instant(end, off, "--end"),
            utc_offset_minutes=off,
            sensitive=sensitive,
        )
        with ws.db.session() as s:
            upsert_deployment(s, spec)
    console.print(f"Deployment {deployment_id} recorded.")


@deployments_app.command("import")
def deployments_import(
    sheet: Annotated[
        Path, typer.Argument(help="CSV with Camtrap DP deployment columns (deploymentID, ...).")
    ],
    encoding: Annotated[
        str | None, typer.Option(help="The sheet's text encoding when it is not UTF-8, e.g. cp1251.")
    ] = None,
) -> None:
    """Record many deployments from a field sheet (CSV). Nothing is recorded if any row is wrong."""
    from pardus.ingest.deployments import DeploymentError, load_deployments_csv

    with workspace_cmd(DeploymentError, OSError) as ws, ws.db.session() as s:
        ids = load_deployments_csv(s, sheet, encoding=encoding)
    console.print(f"{len(ids)} deployments recorded from {sheet}.")


@deployments_app.command("list")
def deployments_list() -> None:
    """All deployments with their place and dates."""
    from sqlalchemy import select

    from pardus.store.models import Deployment

    with open_cli_workspace() as ws, ws.db.session() as s:
        deps = list(s.scalars(select(Deployment).order_by(Deployment.id)))
        table = Table(title="Deployments")
        for col in (
            "deployment",
            "location",
            "plot",
            "lat",
            "lon",
            "camera",
            "start",
            "end",
            "clock offset",
        ):
            table.add_column(col)
        for d in deps:
            loc = d.location
            table.add_row(
                d.id,
                d.location_id or "-",
                (loc.plot if loc else None) or "-",
                f"{loc.latitude:.4f}" if loc and loc.latitude is not None else "-",
                f"{loc.longitude:.4f}" if loc and loc.longitude is not None else "-",
                d.camera_id or "-",
                str(d.start)[:16] if d.start else "-",
                str(d.end)[:16] if d.end else "-",
                f"{d.clock_offset_s:+.0f} s",
            )
    console.print(table)
