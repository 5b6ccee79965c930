"""What `make student` hands out: every sentence of the student edition is true for a student, and the wheel
beside it holds the package and nothing of the course.

The teaching notebooks say a few things that hold for them only: the answer and test cells are folded, the
answer cell holds our solution, the test prints "correct". Those sentences stand in markdown cells of their
own tagged `remove-cell` (course/exercises.py, convention 5), which the student edition, the book and the
slides leave out. TEACHING_ONLY lists their phrases: each must be in the teaching notebooks (so this test
can fail), only in cells so tagged (every notebook, read directly), and nowhere in the student edition's
markdown, which must otherwise be the teaching notebook's markdown unchanged. The student edition is built
for BUILT only (nbgrader takes about 0.3 s a notebook, and 2 s once for its gradebook's schema): the
removal is one tag rule for every notebook, and the check of every notebook's tags above covers the rest.
"""
import re
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TAG = "remove-cell"
# The first notebook (its exercises, and the set-up sentences of its section 9) and one whose exercise
# heading is numbered ("## 11. Exercises (3 points)").
BUILT = [ROOT / "notebooks" / "00_introduction.ipynb", ROOT / "notebooks" / "05_gradcam_pp.ipynb"]

# Phrases true of the teaching notebooks only (the student edition has stubs, open cells, visible checks of
# the answer's form alone, and no `make`).
TEACHING_ONLY = [
    r"\bour solution\b",                       # the student edition's answer cell holds a stub
    r"\bin place of ours\b",
    r"cells are folded|a folded cell",         # its answer and test cells are open
    r"prints `correct`",                       # its test cells check the form only, and print nothing
    r"test checks the value",
    r"`make (?:student|grade)`",               # course tooling, run in the repository
    r"\bteaching notebooks?\b",
]
PATTERN = re.compile("|".join(f"(?:{p})" for p in TEACHING_ONLY), re.IGNORECASE)


def markdown(nb):
    return [cell for cell in nb.cells if cell.cell_type == "markdown"]


def tagged(cell) -> bool:
    return TAG in cell.metadata.get("tags", [])


@pytest.fixture(scope="module")
def teaching():
    return {path.stem: nbformat.read(path, as_version=4) for path in NOTEBOOKS}


@pytest.fixture(scope="module")
def student(tmp_path_factory, teaching):
    """The student edition of the BUILT notebooks and the wheel, built as `make student` builds them."""
    pytest.importorskip("nbgrader", reason="the student edition needs nbgrader (pip install -e '.[course]')")
    from course.student import build, wheel

    out = tmp_path_factory.mktemp("student")
    written = build(BUILT, out)
    assert [p.name for p in written] == [p.name for p in BUILT]
    return out, {p.stem: nbformat.read(p, as_version=4) for p in written}, wheel(out)


def test_each_teaching_only_phrase_is_in_the_teaching_notebooks(teaching):
    text = "\n".join(cell.source for nb in teaching.values() for cell in markdown(nb))
    for phrase in TEACHING_ONLY:
        assert re.search(phrase, text, re.IGNORECASE), f"{phrase!r} is in no teaching notebook: drop it from TEACHING_ONLY"


@pytest.mark.parametrize("stem", [p.stem for p in NOTEBOOKS])
def test_teaching_only_sentences_stand_in_cells_tagged_for_removal(teaching, stem):
    for cell in markdown(teaching[stem]):
        found = PATTERN.search(cell.source)
        assert tagged(cell) or not found, (
            f"{stem}, cell {cell.id}: {found.group(0)!r} holds for the teaching notebook only; say it in a "
            f"markdown cell of its own tagged {TAG!r}, or so that it is true in the student edition too")
    for cell in teaching[stem].cells:
        assert not tagged(cell) or cell.cell_type == "markdown", (
            f"{stem}, cell {cell.id}: a code cell tagged {TAG!r} would be missing from the student's run")


def test_the_student_edition_says_nothing_that_holds_for_the_teaching_notebooks_only(student, teaching):
    _, editions, _ = student
    assert editions.keys() == {p.stem for p in BUILT}
    for stem, nb in editions.items():
        for cell in markdown(nb):
            found = PATTERN.search(cell.source)
            assert not found, f"student/{stem}.ipynb, cell {cell.id}: {found.group(0)!r} is not true for a student"
        # Nothing else is left out or changed: the teaching notebook's markdown less the tagged cells.
        kept = [(c.id, c.source) for c in markdown(teaching[stem]) if not tagged(c)]
        assert [(c.id, c.source) for c in markdown(nb)] == kept, f"student/{stem}.ipynb: its markdown differs"
        assert not any(tagged(c) or c.metadata.get("jupyter", {}).get("source_hidden") for c in nb.cells), (
            f"student/{stem}.ipynb: a cell tagged {TAG!r} or folded")


def test_the_wheel_holds_minicam_and_nothing_of_the_course(student):
    out, _, made = student
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert made == out / f"minicam-{version}-py3-none-any.whl" and made.exists()
    assert sorted(p.name for p in out.glob("*.whl")) == [made.name]
    assert (out / "constraints.txt").read_text() == (ROOT / "constraints.txt").read_text()
    names = zipfile.ZipFile(made).namelist()
    package = [n for n in names if n.startswith("minicam/")]
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "minicam").rglob("*")
               if p.is_file() and (p.suffix in (".py", ".pt") or p.name == "results.json")}  # the claims' results
    assert set(package) == shipped, f"the wheel's minicam/ differs from the package: {set(package) ^ shipped}"
    others = [n for n in names if not n.startswith(("minicam/", f"minicam-{version}.dist-info/"))]
    assert others == [], f"the wheel holds files outside the package: {others}"
    assert not [n for n in names if n.endswith(".ipynb") or "/course/" in n or "/notebooks/" in n or "/tests/" in n]
