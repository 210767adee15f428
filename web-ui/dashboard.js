// Dashboard additions (web::media::dashboard_extra): storage, flash writes, alarms, trunks.
// app.js refreshes the dashboard every 5 s and hands each answer to window.dashboardExtra.
"use strict";

Object.assign(TEXT.ja, {
  "dashboard.restart": "次の夜間再起動", "dashboard.norestart": "設定なし",
  "dashboard.storage": "ストレージ使用率", "dashboard.flash": "起動後のフラッシュ書き込み", "dashboard.alarms": "アラーム",
  "dashboard.severity": "重要度", "dashboard.what": "対象", "dashboard.message": "内容", "dashboard.count": "回数",
  "dashboard.last": "最終発生", "dashboard.trunks": "トランク", "dashboard.trunk": "トランク", "dashboard.state": "状態",
  "dashboard.none": "アラームはありません", "dashboard.critical": "重大", "dashboard.warning": "警告", "dashboard.cleared": "解除済み",
});
Object.assign(TEXT.en, {
  "dashboard.restart": "Next nightly restart", "dashboard.norestart": "not set",
  "dashboard.storage": "Storage used", "dashboard.flash": "Written to flash since start", "dashboard.alarms": "Alarms",
  "dashboard.severity": "Severity", "dashboard.what": "What", "dashboard.message": "Message", "dashboard.count": "Count",
  "dashboard.last": "Last seen", "dashboard.trunks": "Trunks", "dashboard.trunk": "Trunk", "dashboard.state": "State",
  "dashboard.none": "No alarms", "dashboard.critical": "critical", "dashboard.warning": "warning", "dashboard.cleared": "cleared",
});

function bytesText(n) {
  if (n === null || n === undefined) return "–";
  if (n >= 1073741824) return (n / 1073741824).toFixed(2) + " GiB";
  if (n >= 1048576) return (n / 1048576).toFixed(1) + " MiB";
  return Math.ceil(n / 1024) + " KiB";
}

window.dashboardExtra = function dashboardExtra(d) {
  document.getElementById("storage").textContent = d.storage
    ? d.storage.used_percent + " % (" + bytesText(d.storage.free_bytes) + ")" : "–";
  document.getElementById("flash").textContent = bytesText(d.flash_written_bytes);
  // `next_restart`: unix seconds of the planned nightly restart ([system] restart_window).
  document.getElementById("next-restart").textContent = d.next_restart
    ? new Date(d.next_restart * 1000).toLocaleString(lang() === "ja" ? "ja-JP" : "en-GB") : t("dashboard.norestart");
  const alarms = document.querySelector("#alarms-table tbody");
  alarms.replaceChildren();
  if (!d.alarms || !d.alarms.length) {
    const tr = document.createElement("tr"); cell(tr, t("dashboard.none")); alarms.appendChild(tr);
  }
  for (const a of d.alarms || []) {
    const tr = document.createElement("tr");
    tr.className = a.cleared_ms ? "cleared" : "alarm-" + a.severity;
    tr.dataset.key = a.key;
    cell(tr, a.cleared_ms ? t("dashboard.cleared") : t("dashboard." + a.severity));
    cell(tr, a.key); cell(tr, a.message, "wrap"); cell(tr, String(a.count));
    cell(tr, new Date(a.last_ms).toLocaleString(lang() === "ja" ? "ja-JP" : "en-GB"));
    alarms.appendChild(tr);
  }
  const trunks = document.querySelector("#trunks-table tbody");
  trunks.replaceChildren();
  for (const x of d.trunks || []) {
    const tr = document.createElement("tr");
    tr.className = x.usable ? "" : "alarm-critical";
    cell(tr, x.name); cell(tr, x.state); cell(tr, x.detail, "wrap");
    trunks.appendChild(tr);
  }
};
