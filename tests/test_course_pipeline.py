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
   message and exit status 2, a checkout that the sandboxes' users cannot enter among them.
"""
import ast
import os
import re
import stat
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the course edition needs nbgrader (pip install minicam[course])")

from course.exercises import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION, exercises, mark  # noqa: E402
from course.grade import grade, main  # noqa: E402
from course.nbgrader_tools import RestoreCells  # noqa: E402
from course.sandbox import as_root, free_uids, python_problem  # noqa: E402
from course.student import build  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "00_introduction.ipynb"   # four exercises, one of the cheapest notebooks
CELL_LIMIT = 12          # seconds: twice the slowest cell of NOTEBOOK (its imports) with both graders running; the sleeping cell costs it
STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
# As root, each submission runs as a user of its own, which needs the checkout and its .venv readable by
# other users. Inside a folder they cannot enter (mktemp -d, a 0700 home) the pipeline is graded as root
# (--same-user) and the per-user checks skip, saying why.
UNREACHABLE = python_problem(free_uids(62400, 1)[0]) if as_root() else None
SWITCH = as_root() and UNREACHABLE is None


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
    if UNREACHABLE:
        pytest.skip(f"the checkout is in a folder other users cannot enter, so the per-user sandbox was not "
                    f"exercised (graded with --same-user): {UNREACHABLE[:200]}")
    out, _, _ = graded
    run = graded_notebook(out, "half")
    answer = next(c for c in run.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_answer")
    report = ast.literal_eval(answer.outputs[0].text)             # what the intruder saw from inside
    assert report["uid"] >= 62500 and report["../course/gradebook.db"] == "PermissionError"
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
    ({"--cell-timeout": 0.5}, "whole number of seconds")])
def test_a_usage_error_is_one_message_and_exit_status_2(tmp_path, one_submission, capsys, change, expected):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("")
    args = {"SUBMISSIONS": "submissions", "--notebooks": "notebooks", "--out": "grades", **change}
    paths = {name: tmp_path / value if isinstance(value, str) else value for name, value in args.items()}
    argv = [paths.pop("SUBMISSIONS"), *(part for option in paths.items() for part in option)]
    assert expected in usage_error(capsys, argv)
    assert not (tmp_path / "grades").exists() and not (tmp_path / "submissions" / "g").exists()   # nothing written


def test_as_root_a_checkout_other_users_cannot_enter_is_one_message(tmp_path, one_submission, capsys, monkeypatch):
    """The interpreter behind a folder of mode 0700 (a checkout in a mktemp -d folder or a private home):
    as root without --same-user, the grader stops before grading, saying what to do."""
    if not as_root():
        pytest.skip("not root: the kernels run as this user, who can read the checkout")
    notebooks, folder = one_submission
    private = tmp_path / "private"
    (private / "bin").mkdir(parents=True)
    private.chmod(0o700)
    (private / "bin" / "python").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(private / "bin" / "python"))
    message = usage_error(capsys, [folder, "--notebooks", notebooks, "--out", tmp_path / "grades",
                                   "--uid-base", 63200])
    assert "cannot start a kernel" in message and "SAME_USER=1" in message and "/srv" in message
    assert not (tmp_path / "grades").exists()
    assert os.stat(private).st_mode & 0o777 == 0o700
