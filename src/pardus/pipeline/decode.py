"""Photo decoding for the stages, in worker processes while the models run in the main one.

Decoding a JPEG is CPU work that PIL only partly does outside the GIL; in a separate process it
overlaps the model's forward pass completely. Workers read the blob file themselves (a path
crosses the process boundary, not the bytes) and send back the reduced RGB array. The pool is
made once per process and shared by every stage; it uses ``forkserver`` so the workers never
inherit the model's threads or open database connections.

This module imports nothing heavy at load time: the workers import it and nothing else.
"""

from __future__ import annotations

import atexit
import io
import multiprocessing
import sys
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np

Decoded = tuple[np.ndarray | None, str | None]


def decode_bytes(data: bytes, longest: int) -> np.ndarray:
    """RGB array, decoded at reduced size where JPEG allows it (the models look at <= ``longest`` px);
    turned upright as the EXIF orientation says."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (longest, longest))
        im = ImageOps.exif_transpose(im)
        return np.asarray(im.convert("RGB"))


def decode_file(path: str | None, longest: int) -> Decoded:
    """``(rgb, None)`` or ``(None, why)``: a bad file is that file's failure, never the batch's."""
    if path is None or not Path(path).is_file():
        return None, "the original file is missing from the blob store"
    try:
        return decode_bytes(Path(path).read_bytes(), longest), None
    except Exception as exc:  # noqa: BLE001 - any decoder failure is reported with the file
        return None, f"the photo could not be decoded ({type(exc).__name__}: {exc})"


_pools: dict[int, ProcessPoolExecutor] = {}
_lock = threading.Lock()
_inline = False  # set when worker processes proved unusable here


def _pool(workers: int) -> ProcessPoolExecutor:
    with _lock:
        pool = _pools.get(workers)
        if pool is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["pardus.pipeline.decode"])
            pool = _pools[workers] = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
        return pool


@atexit.register
def shutdown() -> None:
    """Stop the workers (also at interpreter exit)."""
    with _lock:
        for pool in _pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        _pools.clear()


def decode_many(paths: Sequence[str | None], longest: int, workers: int) -> Iterator[Decoded]:
    """Decoded photos in the order given, as they become ready. With ``workers`` >= 1 every photo is
    queued at once to worker processes, so photo i+1 decodes while the caller runs a model on photo i;
    with 0 they decode here, one by one.

    If the workers cannot run (a script that starts Pardus without the ``if __name__ == "__main__":``
    guard multiprocessing needs, or a worker killed for memory), the photos are decoded here instead,
    for the rest of this process, and that is said once on stderr: a photo never fails for it."""
    global _inline
    if workers < 1 or _inline or not paths:
        for p in paths:
            yield decode_file(p, longest)
        return
    pool = _pool(workers)
    futures: list[Future[Decoded]] = [pool.submit(decode_file, p, longest) for p in paths]
    try:
        for p, fut in zip(paths, futures, strict=True):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - BrokenProcessPool and the like
                if not _inline:
                    _inline = True
                    print(f"pardus: photo decoding in worker processes failed ({type(exc).__name__}); "
                          "decoding in the main process from now on", file=sys.stderr)
                    shutdown()
                yield decode_file(p, longest)
    finally:
        for fut in futures:
            fut.cancel()
