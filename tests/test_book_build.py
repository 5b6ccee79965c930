"""book/build.py's pieces that need no build: explorer cells frozen to their picture, and deck links.

The built book and slides themselves are checked in a browser by tests/test_book.py (`make browser`).
"""
import importlib.util
from pathlib import Path

from nbformat.v4 import new_code_cell, new_notebook, new_output

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
