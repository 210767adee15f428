// The system page (system.html): firmware slots and update, backup download, restore upload.
// Loaded after app.js; uses its api helpers, adds its texts and its page controller.
"use strict";

Object.assign(TEXT.ja, {
  "system.title": "システム管理", "system.firmware": "ファームウェア", "system.slot": "スロット",
  "system.version": "バージョン", "system.state": "状態", "system.running": "稼働中",
  "system.trial": "試験起動中", "system.committed": "確定", "system.unknown": "不明",
  "system.bundle": "更新ファイル (.bundle)",
  "system.update_hint": "署名を確認してから待機側スロットに書き込み、一度だけそのスロットで再起動します。ヘルスチェックに合格した場合のみ確定します。",
  "system.update": "更新する", "system.updating": "書き込み中…",
  "system.update_ok": "{v} をスロット {s} に書き込みました。再起動します。1～2分後にログインし直してください。",
  "system.update_confirm": "ファームウェアを更新すると通話が切れて再起動します。続けますか?",
  "system.last": "前回の更新: {v}（{from}→{to}）{r}: {d}",
  "system.result.pending": "再起動待ち", "system.result.committed": "確定済み",
  "system.result.health_check_failed": "ヘルスチェック失敗（元に戻しました）",
  "system.result.rolled_back": "試験起動失敗（元に戻しました）",
  "system.result.crash_loop_fallback": "異常終了の繰り返し（元に戻しました）",
  "system.not_appliance": "この環境はA/Bスロットの機器ではないため、更新できません。",
  "system.backup": "バックアップ", "system.recordings": "通話録音を含める", "system.download": "バックアップをダウンロード",
  "system.restore": "復元", "system.backup_file": "バックアップファイル (.hkb)",
  "system.restore_hint": "ファイルはすぐに検証され、次回の再起動時にすべてのデータと設定を置き換えます。",
  "system.restore_submit": "検証して予約する",
  "system.restore_ok": "{v} のバックアップ（{n}ファイル）を検証しました。再起動すると復元されます。",
  "system.choose": "ファイルを選んでください。",
});
Object.assign(TEXT.en, {
  "system.title": "System", "system.firmware": "Firmware", "system.slot": "Slot",
  "system.version": "Version", "system.state": "State", "system.running": "running",
  "system.trial": "trial boot", "system.committed": "committed", "system.unknown": "unknown",
  "system.bundle": "Update bundle (.bundle)",
  "system.update_hint": "The box checks the signature, writes the inactive slot, restarts into it once and keeps it only if it passes its health check.",
  "system.update": "Update", "system.updating": "Writing…",
  "system.update_ok": "{v} written to slot {s}. The box restarts now; log in again in a minute or two.",
  "system.update_confirm": "Updating ends every call and restarts the box. Continue?",
  "system.last": "Last update: {v} ({from}→{to}) {r}: {d}",
  "system.result.pending": "waiting for the restart", "system.result.committed": "committed",
  "system.result.health_check_failed": "health check failed (rolled back)",
  "system.result.rolled_back": "trial failed (rolled back)",
  "system.result.crash_loop_fallback": "crashed repeatedly (rolled back)",
  "system.not_appliance": "This is not the A/B appliance: no firmware updates here.",
  "system.backup": "Backup", "system.recordings": "Include call recordings", "system.download": "Download backup",
  "system.restore": "Restore", "system.backup_file": "Backup file (.hkb)",
  "system.restore_hint": "The file is checked now and replaces all data and settings at the next restart.",
  "system.restore_submit": "Check and stage",
  "system.restore_ok": "Backup of {v} ({n} files) checked. Restart the box to restore it.",
  "system.choose": "Choose a file.",
});

// Uploads a file as the raw body (the API takes application/octet-stream).
async function upload(path, file) {
  const r = await fetch("/api/v1" + path, {
    method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/octet-stream", "X-CSRF-Token": csrf || "" },
    body: file,
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, body: data };
}

PAGES.system = async function () {
  const me = await session(false);
  if (!me) return;
  translate();
  const say = (id, text) => { document.getElementById(id).textContent = text; };

  async function load() {
    const r = await api("GET", "/firmware");
    const body = document.querySelector("#slots-table tbody");
    body.textContent = "";
    if (r.status !== 200) { say("last-update", t("error.generic", { s: r.status })); return; }
    const fw = r.body;
    if (!fw.appliance) {
      const row = body.insertRow();
      cell(row, "-"); cell(row, fw.version); cell(row, t("system.running"));
      say("last-update", t("system.not_appliance"));
      document.getElementById("update-form").hidden = true;
      return;
    }
    for (const s of fw.slots) {
      const row = body.insertRow();
      cell(row, s.slot.toUpperCase());
      cell(row, s.version || t("system.unknown"));
      const states = [];
      if (s.running) states.push(fw.trial ? t("system.trial") : t("system.running"));
      if (s.slot === fw.committed) states.push(t("system.committed"));
      cell(row, states.join(", "));
    }
    const u = fw.last_update;
    say("last-update", u ? t("system.last", {
      v: u.version, from: u.from.toUpperCase(), to: u.to.toUpperCase(),
      r: t("system.result." + u.result), d: u.detail,
    }) : "");
  }

  document.getElementById("update-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = document.getElementById("bundle-file").files[0];
    if (!file) return say("update-error", t("system.choose"));
    if (!window.confirm(t("system.update_confirm"))) return;
    say("update-error", t("system.updating"));
    const r = await upload("/firmware", file);
    if (r.status === 202) return say("update-error", t("system.update_ok", { v: r.body.version, s: r.body.slot.toUpperCase() }));
    say("update-error", (r.body && r.body.message) || t("error.generic", { s: r.status }));
  });

  document.getElementById("backup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    // A plain navigation downloads the file (the session cookie goes along; GET needs no CSRF).
    const rec = document.getElementById("with-recordings").checked ? "1" : "0";
    window.location.href = "/api/v1/backup?recordings=" + rec;
  });

  document.getElementById("restore-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const file = document.getElementById("restore-file").files[0];
    if (!file) return say("restore-error", t("system.choose"));
    const r = await upload("/restore", file);
    if (r.status === 202) return say("restore-error", t("system.restore_ok", { v: r.body.version, n: r.body.files }));
    say("restore-error", (r.body && r.body.message) || t("error.generic", { s: r.status }));
  });

  await load();
};
