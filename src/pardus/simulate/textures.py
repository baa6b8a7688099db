"""Procedural textures: coats that identify an animal, and forest floors that must not.

Why procedural rather than photographs: re-identification needs a truth that photographs of
wild leopards cannot give (who is who, which flank), and a pattern drawn from a seed is the same
on every sighting while being unlike every other animal's. The forest is textured just as richly
(leaf litter, bark, rocks) so a keypoint matcher has to find the animal, not the background.

All functions are pure in their seed: the same seed gives the same array on any run.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

COAT_W, COAT_H = 640, 320  # canonical side-view canvas: head on the left, feet at the bottom


def fractal(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 4,
            persistence: float = 0.55, aspect: float = 1.0) -> np.ndarray:
    """Value noise summed over octaves, roughly in [0, 1]; ``aspect`` > 1 stretches it vertically."""
    out = np.zeros((h, w), np.float32)
    amp, total = 1.0, 0.0
    c = float(cell)
    for _ in range(octaves):
        gh = max(2, int(h / (c * aspect)) + 2)
        gw = max(2, int(w / c) + 2)
        grid = rng.random((gh, gw), dtype=np.float32)
        up = cv2.resize(grid, (int((gw - 1) * c) + 1, int((gh - 1) * c * aspect) + 1), interpolation=cv2.INTER_CUBIC)
        out += amp * up[:h, :w]
        total += amp
        amp *= persistence
        c = max(1.0, c / 2)
    return out / total


def _seed_rng(*parts: int | str) -> np.random.Generator:
    ints = [p if isinstance(p, int) else int.from_bytes(p.encode()[:8].ljust(8, b"\0"), "little") for p in parts]
    return np.random.default_rng([abs(i) for i in ints])


# --- coats of marked individuals -----------------------------------------------------------

def _base_coat(rng: np.random.Generator, top: tuple[float, float, float], belly: tuple[float, float, float],
               fur_cell: float = 3.0) -> np.ndarray:
    """Ground colour: darker along the back, pale belly, fine fur grain."""
    v = np.linspace(0, 1, COAT_H, dtype=np.float32)[:, None, None]
    t = np.clip((v - 0.42) / 0.16, 0, 1) * (1 - 0.7 * np.clip((v - 0.7) / 0.08, 0, 1))  # outer legs: body colour
    base = (1 - t) * np.array(top, np.float32) + t * np.array(belly, np.float32)
    base = np.broadcast_to(base, (COAT_H, COAT_W, 3)).copy()
    grain = fractal(rng, COAT_H, COAT_W, fur_cell, octaves=2, aspect=2.5)
    broad = fractal(rng, COAT_H, COAT_W, 80, octaves=2)
    base *= (0.82 + 0.3 * grain + 0.12 * (broad - 0.5))[:, :, None]
    return base


def _blob(img: np.ndarray, x: float, y: float, rx: float, ry: float, ang: float, color: tuple[float, ...]) -> None:
    cv2.ellipse(img, (int(x * 16), int(y * 16)), (max(16, int(rx * 16)), max(16, int(ry * 16))), ang, 0, 360,
                color, -1, cv2.LINE_AA, 4)


def leopard_coat(seed: int, flank: str) -> np.ndarray:
    """An Amur leopard flank: pale cream ground, large open rosettes on the body, solid spots on
    head, legs and tail. Left and right are drawn from independent streams, as on a real cat."""
    rng = _seed_rng(seed, "leopard", flank)
    hue = rng.uniform(-12, 12)
    img = _base_coat(rng, (222 + hue, 176 + hue * 0.6, 110), (242, 232, 214))
    ink = (30.0, 24.0, 18.0)
    # Rosettes over the trunk, on a jittered lattice so they tile like the real coat.
    step = rng.uniform(30, 36)
    for gy in np.arange(60, 215, step * 0.86):
        off = rng.uniform(0, step)
        for gx in np.arange(150 + off, 530, step):
            x, y = gx + rng.normal(0, step * 0.18), gy + rng.normal(0, step * 0.18)
            r = rng.uniform(0.34, 0.5) * step
            centre = (196 + hue, 140 + hue * 0.5, 78)
            _blob(img, x, y, r * 0.72, r * 0.6, rng.uniform(0, 180), centre)
            n = rng.integers(3, 7)
            start = rng.uniform(0, 2 * math.pi)
            gaps = np.sort(rng.uniform(0, 2 * math.pi, n)) + start
            for a in gaps:
                bx, by = x + r * math.cos(a), y + r * 0.85 * math.sin(a)
                _blob(img, bx, by, rng.uniform(3.0, 6.5), rng.uniform(2.0, 3.8), math.degrees(a) + 90, ink)
            if rng.random() < 0.35:
                _blob(img, x + rng.normal(0, 3), y + rng.normal(0, 3), 2.5, 2.0, 0, ink)
    # Solid spots: head, neck, legs, belly, tail.
    for _ in range(int(rng.integers(520, 640))):
        x, y = rng.uniform(0, COAT_W), rng.uniform(0, COAT_H)
        on_trunk = 150 < x < 530 and 50 < y < 215
        if on_trunk and rng.random() < 0.9:
            continue
        s = rng.uniform(1.6, 4.4) if y > 150 or x < 150 else rng.uniform(2.5, 5.5)
        _blob(img, x, y, s, s * rng.uniform(0.7, 1.0), rng.uniform(0, 180), ink)
    # Tail rings (the tail lies at the back end of the canvas).
    for x in np.arange(522, 640, rng.uniform(13, 18)):
        cv2.line(img, (int(x), 0), (int(x + rng.uniform(-10, 10)), COAT_H), ink, int(rng.integers(2, 4)), cv2.LINE_AA)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.6), 0, 255)


def tiger_coat(seed: int, flank: str) -> np.ndarray:
    """An Amur tiger flank: orange ground, pale belly, narrow dark stripes running down from the
    spine, some forked or doubled; independent per flank, as in life."""
    rng = _seed_rng(seed, "tiger", flank)
    hue = rng.uniform(-10, 10)
    img = _base_coat(rng, (214 + hue, 118 + hue, 44), (240, 232, 218))
    ink = (18.0, 14.0, 12.0)
    x = 120.0
    while x < 600:
        x += rng.uniform(9, 20)
        length = rng.uniform(70, 190) if 140 < x < 540 else rng.uniform(30, 90)
        top = rng.uniform(20, 70)
        width = rng.uniform(3.0, 7.5)
        lean = rng.uniform(-0.35, 0.25)
        n = 12
        ts = np.linspace(0, 1, n)
        wig = np.cumsum(rng.normal(0, 2.2, n))
        cx = x + lean * ts * length + wig
        cy = top + ts * length
        w = width * (1 - 0.85 * ts) + 0.6
        left = np.column_stack((cx - w, cy))
        right = np.column_stack((cx + w, cy))[::-1]
        poly = np.vstack((left, right))
        cv2.fillPoly(img, [np.round(poly * 16).astype(np.int32)], ink, cv2.LINE_AA, 4)
        if rng.random() < 0.3:  # fork
            k = int(rng.integers(3, 8))
            bx = cx[k:] + np.linspace(0, rng.uniform(-14, 14), n - k)
            seg = np.vstack((np.column_stack((bx - w[k:] * 0.7, cy[k:])),
                             np.column_stack((bx + w[k:] * 0.7, cy[k:]))[::-1]))
            cv2.fillPoly(img, [np.round(seg * 16).astype(np.int32)], ink, cv2.LINE_AA, 4)
    # Leg bands and face marks.
    for _ in range(int(rng.integers(40, 60))):
        y = rng.uniform(200, 320)
        x0 = rng.uniform(100, 560)
        cv2.line(img, (int(x0), int(y)), (int(x0 + rng.uniform(8, 22)), int(y + rng.normal(0, 4))), ink,
                 int(rng.integers(2, 5)), cv2.LINE_AA)
    for _ in range(int(rng.integers(10, 16))):
        x0, y0 = rng.uniform(60, 140), rng.uniform(50, 150)
        cv2.line(img, (int(x0), int(y0)), (int(x0 + rng.uniform(-6, 6)), int(y0 + rng.uniform(10, 25))), ink, 2,
                 cv2.LINE_AA)
    return np.clip(cv2.GaussianBlur(img, (0, 0), 0.6), 0, 255)


def plain_coat(rng: np.random.Generator, colour: tuple[float, float, float], belly: tuple[float, float, float],
               spots: bool = False, bristle: float = 0.0) -> np.ndarray:
    """Coat of an unmarked species (sika summer spots, boar bristles): one per sighting."""
    img = _base_coat(rng, colour, belly, fur_cell=2.5 if bristle else 3.0)
    if bristle:
        streak = fractal(rng, COAT_H, COAT_W, 3, octaves=2, aspect=4.0)
        img *= (1 - bristle * 0.5 + bristle * streak)[:, :, None]
    if spots:
        for row in range(5):
            y = 70 + row * 22
            for x in np.arange(200 + rng.uniform(0, 10), 520, rng.uniform(18, 26)):
                _blob(img, x + rng.normal(0, 3), y + rng.normal(0, 3), 3.5, 2.8, 0, (240.0, 232.0, 215.0))
    return np.clip(img, 0, 255)


@lru_cache(maxsize=96)
def coat_for(species: str, coat_seed: int, flank: str) -> np.ndarray:
    """The fixed coat of one marked individual's flank (cached: a worker draws it once)."""
    if species.startswith("Panthera tigris"):
        return tiger_coat(coat_seed, flank).astype(np.float32)
    return leopard_coat(coat_seed, flank).astype(np.float32)
