"""Build the book (`make book`) and the slide decks (`make slides`) from the notebooks' stored outputs.

    python book/build.py book      # build/book/index.html: Sphinx + MyST-NB with Jupyter Book 1's theme
    python book/build.py slides    # build/slides/NN_name.slides.html: one reveal.js deck per notebook
    python book/build.py book --edition self-study     # build/book-self-study/ (make book EDITION=self-study)
    python book/build.py slides --edition self-study   # build/slides-self-study/

Two editions (book/editions.py says what each shows of an exercise): the course edition (the default),
which holds no solution and no hidden test, and the self-study edition, which adds each solution, folded.
Each edition has its own output folders, so both can be built side by side.

Nothing is executed: both read the outputs stored in notebooks/*.ipynb. Both are offline: MathJax 3,
reveal.js and the Noto Sans web fonts come from npm (book/package.json, installed into book/node_modules
by `make install`) and are copied next to the pages (of the fonts, only the subsets the Korean, Japanese
and Chinese text uses: book/cjk.py), so each output folder opens from disk (file://) or a USB stick.

The book is plain Sphinx with book/conf.py rather than the `jupyter-book` command: its table of contents
extension loads one that is not declared safe for parallel reading, so Sphinx would read on one process.
Sphinx works in build/<book>-src/ (the staged pages, its doctrees, MyST-NB's jupyter_execute/ copies of
the staged notebooks, the HTML), and the finished HTML then replaces build/<book>/ in one rename; the
decks likewise. A failed build leaves the previous output as it was.

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
if str(BOOK) not in sys.path:
    sys.path.insert(0, str(BOOK))       # book/editions.py, also when tests load this file by its path
import cjk  # noqa: E402
import editions  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
NODE_MODULES = BOOK / "node_modules"
BUILD = ROOT / "build"
BOOK_PAGES = ["index.md", "course_plan.md"]
TITLE = "minicam: explaining CNN decisions"     # book/conf.py's html_title
TITLES = {"course": TITLE, "self-study": f"{TITLE} (self-study edition, with solutions)"}
# MyST-NB's copies of the notebooks, beside build/book/ before the editions: they held every solution.
LEGACY = [BUILD / "jupyter_execute"]

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


def book_out(edition):
    """build/book/ for the course edition, build/book-<edition>/ for another."""
    return BUILD / ("book" if edition == "course" else f"book-{edition}")


def slides_out(edition):
    return BUILD / ("slides" if edition == "course" else f"slides-{edition}")


def staged(path, edition):
    """Notebook `path` as edition `edition` shows it, its explorers frozen to their pictures."""
    return editions.edition(freeze_widgets(nbformat.read(path, as_version=4)), edition)


def put_in_place(new, out):
    """Folder `new` becomes `out` by a rename; the previous `out` goes only once `new` is in place."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    new.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def missing_npm_packages():
    """Stop with what to run when the npm packages are not installed."""
    wanted = [NODE_MODULES / "mathjax" / "es5", NODE_MODULES / "reveal.js" / "dist"] + \
        [NODE_MODULES / "@fontsource" / name for _, name in cjk.FONTS.values()]
    if not all(path.is_dir() for path in wanted):
        sys.exit(f"{NODE_MODULES} lacks mathjax, reveal.js or the @fontsource Noto Sans fonts; "
                 "install them with: npm ci --prefix book")


def stage(edition, pages):
    """`pages`: the book's own pages, the edition's notebooks with frozen explorers, the glossary."""
    pages.mkdir(parents=True)
    for name in BOOK_PAGES:
        shutil.copy(BOOK / name, pages / name)
    for path in notebooks():
        nbformat.write(staged(path, edition), pages / path.name)
    for path in NOTEBOOKS.glob("*.md"):
        shutil.copy(path, pages / path.name)


def build_book(edition):
    from sphinx.cmd.build import build_main

    missing_npm_packages()
    for legacy in LEGACY:
        shutil.rmtree(legacy, ignore_errors=True)
    out = book_out(edition)
    work = out.with_name(out.name + "-src")
    shutil.rmtree(work, ignore_errors=True)
    stage(edition, work / "pages")
    # Sphinx with book/conf.py on the staged pages, two processes, warnings as errors. MyST-NB writes its
    # jupyter_execute/ beside the output folder: inside `work`, one per edition.
    status = build_main(["-q", "-W", "--keep-going", "-j", "2", "-b", "html", "-c", str(BOOK),
                         "-D", f"html_title={TITLES[edition]}", "-d", str(work / "doctrees"),
                         str(work / "pages"), str(work / "html")])
    if status:
        sys.exit(f"the book did not build (Sphinx exit status {status}); see the messages above")
    shutil.copytree(NODE_MODULES / "mathjax" / "es5", work / "html" / "_static" / "mathjax")
    put_in_place(work / "html", out)
    print(f"the book, {edition} edition: {out / 'index.html'}")


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


def deck_links(html, book="book"):
    """Links between notebooks lead to their decks; a link to a Markdown page (the glossary) to its page in
    the book of the same edition (build/<book>/)."""
    html = re.sub(r'href="([\w.-]+)\.ipynb(?=["#])', r'href="\1.slides.html', html)
    return re.sub(r'href="([\w.-]+)\.md(?=["#])', rf'href="../{book}/\1.html', html)


def build_slides(edition):
    missing_npm_packages()
    out = slides_out(edition)
    new = out.with_name(out.name + ".partial")
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(parents=True)
    exporter = slides_exporter()
    for path in notebooks():
        html, _ = exporter.from_notebook_node(staged(path, edition), resources={"metadata": {"name": path.stem}})
        html = cjk.mark_deck(deck_links(html, book_out(edition).name))    # lang="ko|ja|zh", the fonts' CSS
        (new / f"{path.stem}.slides.html").write_text(html, encoding="utf-8")
    shutil.copytree(NODE_MODULES / "mathjax" / "es5", new / "mathjax")
    copy_reveal(new / "reveal.js")
    cjk.font_css(new, NODE_MODULES)     # _static/: only the Noto Sans subsets the decks' CJK text uses
    put_in_place(new, out)
    print(f"the slides, {edition} edition: {out}/*.slides.html")


def usage_error(message):
    print(f"book/build.py: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    builds = {"book": build_book, "slides": build_slides}
    usage = f"usage: python book/build.py {{{'|'.join(builds)}}} [--edition {{{'|'.join(editions.EDITIONS)}}}]"
    edition = "course"
    if len(argv) == 3 and argv[1] == "--edition":
        edition = argv[2]
    elif len(argv) == 2 and argv[1].startswith("--edition="):
        edition = argv[1].removeprefix("--edition=")
    elif len(argv) != 1:
        usage_error(usage)
    if argv[0] not in builds:
        usage_error(f"no build {argv[0]!r}; {usage}")
    if edition not in editions.EDITIONS:
        usage_error(f"no edition {edition!r}: the editions are {', '.join(editions.EDITIONS)}")
    started = time.monotonic()
    builds[argv[0]](edition)
    print(f"{argv[0]} ({edition} edition) built in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main(sys.argv[1:])
