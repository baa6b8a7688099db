"""Side-view silhouettes: the animals, people and vehicles a camera trap meets, as sprites.

Every sprite is drawn on a canonical canvas (head to the left, feet on the bottom line) so
that a marked animal's coat stays in body coordinates: the frame renderer then moves it with a
perspective warp, which is what pose, distance and viewing angle do to a real flank. Sprites are
premultiplied RGBA so warping does not leave dark fringes.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from pardus.simulate.textures import COAT_H, COAT_W, plain_coat

LEOPARD = "Panthera pardus orientalis"
TIGER = "Panthera tigris altaica"
SIKA = "Cervus nippon"
ROE = "Capreolus pygargus"
BOAR = "Sus scrofa"
BADGER = "Meles leucurus"
RACCOON_DOG = "Nyctereutes procyonoides"
BEAR = "Ursus thibetanus"
HUMAN = "Homo sapiens"

MARKED = (LEOPARD, TIGER)
Ellipse = tuple[float, float, float, float]


@dataclass(frozen=True)
class BodyPlan:
    """A quadruped in canvas pixels (640 x 320, head left). ``canvas_m``: canvas width in metres."""

    canvas_m: float
    body: Ellipse
    chest: Ellipse
    head: Ellipse
    muzzle: Ellipse
    legs_x: tuple[float, float, float, float]  # far front, near front, far hind, near hind
    leg_top: float
    ground: float
    leg_w: tuple[float, float]
    swing: float
    tail: tuple[tuple[float, float], ...] = ()
    tail_w: tuple[float, float] = (0.0, 0.0)
    ears: str = "pointed"  # pointed | round | long
    colour: tuple[float, float, float] = (150, 120, 90)
    belly: tuple[float, float, float] = (200, 190, 170)
    spots: bool = False
    bristle: float = 0.0


PLANS: dict[str, BodyPlan] = {
    LEOPARD: BodyPlan(2.2, (330, 130, 190, 60), (205, 140, 72, 62), (105, 110, 42, 40), (72, 124, 22, 18),
                      (215, 190, 435, 460), 160, 300, (28, 16), 28,
                      ((512, 115), (560, 150), (598, 215), (626, 270)), (15, 11)),
    TIGER: BodyPlan(3.0, (335, 128, 200, 70), (205, 140, 80, 72), (100, 108, 48, 46), (64, 126, 26, 22),
                    (215, 190, 440, 465), 165, 302, (36, 22), 26,
                    ((525, 112), (570, 150), (600, 210), (622, 262)), (18, 13)),
    SIKA: BodyPlan(2.0, (345, 125, 165, 56), (225, 130, 60, 56), (128, 48, 36, 22), (98, 58, 26, 14),
                   (240, 215, 450, 470), 150, 312, (22, 8), 34, ((505, 98), (518, 118)), (9, 6), "long",
                   (150, 92, 52), (226, 214, 196), spots=True),
    ROE: BodyPlan(1.6, (345, 128, 160, 58), (228, 132, 58, 56), (130, 52, 34, 22), (100, 62, 24, 14),
                  (240, 215, 450, 470), 152, 312, (20, 7), 34, (), (0, 0), "long", (168, 100, 58), (220, 210, 192)),
    BOAR: BodyPlan(1.7, (335, 150, 200, 85), (200, 150, 80, 86), (96, 172, 66, 50), (42, 198, 30, 22),
                   (215, 190, 450, 475), 200, 302, (36, 20), 20, ((530, 140), (540, 170), (546, 200)), (5, 3),
                   "pointed", (70, 60, 50), (88, 78, 66), bristle=0.8),
    BADGER: BodyPlan(0.95, (340, 205, 215, 70), (215, 208, 70, 66), (108, 215, 56, 40), (58, 232, 30, 18),
                     (200, 175, 470, 495), 240, 302, (34, 26), 14, ((548, 190), (575, 205)), (14, 6), "round",
                     (138, 132, 124), (48, 46, 44)),
    RACCOON_DOG: BodyPlan(0.85, (340, 190, 190, 80), (215, 195, 70, 75), (118, 188, 56, 46), (72, 206, 28, 18),
                          (215, 190, 460, 485), 230, 302, (28, 18), 16,
                          ((522, 172), (560, 196), (592, 232)), (34, 20), "round", (126, 106, 84), (90, 78, 64)),
    BEAR: BodyPlan(1.9, (340, 150, 210, 100), (210, 150, 95, 100), (95, 120, 60, 55), (44, 142, 30, 22),
                   (220, 195, 455, 480), 205, 306, (52, 40), 16, (), (0, 0), "round", (34, 31, 30), (40, 37, 35)),
}


def _ellipse(img: np.ndarray, e: Ellipse, value: int | tuple[float, ...], angle: float = 0.0,
             scale: float = 1.0) -> None:
    cx, cy, rx, ry = (v * scale * 16 for v in e)
    cv2.ellipse(img, (int(cx), int(cy)), (int(rx), int(ry)), angle, 0, 360, value, -1, cv2.LINE_AA, 4)


def _poly(img: np.ndarray, pts: np.ndarray, value: int | tuple[float, ...], scale: float = 1.0) -> None:
    cv2.fillPoly(img, [np.round(np.asarray(pts, dtype=np.float64) * (16 * scale)).astype(np.int32)], value,
                 cv2.LINE_AA, 4)


def _limb(top: tuple[float, float], foot: tuple[float, float], w_top: float, w_bot: float, bend: float) -> np.ndarray:
    """A two-segment leg (thigh, shank) as a polygon."""
    tx, ty = top
    fx, fy = foot
    kx, ky = (tx + fx) / 2 + bend, (ty + fy) / 2
    w_k = (w_top + w_bot) / 2
    return np.array([(tx - w_top / 2, ty), (tx + w_top / 2, ty), (kx + w_k / 2, ky), (fx + w_bot / 2, fy),
                     (fx - w_bot / 2 - 4, fy), (kx - w_k / 2, ky)])


def _tube(points: tuple[tuple[float, float], ...], w0: float, w1: float) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    left, right = [], []
    for i in range(n):
        a = pts[max(i - 1, 0)]
        b = pts[min(i + 1, n - 1)]
        d = b - a
        nrm = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
        w = (w0 + (w1 - w0) * i / max(n - 1, 1)) / 2
        left.append(pts[i] + nrm * w)
        right.append(pts[i] - nrm * w)
    return np.vstack((left, right[::-1]))


def quadruped_shape(plan: BodyPlan, gait: float, scale: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Mask (uint8) and shade (uint8; far legs darker) of a walking quadruped; and its eye.

    ``scale`` < 1 draws a smaller canvas for a distant animal: the frame needs no more pixels
    than it will show, and rendering cost falls with the square of the scale."""
    mask = np.zeros((round(COAT_H * scale), round(COAT_W * scale)), np.uint8)
    shade = np.zeros_like(mask)
    phases = (gait + math.pi, gait, gait, gait + math.pi)  # diagonal pairs move together
    legs = []
    for x, ph in zip(plan.legs_x, phases, strict=True):
        s = math.sin(ph) * plan.swing
        legs.append(_limb((x, plan.leg_top), (x + s, plan.ground), plan.leg_w[0], plan.leg_w[1], -abs(s) * 0.3))
    for i in (0, 2):  # far side first, darker
        _poly(mask, legs[i], 255, scale=scale)
        _poly(shade, legs[i], 165, scale=scale)
    parts_value = 255
    if plan.tail:
        tail = _tube(plan.tail, *plan.tail_w)
        _poly(mask, tail, 255, scale=scale)
        _poly(shade, tail, 235, scale=scale)
    for e in (plan.body, plan.chest):
        _ellipse(mask, e, 255, scale=scale)
        _ellipse(shade, e, parts_value, scale=scale)
    hx, hy, hrx, hry = plan.head
    ccx, ccy, ccrx, ccry = plan.chest
    neck = np.array([(hx + hrx * 0.2, hy - hry * 0.8), (ccx + ccrx * 0.2, ccy - ccry * 0.95),
                     (ccx - ccrx * 0.1, ccy + ccry * 0.6), (hx + hrx * 0.1, hy + hry * 0.85)])
    for img, v in ((mask, 255), (shade, parts_value)):
        _poly(img, neck, v, scale=scale)
        _ellipse(img, plan.head, v, scale=scale)
        _ellipse(img, plan.muzzle, v, scale=scale)
        if plan.ears == "pointed":
            for dx in (-0.15, 0.3):
                ex = hx + dx * hrx
                _poly(img, [(ex - hrx * 0.28, hy - hry * 0.7), (ex + hrx * 0.28, hy - hry * 0.7),
                            (ex + hrx * 0.05, hy - hry * 1.35)], v, scale=scale)
        elif plan.ears == "long":
            for dx, ang in ((0.2, -25), (0.55, -10)):
                _ellipse(img, (hx + dx * hrx, hy - hry * 1.2, hrx * 0.22, hry * 0.7), v, ang, scale)
        else:
            for dx in (0.0, 0.45):
                _ellipse(img, (hx + dx * hrx, hy - hry * 0.85, hrx * 0.22, hry * 0.25), v, scale=scale)
        for i in (1, 3):
            _poly(img, legs[i], v, scale=scale)
    eye = (hx - hrx * 0.45, hy - hry * 0.2)
    return mask, shade, eye


def _finish(colour: np.ndarray, mask: np.ndarray, shade: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Round the form (distance to the outline) and light it from above; premultiply."""
    dist = cv2.distanceTransform(cv2.threshold(mask, 127, 1, cv2.THRESH_BINARY)[1], cv2.DIST_L2, 3)
    rounding = cv2.sqrt(cv2.min(dist, 24.0 * scale) * (1.0 / (24.0 * scale)))
    v = np.linspace(1.08 / 255 / 255, 0.82 / 255 / 255, mask.shape[0], dtype=np.float32)[:, None]
    k = (0.58 + 0.42 * rounding) * shade.astype(np.float32) * mask.astype(np.float32) * v
    rgba = np.empty((*mask.shape, 4), np.uint8)
    rgba[:, :, :3] = cv2.convertScaleAbs(cv2.multiply(colour.astype(np.float32, copy=False), cv2.merge([k, k, k])))
    rgba[:, :, 3] = mask
    return rgba


SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)


def canvas_scale(width_px: float) -> float:
    """The smallest canvas scale that still has at least one canvas pixel per frame pixel."""
    want = width_px * 1.05 / COAT_W
    return next((s for s in reversed(SCALES) if s >= want), 1.0)


@lru_cache(maxsize=64)
def plain_variant(species: str, variant: int) -> np.ndarray:
    """One of a few coats of an unmarked species (cached): unmarked animals need no identity."""
    plan = PLANS[species]
    rng = np.random.default_rng([stable_int(species), variant])
    coat = plain_coat(rng, plan.colour, plan.belly, plan.spots, plan.bristle)
    hx, hy, hrx, hry = plan.head
    if species == BADGER:  # white face with a dark stripe through the eye
        _ellipse(coat, (hx - 10, hy, hrx * 1.2, hry * 1.2), (225.0, 222.0, 215.0))
        cv2.line(coat, (int(hx + hrx), int(hy - 18)), (int(hx - hrx * 1.5), int(hy + 4)), (30.0, 28.0, 26.0), 16,
                 cv2.LINE_AA)
    elif species == RACCOON_DOG:
        _ellipse(coat, (hx - 12, hy + 4, hrx * 0.7, hry * 0.45), (40.0, 34.0, 30.0))
    elif species == BEAR:
        _poly(coat, np.array([(150, 130), (240, 150), (195, 200)]), (222.0, 218.0, 205.0))
    elif species == ROE:
        _ellipse(coat, (505, 120, 30, 40), (236.0, 230.0, 218.0))
    elif species == SIKA:
        _ellipse(coat, (505, 110, 26, 34), (236.0, 232.0, 222.0))
    return coat


def stable_int(text: str) -> int:
    return zlib.crc32(text.encode())


def _scaled(coat: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return coat
    return cv2.resize(coat, (round(COAT_W * scale), round(COAT_H * scale)), interpolation=cv2.INTER_AREA)


def animal_sprite(species: str, gait: float, coat: np.ndarray | None, rng: np.random.Generator,
                  male: bool = False, scale: float = 1.0) -> tuple[np.ndarray, tuple[float, float], float]:
    """(premultiplied RGBA canvas, eye position in canvas pixels, canvas width in metres), head left."""
    plan = PLANS[species]
    mask, shade, eye = quadruped_shape(plan, gait, scale)
    if coat is None:
        coat = plain_variant(species, int(rng.integers(6)))
    sprite = _finish(_scaled(coat, scale), mask, shade, scale)
    if male and species in (SIKA, ROE):
        hx, hy, hrx, hry = (v * scale for v in plan.head)
        antler = np.zeros_like(mask)
        base = (hx + hrx * 0.1, hy - hry)
        tines = [((0, 0), (18, -60)), ((18, -60), (40, -100)), ((10, -30), (-15, -55)), ((28, -80), (8, -112))]
        for (a0, a1), (b0, b1) in tines:
            cv2.line(antler, (int(base[0] + a0 * scale), int(base[1] + a1 * scale)),
                     (int(base[0] + b0 * scale), int(base[1] + b1 * scale)), 255, max(2, int(6 * scale)), cv2.LINE_AA)
        sel = antler > 0
        sprite[sel, :3] = (np.array([120, 100, 75]) * (antler[sel, None] / 255.0)).astype(np.uint8)
        sprite[sel, 3] = np.maximum(sprite[sel, 3], antler[sel])
    return sprite, (eye[0] * scale, eye[1] * scale), plan.canvas_m


PERSON_W, PERSON_H, PERSON_M = 240, 600, 0.8
CLOTHES = {
    "ranger": ((78, 92, 58), (64, 72, 50)),
    "poacher": ((52, 56, 44), (40, 42, 36)),
    "visitor": ((40, 62, 110), (50, 50, 58)),
}


def person_sprite(role: str, stride: float, rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A walking person facing left; poachers carry a long gun. Returns sprite and forehead point."""
    jacket, trousers = CLOTHES.get(role, CLOTHES["visitor"])
    jitter = rng.uniform(0.85, 1.15)
    jacket = tuple(c * jitter for c in jacket)
    canvas = np.zeros((PERSON_H, PERSON_W, 3), np.float32)
    mask = np.zeros((PERSON_H, PERSON_W), np.uint8)
    shade = np.zeros_like(mask)
    s = stride * 55
    far_leg = _limb((125, 330), (125 - s, 585), 40, 28, 6)
    near_leg = _limb((115, 330), (115 + s, 585), 40, 28, 6)
    torso = np.array([(82, 150), (160, 150), (158, 340), (88, 340)])
    pack = np.array([(150, 165), (200, 175), (198, 310), (152, 300)])
    far_arm = _limb((125, 165), (125 + s * 0.8, 330), 26, 20, -8)
    near_arm = _limb((112, 165), (112 - s * 0.8, 330), 26, 20, -8)
    layers: list[tuple[np.ndarray | tuple[float, float, float, float], tuple[float, ...], int, str]] = [
        (far_leg, trousers, 170, "p"), (far_arm, jacket, 170, "p"), (pack, (60, 58, 50), 220, "p"),
        (torso, jacket, 255, "p"), (near_leg, trousers, 255, "p"), (near_arm, jacket, 240, "p"),
        ((118, 105, 36, 42), (196, 160, 130), 255, "e"), ((122, 80, 40, 24), (50, 52, 44), 255, "e"),
    ]
    if role == "poacher":
        layers.insert(2, (np.array([(172, 120), (182, 118), (196, 420), (186, 422)]), (30, 28, 26), 230, "p"))
    for shape, colour, sh, kind in layers:
        m = np.zeros_like(mask)
        if kind == "p":
            _poly(m, shape, 255)  # type: ignore[arg-type]
        else:
            _ellipse(m, shape, 255)  # type: ignore[arg-type]
        sel = m > 0
        canvas[sel] = colour
        mask = np.maximum(mask, m)
        shade[sel] = sh
    boots = np.zeros_like(mask)
    boots[555:, :] = 1
    canvas[(boots > 0) & (mask > 0)] = (35, 32, 30)
    canvas *= (0.9 + 0.2 * rng.random((PERSON_H, PERSON_W, 1), dtype=np.float32))
    return _finish(canvas, mask, shade), (96.0, 95.0)


VEHICLE_W, VEHICLE_H, VEHICLE_M = 800, 400, 4.2
PAINTS = ((86, 96, 62), (214, 214, 208), (120, 122, 120), (40, 52, 82))


def vehicle_sprite(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float]]:
    """A 4x4 of the kind used on forest roads (UAZ-like), facing left; returns the headlight point."""
    paint = PAINTS[int(rng.integers(len(PAINTS)))]
    canvas = np.zeros((VEHICLE_H, VEHICLE_W, 3), np.float32)
    mask = np.zeros((VEHICLE_H, VEHICLE_W), np.uint8)
    shade = np.zeros_like(mask)
    body = np.array([(30, 175), (140, 150), (175, 45), (690, 40), (770, 60), (785, 300), (30, 300)])
    _poly(mask, body, 255)
    _poly(shade, body, 255)
    canvas[mask > 0] = paint
    for win in ([(190, 60), (320, 60), (320, 145), (160, 150)], [(340, 60), (500, 60), (500, 145), (340, 145)],
                [(520, 60), (680, 60), (680, 145), (520, 145)]):
        m = np.zeros_like(mask)
        _poly(m, np.array(win), 255)
        canvas[m > 0] = (38, 46, 56)
        shade[m > 0] = 200
    cv2.line(canvas, (30, 230), (785, 230), (30, 30, 30), 3, cv2.LINE_AA)
    cv2.line(canvas, (330, 150), (330, 295), (25, 25, 25), 3, cv2.LINE_AA)
    for cx in (190, 640):
        wheel = np.zeros_like(mask)
        cv2.circle(wheel, (cx, 310), 72, 255, -1, cv2.LINE_AA)
        canvas[wheel > 0] = (22, 22, 22)
        cv2.circle(canvas, (cx, 310), 34, (110, 110, 105), -1, cv2.LINE_AA)
        mask = np.maximum(mask, wheel)
        shade = np.maximum(shade, wheel)
    cv2.ellipse(canvas, (44, 200), (12, 18), 0, 0, 360, (235, 230, 200), -1, cv2.LINE_AA)
    canvas *= (0.92 + 0.12 * rng.random((VEHICLE_H, VEHICLE_W, 1), dtype=np.float32))
    return _finish(canvas, mask, shade), (44.0, 200.0)
