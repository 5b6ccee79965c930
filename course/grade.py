"""Grade a folder of submissions with nbgrader, each in a sandbox of its own: grades, totals, feedback.

    python -m course.grade SUBMISSIONS [--out grades] [--cell-timeout 60] [--notebook-timeout 600] [--jobs 2]
    make grade SUBMISSIONS=dir [GRADES=grades] [CELL_TIMEOUT=60] [NOTEBOOK_TIMEOUT=600] [JOBS=2]

SUBMISSIONS holds one folder per student with the student's notebooks under their hand-out names,
SUBMISSIONS/<student>/<NN_topic>.ipynb. Each notebook is graded against notebooks/<NN_topic>.ipynb as it
is now (its test cells, hidden tests included). Writes, readable by their owner only (folders 0700,
files 0600, each file written under a temporary name, then renamed):

    <out>/grades.csv    student, notebook, grade_id, points, max_points: one row per test cell
    <out>/totals.csv    student, notebook, points, max_points: one row per graded notebook
    <out>/feedback/<student>/<NN_topic>/<NN_topic>.html   the feedback page (nbgrader's feedback layout):
                        the graded notebook with each test cell's points and the total, each failed check's
                        message, and no hidden test or solution (course.feedback); to hand back
    <out>/feedback/<student>/<NN_topic>/<NN_topic>.ipynb  the same graded notebook, to open in Jupyter
    <out>/logs/<student>/<NN_topic>.log   nbgrader's log of the grading, for the lecturer

Each submission is graded by nbgrader's Autograde in a process of its own, in a sandbox of its own
(course.sandbox: its own course folder and gradebook copy, its own user when run as root) that is
deleted afterwards. Limits: a cell that runs longer than --cell-timeout seconds is interrupted and
fails (the rest of the notebook runs on; nbgrader's Execute.timeout), and a submission whose grading
takes longer than --notebook-timeout seconds in all is stopped: that notebook gets 0 on every test
cell, and the grader says so (raise the limit if the notebook is legitimately slow). A submission
nbgrader cannot grade at all (not a notebook) gets 0 on every test cell too, with a warning; the feedback
page of either says why.

A usage error (a folder that is not there, nothing to grade, a checkout the sandboxes' users cannot read)
is one message and exit status 2.
"""
from __future__ import annotations

import argparse
import csv
import html
import io
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

from course.nbgrader_tools import autograde, generate, generate_feedback, load_config, make_course, scores
from course.sandbox import KERNEL_NAME, Sandbox, SandboxUnavailable, as_root, check_python, free_uids

ROOT = Path(__file__).resolve().parents[1]
STUDENT = "student"   # nbgrader's id for the one student of a sandbox
COLUMNS = ("student", "notebook", "grade_id", "points", "max_points")
TOTAL_COLUMNS = ("student", "notebook", "points", "max_points")
# The feedback page of a notebook without nbgrader's page (not graded, or its page failed).
PLAIN_PAGE = """<!DOCTYPE html>
<html>
<head><meta charset="utf-8" /><title>{stem}</title></head>
<body>
<h4>{stem} (Score: {points:g} / {max_points:g})</h4>
<p>{reason} Ask your lecturer.</p>
</body>
</html>
"""


class UsageError(ValueError):
    """What course.grade was asked to do cannot be done as asked; the message says what would work."""


@dataclass
class Submission:
    student: str
    stem: str
    path: Path
    status: str = "waiting"
    points: dict = field(default_factory=dict)
    feedback: bool = False


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


def private_folder(top: Path, *parts: str) -> Path:
    """top/parts..., each folder below `top` made (or kept) with mode 0700."""
    folder = top
    for part in parts:
        folder = folder / part
        folder.mkdir(mode=0o700, exist_ok=True)
        folder.chmod(0o700)
    return folder


def write_private(path: Path, data: bytes) -> None:
    """`data` to `path`, mode 0600, under a temporary name in the same folder first, then renamed."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _prepare(sub: Submission, sandbox: Sandbox, template: Path) -> None:
    course = sandbox.course
    for part in ("source", "release"):
        shutil.copytree(template / part / sub.stem, course / part / sub.stem)
    shutil.copy(template / "gradebook.db", course / "gradebook.db")
    shutil.copy(template / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "submitted" / STUDENT / sub.stem).mkdir(parents=True)
    shutil.copyfile(sub.path, course / "submitted" / STUDENT / sub.stem / f"{sub.stem}.ipynb")


def _child(sub: Submission, sandbox: Sandbox, config, log: Path) -> None:
    """The forked grading process: nbgrader's Autograde, then its GenerateFeedback, their output to the
    log; never returns. Exit status 0 once graded: feedback that fails is logged and costs no points."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)   # a log left by an earlier run keeps its mode otherwise
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # sys.stderr may be a stand-in that is not file 2 (pytest's capture): write to the log itself
        sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
        warnings.simplefilter("ignore")
        os.environ.update(sandbox.environment())
        autograde(sandbox.course, sub.stem, STUDENT, config)
        code = 0
        generate_feedback(sandbox.course, sub.stem, STUDENT, config)
    except BaseException:
        traceback.print_exc()
        if code == 0:
            print("the feedback could not be made (the traceback above); the grades stand", file=sys.stderr)
    finally:
        sys.stderr.flush()
        os._exit(code)


def _start(sub: Submission, sandbox: Sandbox, config, log: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        _child(sub, sandbox, config, log)
    return pid


def _log(out: Path, sub: Submission) -> Path:
    return private_folder(out, "logs", sub.student) / f"{sub.stem}.log"


def _finish(sub: Submission, sandbox: Sandbox, out: Path) -> None:
    """After the grading process: stop what is left, keep the scores and the feedback (never the
    autograded notebook itself: it holds the hidden tests)."""
    sandbox.stop()
    if sub.status == "graded":
        try:
            sub.points = scores(sandbox.course, sub.stem, STUDENT)
        except Exception as err:   # nbgrader said it graded, but left no usable gradebook
            with _log(out, sub).open("a") as log:
                print(f"{type(err).__name__}: {err}", file=log)
            sub.status, sub.points = "failed", {}
        made = sandbox.course / "feedback" / STUDENT / sub.stem
        pages = [made / f"{sub.stem}{suffix}" for suffix in (".html", ".ipynb")]
        if sub.status == "graded" and all(page.is_file() for page in pages):
            folder = private_folder(out, "feedback", sub.student, sub.stem)
            for page in pages:
                write_private(folder / page.name, page.read_bytes())
            sub.feedback = True
    sandbox.remove()


def _run(subs: list[Submission], sandboxes: list[Sandbox], config, out: Path, jobs: int, limit: float) -> None:
    """Grade every submission, `jobs` at a time, each stopped after `limit` seconds."""
    pending, running = list(zip(subs, sandboxes)), {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                sub, sandbox = pending.pop(0)
                pid = _start(sub, sandbox, config, _log(out, sub))
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
    elif not sub.feedback:
        _warn(f"{sub.student}/{sub.stem}: graded, but its feedback could not be made (see its .log)")
    return [(sub.student, sub.stem, grade_id, sub.points.get(grade_id, (0.0, points))[0], points)
            for grade_id, points in cells]


def _plain_page(out: Path, sub: Submission, points: float, max_points: float, limit: float) -> None:
    """The feedback page of a notebook without nbgrader's: its score and why there is no more."""
    if sub.status == "stopped":
        reason = (f"Not graded: running this notebook took longer than the limit of {limit:g} s, so it was "
                  "stopped, and every exercise scores 0.")
    elif sub.status == "graded":
        reason = "Graded, but the page that shows each exercise could not be made."
    else:
        reason = ("Not graded: nbgrader could not run this notebook (is it the notebook handed out, saved by "
                  "Jupyter?), so every exercise scores 0.")
    folder = private_folder(out, "feedback", sub.student, sub.stem)
    (folder / f"{sub.stem}.ipynb").unlink(missing_ok=True)   # an earlier run's, of another submission
    page = PLAIN_PAGE.format(stem=html.escape(sub.stem), points=points, max_points=max_points, reason=reason)
    write_private(folder / f"{sub.stem}.html", page.encode())


def _csv(header: tuple, rows) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode()


def totals(rows: list[tuple]) -> list[tuple]:
    """(student, notebook, points, max_points) per student and notebook, in the order of `rows`."""
    summed: dict[tuple[str, str], list[float]] = {}
    for student, notebook, _, points, max_points in rows:
        total = summed.setdefault((student, notebook), [0.0, 0.0])
        total[0] += points
        total[1] += max_points
    return [(*key, points, max_points) for key, (points, max_points) in summed.items()]


def write_csv(path: Path, rows: list[tuple]) -> None:
    """grades.csv: one row per test cell."""
    write_private(path, _csv(COLUMNS, ((*row[:3], f"{row[3]:g}", f"{row[4]:g}") for row in rows)))


def write_totals(path: Path, rows: list[tuple]) -> None:
    """totals.csv: one row per student and notebook, from the rows of grades.csv."""
    write_private(path, _csv(TOTAL_COLUMNS, ((*row[:2], f"{row[2]:g}", f"{row[3]:g}") for row in totals(rows))))


def _check_arguments(submissions: Path, out: Path, notebooks: Path, cell_timeout: float, notebook_timeout: float,
                     jobs: int) -> dict[str, Path]:
    """Raises UsageError for arguments grading cannot work with; returns the hand-outs {stem: path}."""
    if not submissions.is_dir():
        raise UsageError(f"SUBMISSIONS must be a folder of student folders; {submissions} is not a folder")
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; it must be a folder (made if missing)")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"--out {out}: this user cannot write there; choose a folder of your own")
    inside = submissions.resolve()
    if out.resolve() == inside or inside in out.resolve().parents:
        raise UsageError(f"--out {out} is inside SUBMISSIONS {submissions}; grading writes there, so choose a "
                         "folder outside it (default: grades/)")
    if cell_timeout < 1 or cell_timeout != int(cell_timeout):
        raise UsageError(f"--cell-timeout must be a whole number of seconds, at least 1, not {cell_timeout:g}")
    if not notebook_timeout > 0:
        raise UsageError(f"--notebook-timeout must be a number of seconds above 0, not {notebook_timeout:g}")
    if jobs < 1:
        raise UsageError(f"--jobs must be 1 or more, not {jobs}")
    if not notebooks.is_dir():
        raise UsageError(f"--notebooks {notebooks} is not a folder; it must hold the teaching notebooks")
    hand_outs = {}
    for path in sorted(notebooks.glob("*.ipynb")):
        try:
            if points_of(path):
                hand_outs[path.stem] = path
        except Exception as err:   # nbformat's errors have no common base
            raise UsageError(f"{path}: not a notebook nbgrader can grade against ({type(err).__name__}: {err})")
    if not hand_outs:
        raise UsageError(f"--notebooks {notebooks} holds no notebook with exercises (nbgrader test cells)")
    return hand_outs


def grade(submissions: Path, out: Path, notebooks: Path = ROOT / "notebooks", cell_timeout: float = 60,
          notebook_timeout: float = 600, jobs: int = 2, uid_base: int = 62000, same_user: bool = False) -> list[tuple]:
    """Grade every submission in `submissions` (see the module docstring); returns the CSV's rows.
    same_user: as root, run the kernels as root too instead of a user of their own (only inside a
    container or VM made for grading: nothing then keeps a submission from the grader's files).
    Raises UsageError (or SandboxUnavailable) before grading anything if it cannot grade as asked."""
    hand_outs = _check_arguments(submissions, out, notebooks, cell_timeout, notebook_timeout, jobs)
    subs = find_submissions(submissions, set(hand_outs))
    if not subs:
        raise UsageError(f"{submissions} holds no notebook to grade: it must hold "
                         f"{submissions}/<student>/<NN_topic>.ipynb with NN_topic one of {', '.join(hand_outs)}")
    uids = free_uids(uid_base, len(subs)) if as_root() and not same_user else [None] * len(subs)
    check_python(uids[0])
    try:
        if not out.exists():
            out.mkdir(mode=0o700, parents=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot make that folder ({err.strerror})") from None
    run = Path(tempfile.mkdtemp(prefix="minicam-grade-"))
    try:
        run.chmod(0o711)   # the sandboxes' users pass through to their own folders, and see nothing else
        stems = sorted({sub.stem for sub in subs})
        template = make_course(run / "template", [hand_outs[stem] for stem in stems])
        config = load_config(**{"Execute.timeout": int(cell_timeout), "Execute.kernel_name": KERNEL_NAME})
        for stem in stems:
            generate(template, stem, config)
        sandboxes = [Sandbox(run / f"s{i}", uid).create() for i, uid in enumerate(uids)]
        for sub, sandbox in zip(subs, sandboxes):
            _prepare(sub, sandbox, template)
        _run(subs, sandboxes, config, out, jobs, notebook_timeout)
    finally:
        shutil.rmtree(run, ignore_errors=True)
    rows = []
    for sub in subs:
        own = _rows(sub, points_of(hand_outs[sub.stem]), notebook_timeout)
        if not sub.feedback:
            _plain_page(out, sub, sum(r[3] for r in own), sum(r[4] for r in own), notebook_timeout)
        rows += own
    write_csv(out / "grades.csv", rows)
    write_totals(out / "totals.csv", rows)
    for left in (out / sub.student / f"{sub.stem}.ipynb" for sub in subs):   # where earlier versions put it
        if left.is_file():
            _warn(f"{left}: an autograded notebook an earlier version of the grader left; it holds the hidden "
                  "tests, so do not hand it back (the feedback is in feedback/)")
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<NN_topic>.ipynb")
    parser.add_argument("--out", type=Path, default=Path("grades"),
                        help="where grades.csv, totals.csv, feedback/ and logs/ go (default grades/)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the teaching notebooks")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--notebook-timeout", type=float, default=600, help="seconds per submission (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at a time (default 2)")
    parser.add_argument("--uid-base", type=int, default=62000, help="first user id tried for the sandboxes (as root)")
    parser.add_argument("--same-user", action="store_true",
                        help="as root, run the kernels as root too (only in a container or VM made for grading)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        rows = grade(args.submissions, args.out, args.notebooks, args.cell_timeout, args.notebook_timeout,
                     args.jobs, args.uid_base, args.same_user)
    except (UsageError, SandboxUnavailable) as err:
        parser.error(str(err))
    print(f"{args.out / 'grades.csv'}: {len(rows)} rows, {len({r[0] for r in rows})} students; "
          f"{args.out / 'totals.csv'}; feedback to hand back in {args.out / 'feedback'}/")


if __name__ == "__main__":
    main()
