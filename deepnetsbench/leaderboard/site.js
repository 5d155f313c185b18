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
  function f2(x) { return x === null || x === undefined ? "–" : x.toFixed(2); }
  function meanSe(s) {
    if (!s || s.mean === null) return "–";
    return s.se === null ? f2(s.mean) : f2(s.mean) + " ± " + f2(s.se);
  }
  function ci(s) { return !s || s.ci95_low === null ? "–" : "[" + f2(s.ci95_low) + ", " + f2(s.ci95_high) + "]"; }
  function secs(x) {
    if (x === null || x === undefined) return "–";
    if (x < 1e-3) return (x * 1e6).toFixed(0) + " µs";
    if (x < 1) return (x * 1e3).toFixed(1) + " ms";
    return x.toFixed(2) + " s";
  }
  function count(n) {
    if (n === null || n === undefined) return "–";
    if (n >= 1e9) return (n / 1e9).toFixed(2) + " B";
    if (n >= 1e6) return (n / 1e6).toFixed(2) + " M";
    if (n >= 1e3) return (n / 1e3).toFixed(1) + " K";
    return String(n);
  }
  function mean(s) { return s ? s.mean : null; }

  // ------------------------------------------------------------------ table
  var COLUMNS = [
    {key: "rank", label: "Rank", cls: "num rank", dir: 1, value: function (r) { return r.rank; },
     text: function (r) { return String(r.rank); }},
    {key: "method", label: "Method", dir: 1, value: function (r) { return r.method.toLowerCase(); },
     render: function (td, r) {
       td.appendChild(el("span", {"class": "swatch", style: "background:" + color(r.method)}));
       var name = r.method + (r.version ? " " + r.version : "");
       if (/^https?:\/\//.test(r.url || "")) td.appendChild(el("a", {href: r.url, rel: "noopener"}, name));
       else td.appendChild(document.createTextNode(name));
     }},
    {key: "top1", label: "Top-1 (%)", cls: "num", dir: -1, value: function (r) { return mean(r.top1); },
     text: function (r) { return meanSe(r.top1); }},
    {key: "ci", label: "95% CI", cls: "num", dir: -1, value: function (r) { return r.top1 ? r.top1.ci95_low : null; },
     text: function (r) { return ci(r.top1); }},
    {key: "top5", label: "Top-5 (%)", cls: "num", dir: -1, value: function (r) { return mean(r.top5); },
     text: function (r) { return meanSe(r.top5); }},
    {key: "time", label: "Prediction time", cls: "num", dir: 1, value: function (r) { return mean(r.predict_time_s); },
     text: function (r) { return secs(mean(r.predict_time_s)); }},
    {key: "speedup", label: "Speed-up", cls: "num", dir: -1, optional: true,
     value: function (r) { return r.speedup; },
     text: function (r) { return r.speedup === null ? "–" : (r.speedup_lower_bound ? "≥" : "") + r.speedup.toFixed(2) + "×"; }},
    {key: "finetune", label: "Fine-tuned top-1 (%)", cls: "num", dir: -1, optional: true,
     value: function (r) { return mean(r.finetune_top1); }, text: function (r) { return meanSe(r.finetune_top1); }},
    {key: "params", label: "Method params", cls: "num", dir: 1, value: function (r) { return r.method_params; },
     text: function (r) { return count(r.method_params); }},
    {key: "failed", label: "Failed", cls: "num", dir: 1, value: function (r) { return r.n_failed; },
     text: function (r) { return r.n_failed + "/" + r.n; }},
    {key: "trained_on", label: "Trained on", dir: 1, value: function (r) { return (r.trained_on || "").toLowerCase(); },
     text: function (r) { return r.trained_on || "–"; }},
    {key: "device", label: "Prediction hardware", dir: 1, value: function (r) { return r.gpu || r.device; },
     text: function (r) { return r.gpu || r.device; }},
    {key: "date", label: "Date", dir: -1, value: function (r) { return r.date; }, text: function (r) { return r.date; }},
    {key: "status", label: "Status", dir: 1, value: function (r) { return r.reproduced ? 0 : 1; },
     render: function (td, r) {
       td.appendChild(el("span", {"class": "badge " + (r.reproduced ? "rep" : "self")},
                         r.reproduced ? "reproduced" : "self-reported"));
     }}
  ];

  function currentTable() {
    for (var i = 0; i < DATA.tables.length; i++) if (DATA.tables[i].id === state.table) return DATA.tables[i];
    return DATA.tables[0] || null;
  }

  function compare(col, dir) {
    return function (a, b) {
      var x = col.value(a), y = col.value(b);
      var xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn || yn) return xn === yn ? a.rank - b.rank : (xn ? 1 : -1);  // missing values last
      if (x < y) return -dir;
      if (x > y) return dir;
      return a.rank - b.rank;
    };
  }

  function renderTable(t) {
    var table = document.getElementById("leaderboard");
    var thead = table.tHead, tbody = table.tBodies[0];
    thead.textContent = ""; tbody.textContent = "";
    var cols = COLUMNS.filter(function (c) {
      return !c.optional || t.rows.some(function (r) { return c.value(r) !== null && c.value(r) !== undefined; });
    });
    var hr = el("tr");
    cols.forEach(function (c) {
      var th = el("th", {"data-key": c.key, scope: "col", title: "Sort by " + c.label}, c.label);
      if (c.key === state.sort) th.setAttribute("aria-sort", state.dir > 0 ? "ascending" : "descending");
      th.addEventListener("click", function () { sortBy(c.key); });
      hr.appendChild(th);
    });
    thead.appendChild(hr);
    var col = COLUMNS.filter(function (c) { return c.key === state.sort; })[0] || COLUMNS[0];
    var rows = t.rows.slice().sort(compare(col, state.dir));
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
    render();
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
  function clear(svg) { svg.textContent = ""; }
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

  // ------------------------------------------------------------------ plots
  function plotTime(t) {
    var svg = document.getElementById("plot-time"); clear(svg);
    var rows = t.rows.filter(function (r) { return mean(r.predict_time_s) > 0 && mean(r.top1) !== null; });
    if (!rows.length) return noData(svg, "no prediction times in this table");
    var ts = rows.map(function (r) { return r.predict_time_s.mean; });
    var lo = Math.min.apply(null, ts) / 2, hi = Math.max.apply(null, ts) * 2;
    var yr = yRange(Math.min.apply(null, rows.map(function (r) { return r.top1.ci95_low; })),
                    Math.max.apply(null, rows.map(function (r) { return r.top1.ci95_high; })));
    var x = logScale(lo, hi, M.l, W - M.r), y = linScale(yr[0], yr[1], H - M.b, M.t);
    axes(svg, x, logTicks(lo, hi), secs, "prediction time per architecture (log scale)",
         y, linTicks(yr[0], yr[1], 6), "top-1 (%)");
    var g = sv("g", {"class": "points"}), labels = [];
    rows.forEach(function (r) {
      var cx = x(r.predict_time_s.mean), cy = y(r.top1.mean), c = color(r.method);
      g.appendChild(sv("line", {x1: cx, x2: cx, y1: y(r.top1.ci95_low), y2: y(r.top1.ci95_high),
                                stroke: c, "stroke-width": 2, "class": "ci"}));
      var p = sv("circle", {cx: cx, cy: cy, r: 6, fill: c, "class": "pt", "data-method": r.method});
      p.appendChild(sv("title", {}, r.method + ": " + meanSe(r.top1) + "% in " + secs(r.predict_time_s.mean)));
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
      g.appendChild(sv("text", {x: l.x, y: l.y, "class": "pt-label"}, l.text));
    });
    svg.appendChild(g);
  }

  function plotSplits(t) {
    var svg = document.getElementById("plot-splits"); clear(svg);
    var tables = DATA.tables.filter(function (u) { return u.suite === t.suite && u.dataset === t.dataset; });
    var methods = [];
    tables.forEach(function (u) { u.rows.forEach(function (r) { if (methods.indexOf(r.method) < 0) methods.push(r.method); }); });
    methods.sort(function (a, b) { return DATA.methods.indexOf(a) - DATA.methods.indexOf(b); });
    if (!methods.length) return noData(svg, "no entries");
    var top = 0;
    tables.forEach(function (u) { u.rows.forEach(function (r) { top = Math.max(top, r.top1.ci95_high || r.top1.mean || 0); }); });
    var ymax = Math.min(100, Math.max(10, Math.ceil(top * 1.1 / 10) * 10));
    var y = linScale(0, ymax, H - M.b, M.t);
    var gw = (W - M.l - M.r) / tables.length, bw = Math.min(36, (gw - 16) / methods.length);
    var xg = function (i) { return M.l + gw * (i + 0.5); };
    axes(svg, xg, [], String, "split", y, linTicks(0, ymax, 5), "top-1 (%)");
    var g = sv("g", {"class": "bars"});
    tables.forEach(function (u, i) {
      if (u.id === t.id) g.appendChild(sv("rect", {x: M.l + gw * i + 2, y: M.t, width: gw - 4, height: H - M.b - M.t,
                                                   fill: "#f1f4fa", "class": "current"}));
      g.appendChild(sv("text", {x: xg(i), y: H - M.b + 15, "text-anchor": "middle"},
                       u.split + (u.id.indexOf("@") >= 0 ? " v" + u.split_version : "")));
      var x0 = xg(i) - bw * methods.length / 2;
      methods.forEach(function (m, j) {
        var r = u.rows.filter(function (q) { return q.method === m; })[0];
        if (!r || r.top1.mean === null) return;
        var bx = x0 + j * bw, c = color(m);
        var bar = sv("rect", {x: bx + 1, y: y(r.top1.mean), width: Math.max(1, bw - 2),
                              height: y(0) - y(r.top1.mean), fill: c, "class": "bar",
                              "data-method": m, "data-split": u.split});
        bar.appendChild(sv("title", {}, m + " on " + u.split + ": " + meanSe(r.top1) + "%"));
        g.appendChild(bar);
        if (r.top1.ci95_low !== null) g.appendChild(sv("line", {x1: bx + bw / 2, x2: bx + bw / 2,
          y1: y(r.top1.ci95_low), y2: y(r.top1.ci95_high), stroke: "#222", "stroke-width": 1.2}));
      });
    });
    svg.appendChild(g);
  }

  function plotSize(t) {
    var svg = document.getElementById("plot-size"); clear(svg);
    var pts = [];
    t.rows.forEach(function (r) { r.points.forEach(function (p) { if (p[0] > 0) pts.push([p[0], p[1], r.method]); }); });
    if (!pts.length) return noData(svg, "no per-architecture sizes in this table");
    var ps = pts.map(function (p) { return p[0]; }), as = pts.map(function (p) { return p[1]; });
    var lo = Math.min.apply(null, ps) / 1.5, hi = Math.max.apply(null, ps) * 1.5;
    var yr = yRange(Math.min.apply(null, as), Math.max.apply(null, as));
    var x = logScale(lo, hi, M.l, W - M.r), y = linScale(yr[0], yr[1], H - M.b, M.t);
    axes(svg, x, logTicks(lo, hi), count, "parameters of the architecture (log scale)",
         y, linTicks(yr[0], yr[1], 6), "top-1 (%)");
    var g = sv("g", {"class": "points"});
    pts.forEach(function (p) {
      var c = sv("circle", {cx: x(p[0]), cy: y(p[1]), r: 3, fill: color(p[2]), "fill-opacity": 0.6,
                            "class": "arch-pt", "data-method": p[2]});
      c.appendChild(sv("title", {}, p[2] + ": " + count(p[0]) + " params, " + p[1].toFixed(2) + "%"));
      g.appendChild(c);
    });
    svg.appendChild(g);
  }

  // ------------------------------------------------------------------ page
  function legend(t) {
    var box = document.getElementById("legend"); box.textContent = "";
    t.rows.forEach(function (r) {
      var s = el("span", {"class": "legend-item"});
      s.appendChild(el("span", {"class": "swatch", style: "background:" + color(r.method)}));
      s.appendChild(document.createTextNode(r.method));
      box.appendChild(s);
    });
  }

  function writeHash() {
    var h = "#table=" + encodeURIComponent(state.table) + "&sort=" + encodeURIComponent(state.sort) +
            "&dir=" + (state.dir > 0 ? "asc" : "desc");
    try { history.replaceState(null, "", h); } catch (e) { /* file:// in some browsers */ }
  }

  function readHash() {
    var h = (location.hash || "").replace(/^#/, "");
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="); if (i < 0) return;
      var k = decodeURIComponent(kv.slice(0, i)), v = decodeURIComponent(kv.slice(i + 1));
      if (k === "table") state.table = v;
      else if (k === "sort") state.sort = v;
      else if (k === "dir") state.dir = v === "desc" ? -1 : 1;
    });
  }

  function render() {
    var t = currentTable();
    if (!t) {
      document.getElementById("table-wrap").appendChild(el("div", {"class": "empty"}, "No entries yet."));
      ["plot-time", "plot-splits", "plot-size"].forEach(function (id) { noData(document.getElementById(id), "no entries"); });
      return;
    }
    state.table = t.id;
    document.getElementById("table-select").value = t.id;
    document.getElementById("table-info").textContent = t.num_items + " architectures · split v" +
      t.split_version + " (" + t.split_sha256.slice(0, 12) + "…) · dataset " + t.dataset_sha256.slice(0, 12) + "…";
    legend(t); renderTable(t); plotTime(t); plotSplits(t); plotSize(t);
    writeHash();
    document.body.setAttribute("data-rendered", "1");
  }

  function init() {
    var sel = document.getElementById("table-select");
    DATA.tables.forEach(function (t) { sel.appendChild(el("option", {value: t.id}, t.title)); });
    sel.addEventListener("change", function () { state.table = sel.value; render(); });
    readHash();
    render();
  }

  init();
})();
