"""book/slide_metadata.py: the slide type of every cell by its rules, and every notebook carrying them.

The rules are in the script's docstring. The last tests check the real notebooks: each cell's stored
`metadata.slideshow.slide_type` is what the rules give (run `python book/slide_metadata.py
notebooks/*.ipynb` after editing a notebook), and each deck has the shape the issue asks for: the title
first, a slide per section, the exercises as the last slide.
"""
import copy
import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_raw_cell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))

spec = importlib.util.spec_from_file_location("slide_metadata", ROOT / "book" / "slide_metadata.py")
slide_metadata = importlib.util.module_from_spec(spec)
spec.loader.exec_module(slide_metadata)


def md(text):
    return new_markdown_cell(text)


def code(text="x = 1"):
    return new_code_cell(text)


# (cell, the type the rules give), in notebook order: one case of every rule.
SUITE_SHAPE = [
    (md("# 01 · A title\n\nWhat you will learn."), "slide"),                 # rule 3
    (md("We import what we need and seed torch."), "skip"),                  # rule 2: its sentence
    (code("import torch"), "skip"),                                          # rule 2: the first code cell
    (md("## 1. The idea\n\nSome prose."), "slide"),                          # rule 3
    (code("y = 2"), "fragment"),                                             # rule 6: code after a heading
    (md("The result says that ..."), "fragment"),                            # rule 7: the reading of a result
    (md("Now the gradient by hand:"), "subslide"),                           # rule 5: a sentence before code
    (code("g = 3"), "fragment"),                                             # rule 6
    (code("assert g == 3"), "fragment"),                                     # rule 6: a second step
    (md("### 1.1 A detail"), "subslide"),                                    # rule 4
    (md(""), "-"),                                                           # rule 7: empty
    (new_raw_cell("raw"), "-"),                                              # rule 7: raw
    (md("## 2. Explore"), "slide"),
    (code("explorer(model, images)"), "fragment"),
    (md("## Exercises\n\n**1.** What is ...?"), "slide"),                    # rule 1
    (code("answer = None"), "-"),                                            # rule 1
    (md("**2.** Which layer ...?"), "-"),
    (md("### Hints"), "-"),
]


def test_every_rule_on_a_notebook_of_the_suites_shape():
    cells = [cell for cell, _ in SUITE_SHAPE]
    assert slide_metadata.slide_types(cells) == [kind for _, kind in SUITE_SHAPE]


def test_a_set_up_section_holding_only_the_imports_is_skipped_whole():
    cells = [md("# 03 · Title"), md("## 0. Set-up\n\nImports."), code("import torch"), md("## 1. Idea")]
    assert slide_metadata.slide_types(cells) == ["slide", "skip", "skip", "slide"]


def test_a_set_up_section_with_more_in_it_keeps_its_heading():
    cells = [md("# 07 · Title"), md("## 0. Set-up"), code("import torch"), md("We keep 100 pairs:"), code("pairs")]
    assert slide_metadata.slide_types(cells) == ["slide", "slide", "skip", "subslide", "fragment"]


@pytest.mark.parametrize("heading", ["## Exercises", "## 11. Exercises", "## 7. Exercises  ", "## Exercises (6 points)", "## 9. Exercises (1 point)"])
def test_the_exercises_heading_numbered_or_not(heading):
    cells = [md("# Title"), code(), md(heading), md("**1.**"), code()]
    assert slide_metadata.slide_types(cells)[2:] == ["slide", "-", "-"]


def test_a_heading_named_like_exercises_is_a_section():
    cells = [md("# Title"), code(), md("## Exercises for the reader of 05"), code()]
    assert slide_metadata.slide_types(cells)[2:] == ["slide", "fragment"]


def test_apply_overwrites_only_the_slide_type_and_is_idempotent():
    nb = new_notebook(cells=copy.deepcopy([cell for cell, _ in SUITE_SHAPE]))
    nb.cells[3].metadata["tags"] = ["keep"]
    nb.cells[3].metadata["slideshow"] = {"slide_type": "notes", "data": {"x": "1"}}
    assert slide_metadata.apply(nb) == len(SUITE_SHAPE)
    assert nb.cells[3].metadata == {"tags": ["keep"], "slideshow": {"slide_type": "slide", "data": {"x": "1"}}}
    assert [c.metadata["slideshow"]["slide_type"] for c in nb.cells] == [kind for _, kind in SUITE_SHAPE]
    assert slide_metadata.apply(nb) == 0
    assert slide_metadata.differences(nb) == []


def test_the_command_line_checks_then_writes(tmp_path, capsys):
    path = tmp_path / "nb.ipynb"
    nbformat.write(new_notebook(cells=copy.deepcopy([cell for cell, _ in SUITE_SHAPE])), path)
    with pytest.raises(SystemExit, match="18 cell"):
        slide_metadata.main(["--check", str(path)])
    slide_metadata.main([str(path)])
    assert "slide types set" in capsys.readouterr().out
    before = path.read_bytes()
    slide_metadata.main([str(path)])          # already right: not rewritten
    slide_metadata.main(["--check", str(path)])
    assert path.read_bytes() == before


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_carries_its_slide_types(path):
    wrong = slide_metadata.differences(nbformat.read(path, as_version=4))
    assert not wrong, (f"{path.name}: {len(wrong)} cell(s) without the slide type the rules give, first "
                       f"{wrong[:3]} as (cell, stored, rule); run: python book/slide_metadata.py notebooks/*.ipynb")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_deck_starts_with_its_title_and_ends_with_its_exercises(path):
    cells = nbformat.read(path, as_version=4).cells
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in cells]
    assert cells[0].source.startswith("# ") and kinds[0] == "slide", f"{path.name}: the title is not the first slide"
    starts = [i for i, kind in enumerate(kinds) if kind in ("slide", "subslide")]
    last = cells[starts[-1]].source.splitlines()[0]
    assert "Exercises" in last and kinds[starts[-1]] == "slide", f"{path.name}: the last slide is {last!r}"
    assert all(k != "skip" for k in kinds[starts[-1]:]), f"{path.name}: an exercise is skipped"
    sections = [i for i, cell in enumerate(cells) if cell.cell_type == "markdown" and cell.source.startswith("## ")]
    assert all(kinds[i] in ("slide", "skip") for i in sections), f"{path.name}: a section does not start a slide"
