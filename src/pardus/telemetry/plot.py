"""A sensor's readings as a small SVG plot, drawn on the server.

SVG written directly (no JavaScript chart library, nothing fetched from another host; matplotlib
would do but costs a second per plot on a field laptop for what is a line and two axes). Every text
that came from a file or a sensor (its id, the reading kind, the unit) is XML-escaped.

A long series is reduced to the lowest and highest value in each pixel column (the M4 idea of
Jugel et al. 2014, without the first and last): the line looks the same as with every reading, a
spike is never averaged away, and a year of minute readings stays a few kilobytes.

Reference: Jugel, U., Jerzak, Z., Hackenbroich, G. and Markl, V. (2014) M4: a visualization-oriented
time series data aggregation. Proceedings of the VLDB Endowment 7, 797-808.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 18, 30


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round-numbered ticks covering [lo, hi] (1, 2, 5 × 10^k steps)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def _columns(xs: list[float], ys: list[float], width: int) -> list[tuple[float, float]]:
    """Per pixel column the lowest and highest point, in time order (M4 without first/last)."""
    if len(xs) <= 2 * width:
        return list(zip(xs, ys, strict=True))
    x0, x1 = xs[0], xs[-1]
    span = (x1 - x0) or 1.0
    out: list[tuple[float, float]] = []
    col: list[tuple[float, float]] = []
    current = 0
    for x, y in zip(xs, ys, strict=True):
        c = min(int((x - x0) / span * width), width - 1)
        if c != current and col:
            lo, hi = min(col, key=lambda p: p[1]), max(col, key=lambda p: p[1])
            out += sorted({lo, hi})
            col = []
        current = c
        col.append((x, y))
    if col:
        lo, hi = min(col, key=lambda p: p[1]), max(col, key=lambda p: p[1])
        out += sorted({lo, hi})
    return out


def series_svg(times: Sequence[datetime], values: Sequence[float | None], *, title: str, unit: str | None = None,
               width: int = WIDTH, height: int = HEIGHT) -> str:
    """An SVG line plot of one reading kind over time (UTC axis), with the lowest, highest and last
    value said in its title for screen readers. Readings without a value (text) are left out."""
    pts = sorted((t.timestamp(), float(v)) for t, v in zip(times, values, strict=True)
                 if v is not None and math.isfinite(v))
    label = escape(title) + (f" ({escape(unit)})" if unit else "")
    if not pts:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} 40" role="img" '
                f'aria-label="{label}: no numeric readings"><text x="4" y="24">{label}: no numeric readings</text>'
                "</svg>")
    xs = [p[0] for p in pts]
    ys = [p[1] for p in pts]
    lo, hi = min(ys), max(ys)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    t0, t1 = xs[0], xs[-1]
    pw, ph = width - LEFT - RIGHT, height - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + ((x - t0) / (t1 - t0) * pw if t1 > t0 else pw / 2)

    def py(y: float) -> float:
        return TOP + ph - (y - lo) / (hi - lo) * ph

    reduced = _columns(xs, ys, pw)
    line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in reduced)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" viewBox="0 0 {width} {height}" role="img" '
             f'data-points="{len(pts)}" aria-label="{label}: {len(pts)} readings from '
             f'{datetime.fromtimestamp(t0, UTC):%Y-%m-%d %H:%M} to {datetime.fromtimestamp(t1, UTC):%Y-%m-%d %H:%M} '
             f'UTC, lowest {_fmt(min(ys))}, highest {_fmt(max(ys))}, last {_fmt(ys[-1])}">',
             f'<text x="{LEFT}" y="12" class="plot-title">{label}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#c9cfc7"/>']
    for v in _nice_ticks(lo, hi):
        y = py(v)
        parts.append(f'<line x1="{LEFT}" x2="{LEFT + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7e1"/>'
                     f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{_fmt(v)}</text>')
    for i in range(5):
        x = t0 + (t1 - t0) * i / 4
        fmt = "%Y-%m-%d" if t1 - t0 > 3 * 86400 else "%m-%d %H:%M"
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        parts.append(f'<text x="{px(x):.1f}" y="{height - 10}" text-anchor="{anchor}" font-size="11">'
                     f"{datetime.fromtimestamp(x, UTC).strftime(fmt)}</text>")
    parts.append(f'<polyline fill="none" stroke="#2f6f46" stroke-width="1.5" points="{line}"/>')
    if len(pts) <= 200:
        parts += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.2" fill="#2f6f46"/>' for x, y in pts]
    parts.append("</svg>")
    return "".join(parts)
