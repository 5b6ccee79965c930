"""Build the book (`make book`) and the slide decks (`make slides`) from the notebooks' stored outputs.

    python book/build.py book      # build/book/index.html: Sphinx + MyST-NB with Jupyter Book 1's theme
    python book/build.py slides    # build/slides/NN_name.slides.html: one reveal.js deck per notebook

Nothing is executed: both read the outputs stored in notebooks/*.ipynb. Both are offline: MathJax 3
and reveal.js come from npm (book/package.json, installed into book/node_modules by `make install`)
and are copied next to the pages, so each output folder opens from disk (file://) or a USB stick.

The book is plain Sphinx with book/conf.py rather than the `jupyter-book` command: its table of contents
extension loads one that is not declared safe for parallel reading, so Sphinx would read on one process.

Explorer cells store their picture only inside the notebook's widget state (the explorer's Image
widget). A static page cannot run the widget, so both builds first replace every widget view by the
picture it showed when the notebook was executed, and drop the widget state (no widget JavaScript).
"""
import re
import shutil
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    # jsonschema (under nbformat) imports rfc3987_syntax when it is installed, which compiles dozens
    # of grammars at import: 3-4 s of CPU for a format ("iri") the notebook schema never uses.
    sys.modules.setdefault("rfc3987_syntax", None)
import nbformat  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
NODE_MODULES = BOOK / "node_modules"
STAGE = ROOT / "build" / "book-src"     # what Sphinx reads: book/index.md and the notebooks side by side
BOOK_OUT = ROOT / "build" / "book"
SLIDES_OUT = ROOT / "build" / "slides"
BOOK_PAGES = ["index.md"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def explorer_picture(state, model_id):
    """The base64 PNG of the first Image widget inside widget `model_id` (depth first), or None."""
    model = state.get(model_id)
    if model is None:
        return None
    if model.get("model_name") == "ImageModel":
        return next((b["data"] for b in model.get("buffers", []) if b.get("path") == ["value"]), None)
    for child in model.get("state", {}).get("children", []):
        found = explorer_picture(state, child.removeprefix("IPY_MODEL_"))
        if found is not None:
            return found
    return None


def freeze_widgets(nb):
    """The notebook with every widget view replaced by the picture it showed, and no widget state."""
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).pop(WIDGET_VIEW, None)
            picture = view and explorer_picture(state, view["model_id"])
            if picture:
                output["data"] = {"image/png": picture, "text/plain": "the explorer's picture, as stored"}
    return nb


def notebooks():
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def missing_npm_packages():
    """Stop with what to run when the npm packages are not installed."""
    wanted = [NODE_MODULES / "mathjax" / "es5", NODE_MODULES / "reveal.js" / "dist"]
    if not all(path.is_dir() for path in wanted):
        sys.exit(f"{NODE_MODULES} lacks mathjax or reveal.js; install them with: npm ci --prefix book")


def stage():
    """build/book-src/: the book's own pages, the notebooks with frozen explorers, the glossary."""
    shutil.rmtree(STAGE, ignore_errors=True)
    STAGE.mkdir(parents=True)
    for name in BOOK_PAGES:
        shutil.copy(BOOK / name, STAGE / name)
    for path in notebooks():
        nbformat.write(freeze_widgets(nbformat.read(path, as_version=4)), STAGE / path.name)
    for path in NOTEBOOKS.glob("*.md"):
        shutil.copy(path, STAGE / path.name)


def build_book():
    from sphinx.cmd.build import build_main

    missing_npm_packages()
    stage()
    shutil.rmtree(BOOK_OUT, ignore_errors=True)
    # Sphinx with book/conf.py on the staged pages, two processes, warnings as errors.
    status = build_main(["-q", "-W", "--keep-going", "-j", "2", "-b", "html", "-c", str(BOOK),
                         "-d", str(STAGE / "_doctrees"), str(STAGE), str(BOOK_OUT)])
    if status:
        sys.exit(f"the book did not build (Sphinx exit status {status}); see the messages above")
    shutil.copytree(NODE_MODULES / "mathjax" / "es5", BOOK_OUT / "_static" / "mathjax")
    print(f"the book: {BOOK_OUT / 'index.html'}")


def slides_exporter():
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.extra_template_basedirs = [str(BOOK)]
    config.SlidesExporter.template_name = "slides_template"
    config.SlidesExporter.reveal_url_prefix = "reveal.js"
    config.SlidesExporter.reveal_theme = "white"   # its font ships with reveal.js ("simple" loads Google Fonts)
    config.SlidesExporter.mathjax_url = "mathjax/tex-mml-chtml.js"
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    return SlidesExporter(config=config)


def copy_reveal(target):
    """The part of reveal.js a deck loads: its script and style, the white theme and its font, the notes plugin."""
    source = NODE_MODULES / "reveal.js"
    for name in ("dist/reveal.js", "dist/reveal.css", "dist/theme/white.css", "plugin/notes/notes.js"):
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source / name, target / name)
    shutil.copytree(source / "dist/theme/fonts/source-sans-pro", target / "dist/theme/fonts/source-sans-pro")


def deck_links(html):
    """Links between notebooks lead to their decks; a link to a Markdown page (the glossary) to the book's page."""
    html = re.sub(r'href="([\w.-]+)\.ipynb(?=["#])', r'href="\1.slides.html', html)
    return re.sub(r'href="([\w.-]+)\.md(?=["#])', r'href="../book/\1.html', html)


def build_slides():
    missing_npm_packages()
    shutil.rmtree(SLIDES_OUT, ignore_errors=True)
    SLIDES_OUT.mkdir(parents=True)
    exporter = slides_exporter()
    for path in notebooks():
        nb = freeze_widgets(nbformat.read(path, as_version=4))
        html, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        (SLIDES_OUT / f"{path.stem}.slides.html").write_text(deck_links(html), encoding="utf-8")
    shutil.copytree(NODE_MODULES / "mathjax" / "es5", SLIDES_OUT / "mathjax")
    copy_reveal(SLIDES_OUT / "reveal.js")
    print(f"the slides: {SLIDES_OUT}/*.slides.html")


if __name__ == "__main__":
    builds = {"book": build_book, "slides": build_slides}
    if len(sys.argv) != 2 or sys.argv[1] not in builds:
        sys.exit(f"usage: python book/build.py {{{'|'.join(builds)}}}")
    started = time.monotonic()
    builds[sys.argv[1]]()
    print(f"{sys.argv[1]} built in {time.monotonic() - started:.0f} s")
