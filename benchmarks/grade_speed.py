"""Time per graded notebook: course.grade (each submission in its own sandbox: its own user, bubblewrap, limits)
against nbgrader's own `nbgrader autograde` of the same submissions without any isolation, both on both cores.

    .venv/bin/python benchmarks/grade_speed.py [--notebook 00_introduction] [--students 4]

Each side grades the same N copies of the teaching notebook (solutions in place, so every cell runs as a
right answer would) and is timed as a whole command, start-up included:
- ours: `python -m course.grade SUBMISSIONS --jobs 2` (as root, each kernel a user of its own in bwrap);
- nbgrader's: two `nbgrader autograde NN_topic --create --force` processes at once, each in a course folder
  of its own holding half of the submissions (one gradebook per process: sqlite takes one writer), after
  `generate_assignment` there (not timed: course.grade's own generate step is timed on our side).
Prints the seconds per graded notebook of each and their ratio (the goal: at most 1.3). On a machine that
is busy with other work, the ratio is what to read, not the seconds.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.nbgrader_tools import generate, load_config, make_course  # noqa: E402


def ours(notebook: Path, students: list[str], work: Path) -> float:
    notebooks, submissions = work / "ours-notebooks", work / "ours-submissions"
    notebooks.mkdir()
    shutil.copy(notebook, notebooks / notebook.name)
    for student in students:
        (submissions / student).mkdir(parents=True)
        shutil.copy(notebook, submissions / student / notebook.name)
    command = [sys.executable, "-m", "course.grade", str(submissions), "--notebooks", str(notebooks),
               "--out", str(work / "ours-grades"), "--jobs", "2"]
    start = time.monotonic()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    elapsed = time.monotonic() - start
    rows = (work / "ours-grades" / "totals.csv").read_text().splitlines()[1:]
    short = [row for row in rows if row.split(",")[2] != row.split(",")[3]]
    if short:   # the solutions must score in full, or the time is not that of a whole notebook
        raise SystemExit(f"course.grade did not give full points: {short}")
    return elapsed


def nbgraders(notebook: Path, students: list[str], work: Path) -> float:
    halves = [students[0::2], students[1::2]]
    courses = []
    for i, half in enumerate(halves):
        course = make_course(work / f"nbgrader-{i}", [notebook])
        generate(course, notebook.stem, load_config())
        for student in half:
            folder = course / "submitted" / student / notebook.stem
            folder.mkdir(parents=True)
            shutil.copy(notebook, folder / notebook.name)
        courses.append(course)
    nbgrader = Path(sys.executable).with_name("nbgrader")
    start = time.monotonic()
    runs = [subprocess.Popen([str(nbgrader), "autograde", notebook.stem, "--create", "--force"], cwd=course,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={**os.environ, "OMP_NUM_THREADS": "1"}) for course in courses]
    codes = [run.wait() for run in runs]
    elapsed = time.monotonic() - start
    if any(codes):
        raise SystemExit(f"nbgrader autograde failed: exit statuses {codes}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", default="00_introduction")
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="each side this many times, alternating")
    args = parser.parse_args()
    notebook = ROOT / "notebooks" / f"{args.notebook}.ipynb"
    students = [f"s{i}" for i in range(args.students)]
    bases, mines = [], []
    for _ in range(args.rounds):     # alternating, so that a change in the machine's load hits both sides
        work = Path(tempfile.mkdtemp(prefix="grade-speed-"))
        try:
            bases.append(nbgraders(notebook, students, work) / len(students))
            mines.append(ours(notebook, students, work) / len(students))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"{notebook.stem}, {len(students)} submissions, 2 at a time, {args.rounds} rounds (load average "
          f"{load:.1f} on {os.cpu_count()} cores at the end):")
    print(f"  nbgrader autograde, no isolation: {min(bases):.1f} s per notebook (rounds: "
          f"{', '.join(f'{b:.1f}' for b in bases)})")
    print(f"  course.grade, sandboxed:          {min(mines):.1f} s per notebook (rounds: "
          f"{', '.join(f'{m:.1f}' for m in mines)})")
    print(f"  ratio of the fastest rounds: {min(mines) / min(bases):.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()
