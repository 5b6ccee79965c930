"""The exercises of a notebook as nbgrader sees them: the conventions, their check, and the metadata.

Conventions (every notebook with exercises follows them; `problems(nb)` checks each one):

1. The exercises close the notebook, under one markdown heading that states the total:
   ``## Exercises (8 points)`` (a numbered section, ``## 11. Exercises (8 points)``, is fine).
2. Exercise K is three consecutive cells:
   a. the question, a markdown cell that states its points: ``**K.** (2 points) ...``;
   b. the answer cell (code), grade_id ``exK_answer``::

          answer = None   # your answer: <its form, e.g. a Fraction such as Fraction(1, 3)>
          ### BEGIN SOLUTION
          answer = ...    # the solution, derived the way the question asks
          ### END SOLUTION

      The first line resets ``answer``, so a stub that raises leaves None, never the previous
      exercise's answer. nbgrader replaces the solution region by ``# YOUR CODE HERE`` /
      ``raise NotImplementedError()`` in the student edition;
   c. the test cell (code), grade_id ``exK``: visible asserts on the form of the answer (``answer is
      not None``, its exact type, its shape), each with a message that teaches, then the value::

          ### BEGIN HIDDEN TESTS
          check = ...                      # the right answer, computed in the notebook
          assert ..., "not quite: ..."     # where the question asks for an observation, the number behind it
          print("correct")
          ### END HIDDEN TESTS

      The student edition drops the hidden region (a visible check of the value would give it away);
      grading runs it. A test cell prints nothing else and nothing on stderr (nbgrader scores a test
      cell with stderr output 0), and compares plain values (``type(answer) is str``, ``Fraction(answer)``,
      ``float(answer)``), not the answer's own ``==``.
3. Metadata (``mark`` writes it from the sources): the answer cell
   ``{"nbgrader": {"grade": false, "grade_id": "exK_answer", "locked": false, "schema_version": 3,
   "solution": true, "task": false}, "jupyter": {"source_hidden": true}}``; the test cell
   ``{"nbgrader": {"grade": true, "grade_id": "exK", "locked": true, "points": P_K, "schema_version": 3,
   "solution": false, "task": false}, "jupyter": {"source_hidden": true}}``. ``source_hidden`` collapses
   both in JupyterLab, so a reader of the teaching notebook sees the question first; the student edition
   opens them. K counts 1, 2, ... in notebook order and the P_K add up to the heading's total.
4. At least one plausible wrong answer per exercise lives in ``tests/wrong_answers.py`` (never in the
   notebook): ``WRONG_ANSWERS[notebook stem]["exK"]`` is a list of code that replaces the solution
   region. ``make nbval`` then checks, in the notebook's own kernel, that each test fails on the stub and
   on every wrong answer, and passes on the solution (notebooks/conftest.py).
5. The text under the heading is true in every edition (the teaching notebook, the student edition, the
   book and the slides). What holds for the teaching notebook only (its folded cells, the solution in the
   answer cell, the test that prints "correct", `make student`) stands in a markdown cell of its own after
   it, tagged ``remove-cell``: the student edition (course/student.py), the book and the slides
   (book/editions.py) leave that cell out. tests/test_student_edition.py checks it by phrases.

To convert a notebook: write the cells as above, run ``python -m course.exercises --mark
notebooks/NN_topic.ipynb`` (metadata), add the wrong answers, re-execute the notebook, and run
``python -m course.exercises notebooks/NN_topic.ipynb`` (prints what breaks a convention).
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
HEADING = re.compile(r"^#{2,3} (?:\d+\. )?Exercises \((\d+) points?\)\s*$", re.MULTILINE)
POINTS = re.compile(r"\((\d+) points?\)")


@dataclass
class Exercise:
    """Exercise `number` of a notebook: the indices of its question, answer and test cells."""
    number: int
    question: int
    answer: int
    test: int
    points: int

    @property
    def grade_id(self) -> str:
        return f"ex{self.number}"


def _lines(cell) -> list[str]:
    return [line.strip() for line in cell.source.splitlines()]


def _is_answer(cell) -> bool:
    return cell.cell_type == "code" and BEGIN_SOLUTION in _lines(cell)


def exercises(nb) -> list[Exercise]:
    """The exercises of `nb` (an nbformat notebook) in order, found from the sources: an answer cell is a
    code cell holding a ``### BEGIN SOLUTION`` line; its question is the cell before it, its test the one after."""
    found = []
    for index, cell in enumerate(nb.cells):
        if _is_answer(cell):
            question = nb.cells[index - 1].source if index > 0 else ""
            stated = POINTS.search(question)
            found.append(Exercise(len(found) + 1, index - 1, index, index + 1, int(stated.group(1)) if stated else 0))
    return found


def answer_metadata(ex: Exercise) -> dict:
    return {"grade": False, "grade_id": f"{ex.grade_id}_answer", "locked": False, "schema_version": 3,
            "solution": True, "task": False}


def test_metadata(ex: Exercise) -> dict:
    return {"grade": True, "grade_id": ex.grade_id, "locked": True, "points": ex.points, "schema_version": 3,
            "solution": False, "task": False}


def mark(nb) -> int:
    """Write the nbgrader and collapse metadata of every exercise of `nb` (in place); returns how many."""
    found = exercises(nb)
    for ex in found:
        for index, meta in ((ex.answer, answer_metadata(ex)), (ex.test, test_metadata(ex))):
            cell = nb.cells[index]
            cell.metadata["nbgrader"] = nbformat.from_dict(meta)
            cell.metadata["jupyter"] = nbformat.from_dict({**cell.metadata.get("jupyter", {}), "source_hidden": True})
    return len(found)


def _heading_problems(nb, found: list[Exercise]) -> list[str]:
    headings = [HEADING.search(c.source) for c in nb.cells if c.cell_type == "markdown"]
    totals = [int(h.group(1)) for h in headings if h]
    if len(totals) != 1:
        return [f"want one heading '## Exercises (N points)' before the exercises, found {len(totals)}"]
    total = sum(ex.points for ex in found)
    return [] if totals[0] == total else [f"the heading states {totals[0]} points, the exercises add up to {total}"]


def _exercise_problems(nb, ex: Exercise) -> list[str]:
    name, cells, out = f"exercise {ex.number}", nb.cells, []
    if ex.test >= len(cells) or cells[ex.test].cell_type != "code":
        return [f"{name}: the cell after its answer cell must be its test cell (code)"]
    if cells[ex.question].cell_type != "markdown" or ex.points < 1:
        out.append(f"{name}: the cell before the answer cell must be the question, stating '(N points)'")
    answer, test = cells[ex.answer], cells[ex.test]
    if not answer.source.startswith("answer = None"):
        out.append(f"{name}: the answer cell must start with 'answer = None' (it resets the previous answer)")
    if END_SOLUTION not in _lines(answer):
        out.append(f"{name}: the answer cell has '{BEGIN_SOLUTION}' but no '{END_SOLUTION}' line")
    lines = _lines(test)
    if BEGIN_HIDDEN not in lines or END_HIDDEN not in lines or not lines[0].startswith("assert "):
        out.append(f"{name}: the test cell must start with a visible assert and hold a hidden-tests region")
    for index, want in ((ex.answer, answer_metadata(ex)), (ex.test, test_metadata(ex))):
        meta = cells[index].metadata
        if meta.get("nbgrader") != want or not meta.get("jupyter", {}).get("source_hidden"):
            out.append(f"{name}: cell {index} needs the metadata {want} and jupyter.source_hidden "
                       "(python -m course.exercises --mark writes both)")
    return out


def problems(nb) -> list[str]:
    """What breaks a convention of the module docstring in `nb`; [] when it follows them all (or has no
    exercises in nbgrader form at all)."""
    found = exercises(nb)
    if not found:
        return []
    out = _heading_problems(nb, found)
    for ex in found:
        out += _exercise_problems(nb, ex)
    used = {i for ex in found for i in (ex.answer, ex.test)}
    for index, cell in enumerate(nb.cells):
        if index not in used and ("nbgrader" in cell.metadata or any(m in cell.source for m in MARKERS)):
            out.append(f"cell {index} is not an answer or test cell but has nbgrader metadata or a marker line")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Check (or --mark) the exercise conventions of notebooks.")
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--mark", action="store_true", help="write the nbgrader metadata in place first")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.mark:
            print(f"{path}: marked {mark(nb)} exercises")
            nbformat.write(nb, path)
        for problem in problems(nb):
            failed += 1
            print(f"{path}: {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
