"""The two editions of the book and the slides (book/editions.py), as built by `make browser`.

The course edition (build/book/, build/slides/: `make book slides`) is what a course may publish: every file
built, whatever its kind (pages, decks, the search index, scripts, style sheets), is searched for every line
of every solution and hidden test of every notebook (tests/answer_key.py reads them from the nbgrader cells),
and the search index for the words only they hold. What a student needs is there: each answer cell's stub
and the visible checks of each test cell.

The self-study edition (build/book-self-study/, build/slides-self-study/: `make book slides
EDITION=self-study`) shows every solution, folded in the book, and still no hidden test. The browser test in
tests/test_book.py opens one fold.

Skips, saying why, where an edition is not built.
"""
from pathlib import Path

import nbformat
import pytest

import answer_key as ak

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
COURSE = {"book": BUILD / "book", "slides": BUILD / "slides"}
SELF_STUDY = {"book": BUILD / "book-self-study", "slides": BUILD / "slides-self-study"}
STUB = "# YOUR CODE HERE"
MARKERS = set(ak.SOLUTION)     # the solution shown is the region between them


def built(folder):
    edition = "" if folder in COURSE.values() else " EDITION=self-study"
    if not folder.is_dir() or not any(folder.iterdir()):
        pytest.skip(f"{folder.relative_to(ROOT)} is not built; run `make book slides{edition}` first")
    return folder


def every_file(folder):
    return sorted(p for p in built(folder).rglob("*") if p.is_file())


def pages(edition, stem):
    """The book page and the deck of notebook `stem` in `edition` (a dict like COURSE)."""
    return [built(edition["book"]) / f"{stem}.html", built(edition["slides"]) / f"{stem}.slides.html"]


def texts(path):
    return ak.readable_texts(path)


def shows(line, path_texts):
    return any(ak.occurs(line, text) for text in path_texts)


def exercise_cells():
    """(notebook stem, cell) for every nbgrader answer and test cell of the teaching notebooks."""
    for path in ak.NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            grader = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and (grader.get("solution") or grader.get("grade")):
                yield path.stem, cell


def test_the_answer_key_is_found_at_all():
    # The test below can fail only if there is something to look for.
    key = ak.answer_key()
    assert len(key.of("solution")) >= 50 and len(key.of("hidden test")) >= 50, \
        f"only {len(key.of('solution'))} solution and {len(key.of('hidden test'))} hidden-test lines found"
    assert len(ak.key_terms()) >= 20, f"only {len(ak.key_terms())} words of the key are nowhere else"


@pytest.mark.parametrize("kind", ["book", "slides"])
def test_the_course_edition_holds_no_line_of_a_solution_or_a_hidden_test(kind):
    files = every_file(COURSE[kind])
    found = ak.leaks(files, ak.answer_key().lines)
    report = [f"{Path(f).relative_to(ROOT)}: {hits[:3]}" for f, hits in found.items()]
    assert not found, f"{len(found)} of {len(files)} built files hold the answer key:\n" + "\n".join(report)


def test_the_course_search_index_holds_no_word_only_the_key_has():
    terms = ak.searchindex_terms(built(COURSE["book"]) / "searchindex.js")
    assert len(terms) > 500, f"the search index holds {len(terms)} terms: is it complete?"
    leaked = sorted(terms & ak.key_terms())
    assert not leaked, f"the search index holds words that only solutions and hidden tests contain: {leaked}"


def test_the_course_edition_shows_each_stub_and_each_visible_check():
    missing = []
    for stem, cell in exercise_cells():
        grader = cell.metadata.nbgrader
        if grader.get("solution"):
            wanted = [STUB]
        else:
            _, visible = ak.split_region(cell.source, ak.HIDDEN)
            wanted = [ak.normal(line) for line in visible if line.strip().startswith("assert")]
        for page in pages(COURSE, stem):
            page_texts = texts(page)
            missing += [f"{page.name} {grader['grade_id']}: {line}" for line in wanted if not shows(line, page_texts)]
    assert not missing, "the course edition lacks what a student answers with:\n" + "\n".join(missing[:20])


def test_the_self_study_edition_shows_every_solution_and_no_hidden_test():
    key, missing = ak.answer_key(), []
    for stem in sorted({line.notebook for line in key.of("solution")}):
        for page in pages(SELF_STUDY, stem):
            page_texts = texts(page)
            missing += [f"{page.name}: {line.text}" for line in key.of("solution")
                        if line.notebook == stem and line.text not in MARKERS and not shows(line.text, page_texts)]
    assert not missing, f"{len(missing)} solution lines are not in the self-study edition:\n" + "\n".join(missing[:20])
    files = every_file(SELF_STUDY["book"]) + every_file(SELF_STUDY["slides"])
    found = ak.leaks(files, key.of("hidden test"))
    assert not found, "the self-study edition holds hidden tests:\n" + "\n".join(f"{f}: {h[:3]}" for f, h in found.items())


def test_the_self_study_search_index_holds_no_word_only_the_hidden_tests_have():
    key = ak.answer_key()
    solutions = "\n".join(line.text for line in key.lines + key.ignored if line.kind == "solution")
    terms = ak.searchindex_terms(built(SELF_STUDY["book"]) / "searchindex.js")
    assert terms & ak.key_terms(("solution",)), "the self-study index holds no word of the solutions"
    leaked = sorted(terms & ak.key_terms(("hidden test",), allowed=solutions))
    assert not leaked, f"the self-study search index holds words only hidden tests contain: {leaked}"
