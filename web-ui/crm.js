// The CRM page (顧客・案件・FAQ・チャット・CSVアップロード・定義・ワークフロー統計). Loaded after
// app.js, whose `PAGES`, `api`, `session`, `t`, `cell` and `showErrors` it uses. The record in
// the URL hash (`#customer=7`, `#case=12`) opens on load: the screen pop and chat links use it.
"use strict";

Object.assign(TEXT.ja, {
  "crm.title": "CRM", "crm.customers": "顧客", "crm.cases": "案件", "crm.faq": "FAQ", "crm.chat": "チャット",
  "crm.upload": "CSVアップロード", "crm.defs": "定義", "crm.stats": "ワークフロー統計", "crm.presence": "プレゼンス",
  "crm.name": "名称", "crm.phone": "電話番号", "crm.phones": "電話番号（カンマ区切り）", "crm.code": "顧客コード",
  "crm.tag": "タグ", "crm.tags": "タグ（カンマ区切り）", "crm.note": "備考", "crm.search": "検索", "crm.format": "業務",
  "crm.created": "登録", "crm.updated": "更新", "crm.new": "+新規", "crm.download": "CSVダウンロード",
  "crm.autodial": "自動発信", "crm.autodial_register": "一括して自動発信に登録", "crm.autodial_done": "{n} 件を登録しました。",
  "crm.bulk": "一括編集", "crm.bulk_tag": "チェックした顧客に付けるタグ", "crm.bulk_status": "チェックした案件のステータス",
  "crm.email": "メール", "crm.save": "変更を保存", "crm.delete": "削除する", "crm.calls": "通話履歴",
  "crm.when": "日時", "crm.caller": "発信者", "crm.called": "着信先", "crm.result": "結果", "crm.talk": "通話時間",
  "crm.recording": "録音", "crm.title_f": "題名", "crm.status": "ステータス", "crm.customer": "顧客",
  "crm.owner": "担当", "crm.workflow": "ワークフロー", "crm.detail": "詳細", "crm.notes": "注記",
  "crm.to": "宛先", "crm.message": "メッセージ", "crm.bold": "太文字", "crm.red": "赤文字", "crm.send": "送信",
  "crm.everyone": "全員", "crm.group": "グループ", "crm.agent": "エージェント",
  "crm.upload_hint": "5MB までの CSV（UTF-8 または Shift_JIS）。アップロードすると列の対応づけ画面になります。",
  "crm.file": "顧客CSVファイル", "crm.header_row": "最初の行は見出し（含まない）", "crm.delimiter": "区切り文字",
  "crm.comma": "カンマ", "crm.tab": "タブ", "crm.allow_dup": "電話番号の重複を許可する", "crm.upload_go": "アップロード",
  "crm.run": "実行", "crm.line": "行", "crm.field": "項目", "crm.problem": "内容",
  "crm.column": "列{n}", "crm.ignore": "--", "crm.imported": "{n} 件を登録しました。", "crm.skipped": "{n} 行はスキップしました:",
  "crm.preview": "{e} として読みました。列を対応づけて「実行」を押してください。", "crm.pick": "ファイルを選んでください。",
  "crm.fg": "文字色", "crm.bg": "背景色", "crm.custom_fields": "カスタムフィールド", "crm.category": "カテゴリ",
  "crm.kind": "区分", "crm.choices": "選択項目（カンマ区切り）", "crm.formats": "業務フォーマット",
  "crm.format_fields": "フィールド（JSON）", "crm.steps": "ワークフローステップ", "crm.workflows": "ワークフロー",
  "crm.buttons": "ボタン: 1行に1つ「ラベル>次のステップ」（空: 終了）", "crm.first_step": "最初のステップ",
  "crm.step": "ステップ", "crm.count": "件数", "crm.avg": "平均時間", "crm.max": "最大時間", "crm.min": "最小時間",
  "crm.total": "時間合計", "crm.sum": "合計", "crm.confirm": "本当に削除してよろしいでしょうか?", "crm.saved": "変更を保存しました",
  "crm.today": "今日", "crm.hits": "{n} 件", "crm.bulk_done": "{n} 件を更新しました。", "crm.none": "（なし）", "crm.end": "終了",
});
Object.assign(TEXT.en, {
  "crm.title": "CRM", "crm.customers": "Customers", "crm.cases": "Cases", "crm.faq": "FAQ", "crm.chat": "Chat",
  "crm.upload": "CSV upload", "crm.defs": "Definitions", "crm.stats": "Workflow statistics", "crm.presence": "Presence",
  "crm.name": "Name", "crm.phone": "Phone", "crm.phones": "Phones (comma separated)", "crm.code": "Customer code",
  "crm.tag": "Tag", "crm.tags": "Tags (comma separated)", "crm.note": "Note", "crm.search": "Search", "crm.format": "Format",
  "crm.created": "Created", "crm.updated": "Updated", "crm.new": "+ New", "crm.download": "Download CSV",
  "crm.autodial": "Auto-dial", "crm.autodial_register": "Register for auto-dial", "crm.autodial_done": "{n} registered.",
  "crm.bulk": "Bulk edit", "crm.bulk_tag": "Tag to add to the checked customers", "crm.bulk_status": "Status for the checked cases",
  "crm.email": "Mail", "crm.save": "Save", "crm.delete": "Delete", "crm.calls": "Call history",
  "crm.when": "When", "crm.caller": "Caller", "crm.called": "Called", "crm.result": "Result", "crm.talk": "Talk",
  "crm.recording": "Recording", "crm.title_f": "Title", "crm.status": "Status", "crm.customer": "Customer",
  "crm.owner": "Owner", "crm.workflow": "Workflow", "crm.detail": "Detail", "crm.notes": "Notes",
  "crm.to": "To", "crm.message": "Message", "crm.bold": "Bold", "crm.red": "Red", "crm.send": "Send",
  "crm.everyone": "Everyone", "crm.group": "Group", "crm.agent": "Agent",
  "crm.upload_hint": "CSV up to 5 MB (UTF-8 or Shift_JIS). Uploading shows the column mapping.",
  "crm.file": "Customer CSV file", "crm.header_row": "The first row is a header (skip it)", "crm.delimiter": "Delimiter",
  "crm.comma": "Comma", "crm.tab": "Tab", "crm.allow_dup": "Allow duplicate phone numbers", "crm.upload_go": "Upload",
  "crm.run": "Run", "crm.line": "Line", "crm.field": "Field", "crm.problem": "Problem",
  "crm.column": "Column {n}", "crm.ignore": "--", "crm.imported": "{n} customers imported.", "crm.skipped": "{n} rows skipped:",
  "crm.preview": "Read as {e}. Map the columns and press Run.", "crm.pick": "Choose a file.",
  "crm.fg": "Text colour", "crm.bg": "Background", "crm.custom_fields": "Custom fields", "crm.category": "Category",
  "crm.kind": "Kind", "crm.choices": "Choices (comma separated)", "crm.formats": "Business formats",
  "crm.format_fields": "Fields (JSON)", "crm.steps": "Workflow steps", "crm.workflows": "Workflows",
  "crm.buttons": "Buttons: one per line, label>next step (empty: end)", "crm.first_step": "First step",
  "crm.step": "Step", "crm.count": "Count", "crm.avg": "Average", "crm.max": "Max", "crm.min": "Min",
  "crm.total": "Total", "crm.sum": "Total", "crm.confirm": "Delete this record?", "crm.saved": "Saved",
  "crm.today": "Today", "crm.hits": "{n} found", "crm.bulk_done": "{n} updated.", "crm.none": "(none)", "crm.end": "end",
});

const $ = (id) => document.getElementById(id);
const list = (s) => s.split(/[,、]/).map((x) => x.trim()).filter(Boolean);
const when = (ms) => (ms ? new Date(ms).toLocaleString(lang() === "ja" ? "ja-JP" : "en-GB") : "");
const qs = (o) => Object.entries(o).filter(([, v]) => v !== "" && v !== undefined && v !== null)
  .map(([k, v]) => encodeURIComponent(k) + "=" + encodeURIComponent(v)).join("&");

function link(text, href, onClick) {
  const a = document.createElement("a");
  a.href = href; a.textContent = text;
  if (onClick) a.addEventListener("click", (e) => { e.preventDefault(); onClick(); });
  return a;
}

function checked(table) {
  return [...document.querySelectorAll("#" + table + " tbody input[type=checkbox]:checked")].map((c) => c.value);
}

async function sendFile(path, file) {
  const r = await fetch("/api/v1" + path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "text/csv", "X-CSRF-Token": csrf || "" }, body: file,
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, body: data };
}

function errorsText(r) {
  return r.body && r.body.errors ? Object.entries(r.body.errors).map(([k, v]) => k + ": " + v).join(" / ") : t("error.generic", { s: r.status });
}

PAGES.crm = async function crm() {
  const me = await session(false);
  if (!me) return;
  const may = (p) => me.permissions.includes(p);
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  let formats = [], workflows = [], customerFields = [];

  const tabs = document.querySelectorAll("[data-tab]");
  const show = (name) => {
    tabs.forEach((b) => b.setAttribute("aria-selected", String(b.dataset.tab === name)));
    document.querySelectorAll("[data-panel]").forEach((p) => { p.hidden = p.dataset.panel !== name; });
    if (name === "chat") chat.refresh(true);
    if (name === "defs") defs.load();
    if (name === "stats") stats.load();
  };
  tabs.forEach((b) => b.addEventListener("click", () => show(b.dataset.tab)));

  async function loadDefinitions() {
    const [f, w, cf] = await Promise.all([api("GET", "/crm/formats"), api("GET", "/crm/workflows"), api("GET", "/crm/fields")]);
    formats = (f.body && f.body.formats) || [];
    workflows = (w.body && w.body.workflows) || [];
    customerFields = ((cf.body && cf.body.fields) || []).filter((x) => x.category === "customer");
    for (const id of ["c-format", "u-format"]) {
      const sel = $(id); sel.replaceChildren(new Option("", ""));
      for (const x of formats) sel.appendChild(new Option(x.name, x.name));
    }
    for (const id of ["k-workflow", "s-workflow"]) {
      const sel = $(id); sel.replaceChildren(new Option("", ""));
      for (const x of workflows) sel.appendChild(new Option(x.name, x.name));
    }
  }

  // ----- customers -----
  let current = null;
  const customers = {
    async search() {
      const r = await api("GET", "/crm/customers?" + qs({
        name: $("cs-name").value.trim(), phone: $("cs-phone").value.trim(), code: $("cs-code").value.trim(),
        tag: $("cs-tag").value.trim(), note: $("cs-note").value.trim(), limit: 500,
      }));
      if (r.status !== 200) return formError(document, errorsText(r));
      $("c-count").textContent = t("crm.hits", { n: r.body.total });
      const tbody = document.querySelector("#c-table tbody");
      tbody.replaceChildren();
      for (const c of r.body.customers) {
        const tr = document.createElement("tr");
        const box = document.createElement("input"); box.type = "checkbox"; box.value = c.id;
        cell(tr, "").appendChild(box);
        cell(tr, "").appendChild(link(c.ref, "#customer=" + c.id, () => customers.open(c.id)));
        cell(tr, c.format || ""); cell(tr, c.name); cell(tr, c.phones.join(", "));
        cell(tr, when(c.created.at_ms)); cell(tr, when(c.updated.at_ms));
        tbody.appendChild(tr);
      }
    },
    fieldInputs(format, values) {
      const box = $("c-fields"); box.replaceChildren();
      const f = formats.find((x) => x.name === format);
      const defsOf = [...(f ? f.fields : []), ...customerFields];
      for (const d of defsOf) {
        const label = document.createElement("label");
        const span = document.createElement("span"); span.textContent = d.name + (d.required ? " *" : "");
        let input;
        if ((d.kind === "list" || d.kind === "radio") && d.choices.length) {
          input = document.createElement("select"); input.appendChild(new Option("", ""));
          for (const ch of d.choices) input.appendChild(new Option(ch, ch));
        } else {
          input = document.createElement(d.kind === "long_text" ? "textarea" : "input");
          if (d.kind === "date") input.type = "date";
        }
        input.dataset.field = d.name;
        input.value = (values || {})[d.name] || "";
        label.append(span, input);
        const err = document.createElement("p"); err.className = "field-error"; err.dataset.errorFor = "fields." + d.name;
        box.append(label, err);
      }
    },
    fill(c) {
      current = c;
      $("c-detail").hidden = false;
      $("c-title").textContent = c ? c.ref + " " + c.name : t("crm.new");
      $("c-code").value = c ? c.code : ""; $("c-name").value = c ? c.name : "";
      $("c-phones").value = c ? c.phones.join(", ") : ""; $("c-email").value = c ? c.email : "";
      $("c-format").value = c && c.format ? c.format : ""; $("c-tags").value = c ? c.tags.join(", ") : "";
      $("c-note").value = c ? c.note : "";
      $("c-stamps").textContent = c ? t("crm.created") + " " + when(c.created.at_ms) + " " + c.created.by + " / " +
        t("crm.updated") + " " + when(c.updated.at_ms) + " " + c.updated.by : "";
      customers.fieldInputs($("c-format").value, c ? c.fields : {});
      showErrors($("c-form"), {});
    },
    async open(id) {
      show("customers");
      const r = await api("GET", "/crm/customers/" + id);
      if (r.status !== 200) return formError(document, errorsText(r));
      customers.fill(r.body);
      const ul = $("c-cases"); ul.replaceChildren();
      for (const k of r.body.cases || []) {
        const li = document.createElement("li");
        li.appendChild(link(k.ref + " " + k.title + " (" + k.status + ")", "#case=" + k.id, () => cases.open(k.id)));
        ul.appendChild(li);
      }
      const dials = await api("GET", "/crm/customers/" + id + "/autodial");
      const dl = $("c-autodial-list"); dl.replaceChildren();
      for (const e of (dials.body && dials.body.entries) || []) {
        const li = document.createElement("li");
        li.textContent = e.campaign + " #" + e.id + " " + e.number + " — " + e.result + " (" + e.status + ")";
        dl.appendChild(li);
      }
      const calls = await api("GET", "/crm/customers/" + id + "/calls");
      const tbody = document.querySelector("#c-calls tbody"); tbody.replaceChildren();
      for (const c of (calls.body && calls.body.calls) || []) {
        const tr = document.createElement("tr");
        cell(tr, when(c.start_ms)); cell(tr, c.caller); cell(tr, c.called); cell(tr, c.result); cell(tr, c.talk_s + "s");
        const rec = cell(tr, "");
        for (const u of c.recording_urls || []) {
          const a = document.createElement("audio"); a.controls = true; a.preload = "none"; a.src = u; rec.appendChild(a);
        }
        tbody.appendChild(tr);
      }
      $("c-detail").scrollIntoView();
    },
    async save(e) {
      e.preventDefault();
      const fields = {};
      document.querySelectorAll("#c-fields [data-field]").forEach((i) => { if (i.value.trim()) fields[i.dataset.field] = i.value; });
      const body = {
        code: $("c-code").value, name: $("c-name").value, phones: list($("c-phones").value), email: $("c-email").value,
        format: $("c-format").value || null, fields, tags: list($("c-tags").value), note: $("c-note").value,
      };
      const r = current ? await api("PUT", "/crm/customers/" + current.id, body) : await api("POST", "/crm/customers", body);
      if (r.status === 422) return showErrors($("c-form"), r.body.errors);
      if (r.status !== 200 && r.status !== 201) return formError(document, errorsText(r));
      $("c-stamps").textContent = t("crm.saved");
      await customers.open(r.body.id);
      await customers.search();
    },
  };
  $("c-search").addEventListener("submit", (e) => { e.preventDefault(); customers.search(); });
  $("c-new").addEventListener("click", () => { customers.fill(null); $("c-detail").scrollIntoView(); });
  $("c-format").addEventListener("change", () => customers.fieldInputs($("c-format").value, current ? current.fields : {}));
  $("c-form").addEventListener("submit", customers.save);
  $("c-delete").addEventListener("click", async () => {
    if (!current || !window.confirm(t("crm.confirm"))) return;
    await api("DELETE", "/crm/customers/" + current.id);
    $("c-detail").hidden = true; current = null; customers.search();
  });
  $("c-all").addEventListener("change", (e) => {
    document.querySelectorAll("#c-table tbody input[type=checkbox]").forEach((c) => { c.checked = e.target.checked; });
  });
  $("c-export").addEventListener("click", () => {
    const ids = checked("c-table");
    window.location.href = "/api/v1/crm/customers/export" + (ids.length ? "?ids=" + ids.join(",") : "");
  });
  api("GET", "/campaigns").then((r) => {
    for (const c of (r.status === 200 && r.body.campaigns) || []) $("c-campaign").appendChild(new Option(c.name, c.name));
  });
  $("c-autodial").addEventListener("click", async () => {
    const ids = checked("c-table").map(Number);
    const campaign = $("c-campaign").value;
    if (!ids.length || !campaign) return;
    const r = await api("POST", "/crm/customers/autodial", { campaign, ids });
    $("c-bulk-result").textContent = r.status === 200 ? t("crm.autodial_done", { n: r.body.added }) +
      r.body.errors.map((x) => " #C" + x.id + ": " + x.message).join("") : errorsText(r);
  });
  $("c-bulk").addEventListener("click", async () => {
    const ids = checked("c-table").map(Number);
    const tag = $("c-bulk-tag").value.trim();
    if (!ids.length || !tag) return;
    const r = await api("POST", "/crm/customers/bulk", { ids, add_tags: [tag] });
    $("c-bulk-result").textContent = r.status === 200 ? t("crm.bulk_done", { n: r.body.updated }) +
      r.body.errors.map((x) => " #C" + x.id + ": " + Object.values(x.errors).join(", ")).join("") : errorsText(r);
    customers.search();
  });

  // ----- cases -----
  let currentCase = null;
  const cases = {
    async search() {
      const r = await api("GET", "/crm/cases?" + qs({
        title: $("ks-title").value.trim(), status: $("ks-status").value.trim(),
        customer: $("ks-customer").value.trim(), tag: $("ks-tag").value.trim(), limit: 500,
      }));
      if (r.status !== 200) return formError(document, errorsText(r));
      const tbody = document.querySelector("#k-table tbody"); tbody.replaceChildren();
      for (const k of r.body.cases) {
        const tr = document.createElement("tr");
        const box = document.createElement("input"); box.type = "checkbox"; box.value = k.id;
        cell(tr, "").appendChild(box);
        cell(tr, "").appendChild(link(k.ref, "#case=" + k.id, () => cases.open(k.id)));
        cell(tr, k.title);
        const who = cell(tr, "");
        if (k.customer) who.appendChild(link("#C" + k.customer + " " + (k.customer_name || ""), "#customer=" + k.customer, () => customers.open(k.customer)));
        cell(tr, k.status); cell(tr, k.owner || "");
        cell(tr, k.workflow ? k.workflow + "-" + k.step_name : ""); cell(tr, when(k.updated.at_ms));
        tbody.appendChild(tr);
      }
    },
    fill(k) {
      currentCase = k;
      $("k-detail").hidden = false;
      $("k-heading").textContent = k ? k.ref + " " + k.title : t("crm.new");
      $("k-title").value = k ? k.title : ""; $("k-status").value = k ? k.status : "";
      $("k-customer").value = k && k.customer ? k.customer : ""; $("k-owner").value = k && k.owner ? k.owner : "";
      $("k-workflow").value = k && k.workflow ? k.workflow : ""; $("k-tags").value = k ? k.tags.join(", ") : "";
      $("k-detail-text").value = k ? k.detail : ""; $("k-notes").value = k ? k.notes : "";
      const step = $("k-step"); step.replaceChildren();
      if (k && k.workflow) {
        const s = document.createElement("strong"); s.textContent = k.workflow + "-" + k.step_name; step.appendChild(s);
        k.step_buttons.forEach((b, i) => {
          const btn = document.createElement("button"); btn.type = "button"; btn.className = "small";
          btn.textContent = b.label + " → " + (b.next || t("crm.end"));
          btn.addEventListener("click", async () => {
            const r = await api("POST", "/crm/cases/" + k.id + "/step", { button: i });
            if (r.status !== 200) return formError(document, errorsText(r));
            cases.fill(r.body); cases.search();
          });
          step.appendChild(btn);
        });
      }
      showErrors($("k-form"), {});
    },
    async open(id) {
      show("cases");
      const r = await api("GET", "/crm/cases/" + id);
      if (r.status !== 200) return formError(document, errorsText(r));
      cases.fill(r.body);
      $("k-detail").scrollIntoView();
    },
  };
  $("k-search").addEventListener("submit", (e) => { e.preventDefault(); cases.search(); });
  $("k-new").addEventListener("click", () => cases.fill(null));
  $("k-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const cust = $("k-customer").value.replace(/^#?C/i, "").trim();
    const body = {
      title: $("k-title").value, status: $("k-status").value, customer: cust ? Number(cust) : null,
      owner: $("k-owner").value || null, workflow: $("k-workflow").value || null, tags: list($("k-tags").value),
      detail: $("k-detail-text").value, notes: $("k-notes").value,
    };
    const r = currentCase ? await api("PUT", "/crm/cases/" + currentCase.id, body) : await api("POST", "/crm/cases", body);
    if (r.status === 422) return showErrors($("k-form"), r.body.errors);
    if (r.status !== 200 && r.status !== 201) return formError(document, errorsText(r));
    cases.fill(r.body); cases.search();
  });
  $("k-delete").addEventListener("click", async () => {
    if (!currentCase || !window.confirm(t("crm.confirm"))) return;
    await api("DELETE", "/crm/cases/" + currentCase.id);
    $("k-detail").hidden = true; currentCase = null; cases.search();
  });
  $("k-all").addEventListener("change", (e) => {
    document.querySelectorAll("#k-table tbody input[type=checkbox]").forEach((c) => { c.checked = e.target.checked; });
  });
  $("k-export").addEventListener("click", () => {
    const ids = checked("k-table");
    window.location.href = "/api/v1/crm/cases/export" + (ids.length ? "?ids=" + ids.join(",") : "");
  });
  $("k-bulk").addEventListener("click", async () => {
    const ids = checked("k-table").map(Number);
    const status = $("k-bulk-status").value.trim();
    if (!ids.length || !status) return;
    await api("POST", "/crm/cases/bulk", { ids, status });
    cases.search();
  });

  // ----- FAQ -----
  const faq = {
    async search() {
      const r = await api("GET", "/crm/faq?" + qs({ q: $("fs-q").value.trim() }));
      const tbody = document.querySelector("#f-table tbody"); tbody.replaceChildren();
      for (const f of (r.body && r.body.faq) || []) {
        const tr = document.createElement("tr");
        cell(tr, "").appendChild(link(f.title, "#", () => faq.fill(f)));
        cell(tr, when(f.updated.at_ms));
        tbody.appendChild(tr);
      }
    },
    fill(f) {
      $("f-id").value = f ? f.id : ""; $("f-title").value = f ? f.title : "";
      $("f-tags").value = f ? f.tags.join(", ") : ""; $("f-detail").value = f ? f.detail : "";
      showErrors($("f-form"), {});
    },
  };
  $("f-search").addEventListener("submit", (e) => { e.preventDefault(); faq.search(); });
  $("f-new").addEventListener("click", () => faq.fill(null));
  $("f-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const id = $("f-id").value;
    const body = { title: $("f-title").value, tags: list($("f-tags").value), detail: $("f-detail").value };
    const r = id ? await api("PUT", "/crm/faq/" + id, body) : await api("POST", "/crm/faq", body);
    if (r.status === 422) return showErrors($("f-form"), r.body.errors);
    faq.fill(r.body); faq.search();
  });
  $("f-delete").addEventListener("click", async () => {
    const id = $("f-id").value;
    if (!id || !window.confirm(t("crm.confirm"))) return;
    await api("DELETE", "/crm/faq/" + id); faq.fill(null); faq.search();
  });

  // ----- presence and chat (polled every 3 s; docs/campaigns-crm.md) -----
  let lastSeq = 0;
  const chat = {
    async presence() {
      const r = await api("GET", "/presence");
      if (r.status !== 200) return;
      const box = $("presence"); box.replaceChildren();
      const to = $("chat-to"); const keep = to.value; to.replaceChildren(new Option(t("crm.everyone"), JSON.stringify({ kind: "everyone" })));
      for (const g of r.body.groups) {
        to.appendChild(new Option(t("crm.group") + ": " + g.name, JSON.stringify({ kind: "group", name: g.name })));
        const h = document.createElement("h3"); h.textContent = g.name + (g.number ? " (" + g.number + ")" : ""); box.appendChild(h);
        const ul = document.createElement("ul");
        for (const m of g.members) {
          const li = document.createElement("li");
          li.textContent = m.agent + (m.user ? "(" + m.user + ")" : "") + " " + m.label;
          ul.appendChild(li);
        }
        box.appendChild(ul);
      }
      for (const a of r.body.agents) {
        if (a.agent !== r.body.me) to.appendChild(new Option(t("crm.agent") + ": " + a.agent + (a.user ? " (" + a.user + ")" : ""), JSON.stringify({ kind: "agent", name: a.agent })));
      }
      if ([...to.options].some((o) => o.value === keep)) to.value = keep;
    },
    render(m) {
      // A date line whenever the day changes (the manual's "Today(2016-02-08)").
      const d = new Date(m.at_ms);
      const day = d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
      if (day !== chat.lastDay) {
        chat.lastDay = day;
        const h = document.createElement("p"); h.className = "day hint";
        const today = new Date().toDateString() === d.toDateString();
        h.textContent = (today ? t("crm.today") + " " : "") + "(" + day + ")";
        $("chat-log").appendChild(h);
      }
      const p = document.createElement("p"); p.className = "msg" + (m.bold ? " bold" : "") + (m.red ? " red" : "");
      const meta = document.createElement("span"); meta.className = "meta";
      const target = m.to.kind === "everyone" ? t("crm.everyone") : m.to.name;
      meta.textContent = m.from + " → " + target + " " + new Date(m.at_ms).toLocaleTimeString("ja-JP");
      p.appendChild(meta);
      for (const part of m.parts) {
        if (part.ref) {
          const hash = part.url.split("#")[1];
          p.appendChild(link(part.ref, part.url, () => { window.location.hash = hash; openHash(); }));
        } else p.appendChild(document.createTextNode(part.text));
      }
      $("chat-log").appendChild(p);
    },
    async refresh(markRead) {
      const r = await api("GET", "/chat?since=" + lastSeq);
      if (r.status !== 200) return;
      for (const m of r.body.messages) { chat.render(m); lastSeq = Math.max(lastSeq, m.seq); }
      const visible = !document.querySelector("[data-panel=chat]").hidden;
      if ((markRead || visible) && lastSeq) { await api("POST", "/chat/read", { seq: lastSeq }); r.body.unread = 0; }
      $("unread").hidden = !r.body.unread; $("unread").textContent = r.body.unread;
      if (r.body.messages.length) $("chat-log").scrollTop = $("chat-log").scrollHeight;
    },
  };
  $("chat-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const r = await api("POST", "/chat", { to: JSON.parse($("chat-to").value || '{"kind":"everyone"}'), text: $("chat-text").value, bold: $("chat-bold").checked, red: $("chat-red").checked });
    if (r.status === 422) return showErrors($("chat-form"), r.body.errors);
    showErrors($("chat-form"), {});
    $("chat-text").value = "";
    chat.refresh(true);
  });
  if (may("chat_use")) {
    chat.presence(); chat.refresh(false);
    setInterval(() => { chat.refresh(false); }, 3000);
    setInterval(() => { if (!document.querySelector("[data-panel=chat]").hidden) chat.presence(); }, 10000);
  }

  // ----- CSV upload (§2.22): preview, mapping, import -----
  let preview = null;
  const uploadQuery = () => ({
    first_row_is_data: String(!$("u-header").checked), delimiter: $("u-delimiter").value, format: $("u-format").value,
  });
  $("u-preview").addEventListener("click", async () => {
    const file = $("u-file").files[0];
    if (!file) return ($("u-result").textContent = t("crm.pick"));
    $("u-skipped").hidden = true;
    const r = await sendFile("/crm/customers/upload/preview?" + qs(uploadQuery()), file);
    if (r.status !== 200) { $("u-result").textContent = errorsText(r); $("u-table").hidden = true; $("u-import").hidden = true; return; }
    preview = r.body;
    $("u-result").textContent = t("crm.preview", { e: r.body.encoding });
    const thead = document.querySelector("#u-table thead"); thead.replaceChildren();
    const head = document.createElement("tr");
    for (let i = 0; i < r.body.columns; i++) {
      const th = document.createElement("th");
      const sel = document.createElement("select"); sel.className = "u-map"; sel.setAttribute("aria-label", t("crm.column", { n: i + 1 }));
      for (const tg of r.body.targets) {
        const label = tg.to === "field" ? tg.field : tg.to === "ignore" ? t("crm.ignore") : t("crm." + tg.to) || tg.to;
        sel.appendChild(new Option(label, JSON.stringify(tg)));
      }
      // A first guess: name, phone, then ignore.
      sel.selectedIndex = i === 0 ? 1 : i === 1 ? 3 : 0;
      th.appendChild(sel); head.appendChild(th);
    }
    thead.appendChild(head);
    const tbody = document.querySelector("#u-table tbody"); tbody.replaceChildren();
    for (const row of r.body.rows) {
      const tr = document.createElement("tr");
      for (let i = 0; i < r.body.columns; i++) cell(tr, row[i] || "");
      tbody.appendChild(tr);
    }
    $("u-table").hidden = false; $("u-import").hidden = false;
  });
  $("u-import").addEventListener("click", async () => {
    const file = $("u-file").files[0];
    if (!file || !preview) return;
    const mapping = [...document.querySelectorAll(".u-map")].map((s) => JSON.parse(s.value));
    const q = { ...uploadQuery(), allow_duplicate_phones: String($("u-dup").checked), tags: list($("u-tags").value).join(","), mapping: JSON.stringify(mapping) };
    const r = await sendFile("/crm/customers/upload?" + qs(q), file);
    if (r.status !== 200) return ($("u-result").textContent = errorsText(r));
    const skipped = r.body.skipped || [];
    $("u-result").textContent = t("crm.imported", { n: r.body.imported }) +
      (skipped.length ? " " + t("crm.skipped", { n: skipped.length + r.body.skipped_omitted }) : "");
    const tbody = document.querySelector("#u-skipped tbody"); tbody.replaceChildren();
    for (const s of skipped) {
      for (const [field, msg] of Object.entries(s.errors)) {
        const tr = document.createElement("tr"); cell(tr, String(s.line)); cell(tr, field); cell(tr, msg, "wrap"); tbody.appendChild(tr);
      }
    }
    $("u-skipped").hidden = skipped.length === 0;
    $("u-import").hidden = true;
    customers.search();
  });

  // ----- definitions -----
  const defs = {
    row(table, cells, del) {
      const tr = document.createElement("tr");
      for (const c of cells) cell(tr, c, "wrap");
      const b = document.createElement("button"); b.type = "button"; b.className = "small"; b.textContent = t("crm.delete");
      b.addEventListener("click", async () => {
        if (!window.confirm(t("crm.confirm"))) return;
        const r = await api("DELETE", del);
        $("d-error").textContent = r.status === 204 ? "" : errorsText(r);
        defs.load();
      });
      cell(tr, "").appendChild(b);
      document.querySelector("#" + table + " tbody").appendChild(tr);
    },
    async load() {
      await loadDefinitions();
      const [tags, fields, steps] = await Promise.all([api("GET", "/crm/tags"), api("GET", "/crm/fields"), api("GET", "/crm/steps")]);
      for (const id of ["d-tags", "d-fields", "d-formats", "d-steps", "d-workflows"]) document.querySelector("#" + id + " tbody").replaceChildren();
      for (const x of (tags.body && tags.body.tags) || []) defs.row("d-tags", [x.name, x.fg + " / " + x.bg, x.detail], "/crm/tags/" + encodeURIComponent(x.name));
      for (const x of (fields.body && fields.body.fields) || []) defs.row("d-fields", [x.category, x.name, x.kind, x.choices.join(",")], "/crm/fields/" + x.category + "/" + encodeURIComponent(x.name));
      for (const x of formats) defs.row("d-formats", [x.name, x.fields.map((f) => f.name + ":" + f.kind).join(", ")], "/crm/formats/" + encodeURIComponent(x.name));
      for (const x of (steps.body && steps.body.steps) || []) defs.row("d-steps", [x.name, x.buttons.map((b) => b.label + ">" + (b.next || "")).join(", ")], "/crm/steps/" + encodeURIComponent(x.name));
      for (const x of workflows) defs.row("d-workflows", [x.name, x.first_step], "/crm/workflows/" + encodeURIComponent(x.name));
    },
    async put(path, body) {
      const r = await api("PUT", path, body);
      $("d-error").textContent = r.status === 200 || r.status === 201 ? "" : errorsText(r);
      defs.load();
    },
  };
  const onSubmit = (id, f) => $(id).addEventListener("submit", (e) => { e.preventDefault(); f(); });
  onSubmit("d-tag-form", () => defs.put("/crm/tags/" + encodeURIComponent($("dt-name").value.trim()), { fg: $("dt-fg").value.trim(), bg: $("dt-bg").value.trim(), detail: $("dt-detail").value }));
  onSubmit("d-field-form", () => defs.put("/crm/fields/" + $("df-cat").value + "/" + encodeURIComponent($("df-name").value.trim()), { kind: $("df-kind").value, choices: list($("df-choices").value) }));
  onSubmit("d-format-form", () => {
    let fields;
    try { fields = JSON.parse($("dfm-fields").value); } catch (_) { $("d-error").textContent = "JSON"; return; }
    defs.put("/crm/formats/" + encodeURIComponent($("dfm-name").value.trim()), { fields });
  });
  onSubmit("d-step-form", () => {
    const buttons = $("ds-buttons").value.split("\n").map((l) => l.trim()).filter(Boolean).map((l) => {
      const [label, next] = l.split(">"); return { label: label.trim(), next: next && next.trim() ? next.trim() : null };
    });
    defs.put("/crm/steps/" + encodeURIComponent($("ds-name").value.trim()), { buttons });
  });
  onSubmit("d-workflow-form", () => defs.put("/crm/workflows/" + encodeURIComponent($("dw-name").value.trim()), { first_step: $("dw-first").value.trim() }));

  // ----- workflow statistics (§2.15) -----
  const stats = {
    query() {
      const day = (id, end) => { const v = $(id).value; if (!v) return ""; const d = new Date(v + "T00:00:00"); return String(d.getTime() + (end ? 86400000 : 0)); };
      return qs({ workflow: $("s-workflow").value, from: day("s-from", false), to: day("s-to", true) });
    },
    async load() {
      if (!workflows.length) await loadDefinitions();
      const q = stats.query();
      $("s-csv").href = "/api/v1/crm/workflow-stats/csv" + (q ? "?" + q : "");
      const r = await api("GET", "/crm/workflow-stats" + (q ? "?" + q : ""));
      const tbody = document.querySelector("#s-table tbody"); tbody.replaceChildren();
      for (const x of (r.body && r.body.rows) || []) {
        const tr = document.createElement("tr");
        cell(tr, x.workflow); cell(tr, x.step === null ? t("crm.sum") : x.step); cell(tr, String(x.count));
        cell(tr, x.avg_s + "s"); cell(tr, x.max_s + "s"); cell(tr, x.min_s + "s"); cell(tr, x.total_s + "s");
        tbody.appendChild(tr);
      }
    },
  };
  onSubmit("s-form", () => stats.load());

  // ----- the record in the hash -----
  function openHash() {
    const m = /^#(customer|case)=(\d+)$/.exec(window.location.hash);
    if (!m) return false;
    if (m[1] === "customer") customers.open(m[2]); else cases.open(m[2]);
    return true;
  }
  window.addEventListener("hashchange", openHash);
  await loadDefinitions();
  show("customers");
  await Promise.all([customers.search(), cases.search(), faq.search()]);
  openHash();
};
