/* The book's search scorer (book/conf.py: html_search_scorer; Sphinx puts it into language_data.js).
   Sphinx's weights stay as they are; `score` adds to them for the words the reader typed, as typed:
   the page whose own name is the query first ("Grad-CAM++" → 05), then pages and sections whose title
   holds it, then pages by how often their text holds it (the text from search_summaries.js, written by
   book/search_cjk.py). Sphinx alone scores every word apart ("grad", "cam"), so every page that names
   Grad-CAM in a title tied. */
var Scorer = {
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,

  // The query as typed, lower case, single spaces ("" off the search page).
  phrase: () => (new URLSearchParams(window.location.search).get("q") || "")
    .trim().toLowerCase().replace(/\s+/g, " "),

  // How often `text` holds `phrase` as a whole term: a Latin letter, digit or "+" may not continue it
  // ("grad-cam" is not in "grad-cam++"); inside Korean, Japanese or Chinese text any place counts.
  occurrences: (text, phrase) => {
    const lower = text.toLowerCase();
    const joins = /[\p{Script=Latin}\p{Number}+_]/u;
    let count = 0;
    for (let at = lower.indexOf(phrase); at !== -1; at = lower.indexOf(phrase, at + 1)) {
      const before = lower[at - 1] || " ";
      const after = lower[at + phrase.length] || " ";
      const openStart = !joins.test(phrase[0]) || !joins.test(before);
      const openEnd = !joins.test(phrase[phrase.length - 1]) || !joins.test(after);
      if (openStart && openEnd) count += 1;
    }
    return count;
  },

  score: (result) => {
    const [docname, title, anchor, _descr, score] = result;
    const phrase = Scorer.phrase();
    if (!phrase || !title) return score;
    const [pageTitle, ...sectionTitles] = title.split(" > ");
    // "05 · Grad-CAM++" names Grad-CAM++; "02 · CAM: class activation mapping" names CAM.
    const name = pageTitle.replace(/^\w+ · /, "").split(":")[0].trim().toLowerCase();
    let bonus = 0;
    if (name === phrase) bonus += 1000;
    else if (Scorer.occurrences(pageTitle, phrase)) bonus += 200;
    if (sectionTitles.length && Scorer.occurrences(sectionTitles.join(" "), phrase)) bonus += 100;
    const sections = (window.MINICAM_SUMMARIES || {})[docname] || [];
    const text = sections.filter(([id]) => !anchor || id === anchor).map(([, words]) => words).join(" ");
    bonus += Math.round(10 * Math.log2(1 + Scorer.occurrences(text, phrase)));
    return score + bonus;
  },
};
