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
