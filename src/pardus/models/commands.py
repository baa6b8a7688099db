"""`pardus models`: what can run here, and where the rest would come from."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

models_app = typer.Typer(help="The AI models: which are installed, what they find, their licences.",
                         no_args_is_help=True)
console = Console()


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
) -> None:
    """Say where a model's weights come from. Pardus never fetches weights by itself."""
    from pardus.models.registry import ModelUnavailableError, get

    try:
        m = get(name)
        path = m.weights_path()
    except ModelUnavailableError as exc:
        console.print(f"[yellow]{exc}[/]")
        raise typer.Exit(code=1) from exc
    console.print(f"{m.name} is installed: {path}")
