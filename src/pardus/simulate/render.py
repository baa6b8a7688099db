"""One camera-trap frame: a forest scene, what walked into it, the camera's strip and EXIF.

The renderer is a pure function of its ``FrameSpec``: all randomness comes from the burst seed
and the frame's index in the burst, so a frame is the same whichever process draws it and in
whichever order. Costly parts that do not change between frames (a camera's scene by day and
by infrared night, a marked animal's coat) are built once per process and cached.

Look, from what real cameras do: colour by day; at night the infrared flash gives a greyscale
frame, bright close by and black beyond ~15 m, with eyeshine and motion blur; a black data strip
prints date, time, burst index, moon and temperature; Make/Model/serial/DateTimeOriginal are in
EXIF (Reconyx pads Make and Model with NUL bytes, as the ingest room expects).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pardus.simulate import shapes
from pardus.simulate.shapes import HUMAN, MARKED, PLANS
from pardus.simulate.textures import COAT_H, COAT_W, coat_for, fractal

FRAME_SIZE = (1280, 720)
CONTENT_KINDS = ("blank", "animal", "human", "vehicle", "fire", "smoke")

TAG_MAKE, TAG_MODEL, TAG_SOFTWARE, TAG_DATETIME, TAG_EXIF_IFD = 0x010F, 0x0110, 0x0131, 0x0132, 0x8769
TAG_DTO, TAG_DTD, TAG_BODY_SERIAL = 0x9003, 0x9004, 0xA431


@dataclass(frozen=True)
class CameraInfo:
    """What a camera writes about itself; ``style`` picks the data strip layout."""

    make: str = "RECONYX\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    model: str = "HC600 HYPERFIRE\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    serial: str = "H600HK09000001"
    name: str = "LOL-S01A"
    style: str = "reconyx"
    quality: int = 88


@dataclass(frozen=True)
class Subject:
    """One thing in front of the camera. Marked animals carry ``coat_seed``; ``flank`` says which
    side faces the camera (left flank = head to the left of the frame)."""

    kind: str  # animal | human | vehicle | fire | smoke
    scientific_name: str | None = None
    individual_id: str | None = None
    coat_seed: int | None = None
    flank: str | None = None
    size: float = 1.0
    role: str | None = None  # human: ranger | poacher | visitor
    male: bool = False


@dataclass(frozen=True)
class FrameSpec:
    """Everything that decides one frame's pixels and metadata."""

    subjects: tuple[Subject, ...] = ()
    camera: CameraInfo = field(default_factory=CameraInfo)
    camera_time: datetime | None = None
    night: bool = False
    sun_elevation: float = 30.0
    temperature_c: float = 18.0
    moon: float = 0.5
    scene_seed: int = 0
    phase: str = "summer"
    burst_seed: int = 0
    frame_index: int = 0
    burst_len: int = 3
    size: tuple[int, int] = FRAME_SIZE
    windy: bool = False


@dataclass
class ObjectTruth:
    """What is really in a frame: Camtrap DP box (normalised x, y, width, height from top-left)."""

    kind: str
    scientific_name: str | None
    individual_id: str | None
    flank: str | None
    bbox: tuple[float, float, float, float]
    occluded: float


@dataclass
class RenderedFrame:
    jpeg: bytes
    objects: list[ObjectTruth]


# --- the scene ---------------------------------------------------------------------------

PALETTES = {
    "summer": dict(ground=(92, 84, 52), leaf=((96, 118, 48), (120, 104, 60), (74, 96, 40), (140, 120, 70)),
                   canopy=(58, 92, 40), grass=((86, 128, 44), (110, 140, 60), (64, 100, 36))),
    "autumn": dict(ground=(112, 86, 56), leaf=((170, 110, 40), (140, 82, 38), (190, 140, 60), (110, 80, 50)),
                   canopy=(150, 120, 50), grass=((150, 132, 80), (120, 110, 62), (170, 150, 90))),
    "winter": dict(ground=(212, 214, 220), leaf=((226, 228, 232), (196, 198, 206), (150, 130, 110), (235, 235, 240)),
                   canopy=(110, 100, 90), grass=((150, 130, 100), (120, 110, 90), (180, 170, 150))),
}


@dataclass
class Scene:
    day: np.ndarray  # uint8 H x W x 3
    night: np.ndarray  # uint8 H x W x 3 (grey)
    fg_day: np.ndarray  # uint8 band x (W + 2*SWAY) x 3, foreground vegetation, premultiplied
    fg_night: np.ndarray  # the same in infrared
    fg_inv: np.ndarray  # uint8 band x (W + 2*SWAY) x 3: 255 - alpha
    fg_y0: int
    horizon: int
    trail: tuple[int, int]


SWAY = 12


def _trunk(img: np.ndarray, depth: np.ndarray, rng: np.random.Generator, x: int, width: int, base: int,
           near: float, birch: bool) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(0, x - width // 2), min(w, x + width // 2)
    if x1 - x0 < 2:
        return
    tw = x1 - x0
    streak = fractal(rng, base, tw, max(2, tw / 6), octaves=3, aspect=8.0)
    across = np.cos(np.linspace(-1.2, 1.2, tw, dtype=np.float32))[None, :]
    col = np.array((225, 222, 212) if birch else (110, 100, 92), np.float32)
    bark = col * (0.55 + 0.6 * streak[:, :, None]) * (0.45 + 0.55 * across[:, :, None])
    if birch:
        marks = rng.random((base // 9 + 1, 1)) < 0.3
        band = np.repeat(marks, 9, axis=0)[:base]
        bark[band[:, 0]] *= 0.35
    img[:base, x0:x1] = np.clip(bark, 0, 255)
    depth[:base, x0:x1] = near


def _rock(img: np.ndarray, depth: np.ndarray, rng: np.random.Generator, cx: int, base: int, r: int,
          near: float) -> None:
    ang = np.sort(rng.uniform(0, 2 * math.pi, 9))
    rad = r * rng.uniform(0.7, 1.1, 9)
    pts = np.column_stack((cx + rad * np.cos(ang) * 1.4, base - r * 0.5 + rad * np.sin(ang) * 0.7))
    m = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255, cv2.LINE_AA)
    ys, xs = np.nonzero(m)
    if len(ys) == 0:
        return
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    tex = fractal(rng, y1 - y0, x1 - x0, max(3, r / 5), octaves=4)
    top = np.linspace(1.15, 0.65, y1 - y0, dtype=np.float32)[:, None]
    grey = np.array((128, 126, 118), np.float32) * (0.5 + 0.7 * tex * top)[:, :, None]
    moss = (tex > 0.62)[:, :, None] * np.array((-30, 10, -40), np.float32)
    a = (m[y0:y1, x0:x1].astype(np.float32) / 255)[:, :, None]
    roi = img[y0:y1, x0:x1].astype(np.float32)
    img[y0:y1, x0:x1] = np.clip(roi * (1 - a) + (grey + moss) * a, 0, 255)
    depth[y0:y1, x0:x1] = np.where(a[:, :, 0] > 0.5, near, depth[y0:y1, x0:x1])


@lru_cache(maxsize=6)
def build_scene(scene_seed: int, phase: str, width: int, height: int) -> Scene:
    """A camera's view: far forest, canopy with sky holes, trunks, a trail, leaf litter, rocks,
    and grass in front of the lens; by day and by infrared night (built once per camera)."""
    rng = np.random.default_rng([scene_seed, 91])
    pal = PALETTES.get(phase, PALETTES["summer"])
    W, H = width, height
    k = W / 1280
    horizon = int(H * rng.uniform(0.3, 0.42))
    img = np.zeros((H, W, 3), np.float32)
    depth = np.zeros((H, W), np.float32)  # 1 = close to the lens, 0 = far: the IR flash falloff
    # far forest and canopy
    far = fractal(rng, horizon + 20, W, 40 * k, octaves=5)
    streaks = fractal(rng, horizon + 20, W, 4 * k, octaves=2, aspect=10.0)
    canopy = np.array(pal["canopy"], np.float32)
    img[: horizon + 20] = canopy * (0.35 + 0.8 * far[:, :, None]) * (0.7 + 0.4 * streaks[:, :, None])
    sky = fractal(rng, horizon + 20, W, 30 * k, octaves=4)
    ramp = np.linspace(1.0, 0.0, horizon + 20, dtype=np.float32)[:, None]
    holes = np.clip((sky * ramp - 0.45) * 6, 0, 1)[:, :, None]
    img[: horizon + 20] = img[: horizon + 20] * (1 - holes) + np.array((215, 225, 232), np.float32) * holes
    # far trunks and an understory whose top edge is ragged
    for _ in range(int(rng.integers(25, 60) * k)):
        x = int(rng.uniform(0, W))
        tw = max(1, int(rng.uniform(1, 6) * k))
        shade = rng.uniform(0.25, 0.6)
        img[: horizon + 10, x:x + tw] *= shade
    under_top = horizon - (fractal(rng, 1, W, 25 * k, octaves=4)[0] * 0.25 * horizon + 0.05 * horizon)
    bush = fractal(rng, horizon + 20, W, 8 * k, octaves=3)
    for x in range(W):
        y0 = max(0, int(under_top[x]))
        img[y0: horizon + 20, x] = np.array(pal["canopy"], np.float32) * (0.45 + 0.9 * bush[y0: horizon + 20, x, None])
    # ground: rows nearer the lens are lower in the frame
    rows = np.arange(H, dtype=np.float32)
    near_row = np.clip((rows - horizon) / (H - horizon), 0, 1)
    depth[:] = near_row[:, None]
    g = fractal(rng, H - horizon, W, 60 * k, octaves=5)
    img[horizon:] = np.array(pal["ground"], np.float32) * (0.55 + 0.75 * g[:, :, None])
    # trail across the view, where animals walk
    t_mid = int(horizon + (H - horizon) * rng.uniform(0.4, 0.62))
    t_half = int((H - horizon) * rng.uniform(0.1, 0.16))
    slope = rng.uniform(-0.06, 0.06)
    xs = np.arange(W, dtype=np.float32)
    for y in range(max(horizon, t_mid - 2 * t_half), min(H, t_mid + 2 * t_half)):
        c = t_mid + slope * (xs - W / 2)
        wgt = np.clip(1.2 - np.abs(y - c) / t_half, 0, 1)[:, None]
        img[y] = img[y] * (1 - 0.35 * wgt) + np.array((150, 130, 100), np.float32) * 0.35 * wgt
    # leaf litter and grass tufts, smaller towards the horizon
    leaves = int(2600 * k * k)
    ly = horizon + (H - horizon) * rng.random(leaves) ** 1.6
    lx = rng.uniform(0, W, leaves)
    for x, y in zip(lx, ly, strict=True):
        s = (y - horizon) / (H - horizon)
        rx = max(1.0, (2 + 12 * s) * k * rng.uniform(0.6, 1.4))
        colour = np.array(pal["leaf"][int(rng.integers(4))], np.float32) * rng.uniform(0.7, 1.2)
        cv2.ellipse(img, (int(x * 16), int(y * 16)), (int(rx * 16), int(rx * 0.45 * 16)), rng.uniform(0, 180), 0,
                    360, colour.tolist(), -1, cv2.LINE_AA, 4)
    for _ in range(int(900 * k * k)):
        x, y = rng.uniform(0, W), horizon + (H - horizon) * rng.random() ** 1.3
        s = (y - horizon) / (H - horizon)
        ln = (4 + 30 * s) * k
        colour = np.array(pal["grass"][int(rng.integers(3))], np.float32) * rng.uniform(0.6, 1.2)
        cv2.line(img, (int(x), int(y)), (int(x + rng.normal(0, ln * 0.3)), int(y - ln)), colour.tolist(),
                 max(1, int(1 + 2 * s * k)), cv2.LINE_AA)
    # trunks: far and thin first, near and wide last
    n_trunks = int(rng.integers(3, 9))
    for near in np.sort(rng.uniform(0.02, 0.9, n_trunks)):
        base = int(horizon + (H - horizon) * near * rng.uniform(0.15, 0.5))
        width = int((8 + 150 * near ** 1.6) * k)
        x = int(rng.uniform(-0.05, 1.05) * W)
        if abs(x - W / 2) < W * 0.12 and near > 0.5:
            x = int(W * (0.15 if x < W / 2 else 0.85))
        _trunk(img, depth, rng, x, width, min(base, H), float(near * 0.6), rng.random() < 0.2 and phase != "winter")
    for _ in range(int(rng.integers(0, 4))):
        near = rng.uniform(0.2, 0.9)
        base = int(horizon + (H - horizon) * near)
        _rock(img, depth, rng, int(rng.uniform(0, W)), base, int((15 + 90 * near) * k), float(near))
    day = np.clip(img, 0, 255).astype(np.uint8)
    # infrared: chlorophyll reflects IR, so vegetation is bright; the flash fades with distance
    ir = 0.22 * img[:, :, 0] + 0.68 * img[:, :, 1] + 0.10 * img[:, :, 2]
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    vignette = 1 - 0.45 * (((xx - W / 2) / (W / 2)) ** 2 + ((yy - H * 0.7) / H) ** 2)
    light = (0.06 + 1.25 * depth ** 1.8) * vignette
    night = np.clip(ir * 1.25 * light, 0, 255).astype(np.uint8)
    night = np.repeat(night[:, :, None], 3, axis=2)
    # foreground vegetation: blades rising from the bottom edge, in front of everything
    band = int(H * rng.uniform(0.22, 0.36))
    fg = np.zeros((band, W + 2 * SWAY, 4), np.uint8)
    for _ in range(int(rng.integers(60, 200) * k)):
        x0 = rng.uniform(0, W + 2 * SWAY)
        if rng.random() < 0.7:  # clumps sit mostly at the sides
            x0 = rng.choice([rng.uniform(0, W * 0.25), rng.uniform(W * 0.75, W + 2 * SWAY)])
        length = band * rng.uniform(0.25, 1.0)
        bend = rng.normal(0, length * 0.25)
        pts = np.array([(x0, band), (x0 + bend * 0.3, band - length * 0.5), (x0 + bend, band - length)])
        colour = np.array(pal["grass"][int(rng.integers(3))]) * rng.uniform(0.5, 1.1)
        cv2.polylines(fg, [np.round(pts).astype(np.int32)], False, (*colour.tolist(), 255),
                      max(2, int(rng.uniform(2, 7) * k)), cv2.LINE_AA)
    a = fg[:, :, 3:4].astype(np.float32) / 255
    col = fg[:, :, :3].astype(np.float32)
    ir_col = np.repeat((0.22 * col[:, :, :1] + 0.68 * col[:, :, 1:2] + 0.1 * col[:, :, 2:3]) * 1.9, 3, axis=2)
    fg_day = np.clip(col * a, 0, 255).astype(np.uint8)
    fg_night = np.clip(ir_col * a, 0, 255).astype(np.uint8)
    fg_inv = np.repeat(255 - fg[:, :, 3:4], 3, axis=2)
    return Scene(day, night, fg_day, fg_night, np.ascontiguousarray(fg_inv), H - band, horizon,
                 (t_mid - t_half, t_mid + t_half))


@lru_cache(maxsize=2)
def _noise_tiles(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20240601)
    n = rng.normal(0, 1, (height + 64, width + 64)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), 0.7) * 1.6
    pos = np.clip(n * 6, 0, 255).astype(np.uint8)
    neg = np.clip(-n * 6, 0, 255).astype(np.uint8)
    return pos, neg


# --- placing a sprite --------------------------------------------------------------------

@dataclass
class _Placed:
    roi: tuple[int, int, int, int]  # x0, y0, x1, y1
    alpha: np.ndarray  # float32 in the roi


def _composite(frame: np.ndarray, sprite: np.ndarray, dst: np.ndarray, *, blur: float, motion: float,
               ir_gain: float | None, light: float = 1.0) -> _Placed | None:
    """Warp a premultiplied RGBA sprite to the quad ``dst`` and blend it into ``frame``."""
    H, W = frame.shape[:2]
    sh, sw = sprite.shape[:2]
    src = np.float32([(0, 0), (sw, 0), (sw, sh), (0, sh)])
    pad = int(3 * blur + motion + 2)
    x0 = max(0, int(math.floor(dst[:, 0].min())) - pad)
    y0 = max(0, int(math.floor(dst[:, 1].min())) - pad)
    x1 = min(W, int(math.ceil(dst[:, 0].max())) + pad)
    y1 = min(H, int(math.ceil(dst[:, 1].max())) + pad)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    m = cv2.getPerspectiveTransform(src, (dst - np.float32([x0, y0])).astype(np.float32))
    warped = cv2.warpPerspective(sprite, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if blur > 0.3:
        warped = cv2.GaussianBlur(warped, (0, 0), blur)
    if motion >= 2:
        kern = np.full((1, int(motion)), 1.0 / int(motion), np.float32)
        warped = cv2.filter2D(warped, -1, kern)
    a8 = cv2.extractChannel(warped, 3)
    rgb = cv2.cvtColor(warped, cv2.COLOR_RGBA2RGB)
    if light != 1.0:
        rgb = cv2.convertScaleAbs(rgb, alpha=light)
    if ir_gain is not None:
        g = cv2.convertScaleAbs(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), alpha=ir_gain)
        rgb = cv2.merge([g, g, g])
    roi = frame[y0:y1, x0:x1]
    inv = 255 - a8
    frame[y0:y1, x0:x1] = cv2.add(cv2.multiply(roi, cv2.merge([inv, inv, inv]), scale=1 / 255), rgb)
    a = a8.astype(np.float32) / 255.0
    return _Placed((x0, y0, x1, y1), a)


def _quad(cx: float, foot_y: float, w: float, h: float, yaw: float, roll: float, flip: bool,
          ground_frac: float) -> np.ndarray:
    """Destination corners for a canvas whose bottom line (feet) is at ``ground_frac`` of its height."""
    left_h, right_h = h * (1 + yaw), h * (1 - yaw)
    top_y = foot_y - ground_frac * h
    pts = np.float32([
        (cx - w / 2, foot_y - ground_frac * left_h), (cx + w / 2, foot_y - ground_frac * right_h),
        (cx + w / 2, foot_y + (1 - ground_frac) * right_h), (cx - w / 2, foot_y + (1 - ground_frac) * left_h),
    ])
    del top_y
    if flip:
        pts = pts[[1, 0, 3, 2]]
    c, s = math.cos(roll), math.sin(roll)
    rel = pts - np.float32([cx, foot_y])
    return (rel @ np.float32([[c, s], [-s, c]]) + np.float32([cx, foot_y])).astype(np.float32)


def _bbox(placed: _Placed, width: int, height: int) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(placed.alpha > 0.3)
    if len(xs) < 30:
        return None
    x0, y0 = placed.roi[0] + xs.min(), placed.roi[1] + ys.min()
    x1, y1 = placed.roi[0] + xs.max() + 1, placed.roi[1] + ys.max() + 1
    return (round(x0 / width, 5), round(y0 / height, 5), round((x1 - x0) / width, 5), round((y1 - y0) / height, 5))


def _occluders(frame: np.ndarray, placed: _Placed, rng: np.random.Generator, pal: dict, night: bool,
               ir_gain: float) -> np.ndarray:
    """Grass and twigs between the lens and the animal; returns their coverage mask in the roi."""
    x0, y0, x1, y1 = placed.roi
    occ = np.zeros((y1 - y0, x1 - x0), np.uint8)
    n = int(rng.integers(3, 14))
    for _ in range(n):
        bx = rng.uniform(0, x1 - x0)
        length = (y1 - y0) * rng.uniform(0.3, 1.1)
        pts = np.array([(bx, y1 - y0), (bx + rng.normal(0, 15), (y1 - y0) - length * 0.6),
                        (bx + rng.normal(0, 40), (y1 - y0) - length)])
        cv2.polylines(occ, [np.round(pts).astype(np.int32)], False, 255, int(rng.integers(3, 12)), cv2.LINE_AA)
    if rng.random() < 0.3:  # a leafy twig hanging across
        w, h = x1 - x0, y1 - y0
        xs = np.linspace(rng.uniform(-0.2, 0.3) * w, rng.uniform(0.6, 1.2) * w, 8)
        ys = rng.uniform(0.1, 0.6) * h + np.cumsum(rng.normal(0, h * 0.02, 8)) + np.linspace(0, h * 0.15, 8)
        cv2.polylines(occ, [np.column_stack((xs, ys)).astype(np.int32)], False, 255, 3, cv2.LINE_AA)
        leaf = max(6.0, h * 0.06)
        for x, y in zip(xs[1:], ys[1:], strict=True):
            for side in (-1, 1):
                ang = rng.uniform(20, 70) * side
                cx, cy = x + leaf * 0.8 * math.sin(math.radians(ang)), y + leaf * 0.8 * math.cos(math.radians(ang))
                cv2.ellipse(occ, (int(cx), int(cy)), (int(leaf), int(leaf * 0.4)), 90 - ang, 0, 360, 255, -1,
                            cv2.LINE_AA)
    colour = np.array(pal["grass"][int(rng.integers(3))], np.float32)
    if night:
        colour = np.full(3, (0.22 * colour[0] + 0.68 * colour[1] + 0.1 * colour[2]) * 1.3 * ir_gain, np.float32)
    sel = occ > 0
    a = occ[sel].astype(np.float32)[:, None] / 255
    roi = frame[y0:y1, x0:x1]
    roi[sel] = np.clip(roi[sel] * (1 - a) + colour * rng.uniform(0.8, 1.1) * a, 0, 255).astype(np.uint8)
    return occ


def _glow(frame: np.ndarray, x: float, y: float, radius: float, strength: float,
          colour: tuple[float, float, float]) -> None:
    H, W = frame.shape[:2]
    r = int(radius * 3)
    x0, y0, x1, y1 = max(0, int(x) - r), max(0, int(y) - r), min(W, int(x) + r), min(H, int(y) + r)
    if x1 <= x0 or y1 <= y0:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    g = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * radius * radius)) * strength
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi + g[:, :, None] * np.array(colour, np.float32), 0, 255).astype(np.uint8)


# --- smoke and fire -----------------------------------------------------------------------

def _smoke(frame: np.ndarray, rng: np.random.Generator, burst_rng: np.random.Generator, scene: Scene,
           night: bool, t: int) -> tuple[float, float, float, float] | None:
    H, W = frame.shape[:2]
    sx = burst_rng.uniform(0.2, 0.8) * W
    drift = burst_rng.uniform(-0.5, 0.5)
    density = burst_rng.uniform(0.55, 0.9)
    h4, w4 = H // 4, W // 4
    noise = fractal(rng, h4, w4, 18, octaves=4)
    yy, xx = np.mgrid[0:h4, 0:w4].astype(np.float32)
    base_y = scene.trail[1] / 4
    up = np.clip((base_y - yy) / base_y, 0, 1)
    centre = sx / 4 + drift * (base_y - yy) + t * 3
    spread = 10 + up * w4 * 0.45
    plume = np.exp(-((xx - centre) ** 2) / (2 * spread ** 2)) * (yy < base_y + 6)
    alpha = np.clip((noise - 0.3) * 2.2, 0, 1) * plume * density
    alpha = cv2.resize(alpha, (W, H), interpolation=cv2.INTER_LINEAR)
    colour = np.array((150, 150, 150) if night else (196, 196, 202), np.float32)
    f = frame.astype(np.float32)
    frame[:] = np.clip(f * (1 - alpha[:, :, None]) + colour * alpha[:, :, None], 0, 255).astype(np.uint8)
    ys, xs = np.nonzero(alpha > 0.2)
    if len(xs) < 100:
        return None
    return (xs.min() / W, ys.min() / H, (xs.max() - xs.min() + 1) / W, (ys.max() - ys.min() + 1) / H)


def _fire(frame: np.ndarray, rng: np.random.Generator, burst_rng: np.random.Generator, scene: Scene,
          night: bool) -> tuple[float, float, float, float] | None:
    H, W = frame.shape[:2]
    cx = burst_rng.uniform(0.25, 0.75) * W
    half = burst_rng.uniform(0.12, 0.3) * W
    ground = scene.trail[1] + burst_rng.uniform(-10, 30)
    height = burst_rng.uniform(0.08, 0.22) * H
    x0, x1 = int(max(0, cx - half)), int(min(W, cx + half))
    y0, y1 = int(max(0, ground - height * 1.6)), int(min(H, ground + 8))
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    h, w = y1 - y0, x1 - x0
    n = fractal(rng, h, w, 10, octaves=3, aspect=3.0)
    yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]  # 0 top .. 1 ground
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    heat = np.clip(n * 1.4 * yy ** 0.7 * (1 - xx ** 2) ** 0.5 - 0.25, 0, 1) * 2.2
    heat = np.clip(heat, 0, 1)
    if night:
        col = np.repeat((180 + 75 * heat)[:, :, None], 3, axis=2)
    else:
        col = np.stack([255 * np.ones_like(heat), 90 + 160 * heat, 20 + 170 * heat ** 2], axis=2)
    a = np.clip(heat * 2, 0, 1)[:, :, None]
    roi = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = np.clip(roi * (1 - a) + col * a, 0, 255).astype(np.uint8)
    _glow(frame, cx, ground - height * 0.3, half * 0.7, 0.9 if night else 0.35,
          (255, 255, 255) if night else (255, 140, 40))
    ys, xs = np.nonzero(a[:, :, 0] > 0.3)
    if len(xs) < 30:
        return None
    return ((x0 + xs.min()) / W, (y0 + ys.min()) / H, (xs.max() - xs.min() + 1) / W, (ys.max() - ys.min() + 1) / H)


# --- the data strip and EXIF --------------------------------------------------------------

@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _moon_icon(draw: ImageDraw.ImageDraw, x: int, y: int, r: int, phase: float) -> None:
    draw.ellipse((x - r, y - r, x + r, y + r), fill=(235, 235, 235))
    lit = math.cos(2 * math.pi * phase)  # 1 new, -1 full
    if lit > -0.95:
        off = int(r * 2 * (1 - abs(lit))) * (1 if phase < 0.5 else -1)
        draw.ellipse((x - r + off, y - r, x + r + off, y + r), fill=(0, 0, 0))


def _strip(img: Image.Image, spec: FrameSpec) -> None:
    W, H = img.size
    k = H / 720
    sh = max(12, int(24 * k))
    font = _font(max(9, int(17 * k)))
    draw = ImageDraw.Draw(img)
    t = spec.camera_time or datetime(2000, 1, 1)
    cam = spec.camera
    model = cam.model.replace("\x00", "").strip()
    temp = f"{spec.temperature_c:.0f}°C"
    if cam.style == "reconyx":
        draw.rectangle((0, 0, W, sh), fill=(0, 0, 0))
        draw.rectangle((0, H - sh, W, H), fill=(0, 0, 0))
        hour12 = t.hour % 12 or 12
        stamp = f"{t:%Y-%m-%d} {hour12}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"
        draw.text((int(10 * k), int(3 * k)), stamp, fill=(255, 255, 255), font=font)
        draw.text((int(W * 0.33), int(3 * k)), f"M {spec.frame_index + 1}/{spec.burst_len}", fill=(255, 255, 255),
                  font=font)
        _moon_icon(draw, int(W * 0.86), sh // 2, int(sh * 0.32), spec.moon)
        draw.text((int(W * 0.9), int(3 * k)), temp, fill=(255, 255, 255), font=font)
        draw.text((int(10 * k), H - sh + int(3 * k)), f"{model}  {cam.name}", fill=(255, 255, 255), font=font)
        draw.rounded_rectangle((W - int(110 * k), H - sh + 2, W - int(8 * k), H - 2), radius=int(9 * k),
                               fill=(20, 110, 40))
        draw.text((W - int(100 * k), H - sh + int(3 * k)), "RECONYX", fill=(230, 230, 230), font=font)
    else:
        draw.rectangle((0, H - sh, W, H), fill=(0, 0, 0) if cam.style == "browning" else (30, 30, 30))
        brand = "BROWNING" if cam.style == "browning" else "Bushnell"
        draw.text((int(10 * k), H - sh + int(3 * k)), brand, fill=(255, 160, 40) if cam.style == "browning"
                  else (255, 255, 255), font=font)
        draw.text((int(W * 0.22), H - sh + int(3 * k)), temp, fill=(255, 255, 255), font=font)
        _moon_icon(draw, int(W * 0.33), H - sh // 2, int(sh * 0.32), spec.moon)
        draw.text((int(W * 0.42), H - sh + int(3 * k)), f"{t:%m/%d/%Y %H:%M:%S}", fill=(255, 255, 255), font=font)
        draw.text((int(W * 0.8), H - sh + int(3 * k)), cam.name, fill=(255, 255, 255), font=font)


def exif_bytes(camera: CameraInfo, when: datetime | None) -> bytes:
    exif = Image.Exif()
    exif[TAG_MAKE] = camera.make
    exif[TAG_MODEL] = camera.model
    exif[TAG_SOFTWARE] = "1.0.0" if camera.style == "reconyx" else "V3.21"
    ifd = exif.get_ifd(TAG_EXIF_IFD)
    if when is not None:
        stamp = when.strftime("%Y:%m:%d %H:%M:%S")
        exif[TAG_DATETIME] = stamp
        ifd[TAG_DTO] = stamp
        ifd[TAG_DTD] = stamp
    ifd[TAG_BODY_SERIAL] = camera.serial
    return exif.tobytes()


# --- the frame ----------------------------------------------------------------------------

def render(spec: FrameSpec) -> RenderedFrame:
    """Render one frame to JPEG bytes with its truth (boxes, occlusion)."""
    W, H = spec.size
    scene = build_scene(spec.scene_seed, spec.phase, W, H)
    pal = PALETTES.get(spec.phase, PALETTES["summer"])
    brng = np.random.default_rng([spec.burst_seed, 1])  # same for every frame of the burst
    frng = np.random.default_rng([spec.burst_seed, 2, spec.frame_index])
    night = spec.night
    frame = (scene.night if night else scene.day).copy()
    objects: list[ObjectTruth] = []
    last = spec.frame_index == spec.burst_len - 1
    leaves = brng.random() < 0.22  # the animal walks out before the last frame
    occluded = brng.random() < 0.55
    group_dir = None
    lead_x = None
    lead_foot = 0.0
    placed_all: list[tuple[Subject, _Placed, float]] = []
    fire_like = [s for s in spec.subjects if s.kind in ("fire", "smoke")]
    for idx, subj in enumerate(s for s in spec.subjects if s.kind not in ("fire", "smoke")):
        srng = np.random.default_rng([spec.burst_seed, 3, idx])
        flank = subj.flank or ("left" if srng.random() < 0.5 else "right")
        direction = -1 if flank == "left" else 1  # left flank shown = head to the left = walking left
        if group_dir is None:
            group_dir = direction
        t0, t1 = scene.trail
        foot = srng.uniform(t0, t1) if idx == 0 or subj.kind != "animal" else lead_foot + srng.normal(0, 12 * H / 720)
        if subj.kind == "vehicle":
            foot = srng.uniform(t0, t1) - 0.25 * (t1 - scene.horizon)
        foot = max(foot, scene.horizon + 0.08 * (H - scene.horizon))
        if idx == 0:
            lead_foot = foot
        ppm = 1.25 * (foot - scene.horizon)
        if subj.kind == "animal":
            assert subj.scientific_name is not None
            gait = srng.uniform(0, 2 * math.pi) + spec.frame_index * 1.7
            coat = (coat_for(subj.scientific_name, int(subj.coat_seed or 0), flank)
                    if subj.scientific_name in MARKED else None)
            w = PLANS[subj.scientific_name].canvas_m * ppm * subj.size
            sprite, eye, canvas_m = shapes.animal_sprite(subj.scientific_name, gait, coat, srng, subj.male,
                                                         shapes.canvas_scale(w))
            h = w * COAT_H / COAT_W
            ground_frac = PLANS[subj.scientific_name].ground / COAT_H
            speed = srng.uniform(0.25, 0.9) * ppm
        elif subj.kind == "human":
            sprite, eye = shapes.person_sprite(subj.role or "visitor", math.sin(spec.frame_index * 1.9 +
                                                                                  srng.uniform(0, 6)), srng)
            w = shapes.PERSON_M * ppm
            h = w * shapes.PERSON_H / shapes.PERSON_W
            ground_frac = 585 / shapes.PERSON_H
            speed = srng.uniform(0.5, 1.1) * ppm
        else:
            sprite, eye = shapes.vehicle_sprite(srng)
            w = shapes.VEHICLE_M * ppm
            h = w * shapes.VEHICLE_H / shapes.VEHICLE_W
            ground_frac = 382 / shapes.VEHICLE_H
            speed = srng.uniform(2.0, 5.0) * ppm
        if lead_x is None:
            lead_x = srng.uniform(0.3, 0.7) * W
            x = lead_x
        else:
            x = lead_x - direction * (idx * w * srng.uniform(0.5, 0.9))
        x += direction * speed * (spec.frame_index - 1)
        if leaves and last and subj.kind != "vehicle":
            x += direction * W * 0.9
        yaw = srng.uniform(-0.22, 0.22) + frng.normal(0, 0.02)
        roll = math.radians(srng.uniform(-3.5, 3.5))
        width = w * math.cos(srng.uniform(0, 0.6))
        dst = _quad(x, foot, width, h, yaw, roll, flank == "right", ground_frac)
        blur = frng.uniform(0.0, 1.6) + (0.8 if night else 0)
        motion = frng.uniform(0, 14) * (W / 1280) if night else frng.uniform(0, 3)
        ir = max(0.35, min(1.5, 0.3 + 1.3 * ((foot - scene.horizon) / (H - scene.horizon)) ** 1.5)) if night else None
        ir_sprite = ir
        if ir is not None and subj.kind != "animal":
            ir_sprite = ir * (4.0 if subj.kind == "human" else 2.4)  # fabric and paint reflect IR strongly
        light = frng.uniform(0.85, 1.12)
        placed = _composite(frame, sprite, dst, blur=blur, motion=motion, ir_gain=ir_sprite, light=light)
        if placed is None:
            continue
        if night and subj.kind != "vehicle":
            ex, ey = _map_point(eye, sprite.shape, dst, flank == "right")
            if subj.kind == "animal" and srng.random() < 0.6:
                _glow(frame, ex, ey, max(1.5, w * 0.006), 1.0, (255, 255, 255))
            if subj.kind == "human" and subj.role == "poacher":
                _glow(frame, ex, ey, max(3.0, w * 0.05), 1.2, (255, 255, 255))
        if night and subj.kind == "vehicle":
            ex, ey = _map_point(eye, sprite.shape, dst, flank == "right")
            _glow(frame, ex, ey, w * 0.06, 1.6, (255, 255, 255))
        placed_all.append((subj, placed, ir or 1.0))
    for subj, placed, ir in placed_all:
        occ = _occluders(frame, placed, frng, pal, night, ir) if occluded else np.zeros_like(placed.alpha, np.uint8)
        bbox = _bbox(placed, W, H)
        if bbox is None:
            continue
        cover = float((placed.alpha * (occ / 255.0)).sum() / max(placed.alpha.sum(), 1e-6))
        objects.append(ObjectTruth(subj.kind, subj.scientific_name, subj.individual_id,
                                   subj.flank if subj.kind == "animal" else None, bbox, round(cover, 3)))
    # foreground vegetation, swaying (much more on a windy vegetation trigger)
    sway = int(frng.integers(0, 2 * SWAY + 1)) if spec.windy else int(brng.integers(SWAY - 3, SWAY + 4))
    premult, inv = (scene.fg_night if night else scene.fg_day), scene.fg_inv
    band = frame[scene.fg_y0:]
    frame[scene.fg_y0:] = cv2.add(cv2.multiply(band, inv[:, sway:sway + W], scale=1 / 255),
                                  premult[:, sway:sway + W])
    for subj in fire_like:
        box = (_smoke(frame, frng, np.random.default_rng([spec.burst_seed, 5]), scene, night, spec.frame_index)
               if subj.kind == "smoke" else
               _fire(frame, frng, np.random.default_rng([spec.burst_seed, 6]), scene, night))
        if box is not None:
            objects.append(ObjectTruth(subj.kind, None, None, None, tuple(round(v, 5) for v in box), 0.0))
    # exposure, colour and sensor noise
    if night:
        gain = frng.uniform(0.9, 1.1)
        grey = cv2.convertScaleAbs(frame[:, :, 1], alpha=gain)
        pos, neg = _noise_tiles(W, H)
        ox, oy = int(frng.integers(0, 64)), int(frng.integers(0, 64))
        grey = cv2.subtract(cv2.add(grey, pos[oy:oy + H, ox:ox + W]), neg[oy:oy + H, ox:ox + W])
        frame = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    else:
        sun = max(0.0, math.sin(math.radians(max(spec.sun_elevation, 0))))
        g = (0.55 + 0.55 * sun ** 0.5) * frng.uniform(0.85, 1.15) * (0.8 if brng.random() < 0.3 else 1.0)
        warm = max(0.0, 1 - spec.sun_elevation / 20)
        mat = np.diag([g * (1 + 0.1 * warm), g, g * (1 - 0.12 * warm)]).astype(np.float32)
        frame = cv2.transform(frame, mat)
        pos, neg = _noise_tiles(W, H)
        ox, oy = int(frng.integers(0, 64)), int(frng.integers(0, 64))
        n3 = cv2.merge([pos[oy:oy + H, ox:ox + W] // 2] * 3)
        frame = cv2.subtract(cv2.add(frame, n3), cv2.merge([neg[oy:oy + H, ox:ox + W] // 2] * 3))
    img = Image.fromarray(frame, "RGB")
    _strip(img, spec)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=spec.camera.quality, exif=exif_bytes(spec.camera, spec.camera_time))
    return RenderedFrame(buf.getvalue(), objects)


def _map_point(p: tuple[float, float], shape: tuple[int, ...], dst: np.ndarray, flipped: bool) -> tuple[float, float]:
    sh, sw = shape[:2]
    src = np.float32([(0, 0), (sw, 0), (sw, sh), (0, sh)])
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    q = m @ np.array([p[0], p[1], 1.0])
    return float(q[0] / q[2]), float(q[1] / q[2])


# --- the convenience entry point ---------------------------------------------------------

def render_frame(
    content: str | list[Subject] | tuple[Subject, ...] = "blank",
    *,
    when: datetime | None = None,
    night: bool | None = None,
    species: str | None = None,
    individual_id: str | None = None,
    coat_seed: int | None = None,
    flank: str = "left",
    camera: CameraInfo | None = None,
    seed: int = 0,
    size: tuple[int, int] = FRAME_SIZE,
    frame_index: int = 0,
) -> bytes:
    """A realistic camera-trap JPEG (with EXIF and data strip) of the given content, on the spot.

    ``content``: blank | animal | leopard | tiger | human | person | poacher | vehicle | smoke | fire,
    or a list of ``Subject``. A leopard or tiger keeps its coat for a given ``coat_seed`` (or, if
    only ``individual_id`` is given, a seed derived from it), so two calls with the same animal
    and flank show the same pattern. ``night`` defaults to the hour of ``when`` (20:00-05:00).
    """
    when = when or datetime(2024, 7, 14, 22, 41, 7)
    if night is None:
        night = when.hour >= 20 or when.hour < 5
    subjects = _subjects_for(content, species, individual_id, coat_seed, flank)
    spec = FrameSpec(
        subjects=tuple(subjects),
        camera=camera or CameraInfo(),
        camera_time=when,
        night=night,
        sun_elevation=-10.0 if night else 35.0,
        scene_seed=seed,
        burst_seed=seed * 7919 + 17,
        frame_index=frame_index,
        size=size,
    )
    return render(spec).jpeg


def stable_seed(text: str) -> int:
    """A seed from a name that does not change between runs (Python's hash() does)."""
    import zlib

    return zlib.crc32(text.encode("utf-8"))


def _subjects_for(content: str | list[Subject] | tuple[Subject, ...], species: str | None,
                  individual_id: str | None, coat_seed: int | None, flank: str) -> list[Subject]:
    if not isinstance(content, str):
        return list(content)
    c = content.lower()
    if c == "blank":
        return []
    if c in ("leopard", "tiger") or (c == "animal" and species in MARKED):
        sci = species or (shapes.LEOPARD if c == "leopard" else shapes.TIGER)
        ind = individual_id or "unnamed"
        seed = coat_seed if coat_seed is not None else stable_seed(ind)
        return [Subject("animal", sci, individual_id, seed, flank)]
    if c == "animal":
        return [Subject("animal", species or shapes.SIKA, None, None, flank)]
    if c in ("human", "person", "poacher", "ranger"):
        return [Subject("human", HUMAN, None, None, flank, role="ranger" if c == "ranger" else "poacher")]
    if c == "vehicle":
        return [Subject("vehicle", None, None, None, flank)]
    if c == "fire":
        return [Subject("fire"), Subject("smoke")]
    if c == "smoke":
        return [Subject("smoke")]
    raise ValueError(f"unknown content {content!r}: use one of {', '.join(CONTENT_KINDS)}, leopard, tiger, poacher")
