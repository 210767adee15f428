// The campaigns page (キャンペーン / 自動発信 / キャンペーン統計 / 再コール一覧): campaigns with
// their counts, a campaign's auto-dial list with results, adding and uploading customers,
// statistics with CSV, and the user's recall list. Loaded after app.js and phonebook.js.
"use strict";

Object.assign(TEXT.ja, {
  "cp.title": "キャンペーン", "cp.settings_hint": "キャンペーンの設定は PBX 設定（campaign）で編集します。",
  "cp.name": "名称", "cp.status": "ステータス", "cp.mode": "区分", "cp.entries": "件数", "cp.waiting": "発信待機中", "cp.active": "発信中",
  "cp.recalls": "再コール一覧", "cp.campaign": "キャンペーン", "cp.number": "電話番号", "cp.customer": "顧客名", "cp.schedule": "予約",
  "cp.list": "自動発信", "cp.result": "結果", "cp.calls": "コール数", "cp.agent": "エージェント", "cp.set": "結果入力",
  "cp.add": "顧客の追加", "cp.schedule_hint": "予約（YYYY-MM-DD HH:MM、任意）", "cp.assignee": "担当（内線、任意）", "cp.add_go": "追加", "cp.upload": "CSVアップロード",
  "cp.upload_hint": "電話番号,顧客名,担当,予約 を1行に1件。UTF-8 または Shift_JIS。", "cp.stats": "キャンペーン統計",
  "cp.by_date": "日付別", "cp.by_hour": "時間別", "cp.by_agent": "エージェント別", "cp.show": "表示", "cp.csv": "CSVダウンロード",
  "cp.on": "ON", "cp.off": "OFF", "cp.preview": "プレビュー", "cp.progressive": "プログレッシブ", "cp.dial": "発信",
  "cp.recall": "10分後に再コール", "cp.stop": "停止", "cp.dialing": "あなたの内線を呼び出しています。", "cp.records": "件数", "cp.attempts": "コール数",
  "cp.added": "{n} 件を追加しました。",
});
Object.assign(TEXT.en, {
  "cp.title": "Campaigns", "cp.settings_hint": "Campaign settings are edited on the settings page (section campaign).",
  "cp.name": "Name", "cp.status": "Status", "cp.mode": "Mode", "cp.entries": "Entries", "cp.waiting": "Waiting", "cp.active": "In progress",
  "cp.recalls": "My recall list", "cp.campaign": "Campaign", "cp.number": "Number", "cp.customer": "Customer", "cp.schedule": "Scheduled",
  "cp.list": "Auto-dial list", "cp.result": "Result", "cp.calls": "Calls", "cp.agent": "Agent", "cp.set": "Set result",
  "cp.add": "Add a customer", "cp.schedule_hint": "Scheduled (YYYY-MM-DD HH:MM, optional)", "cp.assignee": "Assignee (extension, optional)", "cp.add_go": "Add", "cp.upload": "Upload a list (CSV)",
  "cp.upload_hint": "number,name,assignee,schedule — one customer per line; UTF-8 or Shift_JIS.", "cp.stats": "Statistics",
  "cp.by_date": "By date", "cp.by_hour": "By hour", "cp.by_agent": "By agent", "cp.show": "Show", "cp.csv": "Download CSV",
  "cp.on": "ON", "cp.off": "OFF", "cp.preview": "Preview", "cp.progressive": "Progressive", "cp.dial": "Dial",
  "cp.recall": "Recall in 10 min", "cp.stop": "Stop", "cp.dialing": "Ringing your extension.", "cp.records": "Records", "cp.attempts": "Calls",
  "cp.added": "{n} added.",
});

PAGES.campaigns = async function campaigns() {
  const me = await session(false);
  if (!me) return;
  let current = null;
  const results = {};
  const label = (c, key) => {
    const r = (results[c] || []).find((x) => String(x.number) === key);
    return r ? r.number + " " + r.text : key;
  };
  const loadCampaigns = async () => {
    const r = await api("GET", "/campaigns");
    if (r.status === 401) return go("login.html");
    const tbody = document.querySelector("#cp-table tbody");
    tbody.replaceChildren();
    for (const c of (r.body && r.body.campaigns) || []) {
      results[c.name] = c.results;
      const tr = document.createElement("tr");
      tr.dataset.campaign = c.name;
      cell(tr, c.id); cell(tr, c.name); cell(tr, t(c.enabled ? "cp.on" : "cp.off")); cell(tr, t("cp." + c.mode));
      cell(tr, String(c.entries)); cell(tr, String(c.waiting)); cell(tr, String(c.active));
      tr.addEventListener("click", () => { current = c.name; loadList(); });
      tbody.appendChild(tr);
    }
  };
  const loadList = async () => {
    if (!current) return;
    document.getElementById("list-section").hidden = false;
    document.getElementById("cp-name").textContent = current;
    const r = await api("GET", "/campaigns/" + encodeURIComponent(current) + "/entries");
    const tbody = document.querySelector("#entries tbody");
    tbody.replaceChildren();
    for (const e of (r.body && r.body.entries) || []) {
      const tr = document.createElement("tr");
      tr.dataset.entry = e.id;
      cell(tr, String(e.id)); cell(tr, e.number); cell(tr, e.name); cell(tr, label(current, e.result));
      cell(tr, e.status); cell(tr, String(e.calls)); cell(tr, e.agent || "");
      const td = cell(tr, "");
      const sel = document.createElement("select");
      sel.className = "small";
      sel.appendChild(new Option("—", ""));
      for (const x of results[current] || []) sel.appendChild(new Option(x.number + " " + x.text, String(x.number)));
      sel.appendChild(new Option(t("cp.recall"), "recall"));
      sel.appendChild(new Option(t("cp.stop"), "stop"));
      sel.addEventListener("change", async () => {
        const v = sel.value;
        const body = v === "recall" ? { recall_minutes: 10 } : v === "stop" ? { stop: true } : { result: Number(v) };
        const res = await api("PUT", "/campaigns/" + encodeURIComponent(current) + "/entries/" + e.id + "/result", body);
        document.getElementById("entry-error").textContent = res.status === 200 ? "" :
          (res.body && (res.body.message || JSON.stringify(res.body.errors))) || t("error.generic", { s: res.status });
        loadList(); loadCampaigns();
      });
      td.appendChild(sel);
      tbody.appendChild(tr);
    }
    loadStats();
  };
  const statsQuery = () => {
    const q = new URLSearchParams({ unit: document.getElementById("s-unit").value });
    for (const k of ["from", "to"]) { const v = document.getElementById("s-" + k).value; if (v) q.set(k, v); }
    return q;
  };
  const loadStats = async () => {
    const q = statsQuery();
    const base = "/campaigns/" + encodeURIComponent(current) + "/stats?";
    document.getElementById("s-csv").href = "/api/v1" + base + q + "&csv=true";
    const r = await api("GET", base + q);
    document.getElementById("stats-error").textContent = r.status === 200 ? "" :
      (r.body && r.body.errors ? Object.values(r.body.errors).join(" ") : t("error.generic", { s: r.status }));
    if (r.status !== 200) return;
    const head = document.querySelector("#stats thead");
    head.replaceChildren();
    const hr = document.createElement("tr");
    for (const h of ["", t("cp.records"), t("cp.attempts")].concat(r.body.columns.map((c) => c.label))) {
      const th = document.createElement("th"); th.textContent = h; hr.appendChild(th);
    }
    head.appendChild(hr);
    const tbody = document.querySelector("#stats tbody");
    tbody.replaceChildren();
    for (const row of r.body.rows) {
      const tr = document.createElement("tr");
      cell(tr, row.key); cell(tr, String(row.records)); cell(tr, String(row.calls));
      for (const n of row.counts) cell(tr, String(n));
      tbody.appendChild(tr);
    }
  };
  const loadRecalls = async () => {
    if (!me.user.extension) return;
    const r = await api("GET", "/recalls");
    if (r.status !== 200) return;
    document.getElementById("recalls-section").hidden = false;
    const tbody = document.querySelector("#recalls tbody");
    tbody.replaceChildren();
    for (const e of r.body.entries) {
      const tr = document.createElement("tr");
      cell(tr, e.campaign); cell(tr, e.number); cell(tr, e.name);
      cell(tr, e.schedule_ms ? new Date(e.schedule_ms).toLocaleString() : "");
      const b = document.createElement("button");
      b.className = "small"; b.textContent = t("cp.dial");
      b.addEventListener("click", async () => {
        const res = await api("POST", "/recalls/" + encodeURIComponent(e.campaign) + "/" + e.id + "/dial");
        document.getElementById("recall-status").textContent = res.status === 200 ? t("cp.dialing") :
          (res.body && res.body.message) || t("error.generic", { s: res.status });
        loadRecalls();
      });
      cell(tr, "").appendChild(b);
      tbody.appendChild(tr);
    }
  };
  const form = document.getElementById("add-form");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showErrors(form, {}); formError(form, "");
    const v = (id) => document.getElementById(id).value.trim();
    const body = { number: v("a-number"), name: v("a-name") };
    if (v("a-assignee")) body.assignee = v("a-assignee");
    if (v("a-schedule")) body.schedule = v("a-schedule");
    const r = await api("POST", "/campaigns/" + encodeURIComponent(current) + "/entries", body);
    if (r.status === 201) { form.reset(); loadCampaigns(); return loadList(); }
    if (r.status === 422) return showErrors(form, r.body.errors);
    formError(form, (r.body && r.body.message) || t("error.generic", { s: r.status }));
  });
  document.getElementById("import-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = document.getElementById("import-result");
    const file = document.getElementById("i-file").files[0];
    if (!file) { result.textContent = t("pb.pick"); return; }
    const r = await upload("/campaigns/" + encodeURIComponent(current) + "/entries/csv", file);
    const errors = document.getElementById("import-errors");
    const tbody = errors.querySelector("tbody");
    tbody.replaceChildren();
    if (r.status === 200) {
      result.textContent = t("cp.added", { n: r.body.added });
      for (const x of r.body.errors) { const tr = document.createElement("tr"); cell(tr, String(x.line)); cell(tr, x.message); tbody.appendChild(tr); }
      errors.hidden = r.body.errors.length === 0;
    } else {
      result.textContent = (r.body && r.body.message) || t("error.generic", { s: r.status });
    }
    loadCampaigns(); loadList();
  });
  document.getElementById("stats-form").addEventListener("submit", (e) => { e.preventDefault(); loadStats(); });
  await loadCampaigns();
  await loadRecalls();
};
