/* Snippets under the book's search results, from search_summaries.js (book/search_cjk.py) rather than
   Sphinx's fetch() of each result's page, which a page opened from a file (file://) may not do.
   Each result gets the passage around the first place its page (or section) holds the query, or else
   its first word, in a <p class="context"> as Sphinx's own summaries are. */
"use strict";
(() => {
  const query = () => (new URLSearchParams(window.location.search).get("q") || "").trim();

  const textOf = (docname, anchor) => {
    const sections = (window.MINICAM_SUMMARIES || {})[docname] || [];
    const section = anchor && sections.find(([id]) => id === anchor);
    return section ? section[1] : sections.map(([, words]) => words).join(" ");
  };

  const passage = (text, q) => {
    const lower = text.toLowerCase();
    const wanted = [q.toLowerCase(), ...splitQuery(q).map((w) => w.toLowerCase())];
    const found = wanted.map((w) => lower.indexOf(w)).find((at) => at > -1);
    const start = Math.max((found === undefined ? 0 : found) - 100, 0);
    const end = Math.min(start + 240, text.length);
    return (start > 0 ? "..." : "") + text.slice(start, end).trim() + (end < text.length ? "..." : "");
  };

  const addSnippet = (item) => {
    const link = item.querySelector("a");
    if (!link || item.querySelector("p.context")) return;
    const [path, anchor] = link.getAttribute("href").split("#");
    const docname = path.replace(new RegExp(`${DOCUMENTATION_OPTIONS.LINK_SUFFIX.replace(".", "\\.")}$`), "");
    const text = textOf(docname, anchor ? `#${anchor}` : "");
    if (!text) return;
    const summary = item.appendChild(document.createElement("p"));
    summary.classList.add("context");
    summary.textContent = passage(text, query());
    if (typeof _highlightText === "function")  // sphinx_highlight.js: the query as typed, then its words
      [query(), ...splitQuery(query())].forEach((term) => _highlightText(summary, term.toLowerCase(), "highlighted"));
  };

  new MutationObserver((records) => records.forEach((record) => record.addedNodes.forEach((node) => {
    if (node.nodeName === "LI" && node.closest("#search-results")) addSnippet(node);
  }))).observe(document.documentElement, { childList: true, subtree: true });
})();
