"""The answer key of the notebooks, as the leak tests look for it in the book and the slides.

Read straight from the nbgrader cells of notebooks/*.ipynb, by the markers of course/exercises.py (not by
book/editions.py, the code under test): the lines of every solution region (``### BEGIN SOLUTION`` ...
``### END SOLUTION`` in a cell with ``nbgrader.solution``) and of every hidden-test region (``### BEGIN
HIDDEN TESTS`` ... ``### END HIDDEN TESTS`` in a cell with ``nbgrader.grade``), the marker lines included.

A line is looked for with its whitespace collapsed, as a run of whole words (``answer = 2`` is not found
in ``answer = 20``). Ignored, because finding them proves nothing: blank lines, and lines that also occur
as a line of the visible part of some notebook (``try:``, ``with torch.no_grad():``, ``for i in
range(2):`` ...), or inside a visible line (a question that names the call its answer makes). The visible part is every markdown cell, every code cell outside those regions, and the
text outputs of every cell but the answer and test cells (whose stored outputs come from the solutions
and the hidden tests).

The search index holds words, not lines: `key_terms` are the index terms (Sphinx's own English splitter,
stemmer and filter, as Sphinx's IndexBuilder applies them) of the regions that occur nowhere in the
visible part, nor in the book's own pages (book/index.md, notebooks/*.md).
"""
from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PAGES = [ROOT / "book" / "index.md", *sorted((ROOT / "notebooks").glob("*.md"))]
SOLUTION = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
TAG = re.compile(r"<[^>]*>")
DATA_URL = re.compile(r"data:[^\"'\s)]{100,}")   # inline pictures: megabytes, no text


def normal(text: str) -> str:
    """`text` with every run of white space one space, and none at the ends."""
    return " ".join(text.split())


@dataclass
class Line:
    notebook: str
    grade_id: str
    kind: str        # "solution" or "hidden test"
    text: str        # normalised


@dataclass
class AnswerKey:
    lines: list[Line]            # the lines looked for
    ignored: list[Line]          # the lines of the regions that are blank or also visible
    visible_text: str            # every visible part, one string

    def of(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line.kind == kind]


def split_region(source: str, markers: tuple[str, str]) -> tuple[list[str], list[str]]:
    """(the region's lines with their two marker lines, every other line) of a cell's source."""
    inside, region, rest = False, [], []
    for line in source.splitlines():
        if line.strip() == markers[0]:
            inside = True
        if inside:
            region.append(line)
        else:
            rest.append(line)
        if line.strip() == markers[1]:
            inside = False
    return region, rest


def output_text(cell) -> list[str]:
    out = []
    for output in cell.get("outputs", []):
        for text in (output.get("text"), output.get("data", {}).get("text/plain")):
            if text:
                out.append(text if isinstance(text, str) else "".join(text))
    return out


@functools.cache
def answer_key() -> AnswerKey:
    found, visible = [], []
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            grader = cell.metadata.get("nbgrader", {})
            markers, kind = (SOLUTION, "solution") if grader.get("solution") else \
                (HIDDEN, "hidden test") if grader.get("grade") else (None, None)
            if cell.cell_type != "code" or markers is None:
                visible += [cell.source, *output_text(cell)]
                continue
            region, rest = split_region(cell.source, markers)
            visible.append("\n".join(rest))
            found += [Line(path.stem, grader.get("grade_id", "?"), kind, normal(text)) for text in region]
    visible += [page.read_text(encoding="utf-8") for page in PAGES]
    visible_lines = {normal(line) for text in visible for line in text.splitlines()}
    visible_text = normal("\n".join(visible))
    lines = [line for line in found
             if line.text and line.text not in visible_lines and not occurs(line.text, visible_text)]
    ignored = [line for line in found if line not in lines]
    return AnswerKey(lines, ignored, "\n".join(visible))


# ---- the search index's words -------------------------------------------------------------------

@functools.cache
def _english():
    from sphinx.search.en import SearchEnglish

    return SearchEnglish({})


def index_terms(text: str) -> set[str]:
    """The terms Sphinx's search index would hold for `text` (sphinx.search.IndexBuilder.feed)."""
    lang, terms = _english(), set()
    for word in lang.split(text):
        stemmed = lang.stem(word).lower()
        if not lang.word_filter(stemmed) and lang.word_filter(word):
            stemmed = word
        if lang.word_filter(stemmed):
            terms.add(stemmed)
    return terms


def key_terms(kinds=("solution", "hidden test"), allowed: str = "") -> set[str]:
    """The index terms of the regions of `kinds` that no visible part holds (nor the text `allowed`)."""
    key = answer_key()
    regions = "\n".join(line.text for line in key.lines + key.ignored if line.kind in kinds)
    return index_terms(regions) - index_terms(key.visible_text + "\n" + allowed)


def searchindex_terms(path: Path) -> set[str]:
    """Every term of a built searchindex.js (its "terms" and "titleterms")."""
    import json

    text = path.read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    return set(index["terms"]) | set(index["titleterms"])


# ---- the built files ----------------------------------------------------------------------------

def readable_texts(path: Path) -> list[str]:
    """The text of a built file as a reader or a program may see it, normalised: for HTML, both the
    page's text (tags dropped, entities decoded: code highlighted word by word reads as its line) and the
    whole file with its entities decoded (attributes, scripts); for any other UTF-8 file, its text. A
    file that is not UTF-8 (pictures, fonts) has none."""
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    raw = DATA_URL.sub("data:", raw)
    if path.suffix in (".html", ".htm", ".xml", ".svg"):
        return [normal(html.unescape(TAG.sub("", raw))), normal(html.unescape(raw))]
    return [normal(raw)]


def _wordy(char: str) -> bool:
    return char.isalnum() or char == "_"


def occurs(needle: str, text: str) -> bool:
    """Whether `needle` occurs in `text` with no word character joined to either end."""
    start = text.find(needle)
    while start >= 0:
        before = text[start - 1] if start else " "
        after = text[start + len(needle):start + len(needle) + 1] or " "
        if not (_wordy(needle[0]) and _wordy(before)) and not (_wordy(needle[-1]) and _wordy(after)):
            return True
        start = text.find(needle, start + 1)
    return False


def leaks(files: list[Path], lines: list[Line]) -> dict[str, list[str]]:
    """{file: [the key lines it holds, each with the first notebook and exercise it is from]} over `files`."""
    first = {}
    for line in lines:
        first.setdefault(line.text, f"{line.notebook} {line.grade_id} ({line.kind})")
    found = {}
    for path in files:
        texts = readable_texts(path)
        hits = [f"{where}: {text}" for text, where in first.items() if any(occurs(text, t) for t in texts)]
        if hits:
            found[str(path)] = hits
    return found
