"""`pardus cameras ...`, `pardus users ...` and `pardus serve`: the live side of the park."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pardus.config import get_settings
from pardus.console import console
from pardus.console import fail as _fail
from pardus.store import Workspace, open_workspace

cameras_app = typer.Typer(help="Online cameras: register them, issue and revoke their upload tokens.",
                          no_args_is_help=True)
users_app = typer.Typer(help="People who use the API and web app (rangers act on alerts).", no_args_is_help=True)


@contextmanager
def workspace_cmd(*errors: type[Exception]) -> Iterator[Workspace]:
    """The data folder's workspace for one command; the listed errors become a clear message and exit 1."""
    ws = open_workspace(get_settings())
    try:
        yield ws
    except errors as exc:
        raise _fail(str(exc)) from exc
    finally:
        ws.close()


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


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="User name, e.g. ivanov.")],
    role: Annotated[str, typer.Option(help="viewer, ranger, ecologist or admin.")] = "ranger",
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
) -> None:
    """Add a person (or give them a new token) and print their API token once."""
    from pardus.web.users import UserError, add_user

    with workspace_cmd(UserError) as ws:
        token = add_user(ws, name, role, email)
        console.print(f"{name} ({role}); token, shown only now:")
        console.print(token, soft_wrap=True, highlight=False)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rules: Annotated[Path | None, typer.Option(help="Alert rules YAML (default: <data dir>/alert-rules.yaml).")]
    = None,
    pipeline: Annotated[bool, typer.Option(help="Process uploads and raise alerts (--no-pipeline: store only).")]
    = True,
    mqtt: Annotated[bool, typer.Option(help="Also take heartbeats and photos from the MQTT broker.")] = False,
    mqtt_host: Annotated[str, typer.Option(help="MQTT broker address.")] = "127.0.0.1",
    mqtt_port: Annotated[int, typer.Option(help="MQTT broker port.")] = 1883,
    max_upload_mb: Annotated[float, typer.Option(help="Largest file a camera may send, MB.")] = 64.0,
    retry_backoff: Annotated[float, typer.Option(help="Seconds before the first delivery retry (doubles).")] = 1.0,
) -> None:
    """Run the web API: camera uploads and heartbeats, the processing queue, rangers' alerts.

    Example: pardus serve --host 0.0.0.0 --port 8000 --rules park-rules.yaml --mqtt
    """
    import uvicorn

    from pardus.alerts.notify import ChannelError
    from pardus.alerts.rules import RulesError
    from pardus.web.app import LiveConfig, create_app

    ws = open_workspace(get_settings())
    config = LiveConfig(pipeline=pipeline, rules_path=rules, max_upload_bytes=int(max_upload_mb * (1 << 20)),
                        mqtt=mqtt, mqtt_host=mqtt_host, mqtt_port=mqtt_port, backoff_s=retry_backoff)
    try:
        app = create_app(ws, config)
    except (RulesError, ChannelError) as exc:
        raise _fail(f"{exc} (fix the rules file and start again)") from exc
    console.print(f"Pardus listening on http://{host}:{port}  (pipeline {'on' if pipeline else 'off'})")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    finally:
        ws.close()
