"""The student edition: every notebook with its solutions replaced by nbgrader's stubs.

    python -m course.student [--out student] [NOTEBOOK ...]      (make student)

Runs `nbgrader generate_assignment` (course/nbgrader_config.py) on each notebook in a temporary course
folder and writes the result to <out>/NN_topic.ipynb, with the other files of notebooks/ that the
notebooks link to (glossary.md). In the student edition each solution region is ``# YOUR CODE HERE`` /
``raise NotImplementedError()``, the hidden tests are gone, every output is cleared (a student runs the
notebook top to bottom first, and the saved widget state goes with them), test cells are read-only,
and answer and test cells are open.
"""
from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
from pathlib import Path

import nbformat

from course.nbgrader_tools import generate, load_config, make_course

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("*.md",)   # files beside the notebooks that the hand-out needs


def build(notebooks: list[Path], out: Path) -> list[Path]:
    """Write the student edition of each notebook to `out` (its old notebooks removed first)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.ipynb"):
        old.unlink()
    written = []
    with tempfile.TemporaryDirectory(prefix="minicam-student-") as tmp:
        root, config = make_course(Path(tmp), notebooks), load_config()
        for path in notebooks:
            nb = nbformat.read(generate(root, path.stem, config), as_version=4)
            nb.metadata.pop("widgets", None)   # the saved state of widgets whose outputs are gone
            nbformat.write(nb, out / path.name)
            written.append(out / path.name)
    for pattern in EXTRAS:
        for extra in sorted({p.parent for p in notebooks}):
            for path in extra.glob(pattern):
                shutil.copyfile(path, out / path.name)
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    parser.add_argument("--out", type=Path, default=ROOT / "student", help="default: student/")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.WARNING)
    written = build(args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")), args.out)
    print(f"{args.out}: {len(written)} student notebooks")


if __name__ == "__main__":
    main()
