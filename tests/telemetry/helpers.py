"""A small park for the fire and sensor tests: three cameras around a real FIRMS hotspot cluster."""

from __future__ import annotations

from datetime import UTC, datetime

from pardus.store.models import Camera, Deployment, Location

MODIS_24H = "global-modis-24h-2025-11-18/MODIS_C6_1_Global_24h.csv"
SEEN = datetime(2025, 11, 18, 12, 0, tzinfo=UTC)  # the morning after the passes in the 24-hour file


def khasansky_park(s) -> None:
    """Three cameras around the Slavyanka hotspot cluster (42.89 N 131.34 E) in Khasansky district."""
    for i, (lon, lat) in enumerate([(131.337, 42.895), (131.25, 42.85), (131.25, 42.95)]):
        s.add(Camera(id=f"CAM{i}"))
        s.add(Location(id=f"L{i}", name=f"station {i}", plot="KH-1", latitude=lat, longitude=lon))
        s.add(Deployment(id=f"D{i}", location_id=f"L{i}", camera_id=f"CAM{i}",
                         start=datetime(2025, 6, 1, tzinfo=UTC)))
    s.flush()


TRACK_START = datetime(2025, 6, 1, tzinfo=UTC)
MOVEBANK_HEADER = ("event-id,timestamp,location-long,location-lat,individual-local-identifier,tag-local-identifier,"
                   "sensor-type,visible\n")


def movebank_text(points: list[tuple[datetime, float, float]], tag: str = "TAG-LEO7", animal: str = "Leo7") -> str:
    """A Movebank CSV of GPS fixes (time, lon, lat), as a collar's export would be."""
    rows = [f"{i + 1},{t:%Y-%m-%d %H:%M:%S}.000,{lon:.6f},{lat:.6f},{animal},{tag},gps,true"
            for i, (t, lon, lat) in enumerate(points)]
    return MOVEBANK_HEADER + "\n".join(rows) + "\n"


def hourly_track(start: datetime = TRACK_START, hours: int = 48, lon0: float = 131.30, lat0: float = 42.90,
                 step_deg: float = 0.0015) -> list[tuple[datetime, float, float]]:
    """A leopard walking east-north-east about 150 m an hour, one fix an hour."""
    from datetime import timedelta

    return [(start + timedelta(hours=h), lon0 + step_deg * h, lat0 + step_deg * h / 3) for h in range(hours + 1)]


def firms_text(spots: list[tuple[datetime, float, float]]) -> str:
    """A MODIS 24-hour FIRMS file with these hotspots (time, lon, lat), confidence 80%."""
    head = ("latitude,longitude,brightness,scan,track,acq_date,acq_time,satellite,confidence,version,bright_t31,frp,"
            "daynight\n")
    return head + "".join(f"{lat:.4f},{lon:.4f},320.5,1.0,1.0,{t:%Y-%m-%d},{t:%H%M},Aqua,80,6.1NRT,290.1,12.3,D\n"
                          for t, lon, lat in spots)


def collared_park(s, *, track: list[tuple[datetime, float, float]] | None = None, code: str = "LEO_007") -> None:
    """The Khasansky cameras, a catalogue leopard wearing collar TAG-LEO7 (its hourly track), a PM2.5
    sensor with a day of readings and two satellite hotspots a day and a half apart."""
    from datetime import timedelta

    from pardus.alerts.rules import parse_rules
    from pardus.store.models import Individual
    from pardus.telemetry.fire import import_hotspots
    from pardus.telemetry.firms import parse_firms
    from pardus.telemetry.fixes import import_records, link_tag
    from pardus.telemetry.movebank import parse_movebank
    from pardus.telemetry.sensors import add_sensor, reading, store_readings

    khasansky_park(s)
    s.add(Individual(code=code, name="Kedrovaya", scientific_name="Panthera pardus orientalis", sex="female"))
    s.flush()
    import_records(s, parse_movebank(movebank_text(track or hourly_track()), "leo7.csv"))
    link_tag(s, code, "TAG-LEO7", by="test")
    add_sensor(s, "PM25-1", "pm25", name="Ridge <b>mast</b>", latitude=42.896, longitude=131.339)
    s.flush()
    values = [8 + (h % 5) * 3 + (40 if h == 20 else 0) for h in range(24)]
    store_readings(s, "PM25-1", [reading(TRACK_START + timedelta(hours=h), "pm25", v, "ug/m3")
                                 for h, v in enumerate(values)])
    spots = [(TRACK_START + timedelta(hours=12), 131.34, 42.90), (TRACK_START + timedelta(hours=42), 131.26, 42.86)]
    import_hotspots(s, parse_firms(firms_text(spots), "firms.csv"), parse_rules("rules: []\n"),
                    now=TRACK_START + timedelta(days=30))
