// Voicemail and recordings page (web::media): search, play in the page, download, delete, zip.
"use strict";

Object.assign(TEXT.ja, {
  "media.title": "ボイスメールと通話録音", "media.voicemail": "ボイスメール",
  "media.recordings": "通話録音", "media.box": "ボックス", "media.from": "開始日", "media.to": "終了日",
  "media.caller": "発信者番号", "media.callee": "着信先", "media.extension": "内線番号", "media.state": "状態",
  "media.all": "すべて", "media.new": "未読", "media.old": "既読", "media.work": "保存", "media.search": "検索",
  "media.received": "受信日時", "media.start": "開始日時", "media.length": "長さ", "media.size": "サイズ",
  "media.play": "再生", "media.download": "ダウンロード", "media.delete": "削除",
  "media.confirm": "本当に削除してよろしいでしょうか?", "media.zipday": "ZIPでダウンロードする日", "media.zip": "ZIPダウンロード",
  "media.counts": "ボックス {b}: 未読 {n} / 既読 {o} / 保存 {w}", "media.none": "該当なし",
});
Object.assign(TEXT.en, {
  "media.title": "Voicemail and call recordings", "media.voicemail": "Voicemail",
  "media.recordings": "Call recordings", "media.box": "Box", "media.from": "From", "media.to": "To",
  "media.caller": "Caller number", "media.callee": "Callee", "media.extension": "Extension", "media.state": "State",
  "media.all": "All", "media.new": "New", "media.old": "Heard", "media.work": "Kept", "media.search": "Search",
  "media.received": "Received", "media.start": "Start", "media.length": "Length", "media.size": "Size",
  "media.play": "Play", "media.download": "Download", "media.delete": "Delete",
  "media.confirm": "Delete this for good?", "media.zipday": "Day to download as zip", "media.zip": "Download zip",
  "media.counts": "Box {b}: {n} new / {o} heard / {w} kept", "media.none": "Nothing found",
});

function when(ms) { return ms ? new Date(ms).toLocaleString(lang() === "ja" ? "ja-JP" : "en-GB") : ""; }
function secs(ms) { return ms === null || ms === undefined ? "" : Math.round(ms / 1000) + " s"; }
function kib(n) { return n >= 1048576 ? (n / 1048576).toFixed(1) + " MiB" : Math.ceil(n / 1024) + " KiB"; }
function query(pairs) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(pairs)) if (v) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
function button(parent, label, onClick) {
  const b = document.createElement("button");
  b.type = "button"; b.className = "small"; b.textContent = t(label);
  b.addEventListener("click", onClick);
  parent.appendChild(b);
  return b;
}
function link(parent, label, href) {
  const a = document.createElement("a");
  a.href = href; a.textContent = t(label); a.className = "small-link";
  parent.appendChild(a);
}
function fieldErrors(form, r) {
  const box = form.querySelector("[data-errors]");
  box.textContent = r.status === 422 ? Object.entries(r.body.errors).map(([k, v]) => k + ": " + v).join(" / ")
    : t("error.generic", { s: r.status });
  box.className = "error";
}

PAGES.media = async function media() {
  const me = await session(false);
  if (!me) return;
  const player = document.getElementById("player");
  const play = (url) => { player.hidden = false; player.src = url; player.play().catch(() => {}); };
  const canDeleteRecordings = me.permissions.includes("history_view");

  const vmForm = document.getElementById("vm-form");
  const loadVoicemail = async () => {
    const v = (id) => document.getElementById(id).value.trim();
    const r = await api("GET", "/voicemail" + query({ box: v("vm-box"), from: v("vm-from"), to: v("vm-to"), caller: v("vm-caller"), state: v("vm-state") }));
    if (r.status === 401) return go("login.html");
    vmForm.querySelector("[data-errors]").textContent = "";
    if (r.status !== 200) return fieldErrors(vmForm, r);
    document.getElementById("vm-counts").textContent = Object.entries(r.body.counts)
      .map(([b, c]) => t("media.counts", { b, n: c.new, o: c.old, w: c.work })).join(" · ");
    const tbody = document.querySelector("#vm-table tbody");
    tbody.replaceChildren();
    if (!r.body.messages.length) { const tr = document.createElement("tr"); cell(tr, t("media.none")); tbody.appendChild(tr); }
    for (const m of r.body.messages) {
      const tr = document.createElement("tr");
      cell(tr, m.box); cell(tr, when(m.received_ms));
      cell(tr, m.caller_name ? m.caller + " " + m.caller_name : m.caller);
      cell(tr, secs(m.duration_ms)); cell(tr, t("media." + m.state));
      const actions = cell(tr, "");
      button(actions, "media.play", () => play(m.url));
      link(actions, "media.download", m.url + "?download");
      button(actions, "media.delete", async () => {
        if (!window.confirm(t("media.confirm"))) return;
        const d = await api("DELETE", "/voicemail/" + encodeURIComponent(m.box) + "/" + m.id);
        if (d.status !== 204) formError(document, t("error.generic", { s: d.status }));
        loadVoicemail();
      });
      tbody.appendChild(tr);
    }
  };
  vmForm.addEventListener("submit", (e) => { e.preventDefault(); loadVoicemail(); });

  const recForm = document.getElementById("rec-form");
  const loadRecordings = async () => {
    const v = (id) => document.getElementById(id).value.trim();
    const r = await api("GET", "/recordings" + query({ from: v("rec-from"), to: v("rec-to"), caller: v("rec-caller"), extension: v("rec-extension") }));
    if (r.status === 401) return go("login.html");
    recForm.querySelector("[data-errors]").textContent = "";
    if (r.status !== 200) return fieldErrors(recForm, r);
    const tbody = document.querySelector("#rec-table tbody");
    tbody.replaceChildren();
    if (!r.body.recordings.length) { const tr = document.createElement("tr"); cell(tr, t("media.none")); tbody.appendChild(tr); }
    for (const x of r.body.recordings) {
      const tr = document.createElement("tr");
      tr.dataset.id = x.id;
      cell(tr, when(x.start_ms || x.modified_ms)); cell(tr, x.caller || ""); cell(tr, x.callee || "");
      cell(tr, secs(x.talk_ms)); cell(tr, kib(x.bytes));
      const actions = cell(tr, "");
      button(actions, "media.play", () => play(x.url)).dataset.play = x.id;
      link(actions, "media.download", x.url + "?download");
      if (canDeleteRecordings) {
        button(actions, "media.delete", async () => {
          if (!window.confirm(t("media.confirm"))) return;
          const d = await api("DELETE", "/recordings/" + x.id);
          if (d.status !== 204) formError(document, t("error.generic", { s: d.status }));
          loadRecordings();
        });
      }
      tbody.appendChild(tr);
    }
  };
  recForm.addEventListener("submit", (e) => { e.preventDefault(); loadRecordings(); });

  const zipForm = document.getElementById("zip-form");
  document.getElementById("zip-date").value = new Date().toISOString().slice(0, 10);
  zipForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const d = document.getElementById("zip-date").value;
    if (d) window.location.href = "/api/v1/recordings/zip?date=" + encodeURIComponent(d);
  });

  await Promise.all([loadVoicemail(), loadRecordings()]);
};
