"""Sphinx configuration of the book (make book): MyST-NB reads the notebooks' stored outputs, the book
theme of Jupyter Book 1 draws the pages. book/build.py stages this folder's pages and the notebooks in
build/book-src/ and builds static HTML into build/book/.

Everything a page loads is a file of the book: MathJax 3 from npm (copied into _static/mathjax by
book/build.py), no widget JavaScript (explorer cells are frozen to their picture before the build),
no launch buttons, comments or analytics. The only web fonts are the Noto Sans subsets the Korean, Japanese and
Chinese text uses, copied from npm's @fontsource beside the pages (book/cjk.py).

Book extensions of this folder: book/search_cjk.py (the search language whose splitter also cuts Korean,
Japanese and Chinese text, and the snippets' text), book/search_scorer.js (the scorer), book/cjk.py
(lang="ko|ja|zh" and the fonts); book/_static/ holds the style sheet and scripts they use.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))      # search_cjk, cjk
project = "minicam: explaining CNN decisions"
author = "the minicam authors"
copyright = "2026, the minicam authors"
root_doc = "index"

extensions = ["myst_nb", "sphinx_book_theme", "sphinx_copybutton", "search_cjk", "cjk"]
exclude_patterns = ["_doctrees", "**.ipynb_checkpoints"]

# The stored outputs are the book: never re-executed by the build.
nb_execution_mode = "off"
# A widget view, should one remain, never wins over a picture or text.
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}          # no require.js or widget manager from cdnjs/jsdelivr
myst_enable_extensions = ["amsmath", "dollarmath"]
myst_dmath_double_inline = True
myst_heading_anchors = 3

# MathJax 3 from the local copy; `$...$` and `$$...$$` become \(...\) and \[...\] through dollarmath,
# and MathJax reads both forms.
mathjax_path = "mathjax/tex-mml-chtml.js"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"], ["$", "$"]],
                           "displayMath": [["\\[", "\\]"], ["$$", "$$"]],
                           "processEscapes": True}}

html_theme = "sphinx_book_theme"
html_title = project
html_theme_options = {
    "use_download_button": False,
    "use_fullscreen_button": True,
    "use_repository_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    # pydata-sphinx-theme 0.17 fills navbar_persistent (a search button) when it is not set, which draws
    # its header with a second ☰ and contents button before the book theme's own; its script binds the
    # first .primary-toggle/.secondary-toggle only, so the visible buttons opened nothing on a phone
    # (pydata-sphinx-theme #2451, sphinx-book-theme #988). Empty, as sphinx-book-theme's own default says:
    # no header, and the book theme's buttons (and its search button) are the ones bound.
    "navbar_persistent": [],
    # The footer of every page names the licence (LICENSE, copied beside the pages as LICENSE.txt).
    "extra_footer": ('<p class="minicam-license">The code is under the MIT License, the text and figures under '
                     'CC BY 4.0; the quoted passages of the five lecture documents remain their authors\' '
                     'and are quoted with attribution. See <a href="LICENSE.txt">LICENSE</a>.</p>'),
}
html_static_path = ["_static"]
html_css_files = ["minicam-book.css"]
html_js_files = [("minicam-book.js", {"defer": "defer"})]
# Sphinx's summaries fetch() each result's page, which file:// pages may not do: the snippets come from
# _static/search_summaries.js instead (book/search_cjk.py, book/_static/search-snippets.js).
html_show_search_summary = False
html_search_scorer = str(Path(__file__).resolve().parent / "search_scorer.js")
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None


def copy_license(app, exception):
    """The repository's LICENSE beside the pages, as LICENSE.txt (the footer links it)."""
    if exception is None and app.builder.format == "html":
        import os
        import shutil

        target = Path(app.outdir) / "LICENSE.txt"
        shutil.copyfile(Path(__file__).resolve().parents[1] / "LICENSE", str(target) + ".partial")
        os.replace(str(target) + ".partial", target)


def setup(app):
    app.connect("build-finished", copy_license)
