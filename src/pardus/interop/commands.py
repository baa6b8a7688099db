"""`pardus export ...` and `pardus import ...`: the field's file formats from the command line.

Register in cli.py with:
    from pardus.interop.commands import export_app, import_app
    app.add_typer(export_app, name="export")
    app.add_typer(import_app, name="import")
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from pardus.console import console, err, open_cli_workspace, workspace_cmd
from pardus.console import fail as _fail

export_app = typer.Typer(help="Write data for GBIF, Timelapse, AddaxAI and other tools.", no_args_is_help=True)
import_app = typer.Typer(help="Read packages and results made by other tools.", no_args_is_help=True)


Deployments = Annotated[
    list[str] | None, typer.Option("--deployment", "-d", help="Only this deployment (repeat for several).")
]


@export_app.command("camtrap-dp")
def export_camtrap_dp_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the package into (created if needed).")],
    project: Annotated[str | None, typer.Option(help="Project to export, if the store holds several.")] = None,
    deployment: Deployments = None,
    coordinate_precision: Annotated[
        float, typer.Option(help="Degrees to round sensitive places to (0.1 is about 11 km).")
    ] = 0.1,
    exact_coordinates: Annotated[
        bool, typer.Option(help="Write sensitive places exactly (reviewers and admins only; needs --user and "
                                "your password, asked for or PARDUS_PASSWORD; recorded in the audit log).")
    ] = False,
    user: Annotated[str | None, typer.Option(help="Your user name, checked when exact places are asked for.")] = None,
    copy_media: Annotated[bool, typer.Option(help="Copy the stored photos into the package folder.")] = False,
    name: Annotated[str | None, typer.Option(help="Package name (datapackage.json 'name').")] = None,
    media_url: Annotated[str | None, typer.Option(
        help="Where the photos are published (https://...): filePath becomes this address + the photo's path.")] = None,
    title: Annotated[str | None, typer.Option(help="Title of the dataset.")] = None,
    description: Annotated[str | None, typer.Option(help="Description of the dataset.")] = None,
    contributor: Annotated[list[str] | None, typer.Option(
        help="'Name[:role[:email]]', role one of contact, principalInvestigator, rightsHolder, publisher, "
             "contributor (repeat for several).")] = None,
    license: Annotated[str | None, typer.Option(
        help="Licence of the data (e.g. CC-BY-4.0, CC0-1.0); also of the media unless --media-license.")] = None,
    media_license: Annotated[str | None, typer.Option(help="Licence of the photos, if not the data's.")] = None,
    rights_holder: Annotated[str | None, typer.Option(help="Who holds the rights (added as a contributor).")] = None,
    project_title: Annotated[str | None, typer.Option(help="Title of the project (datapackage.json project).")] = None,
    project_acronym: Annotated[str | None, typer.Option(help="Acronym of the project.")] = None,
    sampling_design: Annotated[str | None, typer.Option(
        help="simpleRandom, systematicRandom, clusteredRandom, experimental, targeted or opportunistic.")] = None,
    citation: Annotated[str | None, typer.Option(help="How to cite the dataset (bibliographicCitation).")] = None,
    metadata: Annotated[Path | None, typer.Option(
        help="JSON file of datapackage.json properties (title, contributors, licenses, project, ...); "
             "the options above go on top.")] = None,
) -> None:
    """Write a Camtrap DP 1.0.2 package (datapackage.json and CSV tables) for GBIF.

    Sensitive places are rounded to --coordinate-precision degrees; photos with people are marked
    not public; photos whose clock cannot be trusted are left out. People's review is published at
    event level too. The package is checked against the standard before this command ends.

    Example: pardus export camtrap-dp gbif-2024 --title "Leopards of Land of the Leopard 2024"
    --contributor "Olga Ivanova:principalInvestigator:olga@example.org" --license CC-BY-4.0
    --rights-holder "Land of the Leopard NP" --media-url https://photos.example.org/2024/
    """
    import os

    from pardus.interop.camtrap_dp import (
        CamtrapDPError,
        PackageMetadata,
        export_camtrap_dp,
        parse_contributor,
        read_metadata_file,
    )
    from pardus.interop.release import export_with_exact_places

    try:
        given = PackageMetadata(
            title=title, description=description,
            contributors=[parse_contributor(c) for c in contributor or []], license=license,
            media_license=media_license, rights_holder=rights_holder, project_title=project_title,
            project_acronym=project_acronym, sampling_design=sampling_design, bibliographic_citation=citation,
            extra=read_metadata_file(metadata) if metadata is not None else {},
        )  # fmt: skip
    except CamtrapDPError as exc:
        raise _fail(str(exc)) from None

    password = None
    if exact_coordinates:
        if not user:
            raise _fail("exact coordinates need --user NAME and your password, so it is known who took them")
        password = os.environ.get("PARDUS_PASSWORD") or typer.prompt(f"Password of {user}", hide_input=True)
    with workspace_cmd(CamtrapDPError) as ws:
        common: dict[str, Any] = {"project_id": project, "deployment_ids": deployment,
                                  "coordinate_precision": coordinate_precision, "copy_media": copy_media,
                                  "name": name, "metadata": given, "media_url": media_url}
        if exact_coordinates:
            assert user is not None and password is not None
            rep = export_with_exact_places(ws, out, user=user, password=password, **common)
        else:
            rep = export_camtrap_dp(ws, out, **common)
    console.print("[bold green]Written:[/] " + ", ".join(f"{v} {k}" for k, v in rep.counts.items()) + f" in {out}")
    if rep.obscured_locations:
        console.print(
            f"{len(rep.obscured_locations)} sensitive place(s) rounded to {rep.coordinate_precision} degrees"
            f" ({rep.redacted_values} other mention(s) blurred)."
        )
    for w in rep.warnings:
        console.print(f"[yellow]Note:[/] {w}")
    if rep.validation is not None and not rep.validation.valid:
        err.print("[bold red]The package does not pass the Camtrap DP checks:[/]\n" + rep.validation.summary())
        raise typer.Exit(code=2)
    if rep.validation is not None:
        console.print("Checked: " + rep.validation.summary())


@export_app.command("megadetector")
def export_megadetector_cmd(
    out: Annotated[Path, typer.Argument(help="The .json file to write.")],
    model: Annotated[str | None, typer.Option(help="Model whose detections to write, if there are several.")] = None,
    deployment: Deployments = None,
    format_version: Annotated[str, typer.Option(help="MegaDetector output format version to declare.")] = "1.4",
) -> None:
    """Write detections as a MegaDetector results file (opens in Timelapse and AddaxAI).

    --model is a detector run (`pardus process` records one key per run; an imported file its
    detector's name) or one model inside a run. With several deployments each file is written as
    <deployment>/<path on the card>.
    """
    from pardus.interop.megadetector_json import MegaDetectorError, export_megadetector

    with workspace_cmd(MegaDetectorError) as ws:
        counts = export_megadetector(
            ws, out, model_name=model, deployment_ids=deployment, format_version=format_version
        )
    console.print(f"[bold green]Written:[/] {counts['images']} files, {counts['detections']} boxes to {out}")


@export_app.command("coco")
def export_coco_cmd(
    out: Annotated[Path, typer.Argument(help="The .json file to write.")],
    project: Annotated[str | None, typer.Option(help="Project to export.")] = None,
    deployment: Deployments = None,
) -> None:
    """Write media and labels as COCO Camera Traps JSON (for training and LILA-style sharing)."""
    from pardus.interop.coco_ct import CocoError, export_coco

    with workspace_cmd(CocoError) as ws:
        counts = export_coco(ws, out, project_id=project, deployment_ids=deployment)
    console.print(f"[bold green]Written:[/] {counts['images']} images, {counts['annotations']} annotations to {out}")


@export_app.command("timelapse")
def export_timelapse_cmd(
    out: Annotated[Path, typer.Argument(help="The .csv file to write.")],
    deployment: Deployments = None,
) -> None:
    """Write the review table as a CSV that Timelapse imports (one row per observation), and its template.

    Photos are named <deployment>/<path on the card>: point Timelapse at a folder holding one
    subfolder per card. The template's data fields are written beside the CSV (.template.json).
    Bring the work back with `pardus import timelapse`.
    """
    from pardus.interop.timelapse import export_timelapse, template_path

    with open_cli_workspace() as ws:
        n = export_timelapse(ws, out, deployment_ids=deployment)
    console.print(f"[bold green]Written:[/] {n} rows to {out}; template fields in {template_path(out)}")


@import_app.command("camtrap-dp")
def import_camtrap_dp_cmd(
    path: Annotated[Path, typer.Argument(help="The package folder, or its datapackage.json.")],
    prefix: Annotated[str, typer.Option(help="Put this before every ID, if they clash with ones in the store.")] = "",
) -> None:
    """Read a Camtrap DP 1.0 package (deployments, media, observations) into Pardus.

    Photos given as internet addresses are recorded but not downloaded. A package with errors is
    not imported; the errors are listed by file, row and column.
    """
    from pardus.interop.camtrap_dp import CamtrapDPError, import_camtrap_dp

    with workspace_cmd(CamtrapDPError) as ws:
        rep = import_camtrap_dp(ws, path, prefix=prefix)
    table = Table(title=f"Imported Camtrap DP {rep.version} as project {rep.project_id}")
    table.add_column("what")
    table.add_column("how many", justify="right")
    for k, v in rep.counts.items():
        table.add_row(k.replace("_", " "), str(v))
    console.print(table)
    for w in rep.warnings:
        console.print(f"[yellow]Note:[/] {w}")


@import_app.command("megadetector")
def import_megadetector_cmd(
    path: Annotated[Path, typer.Argument(help="The MegaDetector results .json file.")],
    image_root: Annotated[Path | None, typer.Option(
        help="Folder the results' file paths are relative to: photos are then recognised by their content, "
             "which a park-wide file needs (every card holds a DCIM/100MEDIA/IMG_0001.JPG).")] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Record photos not yet in Pardus under this deployment.")
    ] = None,
    skip_unmatched: Annotated[bool, typer.Option(
        help="Import the entries that match and list the others (otherwise any unmatched entry refuses the file).")
    ] = False,
    observations: Annotated[bool | None, typer.Option(
        "--observations/--no-observations",
        help="Also record the calls as machine observations (default: when the file carries classifications, "
             "as SpeciesNet's and AddaxAI's do).")] = None,
    min_conf: Annotated[float | None, typer.Option(
        help="Boxes from this confidence are calls (default: the file's typical threshold, else 0.2).")] = None,
    taxa: Annotated[Path | None, typer.Option(
        help="CSV with columns label,scientificName naming the classifier's classes Pardus cannot name itself.")
    ] = None,
    classifier: Annotated[str | None, typer.Option(
        help="Name recorded as who classified (default: the file's info.classifier).")] = None,
) -> None:
    """Read MegaDetector results as detections on the photos Pardus holds, and their classifications
    (SpeciesNet, AddaxAI) as machine observations.

    Every entry is matched, and every class named, before anything is written; a file whose entries
    match no photo, or whose classes Pardus cannot name without --taxa, is refused (exit 1) with
    what to do, and nothing is imported.

    Example: pardus import megadetector speciesnet_md.json --image-root /data/cards --taxa my-classes.csv
    """
    from pardus.interop.megadetector_json import MegaDetectorError, import_megadetector

    with workspace_cmd(MegaDetectorError) as ws:
        rep = import_megadetector(ws, path, image_root=image_root, deployment_id=deployment,
                                  skip_unmatched=skip_unmatched, observations=observations, min_conf=min_conf,
                                  taxa=taxa, classifier=classifier)
        if rep.observations:
            from pardus.review.queue import refresh

            with ws.db.session() as s:
                queued = refresh(s)
    console.print(
        f"[bold green]Done:[/] {rep.images} files, {rep.detections} boxes from {rep.model_name} ({rep.model_version})"
    )
    if rep.observations:
        by = f" (species by {rep.classifier})" if rep.classifier else ""
        console.print(f"{rep.observations} machine observation(s) from boxes of confidence {rep.min_conf:g} or more"
                      f"{by}, {rep.events} event(s); review queue: {queued} sequences.")
    skipped = rep.unmatched + rep.ambiguous
    if skipped:
        console.print(f"[yellow]{len(skipped)} file(s) matched no photo and were skipped[/] (first: {skipped[0]}).")
    if rep.placeholders:
        console.print(f"{rep.placeholders} file(s) recorded under {deployment} as photos not yet in Pardus.")


@import_app.command("coco")
def import_coco_cmd(
    path: Annotated[Path, typer.Argument(help="The COCO Camera Traps .json file.")],
    project: Annotated[str | None, typer.Option(help="Project id to file it under.")] = None,
    utc_offset: Annotated[str, typer.Option(help="Zone the camera clocks were set to, e.g. +10:00.")] = "+00:00",
    prefix: Annotated[str, typer.Option(help="Put this before every ID.")] = "",
) -> None:
    """Read a COCO Camera Traps file (locations, images, labels and boxes)."""
    from pardus.ingest.deployments import DeploymentError, parse_utc_offset
    from pardus.interop.coco_ct import CocoError
    from pardus.interop.coco_import import import_coco

    with workspace_cmd(CocoError, DeploymentError) as ws:
        rep = import_coco(ws, path, project_id=project, utc_offset_minutes=parse_utc_offset(utc_offset), prefix=prefix)
    console.print(
        f"[bold green]Done:[/] {rep.images} images, {rep.annotations} annotations, {rep.locations} locations "
        f"(project {rep.project_id})."
    )


@import_app.command("timelapse")
def import_timelapse_cmd(
    path: Annotated[Path, typer.Argument(help="The Timelapse CSV (File > Export data to a CSV file).")],
    image_root: Annotated[Path | None, typer.Option(
        help="The image set's root folder: photos are then recognised by their content.")] = None,
    reviewer: Annotated[str, typer.Option(help="Name recorded as who labelled the photos.")] = "Timelapse",
    skip_unmatched: Annotated[bool, typer.Option(
        help="Import the rows whose photo Pardus holds and list the others.")] = False,
) -> None:
    """Read the labels people made in Timelapse back as human observations.

    Rows that say what Pardus already says change nothing (importing twice adds nothing); the file
    is checked whole first, and a bad row refuses it with the row named.

    Example: pardus import timelapse review.csv --reviewer "O. Ivanova"
    """
    from pardus.interop.timelapse import TimelapseError, import_timelapse

    with workspace_cmd(TimelapseError) as ws:
        rep = import_timelapse(ws, path, image_root=image_root, reviewer=reviewer, skip_unmatched=skip_unmatched)
    console.print(
        f"[bold green]Done:[/] {rep.rows} rows: {rep.added} new human observation(s), {rep.unchanged} unchanged, "
        f"{rep.superseded} earlier label(s) corrected, {rep.deleted} marked deleted, {rep.unlabelled} unlabelled"
    )
    if rep.unmatched:
        console.print(f"[yellow]{len(rep.unmatched)} row(s) name no photo in Pardus[/] (first: {rep.unmatched[0]}).")


@export_app.command("dwca")
def export_dwca_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the archive into, or a .zip file.")],
    project: Annotated[str | None, typer.Option(help="Project to export, if the store holds several.")] = None,
    deployment: Deployments = None,
    coordinate_precision: Annotated[
        float, typer.Option(help="Degrees to round sensitive places to (0.1 is about 11 km).")
    ] = 0.1,
    title: Annotated[str | None, typer.Option(help="Title of the dataset.")] = None,
    contributor: Annotated[list[str] | None, typer.Option(help="'Name[:role[:email]]' (repeat).")] = None,
    license: Annotated[str | None, typer.Option(help="Licence of the data (e.g. CC-BY-4.0).")] = None,
    rights_holder: Annotated[str | None, typer.Option(help="Who holds the rights.")] = None,
    metadata: Annotated[Path | None, typer.Option(help="JSON file of datapackage.json properties.")] = None,
) -> None:
    """Write a Darwin Core Archive for GBIF (Occurrence core, meta.xml, EML).

    Made from the same Camtrap DP package `pardus export camtrap-dp` writes (sensitive places
    rounded alike); occurrences are the event-level animal observations a person verified.

    Example: pardus export dwca gbif-2024.zip --title "Leopards 2024" --license CC-BY-4.0
    """
    from pardus.interop.camtrap_dp import CamtrapDPError, PackageMetadata, parse_contributor, read_metadata_file
    from pardus.interop.dwca import DwcaError, export_dwca

    with workspace_cmd(CamtrapDPError, DwcaError) as ws:
        given = PackageMetadata(
            title=title, contributors=[parse_contributor(c) for c in contributor or []], license=license,
            rights_holder=rights_holder, extra=read_metadata_file(metadata) if metadata is not None else {})
        rep = export_dwca(ws, out, project_id=project, deployment_ids=deployment,
                          coordinate_precision=coordinate_precision, metadata=given)
    console.print(f"[bold green]Written:[/] {rep.occurrences} occurrences to {out}")
    for w in rep.warnings:
        console.print(f"[yellow]Note:[/] {w}")


def validate_cmd(
    path: Annotated[Path, typer.Argument(help="A Camtrap DP folder, a Darwin Core Archive (folder or .zip), "
                                              "MegaDetector results or a COCO Camera Traps .json.")],
) -> None:
    """Check a package or results file before importing or publishing it; exit 1 when it has problems.

    Register in cli.py with: app.command("validate")(validate_cmd)

    Example: pardus validate gbif-2024/
    """
    from pardus.interop.validate import validate_path

    v = validate_path(path)
    if v.kind == "unknown":
        raise _fail("; ".join(v.problems))
    if v.problems:
        err.print(f"[bold red]{v.kind}: {len(v.problems)} problem(s)[/] in {path}:\n  " + "\n  ".join(v.problems[:30])
                  + ("\n  ..." if len(v.problems) > 30 else ""))
        raise typer.Exit(code=1)
    console.print(f"[bold green]{v.kind}, valid:[/] {v.summary}")


@export_app.command("camtrapr")
def export_camtrapr_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write recordTable.csv and camOp.csv into.")],
    plot: Annotated[str, typer.Option(help="The plot, as in the deployments sheet.")],
    year: Annotated[int, typer.Option(help="The year (local to the cameras).")],
    species: Annotated[str, typer.Option(help="Focus species of the report the tables match.")] = "Panthera pardus",
    threshold_minutes: Annotated[float, typer.Option(help="Minutes between independent records.")] = 30.0,
    occasion_days: Annotated[int, typer.Option(help="Days per occasion of the detection histories.")] = 7,
) -> None:
    """Write camtrapR's record table, camera operation matrix and detection histories of one plot and year.

    One row per independent event the plot-year report counts; read them in R with read.csv. Each
    species' detection history and effort are what camtrapR's detectionHistory(day1 = "survey",
    includeEffort = TRUE) writes from those tables, under camtrapR's file names.

    Example: pardus export camtrapr r-tables --plot North --year 2024 --occasion-days 7
    """
    from pardus.interop.camtrapr import CamtraprError, export_camtrapr
    from pardus.stats.report import ReportError

    with workspace_cmd(ReportError, CamtraprError) as ws:
        files = export_camtrapr(ws, out, plot, year, species=species, threshold_minutes=threshold_minutes,
                                occasion_days=occasion_days)
    console.print(f"[bold green]Written:[/] {files.records} independent records to {files.record_table}, "
                  f"{files.stations} stations to {files.camera_operation}, detection histories of "
                  f"{len(files.detection_histories)} species ({occasion_days}-day occasions)")


@export_app.command("individuals")
def export_individuals_cmd(
    out: Annotated[Path, typer.Argument(help="A .json file, or a folder for the two CSV tables.")],
    species: Annotated[str | None, typer.Option(help="Only individuals of this species (or genus).")] = None,
    code: Annotated[list[str] | None, typer.Option(help="Only this individual (repeat for several).")] = None,
    coordinate_precision: Annotated[
        float, typer.Option(help="Degrees to round sensitive places to (0.1 is about 11 km).")
    ] = 0.1,
) -> None:
    """Write the individuals catalogue on its own: each animal and the photos people confirmed, per flank.

    Sensitive places leave rounded, exact coordinates in notes blurred; the machine's proposals are
    not part of it.

    Example: pardus export individuals leopards-2024.json --species "Panthera pardus"
    """
    from pardus.interop.individuals import IndividualsExportError, export_individuals

    with workspace_cmd(IndividualsExportError) as ws:
        rep = export_individuals(ws, out, species=species, codes=code, coordinate_precision=coordinate_precision)
    console.print(f"[bold green]Written:[/] {rep.individuals} individuals, {rep.photos} confirmed photos to "
                  + ", ".join(str(f) for f in rep.files))
    if rep.obscured_locations:
        console.print(f"{len(rep.obscured_locations)} sensitive place(s) rounded to {coordinate_precision:g} degrees"
                      f" ({rep.redacted_values} mention(s) in notes blurred).")


@export_app.command("wildlife-insights")
def export_wildlife_insights_cmd(
    out: Annotated[Path, typer.Argument(help="Folder to write the four tables (projects, cameras, ...) into.")],
    project: Annotated[str | None, typer.Option(help="Project to export, if the store holds several.")] = None,
    deployment: Deployments = None,
    wi_project_id: Annotated[str | None, typer.Option(help="The project's id in Wildlife Insights.")] = None,
    project_field: Annotated[list[str] | None, typer.Option(
        help="A project template column Pardus does not know, as KEY=VALUE (repeat), e.g. country_code=RUS.")
    ] = None,
    coordinate_precision: Annotated[
        float, typer.Option(help="Degrees to round sensitive places to (0.1 is about 11 km).")
    ] = 0.1,
    media_url: Annotated[str | None, typer.Option(
        help="Put before each photo's <deployment>/<path> in 'location' (where the photos are uploaded).")] = None,
) -> None:
    """Write Wildlife Insights' bulk-upload tables: people's identifications, local times, sensitive places rounded.

    Example: pardus export wildlife-insights wi-2024 --project-field country_code=RUS --media-url gs://bucket/
    """
    from pardus.interop.wildlife_insights import WildlifeInsightsError, export_wildlife_insights

    fields: dict[str, str] = {}
    for item in project_field or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise _fail(f"--project-field takes KEY=VALUE, not {item[:60]!r}")
        fields[key.strip()] = value.strip()
    with workspace_cmd(WildlifeInsightsError) as ws:
        rep = export_wildlife_insights(ws, out, project_id=project, deployment_ids=deployment,
                                       wi_project_id=wi_project_id, project_fields=fields,
                                       coordinate_precision=coordinate_precision, media_url=media_url)
    console.print("[bold green]Written:[/] " + ", ".join(f"{v} {k}" for k, v in rep.counts.items()) + f" in {out}")
    if rep.obscured_locations:
        console.print(f"{len(rep.obscured_locations)} sensitive place(s) rounded to {coordinate_precision:g} degrees.")
    for w in rep.warnings:
        console.print(f"[yellow]Note:[/] {w}")


@import_app.command("wildlife-insights")
def import_wildlife_insights_cmd(
    folder: Annotated[Path, typer.Argument(help="Folder with deployments.csv and images.csv (and projects, cameras).")],
    utc_offset: Annotated[str, typer.Option(help="Zone the camera clocks were set to, e.g. +10:00.")] = "+00:00",
    prefix: Annotated[str, typer.Option(help="Put this before every ID.")] = "",
) -> None:
    """Read Wildlife Insights tables (bulk-upload templates or a project download).

    People's identifications become human observations, Wildlife Insights' computer vision machine
    ones; the tables are checked whole first, and a bad line refuses them with file, line and column.

    Example: pardus import wildlife-insights wi-download/ --utc-offset +10:00
    """
    from pardus.ingest.deployments import DeploymentError, parse_utc_offset
    from pardus.interop.wi_import import import_wildlife_insights
    from pardus.interop.wildlife_insights import WildlifeInsightsError

    with workspace_cmd(WildlifeInsightsError, DeploymentError) as ws:
        rep = import_wildlife_insights(ws, folder, utc_offset_minutes=parse_utc_offset(utc_offset), prefix=prefix)
    console.print("[bold green]Done:[/] " + ", ".join(f"{v} {k}" for k, v in rep.counts.items())
                  + f" (project {rep.project_id})")
