"""`pardus cameras ...`: online cameras and their upload tokens."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pardus.console import console, workspace_cmd

cameras_app = typer.Typer(help="Online cameras: register them, issue and revoke their upload tokens.",
                          no_args_is_help=True)


def _show_token(camera_id: str, token: str) -> None:
    console.print(f"Token for camera [bold]{camera_id}[/] (shown only now; Pardus keeps only a hash of it):")
    console.print(token, soft_wrap=True, highlight=False)
    console.print(f"The camera sends it as: Authorization: Bearer <token>  to  /api/v1/cameras/{camera_id}/media")


@cameras_app.command("add")
def cameras_add(
    camera_id: Annotated[str, typer.Argument(help="Camera id, e.g. its serial: LP-C017.")],
    interval: Annotated[int | None, typer.Option(help="Seconds between heartbeats; silence past 1.5x alerts.")] = None,
    make: Annotated[str | None, typer.Option(help="Maker, e.g. RECONYX.")] = None,
    model: Annotated[str | None, typer.Option(help="Model, e.g. HYPERFIRE 4G.")] = None,
) -> None:
    """Register an online camera and print its upload token.

    Example: pardus cameras add LP-C017 --interval 3600
    """
    from pardus.live.cameras import CameraError, add_camera

    with workspace_cmd(CameraError) as ws:
        _show_token(camera_id, add_camera(ws, camera_id, expected_interval_s=interval, make=make, model=model))


@cameras_app.command("token")
def cameras_token(camera_id: Annotated[str, typer.Argument(help="Camera id.")]) -> None:
    """Issue a new token for a camera; its old token stops working at once."""
    from pardus.live.cameras import CameraError, issue_token

    with workspace_cmd(CameraError) as ws:
        _show_token(camera_id, issue_token(ws, camera_id))


@cameras_app.command("revoke")
def cameras_revoke(camera_id: Annotated[str, typer.Argument(help="Camera id.")]) -> None:
    """Stop a camera's token (stolen or lost camera). `pardus cameras token` issues a new one."""
    from pardus.live.cameras import CameraError, revoke_token

    with workspace_cmd(CameraError) as ws:
        revoke_token(ws, camera_id)
        console.print(f"Camera {camera_id}: token revoked; its uploads are refused from now on.")


@cameras_app.command("list")
def cameras_list() -> None:
    """The online cameras with their token state, last contact and latest health."""
    from pardus.live.cameras import list_cameras

    with workspace_cmd() as ws:
        table = Table(title="Online cameras")
        for col in ("camera", "token", "interval s", "last seen (UTC)", "battery %", "signal dBm", "free MB"):
            table.add_column(col)
        for c in list_cameras(ws):
            token = "[red]revoked[/]" if c.revoked else ("[green]active[/]" if c.has_token else "none")
            h = c.health
            table.add_row(c.id, token, str(c.expected_interval_s or "-"), (c.last_seen or "never")[:19],
                          str(h.get("battery_pct", "-")), str(h.get("signal_dbm", "-")),
                          str(h.get("free_storage_mb", "-")))
        console.print(table)
