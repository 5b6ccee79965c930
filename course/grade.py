"""Grade a folder of submissions with nbgrader, each in a sandbox of its own, into one CSV.

    python -m course.grade SUBMISSIONS [--out grades] [--cell-timeout 60] [--notebook-timeout 600] [--jobs 2]
    make grade SUBMISSIONS=dir [GRADES=grades] [CELL_TIMEOUT=60] [NOTEBOOK_TIMEOUT=600] [JOBS=2]

SUBMISSIONS holds one folder per student with the student's notebooks under their hand-out names,
SUBMISSIONS/<student>/<NN_topic>.ipynb. Each notebook is graded against notebooks/<NN_topic>.ipynb as it
is now (its test cells, hidden tests included). Writes

    <out>/grades.csv                 student, notebook, grade_id, points, max_points: one row per test cell
    <out>/<student>/<NN_topic>.ipynb the graded notebook (nbgrader's autograded copy, with its outputs)
    <out>/<student>/<NN_topic>.log   nbgrader's log of it

Each submission is graded by nbgrader's Autograde in a process of its own, in a sandbox of its own
(course.sandbox: its own course folder and gradebook copy, its own user when run as root) that is
deleted afterwards. Limits: a cell that runs longer than --cell-timeout seconds is interrupted and
fails (the rest of the notebook runs on; nbgrader's Execute.timeout), and a submission whose grading
takes longer than --notebook-timeout seconds in all is stopped: that notebook gets 0 on every test
cell, and the grader says so (raise the limit if the notebook is legitimately slow). A submission
nbgrader cannot grade at all (not a notebook) gets 0 on every test cell too, with a warning.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course.nbgrader_tools import autograde, generate, load_config, make_course, scores
from course.sandbox import KERNEL_NAME, Sandbox, as_root, check_python, free_uids

ROOT = Path(__file__).resolve().parents[1]
STUDENT = "student"   # nbgrader's id for the one student of a sandbox
COLUMNS = ("student", "notebook", "grade_id", "points", "max_points")


@dataclass
class Submission:
    student: str
    stem: str
    path: Path
    status: str = "waiting"
    points: dict = field(default_factory=dict)


def find_submissions(folder: Path, stems: set[str]) -> list[Submission]:
    """SUBMISSIONS/<student>/<stem>.ipynb for every known stem, sorted; warns about anything else."""
    found = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            _warn(f"{entry}: not a student's folder, skipped")
            continue
        for path in sorted(entry.iterdir()):
            if path.suffix == ".ipynb" and path.stem in stems and path.is_file() and not path.is_symlink():
                found.append(Submission(entry.name, path.stem, path))
            else:
                _warn(f"{path}: not a hand-out notebook ({', '.join(sorted(stems))}), skipped")
    return found


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def points_of(notebook: Path) -> list[tuple[str, float]]:
    """(grade_id, points) of the notebook's test cells in order."""
    cells = nbformat.read(notebook, as_version=4).cells
    return [(c.metadata.nbgrader["grade_id"], float(c.metadata.nbgrader["points"]))
            for c in cells if c.metadata.get("nbgrader", {}).get("grade")]


def _prepare(sub: Submission, sandbox: Sandbox, template: Path) -> None:
    course = sandbox.course
    for part in ("source", "release"):
        shutil.copytree(template / part / sub.stem, course / part / sub.stem)
    shutil.copy(template / "gradebook.db", course / "gradebook.db")
    shutil.copy(template / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "submitted" / STUDENT / sub.stem).mkdir(parents=True)
    shutil.copyfile(sub.path, course / "submitted" / STUDENT / sub.stem / f"{sub.stem}.ipynb")


def _child(sub: Submission, sandbox: Sandbox, config, log: Path) -> None:
    """The forked grading process: nbgrader's Autograde, its output to the log; never returns."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
        warnings.simplefilter("ignore")
        os.environ.update(sandbox.environment())
        autograde(sandbox.course, sub.stem, STUDENT, config)
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _start(sub: Submission, sandbox: Sandbox, config, log: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(sub, sandbox, config, log)
    return pid


def _finish(sub: Submission, sandbox: Sandbox, out: Path) -> None:
    """After the grading process: stop what is left, keep the graded notebook and the scores."""
    sandbox.stop()
    if sub.status == "graded":
        try:
            sub.points = scores(sandbox.course, sub.stem, STUDENT)
            shutil.copyfile(sandbox.course / "autograded" / STUDENT / sub.stem / f"{sub.stem}.ipynb",
                            out / sub.student / f"{sub.stem}.ipynb")
        except Exception as err:   # nbgrader said it graded, but left no usable gradebook or notebook
            with (out / sub.student / f"{sub.stem}.log").open("a") as log:
                print(f"{type(err).__name__}: {err}", file=log)
            sub.status, sub.points = "failed", {}
    sandbox.remove()


def _run(subs: list[Submission], sandboxes: list[Sandbox], config, out: Path, jobs: int, limit: float) -> None:
    """Grade every submission, `jobs` at a time, each stopped after `limit` seconds."""
    pending, running = list(zip(subs, sandboxes)), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                sub, sandbox = pending.pop(0)
                (out / sub.student).mkdir(parents=True, exist_ok=True)
                pid = _start(sub, sandbox, config, out / sub.student / f"{sub.stem}.log")
                running[pid] = (sub, sandbox, time.monotonic() + limit)
            for pid, (sub, sandbox, deadline) in list(running.items()):
                done, status = os.waitpid(pid, os.WNOHANG)
                if not done and time.monotonic() < deadline:
                    continue
                if not done:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                exit_code = os.waitstatus_to_exitcode(status) if done else None
                sub.status = "stopped" if not done else ("graded" if exit_code == 0 else "failed")
                del running[pid]
                _finish(sub, sandbox, out)
            time.sleep(0.05)
    finally:   # interrupted (Ctrl-C): stop what still runs
        for pid, (_, sandbox, _) in running.items():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            sandbox.remove()


def _rows(sub: Submission, cells: list[tuple[str, float]], limit: float) -> list[tuple]:
    if sub.status == "stopped":
        _warn(f"{sub.student}/{sub.stem}: stopped at the notebook limit of {limit:g} s: 0 points")
    elif sub.status != "graded":
        _warn(f"{sub.student}/{sub.stem}: nbgrader could not grade it (see its .log): 0 points")
    return [(sub.student, sub.stem, grade_id, sub.points.get(grade_id, (0.0, points))[0], points)
            for grade_id, points in cells]


def write_csv(path: Path, rows: list[tuple]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows((*row[:3], f"{row[3]:g}", f"{row[4]:g}") for row in rows)


def grade(submissions: Path, out: Path, notebooks: Path = ROOT / "notebooks", cell_timeout: float = 60,
          notebook_timeout: float = 600, jobs: int = 2, uid_base: int = 62000, same_user: bool = False) -> list[tuple]:
    """Grade every submission in `submissions` (see the module docstring); returns the CSV's rows.
    same_user: as root, run the kernels as root too instead of a user of their own (only inside a
    container or VM made for grading: nothing then keeps a submission from the grader's files)."""
    hand_outs = {p.stem: p for p in sorted(notebooks.glob("*.ipynb")) if points_of(p)}
    subs = find_submissions(submissions, set(hand_outs))
    out.mkdir(parents=True, exist_ok=True)
    run = Path(tempfile.mkdtemp(prefix="minicam-grade-"))
    try:
        run.chmod(0o711)   # the sandboxes' users pass through to their own folders, and see nothing else
        stems = sorted({sub.stem for sub in subs})
        template = make_course(run / "template", [hand_outs[stem] for stem in stems])
        config = load_config(**{"Execute.timeout": int(cell_timeout), "Execute.kernel_name": KERNEL_NAME})
        for stem in stems:
            generate(template, stem, config)
        uids = free_uids(uid_base, len(subs)) if as_root() and not same_user else [None] * len(subs)
        if subs:
            check_python(uids[0])
        sandboxes = [Sandbox(run / f"s{i}", uid).create() for i, uid in enumerate(uids)]
        for sub, sandbox in zip(subs, sandboxes):
            _prepare(sub, sandbox, template)
        _run(subs, sandboxes, config, out, jobs, notebook_timeout)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    rows = [row for sub in subs for row in _rows(sub, points_of(hand_outs[sub.stem]), notebook_timeout)]
    write_csv(out / "grades.csv", rows)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<NN_topic>.ipynb")
    parser.add_argument("--out", type=Path, default=Path("grades"), help="where grades.csv goes (default grades/)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the teaching notebooks")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--notebook-timeout", type=float, default=600, help="seconds per submission (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at a time (default 2)")
    parser.add_argument("--uid-base", type=int, default=62000, help="first user id tried for the sandboxes (as root)")
    parser.add_argument("--same-user", action="store_true",
                        help="as root, run the kernels as root too (only in a container or VM made for grading)")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        parser.error(f"SUBMISSIONS must be a folder of student folders; {args.submissions} is not a folder")
    logging.basicConfig(level=logging.WARNING)
    rows = grade(args.submissions, args.out, args.notebooks, args.cell_timeout, args.notebook_timeout,
                 args.jobs, args.uid_base, args.same_user)
    print(f"{args.out / 'grades.csv'}: {len(rows)} rows, {len({r[0] for r in rows})} students")


if __name__ == "__main__":
    main()
