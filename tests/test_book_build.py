"""book/build.py's pieces that need no build: explorer cells frozen to their picture, deck links, and
what each edition (book/editions.py) makes of an exercise.

The built book and slides themselves are checked in a browser by tests/test_book.py (`make browser`).
"""
import copy
import importlib.util
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
book_build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(book_build)

VIEW = "application/vnd.jupyter.widget-view+json"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="


def widget(name, children=(), picture=None):
    model = {"model_name": name, "state": {"children": [f"IPY_MODEL_{c}" for c in children]}}
    if picture is not None:
        model["buffers"] = [{"path": ["value"], "encoding": "base64", "data": picture}]
    return model


def explorer_notebook(state):
    """A notebook with one explorer output (model 'box') and one plain text output."""
    view = new_output("execute_result", data={VIEW: {"model_id": "box", "version_major": 2}, "text/plain": "VBox(...)"})
    text = new_output("stream", text="held (16, 3, 64, 64)\n")
    nb = new_notebook(cells=[new_code_cell("explorer(vgg, images)", outputs=[view]), new_code_cell("print()", outputs=[text])])
    nb.metadata["widgets"] = {book_build.WIDGET_STATE: {"state": state}}
    return nb


STATE = {
    "box": widget("VBoxModel", ["sliders", "row"]),
    "sliders": widget("HBoxModel", ["slider"]),
    "slider": widget("IntSliderModel"),
    "row": widget("HBoxModel", ["picture", "caption"]),
    "picture": widget("ImageModel", picture=PNG),
    "caption": widget("HTMLModel"),
}


def test_the_explorers_picture_is_found_inside_its_boxes():
    assert book_build.explorer_picture(STATE, "box") == PNG
    assert book_build.explorer_picture(STATE, "sliders") is None
    assert book_build.explorer_picture(STATE, "not-there") is None


def test_a_widget_view_becomes_its_stored_picture_and_the_state_goes():
    nb = book_build.freeze_widgets(explorer_notebook(STATE))
    assert "widgets" not in nb.metadata
    assert nb.cells[0].outputs[0]["data"]["image/png"] == PNG
    assert VIEW not in nb.cells[0].outputs[0]["data"]
    assert nb.cells[1].outputs[0]["text"] == "held (16, 3, 64, 64)\n"


def test_a_widget_view_without_a_picture_keeps_its_text_only():
    state = {key: value for key, value in STATE.items() if key != "picture"}
    nb = book_build.freeze_widgets(explorer_notebook(state))
    assert nb.cells[0].outputs[0]["data"] == {"text/plain": "VBox(...)"}


def test_links_between_notebooks_lead_to_decks_and_the_glossary_to_the_book():
    html = '<a href="03_gradcam.ipynb">03</a> <a href="02_cam.ipynb#cam">x</a> <a href="glossary.md">g</a> ' \
           '<a href="https://arxiv.org/abs/1610.02391">paper</a> <a href="#top">top</a>'
    assert book_build.deck_links(html) == (
        '<a href="03_gradcam.slides.html">03</a> <a href="02_cam.slides.html#cam">x</a> '
        '<a href="../book/glossary.html">g</a> <a href="https://arxiv.org/abs/1610.02391">paper</a> '
        '<a href="#top">top</a>')


def test_a_link_to_the_glossary_stays_in_the_decks_own_edition():
    assert book_build.deck_links('<a href="glossary.md">g</a>', "book-self-study") == \
        '<a href="../book-self-study/glossary.html">g</a>'


# ---- the editions (book/editions.py) -------------------------------------------------------------

def exercise_notebook():
    """A question, its answer cell (solution region, stored output) and its test cell (a hidden region)."""
    def grader(**flags):
        return {"nbgrader": {"schema_version": 3, "locked": False, "task": False, "solution": False,
                             "grade": False, **flags}}
    answer = new_code_cell("answer = None   # an int\n### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION",
                           metadata=grader(solution=True, grade_id="ex1_answer"),
                           outputs=[new_output("stream", text="from the solution\n")], execution_count=3)
    test = new_code_cell('assert answer is not None, "set answer"\n### BEGIN HIDDEN TESTS\n'
                         'assert answer == 42, "not quite"\nprint("correct")\n### END HIDDEN TESTS',
                         metadata=grader(grade=True, locked=True, points=1, grade_id="ex1"),
                         outputs=[new_output("stream", text="correct\n")], execution_count=4)
    plain = new_code_cell("print(2)", outputs=[new_output("stream", text="2\n")], execution_count=2)
    for i, cell in enumerate([plain, answer, test]):
        cell.id = f"c{i}"
    return new_notebook(cells=[new_markdown_cell("**1.** What is 6 x 7?"), plain, answer, test])


def sources(nb):
    return [cell.source for cell in nb.cells]


def test_the_course_edition_keeps_the_stub_and_the_visible_check_only():
    teaching = exercise_notebook()
    before = copy.deepcopy(teaching)
    nb = book_build.editions.edition(teaching, "course")
    assert teaching == before, "the teaching notebook was changed"
    assert len(nb.cells) == 4
    stub, test = nb.cells[2].source, nb.cells[3].source
    assert "YOUR CODE HERE" in stub and "raise NotImplementedError()" in stub and "6 * 7" not in stub
    assert 'assert answer is not None, "set answer"' in test and "42" not in test and "correct" not in test
    assert nb.cells[2].outputs == [] and nb.cells[3].outputs == [], "a stub or a test shows the solution's output"
    assert nb.cells[1].outputs[0]["text"] == "2\n", "a plain cell lost its stored output"
    assert not any("6 * 7" in s or "BEGIN" in s for s in sources(nb))


def test_the_self_study_edition_adds_the_solution_folded_after_the_stub():
    nb = book_build.editions.edition(exercise_notebook(), "self-study")
    assert len(nb.cells) == 5
    stub, solution, test = nb.cells[2:]
    assert "YOUR CODE HERE" in stub.source
    assert solution.source == "answer = 6 * 7" and solution.id == "c1-solution"
    assert solution.metadata.tags == ["solution", "hide-cell"]
    assert solution.metadata.mystnb == {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}
    assert solution.outputs[0]["text"] == "from the solution\n"
    assert "42" not in test.source and "nbgrader" not in solution.metadata


def test_an_unknown_edition_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown edition 'teacher': the editions are course, self-study"):
        book_build.editions.edition(exercise_notebook(), "teacher")
