"""The student edition: every notebook with its solutions replaced by nbgrader's stubs.

    python -m course.student [--out student] [NOTEBOOK ...]      (make student)

Runs `nbgrader generate_assignment` (course/nbgrader_config.py) on each notebook in a temporary course
folder and writes the result to <out>/NN_topic.ipynb, with the other files of notebooks/ that the
notebooks link to (glossary.md). In the student edition each solution region is ``# YOUR CODE HERE`` /
``raise NotImplementedError()``, the hidden tests are gone, every output is cleared (a student runs the
notebook top to bottom first, and the saved widget state goes with them), test cells are read-only,
and answer and test cells are open. The cells tagged `remove-cell` are left out: they speak of the
teaching notebook itself (its folded solutions, the test that prints "correct"), and the book and the
slides leave them out too (book/editions.py, nbconvert's TagRemovePreprocessor).

Beside the notebooks it writes what a student installs minicam from without the repository, which holds
the solutions: the package's wheel (<out>/minicam-VERSION-py3-none-any.whl: the package `minicam/` and its
shipped weights, nothing else) and constraints.txt, the pinned versions (README, "Course edition")::

    pip install minicam-0.2.0-py3-none-any.whl --constraint constraints.txt
"""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from nbconvert.preprocessors import TagRemovePreprocessor

from course.nbgrader_tools import generate, load_config, make_course

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("*.md",)   # files beside the notebooks that the hand-out needs
TEACHING_ONLY = "remove-cell"   # the tag of cells that only the teaching notebook holds
# What the wheel is built from: a copy of these alone, so no notebook, course file or test can get into it.
PACKAGE_FILES = ("pyproject.toml", "README.md", "LICENSE", "minicam")


def build(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student edition of each notebook to `out` (its old notebooks removed first)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    written = []
    teaching_only = TagRemovePreprocessor(remove_cell_tags={TEACHING_ONLY})
    with tempfile.TemporaryDirectory(prefix="minicam-student-") as tmp:
        root, config = make_course(Path(tmp), notebooks), load_config()
        for path in notebooks:
            nb = nbformat.read(generate(root, path.stem, config), as_version=4)
            nb, _ = teaching_only.preprocess(nb, {})
            nb.metadata.pop("widgets", None)   # the saved state of widgets whose outputs are gone
            nbformat.write(nb, out / path.name)
            written.append(out / path.name)
    for pattern in EXTRAS:
        for extra in sorted({p.parent for p in notebooks}):
            for path in extra.glob(pattern):
                shutil.copyfile(path, out / path.name)
    return written


def wheel(out: Path) -> Path:
    """Build minicam's wheel into `out` (its old minicam wheels replaced) from a copy of PACKAGE_FILES, with
    the venv's own setuptools (no download), and copy constraints.txt beside it; returns the wheel's path."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="minicam-wheel-") as tmp:
        source, built = Path(tmp) / "minicam", Path(tmp) / "dist"
        source.mkdir()
        for name in PACKAGE_FILES:
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            elif (ROOT / name).exists():
                shutil.copyfile(ROOT / name, source / name)
        run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", "--wheel-dir", str(built), str(source)],
                             capture_output=True, text=True, env={**os.environ, "PIP_NO_INPUT": "1"})
        if run.returncode:
            raise RuntimeError(f"pip wheel of minicam failed:\n{run.stderr.strip()}")
        [made] = built.glob("minicam-*.whl")
        for old in out.glob("minicam-*.whl"):
            old.unlink()
        _copy(made, out / made.name)
    _copy(ROOT / "constraints.txt", out / "constraints.txt")
    return out / made.name


def _copy(source: Path, target: Path) -> None:
    """`source` to `target` under a temporary name in the same folder first, then renamed."""
    part = target.with_name(f".{target.name}.part")
    shutil.copyfile(source, part)
    os.replace(part, target)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="default: student/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    written = build(args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")), args.out)
    try:
        made = wheel(args.out)
    except RuntimeError as err:
        sys.exit(f"{args.out}: {len(written)} student notebooks, but no wheel: {err}")
    print(f"{args.out}: {len(written)} student notebooks, {made.name} and constraints.txt "
          f"(pip install {made.name} --constraint constraints.txt)")


if __name__ == "__main__":
    main()
