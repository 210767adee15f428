// The call-history page (通話履歴, seed 004 §2.14): filters, sort, paging, detailed view, CSV.
"use strict";

Object.assign(TEXT.ja, {
  "hs.title": "通話履歴", "hs.search": "検索", "hs.options": "検索オプション", "hs.from": "開始日時", "hs.to": "終了日時",
  "hs.caller": "発信者番号", "hs.external": "外線発信者番号", "hs.called": "着信者番号", "hs.destination": "発信先",
  "hs.match": "一致", "hs.contains": "部分一致", "hs.prefix": "前方一致", "hs.suffix": "後方一致", "hs.exact": "完全一致",
  "hs.not": "NOT検索", "hs.talk_min": "通話時間 最小（秒）", "hs.talk_max": "最大（秒）", "hs.kind": "制御",
  "hs.result": "通話結果", "hs.all": "全通話", "hs.incoming": "着信", "hs.outgoing": "発信", "hs.internal": "内線",
  "hs.answered": "応答", "hs.missed": "不在・放棄", "hs.busy": "話中", "hs.failed": "失敗", "hs.no_answer": "不在",
  "hs.cancelled": "放棄", "hs.sort": "並び順", "hs.time": "通話日時", "hs.talk": "通話時間", "hs.ring": "呼出時間",
  "hs.order": "順序", "hs.desc": "新しい順", "hs.asc": "古い順", "hs.view": "出力", "hs.normal": "通話履歴表示",
  "hs.detailed": "詳細表示", "hs.limit": "表示件数", "hs.export": "CSVファイル出力", "hs.count": "検索結果: {n} 件",
  "hs.truncated": "（最新の通話のみ検索しました）",
});
Object.assign(TEXT.en, {
  "hs.title": "Call history", "hs.search": "Search", "hs.options": "Search options", "hs.from": "From", "hs.to": "To",
  "hs.caller": "Caller", "hs.external": "Outside number", "hs.called": "Called number", "hs.destination": "Destination",
  "hs.match": "Match", "hs.contains": "contains", "hs.prefix": "starts with", "hs.suffix": "ends with", "hs.exact": "is",
  "hs.not": "NOT", "hs.talk_min": "Talk time at least (s)", "hs.talk_max": "at most (s)", "hs.kind": "Type",
  "hs.result": "Result", "hs.all": "All calls", "hs.incoming": "Incoming", "hs.outgoing": "Outgoing", "hs.internal": "Internal",
  "hs.answered": "Answered", "hs.missed": "Missed", "hs.busy": "Busy", "hs.failed": "Failed", "hs.no_answer": "No answer",
  "hs.cancelled": "Abandoned", "hs.sort": "Sort by", "hs.time": "Date/time", "hs.talk": "Talk time", "hs.ring": "Ringing",
  "hs.order": "Order", "hs.desc": "Newest first", "hs.asc": "Oldest first", "hs.view": "View", "hs.normal": "List",
  "hs.detailed": "Detailed", "hs.limit": "Rows", "hs.export": "Export CSV", "hs.count": "{n} calls found",
  "hs.truncated": " (only the newest calls were searched)",
});

function mmss(s) { return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0"); }

function when(ms) {
  const d = new Date(ms), p = (n) => String(n).padStart(2, "0");
  return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " + p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
}

PAGES.history = async function history() {
  const me = await session(false);
  if (!me) return;
  let offset = 0;
  const form = document.getElementById("filter");
  const val = (id) => document.getElementById(id).value.trim();
  const params = () => {
    const p = new URLSearchParams();
    for (const f of ["caller", "external", "called", "destination"]) {
      if (!val("f-" + f)) continue;
      p.set(f, val("f-" + f));
      p.set(f + "_match", val("f-" + f + "-match"));
      if (document.getElementById("f-" + f + "-not").checked) p.set(f + "_not", "true");
    }
    if (val("f-talk-min")) p.set("talk_min", val("f-talk-min"));
    if (val("f-talk-max")) p.set("talk_max", val("f-talk-max"));
    for (const f of ["kind", "result"]) {
      if (!val("f-" + f)) continue;
      p.set(f, val("f-" + f));
      if (document.getElementById("f-" + f + "-not").checked) p.set(f + "_not", "true");
    }
    if (val("f-from")) p.set("from", String(new Date(val("f-from")).getTime()));
    if (val("f-to")) p.set("to", String(new Date(val("f-to")).getTime() + 59999));
    p.set("sort", val("f-sort"));
    p.set("order", val("f-order"));
    p.set("tz", String(-new Date().getTimezoneOffset()));
    return p;
  };
  const load = async () => {
    formError(form, "");
    const p = params();
    p.set("view", val("f-view"));
    p.set("limit", val("f-limit"));
    p.set("offset", String(offset));
    const r = await api("GET", "/history?" + p);
    if (r.status === 401) return go("login.html");
    if (r.status === 422) return formError(form, Object.entries(r.body.errors).map(([k, v]) => k + ": " + v).join(" "));
    if (r.status !== 200) return formError(form, t("error.generic", { s: r.status }));
    document.getElementById("count").textContent = t("hs.count", { n: r.body.total }) + (r.body.truncated ? t("hs.truncated") : "");
    const limit = Number(val("f-limit"));
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = offset + limit >= r.body.total;
    const tbody = document.querySelector("#hs-table tbody");
    tbody.replaceChildren();
    for (const row of r.body.rows) {
      const tr = document.createElement("tr");
      cell(tr, when(row.start_ms)); cell(tr, row.caller); cell(tr, row.external); cell(tr, row.called);
      cell(tr, t("hs." + row.kind)); cell(tr, row.destination); cell(tr, t("hs." + row.result));
      cell(tr, mmss(row.ring_s)); cell(tr, mmss(row.talk_s));
      tbody.appendChild(tr);
      if (row.detail) {
        for (const leg of row.detail.legs || []) {
          const d = document.createElement("tr");
          d.className = "detail";
          cell(d, "  " + leg.leg); cell(d, leg.peer, "wrap"); cell(d, ""); cell(d, ""); cell(d, "");
          cell(d, leg.disposition); cell(d, String(leg.final_status)); cell(d, ""); cell(d, "");
          tbody.appendChild(d);
        }
        for (const w of row.detail.rewires || []) {
          const d = document.createElement("tr");
          d.className = "detail";
          cell(d, "  " + w.kind); cell(d, w.replaced + " → " + w.by); for (let i = 0; i < 7; i++) cell(d, "");
          tbody.appendChild(d);
        }
      }
    }
  };
  form.addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - Number(val("f-limit"))); load(); });
  document.getElementById("next").addEventListener("click", () => { offset += Number(val("f-limit")); load(); });
  document.getElementById("export").addEventListener("click", (e) => { e.currentTarget.href = "/api/v1/history/export?" + params(); });
  await load();
};
