"""nbgrader as the course tools use it: a temporary course directory, generate_assignment, the scores.

Every step is nbgrader's own converter (GenerateAssignment, Autograde, GenerateFeedback) run in this
process, with course/nbgrader_config.py. Additions, for grading untrusted notebooks and for feedback a
student may keep: `RestoreCells` puts the graded cells back as they were handed out before nbgrader's own
checks (nbgrader 0.9.6 stops with an error on the whole notebook when a student renames a test cell's
grade_id or deletes an answer cell together with its test, so the student would lose every point),
`RestoreTests` is nbgrader's OverwriteCells with a log that says whether the student changed a test cell,
`generate_feedback` runs GenerateFeedback with course.feedback.RemoveAnswerKey, and `scores` reads the
gradebook.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
from pathlib import Path

import nbformat
import nbgrader.api
from nbgrader.api import Gradebook
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, GetGrades, NbGraderPreprocessor,
                                    OverwriteCells, OverwriteKernelspec)
from traitlets import Unicode
from traitlets.config.loader import PyFileConfigLoader

from course.feedback import RemoveAnswerKey

CONFIG = Path(__file__).resolve().with_name("nbgrader_config.py")


@functools.cache
def _alembic_version(_original=nbgrader.api.get_alembic_version) -> str:
    # nbgrader runs the `alembic` command (found on PATH) for every new gradebook: seconds of start-up
    # each time. The answer is nbgrader's schema version, so one run per process is enough.
    bin_dir = os.path.dirname(sys.executable)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return _original()


nbgrader.api.get_alembic_version = _alembic_version


def load_config(**overrides):
    """course/nbgrader_config.py as a traitlets Config, with `overrides` ({"Execute.timeout": 5, ...})."""
    config = PyFileConfigLoader(CONFIG.name, path=str(CONFIG.parent)).load_config()
    for key, value in overrides.items():
        section, name = key.split(".")
        config[section][name] = value
    return config


def make_course(root: Path, notebooks: list[Path]) -> Path:
    """A course directory at `root` with each notebook as an assignment of its own name (its stem)."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(CONFIG, root / CONFIG.name)
    for path in notebooks:
        folder = root / "source" / path.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return root


def generate(root: Path, stem: str, config) -> Path:
    """`nbgrader generate_assignment stem` in course `root`; returns the student edition's path."""
    coursedir = CourseDirectory(root=str(root), assignment_id=stem, config=config)
    GenerateAssignment(coursedir=coursedir, config=config, force=True, create_assignment=True).start()
    return root / "release" / stem / f"{stem}.ipynb"


def autograde(root: Path, stem: str, student: str, config) -> None:
    """`nbgrader autograde stem --student student` in course `root`, with `RestoreCells` first and
    `RestoreTests` in place of OverwriteCells."""
    release = str(root / "release" / stem / f"{stem}.ipynb")
    config.RestoreCells.release_notebook = config.RestoreTests.release_notebook = release
    config.Autograde.sanitize_preprocessors = [RestoreCells, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                               RestoreTests, CheckCellMetadata]
    coursedir = CourseDirectory(root=str(root), assignment_id=stem, student_id=student, config=config)
    Autograde(coursedir=coursedir, config=config, force=True, create_student=True).start()


def generate_feedback(root: Path, stem: str, student: str, config) -> Path:
    """`nbgrader generate_feedback stem --student student` in course `root` after `autograde`, with
    course.feedback.RemoveAnswerKey after nbgrader's GetGrades: writes root/feedback/student/stem/stem.html
    (nbgrader's layout), and stem.ipynb beside it, the graded notebook through the same RemoveAnswerKey.
    Returns that folder."""
    config.RemoveAnswerKey.source_notebook = str(root / "source" / stem / f"{stem}.ipynb")
    config.RemoveAnswerKey.release_notebook = str(root / "release" / stem / f"{stem}.ipynb")
    config.GenerateFeedback.preprocessors = [GetGrades, RemoveAnswerKey, CSSHTMLHeaderPreprocessor]
    coursedir = CourseDirectory(root=str(root), assignment_id=stem, student_id=student, config=config)
    GenerateFeedback(coursedir=coursedir, config=config, force=True).start()
    folder = root / "feedback" / student / stem
    graded = nbformat.read(root / "autograded" / student / stem / f"{stem}.ipynb", as_version=4)
    graded, _ = RemoveAnswerKey(config=config).preprocess(graded, {})
    nbformat.write(graded, folder / f"{stem}.ipynb")
    return folder


def scores(root: Path, stem: str, student: str) -> dict[str, tuple[float, float]]:
    """{grade_id: (points, max_points)} of the student's graded notebook, from the gradebook in `root`."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        graded = gb.find_submission_notebook(stem, stem, student)
        return {grade.name: (float(grade.score), float(grade.max_score)) for grade in graded.grades}


def _graded_cells(nb) -> dict[str, object]:
    return {cell.metadata.nbgrader["grade_id"]: cell for cell in nb.cells if "nbgrader" in cell.metadata}


class RestoreTests(OverwriteCells):
    """nbgrader's OverwriteCells (each locked cell, i.e. each test cell, is put back as the gradebook holds it:
    with its hidden tests), saying plainly what it found. nbgrader logs "Attribute 'checksum' for cell exK has
    changed!" for every test cell with hidden tests, touched or not: GenerateAssignment saves the teaching
    edition's cell and checksum in the gradebook (ComputeChecksums and SaveCells run before
    ClearHiddenTests), so the student edition's cell never matches. This compares the submitted cell with
    the student edition's instead: as handed out, it logs that its hidden tests were put back (info);
    otherwise it warns that the student's edit was discarded."""

    release_notebook = Unicode(help="the student edition of the submitted notebook").tag(config=True)

    def preprocess(self, nb, resources):
        self._released = {grade_id: cell.source for grade_id, cell in
                          _graded_cells(nbformat.read(self.release_notebook, as_version=4)).items()}
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        self._as_handed_out = grade_id in self._released and cell.source == self._released[grade_id]
        return super().preprocess_cell(cell, resources, cell_index)

    def report_change(self, name, attr, old, new):
        if attr != "checksum":
            super().report_change(name, attr, old, new)
        elif self._as_handed_out:
            self.log.info("test cell %s: unchanged, as handed out; graded with its hidden tests put back", name)
        else:
            self.log.warning("test cell %s was changed in the submission: graded as handed out instead "
                             "(the change is discarded), with its hidden tests", name)


class RestoreCells(NbGraderPreprocessor):
    """Makes the submission's graded cells (nbgrader metadata with a grade_id) those of the hand-out:
    metadata as released for every grade_id it knows (at its first cell: a pasted copy comes after the
    original), metadata dropped for a grade_id it does not know, and each missing graded cell inserted, as
    released (an answer cell as its stub), after the graded cell that comes before it. nbgrader's OverwriteCells then restores the sources of
    the locked cells (the test cells, hidden tests included) from the gradebook."""

    release_notebook = Unicode(help="the student edition of the submitted notebook").tag(config=True)

    def preprocess(self, nb, resources):
        release = nbformat.read(self.release_notebook, as_version=4)
        known, seen = _graded_cells(release), []
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader")
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            if isinstance(grade_id, str) and grade_id in known and grade_id not in seen:
                cell.metadata["nbgrader"] = nbformat.from_dict(dict(known[grade_id].metadata["nbgrader"]))
                seen.append(grade_id)
            elif meta is not None:
                del cell.metadata["nbgrader"]
        order = list(known)
        for grade_id in order:
            if grade_id not in seen:
                nb.cells.insert(self._position(nb, order, grade_id), self._stub(known[grade_id], resources))
        return nb, resources

    @staticmethod
    def _position(nb, order: list[str], grade_id: str) -> int:
        ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells]
        earlier, later = order[:order.index(grade_id)], order[order.index(grade_id) + 1:]
        after = [index + 1 for index, i in enumerate(ids) if i in earlier]
        before = [index for index, i in enumerate(ids) if i in later]
        return max(after) if after else min(before, default=len(nb.cells))

    def _stub(self, cell, resources):
        self.log.warning("graded cell %s is missing from the submission: put back", cell.metadata.nbgrader["grade_id"])
        new = nbformat.v4.new_code_cell() if cell.cell_type == "code" else nbformat.v4.new_markdown_cell()
        new.source, new.metadata = cell.source, nbformat.from_dict({"nbgrader": dict(cell.metadata["nbgrader"])})
        return new
