// robint-bench HTML leaderboard (offline, no library). On every page:
// - sort: click (or Enter on) a column header of a table.sortable; cells sort by their data-sort attribute
//   (numbers numerically, else text), empty values last; the first click sorts descending when the header has
//   data-order="desc", else ascending;
// - search and filters (the page's .toolbar): model name (substring), training recipe and attack, from the rows'
//   data-model, data-training and data-attack; they apply to every table.filterable of the page;
// - paging: table.filterable shows a page of rows at a time (rows per page: the toolbar's choice);
// - columns: the compact view hides th/td.detail, "all columns" shows them;
// - scatter plots: the select above a figure shows one plot; hovering (or focusing) a point shows its model and
//   values and highlights the model's rows.
"use strict";

(function () {
  // --- sorting --------------------------------------------------------------------------------------------------
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
    refresh();
  }

  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.from(table.tHead.rows[0].cells).forEach(function (header, column) {
      header.tabIndex = 0;
      if (!header.title) header.title = "sort by this column";
      header.addEventListener("click", function () { sortBy(table, header, column); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          sortBy(table, header, column);
        }
      });
    });
  });

  // --- search, filters, paging --------------------------------------------------------------------------------
  const toolbar = document.querySelector(".toolbar");
  const tables = Array.from(document.querySelectorAll("table.filterable"));
  const pages = new Map(tables.map(function (t) { return [t, 0]; }));

  function options(select, key) {
    if (!select) return;
    const seen = new Set();
    tables.forEach(function (t) {
      Array.from(t.tBodies[0].rows).forEach(function (r) {
        const v = r.getAttribute("data-" + key);
        if (v) seen.add(v);
      });
    });
    Array.from(seen).sort().forEach(function (v) {
      const option = document.createElement("option");
      option.value = v;
      option.textContent = v;
      select.appendChild(option);
    });
  }

  const search = toolbar && toolbar.querySelector(".filter-model");
  const training = toolbar && toolbar.querySelector(".filter-training");
  const attack = toolbar && toolbar.querySelector(".filter-attack");
  const size = toolbar && toolbar.querySelector(".page-size");
  const count = toolbar && toolbar.querySelector(".count");
  options(training, "training");
  options(attack, "attack");

  function matches(row) {
    const q = search ? search.value.trim().toLowerCase() : "";
    if (q && (row.getAttribute("data-model") || "").toLowerCase().indexOf(q) < 0) return false;
    if (training && training.value && row.getAttribute("data-training") !== training.value) return false;
    if (attack && attack.value && row.getAttribute("data-attack") !== attack.value) return false;
    return true;
  }

  function pager(table) {
    let nav = table.parentNode.nextElementSibling;
    if (!nav || !nav.classList.contains("pager")) {
      nav = document.createElement("nav");
      nav.className = "pager";
      nav.innerHTML = '<button type="button" class="prev">‹ previous</button> <span class="where"></span> ' +
        '<button type="button" class="next">next ›</button>';
      table.parentNode.parentNode.insertBefore(nav, table.parentNode.nextSibling);
      nav.querySelector(".prev").addEventListener("click", function () { pages.set(table, pages.get(table) - 1); refresh(); });
      nav.querySelector(".next").addEventListener("click", function () { pages.set(table, pages.get(table) + 1); refresh(); });
    }
    return nav;
  }

  function refresh() {
    const per = size ? Number(size.value) : 25;
    let shown = 0;
    let total = 0;
    tables.forEach(function (table) {
      const rows = Array.from(table.tBodies[0].rows);
      const kept = rows.filter(matches);
      if (!table.closest("details")) {  // the count is of the board's rows, not the folded detail tables
        total += rows.length;
        shown += kept.length;
      }
      const last = per > 0 ? Math.max(0, Math.ceil(kept.length / per) - 1) : 0;
      const page = Math.min(Math.max(pages.get(table) || 0, 0), last);
      pages.set(table, page);
      rows.forEach(function (r) { r.hidden = true; });
      kept.forEach(function (r, i) { r.hidden = per > 0 && (i < page * per || i >= (page + 1) * per); });
      const nav = pager(table);
      nav.hidden = per === 0 || kept.length <= per;
      const from = kept.length ? page * per + 1 : 0;
      nav.querySelector(".where").textContent = "rows " + from + "–" + Math.min(kept.length, (page + 1) * per) +
        " of " + kept.length;
      nav.querySelector(".prev").disabled = page === 0;
      nav.querySelector(".next").disabled = page >= last;
    });
    if (count) count.textContent = shown === total ? total + " rows" : shown + " of " + total + " rows match";
  }

  [search, training, attack, size].forEach(function (input) {
    if (!input) return;
    function changed() {
      tables.forEach(function (t) { pages.set(t, 0); });
      refresh();
    }
    input.addEventListener("input", changed);
    input.addEventListener("change", changed);
  });
  const detail = toolbar && toolbar.querySelector(".show-detail");
  if (detail) {
    detail.addEventListener("change", function () { document.body.classList.toggle("show-detail", detail.checked); });
  }
  if (tables.length) refresh();

  // --- scatter plots ----------------------------------------------------------------------------------------------
  const tooltip = document.querySelector(".tooltip");
  document.querySelectorAll("figure.scatters").forEach(function (figure) {
    const select = figure.querySelector("select.metric");
    if (select) {
      select.addEventListener("change", function () {
        figure.querySelectorAll("svg.scatter").forEach(function (svg) {
          svg.toggleAttribute("hidden", svg.id !== select.value);  // an SVG element has no .hidden property
        });
        const about = figure.querySelector(".describe");
        const option = select.selectedOptions[0];
        if (about && option) about.textContent = option.getAttribute("data-describe") || "";
      });
    }
  });

  function highlight(model, on) {
    document.querySelectorAll("tr[data-model]").forEach(function (row) {
      if (row.getAttribute("data-model") === model) row.classList.toggle("highlight", on);
    });
  }

  document.querySelectorAll("svg.scatter g.point").forEach(function (point) {
    function show(event) {
      const model = point.getAttribute("data-model");
      highlight(model, true);
      point.classList.add("active");
      if (!tooltip) return;
      tooltip.textContent = point.getAttribute("data-label");
      tooltip.hidden = false;
      const box = point.getBoundingClientRect();
      tooltip.style.left = (window.scrollX + box.right + 8) + "px";
      tooltip.style.top = (window.scrollY + box.top - 8) + "px";
    }
    function hide() {
      highlight(point.getAttribute("data-model"), false);
      point.classList.remove("active");
      if (tooltip) tooltip.hidden = true;
    }
    point.addEventListener("mouseenter", show);
    point.addEventListener("focus", show);
    point.addEventListener("mouseleave", hide);
    point.addEventListener("blur", hide);
  });
})();
