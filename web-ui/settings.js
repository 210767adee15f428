// Settings pages (settings.html?section=NAME): one generic list/form editor driven by a small
// field description per section. The server validates the whole configuration with the same
// parser as the config file and answers field errors keyed by its path ("extension[2].number",
// 1-based), shown next to the field. Keys a form does not describe are kept as they were.
"use strict";

const MASK = "********";
// Longest generated SIP password; the config accepts 8-64 bytes.
const GENERATED_PASSWORD_CHARS = 16;

const L = (ja, en) => ({ ja, en });
const f = (name, label, type, more) => Object.assign({ name, label, type: type || "text" }, more || {});

// kind: "list" (an array of tables, `key` names an element), "table", "value" (one scalar or
// list) or "codes" (read only). type: text, number, password, bool, choice, csv, json.
const SECTIONS = {
  extension: { kind: "list", key: "number", title: L("内線", "Extensions"), fields: [
    f("number", L("内線番号", "Number"), "text", { required: true, list: true }),
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("password", L("SIPパスワード", "SIP password"), "password", { required: true, generate: true }),
    f("call_waiting", L("キャッチホン", "Call waiting"), "bool", { list: true }),
    f("record", L("録音", "Recording"), "choice", { choices: ["never", "always", "on_demand"] }),
    f("forward_always", L("常時転送先", "Forward always to")),
    f("forward_busy", L("話中転送先", "Forward when busy to")),
    f("forward_no_answer", L("無応答転送先", "Forward on no answer to")),
    f("forward_no_answer_seconds", L("無応答転送までの秒数", "Seconds before no-answer forward"), "number"),
    f("forward_unregistered", L("未登録時転送先", "Forward when unregistered to")),
    f("dnd", L("着信拒否 (DND)", "Do not disturb"), "bool"),
    f("pickup_group", L("ピックアップグループ", "Pickup group")),
    f("pin", L("PIN (ボイスメール・ホットデスク)", "PIN (voicemail, hot desk)"), "password"),
    f("voicemail", L("ボイスメール", "Voicemail"), "bool"),
    f("email", L("通知メールアドレス", "Notification e-mail")),
    f("delete_after_email", L("メール送信後に削除", "Delete after e-mail"), "bool"),
    f("caller_id", L("発信者番号", "Caller ID")),
    f("external_calls", L("外線発信", "Outside calls"), "bool"),
    f("supervisor", L("スーパーバイザー", "Supervisor"), "bool"),
    f("supervises", L("監視対象 (カンマ区切り)", "Supervises (comma separated)"), "csv"),
  ] },
  trunk: { kind: "list", key: "name", title: L("外線トランク", "Trunks"), fields: [
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("registrar", L("レジストラ (IP:ポート)", "Registrar (IP:port)"), "text", { required: true, list: true }),
    f("domain", L("ドメイン", "Domain")),
    f("username", L("ユーザー名", "User name"), "text", { list: true }),
    f("auth_username", L("認証ユーザー名", "Auth user name")),
    f("password", L("パスワード", "Password"), "password"),
    f("expires", L("登録間隔 (秒)", "Registration interval (s)"), "number"),
    f("transport", L("トランスポート", "Transport"), "choice", { choices: ["", "udp", "tcp"] }),
    f("mode", L("モード", "Mode"), "choice", { choices: ["", "register", "ip"] }),
    f("keepalive", L("キープアライブ (秒)", "Keep-alive (s)"), "number"),
  ] },
  did: { kind: "list", key: "number", title: L("着信番号 (DID) と時間ルール", "DIDs and time rules"), fields: [
    f("number", L("番号", "Number"), "text", { required: true, list: true }),
    f("default", L("既定の着信先 (JSON)", "Default destination (JSON)"), "json", { required: true, list: true }),
    f("rule", L("時間ルール (JSON)", "Time rules (JSON)"), "json"),
    f("present", L("通知番号", "Presented number")),
    f("max_channels", L("最大同時通話数", "Max channels"), "number"),
    f("caller_id_for", L("この番号で発信する内線", "Extensions calling out as it"), "csv"),
    f("popup_url", L("着信ポップアップ URL (@@@@ = 発信者番号)", "Pop-up URL (@@@@ = caller's number)")),
  ] },
  holidays: { kind: "value", type: "csv", title: L("祝日", "Holidays"), hint: L("YYYY-MM-DD をカンマ区切り", "YYYY-MM-DD, comma separated") },
  utc_offset: { kind: "value", type: "text", title: L("タイムゾーン (UTC オフセット)", "Time zone (UTC offset)") },
  outbound_route: { kind: "list", key: "prefix", title: L("発信ルート", "Outbound routes"), fields: [
    f("prefix", L("プレフィックス", "Prefix"), "text", { required: true, list: true }),
    f("trunk", L("トランク", "Trunk"), "text", { required: true, list: true }),
    f("strip", L("削除する桁数", "Digits stripped"), "number"),
    f("prepend", L("付加する番号", "Prepended")),
  ] },
  ring_group: { kind: "list", key: "number", title: L("着信グループ", "Ring groups"), fields: [
    f("number", L("番号", "Number"), "text", { required: true, list: true }),
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("strategy", L("鳴らし方", "Strategy"), "choice", { choices: ["ring_all", "sequential"] }),
    f("members", L("メンバー (カンマ区切り)", "Members (comma separated)"), "csv", { list: true }),
    f("ring_seconds", L("呼出秒数", "Ring seconds"), "number"),
    f("timeout_seconds", L("タイムアウト秒数", "Timeout seconds"), "number"),
    f("no_answer", L("無応答時の転送先", "On no answer")),
    f("voicemail", L("ボイスメール", "Voicemail"), "bool"),
    f("pin", L("PIN", "PIN"), "password"),
  ] },
  ivr: { kind: "list", key: "name", title: L("IVR", "IVR menus"), fields: [
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("number", L("番号", "Number"), "text", { list: true }),
    f("*", L("その他の設定 (JSON)", "Other settings (JSON)"), "rest"),
  ] },
  queue: { kind: "list", key: "name", title: L("キューとメンバー", "Queues and members"), fields: [
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("number", L("番号", "Number"), "text", { list: true }),
    f("strategy", L("着信方式", "Strategy"), "text"),
    f("members", L("メンバー (JSON: \"201\" または {\"agent\":\"201\",\"level\":2})", "Members (JSON: \"201\" or {\"agent\":\"201\",\"level\":2})"), "json", { list: true }),
    f("ring_time", L("呼出秒数", "Ring time (s)"), "number"),
    f("max_waiting", L("最大待ち呼数", "Max waiting"), "number"),
    f("timeout", L("待ちタイムアウト (秒)", "Wait timeout (s)"), "number"),
    f("after_call_work", L("後処理 (秒)", "After-call work (s)"), "number"),
    f("pin", L("PIN", "PIN"), "password"),
    f("*", L("その他の設定 (JSON)", "Other settings (JSON)"), "rest"),
  ] },
  acd: { kind: "table", title: L("エージェントステータス・ACD", "Agent statuses and ACD"), fields: [
    f("other_work", L("その他業務ステータス (カンマ区切り, 最大6)", "Other-work statuses (comma separated, up to 6)"), "csv"),
    f("daily_logout", L("毎日の自動ログアウト (HH:MM)", "Daily logout (HH:MM)")),
    f("outbound_acw", L("発信後の後処理 (秒)", "ACW after outbound calls (s)"), "number"),
    f("target_answer", L("応答目標時間 (秒, サービスレベル)", "Target answer time (s, service level)"), "number"),
  ] },
  smtp: { kind: "table", title: L("メール (SMTP)", "E-mail (SMTP)"), fields: [
    f("host", L("サーバー", "Server"), "text", { required: true }),
    f("port", L("ポート", "Port"), "number"),
    f("security", L("暗号化", "Security"), "choice", { choices: ["", "starttls", "tls", "none"] }),
    f("username", L("ユーザー名", "User name")),
    f("password", L("パスワード", "Password"), "password"),
    f("from", L("差出人", "From"), "text", { required: true }),
    f("helo_name", L("HELO 名", "HELO name")),
    f("ca_file", L("CA ファイル", "CA file")),
  ] },
  chat: { kind: "list", key: "name", title: L("チャット通知", "Chat notifications"), fields: [
    f("name", L("名前", "Name"), "text", { required: true, list: true }),
    f("service", L("サービス", "Service"), "choice", { choices: ["slack", "teams", "google_chat", "chatwork", "line_works"], list: true }),
    f("url", L("Webhook URL", "Webhook URL"), "password"),
    f("token", L("トークン", "Token"), "password"),
    f("channel", L("チャンネル / ルーム", "Channel / room")),
    f("bot_id", L("Bot ID", "Bot ID")),
  ] },
  chat_rule: { kind: "list", title: L("チャット通知ルール", "Chat rules"), fields: [
    f("*", L("ルール (JSON)", "Rule (JSON)"), "rest"),
  ] },
  media: { kind: "table", title: L("音声・保留音", "Audio and music on hold"), fields: [
    f("language", L("ガイダンス言語", "Prompt language"), "choice", { choices: ["ja", "en"] }),
    f("music_on_hold", L("保留音", "Music on hold"), "bool"),
    f("music_on_hold_file", L("保留音ファイル", "Music on hold file")),
    f("announce_recording", L("録音開始アナウンス", "Announce recordings"), "bool"),
    f("max_audio_mib", L("音声ファイル上限 (MiB)", "Largest audio file (MiB)"), "number"),
  ] },
  recording: { kind: "table", title: L("録音の保存", "Recording retention"), fields: [
    f("retention_days", L("保存日数", "Days kept"), "number"),
    f("max_mib", L("上限 (MiB, 0=無制限)", "Cap (MiB, 0 = none)"), "number"),
  ] },
  voicemail: { kind: "table", title: L("ボイスメール", "Voicemail"), fields: [
    f("max_unread", L("未読の上限", "Max unread"), "number"),
    f("max_message_seconds", L("メッセージの最大秒数", "Max message seconds"), "number"),
  ] },
  park: { kind: "table", title: L("パーク", "Call park"), fields: [
    f("first_slot", L("最初のスロット", "First slot"), "number"),
    f("slots", L("スロット数", "Slots"), "number"),
    f("ringback_seconds", L("呼び戻し秒数", "Ring-back seconds"), "number"),
  ] },
  sip: { kind: "table", title: L("SIP (再起動で反映)", "SIP (applied at restart)"), fields: [
    f("bind", L("待受アドレス", "Bind address")),
    f("port", L("ポート", "Port"), "number"),
    f("advertise", L("通知アドレス", "Advertised address")),
    f("ring_timeout", L("呼出タイムアウト (秒)", "Ring timeout (s)"), "number"),
    f("trust_registered_source", L("登録済みの送信元を信頼", "Trust registered sources"), "bool"),
  ] },
  audio: { kind: "audio", title: L("音声ファイル", "Audio files"), hint: L("WAV, 10 MiB まで。8 kHz モノラルに変換して保存します。", "WAV up to 10 MiB, stored as 8 kHz mono.") },
  feature_codes: { kind: "codes", title: L("特番 (変更不可)", "Feature codes (fixed)") },
};

// docs/feature-codes.md, shortened: the codes are fixed in the firmware.
const FEATURE_CODES = [
  ["#72 / #7", L("通話パーク", "Park the call")], ["9001…", L("パーク応答", "Take a parked call")],
  ["#8 番号 #", L("ブラインド転送", "Blind transfer")], ["#9 番号 #", L("保留転送", "Attended transfer")],
  ["9201-9203", L("会議室", "Conference rooms")], ["998 内線 PIN", L("ホットデスク ログイン", "Hot-desk login")],
  ["997", L("ホットデスク ログアウト", "Hot-desk logout")], ["995 / 994 / 996 内線", L("モニタリング / ささやき / 割込み", "Listen / whisper / barge")],
  ["*72 番号 / *73", L("常時転送 オン/オフ", "Forward always on/off")], ["*90 / *91", L("話中転送 オン/オフ", "Forward busy on/off")],
  ["*52 / *53", L("無応答転送 オン/オフ", "Forward no answer on/off")], ["*54 / *55", L("未登録時転送 オン/オフ", "Forward unregistered on/off")],
  ["*78 / *79 / *76", L("DND オン/オフ/切替", "DND on/off/toggle")], ["** 内線", L("指定ピックアップ", "Directed pickup")],
  ["*8", L("グループピックアップ", "Group pickup")], ["*92", L("ボイスメール", "Voicemail")],
  ["*40", L("エージェント ログイン/ログアウト", "Agent log in/out")], ["*41", L("受付可", "Available")],
  ["*42 / *43", L("小休憩 / 昼休憩", "Short / lunch break")], ["*44", L("後処理終了", "End after-call work")],
  ["*45 N", L("その他業務 N", "Other work N")], ["*46", L("準備中", "Preparing")], ["*47 キュー", L("キュー別 一時停止/再開", "Pause/resume one queue")],
  ["*1", L("通話中: 録音 開始/停止", "In call: record on/off")], ["*3 内線 #", L("通話中: 三者通話", "In call: three-way call")],
  ["184 番号", L("番号非通知で発信", "Withhold caller ID")],
];

Object.assign(TEXT.ja, {
  "settings.section": "設定項目", "settings.add": "追加", "settings.save": "保存", "settings.cancel": "キャンセル",
  "settings.edit": "編集", "settings.delete": "削除", "settings.confirm": "本当に削除してよろしいでしょうか?",
  "settings.saved": "保存しました。すぐに反映されます。", "settings.restart": "保存しました。次の項目は再起動後に反映されます: {r}",
  "settings.deferred": "キューに待ち呼があるため、キューの変更は次の保存か再起動で反映されます。",
  "settings.generate": "生成", "settings.new": "新規", "settings.required": "入力してください。",
  "settings.badjson": "JSON として読めません。", "settings.code": "特番", "settings.what": "機能",
  "settings.invalid": "入力内容を確認してください。",
  "settings.file": "ファイル", "settings.filename": "名前", "settings.seconds": "秒", "settings.upload": "アップロード",
  "settings.toolarge": "ファイルが大きすぎます (10 MiB まで)。", "settings.uploaded": "アップロードしました。",
});
Object.assign(TEXT.en, {
  "settings.section": "Section", "settings.add": "Add", "settings.save": "Save", "settings.cancel": "Cancel",
  "settings.edit": "Edit", "settings.delete": "Delete", "settings.confirm": "Delete this entry?",
  "settings.saved": "Saved; in effect now.", "settings.restart": "Saved. Applied after a restart: {r}",
  "settings.deferred": "Callers are queued: the queue changes apply at the next save or restart.",
  "settings.generate": "Generate", "settings.new": "New", "settings.required": "Required.",
  "settings.badjson": "Not valid JSON.", "settings.code": "Code", "settings.what": "What it does",
  "settings.invalid": "Please check the fields.",
  "settings.file": "File", "settings.filename": "Name", "settings.seconds": "Seconds", "settings.upload": "Upload",
  "settings.toolarge": "The file is too large (10 MiB at most).", "settings.uploaded": "Uploaded.",
});

const tr = (l) => l[lang()] || l.en;

// Seed 004 §2.21's extension password rule: upper-case, lower-case and digits together.
function generatePassword() {
  const chars = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
  for (;;) {
    const bytes = new Uint8Array(GENERATED_PASSWORD_CHARS);
    crypto.getRandomValues(bytes);
    const pw = Array.from(bytes, (b) => chars[b % chars.length]).join("");
    if (/[A-Z]/.test(pw) && /[a-z]/.test(pw) && /[0-9]/.test(pw)) return pw;
  }
}

function shown(v) {
  if (v === undefined || v === null) return "";
  if (typeof v === "boolean") return v ? "✓" : "";
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

// One input per field; returns a reader giving the field's value (undefined: not set).
function fieldInput(field, value, container) {
  const label = document.createElement("label");
  const span = document.createElement("span");
  span.textContent = tr(field.label) + (field.required ? " *" : "");
  label.appendChild(span);
  let input;
  if (field.type === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
    input.checked = value === true;
    input.style.width = "auto";
  } else if (field.type === "choice") {
    input = document.createElement("select");
    for (const c of field.choices) {
      const o = document.createElement("option");
      o.value = c; o.textContent = c || "–"; input.appendChild(o);
    }
    input.value = value === undefined ? field.choices[0] : String(value);
  } else if (field.type === "json" || field.type === "rest") {
    input = document.createElement("textarea");
    input.rows = 4;
    input.value = value === undefined ? "" : JSON.stringify(value, null, 1);
  } else {
    input = document.createElement("input");
    input.type = field.type === "number" ? "number" : field.type === "password" ? "password" : "text";
    if (field.type === "password") input.autocomplete = "new-password";
    input.value = value === undefined ? "" : field.type === "csv" ? (value || []).join(", ") : String(value);
  }
  input.name = field.name;
  input.id = "f-" + field.name.replace("*", "rest");
  label.appendChild(input);
  if (field.generate) {
    const g = document.createElement("button");
    g.type = "button"; g.className = "small"; g.id = "generate-" + field.name;
    g.textContent = t("settings.generate");
    g.addEventListener("click", () => { input.type = "text"; input.value = generatePassword(); });
    label.appendChild(g);
  }
  container.appendChild(label);
  const err = document.createElement("p");
  err.className = "field-error";
  err.dataset.errorFor = field.name;
  container.appendChild(err);
  return () => {
    if (field.type === "bool") return input.checked;
    const raw = input.value.trim();
    if (raw === "") return undefined;
    if (field.type === "number") return Number(raw);
    if (field.type === "csv") return raw.split(",").map((s) => s.trim()).filter((s) => s);
    if (field.type === "json" || field.type === "rest") {
      try { return JSON.parse(raw); } catch (_) { throw { field: field.name, message: t("settings.badjson") }; }
    }
    return input.value;
  };
}

// Server field paths ("extension[2].number", "smtp.host") → the form's field names for the
// element being edited (index 0-based), others → the form's general error.
function mapErrors(section, index, fields) {
  const out = {};
  const prefix = index === null ? section + "." : section + "[" + (index + 1) + "].";
  for (const [path, msg] of Object.entries(fields || {})) {
    if (path.startsWith(prefix)) {
      const name = path.slice(prefix.length).split(/[.[]/)[0];
      out[name] = msg;
    } else {
      out[path] = path === section ? msg : path + ": " + msg;
    }
  }
  return out;
}

PAGES.settings = async function settings() {
  const me = await session(false);
  if (!me) return;
  const params = new URLSearchParams(window.location.search);
  const name = SECTIONS[params.get("section")] ? params.get("section") : "extension";
  const sec = SECTIONS[name];
  const pick = document.getElementById("section-pick");
  for (const [key, s] of Object.entries(SECTIONS)) {
    const o = document.createElement("option");
    o.value = key; o.textContent = tr(s.title); pick.appendChild(o);
  }
  pick.value = name;
  pick.addEventListener("change", () => { window.location.assign("settings.html?section=" + pick.value); });
  document.getElementById("section-title").textContent = tr(sec.title);
  document.getElementById("section-hint").textContent = sec.hint ? tr(sec.hint) : "";
  const form = document.getElementById("item-form");
  const notice = document.getElementById("notice");
  const addBtn = document.getElementById("add");
  let config = {};
  let editing = null; // index in the list, or "new", or null when the form is closed

  const say = (report) => {
    notice.hidden = false;
    let s = report.restart_required ? t("settings.restart", { r: report.restart.join(", ") }) : t("settings.saved");
    if (report.queues_deferred) s += " " + t("settings.deferred");
    notice.textContent = s;
  };

  const put = async (value, index) => {
    const r = await api("PUT", "/config/" + name, value);
    if (r.status === 200) { say(r.body); return true; }
    if (r.status === 401) { go("login.html"); return false; }
    if (r.status === 400 && r.body && r.body.fields) {
      const errs = mapErrors(name, index, r.body.fields);
      showErrors(form, errs);
      const general = Object.entries(errs).filter(([k]) => !form.querySelector('[data-error-for="' + k + '"]'));
      formError(form, general.length ? general.map(([, m]) => m).join(" ") : t("settings.invalid"));
      return false;
    }
    formError(form, t("error.generic", { s: r.status }));
    return false;
  };

  const openForm = (item, index) => {
    editing = index;
    form.hidden = false;
    addBtn.hidden = true;
    showErrors(form, {});
    formError(form, "");
    document.getElementById("form-title").textContent =
      index === "new" ? t("settings.new") : (sec.key && item[sec.key] !== undefined ? String(item[sec.key]) : tr(sec.title));
    const box = document.getElementById("fields");
    box.replaceChildren();
    const readers = [];
    const described = new Set(sec.fields.map((x) => x.name));
    for (const field of sec.fields) {
      let value = item[field.name];
      if (field.type === "rest") {
        const rest = {};
        for (const [k, v] of Object.entries(item)) if (!described.has(k)) rest[k] = v;
        value = Object.keys(rest).length ? rest : undefined;
      }
      readers.push([field, fieldInput(field, value, box)]);
    }
    form.onsubmit = async (e) => {
      e.preventDefault();
      showErrors(form, {});
      formError(form, "");
      const out = Object.assign({}, item);
      const errs = {};
      for (const [field, read] of readers) {
        let v;
        try { v = read(); } catch (x) { errs[x.field] = x.message; continue; }
        if (field.type === "rest") {
          for (const k of Object.keys(out)) if (!described.has(k)) delete out[k];
          Object.assign(out, v || {});
          continue;
        }
        if (v === undefined && field.required) errs[field.name] = t("settings.required");
        if (v === undefined || (field.type === "bool" && v === false && item[field.name] === undefined)) delete out[field.name];
        else out[field.name] = v;
      }
      if (Object.keys(errs).length) return showErrors(form, errs);
      let value;
      let index = null;
      if (sec.kind === "list") {
        value = (config[name] || []).slice();
        if (editing === "new") { value.push(out); index = value.length - 1; } else { value[editing] = out; index = editing; }
      } else {
        value = out;
      }
      if (await put(value, index)) { closeForm(); await load(); }
    };
  };

  const closeForm = () => { form.hidden = true; editing = null; addBtn.hidden = sec.kind !== "list"; };
  document.getElementById("cancel").addEventListener("click", closeForm);
  addBtn.addEventListener("click", () => openForm({}, "new"));

  const renderList = () => {
    const head = document.getElementById("items-head");
    const tbody = document.querySelector("#items tbody");
    head.replaceChildren(); tbody.replaceChildren();
    const cols = sec.fields.filter((x) => x.list);
    for (const c of cols) { const th = document.createElement("th"); th.textContent = tr(c.label); head.appendChild(th); }
    head.appendChild(document.createElement("th"));
    (config[name] || []).forEach((item, i) => {
      const row = document.createElement("tr");
      for (const c of cols) cell(row, shown(item[c.name]), c.type === "json" ? "wrap" : "");
      const actions = cell(row, "");
      const edit = document.createElement("button");
      edit.className = "small"; edit.textContent = t("settings.edit");
      edit.dataset.edit = sec.key ? String(item[sec.key]) : String(i);
      edit.addEventListener("click", () => openForm(item, i));
      const del = document.createElement("button");
      del.className = "small"; del.textContent = t("settings.delete");
      del.dataset.delete = sec.key ? String(item[sec.key]) : String(i);
      del.addEventListener("click", async () => {
        if (!window.confirm(t("settings.confirm"))) return;
        const value = (config[name] || []).filter((_, j) => j !== i);
        if (await put(value, null)) await load();
      });
      actions.appendChild(edit); actions.appendChild(del);
      row.appendChild(actions);
      tbody.appendChild(row);
    });
  };

  const renderCodes = () => {
    const head = document.getElementById("items-head");
    const tbody = document.querySelector("#items tbody");
    head.replaceChildren(); tbody.replaceChildren();
    for (const k of ["settings.code", "settings.what"]) { const th = document.createElement("th"); th.textContent = t(k); head.appendChild(th); }
    for (const [code, what] of FEATURE_CODES) { const row = document.createElement("tr"); cell(row, code); cell(row, tr(what)); tbody.appendChild(row); }
  };

  const renderAudio = async () => {
    addBtn.hidden = true;
    const r = await api("GET", "/audio");
    if (r.status === 401) return go("login.html");
    const head = document.getElementById("items-head");
    const tbody = document.querySelector("#items tbody");
    head.replaceChildren(); tbody.replaceChildren();
    for (const k of ["settings.filename", "settings.seconds"]) { const th = document.createElement("th"); th.textContent = t(k); head.appendChild(th); }
    head.appendChild(document.createElement("th"));
    for (const file of (r.body && r.body.files) || []) {
      const row = document.createElement("tr");
      cell(row, file.name); cell(row, file.seconds.toFixed(1));
      const del = document.createElement("button");
      del.className = "small"; del.textContent = t("settings.delete"); del.dataset.delete = file.name;
      del.addEventListener("click", async () => {
        if (!window.confirm(t("settings.confirm"))) return;
        await api("DELETE", "/audio/" + encodeURIComponent(file.name));
        renderAudio();
      });
      cell(row, "").appendChild(del);
      tbody.appendChild(row);
    }
    if (form.hidden) {
      form.hidden = false;
      document.getElementById("form-title").textContent = t("settings.upload");
      const box = document.getElementById("fields");
      box.replaceChildren();
      const readName = fieldInput(f("name", L("名前", "Name"), "text", { required: true }), undefined, box);
      const label = document.createElement("label");
      const span = document.createElement("span"); span.textContent = t("settings.file"); label.appendChild(span);
      const file = document.createElement("input"); file.type = "file"; file.accept = ".wav,audio/wav"; file.id = "f-file";
      label.appendChild(file); box.appendChild(label);
      const err = document.createElement("p"); err.className = "field-error"; err.dataset.errorFor = "file"; box.appendChild(err);
      form.onsubmit = async (e) => {
        e.preventDefault();
        showErrors(form, {}); formError(form, "");
        const name = readName();
        const chosen = file.files && file.files[0];
        if (!name) return showErrors(form, { name: t("settings.required") });
        if (!chosen) return showErrors(form, { file: t("settings.required") });
        const resp = await fetch("/api/v1/audio/" + encodeURIComponent(name), {
          method: "PUT", credentials: "same-origin", body: chosen,
          headers: { "Content-Type": "audio/wav", "X-CSRF-Token": csrf },
        });
        let body = null;
        try { body = await resp.json(); } catch (_) { body = null; }
        if (resp.status === 201) { formError(form, t("settings.uploaded")); return renderAudio(); }
        if (resp.status === 413) return showErrors(form, { file: t("settings.toolarge") });
        if (resp.status === 400 && body && body.fields) return showErrors(form, body.fields);
        formError(form, t("error.generic", { s: resp.status }));
      };
    }
  };

  const load = async () => {
    if (sec.kind === "codes") { addBtn.hidden = true; return renderCodes(); }
    if (sec.kind === "audio") return renderAudio();
    const r = await api("GET", "/config");
    if (r.status === 401) return go("login.html");
    if (r.status !== 200) return formError(document, t("error.generic", { s: r.status }));
    config = r.body || {};
    if (sec.kind === "list") return renderList();
    document.getElementById("list-wrap").hidden = true;
    addBtn.hidden = true;
    if (sec.kind === "table") return openForm(config[name] || {}, null);
    // One value: a one-field form.
    sec.fields = [f(name, sec.title, sec.type)];
    const wrapped = {}; if (config[name] !== undefined) wrapped[name] = config[name];
    openForm(wrapped, null);
    form.onsubmit = async (e) => {
      e.preventDefault();
      const read = document.getElementById("f-" + name).value.trim();
      const value = read === "" ? null : sec.type === "csv" ? read.split(",").map((s) => s.trim()).filter((s) => s) : read;
      if (await put(value, null)) await load();
    };
  };
  await load();
};
