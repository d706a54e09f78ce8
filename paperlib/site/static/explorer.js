/* The offline explorer of the paperlib site (written by paperlib.site.explorer_page).

   Each element with class "paperlib-explorer" holds a search box, facet lists and check boxes, a
   plotly map, an itables (DataTables) table and a JSON block of the papers. One selection drives
   them all: the table shows the matching rows, the map highlights them, the count says how many,
   and the buttons download them as a reading list.

   Matching is that of paperlib.site.explorer.filter_papers: every word of the search box in the
   title or abstract (case ignored), any of the chosen values within a facet, all facets at once.
   The reading lists are those of paperlib.site.reading.reading_list (Markdown) and
   paperlib.corpus.bibtex.to_bibtex (BibTeX); the browser tests compare them byte for byte.
   Corpus text reaches the page only as HTML escaped by paperlib or through textContent. */
(function () {
  "use strict";

  function words(text) {
    return text.toLowerCase().split(/\s+/).filter(Boolean);
  }

  function readQuery(root) {
    const facets = {};
    root.querySelectorAll("select.pe-facet").forEach(function (select) {
      facets[select.dataset.facet] = Array.from(select.selectedOptions, function (o) { return o.value; });
    });
    return {
      words: words(root.querySelector(".pe-search").value),
      facets: facets,
      hasCode: root.querySelector(".pe-has-code").checked,
      runnable: root.querySelector(".pe-runnable").checked,
    };
  }

  function isActive(query) {
    return query.words.length > 0 || query.hasCode || query.runnable ||
      Object.values(query.facets).some(function (values) { return values.length > 0; });
  }

  function matches(row, query) {
    if (!query.words.every(function (w) { return row.search.includes(w); })) return false;
    for (const facet in query.facets) {
      const wanted = query.facets[facet];
      if (wanted.length && !(row.facets[facet] || []).some(function (v) { return wanted.includes(v); })) return false;
    }
    return (!query.hasCode || row.code_urls.length > 0) && (!query.runnable || row.runnable.length > 0);
  }

  const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;", "'": "&#x27;" };
  const BIBTEX_ESCAPES = {
    "\\": "\\textbackslash{}", "{": "\\{", "}": "\\}", "~": "\\textasciitilde{}", "^": "\\textasciicircum{}",
    "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
  };
  const URL_SAFE = /^https?:\/\/[^\s{}\\%#"]+$/;

  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, function (c) { return HTML_ESCAPES[c]; });
  }

  function escapeBibtex(text) {
    return String(text).split(/\s+/).filter(Boolean).join(" ")
      .replace(/[\\{}~^&%$#_]/g, function (c) { return BIBTEX_ESCAPES[c]; })
      .replace(/(?<=-)(?=-)|(?<=`)(?=`)|(?<=')(?=')/g, "{}");
  }

  function markdownEntry(row, tagFacets) {
    const tags = tagFacets.map(function (f) { return (row.facets[f] || []).join(", "); }).filter(Boolean);
    const lines = ["", "## " + escapeHtml(row.title), "", "- tags: " + escapeHtml(tags.join(" | ")),
      "- summary: " + escapeHtml(row.summary)];
    row.code_urls.forEach(function (url) { lines.push("- code: <" + escapeHtml(url) + ">"); });
    row.runnable.forEach(function (nb) { lines.push("- runnable notebook: " + escapeHtml(nb)); });
    return lines.join("\n") + "\n";
  }

  function bibtexEntry(row, tagFacets) {
    const fields = [["title", "{" + escapeBibtex(row.title) + "}"], ["abstract", escapeBibtex(row.abstract)]];
    const tags = Array.from(new Set([].concat.apply([], tagFacets.map(function (f) { return row.facets[f] || []; }))));
    if (tags.length) fields.push(["keywords", escapeBibtex(tags.join(", "))]);
    const urls = row.code_urls.filter(function (url) { return URL_SAFE.test(url); });
    if (urls.length) fields.push(["url", urls[0]]);
    if (row.runnable.length) fields.push(["note", escapeBibtex("Runnable notebook: " + row.runnable.join(", "))]);
    return "@misc{" + row.key + ",\n" +
      fields.map(function (f) { return "  " + f[0] + " = {" + f[1] + "},\n"; }).join("") + "}\n";
  }

  const ENTRIES = { md: [markdownEntry, ""], bib: [bibtexEntry, "\n"] };

  function download(name, type, text) {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: type }));
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 2000);
  }

  function waitFor(test, what) {
    return new Promise(function (resolve, reject) {
      const start = Date.now();
      (function poll() {
        if (test()) return resolve();
        if (Date.now() - start > 20000) return reject(new Error("paperlib explorer: " + what + " did not load"));
        setTimeout(poll, 25);
      })();
    });
  }

  async function attach(root) {
    const data = JSON.parse(root.querySelector("script.pe-data").textContent);
    data.rows.forEach(function (row) { row.search = (row.title + " " + row.abstract).toLowerCase(); });
    let selected = data.rows.map(function () { return true; });

    // The DataTables bundle that itables-offline.js loads; the table's own script creates the table.
    const bundle = window[root.dataset.itables];
    if (!bundle) throw new Error("paperlib explorer: itables-offline.js is missing beside the page");
    const dt = await bundle;
    const DataTable = dt.default;
    const tableEl = document.getElementById(root.dataset.table);
    DataTable.ext.search.push(function (settings, _cells, index) {
      return settings.nTable !== tableEl || selected[index];
    });
    await waitFor(function () { return DataTable.isDataTable(tableEl); }, "the table");
    const table = new DataTable.Api(tableEl);

    const gd = root.querySelector(".pe-map .plotly-graph-div");
    await waitFor(function () { return gd && gd.data && gd._fullLayout; }, "the map");
    const base = gd.data[0];
    const point = new Map();
    (base.customdata || []).forEach(function (row, i) { point.set(row, i); });

    const count = root.querySelector(".pe-count");
    const hover = root.querySelector(".pe-hover a");

    function update() {
      const query = readQuery(root);
      const active = isActive(query);
      selected = data.rows.map(function (row) { return matches(row, query); });
      table.draw();
      const chosen = [];
      selected.forEach(function (yes, i) { if (yes) chosen.push(i); });
      count.textContent = chosen.length + " of " + data.rows.length + " papers match";
      const shown = active ? chosen.filter(function (i) { return point.has(i); }) : [];
      const at = shown.map(function (i) { return point.get(i); });
      Plotly.restyle(gd, {
        x: [at.map(function (p) { return base.x[p]; })],
        y: [at.map(function (p) { return base.y[p]; })],
        text: [at.map(function (p) { return base.text[p]; })],
        customdata: [shown],
      }, [1]);
      root.dataset.highlighted = String(shown.length);
    }

    function readingList(format) {
      const rows = data.rows.filter(function (_row, i) { return selected[i]; });
      const head = data.headers[format];
      const entry = ENTRIES[format][0];
      return head[0] + rows.length + head[1] +
        rows.map(function (row) { return entry(row, data.tagFacets); }).join(ENTRIES[format][1]);
    }

    let pending = null;
    root.querySelector(".pe-search").addEventListener("input", function () {
      clearTimeout(pending);
      pending = setTimeout(update, 120);
    });
    root.querySelectorAll("select.pe-facet, .pe-has-code, .pe-runnable").forEach(function (el) {
      el.addEventListener("change", update);
    });
    root.querySelector(".pe-clear").addEventListener("click", function () {
      root.querySelector(".pe-search").value = "";
      root.querySelectorAll("select.pe-facet option").forEach(function (o) { o.selected = false; });
      root.querySelectorAll(".pe-has-code, .pe-runnable").forEach(function (c) { c.checked = false; });
      update();
    });
    root.querySelectorAll(".pe-export button").forEach(function (button) {
      button.addEventListener("click", function () {
        const format = button.dataset.format;
        download("reading-list." + format, data.types[format], readingList(format));
      });
    });
    gd.on("plotly_click", function (event) {
      const row = data.rows[event.points[0].customdata];
      if (row) window.location.href = row.href;
    });
    gd.on("plotly_hover", function (event) {
      const row = data.rows[event.points[0].customdata];
      if (!row) return;
      hover.href = row.href;
      hover.textContent = row.title;
    });
    root.paperlibReadingList = readingList;
    update();
    root.dataset.ready = "true";
  }

  function start() {
    document.querySelectorAll(".paperlib-explorer:not([data-ready])").forEach(function (root) {
      root.dataset.ready = "loading";
      attach(root).catch(function (error) { root.dataset.ready = "failed"; console.error(error); });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
