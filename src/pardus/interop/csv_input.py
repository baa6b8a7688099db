"""Reading a CSV table someone hands Pardus (a taxa table, Wildlife Insights' bulk-upload tables).

Each reader raises its own error type; the failures a hand-made or exported table brings (not
UTF-8, a NUL byte from a binary file renamed .csv, a quote never closed) are worded once here.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path


def read_csv_text(path: Path, error: type[ValueError], what: str = "") -> str:
    """The file's text (UTF-8, a BOM dropped, line ends kept for the CSV reader), or ``error`` saying
    why not; ``what`` names the table in the message ("the taxa table ")."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error(f"{path.name} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV") from exc
    except OSError as exc:
        raise error(f"cannot read {what}{path} ({exc.strerror or exc})") from exc


def csv_lines(text: str, name: str, error: type[ValueError]) -> list[list[str]]:
    """Every row of the table as cells (the header first), or ``error`` when it is not a CSV table."""
    if "\x00" in text:
        raise error(f"{name} holds a NUL character; it is not a CSV table")
    try:
        return list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise error(f"{name} is not a readable CSV table ({exc})") from exc
