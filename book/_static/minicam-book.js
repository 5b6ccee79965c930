/* A table of five or more columns (the glossary's) fits its column (book/_static/minicam-book.css): fixed
   layout, each column as wide as the square root of its cells' mean text length would share, so the terms'
   columns get room and the code columns little; on a phone it becomes cards, each cell under its column's
   name (data-label). */
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll(".bd-article table").forEach((table) => {
    const heads = [...table.querySelectorAll("thead th")];
    if (heads.length < 5) return;
    const names = heads.map((th) => th.textContent.trim());
    const rows = [...table.querySelectorAll("tbody tr")];
    const weights = names.map((name, i) => {
      const lengths = rows.map((row) => (row.children[i] ? row.children[i].textContent.trim().length : 0));
      const mean = lengths.reduce((a, b) => a + b, 0) / Math.max(lengths.length, 1);
      return Math.sqrt(Math.max(mean, name.length, 6));
    });
    const total = weights.reduce((a, b) => a + b, 0);
    heads.forEach((th, i) => (th.style.width = `${((100 * weights[i]) / total).toFixed(1)}%`));
    table.classList.add("minicam-wide");
    rows.forEach((row) => [...row.children].forEach((cell, i) => (cell.dataset.label = names[i] || "")));
  });
});
