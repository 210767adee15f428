// Live monitor page (seed 004 §2.3-2.10): Server-Sent Events from /api/v1/monitor/events,
// column choice and monitoring targets kept per user in localStorage, operator actions.
// Loaded after app.js, whose TEXT, PAGES, api, session, t, cell it uses.
"use strict";

Object.assign(TEXT.ja, {
  "mon.title": "電話グループ・オペレーターモニター", "mon.connecting": "接続中…", "mon.live": "ライブ",
  "mon.offline": "再接続中…", "mon.updated": "更新 {t}",
  "mon.partial": "本日の最初のイベントはメモリにありません。件数は下限です。",
  "mon.targets": "モニタリング設定", "mon.groups": "電話グループ", "mon.operators": "ユーザー",
  "mon.targets_hint": "何もチェックしない場合はすべて表示します。このブラウザにユーザーごとに保存されます。",
  "mon.save": "保存", "mon.saved": "保存しました。", "mon.columns": "表示項目の変更",
  "mon.phone_columns": "電話モニター表示項目", "mon.operator_columns": "オペレーターモニター表示項目",
  "mon.overall": "電話モニター（全体）", "mon.by_group": "電話モニター（グループ）", "mon.group_pick": "電話グループ",
  "mon.all_groups": "すべて", "mon.operator_monitor": "オペレーターモニター", "mon.view_table": "一覧表示",
  "mon.view_seats6": "6列表示", "mon.view_seats10": "10列表示", "mon.state": "状態",
  "mon.listen": "聴話", "mon.whisper": "ささやき", "mon.barge": "割込み", "mon.call_agent": "内線",
  "mon.calling_agent": "あなたの内線 {e} を呼び出しています。応答すると {a} を呼び出します。", "mon.set_state": "ステータス変更",
  "mon.force_logout": "強制ログアウト", "mon.close": "閉じる",
  "mon.confirm_logout": "{n} を強制ログアウトします。よろしいですか?", "mon.ringing_you": "あなたの内線 {e} を呼び出しています。",
  "mon.no_extension": "あなたのユーザーに内線番号がありません。", "mon.done": "変更しました。",
  "col.group": "電話グループ", "col.waiting": "待ち呼", "col.longest_wait_s": "最大待ち時間", "col.incoming": "着信数",
  "col.answered": "応答数", "col.abandoned": "放棄数", "col.answer_rate": "応答率", "col.outgoing": "発信数",
  "col.in_call": "通話中", "col.in_call_in": "通話中(着)", "col.in_call_out": "通話中(発)", "col.logged_in": "ログイン",
  "col.available": "受付可", "col.acw": "後処理", "col.short_break": "小休憩", "col.lunch_break": "昼休憩",
  "col.other_work": "別作業", "col.aht_in_s": "平均処理時間(着)", "col.aht_out_s": "平均処理時間(発)",
  "col.talk_in_s": "平均通話時間(着)", "col.talk_out_s": "平均通話時間(発)", "col.acw_in_s": "平均後処理時間(着)",
  "col.acw_out_s": "平均後処理時間(発)", "col.answer_wait_s": "平均応答時間", "col.abandon_wait_s": "平均放棄時間",
  "col.name": "名前", "col.ext": "内線", "col.state": "状態", "col.since_s": "経過時間", "col.holds": "保留数",
  "col.ring_s": "平均呼出時間", "col.short_break_avg_s": "平均小休憩時間", "col.short_break_total_s": "合計小休憩時間",
  "col.lunch_total_s": "合計昼休憩時間", "col.other_work_total_s": "合計別作業時間",
  "seat.out": "発", "seat.in": "着", "seat.hold": "保",
  "state.available": "受付可", "state.preparing": "準備中", "state.short_break": "小休憩", "state.lunch_break": "昼休憩",
  "state.logged_in": "ログイン", "state.logged_out": "ログアウト",
});
Object.assign(TEXT.en, {
  "mon.title": "Phone group and operator monitor", "mon.connecting": "connecting…", "mon.live": "live",
  "mon.offline": "reconnecting…", "mon.updated": "updated {t}",
  "mon.partial": "Today's earliest events are no longer in memory: counts are a lower bound.",
  "mon.targets": "Monitoring targets", "mon.groups": "Phone groups", "mon.operators": "Operators",
  "mon.targets_hint": "Nothing checked shows everything. Kept in this browser for your user.",
  "mon.save": "Save", "mon.saved": "Saved.", "mon.columns": "Columns",
  "mon.phone_columns": "Phone monitor columns", "mon.operator_columns": "Operator monitor columns",
  "mon.overall": "Phone monitor (overall)", "mon.by_group": "Phone monitor (groups)", "mon.group_pick": "Group",
  "mon.all_groups": "All", "mon.operator_monitor": "Operator monitor", "mon.view_table": "List",
  "mon.view_seats6": "Seats (6)", "mon.view_seats10": "Seats (10)", "mon.state": "State",
  "mon.listen": "Listen", "mon.whisper": "Whisper", "mon.barge": "Barge", "mon.call_agent": "Call",
  "mon.calling_agent": "Ringing your extension {e}; when you answer, the box calls {a}.", "mon.set_state": "Change status",
  "mon.force_logout": "Forced logout", "mon.close": "Close",
  "mon.confirm_logout": "Log {n} out now?", "mon.ringing_you": "Ringing your extension {e}.",
  "mon.no_extension": "Your user has no extension.", "mon.done": "Changed.",
  "col.group": "Group", "col.waiting": "Waiting", "col.longest_wait_s": "Longest wait", "col.incoming": "Incoming",
  "col.answered": "Answered", "col.abandoned": "Abandoned", "col.answer_rate": "Answer %", "col.outgoing": "Outgoing",
  "col.in_call": "In call", "col.in_call_in": "In call (in)", "col.in_call_out": "In call (out)", "col.logged_in": "Logged in",
  "col.available": "Available", "col.acw": "After-call work", "col.short_break": "Short break", "col.lunch_break": "Lunch",
  "col.other_work": "Other work", "col.aht_in_s": "AHT (in)", "col.aht_out_s": "AHT (out)",
  "col.talk_in_s": "Avg talk (in)", "col.talk_out_s": "Avg talk (out)", "col.acw_in_s": "Avg ACW (in)",
  "col.acw_out_s": "Avg ACW (out)", "col.answer_wait_s": "Avg answer time", "col.abandon_wait_s": "Avg abandon time",
  "col.name": "Name", "col.ext": "Ext.", "col.state": "State", "col.since_s": "Elapsed", "col.holds": "Holds",
  "col.ring_s": "Avg ring time", "col.short_break_avg_s": "Avg short break", "col.short_break_total_s": "Total short break",
  "col.lunch_total_s": "Total lunch", "col.other_work_total_s": "Total other work",
  "seat.out": "Out", "seat.in": "In", "seat.hold": "Hold",
  "state.available": "Available", "state.preparing": "Preparing", "state.short_break": "Short break",
  "state.lunch_break": "Lunch break", "state.logged_in": "Log in", "state.logged_out": "Logged out",
});

// Columns of seed 004 §2.4: fixed ones always shown, optional ones chosen by the user.
const MON_PHONE_FIXED = ["waiting", "longest_wait_s", "incoming", "answered", "abandoned", "answer_rate", "outgoing",
  "in_call", "in_call_in", "in_call_out", "logged_in", "available", "acw", "short_break", "lunch_break", "other_work"];
const MON_PHONE_OPTIONAL = ["aht_in_s", "aht_out_s", "talk_in_s", "talk_out_s", "acw_in_s", "acw_out_s",
  "answer_wait_s", "abandon_wait_s"];
const MON_OP_FIXED = ["name", "ext", "state", "since_s"];
const MON_OP_OPTIONAL = ["outgoing", "answered", "holds", "aht_in_s", "aht_out_s", "talk_in_s", "talk_out_s",
  "acw_in_s", "acw_out_s", "ring_s", "short_break_avg_s", "short_break_total_s", "lunch_total_s", "other_work_total_s"];
const MON_OP_DEFAULT = ["outgoing", "answered", "holds"];
// Operators sort by status in this order, then by elapsed time (longest first).
const MON_STATE_ORDER = ["ringing", "talking", "on_hold", "dialling", "internal_call", "after_call_work", "available",
  "preparing", "short_break", "lunch_break", "other_work", "logged_out"];

// hh:mm:ss with as many hour digits as needed (the spec shows 000:00:00).
function hms(s) {
  if (s === null || s === undefined) return "–";
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), x = Math.floor(s % 60);
  return String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(x).padStart(2, "0");
}

function monValue(row, col, tick) {
  const v = row[col];
  if (v === undefined) return "–";
  if (col === "since_s" || col === "longest_wait_s") return hms((v || 0) + (col === "since_s" || row.waiting ? tick : 0));
  if (col.endsWith("_s")) return hms(v);
  if (v === null) return "–";
  return String(v);
}

function loadPref(key, fallback) {
  try { const v = JSON.parse(localStorage.getItem(key)); return v === null ? fallback : v; } catch (_) { return fallback; }
}

PAGES.monitor = async function () {
  const me = await session(false);
  if (!me) return;
  const may = (p) => me.permissions.includes(p);
  const prefKey = (k) => "hakoden.monitor." + k + "." + me.user.id;
  let cols = loadPref(prefKey("columns"), { phone: [], op: MON_OP_DEFAULT });
  let targets = loadPref(prefKey("targets"), { groups: [], agents: [] });
  let view = loadPref(prefKey("view"), "table");
  let snap = null, receivedAt = 0, selected = null, groupPick = "";

  const checkboxes = (box, items, chosen, label, onChange) => {
    box.replaceChildren();
    for (const it of items) {
      const l = document.createElement("label");
      const i = document.createElement("input");
      i.type = "checkbox"; i.value = it; i.checked = chosen.includes(it);
      if (onChange) i.addEventListener("change", onChange);
      const s = document.createElement("span"); s.textContent = label(it);
      l.append(i, s); box.appendChild(l);
    }
  };
  const checked = (box) => [...box.querySelectorAll("input:checked")].map((i) => i.value);
  const saveCols = () => {
    cols = { phone: checked(document.getElementById("cols-phone")), op: checked(document.getElementById("cols-op")) };
    localStorage.setItem(prefKey("columns"), JSON.stringify(cols));
    render();
  };
  checkboxes(document.getElementById("cols-phone"), MON_PHONE_OPTIONAL, cols.phone, (c) => t("col." + c), saveCols);
  checkboxes(document.getElementById("cols-op"), MON_OP_OPTIONAL, cols.op, (c) => t("col." + c), saveCols);

  const fillTargets = () => {
    if (!snap) return;
    checkboxes(document.getElementById("target-groups"), snap.groups.map((g) => g.name), targets.groups, (g) => g);
    checkboxes(document.getElementById("target-agents"), snap.agents.map((a) => a.ext), targets.agents,
      (e) => { const a = snap.agents.find((x) => x.ext === e); return (a ? a.name + " " : "") + e; });
  };
  document.getElementById("targets-save").addEventListener("click", () => {
    targets = { groups: checked(document.getElementById("target-groups")), agents: checked(document.getElementById("target-agents")) };
    localStorage.setItem(prefKey("targets"), JSON.stringify(targets));
    document.getElementById("targets-saved").textContent = t("mon.saved");
    render();
  });
  document.getElementById("targets").addEventListener("toggle", fillTargets);

  const head = (table, names) => {
    const tr = document.createElement("tr");
    for (const n of names) { const th = document.createElement("th"); th.textContent = t("col." + n); tr.appendChild(th); }
    table.tHead.replaceChildren(tr);
  };
  const tick = () => (snap ? Math.max(0, Math.floor((Date.now() - receivedAt) / 1000)) : 0);

  const renderPhones = () => {
    const overallCols = MON_PHONE_FIXED.concat(cols.phone);
    const ov = document.getElementById("overall");
    head(ov, overallCols);
    const tr = document.createElement("tr");
    for (const c of overallCols) cell(tr, monValue(snap.overall, c, tick())).dataset.col = c;
    ov.tBodies[0].replaceChildren(tr);
    // The total 通話中 is an overall-only column (seed 004 §2.4 ②).
    const groupCols = ["group"].concat(MON_PHONE_FIXED.filter((c) => c !== "in_call"), cols.phone);
    const gt = document.getElementById("groups");
    head(gt, groupCols);
    const pick = document.getElementById("group-pick");
    const shown = snap.groups.filter((g) => !targets.groups.length || targets.groups.includes(g.name));
    if (pick.options.length !== shown.length + 1) {
      pick.replaceChildren(new Option(t("mon.all_groups"), ""), ...shown.map((g) => new Option(g.name, g.name)));
      pick.value = groupPick;
    }
    const rows = shown.filter((g) => !groupPick || g.name === groupPick).map((g) => {
      const r = document.createElement("tr");
      r.dataset.group = g.name;
      for (const c of groupCols) cell(r, c === "group" ? g.name : monValue(g, c, tick())).dataset.col = c;
      return r;
    });
    gt.tBodies[0].replaceChildren(...rows);
  };

  const operators = () => snap.agents
    .filter((a) => !targets.agents.length || targets.agents.includes(a.ext))
    .sort((a, b) => (MON_STATE_ORDER.indexOf(a.state) - MON_STATE_ORDER.indexOf(b.state)) || (b.since_s - a.since_s));

  const renderOperators = () => {
    const list = operators();
    const opCols = MON_OP_FIXED.concat(cols.op);
    const table = document.getElementById("operators");
    head(table, opCols);
    const rows = list.map((a) => {
      const r = document.createElement("tr");
      r.className = "op"; r.dataset.ext = a.ext; r.dataset.state = a.state;
      for (const c of opCols) {
        const td = cell(r, c === "state" ? a.label : monValue(a, c, tick()));
        td.dataset.col = c;
        if (c === "state") td.className = "st st-" + a.state;
      }
      r.addEventListener("click", () => openActions(a.ext));
      return r;
    });
    table.tBodies[0].replaceChildren(...rows);
    const seats = document.getElementById("seats");
    seats.classList.toggle("ten", view === "seats10");
    seats.replaceChildren(...list.map((a) => {
      const d = document.createElement("div");
      d.className = "seat st-" + a.state; d.dataset.ext = a.ext; d.dataset.state = a.state;
      const n = document.createElement("strong"); n.textContent = a.name;
      const c = document.createElement("div");
      c.textContent = t("seat.out") + ": " + a.outgoing + " " + t("seat.in") + ": " + a.incoming + " " + t("seat.hold") + ": " + hms(a.hold_s);
      const s = document.createElement("div"); s.textContent = a.label + " " + hms(a.since_s + tick());
      d.append(n, c, s);
      d.addEventListener("click", () => openActions(a.ext));
      return d;
    }));
    document.getElementById("op-table-wrap").hidden = view !== "table";
    seats.hidden = view === "table";
  };

  const render = () => {
    if (!snap) return;
    renderPhones();
    renderOperators();
    if (selected) showActions();
    document.getElementById("partial").hidden = !snap.partial;
  };

  const openActions = (ext) => {
    selected = ext;
    document.getElementById("act-error").textContent = "";
    document.getElementById("act-done").textContent = "";
    showActions();
  };
  const showActions = () => {
    const a = snap.agents.find((x) => x.ext === selected);
    const panel = document.getElementById("actions");
    if (!a) { panel.hidden = true; return; }
    panel.hidden = false;
    panel.dataset.ext = a.ext;
    document.getElementById("act-name").textContent = a.name;
    document.getElementById("act-ext").textContent = a.ext;
    document.getElementById("act-state").textContent = a.label;
  };
  const actError = (r) => {
    const b = r.body || {};
    document.getElementById("act-error").textContent =
      b.message || (b.errors ? Object.values(b.errors).join(" ") : t("error.generic", { s: r.status }));
  };
  const done = (msg) => { document.getElementById("act-done").textContent = msg; };
  document.getElementById("act-close").addEventListener("click", () => { selected = null; document.getElementById("actions").hidden = true; });
  document.querySelectorAll("#actions [data-mode]").forEach((b) => b.addEventListener("click", async () => {
    document.getElementById("act-error").textContent = "";
    if (!me.user.extension) { document.getElementById("act-error").textContent = t("mon.no_extension"); return; }
    const r = await api("POST", "/supervision", { mode: b.dataset.mode, supervisor: me.user.extension, agent: selected });
    if (r.status === 202) done(t("mon.ringing_you", { e: me.user.extension })); else actError(r);
  }));
  // 内線: the box rings the supervisor's own phone, then the agent's (POST /calls).
  document.getElementById("act-call").addEventListener("click", async () => {
    document.getElementById("act-error").textContent = "";
    if (!me.user.extension) { document.getElementById("act-error").textContent = t("mon.no_extension"); return; }
    const r = await api("POST", "/calls", { from: me.user.extension, to: selected });
    if (r.status === 202) done(t("mon.calling_agent", { e: me.user.extension, a: selected })); else actError(r);
  });
  document.getElementById("act-set-state").addEventListener("click", async () => {
    document.getElementById("act-error").textContent = "";
    const r = await api("PUT", "/agents/" + encodeURIComponent(selected) + "/state", { state: document.getElementById("act-new-state").value });
    if (r.status === 200) done(t("mon.done")); else actError(r);
  });
  document.getElementById("act-logout").addEventListener("click", async () => {
    const a = snap.agents.find((x) => x.ext === selected);
    if (!a || !window.confirm(t("mon.confirm_logout", { n: a.name }))) return;
    document.getElementById("act-error").textContent = "";
    // Out of the queues first (the agent state), then the web session of every user on that
    // extension (seed 004 §2.7: the forced logout also ends a stuck double login).
    const r = await api("PUT", "/agents/" + encodeURIComponent(a.ext) + "/state", { state: "logged_out" });
    if (r.status !== 200 && r.status !== 409) return actError(r);
    if (may("users_view") && may("sessions_logout")) {
      const users = await api("GET", "/users");
      for (const u of (users.body && users.body.users) || []) {
        if (u.extension === a.ext && u.id !== me.user.id) await api("DELETE", "/sessions/" + encodeURIComponent(u.id));
      }
    }
    done(t("mon.done"));
  });

  document.getElementById("group-pick").addEventListener("change", (e) => { groupPick = e.target.value; render(); });
  for (const [id, v] of [["view-table", "table"], ["view-seats6", "seats6"], ["view-seats10", "seats10"]]) {
    document.getElementById(id).addEventListener("click", () => { view = v; localStorage.setItem(prefKey("view"), JSON.stringify(v)); render(); });
  }

  const live = (on) => {
    const el = document.getElementById("live");
    el.textContent = t(on ? "mon.live" : "mon.offline");
    el.className = "live " + (on ? "on" : "off");
  };
  const accept = (e) => {
    try { snap = JSON.parse(e.data); } catch (_) { return; }
    receivedAt = Date.now();
    live(true);
    document.getElementById("updated").textContent = t("mon.updated", { t: new Date(snap.at_ms).toLocaleTimeString() });
    document.body.dataset.snapshots = String(Number(document.body.dataset.snapshots || 0) + 1);
    render();
  };
  const connect = () => {
    const es = new EventSource("/api/v1/monitor/events");
    es.addEventListener("snapshot", accept);
    es.addEventListener("resync", accept);
    es.onerror = async () => {
      live(false);
      if (es.readyState === EventSource.CLOSED) {
        // Refused (session gone or too many streams): check the session, then try again.
        const r = await api("GET", "/me");
        if (r.status === 401) return go("login.html");
        setTimeout(connect, 5000);
      }
    };
  };
  connect();
  // Elapsed times tick between snapshots.
  setInterval(() => { if (snap) { renderPhones(); renderOperators(); } }, 1000);
};
