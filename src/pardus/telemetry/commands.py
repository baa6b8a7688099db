"""`pardus telemetry ...`, `pardus fire ...` and `pardus individuals link-tag`: translate only.

    pardus telemetry import fishers.csv.gz          # Movebank CSV, .csv.gz or Movebank's .zip
    pardus telemetry export --out track.csv --tag 1072
    pardus telemetry tags
    pardus individuals link-tag SC_026 TAG123 --by Olga
    pardus fire import MODIS_C6_1_Global_24h.csv --buffer-km 5
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from pardus.console import console, fail, workspace_cmd
from pardus.telemetry.fixes import DEFAULT_MAX_SPEED_KMH, TelemetryError
from pardus.telemetry.movebank import TelemetryFileError

if TYPE_CHECKING:
    from pardus.store import Workspace

telemetry_app = typer.Typer(help="GPS collars: Movebank files in and out, tracks beside the cameras.",
                            no_args_is_help=True)


@telemetry_app.command("import")
def telemetry_import(
    files: Annotated[list[Path], typer.Argument(help="Movebank CSV exports (.csv, .csv.gz or Movebank's .zip).")],
    max_speed_kmh: Annotated[float, typer.Option(
        help="Fixes implying a faster dash in and out are flagged as outliers (never deleted).")]
    = DEFAULT_MAX_SPEED_KMH,
    rules: Annotated[Path | None, typer.Option(
        "--rules", help="Alert rules YAML for 'conflict' rules (default: <data dir>/alert-rules.yaml).")] = None,
) -> None:
    """Import GPS-collar records from Movebank exports.

    Each file is checked whole first: if any row is wrong (a coordinate that is not a number, a
    latitude past 90, a second header), the rows are named and nothing of that file is written.
    Importing the same file again adds nothing. Failed fixes are kept as records without a position;
    outliers (the owner's visible=false, speed spikes) are flagged, never deleted.
    Example: pardus telemetry import fishers.csv.gz
    """
    from pardus.alerts.notify import ChannelError, channels_from
    from pardus.alerts.rules import RulesError, load_rules
    from pardus.telemetry.conflict import conflict_alerts
    from pardus.telemetry.fixes import import_records
    from pardus.telemetry.movebank import read_movebank

    if max_speed_kmh <= 0:
        raise fail("--max-speed-kmh must be above 0")
    with workspace_cmd(TelemetryError, TelemetryFileError, RulesError, ChannelError) as ws:
        rule_set = load_rules(rules or ws.settings.data_dir / "alert-rules.yaml")
        channels = channels_from(rule_set.channels)
        for path in files:
            parsed = read_movebank(path)
            with ws.db.session() as s:
                rep = import_records(s, parsed, max_speed_kmh=max_speed_kmh)
                # only tracks that gained fixes can have left the park since the last import
                conflict = conflict_alerts(s, rep.tags if rep.stored else [], rule_set, channels=channels)
            flagged = ", ".join(f"{n} {why}" for why, n in sorted(rep.flagged.items())) or "none"
            console.print(
                f"[bold green]{rep.source}:[/] {rep.rows} rows: {rep.stored} stored "
                f"({rep.without_fix} without a fix), {rep.already} already stored, {rep.duplicates} repeated "
                f"in the file. Tags: {', '.join(rep.tags) or 'none'}. Outliers flagged: {flagged}.")
            if rule_set.for_kind("conflict"):
                console.print(f"Conflict alerts (a track leaving the park toward a village): "
                              f"{len(conflict.created)} raised, {conflict.joined} joined open alerts, "
                              f"{conflict.already} raised before, {conflict.too_old} too old to alert."
                              + "".join(f" Note: {n}." for n in conflict.notes))


@telemetry_app.command("export")
def telemetry_export(
    out: Annotated[Path | None, typer.Option(help="Write here (default: print the CSV).")] = None,
    tag: Annotated[str | None, typer.Option(help="Only this tag-local-identifier.")] = None,
    individual: Annotated[str | None, typer.Option(help="Only the tags linked to this individual code.")] = None,
    flags: Annotated[bool, typer.Option(help="Add a pardus:outlier column saying what was flagged and why.")]
    = False,
) -> None:
    """Write the stored records as a Movebank CSV (standard columns, then every column the files had)."""
    from pardus.telemetry.export import export_csv

    with workspace_cmd(TelemetryError) as ws, ws.db.session() as s:
        text = export_csv(s, tag_id=tag, individual_code=individual, flags=flags)
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        tmp = out.with_name(out.name + ".part")
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.replace(out)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror or exc}") from exc
    console.print(f"Wrote {text.count(chr(10)) - 1} records to {out}.")


@telemetry_app.command("tags")
def telemetry_tags() -> None:
    """The tags the store holds: animal, linked individual, records, fixes and outliers."""
    from sqlalchemy import func, select

    from pardus.store.models import Individual, TelemetryFix, TelemetryTag

    with workspace_cmd(TelemetryError) as ws, ws.db.session() as s:
        counts = {r[0]: r[1:] for r in s.execute(
            select(TelemetryFix.tag_id, func.count(), func.count(TelemetryFix.latitude),
                   func.count(TelemetryFix.outlier)).group_by(TelemetryFix.tag_id))}
        codes = dict(s.execute(select(Individual.id, Individual.code)).all())
        table = Table(title="Telemetry tags")
        for col in ("tag", "animal", "individual", "records", "fixes", "outliers", "study"):
            table.add_column(col)
        for t in s.scalars(select(TelemetryTag).order_by(TelemetryTag.tag_id)):
            n, fixes, out = counts.get(t.tag_id, (0, 0, 0))
            table.add_row(t.tag_id, t.animal or "", codes.get(t.individual_id or "", ""), str(n), str(fixes),
                          str(out), (t.study or "")[:40])
    console.print(table)


def link_tag_cmd(
    code: Annotated[str, typer.Argument(help="The individual's code, e.g. SC_026.")],
    tag: Annotated[str, typer.Argument(help="The collar's tag-local-identifier, e.g. TAG123.")],
    by: Annotated[str, typer.Option("--by", envvar="PARDUS_USER",
                                    help="Who links them (kept with the link); or set PARDUS_USER.")],
) -> None:
    """Link a GPS collar's tag to a catalogue individual, so its track stands beside its camera sightings.

    The tag may be linked before its data are imported. Example: pardus individuals link-tag SC_026 TAG123
    """
    from pardus.telemetry.fixes import link_tag

    with workspace_cmd(TelemetryError) as ws, ws.db.session() as s:
        ind, n = link_tag(s, code, tag, by=by)
        shown = ind.code
    console.print(f"[bold green]Linked tag {tag} to {shown}[/] ({n} records so far); recorded for {by}.")


@telemetry_app.command("movement")
def telemetry_movement(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC unless --utc-offset).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (included).")],
    plot: Annotated[str | None, typer.Option(help="Only tracks that enter this camera plot.")] = None,
    near_m: Annotated[float, typer.Option(help="A fix this close to a camera counts as near it.")] = 500.0,
    utc_offset: Annotated[int, typer.Option(help="Minutes east of UTC for days (600 = Vladivostok).")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every number as JSON here.")] = None,
) -> None:
    """Home range (MCP 95%, kernel 95% with the reference bandwidth), distance per day and the camera
    plots each collared animal entered, per tag in the period (methods: docs/telemetry.md)."""
    import json
    from datetime import date, datetime, timedelta, timezone

    from pardus.telemetry.movement import MovementError, movement_report

    tz = timezone(timedelta(minutes=utc_offset))
    try:
        t0 = datetime.combine(date.fromisoformat(start), datetime.min.time(), tz)
        t1 = datetime.combine(date.fromisoformat(end), datetime.min.time(), tz) + timedelta(days=1)
    except ValueError as exc:
        raise fail(f"--from and --to are days like 2024-03-01 ({exc})") from None
    if t1 <= t0:
        raise fail("--to must not be before --from")
    with workspace_cmd(TelemetryError, MovementError) as ws, ws.db.session() as s:
        rows = movement_report(s, start=t0, end=t1, plot=plot, near_m=near_m, utc_offset_minutes=utc_offset)
    table = Table(title=f"Movement {start} to {end}" + (f", plot {plot}" if plot else ""))
    for col in ("tag", "individual", "fixes", "MCP 95% km²", "kernel 95% km²", "h (m)", "km/day ± SE", "plots"):
        table.add_column(col)

    def num(v: float | None, d: int = 2) -> str:
        return "-" if v is None else f"{v:.{d}f}"

    for r in rows:
        table.add_row(r.tag_id, r.individual or "", str(r.fixes), num(r.mcp95_km2), num(r.kde95_km2),
                      num(r.bandwidth_m, 0), f"{num(r.mean_daily_km)} ± {num(r.se_daily_km)}",
                      ", ".join(f"{k} ({n})" for k, n in sorted(r.plots.items())))
    console.print(table)
    if json_out is not None:
        json_out.write_text(json.dumps([r.as_dict() for r in rows], indent=1, default=str))
        console.print(f"Wrote {json_out}.")


fire_app = typer.Typer(help="Satellite fire hotspots (NASA FIRMS) beside the cameras, and the alerts they raise.",
                       no_args_is_help=True)

RulesOpt = Annotated[Path | None, typer.Option(
    "--rules", help="Alert rules YAML (default: <data dir>/alert-rules.yaml, else the built-in rules).")]
BufferOpt = Annotated[float | None, typer.Option(
    help="Hotspots within this many km of the park's outline count as in the park (default: the hotspot "
         "rule's within_m, else 5 km).")]
AgeOpt = Annotated[float, typer.Option(help="Only hotspots seen within this many hours alert (older ones are "
                                            "stored and placed, silently).")]


def _fire_import(ws: Workspace, path: Path, rules_path: Path | None, buffer_km: float | None,
                 max_age_h: float, created: list[str] | None = None) -> str:
    from datetime import timedelta

    from pardus.alerts.notify import channels_from
    from pardus.alerts.rules import load_rules
    from pardus.telemetry.fire import import_hotspots
    from pardus.telemetry.firms import read_firms

    rules = load_rules(rules_path or ws.settings.data_dir / "alert-rules.yaml")
    parsed = read_firms(path)
    with ws.db.session() as s:
        rep = import_hotspots(s, parsed, rules, channels=channels_from(rules.channels),
                              buffer_m=None if buffer_km is None else buffer_km * 1000.0,
                              alert_max_age=timedelta(hours=max_age_h))
    if created is not None:
        created += rep.alerts_created
    msg = (f"{rep.source} ({rep.layout}): {rep.rows} rows: {rep.stored} stored, {rep.already} already stored, "
           f"{rep.duplicates} repeated in the file; {rep.in_park} in the park (within {rep.buffer_m / 1000:g} km); "
           f"{len(rep.alerts_created)} fire alerts raised, {rep.alerts_joined} hotspots joined open alerts, "
           f"{rep.too_old_to_alert} too old to alert.")
    return msg + (f" Note: {rep.note}." if rep.note else "")


@fire_app.command("import")
def fire_import(
    files: Annotated[list[Path], typer.Argument(help="FIRMS CSVs (MODIS or VIIRS; 24-hour, area API or archive; "
                                                     ".csv or .csv.gz).")],
    rules: RulesOpt = None,
    buffer_km: BufferOpt = None,
    alert_max_age_h: AgeOpt = 48.0,
) -> None:
    """Import satellite fire hotspots; those in the park (or within the buffer) raise fire alerts.

    A file is checked whole first; a second import of the same file adds nothing and raises nothing.
    Alerts are delivered by `pardus serve` (pending deliveries are sent when it runs).
    Example: pardus fire import MODIS_C6_1_Global_24h.csv --buffer-km 5
    """
    from pardus.alerts.notify import ChannelError
    from pardus.alerts.rules import RulesError

    with workspace_cmd(TelemetryError, TelemetryFileError, RulesError, ChannelError) as ws:
        for path in files:
            console.print(_fire_import(ws, path, rules, buffer_km, alert_max_age_h))


def _wait_delivered(ws: Workspace, alert_ids: list[str], timeout_s: float) -> int:
    """Wait until each alert's deliveries were tried once; returns how many are still pending."""
    import time

    from pardus.store.models import Alert

    end = time.monotonic() + timeout_s
    while True:
        with ws.db.session() as s:
            pending = sum(1 for a in (s.get(Alert, i) for i in alert_ids) if a is not None
                          for d in ((a.details or {}).get("deliveries") or {}).values() if d.get("status") == "pending")
        if not pending or time.monotonic() > end:
            return pending
        time.sleep(0.1)


@fire_app.command("watch")
def fire_watch(
    folder: Annotated[Path, typer.Argument(help="The folder a download job drops FIRMS files into.")],
    rules: RulesOpt = None,
    buffer_km: BufferOpt = None,
    alert_max_age_h: AgeOpt = 48.0,
    interval_s: Annotated[float, typer.Option(help="Seconds between looks at the folder.")] = 60.0,
    once: Annotated[bool, typer.Option(help="Look once and stop (for cron and tests).")] = False,
) -> None:
    """Import every FIRMS file dropped into FOLDER: done ones move to FOLDER/imported/, refused ones to
    FOLDER/refused/ with the reason beside them. A file still being written (its size changing) waits.

    The fire alerts it raises are sent to the rules' channels from here at once (a running `pardus
    serve` learns of alerts made by another process only when it next starts); with --once it waits
    up to 30 s for the first try of each before it stops, and what is still pending is sent by
    `pardus serve`."""
    import time

    from pardus.alerts.notify import ChannelError, DeliveryWorker, channels_from
    from pardus.alerts.rules import RulesError, load_rules
    from pardus.telemetry.deliver import enqueue_scheduled

    if not folder.is_dir():
        raise fail(f"{folder} is not a folder")
    sizes: dict[Path, int] = {}
    with workspace_cmd(RulesError, ChannelError) as ws:
        channels = channels_from(load_rules(rules or ws.settings.data_dir / "alert-rules.yaml").channels)
        deliveries = DeliveryWorker(ws, channels)
        deliveries.start()
        sent: list[str] = []
        try:
            while True:
                dropped = [p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith((".csv", ".gz"))]
                for path in sorted(dropped):
                    size = path.stat().st_size
                    if sizes.get(path) != size and not once:
                        sizes[path] = size  # seen growing or new: take it on the next look
                        continue
                    created: list[str] = []
                    try:
                        msg = _fire_import(ws, path, rules, buffer_km, alert_max_age_h, created)
                        dest = folder / "imported"
                    except (TelemetryError, TelemetryFileError) as exc:
                        msg, dest = f"{path.name}: refused: {exc}", folder / "refused"
                        dest.mkdir(exist_ok=True)
                        (dest / (path.name + ".reason.txt")).write_text(str(exc) + "\n")
                    dest.mkdir(exist_ok=True)
                    path.replace(dest / path.name)
                    sizes.pop(path, None)
                    enqueue_scheduled(ws, deliveries, created, channels)  # after the commit
                    sent += created
                    console.print(msg)
                if once:
                    left = _wait_delivered(ws, sent, 30.0) if sent and channels else 0
                    if left:
                        console.print(f"{left} deliveries still pending: `pardus serve` sends them when it starts.")
                    return
                time.sleep(interval_s)
        finally:
            deliveries.stop()


sensors_app = typer.Typer(help="Online sensors (smoke, PM2.5, weather, acoustic, counters): tokens and readings.",
                          no_args_is_help=True)


@sensors_app.command("add")
def sensors_add(
    sensor_id: Annotated[str, typer.Argument(help="The sensor's id, e.g. PM25-07.")],
    kind: Annotated[str, typer.Option(help="smoke, pm25, temperature, humidity, fuel-moisture, acoustic, gunshot, "
                                           "chainsaw, gate, vehicle-counter, weather or other.")],
    lat: Annotated[float | None, typer.Option(help="Latitude (WGS84).")] = None,
    lon: Annotated[float | None, typer.Option(help="Longitude (WGS84).")] = None,
    name: Annotated[str | None, typer.Option(help="A name people know it by.")] = None,
) -> None:
    """Register a sensor and print its token (shown once; only a hash is kept).

    Example: pardus sensors add PM25-07 --kind pm25 --lat 43.12 --lon 131.40
    """
    from pardus.telemetry.sensors import SensorError, add_sensor, issue_token

    with workspace_cmd(SensorError) as ws, ws.db.session() as s:
        add_sensor(s, sensor_id, kind, name=name, latitude=lat, longitude=lon)
        s.flush()
        token = issue_token(s, sensor_id)
    console.print(f"[bold green]Sensor {sensor_id} added.[/] Its token (shown once; put it in the sensor):")
    typer.echo(token)


@sensors_app.command("token")
def sensors_token(sensor_id: Annotated[str, typer.Argument(help="The sensor's id.")]) -> None:
    """Issue a new token for a sensor (its old token stops working at once)."""
    from pardus.telemetry.sensors import SensorError, issue_token

    with workspace_cmd(SensorError) as ws, ws.db.session() as s:
        token = issue_token(s, sensor_id)
    typer.echo(token)


@sensors_app.command("list")
def sensors_list() -> None:
    """The registered sensors, their place and when they last reported."""
    from pardus.telemetry.sensors import SensorError, list_sensors

    table = Table(title="Sensors")
    for col in ("sensor", "kind", "name", "lat", "lon", "token", "last reading (UTC)"):
        table.add_column(col)
    with workspace_cmd(SensorError) as ws, ws.db.session() as s:
        for x in list_sensors(s):
            table.add_row(x.id, x.kind, x.name or "", "" if x.latitude is None else f"{x.latitude:.5f}",
                          "" if x.longitude is None else f"{x.longitude:.5f}",
                          "yes" if x.token_hash and not x.token_revoked else "no",
                          f"{x.last_seen:%Y-%m-%d %H:%M}" if x.last_seen else "")
    console.print(table)


@sensors_app.command("import")
def sensors_import(
    files: Annotated[list[Path], typer.Argument(help="CSV series: sensor,time,kind,value[,unit] (times with their "
                                                     "zone), a US EPA daily download or a Synoptic station file.")],
    utc_offset: Annotated[int | None, typer.Option(
        help="For files with local dates and no zone (EPA daily): minutes east of UTC, e.g. -480.")] = None,
    rules: RulesOpt = None,
) -> None:
    """Import historical sensor readings; importing the same file again adds nothing. New readings go
    through the sensor rules (readings older than 48 hours alert nobody).

    Example: pardus sensors import ad_viz_plotval_data.csv --utc-offset -480
    """
    from pardus.alerts.notify import ChannelError, channels_from
    from pardus.alerts.rules import RulesError, load_rules
    from pardus.telemetry.sensors import SensorError, import_sensor_file

    with workspace_cmd(SensorError, TelemetryFileError, RulesError, ChannelError) as ws:
        rule_set = load_rules(rules or ws.settings.data_dir / "alert-rules.yaml")
        channels = channels_from(rule_set.channels)
        for path in files:
            with ws.db.session() as s:
                rep = import_sensor_file(s, path, utc_offset_minutes=utc_offset, rules=rule_set, channels=channels)
            added = f" New sensors: {', '.join(rep.sensors_added)}." if rep.sensors_added else ""
            console.print(f"[bold green]{rep.source}[/] ({rep.layout}): {rep.rows} rows, {rep.readings} readings: "
                          f"{rep.stored} stored, {rep.already} already stored; {rep.empty_cells} empty cells.{added} "
                          f"Alerts: {len(rep.alerts.created)} raised, {rep.alerts.joined} joined open alerts, "
                          f"{rep.alerts.too_old} readings too old to alert.")
