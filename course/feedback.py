"""Feedback a student may keep: the graded notebook without the answer key.

nbgrader's autograded copy of a submission holds the hidden tests (nbgrader puts them back to run them),
and the tracebacks of failed tests print their lines; nbgrader's own feedback page shows both (nbgrader
#917, #1363). `RemoveAnswerKey`, a preprocessor run by nbgrader's `GenerateFeedback` between its
`GetGrades` and the HTML export (course.nbgrader_tools.generate_feedback), takes out

- every hidden-test region (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``, as nbgrader's
  ClearHiddenTests finds it), so a test cell shows its visible part, as handed out;
- every solution region (``### BEGIN SOLUTION`` ... ``### END SOLUTION``): a submission holds one only
  if it was made from the teaching notebook; the student's own code is theirs and stays;
- the traceback of each failed test cell, which prints the line that failed: the cell's output says
  ``failed: <the assertion's message>`` instead (``failed: <error>: <message>`` for another error);
- any output that holds a line of the hidden tests or the solutions, verbatim, other than the lines of its
  own cell (IPython keeps the source of every cell it ran, hidden tests included, in ``In``; a later
  cell can print it): replaced by a note.

What it cannot catch: a submission that prints the hidden tests encoded (reversed, base64) in its own
outputs. README.md, "Course edition", says so.
"""
from __future__ import annotations

import html

import nbformat
from nbconvert.filters import strip_ansi
from nbconvert.preprocessors import Preprocessor
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
from traitlets import Bool, Unicode


def _delimiter(cls, name: str) -> str:
    return cls.class_traits()[name].default_value


# (begin, end, what stands in its place): the markers as nbgrader's own preprocessors find them.
REGIONS = ((_delimiter(ClearSolutions, "begin_solution_delimeter"),
            _delimiter(ClearSolutions, "end_solution_delimeter"),
            "# (a solution of the teaching edition was here; it is not part of the feedback)"),
           (_delimiter(ClearHiddenTests, "begin_test_delimeter"),
            _delimiter(ClearHiddenTests, "end_test_delimeter"),
            None))
REMOVED_OUTPUT = "(an output that showed part of the hidden tests or of a solution: not part of the feedback)\n"
BINARY = ("image/png", "image/jpeg", "image/gif", "application/pdf")


def split_regions(source: str) -> tuple[str, list[str]]:
    """(the source without its solution and hidden-test regions, the lines of those regions, markers
    included). A region that is never closed runs to the end of the cell."""
    kept, removed, end = [], [], None
    for line in source.split("\n"):
        if end is not None:
            removed.append(line)
            if end in line:
                end = None
            continue
        for begin, region_end, note in REGIONS:
            if begin in line:
                removed.append(line)
                end = region_end
                if note:
                    kept.append(line[:len(line) - len(line.lstrip())] + note)
                break
        else:
            kept.append(line)
    return "\n".join(kept), removed


def answer_key(source_notebook, release_notebook) -> set[str]:
    """The lines (stripped) of the teaching edition's solutions and hidden tests that the student edition
    does not hold: what the feedback must not show."""
    public = {line.strip() for cell in release_notebook.cells for line in cell.source.splitlines()}
    key = set()
    for cell in source_notebook.cells:
        if "nbgrader" in cell.metadata:
            key |= {line.strip() for line in split_regions(cell.source)[1]}
    return key - public - {""}


def failed(output) -> dict:
    """A failed test cell's error, as its message only (its traceback prints the hidden test's line)."""
    if output.ename == "AssertionError":
        message = f"failed: {output.evalue}" if output.evalue else "failed: a check without a message"
    else:
        message = f"failed: {output.ename}: {output.evalue}" if output.evalue else f"failed: {output.ename}"
    return nbformat.v4.new_output("error", ename=output.ename, evalue=output.evalue, traceback=[message])


def _texts(output) -> list[str]:
    if output.output_type == "stream":
        return [output.text]
    if output.output_type == "error":
        return [output.evalue, *map(strip_ansi, output.traceback)]
    return [value if isinstance(value, str) else str(value)
            for mime, value in output.get("data", {}).items() if mime not in BINARY]


def shows_key(output, key: set[str]) -> bool:
    return any(line in text or html.escape(line) in text for text in _texts(output) for line in key)


class RemoveAnswerKey(Preprocessor):
    """Takes the hidden tests and the solutions out of a graded notebook (the module docstring says how).
    An nbconvert preprocessor (nbgrader's own base class hides the exporter's display_data_priority)."""

    enabled = Bool(True).tag(config=True)

    source_notebook = Unicode(help="the teaching edition of the notebook (nbgrader's source/)").tag(config=True)
    release_notebook = Unicode(help="the student edition of the notebook (nbgrader's release/)").tag(config=True)

    def preprocess(self, nb, resources):
        self._key = answer_key(nbformat.read(self.source_notebook, as_version=4),
                               nbformat.read(self.release_notebook, as_version=4))
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        cell.source, _ = split_regions(cell.source)
        if cell.cell_type != "code":
            return cell, resources
        test = utils.is_grade(cell)
        outputs = [failed(o) if test and o.output_type == "error" else o for o in cell.outputs]
        # the student's own lines are shown above anyway (a traceback of their code prints them)
        key = self._key - {line.strip() for line in cell.source.splitlines()}
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=REMOVED_OUTPUT)
                        if shows_key(o, key) else o for o in outputs]
        return cell, resources
