"""Grade a folder of submissions with nbgrader, each in a sandbox of its own: grades, totals, feedback.

    python -m course.grade SUBMISSIONS [--out grades] [--cell-timeout 60] [--notebook-timeout 600] [--jobs 2]
                           [--memory 8192] [--unsandboxed] [--same-user] [--hide DIR ...]
    make grade SUBMISSIONS=dir [GRADES=grades] [CELL_TIMEOUT=60] [NOTEBOOK_TIMEOUT=600] [JOBS=2]

SUBMISSIONS holds one folder per student with the student's notebooks under their hand-out names,
SUBMISSIONS/<student>/<NN_topic>.ipynb. Each notebook is graded against notebooks/<NN_topic>.ipynb as it
is at the time of grading (its test cells, hidden tests included). Writes, readable by their owner only
(folders 0700, files 0600, each file written under a temporary name, then renamed):

    <out>/grades.csv    student, notebook, grade_id, points, max_points: one row per test cell
    <out>/totals.csv    student, notebook, points, max_points: one row per graded notebook
    <out>/feedback/<student>/<NN_topic>/<NN_topic>.html   the feedback page (nbgrader's feedback layout):
                        the graded notebook with each test cell's points and the total, each failed check's
                        message, and no hidden test or solution (course.feedback); to hand back
    <out>/feedback/<student>/<NN_topic>/<NN_topic>.ipynb  the same graded notebook, to open in Jupyter
    <out>/logs/<student>/<NN_topic>.log   nbgrader's log of the grading, for the lecturer
    <out>/records/<student>/<NN_topic>.json   the grade of that submission and its key: a hash of the
                        submitted notebook, of the teaching notebook it was graded against and of the
                        grading options. A rerun grades only the submissions without a record of the same
                        key (new, changed, or graded against another notebook or other options), so a run
                        stopped by Ctrl-C, SIGTERM, SIGKILL or a crash loses nothing graded before it; the
                        CSVs are written once every submission has its record, and an old grades.csv is
                        removed as soon as anything is to be graded again.

Each submission is graded by nbgrader's Autograde in a process of its own, in a sandbox of its own
(course.sandbox: its own course folder and gradebook copy, its own user when run as root, bubblewrap with
no network, a read-only system, an empty folder over the teaching notebooks, the checkout, the
submissions, the grades folder and the other sandboxes; limits on processes, memory, file size, CPU time)
that is deleted afterwards. Where bubblewrap cannot run, grading stops with a message unless --unsandboxed
is given. Limits: a cell that runs longer than --cell-timeout seconds is interrupted and fails (the rest
of the notebook runs on); a cell that ends its kernel (os._exit, a signal, out of memory) or does not stop
when interrupted fails, and a new kernel runs the cells before it again and the notebook on from the next
cell (course.sandbox.RestartingExecute), so it costs the exercises that depend on it and no more; a
submission whose grading takes longer than --notebook-timeout seconds in all is stopped: that notebook gets
0 on every test cell, and the grader says so. A submission nbgrader cannot grade at all (not a notebook)
gets 0 on every test cell too, with a warning; the feedback page of either says why.

A usage error (an option out of range, a folder that is not there, nothing to grade, a student folder
named like an output, no sandbox) is one message naming every problem found, and exit status 2, before
anything is graded. SIGINT or SIGTERM stop the grading processes, their kernels and sandboxes, remove the
temporary folder, and exit with 128 + the signal's number.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import hashlib
import html
import json
import math
import io
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.converters import Autograde

from course.nbgrader_tools import autograde, generate, generate_feedback, load_config, make_course, scores
from course.sandbox import (KERNEL_NAME, Limits, Sandbox, SandboxUnavailable, as_root, check_bwrap, check_python,
                            executor_class, free_uids)

ROOT = Path(__file__).resolve().parents[1]
MEMORY_MB = 8192      # address space per kernel (importing torch takes about 3.7 GB of it)
STUDENT = "student"   # nbgrader's id for the one student of a sandbox
COLUMNS = ("student", "notebook", "grade_id", "points", "max_points")
TOTAL_COLUMNS = ("student", "notebook", "points", "max_points")
# What the grader writes under --out: a student folder of one of these names (any case) is refused.
OUTPUTS = ("grades.csv", "totals.csv", "feedback", "logs", "records")
# Bump when a change to the grader can change a grade: every record of an earlier version is then regraded.
GRADER_VERSION = 2
# Folders of a class on this machine (make hub's, and $MINICAM_CLASS) that a kernel must not see either.
CLASS_FOLDERS = ("/srv/minicam", "/srv/nbgrader")
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


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived while grading: what is graded is kept (records/), the rest is stopped."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@dataclass
class Submission:
    student: str
    stem: str
    path: Path
    key: str = ""
    status: str = "waiting"
    points: dict = field(default_factory=dict)
    feedback: bool = False


def find_submissions(folder: Path, stems: set[str]) -> list[Submission]:
    """SUBMISSIONS/<student>/<stem>.ipynb for every known stem, sorted; warns about anything else.
    Raises UsageError for a student folder named like an output of the grader."""
    found = []
    for entry in sorted(folder.iterdir()):
        if not entry.is_dir() or entry.is_symlink():
            _warn(f"{entry}: not a student's folder, skipped")
            continue
        if entry.name.lower() in OUTPUTS or entry.name.startswith("."):
            raise UsageError(f"{entry}: a student folder may not be named {entry.name!r} (the grader writes "
                             f"{', '.join(OUTPUTS)} and hidden files under --out): rename it, e.g. to the student's id")
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
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_key(submission: bytes, released: bytes, options: dict) -> str:
    """What a grade depends on: the submitted notebook, the assignment it is graded against (the teaching
    notebook's source, hidden tests and all) and the grading options."""
    return _sha256(json.dumps({"submission": _sha256(submission), "released": _sha256(released),
                               "options": options, "grader": GRADER_VERSION}, sort_keys=True).encode())


def _record_path(out: Path, sub: Submission) -> Path:
    return out / "records" / sub.student / f"{sub.stem}.json"


def _pages(out: Path, sub: Submission, feedback: bool) -> list[Path]:
    folder = out / "feedback" / sub.student / sub.stem
    return [folder / f"{sub.stem}.html", *([folder / f"{sub.stem}.ipynb"] if feedback else [])]


def load_record(out: Path, sub: Submission) -> bool:
    """True (and `sub` filled in) if `out` holds this submission's grade for the same key, its pages beside it."""
    try:
        record = json.loads(_record_path(out, sub).read_text())
        if record["key"] != sub.key or not all(page.is_file() for page in _pages(out, sub, record["feedback"])):
            return False
        sub.status, sub.feedback = record["status"], record["feedback"]
        sub.points = {grade_id: tuple(value) for grade_id, value in record["points"].items()}
        return True
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _save_record(out: Path, sub: Submission) -> None:
    private_folder(out, "records", sub.student)
    write_private(_record_path(out, sub), json.dumps(
        {"key": sub.key, "status": sub.status, "feedback": sub.feedback,
         "points": {grade_id: list(value) for grade_id, value in sub.points.items()}}, indent=1).encode())


def _prepare(sub: Submission, sandbox: Sandbox, template: Path) -> None:
    course = sandbox.course
    for part in ("source", "release"):
        shutil.copytree(template / part / sub.stem, course / part / sub.stem)
    shutil.copy(template / "gradebook.db", course / "gradebook.db")
    shutil.copy(template / "nbgrader_config.py", course / "nbgrader_config.py")
    (course / "submitted" / STUDENT / sub.stem).mkdir(parents=True)
    shutil.copyfile(sub.path, course / "submitted" / STUDENT / sub.stem / f"{sub.stem}.ipynb")


def _die_with_parent() -> None:
    """The grading process ends when the grader does (SIGKILL included): its kernel (bwrap
    --die-with-parent) with it."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child(sub: Submission, sandbox: Sandbox, config, log: Path) -> None:
    """The forked grading process: nbgrader's Autograde, then its GenerateFeedback, their output to the
    log; never returns. Exit status 0 once graded: feedback that fails is logged and costs no points."""
    code = 1
    try:
        _die_with_parent()
        os.setpgid(0, 0)                # Ctrl-C reaches the grader, which stops this process
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)   # a log left by an earlier run keeps its mode otherwise
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # sys.stderr may be a stand-in that is not file 2 (pytest's capture): write to the log itself
        sys.stdout = sys.stderr = open(2, "w", buffering=1, closefd=False)
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, force=True)
        warnings.simplefilter("ignore")
        os.environ.update(sandbox.environment())
        sandbox.kernel_config(config)
        if sandbox.uid is not None:
            config.RestartingExecute.sandbox_uid = sandbox.uid
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


def _finish(sub: Submission, sandbox: Sandbox, out: Path, cells: list[tuple[str, float]], limit: float) -> None:
    """After the grading process: stop what is left, keep the scores and the feedback (never the
    autograded notebook itself: it holds the hidden tests), then the record that says it is done."""
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
    if not sub.feedback:
        own = [sub.points.get(grade_id, (0.0, points))[0] for grade_id, points in cells]
        _plain_page(out, sub, sum(own), sum(points for _, points in cells), limit)
    _save_record(out, sub)


def _run(work: list, config, out: Path, jobs: int, limit: float, cells: dict) -> None:
    """Grade every (submission, sandbox) of `work`, `jobs` at a time, each stopped after `limit` seconds."""
    pending, running = list(work), {}
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
                _finish(sub, sandbox, out, cells[sub.stem], limit)
            time.sleep(0.05)
    finally:   # interrupted (Ctrl-C, SIGTERM): stop what still runs, its kernel and sandbox with it
        for pid, (_, sandbox, _) in running.items():
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            sandbox.remove()


def _rows(sub: Submission, cells: list[tuple[str, float]], limit: float, fresh: bool) -> list[tuple]:
    if not fresh:
        pass
    elif sub.status == "stopped":
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


def check_options(cell_timeout, notebook_timeout, jobs, uid_base=62000, memory_mb=MEMORY_MB) -> list[str]:
    """Every problem with the numeric options, each a sentence (empty if none)."""
    problems = []

    def number(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not number(cell_timeout) or cell_timeout < 1 or cell_timeout != int(cell_timeout):
        problems.append(f"--cell-timeout must be a whole number of seconds, at least 1, not {cell_timeout}")
    if not number(notebook_timeout) or not notebook_timeout > 0:
        problems.append(f"--notebook-timeout must be a number of seconds above 0, not {notebook_timeout}")
    elif number(cell_timeout) and notebook_timeout < cell_timeout:
        problems.append(f"--notebook-timeout ({notebook_timeout:g} s) must be at least --cell-timeout "
                        f"({cell_timeout:g} s)")
    if not isinstance(jobs, int) or isinstance(jobs, bool) or not 1 <= jobs <= 256:
        problems.append(f"--jobs must be 1 or more (at most 256), not {jobs}")
    if not isinstance(uid_base, int) or not 1000 <= uid_base <= 2 ** 31 - 100000:
        problems.append(f"--uid-base must be a user id from 1000 to {2 ** 31 - 100000}, not {uid_base}")
    if not number(memory_mb) or memory_mb < 256:
        problems.append(f"--memory must be at least 256 (MiB), not {memory_mb}")
    return problems


def _check_arguments(submissions: Path, out: Path, notebooks: Path, cell_timeout: float, notebook_timeout: float,
                     jobs: int, uid_base: int = 62000, memory_mb: float = None) -> dict[str, Path]:
    """Raises UsageError (every problem, one message) for arguments grading cannot work with; returns the
    hand-outs {stem: path}."""
    problems = check_options(cell_timeout, notebook_timeout, jobs, uid_base,
                             MEMORY_MB if memory_mb is None else memory_mb)
    if not submissions.is_dir():
        problems.append(f"SUBMISSIONS must be a folder of student folders; {submissions} is not a folder")
    if out.exists() and not out.is_dir():
        problems.append(f"--out {out} is a file; it must be a folder (made if missing)")
    elif out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        problems.append(f"--out {out}: this user cannot write there; choose a folder of your own")
    inside = submissions.resolve()
    if out.resolve() == inside or inside in out.resolve().parents:
        problems.append(f"--out {out} is inside SUBMISSIONS {submissions}; grading writes there, so choose a "
                        "folder outside it (default: grades/)")
    elif submissions.is_dir() and out.resolve() in inside.parents:
        pass   # SUBMISSIONS inside --out: allowed, its name is checked against the outputs below
    hand_outs = {}
    if not notebooks.is_dir():
        problems.append(f"--notebooks {notebooks} is not a folder; it must hold the teaching notebooks")
    else:
        for path in sorted(notebooks.glob("*.ipynb")):
            try:
                if points_of(path):
                    hand_outs[path.stem] = path
            except Exception as err:   # nbformat's errors have no common base
                problems.append(f"{path}: not a notebook nbgrader can grade against ({type(err).__name__}: {err})")
        if not hand_outs and not problems:
            problems.append(f"--notebooks {notebooks} holds no notebook with exercises (nbgrader test cells)")
    if submissions.is_dir() and out.resolve() == inside.parent and inside.name.lower() in OUTPUTS:
        problems.append(f"SUBMISSIONS {submissions} is named like an output in --out {out}: rename it")
    if problems:
        raise UsageError("; ".join(problems))
    return hand_outs


def _stale_runs() -> None:
    """Remove what a grader killed by SIGKILL left: its temporary folder (its processes ended with it)."""
    for run in Path(tempfile.gettempdir()).glob("minicam-grade-*"):
        try:
            pid = int((run / "grader.pid").read_text())
            os.kill(pid, 0)
            continue                 # still grading
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            if time.time() - run.stat().st_mtime < 60:
                continue             # being made just now
        shutil.rmtree(run, ignore_errors=True)


def _on_signal(signum, frame):
    raise Interrupted(signum)


def grade(submissions: Path, out: Path, notebooks: Path = ROOT / "notebooks", cell_timeout: float = 60,
          notebook_timeout: float = 600, jobs: int = 2, uid_base: int = 62000, same_user: bool = False,
          unsandboxed: bool = False, memory_mb: float = None, hide: list = ()) -> list[tuple]:
    """Grade every submission in `submissions` (see the module docstring); returns the CSV's rows.
    same_user: as root, run the kernels as root too instead of a user of their own (only inside a
    container or VM made for grading). unsandboxed: grade without bubblewrap (where it cannot run; only
    in a container or VM made for grading). A submission graded before with the same key (records/) is
    not graded again. Raises UsageError (or SandboxUnavailable) before grading anything if it cannot grade
    as asked, Interrupted on SIGINT/SIGTERM (what was graded is kept)."""
    memory_mb = MEMORY_MB if memory_mb is None else memory_mb
    hand_outs = _check_arguments(submissions, out, notebooks, cell_timeout, notebook_timeout, jobs, uid_base,
                                 memory_mb)
    subs = find_submissions(submissions, set(hand_outs))
    if not subs:
        raise UsageError(f"{submissions} holds no notebook to grade: it must hold "
                         f"{submissions}/<student>/<NN_topic>.ipynb with NN_topic one of {', '.join(hand_outs)}")
    sandboxed = not unsandboxed
    uids = free_uids(uid_base, len(subs)) if as_root() and not same_user else [None] * len(subs)
    if sandboxed:
        check_bwrap(uids[0])
    check_python(uids[0], sandboxed)
    try:
        if not out.exists():
            out.mkdir(mode=0o700, parents=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot make that folder ({err.strerror})") from None
    limits = Limits(memory_bytes=int(memory_mb) << 20, cpu_seconds=int(math.ceil(notebook_timeout)) + 5)
    options = {"cell_timeout": int(cell_timeout), "notebook_timeout": float(notebook_timeout),
               "memory_mb": float(memory_mb), "sandboxed": sandboxed, "own_user": uids[0] is not None}
    released = {stem: path.read_bytes() for stem, path in hand_outs.items()}
    for sub in subs:
        sub.key = record_key(sub.path.read_bytes(), released[sub.stem], options)
    fresh = [sub for sub in subs if not load_record(out, sub)]
    cells = {stem: points_of(path) for stem, path in hand_outs.items()}
    if fresh:
        for name in ("grades.csv", "totals.csv"):   # never an old table beside new feedback
            (out / name).unlink(missing_ok=True)
        if len(fresh) < len(subs):
            print(f"{len(subs) - len(fresh)} of {len(subs)} submissions graded before with the same notebook, "
                  f"assignment and options (records/): grading the other {len(fresh)}", file=sys.stderr)
        _grade_fresh(fresh, uids, hand_outs, out, cells, submissions, notebooks, cell_timeout, notebook_timeout,
                     jobs, sandboxed, limits, hide)
    rows = []
    for sub in subs:
        rows += _rows(sub, cells[sub.stem], notebook_timeout, sub in fresh)
    write_csv(out / "grades.csv", rows)
    write_totals(out / "totals.csv", rows)
    for left in (out / sub.student / f"{sub.stem}.ipynb" for sub in subs):   # where earlier versions put it
        if left.is_file():
            _warn(f"{left}: an autograded notebook an earlier version of the grader left; it holds the hidden "
                  "tests, so do not hand it back (the feedback is in feedback/)")
    return rows


def _grade_fresh(fresh, uids, hand_outs, out, cells, submissions, notebooks, cell_timeout, notebook_timeout, jobs,
                 sandboxed, limits, hide) -> None:
    _stale_runs()
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {signum: signal.signal(signum, _on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    run = Path(tempfile.mkdtemp(prefix="minicam-grade-"))
    try:
        run.chmod(0o711)   # the sandboxes' users pass through to their own folders, and see nothing else
        (run / "grader.pid").write_text(str(os.getpid()))
        stems = sorted({sub.stem for sub in fresh})
        template = make_course(run / "template", [hand_outs[stem] for stem in stems])
        config = load_config(**{"Execute.timeout": int(cell_timeout), "Execute.kernel_name": KERNEL_NAME})
        config.Autograde.autograde_preprocessors = [executor_class() if p.__name__ == "Execute" else p
                                                    for p in Autograde.class_traits()["autograde_preprocessors"].default()]
        for stem in stems:
            generate(template, stem, config)
        hidden = [ROOT, notebooks.resolve(), submissions.resolve(), out.resolve(), run,
                  *(Path(p) for p in CLASS_FOLDERS), *(Path(p).resolve() for p in hide),
                  *([Path(os.environ["MINICAM_CLASS"]).resolve()] if os.environ.get("MINICAM_CLASS") else [])]
        work = []
        for i, (sub, uid) in enumerate(zip(fresh, uids)):
            sandbox = Sandbox(run / f"s{i}", uid, bwrap=sandboxed, hide=hidden, limits=limits).create()
            _prepare(sub, sandbox, template)
            work.append((sub, sandbox))
        _run(work, config, out, jobs, notebook_timeout, cells)
    finally:
        shutil.rmtree(run, ignore_errors=True)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m course.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="SUBMISSIONS/<student>/<NN_topic>.ipynb")
    parser.add_argument("--out", type=Path, default=Path("grades"),
                        help="where grades.csv, totals.csv, feedback/, logs/ and records/ go (default grades/)")
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the teaching notebooks")
    parser.add_argument("--cell-timeout", type=float, default=60, help="seconds per cell (default 60)")
    parser.add_argument("--notebook-timeout", type=float, default=600, help="seconds per submission (default 600)")
    parser.add_argument("--jobs", type=int, default=2, help="submissions graded at a time (default 2)")
    parser.add_argument("--memory", type=float, default=MEMORY_MB,
                        help=f"address space per kernel in MiB (default {MEMORY_MB})")
    parser.add_argument("--uid-base", type=int, default=62000, help="first user id tried for the sandboxes (as root)")
    parser.add_argument("--same-user", action="store_true",
                        help="as root, run the kernels as root too (only in a container or VM made for grading)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="grade without bubblewrap where it cannot run (only in a container or VM made for "
                             "grading: the kernels then see the machine's files and network)")
    parser.add_argument("--hide", type=Path, action="append", default=[],
                        help="a further folder the kernels must not see (repeatable)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        rows = grade(args.submissions, args.out, args.notebooks, args.cell_timeout, args.notebook_timeout,
                     args.jobs, args.uid_base, args.same_user, args.unsandboxed, args.memory, args.hide)
    except (UsageError, SandboxUnavailable) as err:
        parser.error(str(err))
    except Interrupted as stop:
        name = signal.Signals(stop.signum).name
        print(f"{name}: grading stopped; every submission graded so far is kept in {args.out / 'records'}/ "
              f"with its feedback, and no grades.csv is written: run the same command again to grade the rest",
              file=sys.stderr)
        sys.exit(128 + stop.signum)
    print(f"{args.out / 'grades.csv'}: {len(rows)} rows, {len({r[0] for r in rows})} students; "
          f"{args.out / 'totals.csv'}; feedback to hand back in {args.out / 'feedback'}/")


if __name__ == "__main__":
    main()
