"""The built book and slides (make book slides), opened from files as a student would, network refused.

Static checks on every page of build/book/ and build/slides/: no resource (script, style sheet, image,
font, frame) comes from the web, every local file a page loads exists, every relative link leads to a
page that exists (and to the anchor it names), none is absolute (a USB stick), no live widget is left.
Then headless Chromium (Debian's, driven by Playwright, as in tests/test_browser.py) opens the book and
one deck from file:// with every request that is not a local file refused and recorded: a notebook page
shows its figures and its equations as typeset math, the search page finds "Grad-CAM++", and the deck
advances to the next slide, and a self-study page opens a folded solution. Screenshots are kept in artifacts/book/.

Skips, saying why, where the book or slides are not built (`make book slides`), or where Chromium
(`bash tests/setup_browser.sh`) or playwright is missing. `make browser` builds both first.
"""
import contextlib
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "build" / "book"
SLIDES = ROOT / "build" / "slides"
SELF_STUDY = ROOT / "build" / "book-self-study"
NOTEBOOKS = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
ARTIFACTS = ROOT / "artifacts" / "book"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE = "03_gradcam"        # a notebook page with figures and many equations
DECK = "03_gradcam"
FOLDED = "08_evaluation"   # a self-study page with several folded solutions
BUDGET_S = 90              # the browser part of this file, both tests together
REMOTE = re.compile(r"^(https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:@import\s+|url\()\s*["']?([^"')\s;]+)""")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Tags whose attribute the browser loads by itself (a plain <a href> is only followed when clicked).
LOADED = {("script", "src"), ("link", "href"), ("img", "src"), ("iframe", "src"), ("source", "src"),
          ("video", "src"), ("audio", "src"), ("embed", "src"), ("object", "data"), ("video", "poster")}


def built(folder, command):
    if not (folder / "index.html").exists() and not any(folder.glob("*.slides.html")):
        pytest.skip(f"{folder.relative_to(ROOT)} is not built; run `{command}` first")
    return folder


class Page(HTMLParser):
    """The loaded resources, the links and the ids of one HTML page."""

    def __init__(self, path):
        super().__init__()
        self.loaded, self.links, self.ids = [], [], set()
        # Inline pictures (data: URLs, megabytes in a deck) are neither links nor files: cut them short.
        self.feed(re.sub(r"data:[^\"'\s)]{100,}", "data:", path.read_text(encoding="utf-8")))

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        for name in ("src", "href", "data", "poster"):
            value = attrs.get(name)
            if value is None:
                continue
            if (tag, name) in LOADED:
                self.loaded.append(value)
            elif tag == "a" and name == "href":
                self.links.append(value)


def html_pages():
    """The book's pages (not the theme's template snippets in _static/) and the decks."""
    return [p for p in sorted(BOOK.rglob("*.html")) if "_static" not in p.relative_to(BOOK).parts] \
        + sorted(SLIDES.glob("*.html"))


def local_target(page, ref):
    """The file (and anchor) a relative reference of `page` points to, or None for other schemes."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or ref.startswith(("javascript:", "mailto:")):
        return None
    target = page if not parts.path else (page.parent / unquote(parts.path))
    return target.resolve(), parts.fragment


def ids(parsed, path):
    """The ids of page `path`, parsed once."""
    if path not in parsed:
        parsed[path] = Page(path)
    return parsed[path].ids


def test_every_notebook_has_a_page_and_a_deck():
    built(BOOK, "make book")
    built(SLIDES, "make slides")
    assert NOTEBOOKS, "no notebooks found"
    missing = [f"book/{n}.html" for n in NOTEBOOKS if not (BOOK / f"{n}.html").exists()]
    missing += [f"slides/{n}.slides.html" for n in NOTEBOOKS if not (SLIDES / f"{n}.slides.html").exists()]
    missing += [f"book/{name}" for name in ("index.html", "glossary.html", "search.html", "searchindex.js")
                if not (BOOK / name).exists()]
    assert not missing, f"not built: {missing}"


def test_nothing_is_loaded_from_the_web():
    built(BOOK, "make book")
    remote = []
    for page in html_pages():
        parsed = Page(page)
        remote += [f"{page.relative_to(ROOT)}: {ref}" for ref in parsed.loaded if REMOTE.match(ref)]
    for sheet in sorted(BOOK.rglob("*.css")) + sorted(SLIDES.rglob("*.css")):
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(encoding="utf-8", errors="replace"), flags=re.S)
        remote += [f"{sheet.relative_to(ROOT)}: {ref}" for ref in CSS_URL.findall(text) if REMOTE.match(ref)]
    assert not remote, "resources from the web (a CDN?) in the built output:\n" + "\n".join(remote)


def test_every_local_reference_resolves():
    built(BOOK, "make book")
    built(SLIDES, "make slides")
    parsed = {page.resolve(): Page(page) for page in html_pages()}
    broken = []
    for page in html_pages():
        for ref in parsed[page.resolve()].loaded + parsed[page.resolve()].links:
            if ref.startswith(("/", "file:")) and not ref.startswith("//"):
                broken.append(f"{page.relative_to(ROOT)}: {ref} (absolute: breaks on a USB stick)")
                continue
            target = local_target(page, ref) if not ref.startswith("data:") else None
            if target is None:
                continue
            path, anchor = target
            if not path.is_file():
                broken.append(f"{page.relative_to(ROOT)}: {ref} (no file {path})")
            elif anchor and path.suffix == ".html" and not {anchor, unquote(anchor)} & ids(parsed, path):
                broken.append(f"{page.relative_to(ROOT)}: {ref} (no id {anchor!r} in {path.name})")
    links = sum(len(p.links) for p in parsed.values())
    assert links > 100, f"only {links} links found in {len(parsed)} pages: is the book complete?"
    assert not broken, f"{len(broken)} broken references:\n" + "\n".join(broken[:40])


def test_explorers_are_frozen_to_their_picture():
    built(BOOK, "make book")
    live = [p.relative_to(ROOT) for p in html_pages() if WIDGET_VIEW in p.read_text(encoding="utf-8")]
    assert not live, f"a live widget view is left in {live}"
    explorer = Page(BOOK / "09_explorer.html")
    pictures = [ref for ref in explorer.loaded if ref.startswith("_images/")]
    assert len(pictures) >= 4, f"09_explorer.html shows {len(pictures)} pictures; its explorers alone draw 4"


# ---- in Chromium ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with every request that is not a local file refused; yields (context, refused, deadline)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}; `bash tests/setup_browser.sh` installs Debian's chromium")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    from playwright.sync_api import sync_playwright

    built(BOOK, "make book")
    built(SLIDES, "make slides")
    refused = []

    def refuse(route):
        refused.append(route.request.url)
        route.abort("internetdisconnected")

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 900}, offline=True)
        # Only file: (and data:, blob:) may load; Playwright routes every other request here.
        context.route(re.compile(r"^(?!file:|data:|blob:)"), refuse)
        try:
            yield context, refused, time.monotonic() + BUDGET_S
        finally:
            context.close()


def open_page(context, deadline, path, query=""):
    left = deadline - time.monotonic()
    if left <= 0:
        pytest.fail(f"the browser tests ran out of their {BUDGET_S} s budget")
    page = context.new_page()
    page.set_default_timeout(left * 1000)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri() + query)
    return page, errors


@contextlib.contextmanager
def visit(browser, path, query=""):
    """Open a page of the book or a deck; afterwards, it must have raised no JavaScript error and asked
    the network for nothing."""
    context, refused, deadline = browser
    refused.clear()
    page, errors = open_page(context, deadline, path, query)
    yield page
    assert not errors, f"{path.name}: JavaScript errors: {errors}"
    assert not refused, f"{path.name} asked the network for {refused}"


def typeset(page):
    """Wait for MathJax to finish; return the number of typeset formulas on the page."""
    page.wait_for_load_state("load")
    assert page.evaluate("() => !!(window.MathJax && MathJax.startup)"), f"{page.url}: MathJax did not load"
    page.evaluate("() => MathJax.startup.promise")
    return page.locator("mjx-container").count()


# Prose outside code, after MathJax: TeX left untypeset shows as $...$ or a backslash command.
RAW_TEX = """() => {
  const article = document.querySelector('article, main, .slides').cloneNode(true);
  article.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  const text = article.textContent;
  const found = text.match(/\\$[^$\\n]{0,40}\\\\[A-Za-z]+|\\\\(alpha|frac|sum|partial|mathrm|left|right|cdot)\\b/);
  return found ? text.slice(Math.max(0, found.index - 60), found.index + 60) : null;
}"""


def screenshot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def test_the_landing_page_lists_every_notebook_in_order(browser):
    with visit(browser, BOOK / "index.html") as page:
        nav = page.eval_on_selector_all(".bd-sidenav a.reference.internal", "els => els.map(a => a.getAttribute('href'))")
        order = [href.removesuffix(".html") for href in nav if href.removesuffix(".html") in NOTEBOOKS]
        assert order == NOTEBOOKS, f"the navigation lists {order}, not every notebook in order"
        assert "glossary.html" in nav, "the navigation does not link the glossary"
        screenshot(page, "index.png")


def test_a_notebook_page_shows_its_figures_and_typeset_equations(browser):
    with visit(browser, BOOK / f"{PAGE}.html") as page:
        formulas = typeset(page)
        assert formulas >= 20, f"{PAGE}: only {formulas} typeset formulas (mjx-container)"
        raw = page.evaluate(RAW_TEX)
        assert raw is None, f"{PAGE}: TeX left untypeset: ...{raw}..."
        figures = page.locator("article img")
        assert figures.count() >= 2, f"{PAGE}: {figures.count()} figures, expected its 2 or more"
        for i in range(figures.count()):
            figures.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("() => Array.from(document.querySelectorAll('article img')).every(i => i.complete)")
        blank = page.eval_on_selector_all("article img", "els => els.filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
        assert not blank, f"{PAGE}: figures that did not load: {blank}"
        assert page.locator("a.right-next").get_attribute("href") == f"{NOTEBOOKS[NOTEBOOKS.index(PAGE) + 1]}.html"
        figures.first.scroll_into_view_if_needed()
        screenshot(page, "notebook.png")


def test_the_search_finds_grad_cam_pp(browser):
    # The search page reads its index from searchindex.js, a file beside it.
    with visit(browser, BOOK / "search.html", "?q=Grad-CAM%2B%2B") as page:
        page.wait_for_selector("#search-results li a")
        found = page.eval_on_selector_all("#search-results li a", "els => els.map(a => a.getAttribute('href'))")
        assert any(href.startswith("05_gradcam_pp.html") for href in found), f"the search for Grad-CAM++ found {found}"
        screenshot(page, "search.png")


def test_slides_offline_in_a_browser(browser):
    with visit(browser, SLIDES / f"{DECK}.slides.html") as page:
        page.wait_for_load_state("load")
        assert page.evaluate("() => !!window.Reveal"), f"{DECK}: reveal.js did not load"
        page.wait_for_function("() => Reveal.isReady()")
        assert typeset(page) >= 20, f"{DECK}: the deck's equations are not typeset"
        raw = page.evaluate(RAW_TEX)
        assert raw is None, f"{DECK}: TeX left untypeset: ...{raw}..."
        total = page.evaluate("() => Reveal.getTotalSlides()")
        assert total >= 10, f"{DECK}: {total} slides; the slide metadata gives one a section and one a step"
        first = page.evaluate("() => Reveal.getIndices()")
        assert first["h"] == 0 and first["v"] == 0
        title = page.locator("section.present h1").first.inner_text()
        assert title.lower().startswith(DECK[:2]), f"{DECK}: the first slide shows {title!r}, not the title"
        screenshot(page, "slides-first.png")
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => Reveal.getIndices().h === 1")
        page.wait_for_timeout(900)      # the slide transition, for the screenshot
        screenshot(page, "slides-next.png")
        assert page.locator("section.present h2").count(), f"{DECK}: the second slide has no section heading"


def test_the_self_study_edition_folds_each_solution_behind_a_toggle(browser):
    # The self-study edition (make book EDITION=self-study): the solution is on the page, folded, until
    # its toggle opens it; the course edition has no toggle at all.
    page_path = built(SELF_STUDY, "make book EDITION=self-study") / f"{FOLDED}.html"
    with visit(browser, page_path) as page:
        folds = page.locator("details.hide", has_text="Show solution")
        assert folds.count() >= 3, f"{FOLDED}: {folds.count()} folded solutions"
        fold = folds.first
        code = fold.locator("div.cell_input pre")
        fold.scroll_into_view_if_needed()
        assert not code.is_visible(), f"{FOLDED}: the first solution is open before its toggle is clicked"
        fold.locator("summary").click()
        code.wait_for(state="visible")
        assert "answer" in code.inner_text(), f"{FOLDED}: the opened fold shows {code.inner_text()[:80]!r}"
        assert fold.locator("p.expanded", has_text="Hide solution").is_visible()
        screenshot(page, "self-study-solution.png")
    assert "Show solution" not in (BOOK / f"{FOLDED}.html").read_text(encoding="utf-8"), \
        f"the course edition's {FOLDED} page has a solution toggle"
