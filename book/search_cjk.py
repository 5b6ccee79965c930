"""The book's search, through Sphinx's own extension points (book/conf.py loads this file as an extension).

* `SearchMinicam`, the search language (English, Sphinx's stemmer and stop words) whose splitter also cuts
  every run of Korean, Japanese or Chinese letters into overlapping two-letter pieces ("特征层" → "特征",
  "征层"; a single letter stays itself). Those languages do not put spaces between words (Korean puts
  them between phrases, with particles attached: "기울기를"), so the English splitter indexed whole
  phrases and a word inside one could not be found. Its JavaScript twin `splitQuery` cuts the query the
  same way, and Sphinx's search requires every piece in a page: a term is found where its pieces are.
* `search_summaries.js`: each page's text, section by section, written beside the pages for the search
  page's snippets (book/_static/search-snippets.js) and the scorer (book/search_scorer.js). Sphinx's
  own summaries fetch() the result's page, which a page opened from a file may not do.
"""
import json
import os
import re

from docutils import nodes
from sphinx.search.en import SearchEnglish
from sphinx.util.osutil import ensuredir

# Hangul syllables and jamo, kana, CJK ideographs (with extension A and the compatibility block).
CJK_LETTERS = ("\u1100-\u11ff\u3130-\u318f\uac00-\ud7af"
               "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
               "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff")
CJK_RUN = re.compile(f"[{CJK_LETTERS}]+")
WORD = re.compile(r"\w+")
SUMMARIES = "search_summaries.js"

JS_SPLITTER = r"""
/* book/search_cjk.py: words as Sphinx splits them; runs of Korean, Japanese or Chinese letters cut into
   overlapping two-letter pieces, as the index was. */
const CJK_RUN = /[%(letters)s]+/gu;
const cjkPieces = (run) => {
  const letters = [...run];
  if (letters.length < 2) return letters;
  return letters.slice(0, -1).map((letter, i) => letter + letters[i + 1]);
};
var splitQuery = (query) => query
  .split(/[^\p{Letter}\p{Number}_\p{Emoji_Presentation}]+/gu)
  .filter((term) => term)
  .flatMap((term) => {
    const pieces = [];
    let last = 0;
    for (const match of term.matchAll(CJK_RUN)) {
      if (match.index > last) pieces.push(term.slice(last, match.index));
      pieces.push(...cjkPieces(match[0]));
      last = match.index + match[0].length;
    }
    if (last < term.length) pieces.push(term.slice(last));
    return pieces;
  });
""" % {"letters": CJK_LETTERS}


def split_words(text):
    """The words of `text`: Sphinx's \\w+ words, each run of CJK letters inside one cut into pieces."""
    words = []
    for word in WORD.findall(text):
        last = 0
        for run in CJK_RUN.finditer(word):
            if run.start() > last:
                words.append(word[last:run.start()])
            letters = run.group()
            words.extend([letters] if len(letters) < 2 else
                         [letters[i:i + 2] for i in range(len(letters) - 1)])
            last = run.end()
        if last < len(word):
            words.append(word[last:])
    return words


class SearchMinicam(SearchEnglish):
    """English, with the pieces of Korean, Japanese and Chinese text indexed and searched alike."""

    lang = "en"
    language_name = "English, with Korean, Japanese and Chinese text"
    js_splitter_code = JS_SPLITTER

    def split(self, input):
        return split_words(input)

    def stem(self, word):
        return word if CJK_RUN.match(word) else super().stem(word)

    def word_filter(self, word):
        # Sphinx's filter drops two-letter words that begin with hiragana; a piece is two letters.
        return bool(CJK_RUN.match(word)) or super().word_filter(word)


# ---- the snippets -----------------------------------------------------------------------------

SKIPPED = (nodes.literal_block, nodes.comment, nodes.raw, nodes.system_message, nodes.substitution_definition,
           nodes.math, nodes.math_block)


def plain_text(node):
    """The prose of `node` without code blocks, outputs or raw HTML, whitespace collapsed."""
    parts = []

    def visit(n):
        if isinstance(n, SKIPPED) or (isinstance(n, nodes.Element) and "cell_output" in n.get("classes", [])):
            return
        if isinstance(n, nodes.Text):
            parts.append(n.astext())
            return
        for child in n.children:
            visit(child)
        if isinstance(n, (nodes.paragraph, nodes.title, nodes.entry, nodes.list_item)):
            parts.append(" ")

    visit(node)
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def sections_of(doctree):
    """[[anchor, text], ...]: each section's own text (not its title's, not its subsections'), the page's
    first section as ""."""
    found = []

    def walk(section, anchor):
        own = [child for child in section.children if not isinstance(child, (nodes.section, nodes.title))]
        found.append([anchor, " ".join(filter(None, (plain_text(child) for child in own)))])
        for child in section.children:
            if isinstance(child, nodes.section):
                walk(child, "#" + child["ids"][0] if child["ids"] else anchor)

    tops = [child for child in doctree.children if isinstance(child, nodes.section)]
    for i, section in enumerate(tops):
        walk(section, "" if i == 0 else "#" + section["ids"][0])
    return [entry for entry in found if entry[1]]


def write_summaries(app, exception):
    """_static/search_summaries.js: {docname: [[anchor, text], ...]} for every page in the search index."""
    if exception is not None or app.builder.format != "html":
        return
    env = app.builder.env
    summaries = {docname: sections_of(env.get_doctree(docname)) for docname in sorted(env.found_docs)}
    target = f"{app.builder.outdir}/_static/{SUMMARIES}"
    ensuredir(f"{app.builder.outdir}/_static")
    text = ("/* Each page's text by section, for the search page's snippets (book/search_cjk.py). */\n"
            f"var MINICAM_SUMMARIES = {json.dumps(summaries, ensure_ascii=False, separators=(',', ':'))};\n")
    with open(target + ".partial", "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(target + ".partial", target)


def search_page_scripts(app, pagename, templatename, context, doctree):
    if pagename == "search":
        app.add_js_file(SUMMARIES)
        app.add_js_file("search-snippets.js")


def setup(app):
    app.add_search_language(SearchMinicam)
    app.connect("html-page-context", search_page_scripts)
    app.connect("build-finished", write_summaries)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
