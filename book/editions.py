"""The editions of the book and the slides: what a reader sees of each exercise.

    course       (the default: make book, make slides) what a course may publish, since it grades these
                 exercises: each exercise's question, its answer cell as the student edition has it (the
                 stub) and the visible checks of its test cell. No solution, no hidden test.
    self-study   (make book EDITION=self-study, make slides EDITION=self-study) for readers on their own:
                 the same, and after each stub its solution, folded behind a "Show solution" toggle in the
                 book and shown on the next key press in the deck. Still no hidden test.

book/build.py stages every notebook through `edition(nb, name)` before Sphinx or nbconvert reads it. The
exercises are found by their nbgrader metadata (course/exercises.py states the conventions), and every
exercise is staged by the same rules, in this order:

1. The solution cell: a code cell after the answer cell holding the answer cell's solution region
   (the lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION``), and the answer cell's stored
   outputs. Its tags are `SOLUTION_TAGS[name]`: in the course edition `remove-cell`, in the self-study
   edition `hide-cell` (MyST-NB folds the cell, outputs included, behind a toggle whose prompt the cell's
   `mystnb` metadata sets: "Show solution" / "Hide solution"). In the deck it is a fragment.
2. The answer cell becomes the stub: nbgrader's ClearSolutions, with course/nbgrader_config.py, replaces
   its solution region by ``# YOUR CODE HERE`` / ``raise NotImplementedError()``.
3. The test cell keeps its visible checks: nbgrader's ClearHiddenTests drops its hidden region.
4. Answer and test cells show no stored output: those outputs came from the solution and the hidden
   tests (the "correct" a test cell printed).
5. Every cell tagged `remove-cell` is removed (nbconvert's TagRemovePreprocessor), so a removed solution
   is in no staged notebook, page, deck or search index.

Deterministic: the solution cell's id is the answer cell's id with "-solution", nothing else is random,
and the teaching notebooks themselves are never written.
"""
from __future__ import annotations

import copy
import functools
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))   # course/, when this runs as part of `python book/build.py`

EDITIONS = ("course", "self-study")
REMOVE = "remove-cell"
SOLUTION_TAGS = {"course": ["solution", REMOVE], "self-study": ["solution", "hide-cell"]}
PROMPTS = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}


def check_edition(name: str) -> str:
    if name not in EDITIONS:
        raise ValueError(f"unknown edition {name!r}: the editions are {', '.join(EDITIONS)}")
    return name


@functools.cache
def _preprocessors():
    """nbgrader's ClearSolutions and ClearHiddenTests, and nbconvert's TagRemovePreprocessor, configured."""
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    from course.nbgrader_tools import load_config

    config = load_config()
    return (ClearSolutions(config=config), ClearHiddenTests(config=config),
            TagRemovePreprocessor(remove_cell_tags={REMOVE}))


def solution_region(source: str, begin: str, end: str) -> str:
    """The lines of `source` between the line holding `begin` and the line holding `end`."""
    lines, inside = [], False
    for line in source.split("\n"):
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return "\n".join(lines)


def solution_cell(answer, name: str, begin: str, end: str):
    """Rule 1: the solution of answer cell `answer`, tagged for edition `name`."""
    cell = nbformat.v4.new_code_cell(solution_region(answer.source, begin, end))
    cell.id = f"{answer.get('id') or answer.metadata.nbgrader['grade_id']}-solution"[:64]
    cell.outputs = copy.deepcopy(answer.get("outputs", []))
    cell.execution_count = answer.get("execution_count")
    cell.metadata = nbformat.from_dict({"tags": list(SOLUTION_TAGS[name]), "mystnb": dict(PROMPTS),
                                        "slideshow": {"slide_type": "fragment"}})
    return cell


def _grader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def edition(nb, name: str):
    """A copy of notebook `nb` as edition `name` shows it (the rules of this module's docstring)."""
    check_edition(name)
    clear_solutions, clear_hidden_tests, remove_tagged = _preprocessors()
    begin, end = clear_solutions.begin_solution_delimeter, clear_solutions.end_solution_delimeter
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if _grader(cell).get("solution") and cell.cell_type == "code":
            cells.append(solution_cell(cell, name, begin, end))
    nb.cells = cells
    nb, resources = clear_solutions.preprocess(nb, {})
    nb, resources = clear_hidden_tests.preprocess(nb, resources)
    for cell in nb.cells:
        if cell.cell_type == "code" and (_grader(cell).get("solution") or _grader(cell).get("grade")):
            cell.outputs, cell.execution_count = [], None
    nb, _ = remove_tagged.preprocess(nb, resources)
    return nb
