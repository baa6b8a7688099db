"""Where the virtual park lies: a monitoring plot in south-west Primorsky Krai, and its sky.

Coordinates are kept twice, as field teams do: metres on a local plane (what SECR needs) and
WGS84 latitude/longitude (what a map and Camtrap DP need). The plane is an equirectangular
projection about the plot origin; over a 30 km plot its error stays below a few metres, far
under a GPS fix in forest, and it needs no projection library.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

EARTH_M_PER_DEG_LAT = 111_132.0
VLADIVOSTOK = timedelta(hours=10)


@dataclass(frozen=True)
class PlotFrame:
    """A local metric frame: x east, y north, metres from (origin_lat, origin_lon)."""

    name: str = "Land of the Leopard, virtual plot SW-1"
    origin_lat: float = 43.05
    origin_lon: float = 131.30

    def to_latlon(self, x_m: float, y_m: float) -> tuple[float, float]:
        lat = self.origin_lat + y_m / EARTH_M_PER_DEG_LAT
        lon = self.origin_lon + x_m / (EARTH_M_PER_DEG_LAT * math.cos(math.radians(self.origin_lat)))
        return lat, lon

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        y = (lat - self.origin_lat) * EARTH_M_PER_DEG_LAT
        x = (lon - self.origin_lon) * EARTH_M_PER_DEG_LAT * math.cos(math.radians(self.origin_lat))
        return x, y


def sun_elevation_deg(when_utc: datetime, lat: float, lon: float) -> float:
    """Solar elevation from the NOAA low-precision formulas (about 0.5 degree).

    Enough to tell a camera's day frames from its infrared night frames, and twilight between.
    """
    doy = when_utc.timetuple().tm_yday
    hour = when_utc.hour + when_utc.minute / 60 + when_utc.second / 3600
    gamma = 2 * math.pi / 365 * (doy - 1 + (hour - 12) / 24)
    decl = (
        0.006918 - 0.399912 * math.cos(gamma) + 0.070257 * math.sin(gamma) - 0.006758 * math.cos(2 * gamma)
        + 0.000907 * math.sin(2 * gamma) - 0.002697 * math.cos(3 * gamma) + 0.00148 * math.sin(3 * gamma)
    )
    eqtime = 229.18 * (
        0.000075 + 0.001868 * math.cos(gamma) - 0.032077 * math.sin(gamma) - 0.014615 * math.cos(2 * gamma)
        - 0.040849 * math.sin(2 * gamma)
    )
    true_solar_min = hour * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)
    phi = math.radians(lat)
    cos_zen = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    return 90 - math.degrees(math.acos(max(-1.0, min(1.0, cos_zen))))


def moon_phase(when_utc: datetime) -> float:
    """Moon age as a fraction of the synodic month (0 new, 0.5 full): cameras print it."""
    ref = datetime(2000, 1, 6, 18, 14)  # a new moon
    days = (when_utc.replace(tzinfo=None) - ref).total_seconds() / 86400
    return (days / 29.530588853) % 1.0
