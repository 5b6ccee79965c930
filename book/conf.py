"""Sphinx configuration of the book (make book): MyST-NB reads the notebooks' stored outputs, the book
theme of Jupyter Book 1 draws the pages. book/build.py stages this folder's pages and the notebooks in
build/book-src/ and builds static HTML into build/book/.

Everything a page loads is a file of the book: MathJax 3 from npm (copied into _static/mathjax by
book/build.py), no widget JavaScript (explorer cells are frozen to their picture before the build),
no launch buttons, comments, analytics or web fonts.
"""
project = "minicam: explaining CNN decisions"
author = "the minicam authors"
copyright = "2026, the minicam authors"
root_doc = "index"

extensions = ["myst_nb", "sphinx_book_theme", "sphinx_copybutton"]
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
}
html_show_search_summary = False   # summaries are fetched with fetch(), which file:// pages may not use
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
