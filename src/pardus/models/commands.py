"""`pardus models`: what can run here, and where the rest would come from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import DownloadColumn, Progress
from rich.table import Table

from pardus.console import console, make_progress, open_cli_workspace

models_app = typer.Typer(help="The AI models: which are installed, what they find, their licences.",
                         no_args_is_help=True)


@models_app.command("list")
def models_list() -> None:
    """List the models Pardus knows, whether their weights are on this machine, and their source."""
    from pardus.models.registry import MODELS

    table = Table(title="Models")
    for col in ("name", "version", "kind", "here?", "licence"):
        table.add_column(col, no_wrap=col in ("name", "version"))
    for m in MODELS.values():
        here = "[green]yes[/]" if m.available() else "[yellow]no[/]"
        table.add_row(m.name, m.version, m.kind, here, m.licence)
    console.print(table)
    for m in MODELS.values():
        console.print(f"[bold]{m.name}[/] finds {', '.join(m.classes)}. {m.source}.")


@models_app.command("download")
def models_download(
    name: Annotated[str, typer.Argument(help="Model name, as `pardus models list` shows it.")],
    url: Annotated[str | None, typer.Option(help="Fetch from this address instead of the known one.")] = None,
    sha256: Annotated[str | None, typer.Option(help="The SHA-256 published with the release; the file "
                                                    "must match it or it is thrown away.")] = None,
) -> None:
    """Fetch a field model's weights (MegaDetector, ...) into the data folder, verified by checksum.

    Pardus never downloads anything unless you run this. Offline models that came with
    `make install` just say where they are.
    """
    from pardus.config import get_settings
    from pardus.models.download import DownloadError, download
    from pardus.models.registry import ModelUnavailableError, get

    models_dir = get_settings().data_dir / "models"
    try:
        m = get(name)
        if m.package is not None:
            console.print(f"{m.name} is installed: {m.weights_path()}")
            return
        try:
            console.print(f"{m.name} is already here: {m.weights_path(models_dir)}")
            return
        except ModelUnavailableError:
            pass
        with Progress(*Progress.get_default_columns(), DownloadColumn(), console=console) as progress:
            bar = progress.add_task(f"downloading {m.name}", total=None)
            path = download(m, models_dir, url=url, sha256=sha256,
                            progress=lambda done, total: progress.update(bar, completed=done, total=total))
    except (ModelUnavailableError, DownloadError) as exc:
        console.print(f"[yellow]{exc}[/]")
        raise typer.Exit(code=1) from exc
    console.print(f"{m.name} saved and verified: {path}")


@models_app.command("train-species")
def models_train_species(
    task: Annotated[str, typer.Option(help="species (animal names) or fire (fire / smoke / none).")] = "species",
    threshold: Annotated[float, typer.Option(help="Below this calibrated probability: 'unknown'.")] = 0.5,
    min_examples: Annotated[int, typer.Option(help="Labels with fewer examples are left out (and named).")] = 3,
    from_folder: Annotated[Path | None, typer.Option(
        help="Learn from a folder with one sub-folder per label instead of the reviewed photos "
             "(each photo is cropped by the detector, as `pardus process` crops them).")] = None,
    from_labels: Annotated[Path | None, typer.Option(
        help="Learn from people's labels in a Camtrap DP package (folder or datapackage.json), a COCO Camera "
             "Traps .json or a Timelapse .csv instead of the reviewed photos. Boxes in the file are the crops; "
             "photos without one are cropped by the detector. Labels a machine made are ignored.")] = None,
    image_root: Annotated[Path | None, typer.Option(
        help="Where the --from-labels file's photos are (default: the package's or the file's folder).")] = None,
    make_current: Annotated[bool, typer.Option(
        "--make-current", help="Use the new head even if it is less accurate than the current one "
                               "(or, for a first head, than the ImageNet map).")] = False,
) -> None:
    """Teach Pardus the park's own species (or fire and smoke) from photos people have labelled.

    Prints a teaching report (per label: examples, cross-validated recall, what it was mistaken for;
    labels left out and why), saved as JSON beside the head. The next `pardus process` names animals
    with the new head only if it is at least as accurate as the current one, or, for the first head,
    as the ImageNet map on the same photos for the labels it can name (or with --make-current);
    results of older heads are kept.
    """
    from rich.markup import escape

    from pardus.pipeline.teach import teach_head

    if task not in ("species", "fire"):
        console.print(f"[red]--task must be species or fire, not {task!r}[/]")
        raise typer.Exit(code=2)
    with open_cli_workspace() as ws:
        try:
            with make_progress() as progress:
                bar = progress.add_task("embedding the labelled examples", total=None)
                taught = teach_head(ws, task, threshold=threshold, min_examples=min_examples, folder=from_folder,
                                    label_file=from_labels, image_root=image_root, make_current=make_current,
                                    progress=lambda d, t: progress.update(bar, completed=d, total=t))
        except ValueError as exc:
            console.print(f"[red]{escape(str(exc))}[/]")
            raise typer.Exit(code=1) from exc
        heads = ws.settings.data_dir / "models"
    head, report = taught.head, taught.report
    for p in taught.problems[:20]:
        console.print(f"[yellow]{escape(p)}[/]")
    if len(taught.problems) > 20:
        console.print(f"[yellow]... and {len(taught.problems) - 20} more problems[/]")
    table = Table(title=f"{task} head {head.version}: teaching report (5-fold cross-validation)")
    for col in ("label", "examples", "recall", "unknown", "mistaken for"):
        table.add_column(col, justify="left" if col in ("label", "mistaken for") else "right")
    for label, c in report.classes.items():
        table.add_row(escape(label), str(c.examples), f"{c.recall:.0%}", f"{c.unknown:.0%}",
                      escape(", ".join(f"{k} x{n}" for k, n in list(c.mistaken_for.items())[:3])))
    for label, why in report.left_out.items():
        table.add_row(f"[yellow]{escape(label)}[/]", "-", "-", "-", f"[yellow]left out: {escape(why)}[/]")
    console.print(table)
    for line in report.lines():
        console.print(escape(line))
    colour = "green" if report.made_current else "yellow"
    console.print(f"[{colour}]{head.key}: {report.decision}[/]")
    console.print(f"Report: {heads / f'{task}-head-{head.version}.report.json'}")
    if report.made_current:
        console.print("Run `pardus process` to use it.")


@models_app.command("fit-mdv6")
def models_fit_mdv6(
    tflite: Annotated[Path, typer.Argument(help="MDV6-yolov10-c_full_integer_quant_edgetpu.tflite (MegaDetector "
                                                "v6 compact compiled for the Coral Edge TPU).")],
    weight_scale: Annotated[float | None, typer.Option(
        help="Override the first layer's weight scale (default: the value fitted in bench/mdv6_fit.py).")] = None,
) -> None:
    """Make MegaDetector v6 runnable on this CPU: recover its Edge TPU first layer into the data folder.

    The file's first convolution lives inside a compiled Edge TPU program; Pardus reads its 448
    parameters out of that program and writes them, with a copy of the model, to <data dir>/models/.
    Nothing is downloaded. The weights are AGPL-3.0 (MegaDetector v6, Ultralytics).
    """
    import hashlib
    import shutil

    from pardus.config import get_settings
    from pardus.models.mdv6 import WEIGHT_SCALE, RecoveryError, first_layer_path, recover_first_layer
    from pardus.models.registry import MEGADETECTOR_V6_C

    if not tflite.is_file():
        console.print(f"[red]{tflite} is not a file[/]")
        raise typer.Exit(code=2)
    sha = hashlib.sha256(tflite.read_bytes()).hexdigest()
    if sha != MEGADETECTOR_V6_C.sha256:
        console.print(f"[yellow]{tflite.name} has SHA-256 {sha[:16]}..., not the checked MDv6 file "
                      f"({(MEGADETECTOR_V6_C.sha256 or '')[:16]}...); trying anyway[/]")
    try:
        layer = recover_first_layer(tflite, weight_scale if weight_scale is not None else WEIGHT_SCALE)
    except (RecoveryError, ValueError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(code=1) from exc
    models_dir = get_settings().data_dir / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    target = models_dir / (MEGADETECTOR_V6_C.filename or tflite.name)
    if tflite.resolve() != target.resolve():
        shutil.copyfile(tflite, target)
    out = first_layer_path(target)
    layer.save(out)
    console.print(f"recovered {layer.weights.size} weights and {layer.bias.size} biases "
                  f"(max |w| {int(abs(layer.weights.astype(int)).max())}, weight scale {layer.weight_scale})")
    console.print(f"MegaDetector v6 is ready: {target} and {out}")
