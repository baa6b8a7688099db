"""A park's existing ID records into the catalogue: ``pardus individuals import ID-SHEET.csv``.

Parks that identified their cats before Pardus keep an ID sheet: which photo shows which animal,
on which flank. Importing it confirms each listed photo as that individual (a person's decision,
recorded for ``--by``, with the sheet's name in the history) and creates the individuals the
catalogue does not have yet. The photos must be in the data folder already (``pardus import-card``).

Columns (a header row; names are case-insensitive, comma, semicolon or tab separated):

- the photo, one of ``sha256``, ``file_path``/``path``, ``file``/``file_name``/``filename``; a path
  that exists beside the sheet is read and found by its content, so a sheet written for the park's
  own photo archive works whatever the card's folder names were;
- ``individual`` (or ``code``, ``individual_id``): the individual's code, e.g. SC_026;
- optional: ``name``, ``flank`` (left/right, L/R, empty when unknown), ``box`` (``x,y,w,h`` as
  fractions of the frame; empty for the whole frame), ``species``, ``sex``, ``deployment`` (when
  several cards hold a file of the same name).

The whole sheet is checked before anything is written, and every problem is reported by its row:
a sheet with one wrong row writes nothing. Rows already in the catalogue (same photo, box and
individual) are counted, not added again, so importing the same or a grown sheet again is safe.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pardus.reid.catalogue import Box, Catalogue, CatalogueError, observation_box, parse_box, same_box, species_key
from pardus.store.models import Individual

# Header names accepted for each field, the photo's in order of precision (a sha256 names one file).
COLUMNS: dict[str, tuple[str, ...]] = {
    "photo": ("media_id", "sha256", "file_path", "path", "file", "file_name", "filename", "photo", "image"),
    "code": ("individual", "individual_code", "code", "individual_id", "animal"),
    "name": ("name", "individual_name"),
    "flank": ("flank", "side"),
    "box": ("box", "bbox"),
    "species": ("species", "scientific_name"),
    "sex": ("sex",),
    "deployment": ("deployment", "deployment_id"),
}
FLANK_WORDS = {"left": "left", "l": "left", "right": "right", "r": "right", "": None, "unknown": None, "?": None,
               "-": None}
SEX_WORDS = {"female": "female", "f": "female", "male": "male", "m": "male", "unknown": "unknown", "": None}
MAX_SHOWN = 40  # problems listed in the error; the rest are counted


class IdSheetError(CatalogueError):
    """The sheet cannot be imported; ``problems`` names each wrong row and what to change."""

    def __init__(self, sheet: str, problems: list[str]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:MAX_SHOWN])
        more = f"\n  ... and {len(problems) - MAX_SHOWN} more" if len(problems) > MAX_SHOWN else ""
        super().__init__(f"{sheet}: {len(problems)} problem(s); nothing was imported. Fix the sheet and run the "
                         f"same command again:\n{shown}{more}")


@dataclass(frozen=True)
class SheetRow:
    """One row of an ID sheet, checked and normalised (``line`` is the row number a spreadsheet shows)."""

    line: int
    photo: str
    code: str
    name: str | None = None
    flank: str | None = None
    box: Box | None = None
    species: str | None = None
    sex: str | None = None
    deployment: str | None = None


@dataclass
class SheetReport:
    """What an import did: individuals created, photos confirmed, rows already in the catalogue."""

    rows: int
    created: list[str] = field(default_factory=list)
    confirmed: int = 0
    already: int = 0
    notes: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)


def _header_key(text: str) -> str:
    return text.strip().lstrip("\ufeff").casefold().replace(" ", "_").replace("-", "_")


def _row_number(problem: str) -> int:
    """Problems are listed in the sheet's row order."""
    head = problem.split(":", 1)[0].removeprefix("row ")
    return int(head) if head.isdigit() else 0


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_id_sheet(path: Path, *, photos_beside: bool = True) -> tuple[list[SheetRow], list[str]]:
    """The sheet's well-formed rows and the problems of the others (by row); a sheet that cannot be
    read at all, or lacks the photo or individual column, raises a :class:`CatalogueError`.

    ``photos_beside`` False: never read a file the sheet names (a sheet uploaded to the web app
    has no folder of photos beside it, and its paths must not reach the server's own files)."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise CatalogueError(f"cannot read the ID sheet {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise CatalogueError(f"{path.name} is not a UTF-8 text (CSV) file; save the sheet as CSV UTF-8") from exc
    first = text.splitlines()[0] if text.strip() else ""
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise IdSheetError(path.name, ["the sheet is empty: it needs a header row (e.g. file,individual,flank)"])
    keys = [_header_key(h) for h in header]
    where: dict[str, list[int]] = {f: [keys.index(n) for n in names if n in keys] for f, names in COLUMNS.items()}
    missing = [f for f in ("photo", "code") if not where[f]]
    if missing:
        want = " and ".join("a photo column (file, path or sha256)" if f == "photo" else
                            "an individual column (individual or code)" for f in missing)
        raise IdSheetError(path.name, [f"row 1: the header {', '.join(header)!r} has no {want}"])

    def cell(values: list[str], f: str) -> str:
        for i in where[f]:
            if i < len(values) and values[i].strip():
                return values[i].strip()
        return ""

    rows: list[SheetRow] = []
    problems: list[str] = []
    base = path.parent
    for line, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue  # blank line
        bad: list[str] = []
        photo, code = cell(values, "photo"), cell(values, "code")
        if not photo:
            bad.append("no photo (file name, path or sha256)")
        elif photos_beside and (base / photo).is_file():
            photo = _sha256_of(base / photo)  # the park's own copy: found by content
        if not code:
            bad.append("no individual code")
        flank_text = cell(values, "flank").casefold()
        if flank_text not in FLANK_WORDS:
            bad.append(f"flank {cell(values, 'flank')!r} is not left, right or empty")
        sex_text = cell(values, "sex").casefold()
        if sex_text not in SEX_WORDS:
            bad.append(f"sex {cell(values, 'sex')!r} is not female, male, unknown or empty")
        box = None
        if cell(values, "box"):
            try:
                box = parse_box(cell(values, "box"))
            except CatalogueError as exc:
                bad.append(str(exc))
        if bad:
            problems.extend(f"row {line}: {b}" for b in bad)
            continue
        rows.append(SheetRow(line, photo, code, cell(values, "name") or None, FLANK_WORDS[flank_text], box,
                             cell(values, "species") or None, SEX_WORDS[sex_text], cell(values, "deployment") or None))
    if not rows and not problems:
        raise IdSheetError(path.name, ["the sheet has a header but no rows"])
    return rows, problems


def import_id_sheet(cat: Catalogue, path: Path, *, by: str, species: str | None = None,
                    progress: Callable[[int, int], None] | None = None, photos_beside: bool = True) -> SheetReport:
    """Confirm every row of the sheet in one transaction, then add the new photos to the index.

    ``species``: for individuals the sheet creates and whose row names none. Existing individuals
    keep their facts; a row that contradicts them (another species, name or sex) is a problem to
    fix, not a silent change (`pardus individuals edit` changes them). ``photos_beside``: see
    :func:`read_id_sheet`.
    """
    rows, problems = read_id_sheet(path, photos_beside=photos_beside)
    source = f"ID sheet {path.name}"
    report = SheetReport(rows=len(rows))
    with cat.ws.db.session() as s:
        new: dict[str, dict[str, Any]] = {}  # code -> {"line": first row, fact: (value, row)} of a new individual
        plan: list[tuple[SheetRow, str, Individual | None]] = []
        seen: dict[tuple[str, Box | None], tuple[str, int]] = {}
        for row in rows:
            try:
                media = cat.find_photo(s, row.photo, deployment=row.deployment)
            except CatalogueError as exc:
                problems.append(f"row {row.line}: {exc}")
                continue
            try:
                ind: Individual | None = cat.find(s, row.code)
            except CatalogueError:
                ind = None
            if ind is not None:
                facts = {"species": (ind.scientific_name, row.species), "name": (ind.name, row.name),
                         "sex": (ind.sex, row.sex)}
                for what, (have, said) in facts.items():
                    differs = (species_key(have) != species_key(said)) if what == "species" else have != said
                    if said and have and differs:
                        problems.append(f"row {row.line}: {ind.code} has {what} {have!r} in the catalogue, the sheet "
                                        f"says {said!r}; fix the sheet or change it with `pardus individuals edit`")
                    elif said and not have:
                        problems.append(f"row {row.line}: {ind.code} has no {what} in the catalogue, the sheet says "
                                        f"{said!r}; set it with `pardus individuals edit` first")
            else:
                facts_of = new.setdefault(row.code, {"line": row.line})
                for what in ("species", "name", "sex"):
                    said = getattr(row, what)
                    if said and facts_of.get(what) and facts_of[what][0] != said:
                        problems.append(f"row {row.line}: {row.code} has {what} {said!r} here but "
                                        f"{facts_of[what][0]!r} in row {facts_of[what][1]}")
                    elif said and not facts_of.get(what):
                        facts_of[what] = (said, row.line)
            key = (media.id, None if row.box is None else tuple(round(v, 4) for v in row.box))
            if key in seen:
                code, line = seen[key]
                if code != row.code:
                    problems.append(f"row {row.line}: the same photo and box is {code} in row {line}")
                else:
                    report.already += 1
                continue
            seen[key] = (row.code, row.line)
            known = [o for o in cat.identities(s, media.id) if same_box(observation_box(o), row.box)]
            if known:
                if ind is not None and known[0].individual_id == ind.id:
                    report.already += 1
                    continue
                have = s.get(Individual, known[0].individual_id or "")
                problems.append(f"row {row.line}: {'this box' if row.box else 'the whole frame'} of "
                                f"{media.file_name or media.file_path} is already confirmed as "
                                f"{have.code if have else known[0].individual_id}; split or merge to change it")
                continue
            plan.append((row, media.id, ind))
        for code, facts_of in new.items():
            if not (facts_of.get("species") or species):
                problems.append(f"row {facts_of['line']}: {code} is not in the catalogue yet and no species is "
                                "given for it; add a species column or use --species")
        if problems:
            raise IdSheetError(path.name, sorted(problems, key=_row_number))
        made: dict[str, Individual] = {}
        for code, facts_of in new.items():
            def fact(what: str, facts_of: dict[str, Any] = facts_of) -> str | None:
                return facts_of[what][0] if facts_of.get(what) else None

            made[code] = cat.create(by=by, code=code, name=fact("name"), species=fact("species") or species,
                                    sex=fact("sex"), s=s, details={"source": source})
            report.created.append(code)
        for row, media_id, ind in plan:
            cat._confirm(s, media_id, row.box, ind or made[row.code], row.flank, by, None, source=source)
            report.confirmed += 1
    report.index = cat.sync_index(progress)
    return report
