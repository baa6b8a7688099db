"""`pardus serve`: the web app, the camera API, the processing queue and the alerts, in one server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pardus.console import console, fail, open_cli_workspace


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every network of this machine).")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    rules: Annotated[Path | None, typer.Option(help="Alert rules YAML (default: <data dir>/alert-rules.yaml).")]
    = None,
    pipeline: Annotated[bool, typer.Option(help="Process uploads and raise alerts (--no-pipeline: store only).")]
    = True,
    mqtt: Annotated[bool, typer.Option(help="Also take heartbeats and photos from the MQTT broker.")] = False,
    mqtt_host: Annotated[str, typer.Option(help="MQTT broker address.")] = "127.0.0.1",
    mqtt_port: Annotated[int | None, typer.Option(help="MQTT broker port (default 1883, 8883 with --mqtt-tls).")]
    = None,
    mqtt_tls: Annotated[bool | None, typer.Option(
        help="Reach the broker over TLS and verify its certificate (default PARDUS_MQTT_TLS). Credentials: "
             "PARDUS_MQTT_USERNAME and PARDUS_MQTT_PASSWORD.")] = None,
    mqtt_ca_file: Annotated[Path | None, typer.Option(
        help="Authority that signed the broker's certificate (default PARDUS_MQTT_CA_FILE, else the system's).")]
    = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest file a camera may send, MB.")] = 64.0,
    upload_memory_mb: Annotated[float, typer.Option(
        help="Uploads held in memory at once, all cameras together, MB; past it cameras are told to retry.")]
    = 1024.0,
    retry_backoff: Annotated[float, typer.Option(help="Seconds before the first delivery retry (doubles).")] = 1.0,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS; with --tls-key.")]
    = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM) for --tls-cert.")] = None,
    map_tiles: Annotated[str | None, typer.Option(
        help="Tile URL template for the camera map, e.g. http://tiles.local/{z}/{x}/{y}.png (default: "
             "PARDUS_MAP_TILES, else a plain background: no request leaves the machine).")] = None,
) -> None:
    """Run the web app and API: people's pages, camera uploads and heartbeats, the processing queue, alerts.

    Open http://HOST:PORT/ in a browser and sign in (`pardus users add NAME --password-prompt`).

    Example: pardus serve --host 0.0.0.0 --port 8443 --tls-cert park.pem --tls-key park.key --rules park-rules.yaml
    """
    import uvicorn

    from pardus.alerts.notify import ChannelError
    from pardus.alerts.rules import RulesError
    from pardus.live.broker import Broker, BrokerError
    from pardus.web.app import LiveConfig, create_app

    if (tls_cert is None) != (tls_key is None):
        raise fail("give both --tls-cert and --tls-key (or neither, behind a TLS reverse proxy)")
    for p in (tls_cert, tls_key):
        if p is not None and not p.is_file():
            raise fail(f"{p} does not exist or is not a file")
    if not 0 < port < 65536:
        raise fail(f"port must be 1-65535, not {port}")
    if not 0 < max_upload_mb <= 4096:
        raise fail(f"--max-upload-mb must be more than 0 and at most 4096, not {max_upload_mb}")
    if not max_upload_mb <= upload_memory_mb <= 1 << 20:
        raise fail(f"--upload-memory-mb must be at least --max-upload-mb ({max_upload_mb:g}), not {upload_memory_mb:g}")
    with open_cli_workspace() as ws:
        st = ws.settings
        tls = st.mqtt_tls if mqtt_tls is None else mqtt_tls
        try:
            broker = Broker(host=mqtt_host, port=mqtt_port or (8883 if tls else 1883), username=st.mqtt_username,
                            password=st.mqtt_password, tls=tls, ca_file=mqtt_ca_file or st.mqtt_ca_file)
        except BrokerError as exc:
            raise fail(str(exc)) from None
        config = LiveConfig(pipeline=pipeline, rules_path=rules, max_upload_bytes=int(max_upload_mb * (1 << 20)),
                            upload_memory_bytes=int(upload_memory_mb * (1 << 20)),
                            mqtt=mqtt, broker=broker, backoff_s=retry_backoff,
                            map_tiles=map_tiles or ws.settings.map_tiles)
        try:
            app = create_app(ws, config)
        except (RulesError, ChannelError) as exc:
            raise fail(f"{exc} (fix the rules file and start again)") from exc
        scheme = "https" if tls_cert else "http"
        console.print(f"Pardus listening on {scheme}://{host}:{port}/  (pipeline {'on' if pipeline else 'off'})")
        try:
            uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5,
                        ssl_certfile=str(tls_cert) if tls_cert else None, ssl_keyfile=str(tls_key) if tls_key else None)
        except OSError as exc:  # e.g. the port is taken, or the key does not fit the certificate
            raise fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
