// The phonebook page (電話帳): search, add/edit/delete, CSV import with row errors, export.
// Loaded after app.js, whose `PAGES`, `api`, `session`, `t` and `cell` it uses.
"use strict";

Object.assign(TEXT.ja, {
  "pb.title": "電話帳", "pb.search_hint": "名前・カナ・会社・番号で検索", "pb.search": "検索",
  "pb.scope_all": "すべて", "pb.scope_shared": "共有", "pb.scope_personal": "個別", "pb.scope": "電話帳",
  "pb.name": "名前", "pb.kana": "カナ", "pb.company": "会社", "pb.numbers": "電話番号", "pb.note": "備考",
  "pb.label": "種別", "pb.number": "電話番号", "pb.add": "新規登録", "pb.edit": "編集", "pb.save": "保存",
  "pb.cancel": "キャンセル", "pb.delete": "削除", "pb.confirm": "本当に削除してよろしいでしょうか?",
  "pb.count": "{n} 件", "pb.import": "CSV 一括登録", "pb.file": "ファイル", "pb.encoding": "文字コード",
  "pb.enc_auto": "自動判定", "pb.import_go": "取り込む",
  "pb.import_hint": "1行目は見出し: 名前, カナ, 会社, 備考, 種別1, 電話番号1 … 電話番号5。UTF-8 または Shift_JIS、2 MiB まで。",
  "pb.imported": "{n} 件を登録しました（{e}）。", "pb.row_errors": "{n} 行は登録できませんでした:",
  "pb.row": "行", "pb.field": "項目", "pb.message": "内容", "pb.export": "CSV 出力", "pb.pick": "ファイルを選んでください。",
});
Object.assign(TEXT.en, {
  "pb.title": "Phonebook", "pb.search_hint": "Name, kana, company or number", "pb.search": "Search",
  "pb.scope_all": "All", "pb.scope_shared": "Shared", "pb.scope_personal": "Personal", "pb.scope": "Book",
  "pb.name": "Name", "pb.kana": "Kana", "pb.company": "Company", "pb.numbers": "Numbers", "pb.note": "Note",
  "pb.label": "Label", "pb.number": "Number", "pb.add": "Add an entry", "pb.edit": "Edit", "pb.save": "Save",
  "pb.cancel": "Cancel", "pb.delete": "Delete", "pb.confirm": "Delete this entry?",
  "pb.count": "{n} entries", "pb.import": "Import CSV", "pb.file": "File", "pb.encoding": "Encoding",
  "pb.enc_auto": "Detect", "pb.import_go": "Import",
  "pb.import_hint": "Header row: 名前/name, カナ/kana, 会社/company, 備考/note, 種別1/label1, 電話番号1/number1 … 5. UTF-8 or Shift_JIS, up to 2 MiB.",
  "pb.imported": "{n} entries imported ({e}).", "pb.row_errors": "{n} rows were not imported:",
  "pb.row": "Row", "pb.field": "Field", "pb.message": "Problem", "pb.export": "Export CSV", "pb.pick": "Choose a file.",
});

// Sends a file as the request body (the import endpoints take the CSV itself).
async function upload(path, file) {
  const r = await fetch("/api/v1" + path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "text/csv", "X-CSRF-Token": csrf || "" }, body: file,
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, body: data };
}

// Shows an import's outcome: the count and a table of row errors.
function showImport(result, table, r) {
  const tbody = table.querySelector("tbody");
  tbody.replaceChildren();
  table.hidden = true;
  if (r.status === 422 || r.status === 413 || r.status === 415) {
    result.textContent = r.body && r.body.errors ? Object.values(r.body.errors).join(" ") : t("error.generic", { s: r.status });
    return;
  }
  if (r.status !== 200) { result.textContent = t("error.generic", { s: r.status }); return; }
  const errors = r.body.errors || [];
  result.textContent = t("pb.imported", { n: r.body.imported, e: r.body.encoding }) +
    (errors.length ? " " + t("pb.row_errors", { n: errors.length + (r.body.errors_omitted || 0) }) : "");
  for (const e of errors) {
    const tr = document.createElement("tr");
    cell(tr, String(e.row)); cell(tr, e.field); cell(tr, e.message, "wrap");
    tbody.appendChild(tr);
  }
  table.hidden = errors.length === 0;
}

PAGES.phonebook = async function phonebook() {
  const me = await session(false);
  if (!me) return;
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  const PAGE = 50;
  let offset = 0;
  const numbersBox = document.getElementById("e-numbers");
  const numberRows = (list) => {
    numbersBox.replaceChildren();
    for (let i = 0; i < 5; i++) {
      const n = (list || [])[i] || { label: "", number: "" };
      const row = document.createElement("div");
      row.className = "pair";
      row.innerHTML = '<label><span></span><input class="n-label" maxlength="16"></label>' +
        '<label><span></span><input class="n-number" inputmode="tel" maxlength="32"></label>';
      const spans = row.querySelectorAll("span");
      spans[0].textContent = t("pb.label") + " " + (i + 1);
      spans[1].textContent = t("pb.number") + " " + (i + 1);
      row.querySelector(".n-label").value = n.label;
      row.querySelector(".n-number").value = n.number;
      const err = document.createElement("p");
      err.className = "field-error"; err.dataset.errorFor = "numbers." + i + ".number";
      row.appendChild(err);
      numbersBox.appendChild(row);
    }
  };
  const form = document.getElementById("entry-form");
  const reset = () => {
    form.reset(); document.getElementById("e-id").value = ""; numberRows([]);
    document.getElementById("e-scope").disabled = false;
    document.getElementById("form-title").textContent = t("pb.add");
    showErrors(form, {});
  };
  const load = async () => {
    const q = document.getElementById("q").value.trim();
    const scope = document.getElementById("scope").value;
    const params = new URLSearchParams({ offset: String(offset), limit: String(PAGE) });
    if (q) params.set("q", q);
    if (scope) params.set("scope", scope);
    const r = await api("GET", "/phonebook?" + params);
    if (r.status === 401) return go("login.html");
    if (r.status !== 200) return formError(form, t("error.generic", { s: r.status }));
    document.getElementById("count").textContent = t("pb.count", { n: r.body.total });
    document.getElementById("prev").disabled = offset === 0;
    document.getElementById("next").disabled = offset + PAGE >= r.body.total;
    const tbody = document.querySelector("#pb-table tbody");
    tbody.replaceChildren();
    for (const e of r.body.entries) {
      const tr = document.createElement("tr");
      cell(tr, e.name); cell(tr, e.kana); cell(tr, e.company);
      cell(tr, e.numbers.map((n) => (n.label ? n.label + ": " : "") + n.number).join("\n"), "pre");
      cell(tr, e.note, "wrap");
      cell(tr, t(e.scope === "personal" ? "pb.scope_personal" : "pb.scope_shared"));
      const actions = cell(tr, "");
      if (e.scope === "personal" || r.body.may_edit_shared) {
        const ed = document.createElement("button");
        ed.className = "small"; ed.textContent = t("pb.edit");
        ed.addEventListener("click", () => {
          document.getElementById("e-id").value = e.id;
          document.getElementById("e-scope").value = e.scope;
          document.getElementById("e-scope").disabled = true;
          document.getElementById("e-name").value = e.name;
          document.getElementById("e-kana").value = e.kana;
          document.getElementById("e-company").value = e.company;
          document.getElementById("e-note").value = e.note;
          numberRows(e.numbers);
          document.getElementById("form-title").textContent = t("pb.edit");
          form.scrollIntoView();
        });
        const del = document.createElement("button");
        del.className = "small"; del.textContent = t("pb.delete");
        del.addEventListener("click", async () => {
          if (!window.confirm(t("pb.confirm"))) return;
          await api("DELETE", "/phonebook/" + e.id);
          load();
        });
        actions.append(ed, " ", del);
      }
      tbody.appendChild(tr);
    }
  };
  document.getElementById("search-form").addEventListener("submit", (e) => { e.preventDefault(); offset = 0; load(); });
  document.getElementById("prev").addEventListener("click", () => { offset = Math.max(0, offset - PAGE); load(); });
  document.getElementById("next").addEventListener("click", () => { offset += PAGE; load(); });
  document.getElementById("e-cancel").addEventListener("click", reset);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showErrors(form, {}); formError(form, "");
    const v = (id) => document.getElementById(id).value.trim();
    const numbers = [...numbersBox.querySelectorAll(".pair")].map((row) => ({
      label: row.querySelector(".n-label").value.trim(), number: row.querySelector(".n-number").value.trim(),
    }));
    const body = { name: v("e-name"), kana: v("e-kana"), company: v("e-company"), note: v("e-note"), numbers };
    const id = v("e-id");
    if (!id) body.scope = v("e-scope");
    const r = id ? await api("PUT", "/phonebook/" + id, body) : await api("POST", "/phonebook", body);
    if (r.status === 200 || r.status === 201) { reset(); return load(); }
    if (r.status === 422) return showErrors(form, r.body.errors);
    formError(form, (r.body && r.body.message) || t("error.generic", { s: r.status }));
  });
  document.getElementById("import-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = document.getElementById("import-result");
    const file = document.getElementById("i-file").files[0];
    if (!file) { result.textContent = t("pb.pick"); return; }
    const params = new URLSearchParams({ scope: document.getElementById("i-scope").value, encoding: document.getElementById("i-encoding").value });
    const r = await upload("/phonebook/import?" + params, file);
    showImport(result, document.getElementById("import-errors"), r);
    offset = 0;
    load();
  });
  const exportLink = (id, enc) => document.getElementById(id).addEventListener("click", (e) => {
    const scope = document.getElementById("scope").value === "personal" ? "personal" : "shared";
    e.currentTarget.href = "/api/v1/phonebook/export?" + new URLSearchParams({ scope, encoding: enc });
  });
  exportLink("export-utf8", "utf-8");
  exportLink("export-sjis", "shift_jis");
  if (!me.permissions.includes("phonebook_edit")) {
    document.querySelectorAll('option[value="shared"][data-needs]').forEach((o) => o.remove());
  } else {
    document.getElementById("e-scope").value = "shared";
    document.getElementById("i-scope").value = "shared";
  }
  reset();
  if (me.permissions.includes("phonebook_edit")) document.getElementById("e-scope").value = "shared";
  await load();
};
