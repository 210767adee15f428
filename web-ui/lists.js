// The block and restriction lists page (着信拒否 / 発信規制): list, add, delete, CSV import.
// Loaded after app.js and phonebook.js (for `upload` and `showImport`).
"use strict";

Object.assign(TEXT.ja, {
  "ls.title": "着信拒否・発信規制", "ls.block": "着信拒否リスト", "ls.restrict": "発信規制リスト",
  "ls.search_hint": "番号・備考で検索", "ls.number": "番号", "ls.caller_id": "発信者番号",
  "ls.add": "追加", "ls.number_hint": "番号（0120* で前方一致）", "ls.caller_id_hint": "この発信者番号の発信だけに適用（任意）",
  "ls.import_hint": "番号,備考,発信者番号 を1行に1件。UTF-8 または Shift_JIS。",
  "ls.count": "{n} 件", "ls.anonymous": "非通知: {v}", "ls.rejected": "拒否", "ls.accepted": "許可",
});
Object.assign(TEXT.en, {
  "ls.title": "Block and restriction lists", "ls.block": "Block list (incoming)", "ls.restrict": "Restriction list (outgoing)",
  "ls.search_hint": "Number or note", "ls.number": "Number", "ls.caller_id": "Caller ID",
  "ls.add": "Add", "ls.number_hint": "Number (0120* for a prefix)", "ls.caller_id_hint": "Only for calls under this caller ID (optional)",
  "ls.import_hint": "number,note,caller_id — one entry per line; UTF-8 or Shift_JIS.",
  "ls.count": "{n} entries", "ls.anonymous": "Anonymous callers: {v}", "ls.rejected": "rejected", "ls.accepted": "accepted",
});

PAGES.lists = async function lists() {
  const me = await session(false);
  if (!me) return;
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => { el.placeholder = t(el.dataset.i18nPlaceholder); });
  const kind = () => document.getElementById("kind").value;
  const form = document.getElementById("add-form");
  const load = async () => {
    document.getElementById("a-caller-label").hidden = kind() !== "restrict";
    const q = document.getElementById("q").value.trim();
    const r = await api("GET", "/lists/" + kind() + (q ? "?q=" + encodeURIComponent(q) : ""));
    if (r.status === 401) return go("login.html");
    if (r.status !== 200) return formError(form, t("error.generic", { s: r.status }));
    let count = t("ls.count", { n: r.body.total });
    if (r.body.reject_anonymous !== null && r.body.reject_anonymous !== undefined) {
      count += " · " + t("ls.anonymous", { v: t(r.body.reject_anonymous ? "ls.rejected" : "ls.accepted") });
    }
    document.getElementById("count").textContent = count;
    const tbody = document.querySelector("#ls-table tbody");
    tbody.replaceChildren();
    for (const e of r.body.entries) {
      const tr = document.createElement("tr");
      cell(tr, e.number); cell(tr, e.note, "wrap"); cell(tr, e.caller_id || "");
      const del = document.createElement("button");
      del.className = "small"; del.textContent = t("pb.delete");
      del.addEventListener("click", async () => {
        if (!window.confirm(t("pb.confirm"))) return;
        const qs = e.caller_id ? "?caller_id=" + encodeURIComponent(e.caller_id) : "";
        await api("DELETE", "/lists/" + kind() + "/" + encodeURIComponent(e.number) + qs);
        load();
      });
      cell(tr, "").appendChild(del);
      tbody.appendChild(tr);
    }
  };
  document.getElementById("pick").addEventListener("submit", (e) => { e.preventDefault(); load(); });
  document.getElementById("kind").addEventListener("change", load);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showErrors(form, {}); formError(form, "");
    const v = (id) => document.getElementById(id).value.trim();
    const body = { number: v("a-number"), note: v("a-note") };
    if (kind() === "restrict" && v("a-caller")) body.caller_id = v("a-caller");
    const r = await api("POST", "/lists/" + kind(), body);
    if (r.status === 201) { form.reset(); return load(); }
    if (r.status === 422) return showErrors(form, r.body.errors);
    formError(form, (r.body && r.body.message) || t("error.generic", { s: r.status }));
  });
  document.getElementById("import-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const result = document.getElementById("import-result");
    const file = document.getElementById("i-file").files[0];
    if (!file) { result.textContent = t("pb.pick"); return; }
    const r = await upload("/lists/" + kind() + "/import", file);
    showImport(result, document.getElementById("import-errors"), r);
    if (r.status === 200) result.textContent = t("pb.imported", { n: r.body.imported, e: r.body.encoding }) +
      (r.body.errors.length ? " " + t("pb.row_errors", { n: r.body.errors.length + r.body.errors_omitted }) : "");
    load();
  });
  await load();
};
