"""A contact sheet of simulated frames, so a reader sees what the virtual park makes.

Every tile is rendered by the same ``render`` the season uses, with a caption naming its truth:
both flanks of one leopard, the same leopard at night, a tiger, a mother with cubs, prey,
a person and a vehicle at night, smoke and fire, and a wind-blown blank.
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pardus.simulate.render import CameraInfo, FrameSpec, Subject, render
from pardus.simulate.shapes import BOAR, HUMAN, LEOPARD, SIKA, TIGER

DAY = datetime(2024, 7, 14, 14, 32, 10)
DUSK = datetime(2024, 7, 14, 23, 48, 2)
LEO = 3487989076  # coat seed of leopard PO_001 in the seed-1 season
RECONYX = CameraInfo()
BUSHNELL = CameraInfo("Bushnell", "119876", "BN2100002", "S02A", "bushnell", 85)


def _tiles() -> list[tuple[str, FrameSpec]]:
    leo = lambda flank, size=1.0, ident="PO_001", seed=LEO: Subject("animal", LEOPARD, ident, seed, flank, size)  # noqa: E731
    return [
        ("leopard PO_001, left flank, day", FrameSpec((leo("left"),), RECONYX, DAY, scene_seed=11, burst_seed=5)),
        ("same leopard, right flank (paired camera)",
         FrameSpec((leo("right"),), BUSHNELL, DAY, scene_seed=12, burst_seed=6, frame_index=1)),
        ("same leopard, left flank, infrared night",
         FrameSpec((leo("left"),), RECONYX, DUSK, night=True, sun_elevation=-20, scene_seed=13, burst_seed=8)),
        ("mother with two cubs", FrameSpec((leo("left", 1.0, "PO_004", 41), leo("left", 0.55, "PO_004c1", 42),
                                            leo("left", 0.55, "PO_004c2", 43)), RECONYX, DAY, scene_seed=14,
                                           burst_seed=9)),
        ("tiger PT_002, night", FrameSpec((Subject("animal", TIGER, "PT_002", 77, "right"),), RECONYX, DUSK,
                                          night=True, sun_elevation=-20, scene_seed=15, burst_seed=10)),
        ("sika deer (prey)", FrameSpec((Subject("animal", SIKA, None, None, "right", male=True),
                                        Subject("animal", SIKA, None, None, "right")), BUSHNELL, DAY,
                                       scene_seed=16, burst_seed=11)),
        ("ALERT person on foot at night", FrameSpec((Subject("human", HUMAN, None, None, "left", role="poacher"),),
                                                    RECONYX, DUSK, night=True, sun_elevation=-20, scene_seed=17,
                                                    burst_seed=27)),
        ("ALERT vehicle at night", FrameSpec((Subject("vehicle", None, None, None, "left"),), RECONYX, DUSK,
                                             night=True, sun_elevation=-20, scene_seed=17, burst_seed=24)),
        ("ALERT smoke", FrameSpec((Subject("smoke"),), BUSHNELL, DAY, scene_seed=19, burst_seed=14)),
        ("ALERT fire at night", FrameSpec((Subject("fire"), Subject("smoke")), RECONYX, DUSK, night=True,
                                          sun_elevation=-20, scene_seed=20, burst_seed=15)),
        ("wild boar, evening", FrameSpec((Subject("animal", BOAR, None, None, "left"),), RECONYX,
                                         datetime(2024, 7, 14, 18, 30), sun_elevation=8, scene_seed=17,
                                         burst_seed=23)),
        ("blank: wind in the grass", FrameSpec((), RECONYX, DAY, scene_seed=22, burst_seed=17, windy=True)),
    ]


def contact_sheet(path: Path, columns: int = 3, tile: tuple[int, int] = (560, 315)) -> Path:
    """Render the tiles at full size (1280x720), shrink them and write one labelled PNG."""
    tiles = _tiles()
    rows = (len(tiles) + columns - 1) // columns
    cap = 30
    sheet = Image.new("RGB", (columns * tile[0], rows * (tile[1] + cap)), (245, 245, 240))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=18)
    for i, (caption, spec) in enumerate(tiles):
        img = Image.open(io.BytesIO(render(spec).jpeg)).convert("RGB").resize(tile, Image.Resampling.LANCZOS)
        x, y = (i % columns) * tile[0], (i // columns) * (tile[1] + cap)
        sheet.paste(img, (x, y))
        colour = (170, 20, 20) if caption.startswith("ALERT") else (20, 20, 20)
        draw.text((x + 8, y + tile[1] + 5), caption, fill=colour, font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path
