"""Reading a JSON file someone hands Pardus (MegaDetector results, COCO Camera Traps), once for all readers.

Python's reader accepts what JSON does not (NaN, Infinity) and what no database keeps (NUL
characters for PostgreSQL, lone surrogates for UTF-8); a file nested deeper than the interpreter's
stack ends in RecursionError. Each becomes the reader's own error with a message that says what is
wrong with the file, before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pardus.store.db import unstorable_text


def shown(value: object) -> str:
    """A value as the person wrote it in the file, cut short: never a Python object's repr."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def read_json(path: Path, error: type[ValueError]) -> Any:
    """The parsed file, or ``error`` saying why it cannot be read (see the module docstring)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"), parse_constant=_reject_constant)
    except (OSError, ValueError) as exc:
        raise error(f"cannot read {path} as JSON ({exc})") from exc
    except RecursionError as exc:
        raise error(f"cannot read {path} as JSON: it is nested too deeply") from exc
    check_text(data, path.name, error)
    return data


def check_text(data: object, name: str, error: type[ValueError]) -> None:
    """Refuse text no database keeps: NUL characters (PostgreSQL) and lone surrogates (UTF-8).

    JSON can spell both (``\\u0000``, ``\\ud800``); found here, they are a message, not a failed
    transaction halfway through. Walked without recursion, as deep as the JSON reader allowed.
    """
    bad = unstorable_text(data)
    if bad is None:
        return
    kind, text = bad
    if kind == "nul":
        raise error(f"{name} holds a NUL character (\\u0000) in {shown(text)}")
    raise error(f"{name} holds text that is not valid Unicode (a lone {text})")
