"""Import a folder of LMS downloads into the layout `make grade` reads: SUBMISSIONS/<student>/<NN_topic>.ipynb.

    python -m course.lms_import DOWNLOADS --out SUBMISSIONS [--notebooks notebooks] [--force]

DOWNLOADS holds what a learning platform's "download all submissions" gives, in any mix (sub-folders too):

- flat names, `<student>_<NN_topic>.ipynb` (`alice_00_introduction.ipynb`); the student is the part before
  the first `_` (Moodle's `Alice Smith_1234_assignsubmission_file_00_introduction.ipynb` gives
  `Alice Smith`); an `-` or a space works as the separator too;
- browser copies, `alice_03_gradcam (1).ipynb` beside `alice_03_gradcam.ipynb`: the newest of them (by the
  file's time, or the time stored in a zip) is kept, and the import says which it kept and which not;
- zip files: each notebook in it is placed by its own name as above, or, named just `<NN_topic>.ipynb`,
  by the folder it is in inside the zip or else the zip's own name (`alice.zip`, `alice_week3.zip`).

NN_topic is one of the teaching notebooks (--notebooks, default notebooks/). Everything it cannot place
(not a notebook, an unknown assignment, no student name, a student named like an output of the grader,
a file that is not JSON, a zip inside a zip) is listed at the end, with the reason; the exit status is
then 1 (0 if everything was placed, 2 for a usage error). It never changes DOWNLOADS, and never replaces a
different file already in SUBMISSIONS unless --force is given (an identical one is left as it is). The
folders it makes are 0700 and the files 0600: submissions are the students' own.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from course.grade import write_private

ROOT = Path(__file__).resolve().parents[1]
COPY = re.compile(r"^(?P<name>.*?)\s*\((?P<n>\d+)\)$")   # "03_gradcam (1)", "alice_03_gradcam(2)"
RESERVED = ("grades.csv", "totals.csv", "feedback", "logs", "records")   # course.grade's outputs
STUDENT = re.compile(r"^[^\W_][\w .@+-]*$")


@dataclass
class Found:
    origin: str          # where it came from, as the report names it
    student: str
    stem: str
    data: bytes
    mtime: float
    copy: int            # 0 for the original name, N for "(N)"


def _split(name: str, stems: list[str]) -> tuple[str | None, str | None, int]:
    """(student or None, stem or None, copy number) of a file name without its .ipynb."""
    copy = 0
    match = COPY.match(name)
    if match:
        name, copy = match.group("name"), int(match.group("n"))
    for stem in sorted(stems, key=len, reverse=True):
        if name == stem:
            return None, stem, copy
        for separator in ("_", "-", " "):
            if name.endswith(separator + stem):
                prefix = name[: -len(stem) - 1].strip()
                return (_student(prefix) if prefix else None), stem, copy
    return None, None, copy


def _student(text: str) -> str:
    """The student's name: the part before the first '_' (LMS ids rarely hold one)."""
    return text.split("_")[0].strip()


def _zip_student(path: str) -> str:
    return _student(Path(path).stem)


def collect(downloads: Path, stems: list[str]) -> tuple[list[Found], list[tuple[str, str]]]:
    """Every notebook it can place, and (origin, reason) for everything else."""
    found, unplaced = [], []

    def consider(origin: str, name: str, data: bytes, mtime: float, fallback: str | None) -> None:
        if not name.endswith(".ipynb"):
            unplaced.append((origin, "not a notebook (.ipynb)"))
            return
        student, stem, copy = _split(name[: -len(".ipynb")], stems)
        if stem is None:
            unplaced.append((origin, f"no assignment of that name (one of {', '.join(stems)})"))
            return
        student = student or fallback
        if not student:
            unplaced.append((origin, "no student name in it (expected <student>_<NN_topic>.ipynb)"))
            return
        if not STUDENT.match(student) or student.lower() in RESERVED:
            unplaced.append((origin, f"{student!r} cannot be a student folder's name"))
            return
        try:
            json.loads(data)
        except ValueError:
            unplaced.append((origin, "not a notebook: not JSON (an incomplete download?)"))
            return
        found.append(Found(origin, student, stem, data, mtime, copy))

    for path in sorted(p for p in downloads.rglob("*") if p.is_file()):
        origin = str(path.relative_to(downloads))
        if path.name.startswith(".") or path.name in ("Thumbs.db",):
            continue
        if path.suffix.lower() == ".zip":
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        if info.is_dir() or "__MACOSX" in info.filename or Path(info.filename).name.startswith("."):
                            continue
                        inner = f"{origin}:{info.filename}"
                        if info.filename.lower().endswith(".zip"):
                            unplaced.append((inner, "a zip inside a zip: unpack it first"))
                            continue
                        parent = Path(info.filename).parent.name
                        fallback = _student(parent) if parent else _zip_student(path.name)
                        consider(inner, Path(info.filename).name, archive.read(info),
                                 time.mktime(info.date_time + (0, 0, -1)), fallback)
            except zipfile.BadZipFile:
                unplaced.append((origin, "not a readable zip file"))
            continue
        fallback = _student(path.parent.name) if path.parent != downloads else None
        consider(origin, path.name, path.read_bytes(), path.stat().st_mtime, fallback)
    return found, unplaced


def choose(found: list[Found]) -> tuple[dict[tuple[str, str], Found], list[str]]:
    """The newest of each student's copies of a notebook, and a sentence for each choice among several."""
    groups: dict[tuple[str, str], list[Found]] = {}
    for item in found:
        groups.setdefault((item.student, item.stem), []).append(item)
    chosen, said = {}, []
    for key, items in sorted(groups.items()):
        items.sort(key=lambda f: (f.mtime, f.copy))
        chosen[key] = items[-1]
        if len(items) > 1:
            others = ", ".join(f.origin for f in items[:-1])
            said.append(f"{key[0]}/{key[1]}: {len(items)} copies; kept the newest, {items[-1].origin} "
                        f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(items[-1].mtime))}), not {others}")
    return chosen, said




def import_downloads(downloads: Path, out: Path, notebooks: Path = ROOT / "notebooks", force: bool = False):
    """Places what it can; returns (placed [(origin, target)], notes, unplaced [(origin, reason)])."""
    stems = sorted(p.stem for p in notebooks.glob("*.ipynb"))
    if not downloads.is_dir():
        raise ValueError(f"DOWNLOADS {downloads} is not a folder")
    if not stems:
        raise ValueError(f"--notebooks {notebooks} holds no notebook: it names the assignments")
    inside = downloads.resolve()
    if out.resolve() == inside or inside in out.resolve().parents:
        raise ValueError(f"--out {out} is inside DOWNLOADS {downloads}: choose a folder outside it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; it must be a folder (made if missing)")
    found, unplaced = collect(downloads, stems)
    chosen, notes = choose(found)
    placed = []
    for (student, stem), item in chosen.items():
        target = out / student / f"{stem}.ipynb"
        if target.exists() and target.read_bytes() != item.data and not force:
            unplaced.append((item.origin, f"{target} exists with other content (--force replaces it)"))
            continue
        if not target.exists() or target.read_bytes() != item.data:
            for folder in (out, out / student):
                folder.mkdir(mode=0o700, exist_ok=True)
            write_private(target, item.data)
        placed.append((item.origin, str(target)))
    return placed, notes, unplaced


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.lms_import", description=__doc__.splitlines()[0])
    parser.add_argument("downloads", type=Path, help="the folder of LMS downloads (flat names, copies, zips)")
    parser.add_argument("--out", type=Path, required=True, help="SUBMISSIONS: <student>/<NN_topic>.ipynb")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the teaching notebooks")
    parser.add_argument("--force", action="store_true", help="replace a different file already in --out")
    args = parser.parse_args(argv)
    try:
        placed, notes, unplaced = import_downloads(args.downloads, args.out, args.notebooks, args.force)
    except ValueError as err:
        parser.error(str(err))
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    print(f"{len(placed)} notebooks of {len({Path(t).parent.name for _, t in placed})} students in {args.out}")
    if unplaced:
        print(f"not placed ({len(unplaced)}):", file=sys.stderr)
        for origin, reason in unplaced:
            print(f"  {origin}: {reason}", file=sys.stderr)
    return 1 if unplaced else 0


if __name__ == "__main__":
    sys.exit(main())
