"""Reading a camera's upload: the body streamed under a size limit, multipart parsed as it arrives.

The size limit is enforced while the body streams in: a 2 GB upload is cut off at the limit,
never read into memory. Across all uploads at once, an ``UploadBudget`` caps the bytes held in
memory: each limit alone still lets 200 cameras reconnecting after a repeater outage send 200 x
64 MB together. Past the budget a camera gets 503 with Retry-After (it keeps the photo and
retries), never a server that runs out of memory and loses what others sent.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request

from pardus.web.problems import HTTPProblem

MULTIPART_OVERHEAD = 64 * 1024


RETRY_AFTER_S = 5


class UploadBudget:
    """Bytes of upload bodies in memory at once, across every camera (thread-safe)."""

    def __init__(self, total: int) -> None:
        self.total, self.used = total, 0
        self._lock = threading.Lock()

    def take(self, n: int) -> bool:
        with self._lock:
            if self.used + n > self.total:
                return False
            self.used += n
            return True

    def give(self, n: int) -> None:
        with self._lock:
            self.used = max(0, self.used - n)


class Hold:
    """What one request holds of the budget; given back when the request is done with its bytes."""

    def __init__(self, budget: UploadBudget | None) -> None:
        self.budget, self.held = budget, 0

    def take(self, n: int) -> None:
        if self.budget is None:
            return
        if not self.budget.take(n):
            raise HTTPProblem(503, "the server is receiving as many uploads as it can hold in memory; "
                                   f"keep the file and send it again in {RETRY_AFTER_S} s",
                              headers={"Retry-After": str(RETRY_AFTER_S)})
        self.held += n

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.budget is not None:
            self.budget.give(self.held)
        self.held = 0


def _size(n: float) -> str:
    return f"{n / (1 << 20):.1f} MB" if n >= 1 << 20 else f"{n / 1024:.0f} KB"


async def read_limited(request: Request, limit: int, overhead: int = MULTIPART_OVERHEAD,
                       hold: Hold | None = None) -> AsyncIterator[bytes]:
    """The body in chunks; past ``limit`` (+ room for multipart headers) it stops reading and refuses
    (413); past the shared budget (``hold``) it refuses with 503 and Retry-After."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + overhead:
        raise HTTPProblem(413, f"the body is too large ({_size(int(declared))}); the limit is {_size(limit)}"
                               + (" (pardus serve --max-upload-mb)" if overhead else ""))
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if hold is not None:
            hold.take(len(chunk))
        if seen > limit + overhead:
            raise HTTPProblem(413, f"the upload passed the limit of {_size(limit)}; it was cut off "
                                   "and nothing was stored")
        yield chunk


async def read_upload(request: Request, limit: int, hold: Hold | None = None
                      ) -> tuple[bytes, str | None, str | None, dict[str, str]]:
    """(file bytes, file name, its content type, the other form fields), streamed under the limit
    (and the shared budget, through ``hold``)."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        body = bytearray()
        async for chunk in read_limited(request, limit, hold=hold):
            body += chunk
        if len(body) > limit:
            raise HTTPProblem(413, f"the file is larger than the limit of {limit / (1 << 20):.0f} MB")
        return bytes(body), request.headers.get("x-file-name"), ctype or None, {}
    from python_multipart import MultipartParser
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(ctype)
    boundary = params.get(b"boundary")
    if not boundary:
        raise HTTPProblem(400, "multipart upload without a boundary; send the file as a form field named 'file'")
    parts: list[dict[str, Any]] = []
    cur: dict[str, Any] = {}
    header: dict[str, bytes] = {"field": b"", "value": b""}

    def on_part_begin() -> None:
        cur.clear()
        cur.update(headers={}, data=bytearray())

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header["value"] += data[start:end]

    def on_header_end() -> None:
        cur["headers"][header["field"].decode("latin-1").lower()] = header["value"]
        header["field"], header["value"] = b"", b""

    def on_part_data(data: bytes, start: int, end: int) -> None:
        cur["data"] += data[start:end]
        if len(cur["data"]) > limit:
            raise HTTPProblem(413, f"the file passed the limit of {limit / (1 << 20):.0f} MB; nothing was stored")

    def on_part_end() -> None:
        parts.append(dict(cur))

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
    })
    from python_multipart.exceptions import MultipartParseError

    try:
        async for chunk in read_limited(request, limit, hold=hold):
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise HTTPProblem(400, "the multipart upload is malformed (a header too long or a broken boundary); "
                               "send the photo as the form field 'file'") from exc
    fields: dict[str, str] = {}
    file: tuple[bytes, str | None, str | None] | None = None
    for part in parts:
        _, disp = parse_options_header(part["headers"].get("content-disposition", b""))
        name = disp.get(b"name", b"").decode()
        if b"filename" in disp or name == "file":
            if file is None:
                fname = disp.get(b"filename", b"").decode("utf-8", "replace") or None
                file = (bytes(part["data"]), fname, part["headers"].get("content-type", b"").decode() or None)
        else:
            fields[name] = bytes(part["data"]).decode("utf-8", "replace")
    if file is None:
        raise HTTPProblem(400, "no file in the upload: send it as the multipart field 'file'")
    return file[0], file[1], file[2], fields


def camera_seq(fields: dict[str, str], request: Request) -> int | None:
    raw = fields.get("seq") or request.headers.get("x-camera-seq") or request.query_params.get("seq")
    if raw in (None, ""):
        return None
    try:
        seq = int(str(raw))
    except ValueError as exc:
        raise HTTPProblem(400, f"seq must be the camera's whole sequence number, not {raw!r}") from exc
    if seq < 0 or seq > 2**31 - 1:
        raise HTTPProblem(400, f"seq {seq} is out of range (0 .. 2147483647)")
    return seq
