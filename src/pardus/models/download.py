"""`pardus models download NAME`: the one place Pardus fetches weights, and only when asked.

The file is streamed to ``<data dir>/models/<name>.part`` while its SHA-256 is computed, and only
renamed to its final name when the checksum matches; a wrong or cut-off download is deleted and
reported, never used. Without a known checksum nothing is fetched: the user passes the one
published beside the release (``--sha256``), so a changed file upstream cannot slip in unseen.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pardus.models.registry import ModelInfo, ModelUnavailableError


class DownloadError(RuntimeError):
    """The download failed or did not match its checksum; the message says what to do."""


def download(info: ModelInfo, models_dir: Path, *, url: str | None = None, sha256: str | None = None,
             progress: Callable[[int, int | None], None] | None = None, timeout_s: float = 60.0) -> Path:
    """Fetch ``info``'s weights into ``models_dir`` and return the verified file."""
    import httpx

    url = url or info.url
    expected = (sha256 or info.sha256 or "").lower()
    if not url:
        raise ModelUnavailableError(f"{info.name} has no download address Pardus knows: {info.note} "
                                    "Give one with --url.")
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        have = f" If you already have the file, point {info.env_path} at it instead." if info.env_path else ""
        raise ModelUnavailableError(f"no SHA-256 checksum known for {info.name}: copy the one published with the "
                                    f"release ({info.source}) and pass it with --sha256, so the file can be "
                                    f"verified.{have}")
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / (info.filename or Path(url).name)
    part = final.with_name(final.name + ".part")
    digest = hashlib.sha256()
    done = 0
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout_s) as r:
            if r.status_code != 200:
                raise DownloadError(f"{url} answered HTTP {r.status_code}; check the address and your connection")
            total = int(r.headers["content-length"]) if r.headers.get("content-length") else None
            with part.open("wb") as f:
                for chunk in r.iter_bytes(1 << 20):
                    f.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress(done, total)
        if digest.hexdigest() != expected:
            raise DownloadError(f"the file from {url} has SHA-256 {digest.hexdigest()}, not {expected}: it was "
                                "deleted. Check the checksum you gave, or the release page, and try again.")
    except httpx.HTTPError as exc:
        part.unlink(missing_ok=True)
        raise DownloadError(f"could not download {url} ({type(exc).__name__}: {exc}); nothing was kept") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(final)
    return final
