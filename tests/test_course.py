"""The exercises of the teaching notebooks against the conventions of course/exercises.py (no kernel, no
nbgrader: `make course` runs the hand-out -> grade pipeline, `make nbval` the stub / wrong answer /
solution checks of every exercise in its notebook's kernel)."""
import copy
import re
import runpy
from pathlib import Path

import nbformat
import pytest

from course.exercises import BEGIN_SOLUTION, END_SOLUTION, exercises, mark, problems

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WRONG_ANSWERS = runpy.run_path(str(ROOT / "tests" / "wrong_answers.py"))["WRONG_ANSWERS"]
# Notebooks whose exercises are still plain check cells: each is converted by the conventions of
# course/exercises.py and then removed from this set (the test below fails until it is).
UNCONVERTED: set[str] = set()


def read(path):
    return nbformat.read(path, as_version=4)


def has_exercise_section(nb) -> bool:
    return any(c.cell_type == "markdown" and re.search(r"^#{2,3} (\d+\. )?Exercises", c.source, re.M) for c in nb.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_follows_the_conventions(path):
    nb = read(path)
    assert problems(nb) == [], f"{path.name} breaks the conventions of course/exercises.py"
    if path.stem in UNCONVERTED:
        assert not exercises(nb), f"{path.name} has nbgrader exercises now: remove it from UNCONVERTED"
    elif has_exercise_section(nb):
        assert exercises(nb), f"{path.name} has exercises but no answer cells (see course/exercises.py)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_teaching_notebook_stores_each_test_passing(path):
    nb = read(path)
    for ex in exercises(nb):
        answer, test = nb.cells[ex.answer], nb.cells[ex.test]
        assert answer.outputs == [], f"{path.name} {ex.grade_id}: the answer cell prints nothing"
        kinds = {(o.output_type, o.get("name")) for o in test.outputs}
        text = "".join(o.text for o in test.outputs if o.output_type == "stream")   # a stream may come in pieces
        assert kinds == {("stream", "stdout")} and text == "correct\n", f"{path.name} {ex.grade_id}: stored test output {test.outputs}"


def test_every_exercise_has_a_wrong_answer_and_every_wrong_answer_an_exercise():
    ids = {path.stem: {ex.grade_id for ex in exercises(read(path))} for path in NOTEBOOKS}
    for stem, grade_ids in ids.items():
        for grade_id in sorted(grade_ids):
            assert WRONG_ANSWERS.get(stem, {}).get(grade_id), f"no wrong answer for {stem} {grade_id} in tests/wrong_answers.py"
    for stem, table in WRONG_ANSWERS.items():
        assert set(table) <= ids.get(stem, set()), f"tests/wrong_answers.py: {stem} has no exercises {set(table) - ids.get(stem, set())}"


def solution_lines(cell) -> list[str]:
    lines = cell.source.splitlines()
    return lines[lines.index(BEGIN_SOLUTION) + 1:lines.index(END_SOLUTION)]


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in UNCONVERTED], ids=lambda p: p.stem)
def test_no_solution_leaks_outside_its_region(path):
    """The student edition keeps everything but the solution regions and the hidden tests: a solution line
    must not also stand in a question, in the answer cell's first line, or in the visible part of a test."""
    nb = read(path)
    for ex in exercises(nb):
        answer, test = nb.cells[ex.answer], nb.cells[ex.test]
        visible = test.source.split("### BEGIN HIDDEN TESTS")[0] + nb.cells[ex.question].source + answer.source.splitlines()[0]
        for line in solution_lines(answer):
            code = line.split("#")[0].strip()
            assert not code or code not in visible, f"{path.name} {ex.grade_id}: {code!r} is visible to the student"


def small_notebook():
    """Two exercises in the conventions' form, metadata written by `mark`."""
    cells = [nbformat.v4.new_markdown_cell("# t\n\n## Exercises (3 points)\n\nIntro."),
             nbformat.v4.new_markdown_cell("**1.** (1 point) Six?"),
             nbformat.v4.new_code_cell(f"answer = None   # an int\n{BEGIN_SOLUTION}\nanswer = 6\n{END_SOLUTION}"),
             nbformat.v4.new_code_cell('assert answer is not None, "set it"\n### BEGIN HIDDEN TESTS\nassert answer == 6, "no"\n'
                                       'print("correct")\n### END HIDDEN TESTS'),
             nbformat.v4.new_markdown_cell("**2.** (2 points) Seven?"),
             nbformat.v4.new_code_cell(f"answer = None   # an int\n{BEGIN_SOLUTION}\nanswer = 7\n{END_SOLUTION}"),
             nbformat.v4.new_code_cell('assert answer is not None, "set it"\n### BEGIN HIDDEN TESTS\nassert answer == 7, "no"\n'
                                       'print("correct")\n### END HIDDEN TESTS')]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert mark(nb) == 2
    return nb


def test_mark_writes_the_metadata_and_problems_accepts_it():
    nb = small_notebook()
    assert [(e.grade_id, e.points) for e in exercises(nb)] == [("ex1", 1), ("ex2", 2)]
    assert nb.cells[3].metadata.nbgrader == {"grade": True, "grade_id": "ex1", "locked": True, "points": 1,
                                             "schema_version": 3, "solution": False, "task": False}
    assert nb.cells[5].metadata.nbgrader["grade_id"] == "ex2_answer" and nb.cells[5].metadata.jupyter.source_hidden
    assert problems(nb) == []


BREAKS = {  # what is broken: (change to the small notebook, a phrase of the expected problem)
    "total": (lambda nb: setattr(nb.cells[0], "source", "## Exercises (4 points)"), "add up to 3"),
    "metadata": (lambda nb: nb.cells[3].metadata.nbgrader.update(points=5), "needs the metadata"),
    "collapse": (lambda nb: nb.cells[2].metadata.pop("jupyter"), "source_hidden"),
    "reset": (lambda nb: setattr(nb.cells[2], "source", nb.cells[2].source.replace("answer = None", "x = 1", 1)), "answer = None"),
    "end marker": (lambda nb: setattr(nb.cells[5], "source", nb.cells[5].source.replace(END_SOLUTION, "")), "END SOLUTION"),
    "hidden tests": (lambda nb: setattr(nb.cells[6], "source", 'assert answer == 7, "no"'), "hidden-tests region"),
    "stray marker": (lambda nb: nb.cells.insert(1, nbformat.v4.new_code_cell("### BEGIN HIDDEN TESTS")), "not an answer or test cell"),
    "stated points": (lambda nb: setattr(nb.cells[1], "source", "**1.** Six?"), "stating '(N points)'"),
}


@pytest.mark.parametrize("name", BREAKS)
def test_problems_finds_each_broken_convention(name):
    nb, (change, phrase) = small_notebook(), BREAKS[name]
    change(nb)
    found = problems(nb)
    assert any(phrase in p for p in found), f"breaking the {name} gave {found}"


def test_a_notebook_without_nbgrader_exercises_has_no_problems():
    nb = copy.deepcopy(small_notebook())
    nb.cells = nb.cells[:2]
    assert problems(nb) == [] and exercises(nb) == []


# --- course.lms_import: LMS downloads into SUBMISSIONS/<student>/<NN_topic>.ipynb ---------------------------

def lms_downloads(tmp_path):
    """Teaching notebooks 00_introduction and 03_gradcam (stand-ins) and a folder of downloads."""
    import json
    import os
    import zipfile
    notebooks, downloads = tmp_path / "notebooks", tmp_path / "downloads"
    notebooks.mkdir()
    downloads.mkdir()
    for stem in ("00_introduction", "03_gradcam"):
        (notebooks / f"{stem}.ipynb").write_text("{}")

    def nb(tag):
        return json.dumps({"cells": [], "metadata": {"tag": tag}, "nbformat": 4, "nbformat_minor": 5})

    (downloads / "alice_00_introduction.ipynb").write_text(nb("alice 00"))
    (downloads / "alice_03_gradcam.ipynb").write_text(nb("alice 03 old"))
    os.utime(downloads / "alice_03_gradcam.ipynb", (1_700_000_000, 1_700_000_000))
    (downloads / "alice_03_gradcam (1).ipynb").write_text(nb("alice 03 new"))
    (downloads / "Alice Smith_1234_assignsubmission_file_03_gradcam.ipynb").write_text(nb("moodle"))
    with zipfile.ZipFile(downloads / "bob.zip", "w") as archive:
        archive.writestr("00_introduction.ipynb", nb("bob 00"))
    with zipfile.ZipFile(downloads / "class.zip", "w") as archive:
        archive.writestr("carol_03_gradcam.ipynb", nb("carol 03"))
        archive.writestr("dave/00_introduction.ipynb", nb("dave 00"))
        archive.writestr("inner.zip", b"PK")
    (downloads / "readme.txt").write_text("hello")
    (downloads / "zed_99_unknown.ipynb").write_text(nb("zed"))
    (downloads / "feedback_00_introduction.ipynb").write_text(nb("reserved"))
    (downloads / "eve_00_introduction.ipynb").write_text("not json")
    return notebooks, downloads


def tree(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_lms_import_places_flat_names_copies_and_zips_and_reports_the_rest(tmp_path, capsys):
    import json
    import stat as stat_module
    from course.lms_import import main
    notebooks, downloads = lms_downloads(tmp_path)
    before = tree(downloads)
    out = tmp_path / "submissions"
    assert main([str(downloads), "--out", str(out), "--notebooks", str(notebooks)]) == 1
    err = capsys.readouterr().err
    placed = {path: json.loads(data)["metadata"]["tag"] for path, data in tree(out).items()}
    assert placed == {"alice/00_introduction.ipynb": "alice 00", "alice/03_gradcam.ipynb": "alice 03 new",
                      "Alice Smith/03_gradcam.ipynb": "moodle", "bob/00_introduction.ipynb": "bob 00",
                      "carol/03_gradcam.ipynb": "carol 03", "dave/00_introduction.ipynb": "dave 00"}
    assert "alice/03_gradcam: 2 copies; kept the newest, alice_03_gradcam (1).ipynb" in err
    for origin, reason in (("readme.txt", "not a notebook"), ("zed_99_unknown.ipynb", "no assignment"),
                           ("feedback_00_introduction.ipynb", "cannot be a student folder"),
                           ("eve_00_introduction.ipynb", "not JSON"), ("class.zip:inner.zip", "zip inside a zip")):
        assert re.search(rf"^  {re.escape(origin)}: .*{reason}", err, re.M), (origin, err)
    assert tree(downloads) == before                                   # the downloads are untouched
    modes = {stat_module.S_IMODE(p.stat().st_mode) for p in out.rglob("*")}
    assert modes == {0o700, 0o600}
    first = tree(out)
    assert main([str(downloads), "--out", str(out), "--notebooks", str(notebooks)]) == 1   # again: the same
    assert tree(out) == first and "exists with other" not in capsys.readouterr().err


def test_lms_import_never_replaces_a_different_submission_without_force(tmp_path, capsys):
    from course.lms_import import main
    notebooks, downloads = lms_downloads(tmp_path)
    out = tmp_path / "submissions"
    (out / "bob").mkdir(parents=True)
    (out / "bob" / "00_introduction.ipynb").write_text("graded already")
    main([str(downloads), "--out", str(out), "--notebooks", str(notebooks)])
    assert "exists with other content (--force replaces it)" in capsys.readouterr().err
    assert (out / "bob" / "00_introduction.ipynb").read_text() == "graded already"
    main([str(downloads), "--out", str(out), "--notebooks", str(notebooks), "--force"])
    assert "bob 00" in (out / "bob" / "00_introduction.ipynb").read_text()
    with pytest.raises(SystemExit) as stop:
        main([str(downloads), "--out", str(downloads / "sub"), "--notebooks", str(notebooks)])
    assert stop.value.code == 2 and "inside DOWNLOADS" in capsys.readouterr().err
