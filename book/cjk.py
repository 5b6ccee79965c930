"""Korean, Japanese and Chinese text in the book: marked with its language, drawn with web fonts.

book/conf.py loads this file as a Sphinx extension:

* `MarkLanguages`, a post-transform: every run of Korean, Japanese or Chinese letters in the prose becomes
  an inline node of class `language-ko|ja|zh`, which docutils' HTML writer turns into `lang="…"` (an
  inline code span written in one language is marked as a whole). The script decides: Hangul → ko, kana →
  ja. Han letters alone are Japanese where kana stand near them or where a table column is the Japanese
  one (the glossary), Korean likewise, and Chinese otherwise: the documents' Japanese text always has kana
  near its kanji, and Korean text is written in Hangul; the Han-only text of the notebooks is Chinese
  (document 003).
* `copy_fonts`, when the build is done: for each language, the Noto Sans web font of npm's `@fontsource`
  (KR, JP, SC; installed into book/node_modules) comes in subsets by Unicode range; only the subsets that
  hold a letter the pages mark with that language, in the weights they are drawn in (400, and 700 in
  table headers and bold text), are copied into _static/fonts/, with _static/cjk-fonts.css naming them.
  book/_static/minicam-book.css gives each `:lang()` its font. The build never writes into book/.
* `mark_deck`, for the slides (book/build.py): nbconvert's HTML, its CJK runs wrapped in <span lang>, by
  the same rules without the tables; `font_css` then copies the decks' fonts beside them likewise.
"""
import bisect
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

from docutils import nodes
from sphinx.transforms.post_transforms import SphinxPostTransform

HANGUL = "\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
LETTER = f"[{HANGUL}{KANA}{HAN}]"
# A run: letters, with CJK punctuation, full-width forms and spaces between them (Korean spaces words).
RUN = re.compile(f"{LETTER}(?:[{HANGUL}{KANA}{HAN}\u3000-\u303f\uff00-\uff65\\s]*{LETTER})?")
IS_HANGUL, IS_KANA = re.compile(f"[{HANGUL}]"), re.compile(f"[{KANA}]")
# A language's own name decides for itself: 日本語 is Han letters only.
NAMES = {"日本語": "ja", "中文": "zh", "한국어": "ko"}
COLUMN_NAMES = {"ko": ("korean", "한국어"), "ja": ("japanese", "日本語"), "zh": ("chinese", "中文")}
NEAR = 24         # characters either side of a Han-only run in which kana or Hangul decide its language
SKIP = (nodes.FixedTextElement, nodes.literal, nodes.math, nodes.raw, nodes.comment, nodes.system_message)
BLOCKS = (nodes.paragraph, nodes.title, nodes.entry, nodes.term, nodes.line, nodes.caption, nodes.rubric)

FONTS = {"ko": ("Noto Sans KR", "noto-sans-kr"), "ja": ("Noto Sans JP", "noto-sans-jp"),
         "zh": ("Noto Sans SC", "noto-sans-sc")}
WEIGHTS = (400, 700)
FONT_CSS = "cjk-fonts.css"


def column_language(entry):
    """ko/ja/zh when table cell `entry` is in a column whose header names that language, else None."""
    row = entry.parent
    if not isinstance(row, nodes.row):
        return None
    index = row.index(entry)
    group = row.parent
    while group is not None and not isinstance(group, nodes.tgroup):
        group = group.parent
    head = next(iter(group.findall(nodes.thead)), None) if group is not None else None
    if head is None or not head.children or index >= len(head[0].children):
        return None
    header = head[0][index].astext().lower()
    found = [lang for lang, names in COLUMN_NAMES.items() if any(name in header for name in names)]
    return found[0] if len(found) == 1 else None


def block_of(node):
    while node is not None and not isinstance(node, BLOCKS):
        node = node.parent
    return node


def by_letters(run, text):
    """The language of CJK run `run` told by letters: its own (Hangul: ko, kana: ja), the glossary's names,
    then the letters near it in `text`; None where only Han letters are near."""
    if IS_HANGUL.search(run):
        return "ko"
    if IS_KANA.search(run):
        return "ja"
    if run in NAMES:
        return NAMES[run]
    at = max(text.find(run), 0)
    near = text[max(at - NEAR, 0): at + len(run) + NEAR]
    return "ja" if IS_KANA.search(near) else "ko" if IS_HANGUL.search(near) else None


def language(run, node):
    """The language of CJK run `run`, found in text node `node`: by letters, else by the glossary column
    it stands in, else zh."""
    block = block_of(node)
    found = by_letters(run, block.astext() if block is not None else "")
    if found:
        return found
    cell = entry_above(block) if block is not None else None
    return (column_language(cell) if cell is not None else None) or "zh"


def entry_above(node):
    while node is not None and not isinstance(node, nodes.entry):
        node = node.parent
    return node


def skipped(node):
    parent = node.parent
    while parent is not None:
        if isinstance(parent, SKIP) or any(c.startswith("language-") for c in parent.get("classes", [])):
            return True
        parent = parent.parent
    return False


def mark(tree):
    """Wrap each run of Korean, Japanese or Chinese prose in `tree` in an inline node marked with its
    language; an inline code span in one language is marked itself. Marking twice changes nothing."""
    for code in list(tree.findall(nodes.literal)):
        langs = {language(m.group(), code) for m in RUN.finditer(code.astext())}
        if len(langs) == 1 and not skipped(code) and not any(c.startswith("language-") for c in code["classes"]):
            code["classes"].append(f"language-{langs.pop()}")
    for text in list(tree.findall(nodes.Text)):
        value = str(text)
        if text.parent is None or not RUN.search(value) or skipped(text):
            continue
        pieces, last = [], 0
        for match in RUN.finditer(value):
            if match.start() > last:
                pieces.append(nodes.Text(value[last:match.start()]))
            pieces.append(nodes.inline(match.group(), match.group(),
                                       classes=[f"language-{language(match.group(), text)}"]))
            last = match.end()
        if last < len(value):
            pieces.append(nodes.Text(value[last:]))
        text.parent.replace(text, pieces)


class MarkLanguages(SphinxPostTransform):
    """The pages' prose, marked (`mark`)."""

    default_priority = 900
    formats = ("html",)

    def run(self, **kwargs):
        mark(self.document)


def mark_titles(app, env):
    """The titles the navigation and the page contents list are drawn from, marked (`mark`)."""
    for tree in list(env.titles.values()) + list(env.tocs.values()):
        mark(tree)


# ---- the slides: HTML written by nbconvert ----------------------------------------------------

TAG = re.compile(r"(<[^>]*>)")
OPAQUE_TAGS = ("script", "style", "pre", "textarea", "title", "svg", "math")


def html_language(run, text):
    """The language of CJK run `run` inside HTML text `text` (no table columns here: the decks hold
    no glossary)."""
    return by_letters(run, text) or "zh"


def mark_html(html):
    """`html` with each run of Korean, Japanese or Chinese text wrapped in <span lang="ko|ja|zh">, outside
    tags, scripts, styles and code blocks; text already inside a lang="ko|ja|zh" element stays as it is."""
    out, opaque = [], None
    for part in TAG.split(html):
        if part.startswith("<"):
            name = re.match(r"</?\s*([a-zA-Z0-9]+)", part)
            name = name.group(1).lower() if name else ""
            if opaque is None and name in OPAQUE_TAGS and not part.startswith("</") and not part.endswith("/>"):
                opaque = name
            elif opaque == name and part.startswith("</"):
                opaque = None
            out.append(part)
        elif opaque is None and RUN.search(part):
            out.append(RUN.sub(lambda m: f'<span lang="{html_language(m.group(), part)}">{m.group()}</span>', part))
        else:
            out.append(part)
    return "".join(out)


DECK_STYLE = """<link rel="stylesheet" href="_static/cjk-fonts.css">
<style>/* book/cjk.py: Korean, Japanese and Chinese text in its language's Noto Sans */
:lang(ko) { font-family: "Noto Sans KR", var(--r-main-font); }
:lang(ja) { font-family: "Noto Sans JP", var(--r-main-font); }
:lang(zh) { font-family: "Noto Sans SC", var(--r-main-font); }
code:lang(ko), code :lang(ko) { font-family: var(--r-code-font), "Noto Sans KR"; }
code:lang(ja), code :lang(ja) { font-family: var(--r-code-font), "Noto Sans JP"; }
code:lang(zh), code :lang(zh) { font-family: var(--r-code-font), "Noto Sans SC"; }
</style>
"""


def mark_deck(html):
    """A deck's HTML with its CJK text marked (`mark_html`) and the fonts' style sheet linked."""
    return mark_html(html).replace("</head>", DECK_STYLE + "</head>", 1)


# ---- the web fonts ----------------------------------------------------------------------------

class MarkedLetters(HTMLParser):
    """The CJK letters of an HTML page inside each lang="ko|ja|zh" element, by weight: {(lang, weight): set}."""

    BOLD = {"th", "strong", "b"}
    VOID = {"br", "img", "hr", "input", "meta", "link", "wbr", "col", "source"}

    def __init__(self, letters):
        super().__init__()
        self.letters, self.stack = letters, []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        lang = dict(attrs).get("lang")
        self.stack.append((tag, lang if lang in FONTS else None, tag in self.BOLD))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data):
        lang = next((entry[1] for entry in reversed(self.stack) if entry[1]), None)
        if lang is None:
            return
        weight = 700 if any(entry[2] for entry in self.stack) else 400
        self.letters.setdefault((lang, weight), set()).update(re.findall(LETTER, data))


def unicode_ranges(text):
    """[(first, last), ...] of a CSS unicode-range value."""
    ranges = []
    for part in text.split(","):
        part = part.strip().removeprefix("U+").removeprefix("u+")
        first, _, last = part.partition("-")
        ranges.append((int(first, 16), int(last or first, 16)))
    return ranges


def font_faces(package, weight):
    """[(woff2 file name, unicode-range text), ...] of an @fontsource package's CSS for `weight`."""
    css = (package / f"{weight}.css").read_text(encoding="utf-8")
    faces = []
    for block in re.findall(r"@font-face\s*{([^}]*)}", css):
        woff2 = re.search(r"url\(\./files/([^)]+\.woff2)\)", block)
        ranges = re.search(r"unicode-range:\s*([^;]+);", block)
        if woff2 and ranges:
            faces.append((woff2.group(1), ranges.group(1).strip()))
    return faces


def font_css(outdir, node_modules):
    """Write _static/cjk-fonts.css and copy the font files it names; returns [(file, bytes), ...]."""
    letters = {}
    for page in sorted(Path(outdir).rglob("*.html")):
        # inline pictures (data: URLs, megabytes in a deck) hold no text
        MarkedLetters(letters).feed(re.sub(r"data:[^\"'\s)]{100,}", "data:", page.read_text(encoding="utf-8")))
    static = Path(outdir) / "_static"
    (static / "fonts").mkdir(parents=True, exist_ok=True)
    rules, copied = [], []
    for (lang, weight), used in sorted(letters.items()):
        family, name = FONTS[lang]
        package = Path(node_modules) / "@fontsource" / name
        if not package.is_dir():
            raise RuntimeError(f"{package} is missing; install the book's npm packages: npm ci --prefix book")
        codes = sorted(ord(letter) for letter in used)
        for woff2, ranges in font_faces(package, weight):
            # a subset is used when some letter falls into one of its ranges
            if not any(bisect.bisect_right(codes, last) > bisect.bisect_left(codes, first)
                       for first, last in unicode_ranges(ranges)):
                continue
            shutil.copy(package / "files" / woff2, static / "fonts" / woff2)
            copied.append((woff2, (package / "files" / woff2).stat().st_size))
            rules.append(f"@font-face {{\n  font-family: '{family}';\n  font-style: normal;\n"
                         f"  font-display: swap;\n  font-weight: {weight};\n"
                         f"  src: url(fonts/{woff2}) format('woff2');\n  unicode-range: {ranges};\n}}\n")
    text = ("/* Noto Sans KR, JP and SC (npm @fontsource, SIL Open Font License 1.1): only the subsets holding\n"
            "   a letter the pages mark with that language, in the weights drawn (book/cjk.py). */\n"
            + "\n".join(rules))
    partial = static / (FONT_CSS + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, static / FONT_CSS)
    return copied


def copy_fonts(app, exception):
    if exception is None and app.builder.format == "html":
        font_css(app.builder.outdir, Path(app.confdir) / "node_modules")


def setup(app):
    app.add_post_transform(MarkLanguages)
    app.connect("env-updated", mark_titles)
    app.connect("build-finished", copy_fonts)
    app.add_css_file(FONT_CSS)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
