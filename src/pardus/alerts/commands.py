"""`pardus alerts list|show|ack|resolve|check`: the rangers' side of alerts, from a terminal."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pardus.console import fail as _fail
from pardus.console import workspace_cmd

alerts_app = typer.Typer(help="Alerts for rangers: list, acknowledge, resolve; check a rules file.",
                         no_args_is_help=True)
console = Console()




@alerts_app.command("list")
def alerts_list(
    status: Annotated[str | None, typer.Option(help="new, acknowledged, resolved, open or all.")] = "open",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
) -> None:
    """The alerts, newest first (default: those not resolved yet)."""
    from pardus.alerts.lifecycle import AlertError, list_alerts

    table = Table(title=f"Alerts ({status})")
    for col in ("id", "created (UTC)", "kind", "camera", "status", "sightings", "by", "deliveries"):
        table.add_column(col)
    with workspace_cmd(AlertError) as ws, ws.db.session() as s:
        for a in list_alerts(s, None if status == "all" else status, limit):
            d = a.details or {}
            deliveries = ", ".join(f"{k}:{v.get('status')}" for k, v in (d.get("deliveries") or {}).items())
            table.add_row(a.id[:8], f"{a.created:%Y-%m-%d %H:%M:%S}", a.kind, a.camera_id or "-", a.status,
                          str(d.get("sightings", 1)), a.resolved_by or a.acknowledged_by or "-", deliveries or "-")
    console.print(table)


@alerts_app.command("show")
def alerts_show(alert_id: Annotated[str, typer.Argument(help="Alert id (the first 8 characters are enough).")]) -> None:
    """One alert with its whole audit trail: sightings, deliveries, acknowledgement, outcome."""
    from pardus.alerts.lifecycle import AlertError, get_alert, history

    with workspace_cmd(AlertError) as ws, ws.db.session() as s:
        a = get_alert(s, alert_id)
        console.print(f"[bold]{a.kind}[/] at camera {a.camera_id}, {a.status}; created {a.created:%Y-%m-%d %H:%M:%S}")
        for ev in history(s, a.id):
            console.print(f"  {ev.at:%Y-%m-%d %H:%M:%S}  {ev.action:<13} {ev.by or '':<12} {ev.details}")


def _act(alert_id: str, by: str | None, outcome: str | None, note: str | None) -> None:
    from pardus.alerts import lifecycle

    who = by or getpass.getuser()
    with workspace_cmd(lifecycle.AlertError) as ws, ws.db.session() as s:
        a = (lifecycle.resolve(s, alert_id, who, outcome, note) if outcome is not None
             else lifecycle.acknowledge(s, alert_id, who, note))
        console.print(f"Alert {a.id[:8]} ({a.kind}, camera {a.camera_id}) is now {a.status} by {who}.")


@alerts_app.command("ack")
def alerts_ack(
    alert_id: Annotated[str, typer.Argument(help="Alert id (a prefix is enough).")],
    by: Annotated[str | None, typer.Option(help="Who acknowledges (default: your login).")] = None,
    note: Annotated[str | None, typer.Option(help="A note for the alert's history.")] = None,
) -> None:
    """Acknowledge an alert: you have seen it and are on it."""
    _act(alert_id, by, None, note)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: Annotated[str, typer.Argument(help="Alert id (a prefix is enough).")],
    outcome: Annotated[str, typer.Option(help="What happened, e.g. 'false alarm: our patrol'.")],
    by: Annotated[str | None, typer.Option(help="Who resolves (default: your login).")] = None,
    note: Annotated[str | None, typer.Option(help="A note for the alert's history.")] = None,
) -> None:
    """Resolve an alert with its outcome."""
    _act(alert_id, by, outcome, note)


@alerts_app.command("check")
def alerts_check(rules: Annotated[Path, typer.Argument(help="The alert rules YAML file.")]) -> None:
    """Check a rules file before `pardus serve` uses it: every mistake is named."""
    from pardus.alerts.notify import ChannelError, channels_from
    from pardus.alerts.rules import RulesError, load_rules

    if not rules.is_file():
        raise _fail(f"{rules} does not exist")
    try:
        rs = load_rules(rules)
        chans = channels_from(rs.channels)
    except (RulesError, ChannelError) as exc:
        raise _fail(str(exc)) from exc
    console.print(f"{rules}: {len(rs.rules)} rules, {len(rs.zones)} zones, {len(rs.villages)} villages, "
                  f"{len(chans)} channels; window {rs.window_minutes:g} min. OK.")
    for r in rs.rules:
        console.print(f"  {r.name}: {r.kind} ({r.when}{', zones ' + ','.join(r.zones) if r.zones else ''}"
                      f"{', near ' + ','.join(r.near) if r.near else ''})")
