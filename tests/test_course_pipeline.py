"""The course edition end to end (`make course`, one process: the grader forks one process per submission).

1. `course.student.build` writes the student edition of NOTEBOOK through nbgrader: stubs in place of the
   solutions, no hidden tests, no outputs, answer and test cells open, test cells read-only.
2. Three submissions of it are graded by `course.grade.grade` into a CSV that must be exactly as
   expected: "right" (every stub replaced by its solution), "stubs" (the student edition as handed out;
   its graded copy is the student edition run top to bottom, where each stub must raise in its own cell
   and each test fail with its message, and nothing else fail) and "half" (exercise 1 right, after trying
   to write the gradebook, leaving a process behind, deleting every file in its folder, and with its test
   cell deleted; exercise 2 raising, with its test cell replaced by `pass` and its points set to 100;
   exercise 3 sleeping past the cell limit; exercise 4 right). As root, each kernel runs as a user of its
   own, and nothing of that user survives the grading.
3. The notebook limit on a tiny notebook: a submission whose cells take too long in all, one whose cell
   ignores the interrupt, and a file that is not a notebook.
4. `RestoreCells` on tampered cells, without a kernel.
"""
import ast
import re
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("nbgrader", reason="the course edition needs nbgrader (pip install minicam[course])")

from course.exercises import BEGIN_SOLUTION, END_SOLUTION, exercises, mark  # noqa: E402
from course.grade import grade  # noqa: E402
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
    return nbformat.read(NOTEBOOK, as_version=4)


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
    first, second, third = (half.cells[ex.answer] for ex in exs[:3])
    first.source = INTRUDER + solution(first)
    second.source = "answer = None\nanswer = 1 / 0"
    half.cells[exs[1].test].source = "pass"
    half.cells[exs[1].test].metadata.nbgrader.points = 100
    third.source = f"import time\ntime.sleep({10 * CELL_LIMIT})\n" + solution(third)
    del half.cells[exs[0].test]
    for name, nb in (("right", right), ("stubs", student), ("half", half)):
        (folder / name).mkdir(parents=True)
        nbformat.write(nb, folder / name / NOTEBOOK.name)
    return [ex.points if ex.number in (1, 4) else 0 for ex in exs]


@pytest.fixture(scope="module")
def graded(tmp_path_factory, teaching, student):
    folder, out = tmp_path_factory.mktemp("submissions"), tmp_path_factory.mktemp("grades")
    half = submissions(folder, teaching, student)
    grade(folder, out, NOTEBOOK.parent, cell_timeout=CELL_LIMIT, notebook_timeout=300, jobs=2, uid_base=62500,
          same_user=not SWITCH)
    return out, half


def test_the_csv_is_exactly_as_expected(teaching, graded):
    out, half = graded
    exs = exercises(teaching)
    want = {"half": half, "right": [ex.points for ex in exs], "stubs": [0] * len(exs)}
    rows = [f"{student},{NOTEBOOK.stem},{ex.grade_id},{points[i]},{ex.points}"
            for student, points in sorted(want.items()) for i, ex in enumerate(exs)]
    assert (out / "grades.csv").read_text().splitlines() == ["student,notebook,grade_id,points,max_points", *rows]


def errors(cell) -> list[tuple[str, str]]:
    return [(o.ename, o.evalue) for o in cell.get("outputs", []) if o.output_type == "error"]


def test_the_student_edition_runs_top_to_bottom_with_errors_in_exercise_cells_only(teaching, graded):
    out, _ = graded
    run = nbformat.read(out / "stubs" / NOTEBOOK.name, as_version=4)
    exs = exercises(teaching)
    for ex in exs:
        assert [e[0] for e in errors(run.cells[ex.answer])] == ["NotImplementedError"]
        ((name, message),) = errors(run.cells[ex.test])
        assert name == "AssertionError" and message.startswith("set answer"), f"{ex.grade_id}: {name}: {message}"
    exercise_cells = {i for ex in exs for i in (ex.answer, ex.test)}
    assert [i for i, c in enumerate(run.cells) if errors(c) and i not in exercise_cells] == []


def test_the_half_right_submission_was_graded_on_the_real_tests(teaching, graded):
    out, _ = graded
    run = nbformat.read(out / "half" / NOTEBOOK.name, as_version=4)
    by_id = {c.metadata.nbgrader["grade_id"]: c for c in run.cells if "nbgrader" in c.metadata}
    assert by_id["ex1"].source == teaching.cells[exercises(teaching)[0].test].source   # deleted: put back
    assert by_id["ex2"].source == teaching.cells[exercises(teaching)[1].test].source   # edited: restored
    assert "KeyboardInterrupt" in [e[0] for e in errors(by_id["ex3_answer"])]          # stopped at the cell limit
    report = ast.literal_eval(by_id["ex1_answer"].outputs[0].text)
    assert report["deleted"] == [NOTEBOOK.name]                   # its folder: a copy of the notebook's


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
    out, _ = graded
    run = nbformat.read(out / "half" / NOTEBOOK.name, as_version=4)
    answer = next(c for c in run.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "ex1_answer")
    report = ast.literal_eval(answer.outputs[0].text)             # what the intruder saw from inside
    assert report["uid"] >= 62500 and report["../course/gradebook.db"] == "PermissionError"
    assert processes_of(range(62500, 62600)) == []                 # its `sleep 300` is gone
