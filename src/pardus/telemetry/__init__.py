"""The telemetry room: GPS collars (Movebank files), movement analysis and satellite fire hotspots.

Beside the cameras, on the same store: ``movebank`` reads exports, ``fixes`` stores them (idempotent,
outliers flagged, never deleted) and links tags to catalogue individuals, ``export`` writes them back,
``movement`` computes home ranges and daily distances, ``firms`` reads NASA FIRMS hotspot files and
``fire`` stores them and raises fire alerts for hotspots in the park.
"""
