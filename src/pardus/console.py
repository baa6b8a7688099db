"""The terminal every command writes to, and the one way a command fails.

Each room's ``commands.py`` is imported by ``pardus.cli``, so they cannot import from it; this
small module is what they share instead, so every error looks the same to a ranger.
"""

from __future__ import annotations

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit to raise (``raise fail(...)``)."""
    err.print(f"[bold red]Error:[/] {message}")
    return typer.Exit(code=1)
