"""The built book and slides (make book slides), opened from files as a student would, network refused.

Static checks on every page of build/book/ and build/slides/: no resource (script, style sheet, image,
font, frame) comes from the web, every local file a page loads exists, every relative link leads to a
page that exists (and to the anchor it names), none is absolute (a USB stick), no live widget is left.
Then headless Chromium (Debian's, driven by Playwright, as in tests/test_browser.py) opens the book and
one deck from file:// with every request that is not a local file refused and recorded: a notebook page
shows its figures and its equations as typeset math, the search page finds "Grad-CAM++", and the deck
advances to the next slide, and a self-study page opens a folded solution. Screenshots are kept in artifacts/book/.

On a phone (375×812, issue 24): the ☰ and contents buttons open their drawers and a link in one leads on;
05's equations and the glossary do not widen the page (nor the glossary its column on a laptop); the search
lists 05 first for "Grad-CAM++", with snippets, finds words inside Korean, Japanese and Chinese text and
every glossary term in every language it is written in; a Korean line is drawn with the web font. Without
the browser: every CJK text of the book and the decks is marked lang="ko|ja|zh", only the font subsets
named are copied, and every page's footer names the licence.

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


def open_page(context, deadline, path, query="", viewport=None):
    left = deadline - time.monotonic()
    if left <= 0:
        pytest.fail(f"the browser tests ran out of their {BUDGET_S} s budget")
    page = context.new_page()
    page.set_default_timeout(left * 1000)
    if viewport:
        page.set_viewport_size(viewport)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri() + query)
    return page, errors


@contextlib.contextmanager
def visit(browser, path, query="", viewport=None):
    """Open a page of the book or a deck (at `viewport`, {"width": .., "height": ..}, if given); afterwards,
    it must have raised no JavaScript error and asked the network for nothing."""
    context, refused, deadline = browser
    refused.clear()
    page, errors = open_page(context, deadline, path, query, viewport)
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
        # → steps in reading order: the summary in Korean, Japanese and Chinese below the title, then section 1
        page.keyboard.press("ArrowRight")
        page.wait_for_function("() => Reveal.getIndices().v === 1")
        assert page.locator("section.present [lang=ko]").count(), f"{DECK}: the slide below the title is not the summary"
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


# ---- on a phone, in every language ------------------------------------------------------------
# Issue 24, items 4-6: the navigation opens at 375×812, equations and the glossary do not widen the page,
# the search ranks the page named by the query first with a snippet and finds words inside Korean,
# Japanese and Chinese text, which is marked with its language and drawn with web fonts beside the pages.

PHONE = {"width": 375, "height": 812}
PP = "05_gradcam_pp"
GLOSSARY = ROOT / "notebooks" / "glossary.md"
# A word from inside a run of running text, and a page whose prose holds it there: 음수제거 in
# "음수제거를 통해 사용된 값만 추출", 入力値 in "ソフトマックスへの入力値", 特征层 in "越往后的特征层抽象程度越高".
RUNNING = {"ko": ("음수제거", "03_gradcam"), "ja": ("入力値", "00_introduction"), "zh": ("特征层", "03_gradcam")}
HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
KANA = re.compile("[\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
CJK = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"
                 "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
WIDE = "() => document.documentElement.scrollWidth - window.innerWidth"


def glossary_terms():
    """{language: [term, ...]}: every term of the glossary's tables, in each language it is written in
    (English, Korean, Japanese, Chinese columns): the quoted strings in code font, and the suite's own
    terms (marked † or ‡)."""
    terms = {"en": [], "ko": [], "ja": [], "zh": []}
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 7 or cells[0] in ("English", "---"):
            continue
        terms["en"] += [t.strip() for t in re.sub(r"\(.*?\)", "", cells[0]).split(",") if t.strip()]
        for lang, cell in zip(("ko", "ja", "zh"), cells[1:4]):
            for item in cell.split(";"):
                quoted = re.findall(r"`([^`]+)`", item)
                own = re.sub(r"\(.*?\)|\*[^*]+\*|[†‡]", "", item).strip() if "†" in item or "‡" in item else ""
                terms[lang] += [q for q in quoted if CJK.search(q) or lang == "en"] + ([own] if own else [])
    return {lang: sorted(set(found)) for lang, found in terms.items()}


class Marked(HTMLParser):
    """The CJK letters of a page's body, each with the lang its element says (None when unmarked), outside
    code blocks and outputs (<pre>), scripts, <title> and the theme's print-only heading (which repeats the
    title as plain text; printed, it falls back to the same fonts through the body's font list)."""

    OPAQUE = {"script", "style", "pre", "textarea", "title", "onlyprint"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "col", "source"}

    def __init__(self, path):
        super().__init__()
        self.stack, self.letters = [], []
        self.feed(re.sub(r"data:[^\"'\s)]{100,}", "data:", path.read_text(encoding="utf-8")))

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            attrs = dict(attrs)
            opaque = "onlyprint" if "onlyprint" in (attrs.get("class") or "").split() else tag
            self.stack.append((opaque, attrs.get("lang")))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag or (self.stack[i][0] == "onlyprint" and tag == "div"):
                del self.stack[i:]
                return

    def handle_data(self, data):
        if any(tag in self.OPAQUE for tag, _ in self.stack):
            return
        lang = next((lang for _, lang in reversed(self.stack) if lang and lang != "en"), None)
        self.letters += [(letter, lang, data) for letter in CJK.findall(data)]


def test_korean_japanese_and_chinese_text_is_marked_with_its_language():
    built(BOOK, "make book")
    unmarked, wrong = [], []
    for page in html_pages():
        if page.parent != BOOK:
            continue
        for letter, lang, data in Marked(page).letters:
            if lang is None:
                unmarked.append(f"{page.name}: {data.strip()[:40]!r}")
            elif (HANGUL.match(letter) and lang != "ko") or (KANA.match(letter) and lang != "ja"):
                wrong.append(f"{page.name}: {letter!r} marked {lang} in {data.strip()[:40]!r}")
    assert not unmarked, f"{len(unmarked)} CJK texts without lang=ko|ja|zh:\n" + "\n".join(sorted(set(unmarked))[:20])
    assert not wrong, "text marked with the wrong language:\n" + "\n".join(wrong[:20])
    # Han letters alone: the quotes of document 003 are Chinese, the glossary's Japanese column Japanese.
    marks = {(page, data) : lang for page in ("03_gradcam", "glossary")
             for _, lang, data in Marked(BOOK / f"{page}.html").letters}
    assert marks.get(("03_gradcam", "越往后的特征层抽象程度越高")) == "zh", "document 003's quote is not marked zh"
    assert marks.get(("glossary", "中間層")) == "ja", "the glossary's Japanese 中間層 is not marked ja"
    assert marks.get(("glossary", "中间层")) == "zh", "the glossary's Chinese 中间层 is not marked zh"


def test_the_decks_mark_their_korean_japanese_and_chinese_text():
    built(SLIDES, "make slides")
    unmarked, wrong, langs = [], [], set()
    for deck in sorted(SLIDES.glob("*.slides.html")):
        for letter, lang, data in Marked(deck).letters:
            langs.add(lang)
            if lang is None:
                unmarked.append(f"{deck.name}: {data.strip()[:40]!r}")
            elif (HANGUL.match(letter) and lang != "ko") or (KANA.match(letter) and lang != "ja"):
                wrong.append(f"{deck.name}: {letter!r} marked {lang} in {data.strip()[:40]!r}")
        assert '<link rel="stylesheet" href="_static/cjk-fonts.css">' in deck.read_text(encoding="utf-8"), deck.name
    assert not unmarked, f"{len(unmarked)} CJK texts without lang in the decks:\n" + "\n".join(sorted(set(unmarked))[:20])
    assert not wrong, "deck text marked with the wrong language:\n" + "\n".join(wrong[:20])
    assert langs == {"ko", "ja", "zh"}, f"the decks' CJK text is marked {langs}"


@pytest.mark.parametrize("folder", [BOOK, SLIDES], ids=["book", "slides"])
def test_only_the_font_subsets_used_are_beside_the_pages(folder):
    built(folder, "make book slides")
    css = (folder / "_static" / "cjk-fonts.css").read_text(encoding="utf-8")
    named = set(re.findall(r"url\(fonts/([^)]+)\)", css))
    copied = {p.name for p in (folder / "_static" / "fonts").iterdir()}
    assert named == copied, f"font files copied but not named, or named but missing: {named ^ copied}"
    families = set(re.findall(r"font-family: '([^']+)'", css))
    assert families == {"Noto Sans KR", "Noto Sans JP", "Noto Sans SC"}, families
    every = sum(1 for _ in (ROOT / "book" / "node_modules" / "@fontsource").rglob("*-400-normal.woff2"))
    assert 0 < len(copied) < every / 3, f"{len(copied)} font files copied of {every} at weight 400 alone"
    assert all(name.endswith(("-400-normal.woff2", "-700-normal.woff2")) for name in copied), copied


def test_the_navigation_opens_on_a_phone(browser):
    with visit(browser, BOOK / f"{PP}.html", viewport=PHONE) as page:
        page.wait_for_load_state("load")
        page.locator(".primary-toggle:visible").click()
        drawer = page.locator("#pst-primary-sidebar-modal")
        drawer.locator(f'a[href="{NOTEBOOKS[NOTEBOOKS.index(PP) + 1]}.html"]').wait_for(state="visible")
        assert page.evaluate("() => document.getElementById('pst-primary-sidebar-modal').open")
        screenshot(page, "phone-navigation.png")
        page.keyboard.press("Escape")
        page.locator(".secondary-toggle:visible").click()
        contents = page.locator("#pst-secondary-sidebar-modal")
        contents.locator("a.reference").first.wait_for(state="visible")
        screenshot(page, "phone-contents.png")
        page.keyboard.press("Escape")
        page.locator(".primary-toggle:visible").click()
        drawer.locator('a[href="glossary.html"]').click()
        page.wait_for_url("**/glossary.html")
        assert page.locator("h1").first.inner_text().startswith("Glossary")


def test_equations_and_the_glossary_do_not_widen_the_page(browser):
    with visit(browser, BOOK / f"{PP}.html", viewport=PHONE) as page:
        assert typeset(page) >= 10, f"{PP}: its equations are not typeset"
        assert page.evaluate(WIDE) <= 0, f"{PP} is {page.evaluate(WIDE)} px wider than a phone"
        scrolling = page.evaluate("() => [...document.querySelectorAll('div.math')].filter("
                                  "d => [d, ...d.children].some(e => e.scrollWidth > e.clientWidth)).length")
        assert scrolling >= 1, f"{PP}: no display equation is wider than a phone; the test checks nothing"
        page.locator("div.math").nth(3).scroll_into_view_if_needed()
        screenshot(page, "phone-equations.png")
    for viewport, name in ((PHONE, "phone"), ({"width": 1280, "height": 900}, "laptop")):
        with visit(browser, BOOK / "glossary.html", "#networks-layers-and-scores", viewport=viewport) as page:
            typeset(page)
            assert page.evaluate(WIDE) <= 0, f"the glossary is {page.evaluate(WIDE)} px wider than a {name}"
            over = page.evaluate("() => [...document.querySelectorAll('.bd-article table')].filter("
                                 "t => t.getBoundingClientRect().width > t.parentElement.clientWidth + 1).length")
            assert over == 0, f"{over} glossary tables are wider than their column on a {name}"
            screenshot(page, f"{name}-glossary.png")


def search(page, query):
    """The hrefs and snippets of the search page's results for `query`, in order."""
    page.wait_for_function("() => Search.hasIndex()")
    page.wait_for_function("() => /Search Results/.test(document.querySelector('#search-results h2').textContent)")
    return page.eval_on_selector_all("#search-results li", "els => els.map(li => [li.querySelector('a')"
                                     ".getAttribute('href'), (li.querySelector('p.context') || {}).textContent || ''])")


def test_the_search_ranks_the_defining_page_first_with_snippets(browser):
    with visit(browser, BOOK / "search.html", "?q=Grad-CAM%2B%2B", viewport=PHONE) as page:
        found = search(page, "Grad-CAM++")
        assert found and found[0][0].startswith(f"{PP}.html"), f"Grad-CAM++ lists first {found[:3]}"
        assert "Grad-CAM++" in found[0][1], f"the first result's snippet is {found[0][1]!r}"
        assert all(snippet for _, snippet in found), "results without a snippet"
        screenshot(page, "phone-search.png")


def test_the_search_finds_words_inside_korean_japanese_and_chinese_text(browser):
    from urllib.parse import quote

    for lang, (word, where) in RUNNING.items():
        with visit(browser, BOOK / "search.html", f"?q={quote(word)}", viewport=PHONE) as page:
            found = search(page, word)
            hits = [snippet for href, snippet in found if href.startswith(f"{where}.html")]
            assert hits, f"{word!r} ({lang}) does not find {where}; it finds {[h for h, _ in found]}"
            assert word in hits[0], f"{word!r}: the snippet of {where} is {hits[0]!r}"
            if lang == "zh":
                screenshot(page, "search-chinese.png")


def test_every_glossary_term_is_found_in_every_language(browser):
    import importlib.util

    spec = importlib.util.spec_from_file_location("search_cjk", ROOT / "book" / "search_cjk.py")
    search_cjk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search_cjk)
    terms = glossary_terms()
    assert all(len(found) >= 20 for found in terms.values()), {k: len(v) for k, v in terms.items()}
    with visit(browser, BOOK / "search.html") as page:
        page.wait_for_function("() => Search.hasIndex()")
        # The page's splitter (JavaScript) cuts each term as the index's (book/search_cjk.py) did.
        every = [term for found in terms.values() for term in found]
        split = page.evaluate("terms => terms.map(term => splitQuery(term))", every)
        differ = [(t, js) for t, js in zip(every, split) if js != search_cjk.split_words(t)]
        assert not differ, f"the query splitter and the index's splitter cut differently: {differ[:5]}"
        missing = page.evaluate("""terms => terms.filter(term => {
            const [query, words, excluded, highlighted, objects] = Search._parseQuery(term);
            return !Search._performSearch(query, words, excluded, highlighted, objects)
              .some(([docname]) => docname === 'glossary');
        })""", [term for found in terms.values() for term in found])
    assert not missing, f"{len(missing)} glossary terms that the search does not find in the glossary: {missing}"


def test_a_korean_line_is_drawn_with_the_web_font(browser):
    with visit(browser, BOOK / "03_gradcam.html", viewport=PHONE) as page:
        page.wait_for_load_state("load")
        line = page.locator('.bd-article span[lang="ko"]').first
        line.scroll_into_view_if_needed()
        text = line.inner_text()
        family = line.evaluate("e => getComputedStyle(e).fontFamily")
        assert family.startswith('"Noto Sans KR"'), f"a Korean line is drawn in {family}"
        loaded = page.evaluate("""async text => {
            const faces = await document.fonts.load('16px "Noto Sans KR"', text);
            return [faces.length, faces.every(f => f.status === 'loaded'),
                    document.fonts.check('16px "Noto Sans KR"', text)];
        }""", text)
        assert loaded[0] >= 1 and loaded[1] and loaded[2], f"Noto Sans KR for {text!r}: {loaded}"
        screenshot(page, "phone-korean.png")


def test_every_page_names_the_license_in_its_footer():
    built(BOOK, "make book")
    assert (BOOK / "LICENSE.txt").read_text(encoding="utf-8") == (ROOT / "LICENSE").read_text(encoding="utf-8"), \
        "build/book/LICENSE.txt is not the repository's LICENSE"
    footer = re.compile(r'<p class="minicam-license">(.*?)</p>', re.S)
    missing = []
    for page in BOOK.glob("*.html"):
        found = footer.search(page.read_text(encoding="utf-8"))
        if not found or not all(s in found.group(1) for s in ("MIT", "CC BY 4.0", 'href="LICENSE.txt"', "authors")):
            missing.append(page.name)
    assert not missing, f"pages whose footer does not name the licence: {missing}"
