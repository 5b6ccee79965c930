"""nbgrader as the course tools use it: a temporary course directory, generate_assignment, the scores.

Every step is nbgrader's own converter (GenerateAssignment, Autograde) run in this process, with
course/nbgrader_config.py. Two additions, both for grading untrusted notebooks: `RestoreCells` puts the
graded cells back as they were handed out before nbgrader's own checks (nbgrader 0.9.6 stops with an
error on the whole notebook when a student renames a test cell's grade_id or deletes an answer cell
together with its test, so the student would lose every point), and `scores` reads the gradebook.
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
from nbgrader.converters import Autograde, GenerateAssignment
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, NbGraderPreprocessor,
                                    OverwriteCells, OverwriteKernelspec)
from traitlets import Unicode
from traitlets.config.loader import PyFileConfigLoader

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
    """`nbgrader autograde stem --student student` in course `root`, with `RestoreCells` first."""
    config.RestoreCells.release_notebook = str(root / "release" / stem / f"{stem}.ipynb")
    config.Autograde.sanitize_preprocessors = [RestoreCells, ClearOutput, DeduplicateIds, OverwriteKernelspec,
                                               OverwriteCells, CheckCellMetadata]
    coursedir = CourseDirectory(root=str(root), assignment_id=stem, student_id=student, config=config)
    Autograde(coursedir=coursedir, config=config, force=True, create_student=True).start()


def scores(root: Path, stem: str, student: str) -> dict[str, tuple[float, float]]:
    """{grade_id: (points, max_points)} of the student's graded notebook, from the gradebook in `root`."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        graded = gb.find_submission_notebook(stem, stem, student)
        return {grade.name: (float(grade.score), float(grade.max_score)) for grade in graded.grades}


def _graded_cells(nb) -> dict[str, object]:
    return {cell.metadata.nbgrader["grade_id"]: cell for cell in nb.cells if "nbgrader" in cell.metadata}


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
