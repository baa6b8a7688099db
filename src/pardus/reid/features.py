"""Coat-pattern features: RootSIFT descriptors on affine-adapted keypoints, "gravity" oriented.

This is the feature half of HotSpotter (Crall et al., "HotSpotter - Patterned Species Instance
Recognition", WACV 2013), built from OpenCV parts:

1. The animal's chip is cut from the frame (detection box when there is one, else the whole frame
   without the camera's burned-in data strip) and scaled to a fixed area, so one spot is about the
   same number of pixels in every photo of a catalogue.
2. Infrared night frames are grey and flat; every chip is contrast-equalised (CLAHE) so night and
   day chips give comparable gradients.
3. Keypoints are OpenCV's difference-of-Gaussian extrema. Each one's shape is then adapted to the
   local second-moment matrix (Baumberg 2000; Mikolajczyk & Schmid 2004), so a rosette seen on a
   flank turning away from the camera (foreshortened) gets an ellipse that undoes the
   foreshortening. This is what makes the keypoints affine-invariant.
4. The ellipse is expressed with the "gravity vector" convention HotSpotter uses: the frame is the
   lower-triangular square root of the ellipse matrix, so image-up stays up. Camera-trap animals
   stand upright; dropping rotation invariance makes descriptors more distinctive, and it means a
   mirrored pattern (the other flank) can never line up with a consistent transform.
5. Each adapted patch is resampled to a canonical square, all patches go into one mosaic image,
   and OpenCV SIFT computes the 128-d descriptors there in one call (angle fixed at 0).
6. RootSIFT (Arandjelovic & Zisserman 2012): L1-normalise, square root, so Euclidean distance
   behaves like the Hellinger kernel; stored as uint8 (x512, HotSpotter's scaling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np
from scipy import ndimage

from pardus.reid.foreground import sample

# A chip is scaled so that sqrt(width * height) is about this many pixels (HotSpotter uses 450).
CHIP_SQRT_AREA = 520
# Whole frames (no detection box) keep more pixels: the animal may fill a tenth of the frame.
FRAME_SQRT_AREA = 1000
# Infrared frames have nearly no colour: mean max-min channel spread below this (0..255 scale),
# the same rule as the pipeline's day/night stage.
IR_CHROMA_THRESHOLD = 4.0
DESCRIPTOR_SCALE = 512.0


@dataclass(frozen=True)
class FeatureParams:
    """Everything that changes the features; part of the index's identity (``key``)."""

    chip_sqrt_area: int = CHIP_SQRT_AREA
    frame_sqrt_area: int = FRAME_SQRT_AREA
    max_features: int = 900
    contrast_threshold: float = 0.015
    edge_threshold: float = 10.0
    min_sigma: float = 1.2
    affine: bool = True
    affine_iterations: int = 6
    max_anisotropy: float = 4.0
    clahe: bool = True
    box_margin: float = 0.04
    # which pixels are the animal (pardus.reid.foreground): "saliency" (DINOv2 saliency head),
    # "grabcut" (colour model seeded by the chip) or "none"; keypoints whose animal belief is
    # below foreground_min are dropped before the strongest max_features are kept, so the
    # keypoint budget goes to the coat
    foreground: str = "saliency"
    foreground_min: float = 0.1

    @property
    def key(self) -> str:
        fg = "" if self.foreground == "none" else f"-{self.foreground}{self.foreground_min:g}"
        return (
            f"rootsift-{'aff' if self.affine else 'iso'}-c{self.chip_sqrt_area}-f{self.frame_sqrt_area}"
            f"-n{self.max_features}-t{self.contrast_threshold:g}-{'clahe' if self.clahe else 'raw'}{fg}"
        )


@dataclass
class ChipFeatures:
    """Features of one animal in one photo.

    ``kpts`` rows are ``x, y, a11, a21, a22`` in chip pixels: the centre and the lower-triangular
    frame ``[[a11, 0], [a21, a22]]`` that maps the unit circle onto the keypoint's ellipse.
    ``to_image`` maps chip pixels back to the original frame (``image = chip * scale + offset``),
    which drawing and the static-scenery test need. ``weight`` is the belief that a feature lies on
    the animal (1) rather than on the scenery (0).
    """

    kpts: np.ndarray
    desc: np.ndarray
    weight: np.ndarray
    chip_shape: tuple[int, int]
    image_shape: tuple[int, int]
    scale: float
    offset: tuple[float, float]
    night: bool
    params_key: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    # the camera (deployment) that took the photo, when known: two photos of one camera share its
    # rocks at the same pixels, which matching must not count (pardus.reid.match.match)
    camera: str | None = None

    def __len__(self) -> int:
        return int(self.kpts.shape[0])

    def image_xy(self) -> np.ndarray:
        """Keypoint centres in original-frame pixels."""
        return self.kpts[:, :2] * self.scale + np.asarray(self.offset, dtype=np.float32)

    def sigma(self) -> np.ndarray:
        """Isotropic-equivalent scale of each keypoint (sqrt of the frame's determinant), chip pixels."""
        return np.sqrt(np.abs(self.kpts[:, 2] * self.kpts[:, 4]))

    def subset(self, keep: np.ndarray) -> ChipFeatures:
        return ChipFeatures(
            self.kpts[keep], self.desc[keep], self.weight[keep], self.chip_shape, self.image_shape,
            self.scale, self.offset, self.night, self.params_key, dict(self.extra), self.camera,
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays for ``np.savez``; ``from_arrays`` reverses it."""
        meta = np.array(
            [self.chip_shape[0], self.chip_shape[1], self.image_shape[0], self.image_shape[1],
             self.scale, self.offset[0], self.offset[1], float(self.night)], dtype=np.float64,
        )
        return {"kpts": self.kpts, "desc": self.desc, "weight": self.weight, "meta": meta,
                "params_key": np.array(self.params_key), "camera": np.array(self.camera or "")}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ChipFeatures:
        m = arrays["meta"]
        return cls(
            kpts=np.asarray(arrays["kpts"], dtype=np.float32),
            desc=np.asarray(arrays["desc"], dtype=np.uint8),
            weight=np.asarray(arrays["weight"], dtype=np.float32),
            chip_shape=(int(m[0]), int(m[1])),
            image_shape=(int(m[2]), int(m[3])),
            scale=float(m[4]),
            offset=(float(m[5]), float(m[6])),
            night=bool(m[7]),
            params_key=str(arrays.get("params_key", "")),
            camera=str(arrays.get("camera", "")) or None,
        )


# --- the frame around the animal ------------------------------------------------------------

def decode_image(data: bytes) -> np.ndarray:
    """JPEG/PNG bytes to a BGR array; a clear error for files that are not pictures."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if arr is None:
        raise ValueError("the file is not a picture OpenCV can read (damaged, or a video?)")
    return arr


def is_infrared(bgr: np.ndarray) -> bool:
    """Infrared night frames are greyscale: the camera writes equal channels."""
    if bgr.ndim == 2 or bgr.shape[2] == 1:
        return True
    small = bgr[:: max(1, bgr.shape[0] // 200), :: max(1, bgr.shape[1] // 200)].astype(np.int16)
    spread = small.max(axis=2) - small.min(axis=2)
    return float(spread.mean()) < IR_CHROMA_THRESHOLD


def data_strip_rows(grey: np.ndarray) -> tuple[int, int]:
    """Rows (top, bottom) taken by the camera's burned-in data strip, to be left out.

    Reconyx, Panthera and most trail cameras print date, temperature and a logo in white on a black
    band at the top and/or bottom. Its letters are the same in every photo of every animal, so left
    in, they out-match any coat. A strip row is mostly pure black (median <= 10) around its text;
    a dark night scene is dark but noisy grey.
    """
    h = grey.shape[0]
    limit = max(1, int(0.09 * h))
    step = max(1, grey.shape[1] // 400)

    def is_strip(row: np.ndarray) -> bool:
        r = row[::step]
        return bool(np.mean(r < 28) > 0.6 and np.median(r) <= 10)

    top = 0
    while top < limit and is_strip(grey[top]):
        top += 1
    bottom = h
    while h - bottom < limit and is_strip(grey[bottom - 1]):
        bottom -= 1
    # a strip is a band of some height: single dark rows are just dark pixels
    if top < max(3, h // 150):
        top = 0
    if h - bottom < max(3, h // 150):
        bottom = h
    # pad a little: JPEG ringing around the strip's edge
    pad = max(1, h // 200)
    return (top + pad if top else 0), (bottom - pad if bottom < h else h)


def chip_region(shape: tuple[int, int], box: tuple[float, float, float, float] | None, strips: tuple[int, int],
                margin: float) -> tuple[int, int, int, int]:
    """Pixel rectangle (x0, y0, x1, y1) to cut: the box with a margin, never inside the strips."""
    h, w = shape
    top, bottom = strips
    if box is None:
        return 0, top, w, bottom
    bx, by, bw, bh = box
    if bw <= 0 or bh <= 0:
        raise ValueError(f"empty detection box {box}")
    mx, my = margin * bw, margin * bh
    x0 = int(max(0.0, (bx - mx)) * w)
    y0 = int(max(0.0, (by - my)) * h)
    x1 = int(math.ceil(min(1.0, bx + bw + mx) * w))
    y1 = int(math.ceil(min(1.0, by + bh + my) * h))
    y0, y1 = max(y0, top), min(y1, bottom)
    if x1 - x0 < 16 or y1 - y0 < 16:
        raise ValueError(f"detection box {box} is too small to show a coat pattern ({x1 - x0}x{y1 - y0} px)")
    return x0, y0, x1, y1


# --- keypoint shapes ------------------------------------------------------------------------

def _pyramid(img: np.ndarray, levels: int) -> list[np.ndarray]:
    pyr = [img.astype(np.float32)]
    for _ in range(levels - 1):
        if min(pyr[-1].shape[:2]) < 16:
            break
        pyr.append(cv2.pyrDown(pyr[-1]))
    return pyr


def _sample_patches(pyr: list[np.ndarray], centres: np.ndarray, frames: np.ndarray, grid: np.ndarray,
                    scale_px: np.ndarray) -> np.ndarray:
    """Sample ``centres + frames @ grid`` for every keypoint, from the pyramid level whose pixel
    spacing matches the sampling step (``scale_px``), so the patches are not aliased.

    centres (N, 2), frames (N, 2, 2) in base pixels, grid (P, P, 2) in frame units. Returns (N, P, P).
    """
    n = centres.shape[0]
    p = grid.shape[0]
    out = np.zeros((n, p, p), np.float32)
    levels = np.clip(np.floor(np.log2(np.maximum(scale_px, 1.0))), 0, len(pyr) - 1).astype(int)
    g = grid.reshape(-1, 2)
    chunk = max(1, 30000 // p)  # remap wants fewer than 32767 rows
    for lv in np.unique(levels):
        for start in range(0, int(np.sum(levels == lv)), chunk):
            idx = np.nonzero(levels == lv)[0][start:start + chunk]
            out[idx] = _remap_level(pyr[lv], 2.0**lv, centres[idx], frames[idx], g, p)
    return out


def _remap_level(img: np.ndarray, f: float, centres: np.ndarray, frames: np.ndarray, g: np.ndarray,
                 p: int) -> np.ndarray:
    """One ``cv2.remap`` call samples a whole column of patches from one pyramid level."""
    gx, gy = g[None, :, 0], g[None, :, 1]
    # pyrDown centres its output pixel i on input pixel 2i, so level coordinates are base / f
    mapx = ((centres[:, :1] + frames[:, 0, :1] * gx + frames[:, 0, 1:] * gy) / f).astype(np.float32).reshape(-1, p)
    mapy = ((centres[:, 1:] + frames[:, 1, :1] * gx + frames[:, 1, 1:] * gy) / f).astype(np.float32).reshape(-1, p)
    patches = cv2.remap(img, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return patches.reshape(len(centres), p, p)


def adapt_affine_shapes(pyr: list[np.ndarray], xy: np.ndarray, sigma: np.ndarray, iterations: int,
                        max_anisotropy: float) -> tuple[np.ndarray, np.ndarray]:
    """Baumberg's iteration: warp each patch until its second-moment matrix is isotropic.

    Returns the 2x2 shape ``U`` per keypoint (det 1, the keypoint's ellipse is ``sigma * U``) and a
    mask of the keypoints whose shape converged to a reasonable ellipse (too elongated ones are
    edges, not blobs, and are dropped, as in Mikolajczyk & Schmid 2004).
    """
    n = xy.shape[0]
    u = np.tile(np.eye(2, dtype=np.float64), (n, 1, 1))
    active = np.ones(n, bool)
    # sampling grid in units of sigma: step 0.5, +-4.5 (the integration window is 1.5 sigma)
    steps = np.arange(-9, 10) * 0.5
    gx, gy = np.meshgrid(steps, steps)
    grid = np.stack([gx, gy], axis=-1)
    window = np.exp(-(gx**2 + gy**2) / (2 * 1.5**2))
    window /= window.sum()
    for _ in range(iterations):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        frames = sigma[idx, None, None] * u[idx]
        sv = np.linalg.svd(frames, compute_uv=False)
        patches = _sample_patches(pyr, xy[idx], frames, grid, 0.5 * sv[:, -1])
        # derivatives at differentiation scale 1 sigma = 2 samples
        dx = ndimage.gaussian_filter(patches, sigma=(0, 2, 2), order=(0, 0, 1), mode="nearest")
        dy = ndimage.gaussian_filter(patches, sigma=(0, 2, 2), order=(0, 1, 0), mode="nearest")
        mxx = np.einsum("npq,pq->n", dx * dx, window)
        mxy = np.einsum("npq,pq->n", dx * dy, window)
        myy = np.einsum("npq,pq->n", dy * dy, window)
        mu = np.stack([np.stack([mxx, mxy], -1), np.stack([mxy, myy], -1)], -2) + 1e-9 * np.eye(2)
        evals, evecs = np.linalg.eigh(mu)
        evals = np.maximum(evals, 1e-12)
        isotropy = evals[:, 0] / evals[:, 1]
        inv_sqrt = np.einsum("nij,nj,nkj->nik", evecs, evals**-0.5, evecs)
        inv_sqrt /= np.sqrt(np.linalg.det(inv_sqrt))[:, None, None]
        new_u = np.einsum("nij,njk->nik", u[idx], inv_sqrt)
        new_u /= np.sqrt(np.abs(np.linalg.det(new_u)))[:, None, None]
        u[idx] = new_u
        converged = isotropy > 0.92
        active[idx[converged]] = False
    sv = np.linalg.svd(u, compute_uv=False)
    ok = (sv[:, 0] / sv[:, 1]) <= max_anisotropy
    return u, ok


def gravity_frames(sigma: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Lower-triangular frames L with ``L L^T = sigma^2 U U^T``: the same ellipse, image-up kept up."""
    cov = (sigma**2)[:, None, None] * np.einsum("nij,nkj->nik", u, u)
    a11 = np.sqrt(cov[:, 0, 0])
    a21 = cov[:, 1, 0] / a11
    a22 = np.sqrt(np.maximum(cov[:, 1, 1] - a21**2, 1e-12))
    out = np.zeros_like(cov)
    out[:, 0, 0], out[:, 1, 0], out[:, 1, 1] = a11, a21, a22
    return out


# --- descriptors ---------------------------------------------------------------------------

# The canonical patch: SIFT's descriptor covers +-6 sigma; at 3 px per sigma and with the radius
# OpenCV reads (about 10.6 sigma), one cell of the mosaic is 68 px square.
_K = 3.0
_CELL = 68
_MOSAIC_COLS = 32


def describe(pyr: list[np.ndarray], xy: np.ndarray, frames: np.ndarray, sift: cv2.SIFT) -> np.ndarray:
    """RootSIFT descriptors of the normalised patches (one OpenCV call over a patch mosaic)."""
    n = xy.shape[0]
    half = _CELL / 2.0
    coords = (np.arange(_CELL) - half + 0.5) / _K
    gx, gy = np.meshgrid(coords, coords)
    grid = np.stack([gx, gy], axis=-1)
    scale_px = np.sqrt(np.abs(np.linalg.det(frames))) / _K
    patches = _sample_patches(pyr, xy, frames, grid, scale_px)
    rows = math.ceil(n / _MOSAIC_COLS)
    mosaic = np.zeros((rows * _CELL, _MOSAIC_COLS * _CELL), np.float32)
    kps = []
    for i in range(n):
        r, c = divmod(i, _MOSAIC_COLS)
        mosaic[r * _CELL:(r + 1) * _CELL, c * _CELL:(c + 1) * _CELL] = patches[i]
        # size = 2 * sigma in OpenCV's convention; octave 0, layer 0; angle 0 = gravity
        kps.append(cv2.KeyPoint(c * _CELL + half - 0.5, r * _CELL + half - 0.5, 2 * _K, 0.0, 1.0, 0))
    mosaic8 = np.clip(mosaic, 0, 255).astype(np.uint8)
    kps_out, desc = sift.compute(mosaic8, kps)
    if desc is None or len(kps_out) != n:
        raise RuntimeError("OpenCV SIFT dropped patches from the mosaic; descriptors would not line up")
    return rootsift_uint8(desc)


def rootsift_uint8(desc: np.ndarray) -> np.ndarray:
    """RootSIFT (L1 normalise, square root: unit L2 norm) as uint8, HotSpotter's x512 scaling."""
    d = desc.astype(np.float32)
    d /= np.maximum(d.sum(axis=1, keepdims=True), 1e-7)
    d = np.sqrt(d)
    return np.clip(np.round(d * DESCRIPTOR_SCALE), 0, 255).astype(np.uint8)


def foreground_map(bgr: np.ndarray, method: str) -> np.ndarray:
    """Animal belief (0..1) per pixel of a crop, by ``method`` (see ``FeatureParams.foreground``)."""
    from pardus.reid.foreground import SaliencyMasker, grabcut_mask

    if method == "saliency":
        return SaliencyMasker.shared().mask(bgr)
    if method == "grabcut":
        return grabcut_mask(bgr)
    raise ValueError(f"unknown foreground method {method!r} (saliency, grabcut or none)")


# --- the whole extraction ----------------------------------------------------------------

_SIFT_CACHE: dict[tuple[float, float], cv2.SIFT] = {}


def _sift(contrast: float, edge: float) -> cv2.SIFT:
    key = (contrast, edge)
    if key not in _SIFT_CACHE:
        _SIFT_CACHE[key] = cv2.SIFT_create(nfeatures=0, nOctaveLayers=3, contrastThreshold=contrast,
                                           edgeThreshold=edge, sigma=1.6)
    return _SIFT_CACHE[key]


def extract(
    image: np.ndarray,
    box: tuple[float, float, float, float] | None = None,
    params: FeatureParams | None = None,
) -> ChipFeatures:
    """Features of the animal in ``image`` (BGR or grey array) inside ``box``.

    ``box`` is a Camtrap DP box (x, y, width, height, normalised to 0..1, from the top-left), e.g.
    a detection; without one the whole frame is used (minus the camera's data strip).
    """
    params = params or FeatureParams()
    grey_full = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    night = is_infrared(image)
    strips = data_strip_rows(grey_full)
    x0, y0, x1, y1 = chip_region(grey_full.shape[:2], box, strips, params.box_margin)
    crop = grey_full[y0:y1, x0:x1]
    target = params.chip_sqrt_area if box is not None else params.frame_sqrt_area
    scale = math.sqrt(crop.shape[0] * crop.shape[1]) / target  # original pixels per chip pixel
    cw, ch = max(16, round(crop.shape[1] / scale)), max(16, round(crop.shape[0] / scale))
    interp = cv2.INTER_AREA if scale > 1 else cv2.INTER_CUBIC
    chip = cv2.resize(crop, (cw, ch), interpolation=interp)
    scale_x, scale_y = crop.shape[1] / cw, crop.shape[0] / ch
    if params.clahe:
        tiles = max(2, round(math.sqrt(cw * ch) / 96))
        chip = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(tiles, tiles)).apply(chip)
    sift = _sift(params.contrast_threshold, params.edge_threshold)
    raw = sift.detect(chip, None)
    empty = ChipFeatures(np.zeros((0, 5), np.float32), np.zeros((0, 128), np.uint8), np.zeros(0, np.float32),
                         (ch, cw), grey_full.shape[:2], (scale_x + scale_y) / 2, (float(x0), float(y0)), night,
                         params.key)
    if not raw:
        return empty
    # OpenCV repeats a keypoint once per dominant orientation; with gravity frames one is enough
    pts = np.array([(k.pt[0], k.pt[1], k.size / 2.0, k.response) for k in raw], np.float64)
    _, first = np.unique(np.round(pts[:, :3], 2), axis=0, return_index=True)
    pts = pts[np.sort(first)]
    pts = pts[pts[:, 2] >= params.min_sigma]
    animal = np.ones(len(pts), np.float32)
    if params.foreground != "none" and len(pts):
        colour = image[y0:y1, x0:x1]
        fmap = foreground_map(colour, params.foreground)
        animal = sample(fmap, pts[:, :2] * np.array([scale_x, scale_y]))
        on = animal >= params.foreground_min
        pts, animal = pts[on], animal[on]
    # keep the strongest, with room for those the shape adaptation rejects
    order = np.argsort(-pts[:, 3])[: int(params.max_features * 1.4)]
    pts, animal = pts[order], animal[order]
    if len(pts) == 0:
        return empty
    pyr = _pyramid(chip, 6)
    xy, sigma = pts[:, :2], pts[:, 2]
    if params.affine:
        u, ok = adapt_affine_shapes(pyr, xy, sigma, params.affine_iterations, params.max_anisotropy)
        xy, sigma, u, pts, animal = xy[ok], sigma[ok], u[ok], pts[ok], animal[ok]
    else:
        u = np.tile(np.eye(2), (len(xy), 1, 1))
    xy, sigma, u = xy[: params.max_features], sigma[: params.max_features], u[: params.max_features]
    animal = animal[: params.max_features]
    if len(xy) == 0:
        return empty
    frames = gravity_frames(sigma, u)
    desc = describe(pyr, xy, frames, sift)
    kpts = np.column_stack([xy[:, 0], xy[:, 1], frames[:, 0, 0], frames[:, 1, 0], frames[:, 1, 1]]).astype(np.float32)
    return ChipFeatures(
        kpts=kpts,
        desc=desc,
        weight=animal.astype(np.float32),
        chip_shape=(ch, cw),
        image_shape=grey_full.shape[:2],
        scale=(scale_x + scale_y) / 2,
        offset=(float(x0), float(y0)),
        night=night,
        params_key=params.key,
    )
