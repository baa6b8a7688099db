"""Frames out of camera-trap videos with PyAV, at a rate the user chooses.

Detection on every frame of a 30 fps clip would cost 30 times a photo and tell little more; one
frame a second (the default) finds an animal that walks through, and ``frame_time_s`` on each
result says where in the clip to look.
"""

from __future__ import annotations

import io

import numpy as np


def sample_frames(data: bytes, every_s: float = 1.0, max_frames: int = 120,
                  longest: int | None = None) -> list[tuple[float, np.ndarray]]:
    """(time in seconds, RGB frame) every ``every_s`` seconds from the start, at most ``max_frames``;
    frames larger than ``longest`` px are scaled down as they are converted.

    Decodes in order and keeps the first frame at or after each sampling instant, so it works on
    clips whose container has no usable index (common on trail cameras). Raises ``ValueError``
    with the reason when the file holds no decodable video.
    """
    import av

    if every_s <= 0:
        raise ValueError("the frame interval must be positive (seconds between sampled frames)")
    out: list[tuple[float, np.ndarray]] = []
    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.video:
                raise ValueError("the file has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            next_t = 0.0
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else len(out) * every_s
                if t + 1e-6 < next_t:
                    continue
                w, h = frame.width, frame.height
                if longest and max(w, h) > longest:
                    r = longest / max(w, h)
                    frame = frame.reformat(width=max(2, round(w * r)), height=max(2, round(h * r)))
                out.append((round(t, 3), frame.to_ndarray(format="rgb24")))
                next_t = t + every_s
                if len(out) >= max_frames:
                    break
    except av.error.FFmpegError as exc:
        raise ValueError(f"the video could not be decoded ({exc})") from exc
    if not out:
        raise ValueError("the video has no decodable frames")
    return out


def frame_at(data: bytes, t: float) -> np.ndarray:
    """The first frame at or after ``t`` seconds (the frame a detection at ``frame_time_s`` was made on)."""
    frames = sample_frames(data, every_s=max(t, 1e-3), max_frames=2)
    best = min(frames, key=lambda f: abs(f[0] - t))
    return best[1]
