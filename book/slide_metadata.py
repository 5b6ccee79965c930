"""Set every cell's reveal.js slide type (`metadata.slideshow.slide_type`) by fixed rules.

    python book/slide_metadata.py notebooks/*.ipynb           # write the slide types
    python book/slide_metadata.py --check notebooks/*.ipynb   # exit 1 and list the cells that differ

Deterministic and idempotent: a cell's type depends only on the cells' kinds and their markdown
headings, any earlier type is overwritten, and a notebook whose types are already right is not
rewritten. Only `metadata.slideshow.slide_type` changes (outputs stay as they are, so no re-execution).
Run it again after editing a notebook; tests/test_slide_metadata.py fails until then.

The notebooks' arc is: a title cell, numbered sections (`## 1. ...`), in each a sentence before every
code cell, and `## Exercises` at the end. The deck follows it. The first rule that applies wins:

1. Exercises, one last slide: the `## Exercises` heading (numbered or not) starts a slide, and every
   cell after it continues that slide ("-").
2. Set-up skipped: the notebook's first code cell (imports, seeds, helpers) is "skip", and so is the
   cell just before it when that is a plain sentence ("We import what we need ...") or a `##` heading
   whose section holds nothing else ("## 0. Set-up").
3. A `# ` or `## ` heading (the title, a numbered section) starts a slide: "slide". The summary in Korean,
   Japanese and Chinese just after the title (a cell of `<div lang=...>` blocks) is a sub-slide below it, so
   that the title slide shows the title alone and → goes on to section 1.
4. A `### ` (or deeper) heading starts a sub-slide, below its section: "subslide".
5. One idea a slide: a sentence directly followed by a code cell starts a sub-slide: "subslide".
6. Derivations as fragments: every other code cell is a "fragment": after the sentence that announces
   it, each computation appears with its result on a key press, and a step of several code cells
   reveals them one after another.
7. Every other markdown cell (the reading of a result, a second paragraph) is a "fragment" too, so the
   comment appears after the result it comments. Raw cells and empty cells continue the slide ("-").
"""
import re
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.modules.setdefault("rfc3987_syntax", None)  # a slow import nbformat does not need (book/build.py)
import nbformat  # noqa: E402

HEADING = re.compile(r"^(#{1,6}) ")
LANG_SUMMARY = re.compile(r'^<div lang="(ko|ja|zh)">', re.M)
EXERCISES = re.compile(r"^## (\d+\. )?Exercises( \(\d+ points?\))?\s*$")


def heading_level(cell):
    """The level of a markdown cell that starts with a heading (1 for '# '), else 0."""
    match = HEADING.match(cell.source) if cell.cell_type == "markdown" else None
    return len(match.group(1)) if match else 0


def is_sentence(cell):
    """A markdown cell of prose: not a heading, not empty."""
    return cell.cell_type == "markdown" and bool(cell.source.strip()) and not heading_level(cell)


def setup_cells(cells):
    """The indices rule 2 skips: the first code cell, and the sentence or lone heading before it."""
    first = next((i for i, cell in enumerate(cells) if cell.cell_type == "code"), None)
    if first is None:
        return set()
    skipped = {first}
    if first > 0:
        before = cells[first - 1]
        alone = first + 1 == len(cells) or 0 < heading_level(cells[first + 1]) <= 2
        if is_sentence(before) or (heading_level(before) == 2 and alone):
            skipped.add(first - 1)
    return skipped


def slide_types(cells):
    """The slide type of every cell, by the rules in this module's docstring."""
    skipped, types, exercises = setup_cells(cells), [], False
    for i, cell in enumerate(cells):
        level = heading_level(cell)
        following = cells[i + 1] if i + 1 < len(cells) else None
        if exercises:
            kind = "-"
        elif level == 2 and EXERCISES.match(cell.source.splitlines()[0]):
            kind, exercises = "slide", True
        elif i in skipped:
            kind = "skip"
        elif level in (1, 2):
            kind = "slide"
        elif i == 1 and heading_level(cells[0]) == 1 and LANG_SUMMARY.search(cell.source or ""):
            kind = "subslide"
        elif level > 2:
            kind = "subslide"
        elif is_sentence(cell) and following is not None and following.cell_type == "code":
            kind = "subslide"
        elif cell.cell_type == "code" or is_sentence(cell):
            kind = "fragment"
        else:
            kind = "-"
        types.append(kind)
    return types


def differences(nb):
    """(cell index, stored type, type by the rules) for every cell whose stored type is not the rules'."""
    return [(i, cell.metadata.get("slideshow", {}).get("slide_type"), kind)
            for i, (cell, kind) in enumerate(zip(nb.cells, slide_types(nb.cells)))
            if cell.metadata.get("slideshow", {}).get("slide_type") != kind]


def apply(nb):
    """Set every cell's slide type in place; return how many changed."""
    changed = differences(nb)
    for i, _, kind in changed:
        nb.cells[i].metadata.setdefault("slideshow", {})["slide_type"] = kind
    return len(changed)


def main(argv):
    check = "--check" in argv
    paths = [Path(a) for a in argv if a != "--check"]
    if not paths:
        sys.exit("usage: python book/slide_metadata.py [--check] NOTEBOOK.ipynb ...")
    wrong = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if check:
            for i, stored, kind in differences(nb):
                print(f"{path}: cell {i} has slide type {stored!r}; the rules give {kind!r}")
                wrong += 1
        elif apply(nb):
            nbformat.write(nb, path)
            print(f"{path}: slide types set")
    if wrong:
        sys.exit(f"{wrong} cell(s) differ; run: python book/slide_metadata.py {' '.join(map(str, paths))}")


if __name__ == "__main__":
    main(sys.argv[1:])
