"""The course edition end to end (`make course`, one process: the grader forks one process per submission).

1. `course.student.build` writes the student edition of NOTEBOOK through nbgrader: stubs in place of the
   solutions, no hidden tests, no outputs, answer and test cells open, test cells read-only.
2. Three submissions of it are graded by `course.grade.grade` into a CSV and a table of totals that must
   be exactly as expected: "right" (every answer cell the teaching one, solution region and all), "stubs"
   (the student edition as handed out; its graded copy is the student edition run top to bottom, where
   each stub must raise in its own cell and each test fail with its message, and nothing else fail) and
   "half" (exercise 1 right, after trying to write the gradebook, leaving a process behind, deleting every
   file in its folder, and with its test cell deleted; exercise 2 raising, with its test cell replaced by
   `pass` and its points set to 100; exercise 3 sleeping past the cell limit; exercise 4 printing every
   cell IPython ran, hidden tests included, then a count that fails a hidden check). As root, each kernel
   runs as a user of its own, and nothing of that user survives the grading.
3. The feedback of those three: each test cell's points, the total, each failed check's message, no line
   of a hidden test or of our solutions (only the student's own code), and nothing readable by others;
   the grading log says which test cells the student changed.
4. The notebook limit on a tiny notebook: a submission whose cells take too long in all, one whose cell
   ignores the interrupt, and a file that is not a notebook.
5. `RestoreCells` on tampered cells, without a kernel; usage errors of `python -m course.grade`, each one
   message and exit status 2 (options out of range, a student folder named like an output, and, with
   --unsandboxed, a checkout that the sandboxes' users cannot enter); in the sandbox such a checkout grades.
6. No lost grade: a grader killed by SIGKILL mid-class, rerun, gives the CSVs of an uninterrupted run and
   grades only what was missing (then only a changed submission); SIGTERM leaves no kernel, no temporary
   folder and no old grades.csv. (The attacks on the sandbox: tests/test_grading_attacks.py.)
"""
import ast
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the course edition needs nbgrader (pip install minicam[course])")

from course.exercises import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, exercises, mark  # noqa: E402
from course.grade import grade, main  # noqa: E402
from course.nbgrader_tools import RestoreCells  # noqa: E402
from course.sandbox import as_root, bwrap_problem, free_uids  # noqa: E402
from course.student import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_introduction.ipynb"   # four exercises, one of the cheapest notebooks
CELL_LIMIT = 12          # seconds: twice the slowest cell of NOTEBOOK (its imports) with both graders running; the sleeping cell costs it
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
# As root, each submission runs as a user of its own in bubblewrap, which opens a checkout inside a folder
# other users cannot enter (mktemp -d, a 0700 home) for the kernel: the per-user checks run there too.
# Without bubblewrap (tools/setup_sandbox.sh) everything here skips, saying why.
NO_SANDBOX = bwrap_problem(free_uids(62400, 1)[0] if as_root() else None)
pytestmark = pytest.mark.skipif(NO_SANDBOX is not None, reason=f"no sandbox here: {NO_SANDBOX}")
SWITCH = as_root()


@pytest.fixture(scope="module")
def teaching():
    """NOTEBOOK as the student edition has its cells: without those tagged remove-cell (what the teaching
    notebook says of itself), so that an exercise's cell indices are the same in both."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = [cell for cell in nb.cells if "remove-cell" not in cell.metadata.get("tags", [])]
    return nb


@pytest.fixture(scope="module")
def student(tmp_path_factory, teaching):
    (path,) = build([NOTEBOOK], tmp_path_factory.mktemp("student"))
    return nbformat.read(path, as_version=4)


def solution(cell) -> str:
    lines = cell.source.splitlines()
    return "\n".join(lines[lines.index(BEGIN_SOLUTION) + 1:lines.index(END_SOLUTION)])


def test_the_student_edition_holds_stubs_and_visible_tests_only(teaching, student):
    assert len(student.cells) == len(teaching.cells) and "widgets" not in student.metadata
    assert all(c.outputs == [] and "jupyter" not in c.metadata for c in student.cells if c.cell_type == "code")
    for ex in exercises(teaching):
        answer, test = student.cells[ex.answer], student.cells[ex.test]
        assert answer.source.endswith(STUB) and solution(teaching.cells[ex.answer]) not in answer.source
        assert answer.source.splitlines()[0] == teaching.cells[ex.answer].source.splitlines()[0]
        assert test.source == teaching.cells[ex.test].source.split("\n### BEGIN HIDDEN TESTS")[0]
        assert test.metadata.editable is False and test.metadata.nbgrader.points == ex.points


def submissions(folder: Path, teaching, student) -> list:
    """right/, stubs/ and half/ under `folder`; returns half's points per exercise (full or 0)."""
    exs = exercises(teaching)
    right = nbformat.from_dict(student)
    for ex in exs:
        right.cells[ex.answer].source = teaching.cells[ex.answer].source
    half = nbformat.from_dict(right)
    first, second, third, fourth = (half.cells[ex.answer] for ex in exs)
    first.source = INTRUDER + solution(first)
    second.source = "answer = None\nanswer = 1 / 0"
    half.cells[exs[1].test].source = "pass"
    half.cells[exs[1].test].metadata.nbgrader.points = 100
    third.source = f"import time\ntime.sleep({10 * CELL_LIMIT})\n" + solution(third)
    fourth.source = 'print("\\n".join(In))\n' + fourth.source + "\nanswer = (answer[0], answer[1] - 1)"
    del half.cells[exs[0].test]
    for name, nb in (("right", right), ("stubs", student), ("half", half)):
        (folder / name).mkdir(parents=True)
        nbformat.write(nb, folder / name / NOTEBOOK.name)
    return [ex.points if ex.number == 1 else 0 for ex in exs]


@pytest.fixture(scope="module")
def graded(tmp_path_factory, teaching, student):
    folder, out = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("grades")
    half = submissions(folder, teaching, student)
    grade(folder, out, NOTEBOOK.parent, cell_timeout=CELL_LIMIT, notebook_timeout=300, jobs=2, uid_base=62500,
          same_user=not SWITCH)
    return out, half, folder


def expected_points(teaching, half) -> dict[str, list]:
    exs = exercises(teaching)
    return {"half": half, "right": [ex.points for ex in exs], "stubs": [0] * len(exs)}


def test_the_csv_and_the_totals_are_exactly_as_expected(teaching, graded):
    out, half, _ = graded
    exs, want = exercises(teaching), expected_points(teaching, half)
    rows = [f"{student},{NOTEBOOK.stem},{ex.grade_id},{points[i]},{ex.points}"
            for student, points in sorted(want.items()) for i, ex in enumerate(exs)]
    assert (out / "grades.csv").read_text().splitlines() == ["student,notebook,grade_id,points,max_points", *rows]
    totals = [f"{student},{NOTEBOOK.stem},{sum(points)},{sum(ex.points for ex in exs)}"
              for student, points in sorted(want.items())]
    assert (out / "totals.csv").read_text().splitlines() == ["student,notebook,points,max_points", *totals]


def errors(cell) -> list[tuple[str, str]]:
    return [(o.ename, o.evalue) for o in cell.get("outputs", []) if o.output_type == "error"]


def graded_notebook(out: Path, student: str):
    """The graded notebook handed back beside the feedback page (without the answer key)."""
    return nbformat.read(out / "feedback" / student / NOTEBOOK.stem / NOTEBOOK.name, as_version=4)


def test_the_student_edition_runs_top_to_bottom_with_errors_in_exercise_cells_only(teaching, graded):
    out, _, _ = graded
    run = graded_notebook(out, "stubs")
    exs = exercises(teaching)
    for ex in exs:
        assert [e[0] for e in errors(run.cells[ex.answer])] == ["NotImplementedError"]
        ((name, message),) = errors(run.cells[ex.test])
        assert name == "AssertionError" and message.startswith("set answer"), f"{ex.grade_id}: {name}: {message}"
        assert run.cells[ex.test].outputs[0].traceback == [f"failed: {message}"]   # no line of the test
    exercise_cells = {i for ex in exs for i in (ex.answer, ex.test)}
    assert [i for i, c in enumerate(run.cells) if errors(c) and i not in exercise_cells] == []


def test_the_half_right_submission_was_graded_on_the_real_tests(teaching, student, graded):
    out, _, _ = graded
    run = graded_notebook(out, "half")
    by_id = {c.metadata.nbgrader["grade_id"]: c for c in run.cells if "nbgrader" in c.metadata}
    exs = exercises(teaching)
    assert by_id["ex1"].source == student.cells[exs[0].test].source     # deleted: put back (its visible part)
    assert by_id["ex2"].source == student.cells[exs[1].test].source     # edited: restored
    assert "KeyboardInterrupt" in [e[0] for e in errors(by_id["ex3_answer"])]          # stopped at the cell limit
    assert errors(by_id["ex4"]) == [("AssertionError", hidden_messages(teaching.cells[exs[3].test])[1])]
    report = ast.literal_eval(by_id["ex1_answer"].outputs[0].text)
    assert report["deleted"] == [NOTEBOOK.name]                   # its folder: a copy of the notebook's
    log = (out / "logs" / "half" / f"{NOTEBOOK.stem}.log").read_text()
    assert "has changed" not in log and "test cell ex2 was changed in the submission" in log
    assert [f"test cell {ex.grade_id}: unchanged" in log for ex in exs] == [True, False, True, True]


def region_lines(source: str, begin: str, end: str) -> list[str]:
    lines = source.splitlines()
    return lines[lines.index(begin):lines.index(end) + 1] if begin in lines else []


def hidden_messages(test_cell) -> list[str]:
    """The messages of a test cell's hidden asserts, in order."""
    code = "\n".join(region_lines(test_cell.source, BEGIN_HIDDEN, END_HIDDEN))
    return [node.msg.value if isinstance(node.msg, ast.Constant) else None
            for node in ast.walk(ast.parse(code)) if isinstance(node, ast.Assert)]


def answer_key(teaching, student) -> set[str]:
    """Every line (stripped) of the teaching notebook's solutions and hidden tests, markers included, that
    the student edition does not hold."""
    public = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    key = {line.strip() for cell in teaching.cells if "nbgrader" in cell.metadata
           for begin, end in ((BEGIN_SOLUTION, END_SOLUTION), (BEGIN_HIDDEN, END_HIDDEN))
           for line in region_lines(cell.source, begin, end)}
    return key - public - {""}


class PageText(HTMLParser):
    """The text a browser shows of a page (no style sheets or scripts), markup and entities resolved."""

    def __init__(self, page: str):
        super().__init__()
        self.parts, self.hidden = [], 0
        self.feed(page)
        self.text = "".join(self.parts)

    def handle_starttag(self, tag, attrs):
        self.hidden += tag in ("style", "script")

    def handle_endtag(self, tag):
        self.hidden -= tag in ("style", "script")

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def notebook_text(nb) -> str:
    """Every source and every textual output of a notebook."""
    parts = []
    for cell in nb.cells:
        parts.append(cell.source)
        for o in cell.get("outputs", []):
            parts += [o.get("text", ""), o.get("evalue", ""), *o.get("traceback", []),
                      *(v for v in o.get("data", {}).values() if isinstance(v, str))]
    return "\n".join(parts)


def own_lines(submission) -> set[str]:
    """The lines (stripped) a student wrote outside any solution region: theirs, shown back to them."""
    lines = set()
    for cell in submission.cells:
        solution_lines = region_lines(cell.source, BEGIN_SOLUTION, END_SOLUTION)
        lines |= {line.strip() for line in cell.source.splitlines() if line not in solution_lines}
    return lines


def test_the_feedback_shows_points_totals_and_failed_checks_but_no_answer_key(teaching, student, graded):
    out, half, folder = graded
    exs, key = exercises(teaching), answer_key(teaching, student)
    visible = "set answer in the cell above: replace the two stub lines by answer = ..."
    assert all(visible in student.cells[ex.test].source for ex in exs)
    hidden = hidden_messages(teaching.cells[exs[3].test])[1]     # "not quite: count every parameter ..."
    failed = {"right": [], "stubs": [visible] * 4, "half": [visible, visible, hidden]}
    texts, theirs = {}, {}
    for name, points in expected_points(teaching, half).items():
        page = out / "feedback" / name / NOTEBOOK.stem / f"{NOTEBOOK.stem}.html"
        texts[name] = text = PageText(page.read_text()).text
        total, most = float(sum(points)), float(sum(ex.points for ex in exs))
        assert f"{NOTEBOOK.stem} (Score: {total} / {most})" in text, name
        assert re.findall(r"Test cell \(Score: (\S+) / (\S+)\)", text) == [(str(float(p)), str(float(ex.points)))
                                                                        for p, ex in zip(points, exs)], name
        assert re.findall(r"^failed: (.*)$", text, re.M) == failed[name], name
        theirs[name] = own_lines(nbformat.read(folder / name / NOTEBOOK.name, as_version=4))
        for shown in (text, notebook_text(graded_notebook(out, name))):
            leaked = sorted(line for line in key - theirs[name] if line in shown)
            assert leaked == [], f"{name}'s feedback shows {len(leaked)} lines of the answer key: {leaked[:3]}"
    assert "an output that showed part of the hidden tests" in texts["half"]   # it printed In: taken out
    assert "solution of the teaching edition was here" in texts["right"]       # its solution regions: taken out
    assert len(key & theirs["half"]) > 3 and not key & theirs["right"]   # half wrote solution lines as its own


def test_everything_under_the_grades_folder_is_its_owners_only(graded):
    out, _, _ = graded
    found = {path.relative_to(out).as_posix(): stat.S_IMODE(path.stat().st_mode) for path in out.rglob("*")}
    assert {"grades.csv", "totals.csv", "logs/half/00_introduction.log",
            "feedback/half/00_introduction/00_introduction.html"} <= set(found)
    assert {path: mode for path, mode in found.items() if mode != (0o700 if (out / path).is_dir() else 0o600)} == {}
    assert not [path for path in found if path.endswith(".part")]   # written under a temporary name, renamed


TINY_ANSWER = "answer = None   # an int\n### BEGIN SOLUTION\nanswer = 6\n### END SOLUTION"
TINY_TEST = ('assert answer is not None, "set answer"\n### BEGIN HIDDEN TESTS\nassert answer == 6, "not six"\n'
             'print("correct")\n### END HIDDEN TESTS')
INTRUDER = '''import os, subprocess
report = {"uid": os.getuid()}
try:
    open("../course/gradebook.db", "a").close()
    report["../course/gradebook.db"] = "written"
except OSError as err:
    report["../course/gradebook.db"] = type(err).__name__
subprocess.Popen(["sleep", "300"], start_new_session=True)
report["deleted"] = os.listdir(".")
for name in report["deleted"]:
    os.remove(name)
print(report)
'''


def tiny(folder: Path) -> Path:
    cells = [nbformat.v4.new_markdown_cell("# tiny\n\n## Exercises (1 point)"),
             nbformat.v4.new_markdown_cell("**1.** (1 point) Six?"),
             nbformat.v4.new_code_cell(TINY_ANSWER), nbformat.v4.new_code_cell(TINY_TEST)]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                          "display_name": "Python 3"}})
    mark(nb)
    folder.mkdir()
    nbformat.write(nb, folder / "tiny.ipynb")
    return folder / "tiny.ipynb"


def tiny_submission(folder: Path, source: Path, name: str, answer: str, before: list[str] = ()) -> None:
    nb = nbformat.read(source, as_version=4)
    nb.cells[2].source = answer
    nb.cells[2:2] = [nbformat.v4.new_code_cell(code) for code in before]
    (folder / name).mkdir(parents=True)
    nbformat.write(nb, folder / name / "tiny.ipynb")


def processes_of(uids: range) -> list[int]:
    """The live processes (zombies waiting to be reaped do not count) of the users `uids`."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        uid, state = re.search(r"^Uid:\s+(\d+)", text, re.M), re.search(r"^State:\s+(\S)", text, re.M)
        if uid and int(uid.group(1)) in uids and state and state.group(1) != "Z":
            found.append(int(status.parent.name))
    return found


def test_the_notebook_limit_stops_what_the_cell_limit_cannot(tmp_path, capsys):
    source, folder = tiny(tmp_path / "notebooks"), tmp_path / "submissions"
    tiny_submission(folder, source, "quick", "answer = 6")
    tiny_submission(folder, source, "slow", "answer = 6", ["import time\ntime.sleep(2)"] * 6)
    tiny_submission(folder, source, "stubborn", "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                                 "time.sleep(300)\nanswer = 6")
    (folder / "wrecked").mkdir()
    (folder / "wrecked" / "tiny.ipynb").write_text("not a notebook")
    rows = grade(folder, tmp_path / "out", source.parent, cell_timeout=3, notebook_timeout=8, jobs=4, uid_base=63000,
                 same_user=not SWITCH)
    assert [(r[0], r[3]) for r in rows] == [("quick", 1.0), ("slow", 0.0), ("stubborn", 0.0), ("wrecked", 0.0)]
    warned = capsys.readouterr().err
    for name in ("slow", "stubborn"):      # past the limit in many cells, or in one that ignores the interrupt
        assert f"{name}/tiny: stopped at the notebook limit of 8 s" in warned
    assert "wrecked/tiny: nbgrader could not grade it" in warned
    pages = {name: PageText((tmp_path / "out" / "feedback" / name / "tiny" / "tiny.html").read_text()).text
             for name in ("quick", "slow", "wrecked")}
    assert "tiny (Score: 1.0 / 1.0)" in pages["quick"]                      # nbgrader's feedback page
    assert "tiny (Score: 0 / 1)" in pages["slow"] and "longer than the limit of 8 s" in pages["slow"]
    assert "nbgrader could not run this notebook" in pages["wrecked"]
    if SWITCH:
        assert processes_of(range(63000, 63100)) == []


def test_restore_cells_puts_the_hand_out_graded_cells_back(tmp_path, teaching, student):
    release = tmp_path / "release.ipynb"
    nbformat.write(student, release)
    exs = exercises(teaching)                                    # the student edition has its cells in the same places
    nb = nbformat.from_dict(student)
    nb.cells[exs[0].test].metadata.nbgrader.grade_id = "mine"                      # unknown id
    nb.cells[exs[1].answer].metadata.nbgrader = nbformat.from_dict(dict(nb.cells[exs[2].test].metadata.nbgrader))
    del nb.cells[exs[3].answer:exs[3].test + 1]                                     # answer and test deleted
    restored, _ = RestoreCells(release_notebook=str(release)).preprocess(nb, {})
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in restored.cells]
    assert "mine" not in ids and sorted(filter(None, ids)) == sorted(filter(None, (c.metadata.get("nbgrader", {})
                                                                                  .get("grade_id") for c in student.cells)))
    assert ids.index("ex3") < ids.index("ex2")                   # the first cell with an id keeps it (a pasted copy comes after)
    assert ids.index("ex1") == ids.index("ex1_answer") + 1       # a missing cell goes after the graded cell before it
    assert ids.index("ex2_answer") == ids.index("ex1") + 1
    assert ids.index("ex4_answer") == ids.index("ex3_answer") + 1 and ids.index("ex4") == ids.index("ex4_answer") + 1
    for grade_id in ("ex2_answer", "ex4_answer"):
        assert restored.cells[ids.index(grade_id)].source.endswith(STUB)      # as handed out, never the solution


def test_as_root_each_submission_runs_as_a_user_of_its_own(graded):
    if not as_root():
        pytest.skip("not root: the kernels run as this user (README, Course edition)")
    out, _, _ = graded
    run = graded_notebook(out, "half")
    answer = next(c for c in run.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_answer")
    report = ast.literal_eval(answer.outputs[0].text)             # what the intruder saw from inside
    assert report["uid"] >= 62500 and report["../course/gradebook.db"] in ("PermissionError", "FileNotFoundError")
    assert processes_of(range(62500, 62600)) == []                 # its `sleep 300` is gone


@pytest.fixture
def one_submission(tmp_path):
    """A tiny notebook and one submission of it (nothing here is graded: each call stops before)."""
    source = tiny(tmp_path / "notebooks")
    tiny_submission(tmp_path / "submissions", source, "quick", "answer = 6")
    return source.parent, tmp_path / "submissions"


def usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as stop:
        main([str(arg) for arg in argv])
    message = capsys.readouterr().err
    assert stop.value.code == 2 and message.startswith("usage:") and "Traceback" not in message, message
    assert message.count("error:") == 1
    return message


@pytest.mark.parametrize("change, expected", [
    ({"SUBMISSIONS": "nowhere"}, "is not a folder"), ({"SUBMISSIONS": "empty"}, "holds no notebook to grade"),
    ({"--out": "submissions/g"}, "is inside SUBMISSIONS"), ({"--out": "file"}, "is a file"),
    ({"--notebooks": "empty"}, "holds no notebook with exercises"), ({"--jobs": 0}, "--jobs must be 1 or more"),
    ({"--jobs": -3}, "--jobs must be 1 or more"), ({"--cell-timeout": 0.5}, "whole number of seconds"),
    ({"--cell-timeout": 0}, "whole number of seconds"), ({"--notebook-timeout": -5}, "above 0"),
    ({"--notebook-timeout": 0}, "above 0"), ({"--notebook-timeout": "nan"}, "above 0"),
    ({"--notebook-timeout": 2, "--cell-timeout": 5}, "at least --cell-timeout"), ({"--memory": 10}, "--memory"),
    ({"--uid-base": 0}, "--uid-base"), ({"SUBMISSIONS": "grades.csv"}, "may not be named 'Grades.csv'"),
    ({"SUBMISSIONS": "feedback"}, "may not be named 'feedback'"), ({"SUBMISSIONS": "records"}, "may not be named")])
def test_a_usage_error_is_one_message_and_exit_status_2(tmp_path, one_submission, capsys, change, expected):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    for name in ("grades.csv", "feedback", "records"):   # a class with a student folder named like an output
        tiny_submission(tmp_path / name, notebooks_of(one_submission) / "tiny.ipynb", "quick", "answer = 6")
        (tmp_path / name / "quick").rename(tmp_path / name / ("Grades.csv" if name == "grades.csv" else name))
    args = {"SUBMISSIONS": "submissions", "--notebooks": "notebooks", "--out": "grades", **change}
    paths = {name: tmp_path / value if isinstance(value, str) and value != "nan" else value
             for name, value in args.items()}
    argv = [paths.pop("SUBMISSIONS"), *(part for option in paths.items() for part in option)]
    assert expected in usage_error(capsys, argv)
    assert not (tmp_path / "grades").exists() and not (tmp_path / "submissions" / "g").exists()   # nothing written


def notebooks_of(one_submission) -> Path:
    return one_submission[0]


def test_every_problem_with_the_options_is_named_in_one_message(tmp_path, one_submission, capsys):
    notebooks, folder = one_submission
    message = usage_error(capsys, [folder, "--notebooks", notebooks, "--out", tmp_path / "grades", "--jobs", 0,
                                   "--cell-timeout", 0, "--notebook-timeout", -5])
    assert "--jobs" in message and "--cell-timeout" in message and "--notebook-timeout" in message
    assert not (tmp_path / "grades").exists()


def test_as_root_unsandboxed_a_checkout_other_users_cannot_enter_is_one_message(tmp_path, one_submission, capsys,
                                                                                 monkeypatch):
    """The interpreter behind a folder of mode 0700 (a checkout in a mktemp -d folder or a private home):
    as root with --unsandboxed (no bubblewrap to open that folder), the grader stops before grading."""
    if not as_root():
        pytest.skip("not root: the kernels run as this user, who can read the checkout")
    notebooks, folder = one_submission
    monkeypatch.setattr(sys, "executable", str(private_python(tmp_path)))
    message = usage_error(capsys, [folder, "--notebooks", notebooks, "--out", tmp_path / "grades",
                                   "--uid-base", 63200, "--unsandboxed"])
    assert "cannot start a kernel" in message and "SAME_USER=1" in message and "/srv" in message
    assert not (tmp_path / "grades").exists()


def private_python(tmp_path: Path) -> Path:
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    (private / "bin" / "python").symlink_to(sys.executable)
    venv = Path(sys.executable).parent.parent      # private/ as a venv of its own: its packages are the checkout's
    if (venv / "pyvenv.cfg").is_file():
        shutil.copy(venv / "pyvenv.cfg", private / "pyvenv.cfg")
        (private / "lib").symlink_to(venv / "lib")
        for tool in ("alembic",):                   # nbgrader runs it from beside the interpreter
            (private / "bin" / tool).symlink_to(venv / "bin" / tool)
    return private / "bin" / "python"


def test_as_root_the_sandbox_grades_from_a_checkout_other_users_cannot_enter(tmp_path, one_submission, monkeypatch):
    """The same 0700 folder in the sandbox: the launcher mounts it open for the kernel alone, which grades."""
    if not as_root():
        pytest.skip("not root: the kernels run as this user, who can read the checkout")
    notebooks, folder = one_submission
    monkeypatch.setattr(sys, "executable", str(private_python(tmp_path)))
    rows = grade(folder, tmp_path / "grades", notebooks, cell_timeout=10, notebook_timeout=60, uid_base=63300)
    assert [(r[0], r[3]) for r in rows] == [("quick", 1.0)]
    assert os.stat(tmp_path / "private").st_mode & 0o777 == 0o700


RESUME_CLASS = {"ann": "answer = 6", "bob": "answer = 5", "cat": "answer = 6"}


def grading_command(folder: Path, notebooks: Path, out: Path, uid_base: int) -> list[str]:
    return [sys.executable, "-m", "course.grade", str(folder), "--notebooks", str(notebooks), "--out", str(out),
            "--cell-timeout", "10", "--notebook-timeout", "60", "--jobs", "1", "--uid-base", str(uid_base)]


def leftovers(uids: range, before: set, pid: int) -> tuple:
    """The live processes of `uids` and the temporary folders the grader `pid` left (not another test's)."""
    time.sleep(0.5)
    runs = []
    for run in set(Path(tempfile.gettempdir()).glob("minicam-grade-*")) - before:
        try:
            if (run / "grader.pid").read_text().strip() == str(pid):
                runs.append(run)
        except OSError:
            continue
    return (processes_of(uids) if as_root() else []), sorted(runs)


def test_a_grader_killed_mid_class_resumes_and_its_csv_equals_an_uninterrupted_run(tmp_path, capsys):
    """SIGKILL after the first record: nothing of it runs on (its temporary folder is removed by the next
    run); the rerun grades only the rest, and its
    grades.csv and totals.csv are byte for byte an uninterrupted run's. A submission changed since is
    graded again, the others not."""
    source, folder = tiny(tmp_path / "notebooks"), tmp_path / "submissions"
    for name, answer in RESUME_CLASS.items():
        tiny_submission(folder, source, name, answer)
    runs_before = set(Path(tempfile.gettempdir()).glob("minicam-grade-*"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.Popen(grading_command(folder, source.parent, tmp_path / "out", 63400), cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    reference = grade(folder, tmp_path / "reference", source.parent, cell_timeout=10, notebook_timeout=60, jobs=2,
                      uid_base=63500)    # meanwhile, the uninterrupted run
    records = tmp_path / "out" / "records"
    deadline = time.monotonic() + 120
    while killed.poll() is None and len(list(records.glob("*/*.json"))) < 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    killed.kill()
    killed.wait()
    graded_before = {path.parent.name for path in records.glob("*/*.json")}
    assert 1 <= len(graded_before) < len(RESUME_CLASS), "kill it mid-class: raise the class size if this fails"
    assert not (tmp_path / "out" / "grades.csv").exists()
    processes, runs = leftovers(range(63400, 63420), runs_before, killed.pid)
    assert processes == [] and len(runs) == 1      # its kernels ended with it; its folder waits for the next run
    rerun = subprocess.run(grading_command(folder, source.parent, tmp_path / "out", 63400), cwd=ROOT, env=env,
                           capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert leftovers(range(63400, 63420), runs_before, killed.pid) == ([], [])   # which removes it
    assert f"{len(graded_before)} of {len(RESUME_CLASS)} submissions graded before" in rerun.stderr
    for name in ("grades.csv", "totals.csv"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "reference" / name).read_bytes(), name
    assert [(r[0], r[3]) for r in reference] == [("ann", 1.0), ("bob", 0.0), ("cat", 1.0)]
    tiny_submission(folder, source, "bob2", "answer = 6")        # bob hands in a corrected notebook
    shutil.copy(folder / "bob2" / "tiny.ipynb", folder / "bob" / "tiny.ipynb")
    shutil.rmtree(folder / "bob2")
    grade(folder, tmp_path / "out", source.parent, cell_timeout=10, notebook_timeout=60, jobs=1, uid_base=63400)
    assert f"{len(RESUME_CLASS) - 1} of {len(RESUME_CLASS)} submissions graded before" in capsys.readouterr().err
    assert "bob,tiny,ex1,1,1" in (tmp_path / "out" / "grades.csv").read_text().splitlines()


def test_sigterm_stops_grading_and_leaves_no_kernel_no_folder_no_old_csv(tmp_path):
    source, folder = tiny(tmp_path / "notebooks"), tmp_path / "submissions"
    tiny_submission(folder, source, "slow", "import time\ntime.sleep(60)\nanswer = 6")
    out = tmp_path / "out"
    out.mkdir()
    (out / "grades.csv").write_text("student,notebook,grade_id,points,max_points\nslow,tiny,ex1,1,1\n")  # an old run's
    runs_before = set(Path(tempfile.gettempdir()).glob("minicam-grade-*"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.Popen(grading_command(folder, source.parent, out, 63600), cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    log = out / "logs" / "slow" / "tiny.log"
    while not (log.exists() and "Autograding" in log.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)                # until nbgrader runs it
    time.sleep(2)                      # and its kernel
    run.send_signal(signal.SIGTERM)
    _, err = run.communicate(timeout=30)
    assert run.returncode == 128 + signal.SIGTERM and "run the same command again" in err, err
    assert not (out / "grades.csv").exists()
    assert leftovers(range(63600, 63610), runs_before, run.pid) == ([], [])
