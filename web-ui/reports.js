// Reports page (seed 004 §2.11-2.13): phone-group and operator reports with up to 4
// comparison periods, SVG line/bar/pie charts, value tables and the CSV download.
// Loaded after app.js and monitor.js (strings, loadPref).
"use strict";

Object.assign(TEXT.ja, {
  "rep.title": "レポート", "rep.kind": "レポート", "rep.groups_report": "電話グループレポート",
  "rep.operators_report": "オペレーターレポート", "rep.unit": "集計単位", "rep.day": "日", "rep.hour": "時間",
  "rep.month": "月", "rep.weekday": "曜日", "rep.view": "集計項目", "rep.calls": "通話集計", "rep.status": "ステータス集計",
  "rep.all": "全て", "rep.periods": "期間（1つ目がレポート、比較期間は4つまで）", "rep.from": "開始", "rep.to": "終了",
  "rep.who": "電話グループ / オペレーター", "rep.who_free": "またはカンマ区切りで入力",
  "rep.run": "表示", "rep.csv": "CSVダウンロード", "rep.chart": "グラフ", "rep.line": "折れ線", "rep.bar": "棒",
  "rep.pie": "円", "rep.metric": "項目", "rep.period_n": "期間{n}", "rep.empty": "データがありません。",
});
Object.assign(TEXT.en, {
  "rep.title": "Reports", "rep.kind": "Report", "rep.groups_report": "Phone-group report",
  "rep.operators_report": "Operator report", "rep.unit": "Unit", "rep.day": "Day", "rep.hour": "Hour",
  "rep.month": "Month", "rep.weekday": "Weekday", "rep.view": "Items", "rep.calls": "Calls", "rep.status": "Statuses",
  "rep.all": "All", "rep.periods": "Periods (the first is the report, up to 4 to compare)", "rep.from": "From", "rep.to": "To",
  "rep.who": "Groups / operators", "rep.who_free": "Or type them, comma-separated",
  "rep.run": "Show", "rep.csv": "Download CSV", "rep.chart": "Chart", "rep.line": "Line", "rep.bar": "Bar",
  "rep.pie": "Pie", "rep.metric": "Item", "rep.period_n": "Period {n}", "rep.empty": "No data.",
});

const REP_MAX_PERIODS = 5;
const REP_MAX_SERIES = 10;
const REP_COLOURS = ["#1f6feb", "#d9480f", "#2b8a3e", "#ae3ec9", "#f59f00", "#0c8599", "#e03131", "#5c940d", "#862e9c", "#495057"];
const SVG_NS = "http://www.w3.org/2000/svg";

// A cell as a number: h:mm:ss as seconds, "19.3" as 19.3, anything else 0.
function repNumber(s) {
  if (/^\d+:\d{2}:\d{2}$/.test(s)) { const [h, m, x] = s.split(":").map(Number); return h * 3600 + m * 60 + x; }
  const n = Number(s);
  return Number.isFinite(n) ? n : 0;
}

function svgEl(name, attrs, text) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// Draws series [{name, points: [{label, value}]}] as a line or bar chart, or a pie of
// [{name, value}], into the svg; returns the legend entries.
function drawChart(svg, type, series, pie) {
  svg.replaceChildren();
  const W = 800, H = 320, L = 60, B = 40, T = 10, R = 10;
  if (type === "pie") {
    const total = pie.reduce((a, p) => a + p.value, 0);
    if (!total) { svg.appendChild(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, t("rep.empty"))); return pie; }
    let a0 = -Math.PI / 2;
    const cx = W / 2, cy = H / 2, r = H / 2 - 20;
    pie.forEach((p, i) => {
      const a1 = a0 + (p.value / total) * 2 * Math.PI;
      const large = a1 - a0 > Math.PI ? 1 : 0;
      const x0 = cx + r * Math.cos(a0), y0 = cy + r * Math.sin(a0), x1 = cx + r * Math.cos(a1), y1 = cy + r * Math.sin(a1);
      const d = p.value === total ? `M ${cx - r} ${cy} a ${r} ${r} 0 1 0 ${2 * r} 0 a ${r} ${r} 0 1 0 ${-2 * r} 0`
        : `M ${cx} ${cy} L ${x0} ${y0} A ${r} ${r} 0 ${large} 1 ${x1} ${y1} Z`;
      svg.appendChild(svgEl("path", { d, fill: REP_COLOURS[i % REP_COLOURS.length], "data-name": p.name }));
      a0 = a1;
    });
    return pie;
  }
  const labels = series.length ? series[0].points.map((p) => p.label) : [];
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p.value)));
  const x = (i) => L + (labels.length <= 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (labels.length - 1));
  const y = (v) => H - B - (v / max) * (H - B - T);
  svg.appendChild(svgEl("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: "#888" }));
  svg.appendChild(svgEl("line", { x1: L, y1: T, x2: L, y2: H - B, stroke: "#888" }));
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(svgEl("text", { x: L - 4, y: y(max * f) + 4, "text-anchor": "end" }, String(Math.round(max * f * 10) / 10)));
  }
  const step = Math.max(1, Math.ceil(labels.length / 12));
  labels.forEach((l, i) => {
    if (i % step === 0) svg.appendChild(svgEl("text", { x: x(i), y: H - B + 16, "text-anchor": "middle" }, l));
  });
  const slot = (W - L - R) / Math.max(1, labels.length);
  series.forEach((s, si) => {
    const colour = REP_COLOURS[si % REP_COLOURS.length];
    if (type === "bar") {
      const w = Math.max(1, (slot * 0.8) / series.length);
      s.points.forEach((p, i) => {
        const bx = L + i * slot + slot * 0.1 + si * w;
        svg.appendChild(svgEl("rect", { x: bx, y: y(p.value), width: w, height: H - B - y(p.value), fill: colour }));
      });
    } else {
      const pts = s.points.map((p, i) => x(i) + "," + y(p.value)).join(" ");
      svg.appendChild(svgEl("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2 }));
      // Dots too: a one-period report is a single point.
      s.points.forEach((p, i) => svg.appendChild(svgEl("circle", { cx: x(i), cy: y(p.value), r: 3, fill: colour })));
    }
  });
  return series;
}

PAGES.reports = async function () {
  const me = await session(false);
  if (!me) return;
  const may = (p) => me.permissions.includes(p);
  const prefKey = (k) => "hakoden.reports." + k + "." + me.user.id;
  const form = document.getElementById("report-form");
  const today = new Date();
  const iso = (d) => d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  const pbox = document.getElementById("r-periods");
  for (let i = 0; i < REP_MAX_PERIODS; i++) {
    const row = document.createElement("div");
    row.className = "period";
    const label = document.createElement("span"); label.textContent = t("rep.period_n", { n: i + 1 });
    const from = document.createElement("input"); from.type = "date"; from.id = "r-from-" + i; from.setAttribute("aria-label", t("rep.from"));
    const to = document.createElement("input"); to.type = "date"; to.id = "r-to-" + i; to.setAttribute("aria-label", t("rep.to"));
    if (i === 0) { from.value = iso(today); to.value = iso(today); }
    row.append(label, from, document.createTextNode("–"), to);
    pbox.appendChild(row);
  }
  const kindSel = document.getElementById("r-kind");
  const targetsBox = document.getElementById("r-targets");
  const fillTargets = async () => {
    const groups = kindSel.value === "groups";
    document.getElementById("r-view-wrap").hidden = groups;
    targetsBox.replaceChildren();
    if (!may("monitor_view")) return;
    const r = await api("GET", groups ? "/queues" : "/agents");
    const names = r.status === 200 ? (groups ? r.body.queues.map((q) => q.name) : r.body.agents.map((a) => a.agent)) : [];
    for (const n of names) {
      const l = document.createElement("label");
      const i = document.createElement("input"); i.type = "checkbox"; i.value = n;
      const s = document.createElement("span"); s.textContent = n;
      l.append(i, s); targetsBox.appendChild(l);
    }
  };
  kindSel.addEventListener("change", fillTargets);
  await fillTargets();

  const query = () => {
    const periods = [];
    for (let i = 0; i < REP_MAX_PERIODS; i++) {
      const f = document.getElementById("r-from-" + i).value, to = document.getElementById("r-to-" + i).value;
      if (f || to) periods.push((f || to) + ".." + (to || f));
    }
    const picked = [...targetsBox.querySelectorAll("input:checked")].map((i) => i.value);
    const typed = document.getElementById("r-only").value.split(",").map((s) => s.trim()).filter(Boolean);
    const only = picked.concat(typed);
    const q = new URLSearchParams({ unit: document.getElementById("r-unit").value, periods: periods.join(",") });
    if (only.length) q.set(kindSel.value === "groups" ? "groups" : "agents", only.join(","));
    return q.toString();
  };

  let result = null;
  const columnsKey = () => prefKey("columns." + kindSel.value);
  const visible = () => {
    const header = result.header;
    const firstStatus = header.indexOf("ログイン時間合計");
    const view = document.getElementById("r-view").value;
    let idx = header.map((_, i) => i);
    if (result.kind === "operators" && firstStatus > 0 && view === "calls") idx = idx.filter((i) => i < firstStatus);
    if (result.kind === "operators" && firstStatus > 0 && view === "status") idx = idx.filter((i) => i < 3 || i >= firstStatus);
    const hidden = loadPref(columnsKey(), []);
    return idx.filter((i) => i < 3 || !hidden.includes(header[i]));
  };

  const renderTables = () => {
    const box = document.getElementById("r-tables");
    box.replaceChildren();
    const idx = visible();
    result.periods.forEach((p, n) => {
      const h = document.createElement("h2"); h.textContent = t("rep.period_n", { n: n + 1 });
      const wrap = document.createElement("div"); wrap.className = "scroll";
      const table = document.createElement("table"); table.className = "mon report"; table.dataset.period = String(n);
      const thead = table.createTHead().insertRow();
      for (const i of idx) { const th = document.createElement("th"); th.textContent = p.header[i] || ""; thead.appendChild(th); }
      const tbody = table.createTBody();
      for (const row of p.rows) { const tr = tbody.insertRow(); for (const i of idx) cell(tr, row[i] || ""); }
      wrap.appendChild(table);
      box.append(h, wrap);
    });
  };

  const renderChart = () => {
    const type = document.getElementById("r-chart").value;
    const col = Number(document.getElementById("r-metric").value);
    const series = [];
    result.periods.forEach((p, n) => {
      const byScope = new Map();
      for (const row of p.rows) {
        if (row[0] === "合計") continue;
        const scope = row[1] + (row[2] && row[2] !== "summary" ? " " + row[2] : "");
        if (!byScope.has(scope)) byScope.set(scope, []);
        byScope.get(scope).push({ label: row[0], value: repNumber(row[col] || "") });
      }
      for (const [scope, points] of byScope) {
        if (series.length < REP_MAX_SERIES) series.push({ name: (result.periods.length > 1 ? t("rep.period_n", { n: n + 1 }) + " " : "") + scope, points });
      }
    });
    const first = result.periods[0] || { rows: [] };
    const pie = first.rows.filter((r) => r[0] === "合計" && r[2] !== "summary").slice(0, REP_MAX_SERIES)
      .map((r) => ({ name: r[1], value: repNumber(r[col] || "") }));
    const legend = drawChart(document.getElementById("r-svg"), type, series, pie);
    const lb = document.getElementById("r-legend");
    lb.replaceChildren(...legend.map((s, i) => {
      const span = document.createElement("span");
      const sw = document.createElement("i"); sw.style.background = REP_COLOURS[i % REP_COLOURS.length];
      span.append(sw, document.createTextNode(s.name));
      return span;
    }));
  };

  const renderColumns = () => {
    const box = document.getElementById("r-cols");
    box.replaceChildren();
    const hidden = loadPref(columnsKey(), []);
    result.header.slice(3).forEach((name) => {
      const l = document.createElement("label");
      const i = document.createElement("input"); i.type = "checkbox"; i.checked = !hidden.includes(name);
      i.addEventListener("change", () => {
        const now = loadPref(columnsKey(), []).filter((n) => n !== name);
        if (!i.checked) now.push(name);
        localStorage.setItem(columnsKey(), JSON.stringify(now));
        renderTables();
      });
      const s = document.createElement("span"); s.textContent = name;
      l.append(i, s); box.appendChild(l);
    });
    const metric = document.getElementById("r-metric");
    metric.replaceChildren(...result.header.map((name, i) => new Option(name, String(i))).slice(3));
  };

  document.getElementById("r-chart").addEventListener("change", () => result && renderChart());
  document.getElementById("r-metric").addEventListener("change", () => result && renderChart());
  document.getElementById("r-view").addEventListener("change", () => result && renderTables());

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showErrors(form, {});
    formError(form, "");
    const q = query();
    const r = await api("GET", "/reports/" + kindSel.value + "?" + q);
    if (r.status === 401) return go("login.html");
    if (r.status === 422) return showErrors(form, r.body.errors);
    if (r.status !== 200) return formError(form, t("error.generic", { s: r.status }));
    result = r.body;
    const csv = document.getElementById("r-csv");
    csv.href = "/api/v1/reports/" + kindSel.value + "/csv?" + q;
    csv.hidden = false;
    document.getElementById("r-result").hidden = false;
    renderColumns();
    renderTables();
    renderChart();
    document.body.dataset.reportRuns = String(Number(document.body.dataset.reportRuns || 0) + 1);
  });
};
