"""The lecturer's round on the class hub, one command a step (run as root; README, "A class on JupyterHub").

    python -m hub.course release NOTEBOOK... --due "2027-01-15 23:59+09:00"   hand out (nbgrader's exchange)
    #   students fetch, work and submit in their JupyterLab (the Assignments tab)
    python -m hub.course collect NN_topic       the submissions, into the grader's layout, each marked late or not
    python -m hub.course grade NN_topic [--cell-timeout 60] [--notebook-timeout 600] [--jobs 2]
    python -m hub.course return NN_topic        the feedback pages, through the exchange
    #   students fetch their feedback in the Assignments tab

`release` snapshots each teaching notebook (with its solutions and hidden tests) into the course folder,
course/source/NN_topic/ (nbgrader's layout) and course/released/NN_topic.ipynb, readable by the lecturer
only; grading always uses that snapshot, never notebooks/ as it is later. It writes the student edition
(course.student: no solution, no hidden test, no teaching-only cell) to course/release/NN_topic/, records the
assignment, its graded cells and its due date in nbgrader's gradebook (course/gradebook.db) and in
course/assignments.json, and releases it to the exchange. An assignment is released once: students may have
fetched it, so a changed notebook is released under a new name. A due date without a UTC offset is UTC.

`collect` runs nbgrader's collect (the latest submission of each student) into course/submitted/, then copies
each notebook to course/grading/NN_topic/submissions/<student>/NN_topic.ipynb, the layout of course.grade,
and writes course/grading/NN_topic/late.csv: student, submitted (UTC), late by (seconds; 0 if on time). A
submission from someone not in class.json is not graded, and the command says so.

`grade` runs the project's sandboxed grader (python -m course.grade) on those submissions against the
snapshot, into course/grading/NN_topic/grades/ (grades.csv, totals.csv, feedback/); an interrupted run is
resumed by running it again. Then it writes the points into the gradebook (each student's submission with its
submission time, each test cell's score as nbgrader's auto score) and each graded notebook (the feedback copy)
into course/autograded/, so formgrader shows them.

`return` puts each student's feedback page into nbgrader's feedback folder (course/feedback/<student>/NN_topic/)
after checking that no line of the hidden tests is in it (a page that has one is held back, by name), and
releases it through the exchange as `nbgrader release_feedback` does.

Every step leaves course/ owned by the lecturer (0700). A usage error is one message and exit status 2.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import html
import json
import logging
import os
import pwd
import re
import shutil
import subprocess
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning
from nbgrader.auth import Authenticator
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange import ExchangeError
from nbgrader.exchange.default import ExchangeCollect, ExchangeReleaseAssignment, ExchangeReleaseFeedback
from nbgrader.utils import parse_utc
from traitlets.config import Config

from course.nbgrader_tools import generate, load_config
from course.student import build
from hub.layout import ClassDir, ClassError, chown_tree, write_atomic

CHECKOUT = Path(__file__).resolve().parents[1]
STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
EXTRAS = ("*.md",)   # files beside a notebook that its hand-out needs (as course.student copies them)


class Course:
    """The course folder of a class (hub/layout.py) and nbgrader's view of it."""

    def __init__(self, class_dir: ClassDir):
        if os.geteuid() != 0:
            raise ClassError("the lecturer's round runs as root (it reads every student's submission and "
                             "grades in a sandbox): run it with sudo")
        self.class_dir, self.known = class_dir, class_dir.read()
        self.dir = class_dir.course
        self.assignments_file = self.dir / "assignments.json"
        self.config = Config()
        self.config.Exchange.root = str(class_dir.exchange)
        self.config.CourseDirectory.root = str(self.dir)
        self.config.CourseDirectory.course_id = self.known["course_id"]

    def coursedir(self, assignment: str, student: str = "*") -> CourseDirectory:
        return CourseDirectory(root=str(self.dir), course_id=self.known["course_id"], assignment_id=assignment,
                               student_id=student, config=self.config)

    def exchange(self, kind, assignment: str, **traits):
        return kind(coursedir=self.coursedir(assignment), authenticator=Authenticator(config=self.config),
                    config=self.config, **traits)

    def assignments(self) -> dict:
        return json.loads(self.assignments_file.read_text()) if self.assignments_file.exists() else {}

    def released(self, assignment: str) -> dict:
        known = self.assignments()
        if assignment not in known:
            raise ClassError(f"{assignment!r} has not been released (released: {', '.join(known) or 'none'}); "
                             "`python -m hub.course release notebooks/NN_topic.ipynb --due ...` first")
        return known[assignment]

    def grading(self, assignment: str) -> Path:
        return self.dir / "grading" / assignment

    def hand_to_lecturer(self) -> None:
        account = pwd.getpwnam(self.known["lecturer"])
        chown_tree(self.dir, account.pw_uid, account.pw_gid)
        os.chmod(self.dir, 0o700)


def parse_due(text: str) -> datetime:
    """A due date as ISO 8601 ("2027-01-15 23:59", "2027-01-15T23:59+09:00"), UTC unless it says otherwise."""
    try:
        due = datetime.fromisoformat(text)
    except ValueError:
        raise ClassError(f"--due {text!r} is not a date and time: write it as ISO 8601, e.g. "
                         "'2027-01-15 23:59' (UTC) or '2027-01-15 23:59+09:00'") from None
    return (due if due.tzinfo else due.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def release(course: Course, notebooks: list[Path], due: datetime) -> list[str]:
    problems, stems = [], []
    for path in notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            problems.append(f"{path}: not a notebook file (NN_topic.ipynb)")
        elif not STEM.fullmatch(path.stem) or "+" in path.stem:
            problems.append(f"{path}: an assignment's name has letters, digits, '_', '-' and '.' only")
        elif path.stem in course.assignments() or (course.dir / "source" / path.stem).exists():
            problems.append(f"{path.stem} was released already (students may have fetched it): release a changed "
                            "notebook under a new name")
        else:
            stems.append(path.stem)
    if len(set(stems)) != len(stems):
        problems.append("two notebooks of the same name")
    if problems:
        raise ClassError("; ".join(problems))
    config = load_config()
    for path in notebooks:
        stem = path.stem
        source, hand_out = course.dir / "source" / stem, course.dir / "release" / stem
        snapshot = course.dir / "released" / f"{stem}.ipynb"
        try:
            source.mkdir(parents=True)
            shutil.copyfile(path, source / path.name)
            for pattern in EXTRAS:
                for extra in path.parent.glob(pattern):
                    shutil.copyfile(extra, source / extra.name)
            snapshot.parent.mkdir(exist_ok=True)
            shutil.copyfile(path, snapshot.with_name(f".{snapshot.name}.part"))
            os.replace(snapshot.with_name(f".{snapshot.name}.part"), snapshot)
            generate(course.dir, stem, config)   # the assignment and its graded cells, into the course's gradebook
            build([source / path.name], hand_out)   # the student edition over nbgrader's plain one
            with Gradebook(f"sqlite:///{course.dir / 'gradebook.db'}", course.known["course_id"]) as gb:
                gb.update_or_create_assignment(stem, duedate=due.replace(tzinfo=None))
            course.exchange(ExchangeReleaseAssignment, stem).start()
        except BaseException:
            shutil.rmtree(source, ignore_errors=True)
            shutil.rmtree(hand_out, ignore_errors=True)
            snapshot.unlink(missing_ok=True)
            with Gradebook(f"sqlite:///{course.dir / 'gradebook.db'}", course.known["course_id"]) as gb:
                try:
                    gb.remove_assignment(stem)
                except MissingEntry:
                    pass
            course.hand_to_lecturer()
            raise
        known = course.assignments()
        known[stem] = {"due": due.isoformat(), "released": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                       "sha256": hashlib.sha256(snapshot.read_bytes()).hexdigest()}
        write_atomic(course.assignments_file, json.dumps(known, indent=1) + "\n", mode=0o600)
    course.hand_to_lecturer()
    return stems


def collect(course: Course, assignment: str) -> list[dict]:
    due = datetime.fromisoformat(course.released(assignment)["due"])
    course.exchange(ExchangeCollect, assignment, update=True).start()
    submitted = course.dir / "submitted"
    target = course.grading(assignment) / "submissions"
    target.mkdir(parents=True, exist_ok=True)
    rows, strangers = [], []
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        student = folder.parent.name
        notebook = folder / f"{assignment}.ipynb"
        if student not in course.known["students"]:
            strangers.append(student)
            continue
        if not notebook.is_file():
            rows.append({"student": student, "submitted": "", "late_by_s": "", "note": f"no {notebook.name}"})
            continue
        when = parse_utc((folder / "timestamp.txt").read_text().strip()).replace(tzinfo=timezone.utc)
        (target / student).mkdir(exist_ok=True)
        part = target / student / f".{notebook.name}.part"
        shutil.copyfile(notebook, part)
        os.replace(part, target / student / notebook.name)
        rows.append({"student": student, "submitted": when.isoformat(timespec="seconds"),
                     "late_by_s": max(0, round((when - due).total_seconds())), "note": ""})
    lines = ["student,submitted,late_by_s,note"] + [f"{r['student']},{r['submitted']},{r['late_by_s']},{r['note']}"
                                                    for r in rows]
    write_atomic(course.grading(assignment) / "late.csv", "\n".join(lines) + "\n", mode=0o600)
    course.hand_to_lecturer()
    if strangers:
        print(f"not graded, not in class.json: {', '.join(strangers)}", file=sys.stderr)
    return rows


def grade(course: Course, assignment: str, options: list[str]) -> Path:
    course.released(assignment)
    submissions = course.grading(assignment) / "submissions"
    if not submissions.is_dir() or not any(submissions.iterdir()):
        raise ClassError(f"nothing collected for {assignment}: `python -m hub.course collect {assignment}` first")
    out = course.grading(assignment) / "grades"
    # The grader sees the released snapshot of this assignment only, never notebooks/.
    notebooks = course.grading(assignment) / "released"
    notebooks.mkdir(exist_ok=True)
    shutil.copyfile(course.dir / "released" / f"{assignment}.ipynb", notebooks / f"{assignment}.ipynb")
    run = subprocess.run([sys.executable, "-m", "course.grade", str(submissions), "--out", str(out),
                          "--notebooks", str(notebooks), *options], cwd=CHECKOUT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    if run.returncode:
        course.hand_to_lecturer()
        raise SystemExit(run.returncode)
    record_points(course, assignment, out / "grades.csv")
    show_graded(course, assignment, out / "feedback")
    course.hand_to_lecturer()
    return out


def record_points(course: Course, assignment: str, grades_csv: Path) -> None:
    """The grader's points into nbgrader's gradebook, as each test cell's auto score, so formgrader shows them."""
    with open(grades_csv, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["notebook"] == assignment]
    with warnings.catch_warnings(), Gradebook(f"sqlite:///{course.dir / 'gradebook.db'}",
                                              course.known["course_id"]) as gb:
        # nbgrader 0.9.6's add_submission under SQLAlchemy 2 warns that it adds objects twice; the rows are right.
        warnings.simplefilter("ignore", SAWarning)
        for student in sorted({r["student"] for r in rows}):
            first, _, last = course.known["students"].get(student, student).partition(" ")
            gb.update_or_create_student(student, first_name=first, last_name=last)
            stamp = course.dir / "submitted" / student / assignment / "timestamp.txt"
            when = parse_utc(stamp.read_text().strip()) if stamp.exists() else None
            gb.update_or_create_submission(assignment, student, timestamp=when)
        for row in rows:
            cell = gb.find_grade(row["grade_id"], assignment, assignment, row["student"])
            cell.auto_score = float(row["points"])
            cell.needs_manual_grade = False   # an autograded test cell, as nbgrader's autograde leaves it
        gb.db.commit()


def show_graded(course: Course, assignment: str, feedback: Path) -> None:
    """Each graded notebook (the grader's feedback copy: the student's cells and outputs with the points, no hidden
    test) at nbgrader's autograded/<student>/<assignment>/, where formgrader looks for what has been graded: its
    submission list then shows the score, its Manual Grading the notebook."""
    for graded in sorted(feedback.glob(f"*/{assignment}/{assignment}.ipynb")):
        student = graded.parent.parent.name
        folder = course.dir / "autograded" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        stamp = course.dir / "submitted" / student / assignment / "timestamp.txt"
        if stamp.exists():
            shutil.copyfile(stamp, folder / "timestamp.txt")
        shutil.copyfile(graded, folder / f".{graded.name}.part")
        os.replace(folder / f".{graded.name}.part", folder / graded.name)


def hidden_lines(teaching: Path) -> set[str]:
    """Every line of the hidden tests of a teaching notebook that says something (not a bracket or blank)."""
    nb = nbformat.read(teaching, as_version=4)
    lines = set()
    for cell in nb.cells:
        for block in HIDDEN.findall(cell.source + "\n"):
            lines |= {line.strip() for line in block.splitlines() if len(line.strip()) > 3}
    return lines


def page_text(page: Path) -> str:
    """The text of an HTML page as a reader sees it (tags out, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(errors="replace")))


def return_feedback(course: Course, assignment: str) -> tuple[list[str], list[str]]:
    course.released(assignment)
    pages = course.grading(assignment) / "grades" / "feedback"
    if not pages.is_dir():
        raise ClassError(f"no feedback for {assignment}: `python -m hub.course grade {assignment}` first")
    secret = hidden_lines(course.dir / "released" / f"{assignment}.ipynb")
    returned, held = [], []
    for page in sorted(pages.glob(f"*/{assignment}/{assignment}.html")):
        student = page.parent.parent.name
        submitted = course.dir / "submitted" / student / assignment
        text = page_text(page)
        if any(line in text for line in secret):
            held.append(f"{student} (the page shows a line of the hidden tests)")
            continue
        if not (submitted / "submission_secret.txt").is_file():
            held.append(f"{student} (not submitted through the exchange)")
            continue
        folder = course.dir / "feedback" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("timestamp.txt", "submission_secret.txt"):
            shutil.copyfile(submitted / name, folder / name)
        shutil.copyfile(page, folder / f".{page.name}.part")
        os.chmod(folder / f".{page.name}.part", 0o644)   # the exchange's copy keeps this mode: students read it
        os.replace(folder / f".{page.name}.part", folder / page.name)
        returned.append(student)
    for student in returned:
        coursedir = course.coursedir(assignment, student)
        ExchangeReleaseFeedback(coursedir=coursedir, authenticator=Authenticator(config=course.config),
                                config=course.config).start()
    course.hand_to_lecturer()
    return returned, held


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hub.course", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--class-dir", type=Path, help="the class folder (default $MINICAM_CLASS or /srv/minicam)")
    steps = parser.add_subparsers(dest="step", required=True)
    step = steps.add_parser("release", help="hand out teaching notebooks as assignments")
    step.add_argument("notebooks", nargs="+", type=Path)
    step.add_argument("--due", required=True, help="ISO 8601, e.g. '2027-01-15 23:59+09:00' (UTC if no offset)")
    for name, text in (("collect", "collect the submissions"), ("return", "return the feedback")):
        steps.add_parser(name, help=text).add_argument("assignment")
    step = steps.add_parser("grade", help="grade the collected submissions in the sandbox")
    step.add_argument("assignment")
    step.add_argument("--cell-timeout", type=float, default=60)
    step.add_argument("--notebook-timeout", type=float, default=600)
    step.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    try:
        course = Course(ClassDir(args.class_dir))
        if args.step == "release":
            stems = release(course, args.notebooks, parse_due(args.due))
            print(f"released {', '.join(stems)}, due {parse_due(args.due).isoformat(timespec='minutes')}")
        elif args.step == "collect":
            rows = collect(course, args.assignment)
            late = [f"{r['student']} by {r['late_by_s']} s" for r in rows if r["late_by_s"]]
            print(f"{len(rows)} submissions of {args.assignment} collected"
                  + (f"; late: {', '.join(late)}" if late else "; none late")
                  + f" ({course.grading(args.assignment) / 'late.csv'})")
        elif args.step == "grade":
            out = grade(course, args.assignment, ["--cell-timeout", str(args.cell_timeout),
                                                  "--notebook-timeout", str(args.notebook_timeout),
                                                  "--jobs", str(args.jobs)])
            print(f"graded {args.assignment}: {out / 'totals.csv'}; the gradebook has the points")
        else:
            returned, held = return_feedback(course, args.assignment)
            print(f"feedback on {args.assignment} returned to {len(returned)} students"
                  + (f"; held back: {', '.join(held)}" if held else ""))
            if held:
                sys.exit(1)
    except (ClassError, ExchangeError) as err:
        print(f"hub.course: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
