"""`pardus detect`: the detection stage's thresholds per camera site."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pardus.console import console, fail, open_cli_workspace

detect_app = typer.Typer(help="Detection settings: animal thresholds per camera site, tuned from reviews.",
                         no_args_is_help=True)


@detect_app.command("thresholds")
def thresholds(
    apply: Annotated[bool, typer.Option("--apply", help="Save the proposed thresholds for the sites.")] = False,
    margin: Annotated[float, typer.Option(help="Proposed = margin x the faintest reviewed animal's score.")] = 0.9,
    min_reviewed: Annotated[int, typer.Option(help="Reviewed photos a site needs before it is tuned.")] = 20,
) -> None:
    """Show, per camera site, what the reviewed photos say about its animal threshold.

    A site whose reviewed animals all scored well above the default can take a higher threshold, so
    fewer empty photos reach the review queue; no reviewed animal is lost by it. People and vehicle
    thresholds are never raised.
    """
    from sqlalchemy import select

    from pardus.config import get_settings
    from pardus.pipeline.detect import DetectionStage
    from pardus.pipeline.site_thresholds import KEY, save_site_thresholds, site_tunings
    from pardus.pipeline.stages import detect_choice
    from pardus.store import open_workspace
    from pardus.store.models import Location

    settings = get_settings()
    # The detector `pardus process` runs: its default threshold, and only its boxes as evidence.
    stage = DetectionStage(detector=detect_choice(settings), tiles=settings.detect_tiles)
    with open_workspace(settings) as ws:
        default = stage.thresholds.animal
        tunings = site_tunings(ws, default, margin=margin, min_reviewed=min_reviewed, detect_key=stage.model_key)
        with ws.db.session() as s:
            current = {loc.id: (loc.extra or {}).get(KEY, {}).get("animal") for loc in s.scalars(select(Location))}
        table = Table(title=f"Animal thresholds per camera site (default {default})")
        for col in ("site", "reviewed", "with animals", "empty called animal", "faintest animal", "now",
                    "proposed", "empty removed", "why"):
            table.add_column(col)
        for t in tunings:
            table.add_row(t.location_id, str(t.reviewed), str(t.reviewed_non_blank), str(t.false_alarms),
                          f"{t.lowest_animal_score:.2f}" if t.lowest_animal_score is not None else "-",
                          f"{current.get(t.location_id) or default:.2f}",
                          f"{t.threshold:.2f}" if t.threshold is not None else "-",
                          str(t.false_alarms_removed), t.why)
        console.print(table)
        if not tunings:
            console.print("No reviewed photos with detection results yet: review some, then run this again.")
        if apply:
            n = save_site_thresholds(ws, tunings, by="pardus detect thresholds --apply")
            console.print(f"Saved thresholds for {n} site(s); the detect stage uses them for photos it processes "
                          "from now on.")


@detect_app.command("set-threshold")
def set_threshold(
    site: Annotated[str, typer.Argument(help="Camera site (location id).")],
    animal: Annotated[str, typer.Argument(help="Animal score between 0 and 1, or 'default' to clear it.")],
    by: Annotated[str, typer.Option("--by", envvar="PARDUS_USER", help="Who sets it (recorded).")] = "unknown",
) -> None:
    """Set a site's animal threshold by hand (or back to the default)."""
    from pardus.pipeline.site_thresholds import set_site_threshold

    value: float | None = None
    if animal != "default":
        try:
            value = float(animal)
        except ValueError:
            raise fail(f"{animal!r} is not a number: give a score such as 0.3, or 'default'") from None
    with open_cli_workspace() as ws:
        try:
            set_site_threshold(ws, site, value, by=by)
        except (KeyError, ValueError) as exc:
            raise fail(str(exc).strip("'\"")) from None
    console.print(f"{site}: animal threshold {'back to the default' if value is None else value}")
