// robint-bench HTML leaderboard: click (or Enter on) a column header of a table.sortable to sort its rows.
// Cells sort by their data-sort attribute (numbers numerically, else text); empty values always sort last.
// The first click on a column sorts descending when the column is marked data-order="desc", else ascending.
"use strict";

(function () {
  function value(cell) {
    const raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "" || raw === "—") return null;
    const number = Number(raw);
    return Number.isFinite(number) ? number : raw.toLowerCase();
  }

  function compare(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    if (typeof a === "number") return -1;
    if (typeof b === "number") return 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  function sortBy(table, header, column) {
    const current = header.getAttribute("aria-sort");
    const first = header.getAttribute("data-order") === "desc" ? "descending" : "ascending";
    const next = current === null ? first : current === "ascending" ? "descending" : "ascending";
    for (const th of table.tHead.rows[0].cells) th.removeAttribute("aria-sort");
    header.setAttribute("aria-sort", next);
    const sign = next === "ascending" ? 1 : -1;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows);
    rows.sort(function (r1, r2) {
      const a = value(r1.cells[column]);
      const b = value(r2.cells[column]);
      if (a === null || b === null) return (a === null) - (b === null);
      return sign * compare(a, b);
    });
    for (const row of rows) body.appendChild(row);
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (header, column) {
      header.tabIndex = 0;
      header.title = "sort by this column";
      header.addEventListener("click", function () { sortBy(table, header, column); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, header, column);
        }
      });
    });
  });
})();
