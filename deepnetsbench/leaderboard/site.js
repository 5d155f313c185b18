// deepnets-bench leaderboard page: everything is drawn from the inline JSON blob.
// No libraries, no network. Strings from submissions only ever go through textContent.
(function () {
  "use strict";

  var DATA = JSON.parse(document.getElementById("board-data").textContent);
  var SVGNS = "http://www.w3.org/2000/svg";
  var PALETTE = ["#2456a6", "#d1495b", "#e09f1f", "#00798c", "#5c9e6f", "#8d6a9f",
                 "#e07a5f", "#3d405b", "#9c6b30", "#c04ea0"];
  var W = 600, H = 360, M = {l: 56, r: 18, t: 14, b: 44};
  var state = {table: null, sort: "rank", dir: 1};
  var overviewSort = {};  // overview id -> {sort, dir}

  function color(method) {
    var i = DATA.methods.indexOf(method);
    return PALETTE[(i < 0 ? 0 : i) % PALETTE.length];
  }

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  function sv(tag, attrs, text) {
    var e = document.createElementNS(SVGNS, tag);
    for (var k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }

  // ------------------------------------------------------------------ formatting
  function isNum(x) { return typeof x === "number" && isFinite(x); }
  function f2(x) { return isNum(x) ? x.toFixed(2) : "–"; }
  function meanSe(s) {
    if (!s || !isNum(s.mean)) return "–";
    return isNum(s.se) ? f2(s.mean) + " ± " + f2(s.se) : f2(s.mean);
  }
  function ci(s) { return !s || !isNum(s.ci95_low) ? "–" : "[" + f2(s.ci95_low) + ", " + f2(s.ci95_high) + "]"; }
  function secs(x) {
    if (!isNum(x)) return "–";
    if (x < 1e-3) return (x * 1e6).toFixed(0) + " µs";
    if (x < 1) return (x * 1e3).toFixed(1) + " ms";
    return x.toFixed(2) + " s";
  }
  function count(n) {
    if (!isNum(n)) return "–";
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " B";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " K";
    return String(n);
  }
  function mean(s) { return s && isNum(s.mean) ? s.mean : null; }
  function safeLink(url) { return /^https?:\/\//.test(url || "") || /^\.\.\/\.\.\/[A-Za-z0-9_]/.test(url || ""); }
  function tableHref(id) { return "#table=" + encodeURIComponent(id); }

  // ------------------------------------------------------------------ shared cells
  function methodCell(td, r, withTraining) {
    td.appendChild(el("span", {"class": "swatch", style: "background:" + color(r.method)}));
    if (safeLink(r.url)) td.appendChild(el("a", {href: r.url, rel: "noopener", "class": "code"}, r.label));
    else td.appendChild(document.createTextNode(r.label));
    if (/^https?:\/\//.test(r.paper || "") && r.paper !== r.url) {
      td.appendChild(document.createTextNode(" · "));
      td.appendChild(el("a", {href: r.paper, rel: "noopener", "class": "paper"}, "paper"));
    }
    td.appendChild(document.createTextNode(" "));
    var status = r.status_text || r.status;
    td.appendChild(el("span", {"class": "badge " + r.status.replace(/ /g, "-"),
                               title: DATA.statuses[r.status] || "some splits reproduced, the others self-reported"}, status));
    if (withTraining) td.appendChild(el("div", {"class": "training", title: "training budget"}, "training: " + r.training));
  }

  function compareBy(value, dir, tie) {
    return function (a, b) {
      var x = value(a), y = value(b);
      var xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn || yn) return xn === yn ? tie(a, b) : (xn ? 1 : -1);  // missing values last
      if (x < y) return -dir;
      if (x > y) return dir;
      return tie(a, b);
    };
  }

  // Sort buttons: a real <button> in each <th> (Tab, Enter, Space); after the table is
  // rebuilt the focus returns to the same column's button.
  function headerRow(table, cols, sortKey, dir, onSort) {
    var hr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {"data-key": c.key, scope: "col", "class": c.cls || ""});
      if (c.key === sortKey) th.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
      var b = el("button", {type: "button", title: "Sort by " + c.label}, c.label);
      b.addEventListener("click", function () {
        onSort(c.key);
        var again = table.querySelector('th[data-key="' + c.key + '"] button');
        if (again) again.focus();
      });
      th.appendChild(b);
      hr.appendChild(th);
    });
    return hr;
  }

  // ------------------------------------------------------------------ downloads
  function csvCell(v) {
    if (v === null || v === undefined) return "";
    var s = String(v);
    if (/^[=+\-@\t\r]/.test(s) && typeof v === "string") s = "'" + s;  // no spreadsheet formulas
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function toCsv(header, rows) {
    return [header].concat(rows).map(function (r) { return r.map(csvCell).join(","); }).join("\r\n") + "\r\n";
  }
  function fileName(id, ext) { return "deepnets-bench_" + id.replace(/[^A-Za-z0-9.-]+/g, "_") + "." + ext; }
  function downloads(box, id, csv, json) {
    box.textContent = "";
    box.appendChild(document.createTextNode("Download: "));
    box.appendChild(el("a", {href: "data:text/csv;charset=utf-8," + encodeURIComponent(csv),
                             download: fileName(id, "csv"), "class": "dl-csv"}, "CSV"));
    box.appendChild(document.createTextNode(" · "));
    box.appendChild(el("a", {href: "data:application/json;charset=utf-8," + encodeURIComponent(JSON.stringify(json, null, 1)),
                             download: fileName(id, "json"), "class": "dl-json"}, "JSON"));
  }
  function tableCsv(t) {
    var head = ["rank", "method", "version", "status", "training", "top1", "top1_se", "top1_ci95_low",
                "top1_ci95_high", "top5", "predict_time_s", "speedup", "finetune_top1", "method_params",
                "n", "n_failed", "date", "url", "paper", "entry"];
    return toCsv(head, t.rows.map(function (r) {
      var s = r.top1 || {};
      return [r.rank, r.method, r.version, r.status, r.training, s.mean, s.se, s.ci95_low, s.ci95_high,
              mean(r.top5), mean(r.predict_time_s), r.speedup, mean(r.finetune_top1), r.method_params,
              r.n, r.n_failed, r.date, r.url, r.paper, r.entry];
    }));
  }
  function overviewCsv(o) {
    var head = ["method", "version", "status", "training"];
    o.columns.forEach(function (c) { head.push(c.label, c.label + " se"); });
    return toCsv(head, o.rows.map(function (r) {
      var out = [r.method, r.version, r.status_text, r.training];
      o.columns.forEach(function (c) { var x = r.cells[c.key]; out.push(x ? x.mean : null, x ? x.se : null); });
      return out;
    }));
  }

  // ------------------------------------------------------------------ overview tables
  function overviewCell(td, cell) {
    if (!cell || !isNum(cell.mean)) { td.textContent = "–"; td.className += " empty-cell"; return; }
    var text = isNum(cell.se) ? f2(cell.mean) + " ± " + f2(cell.se) : f2(cell.mean);
    if (/failed/.test(cell.note || "")) text += " (failed)";
    var node = cell.table ? el("a", {href: tableHref(cell.table), "class": "cell-link"}, text) : el("span", {}, text);
    if (cell.note) node.setAttribute("title", cell.note);
    td.appendChild(node);
  }

  function renderOverview(box, o) {
    var st = overviewSort[o.id] || {sort: "test", dir: -1};
    var cols = [{key: "method", label: "Method", cls: "key"}].concat(o.columns.map(function (c) {
      return {key: c.key, label: c.label, cls: "num"};
    }));
    var table = box.querySelector("table"), thead = table.tHead, tbody = table.tBodies[0];
    thead.textContent = ""; tbody.textContent = "";
    thead.appendChild(headerRow(table, cols, st.sort, st.dir, function (key) {
      if (st.sort === key) st.dir = -st.dir; else { st.sort = key; st.dir = key === "method" ? 1 : -1; }
      overviewSort[o.id] = st; renderOverview(box, o);
    }));
    var value = st.sort === "method" ? function (r) { return r.label.toLowerCase(); }
      : function (r) { var c = r.cells[st.sort]; return c && isNum(c.mean) ? c.mean : null; };
    var order = o.rows.map(function (r, i) { return i; });
    var rows = o.rows.slice().sort(compareBy(value, st.dir, function (a, b) { return order[o.rows.indexOf(a)] - order[o.rows.indexOf(b)]; }));
    if (!rows.length) {
      var tr0 = el("tr"); tr0.appendChild(el("td", {colspan: String(cols.length), "class": "empty"}, "No entries yet."));
      tbody.appendChild(tr0);
    }
    rows.forEach(function (r) {
      var tr = el("tr", {"data-method": r.method});
      var td = el("td", {"class": "key", "data-key": "method"}); methodCell(td, r, true); tr.appendChild(td);
      o.columns.forEach(function (c) {
        var cell = el("td", {"class": "num", "data-key": c.key});
        overviewCell(cell, r.cells[c.key]); tr.appendChild(cell);
      });
      tbody.appendChild(tr);
    });
  }

  function buildOverviews() {
    var host = document.getElementById("overviews"); host.textContent = "";
    var suites = ["deepnets1m"];
    Object.keys(DATA.registered).concat(DATA.overviews.map(function (o) { return o.suite; })).forEach(function (s) {
      if (suites.indexOf(s) < 0) suites.push(s);
    });
    suites.forEach(function (suite) {
      if (suite !== "deepnets1m") host.appendChild(el("h3", {"class": "suite-head"}, suite));
      host.appendChild(el("p", {"class": "suite-text"}, DATA.suites[suite] || ""));
      var mine = DATA.overviews.filter(function (o) { return o.suite === suite; });
      var have = mine.map(function (o) { return o.release; });
      var empty = (DATA.registered[suite] || []).filter(function (r) { return have.indexOf(r) < 0; });
      if (empty.length || !mine.length) host.appendChild(el("p", {"class": "empty-release"},
        (empty.length ? suite + " release " + empty.join(", ") + ": no" : "No " + suite) + " entries yet."));
      mine.forEach(function (o) {
        var box = el("div", {"class": "overview", id: o.anchor, "data-overview": o.id});
        box.appendChild(el("h3", {}, o.title));
        var info = el("div", {"class": "muted info"});
        info.appendChild(document.createTextNode((isNum(o.chance) ? "Chance " + f2(o.chance) + "%. " : "") +
          "Cells link to their split tables; ResNet-50 and ViT are records 0 and 1 of PREDEFINED; OOD mean needs all four OOD splits. "));
        var dl = el("span", {"class": "downloads"}); downloads(dl, "overview_" + o.id, overviewCsv(o), o);
        info.appendChild(dl);
        box.appendChild(info);
        var wrap = el("div", {"class": "scroll"});
        var table = el("table", {"class": "overview-table"});
        table.appendChild(el("thead")); table.appendChild(el("tbody"));
        wrap.appendChild(table); box.appendChild(wrap);
        host.appendChild(box);
        renderOverview(box, o);
      });
    });
  }

  // ------------------------------------------------------------------ split table
  var COLUMNS = [
    {key: "rank", label: "Rank", cls: "num rank", dir: 1, value: function (r) { return r.rank; },
     text: function (r) { return String(r.rank); }},
    {key: "method", label: "Method", cls: "key", dir: 1, value: function (r) { return r.label.toLowerCase(); },
     render: methodCell},
    {key: "top1", label: "Top-1 (%)", cls: "num", dir: -1, value: function (r) { return mean(r.top1); },
     text: function (r) { return meanSe(r.top1); }},
    {key: "ci", label: "95% CI", cls: "num", dir: -1, value: function (r) { return r.top1 && isNum(r.top1.ci95_low) ? r.top1.ci95_low : null; },
     text: function (r) { return ci(r.top1); }},
    {key: "training", label: "Training budget", cls: "wrap", dir: 1, value: function (r) { return r.budget.toLowerCase(); },
     text: function (r) { return r.budget; }},
    {key: "top5", label: "Top-5 (%)", cls: "num", dir: -1, value: function (r) { return mean(r.top5); },
     text: function (r) { return meanSe(r.top5); }},
    {key: "time", label: "Prediction time", cls: "num", dir: 1, value: function (r) { return mean(r.predict_time_s); },
     text: function (r) { return secs(mean(r.predict_time_s)); }},
    {key: "speedup", label: "Speed-up", cls: "num", dir: -1, optional: true,
     value: function (r) { return isNum(r.speedup) ? r.speedup : null; },
     text: function (r) { return isNum(r.speedup) ? (r.speedup_lower_bound ? "≥" : "") + r.speedup.toFixed(2) + "×" : "–"; }},
    {key: "finetune", label: "Fine-tuned top-1 (%)", cls: "num", dir: -1, optional: true,
     value: function (r) { return mean(r.finetune_top1); }, text: function (r) { return meanSe(r.finetune_top1); }},
    {key: "params", label: "Method params", cls: "num", dir: 1, value: function (r) { return isNum(r.method_params) ? r.method_params : null; },
     text: function (r) { return count(r.method_params); }},
    {key: "failed", label: "Failed", cls: "num", dir: 1, value: function (r) { return r.n_failed; },
     text: function (r) { return r.n_failed + "/" + r.n; }},
    {key: "trained_on", label: "Trained on", cls: "wrap", dir: 1, value: function (r) { return (r.trained_on || "").toLowerCase(); },
     text: function (r) { return r.trained_on || "–"; }},
    {key: "device", label: "Prediction hardware", dir: 1, value: function (r) { return r.gpu || r.device; },
     text: function (r) { return r.gpu || r.device; }},
    {key: "date", label: "Date", dir: -1, value: function (r) { return r.date; }, text: function (r) { return r.date; }}
  ];

  function currentTable() {
    for (var i = 0; i < DATA.tables.length; i++) if (DATA.tables[i].id === state.table) return DATA.tables[i];
    return DATA.tables[0] || null;
  }

  function renderTable(t) {
    var table = document.getElementById("leaderboard");
    var thead = table.tHead, tbody = table.tBodies[0];
    thead.textContent = ""; tbody.textContent = "";
    var cols = COLUMNS.filter(function (c) {
      return !c.optional || t.rows.some(function (r) { return c.value(r) !== null && c.value(r) !== undefined; });
    });
    thead.appendChild(headerRow(table, cols, state.sort, state.dir, sortBy));
    var col = COLUMNS.filter(function (c) { return c.key === state.sort; })[0] || COLUMNS[0];
    var rows = t.rows.slice().sort(compareBy(col.value, state.dir, function (a, b) { return a.rank - b.rank; }));
    var byRank = state.sort === "rank";
    rows.forEach(function (r, i) {
      var tr = el("tr", {"data-method": r.method, "data-rank": String(r.rank)});
      if (byRank && i > 0 && rows[i - 1].rank !== r.rank) tr.className = "group-start";
      cols.forEach(function (c) {
        var td = el("td", {"class": c.cls || "", "data-key": c.key});
        if (c.render) c.render(td, r); else td.textContent = c.text(r);
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    });
  }

  function sortBy(key) {
    if (state.sort === key) state.dir = -state.dir;
    else {
      state.sort = key;
      var c = COLUMNS.filter(function (x) { return x.key === key; })[0];
      state.dir = c ? c.dir : 1;
    }
    render(true);
  }

  // ------------------------------------------------------------------ plot helpers
  function niceStep(range, n) {
    var raw = range / Math.max(1, n), p = Math.pow(10, Math.floor(Math.log(raw) / Math.LN10)), f = raw / p;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * p;
  }
  function linTicks(lo, hi, n) {
    var s = niceStep(hi - lo || 1, n), out = [];
    for (var v = Math.ceil(lo / s) * s; v <= hi + 1e-9; v += s) out.push(+v.toFixed(10));
    return out;
  }
  function logTicks(lo, hi) {
    var out = [], a = Math.floor(Math.log(lo) / Math.LN10), b = Math.ceil(Math.log(hi) / Math.LN10);
    var mult = b - a <= 2 ? [1, 2, 5] : [1];
    for (var e = a; e <= b; e++) mult.forEach(function (m) {
      var v = m * Math.pow(10, e); if (v >= lo && v <= hi) out.push(v);
    });
    return out;
  }
  function linScale(d0, d1, r0, r1) { return function (v) { return r0 + (v - d0) / (d1 - d0 || 1) * (r1 - r0); }; }
  function logScale(d0, d1, r0, r1) {
    var l0 = Math.log(d0), l1 = Math.log(d1);
    return function (v) { return r0 + (Math.log(v) - l0) / (l1 - l0 || 1) * (r1 - r0); };
  }
  function clear(svg) { svg.textContent = ""; svg.removeAttribute("data-drawn"); }
  function noData(svg, msg) {
    svg.appendChild(sv("text", {x: W / 2, y: H / 2, "text-anchor": "middle", "class": "no-data"}, msg));
  }
  function axes(svg, x, xt, xfmt, xlabel, y, yt, ylabel) {
    var g = sv("g", {"class": "grid"}), a = sv("g", {"class": "axis"});
    yt.forEach(function (v) {
      g.appendChild(sv("line", {x1: M.l, x2: W - M.r, y1: y(v), y2: y(v)}));
      a.appendChild(sv("text", {x: M.l - 6, y: y(v) + 4, "text-anchor": "end"}, String(v)));
    });
    xt.forEach(function (v) {
      g.appendChild(sv("line", {x1: x(v), x2: x(v), y1: M.t, y2: H - M.b}));
      a.appendChild(sv("text", {x: x(v), y: H - M.b + 15, "text-anchor": "middle"}, xfmt(v)));
    });
    a.appendChild(sv("line", {x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b}));
    a.appendChild(sv("line", {x1: M.l, x2: M.l, y1: M.t, y2: H - M.b}));
    a.appendChild(sv("text", {x: (M.l + W - M.r) / 2, y: H - 8, "text-anchor": "middle"}, xlabel));
    a.appendChild(sv("text", {x: 14, y: (M.t + H - M.b) / 2, "text-anchor": "middle",
                              transform: "rotate(-90 14 " + (M.t + H - M.b) / 2 + ")"}, ylabel));
    svg.appendChild(g); svg.appendChild(a);
  }
  function yRange(lo, hi) {
    var pad = Math.max(1, (hi - lo) * 0.1);
    return [Math.max(0, Math.floor((lo - pad) / 5) * 5), Math.min(100, Math.ceil((hi + pad) / 5) * 5)];
  }
  function chanceLine(svg, y, level, x1, x2, label) {
    if (!isNum(level)) return;
    svg.appendChild(sv("line", {x1: x1, x2: x2, y1: y(level), y2: y(level), "class": "chance"}));
    if (label) svg.appendChild(sv("text", {x: x2 - 4, y: y(level) - 4, "text-anchor": "end", "class": "chance-label"},
                                  "chance " + f2(level) + "%"));
  }
  function lo95(s) { return isNum(s.ci95_low) ? s.ci95_low : s.mean; }
  function hi95(s) { return isNum(s.ci95_high) ? s.ci95_high : s.mean; }

  // ------------------------------------------------------------------ plots
  function plotTime(t) {
    var svg = document.getElementById("plot-time"); clear(svg);
    var rows = t.rows.filter(function (r) { return mean(r.predict_time_s) > 0 && mean(r.top1) !== null; });
    if (!rows.length) return noData(svg, "no prediction times in this table");
    var ts = rows.map(function (r) { return r.predict_time_s.mean; });
    var lo = Math.min.apply(null, ts) / 2, hi = Math.max.apply(null, ts) * 2;
    var lows = rows.map(function (r) { return lo95(r.top1); }).concat(isNum(t.chance) ? [t.chance] : []);
    var yr = yRange(Math.min.apply(null, lows), Math.max.apply(null, rows.map(function (r) { return hi95(r.top1); })));
    var x = logScale(lo, hi, M.l, W - M.r), y = linScale(yr[0], yr[1], H - M.b, M.t);
    axes(svg, x, logTicks(lo, hi), secs, "prediction time per " + (t.architectures ? "architecture" : "episode") + " (log scale)",
         y, linTicks(yr[0], yr[1], 6), "top-1 (%)");
    chanceLine(svg, y, t.chance, M.l, W - M.r, true);
    var g = sv("g", {"class": "points"}), labels = [];
    rows.forEach(function (r) {
      var cx = x(r.predict_time_s.mean), cy = y(r.top1.mean), c = color(r.method);
      g.appendChild(sv("line", {x1: cx, x2: cx, y1: y(lo95(r.top1)), y2: y(hi95(r.top1)),
                                stroke: c, "stroke-width": 2, "class": "ci"}));
      var p = sv("circle", {cx: cx, cy: cy, r: 6, fill: c, "class": "pt", "data-method": r.method});
      p.appendChild(sv("title", {}, r.label + ": " + meanSe(r.top1) + "% in " + secs(r.predict_time_s.mean)));
      g.appendChild(p);
      labels.push({x: cx + 9, y: cy + 4, px: cx, py: cy, text: r.method});
    });
    // Labels that would overlap a label above them are pushed down (with a leader line).
    labels.sort(function (a, b) { return a.y - b.y; });
    labels.forEach(function (l, i) {
      for (var j = 0; j < i; j++) {
        var o = labels[j];
        if (Math.abs(o.x - l.x) < 7 * Math.max(o.text.length, l.text.length) && l.y - o.y < 13) l.y = o.y + 13;
      }
      if (Math.abs(l.y - l.py - 4) > 8) g.appendChild(sv("line", {x1: l.px + 5, y1: l.py, x2: l.x - 2, y2: l.y - 4,
                                                           stroke: "#999", "stroke-width": 0.8}));
      g.appendChild(sv("text", {x: Math.min(l.x, W - M.r - 6 * l.text.length), y: l.y, "class": "pt-label"}, l.text));
    });
    svg.appendChild(g);
    svg.setAttribute("data-drawn", String(rows.length));
  }

  // Groups of the accuracy-per-split plot: the splits of this suite, release and dataset;
  // for episode suites, the datasets of this suite, release and target.
  function splitGroups(t) {
    return DATA.tables.filter(function (u) {
      if (u.suite !== t.suite || u.release !== t.release) return false;
      return t.architectures ? u.dataset === t.dataset && u.dataset_sha256 === t.dataset_sha256 : u.target === t.target;
    });
  }

  function plotSplits(t) {
    var svg = document.getElementById("plot-splits"); clear(svg);
    var tables = splitGroups(t);
    document.getElementById("splits-caption").textContent = t.architectures
      ? "Accuracy per split (" + t.suite + " " + t.release + ", " + t.dataset + "), 95% intervals"
      : "Accuracy per dataset (" + t.suite + ", target " + t.target + "), 95% intervals over episodes";
    var methods = [];
    tables.forEach(function (u) { u.rows.forEach(function (r) { if (methods.indexOf(r.method) < 0) methods.push(r.method); }); });
    methods.sort(function (a, b) { return DATA.methods.indexOf(a) - DATA.methods.indexOf(b); });
    if (!methods.length) return noData(svg, "no entries");
    var top = 0;
    tables.forEach(function (u) { u.rows.forEach(function (r) { if (mean(r.top1) !== null) top = Math.max(top, hi95(r.top1)); }); });
    var ymax = Math.min(100, Math.max(10, Math.ceil(top * 1.1 / 10) * 10));
    var y = linScale(0, ymax, H - M.b, M.t);
    var gw = (W - M.l - M.r) / tables.length, bw = Math.min(36, (gw - 16) / methods.length);
    var xg = function (i) { return M.l + gw * (i + 0.5); };
    axes(svg, xg, [], String, t.architectures ? "split" : "dataset", y, linTicks(0, ymax, 5), "top-1 (%)");
    var g = sv("g", {"class": "bars"}), n = 0;
    tables.forEach(function (u, i) {
      if (u.id === t.id) g.appendChild(sv("rect", {x: M.l + gw * i + 2, y: M.t, width: gw - 4, height: H - M.b - M.t,
                                                   fill: "#f1f4fa", "class": "current"}));
      g.appendChild(sv("text", {x: xg(i), y: H - M.b + 15, "text-anchor": "middle"}, t.architectures ? u.split : u.dataset));
      var x0 = xg(i) - bw * methods.length / 2;
      methods.forEach(function (m, j) {
        var r = u.rows.filter(function (q) { return q.method === m; })[0];
        if (!r || mean(r.top1) === null) return;
        var bx = x0 + j * bw, c = color(m);
        var bar = sv("rect", {x: bx + 1, y: y(r.top1.mean), width: Math.max(1, bw - 2),
                              height: y(0) - y(r.top1.mean), fill: c, "class": "bar",
                              "data-method": m, "data-split": u.split});
        bar.appendChild(sv("title", {}, r.label + " on " + (t.architectures ? u.split : u.dataset) + ": " + meanSe(r.top1) + "% " + ci(r.top1)));
        g.appendChild(bar); n++;
        if (isNum(r.top1.ci95_low)) g.appendChild(sv("line", {x1: bx + bw / 2, x2: bx + bw / 2, "class": "ci",
          y1: y(r.top1.ci95_low), y2: y(r.top1.ci95_high), stroke: "#222", "stroke-width": 1.2}));
      });
      chanceLine(g, y, u.chance, M.l + gw * i + 2, M.l + gw * (i + 1) - 2, i === tables.length - 1);
    });
    svg.appendChild(g);
    svg.setAttribute("data-drawn", String(n));
  }

  function plotSize(t) {
    var fig = document.getElementById("fig-size"), svg = document.getElementById("plot-size"); clear(svg);
    fig.hidden = !t.architectures;  // one fixed target network: no size axis to plot
    if (!t.architectures) return;
    var pts = [];
    t.rows.forEach(function (r) { r.points.forEach(function (p) { if (p[0] > 0) pts.push([p[0], p[1], r.method]); }); });
    if (!pts.length) return noData(svg, "no per-architecture sizes in this table");
    var ps = pts.map(function (p) { return p[0]; }), as = pts.map(function (p) { return p[1]; });
    var lo = Math.min.apply(null, ps) / 1.5, hi = Math.max.apply(null, ps) * 1.5;
    var yr = yRange(Math.min.apply(null, as.concat(isNum(t.chance) ? [t.chance] : [])), Math.max.apply(null, as));
    var x = logScale(lo, hi, M.l, W - M.r), y = linScale(yr[0], yr[1], H - M.b, M.t);
    axes(svg, x, logTicks(lo, hi), count, "parameters of the architecture (log scale)",
         y, linTicks(yr[0], yr[1], 6), "top-1 (%)");
    chanceLine(svg, y, t.chance, M.l, W - M.r, true);
    var g = sv("g", {"class": "points"});
    pts.forEach(function (p) {
      var c = sv("circle", {cx: x(p[0]), cy: y(p[1]), r: 3, fill: color(p[2]), "fill-opacity": 0.6,
                            "class": "arch-pt", "data-method": p[2]});
      c.appendChild(sv("title", {}, p[2] + ": " + count(p[0]) + " params, " + p[1].toFixed(2) + "%"));
      g.appendChild(c);
    });
    svg.appendChild(g);
    svg.setAttribute("data-drawn", String(pts.length));
  }

  // ------------------------------------------------------------------ page
  function legend(t) {
    var box = document.getElementById("legend"); box.textContent = "";
    t.rows.forEach(function (r) {
      var s = el("span", {"class": "legend-item"});
      s.appendChild(el("span", {"class": "swatch", style: "background:" + color(r.method)}));
      s.appendChild(document.createTextNode(r.label));
      box.appendChild(s);
    });
  }

  function writeHash() {
    var h = "#table=" + encodeURIComponent(state.table) + "&sort=" + encodeURIComponent(state.sort) +
            "&dir=" + (state.dir > 0 ? "asc" : "desc");
    try { history.replaceState(null, "", h); } catch (e) { /* file:// in some browsers */ }
  }

  function readHash() {
    var h = (location.hash || "").replace(/^#/, ""), found = false;
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="); if (i < 0) return;
      var k, v;
      try { k = decodeURIComponent(kv.slice(0, i)); v = decodeURIComponent(kv.slice(i + 1)); } catch (e) { return; }
      if (k === "table") { state.table = v; found = true; state.sort = "rank"; state.dir = 1; }
      else if (k === "sort") state.sort = v;
      else if (k === "dir") state.dir = v === "desc" ? -1 : 1;
    });
    return found;
  }

  function buildEpisodes() {
    var host = document.getElementById("episode-suites"); host.textContent = "";
    var suites = [];
    DATA.tables.forEach(function (t) { if (!t.architectures && suites.indexOf(t.suite) < 0) suites.push(t.suite); });
    if (!suites.length) host.appendChild(el("p", {"class": "empty"}, "No entries yet."));
    suites.forEach(function (suite) {
      host.appendChild(el("h3", {}, suite));
      host.appendChild(el("p", {"class": "suite-text"}, DATA.suites[suite] || ""));
      var ul = el("ul", {"class": "table-list"});
      DATA.tables.filter(function (t) { return t.suite === suite; }).forEach(function (t) {
        var li = el("li");
        li.appendChild(el("a", {href: tableHref(t.id), "class": "table-link"}, t.title));
        var best = t.rows[0];
        li.appendChild(document.createTextNode(" — " + t.num_items + " " + t.unit + ", " + t.rows.length +
          (t.rows.length === 1 ? " entry" : " entries") + (best ? "; best " + best.label + " " + meanSe(best.top1) + "%" : "")));
        ul.appendChild(li);
      });
      host.appendChild(ul);
    });
  }

  function buildLabels() {
    var dl = document.getElementById("labels-list"); dl.textContent = "";
    Object.keys(DATA.statuses).forEach(function (k) {
      dl.appendChild(el("dt", {}, k)); dl.appendChild(el("dd", {}, DATA.statuses[k]));
    });
    dl.appendChild(el("dt", {}, "training"));
    dl.appendChild(el("dd", {}, "the compute the predictor was trained with, as its results state it (else its " +
      "training data): a predictor trained for minutes on a CPU is not a paper's full-budget run."));
  }

  function render(keepHash) {
    var t = currentTable();
    if (!t) {
      document.getElementById("table-wrap").textContent = "";
      document.getElementById("table-wrap").appendChild(el("div", {"class": "empty"}, "No entries yet."));
      ["plot-time", "plot-splits", "plot-size"].forEach(function (id) { clear(document.getElementById(id)); noData(document.getElementById(id), "no entries"); });
      document.body.setAttribute("data-rendered", "1");
      return;
    }
    state.table = t.id;
    document.getElementById("table-select").value = t.id;
    document.getElementById("table-title").textContent = t.title;
    document.getElementById("table-info").textContent = t.num_items + " " + t.unit + " · release " + t.release +
      " (split " + t.split_sha256.slice(0, 12) + "…) · dataset " + t.dataset_sha256.slice(0, 12) + "…" +
      (isNum(t.chance) ? " · chance " + f2(t.chance) + "%" : "");
    downloads(document.getElementById("table-downloads"), t.id, tableCsv(t), t);
    legend(t); renderTable(t); plotTime(t); plotSplits(t); plotSize(t);
    if (keepHash !== false) writeHash();
    document.body.setAttribute("data-rendered", "1");
  }

  function init() {
    var sel = document.getElementById("table-select"), groups = {};
    DATA.tables.forEach(function (t) {
      var key = t.architectures ? t.suite + " " + t.release + " (architectures)" : t.suite + " (episodes)";
      if (!groups[key]) { groups[key] = el("optgroup", {label: key}); sel.appendChild(groups[key]); }
      groups[key].appendChild(el("option", {value: t.id}, t.title));
    });
    sel.addEventListener("change", function () { state.table = sel.value; state.sort = "rank"; state.dir = 1; render(); });
    window.addEventListener("hashchange", function () {
      if (readHash()) { render(false); document.getElementById("splits").scrollIntoView(); }
    });
    buildOverviews();
    buildEpisodes();
    buildLabels();
    var fromHash = readHash();
    render(fromHash);
  }

  init();
})();
