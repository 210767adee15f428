// Hakoden admin pages: the API helper, the Japanese/English texts and one controller per page.
// No framework and no inline script: the server's Content-Security-Policy allows only this file.
"use strict";

const TEXT = {
  ja: {
    "common.loading": "読み込み中…",
    "nav.dashboard": "ダッシュボード", "nav.users": "ユーザー", "nav.logout": "ログアウト", "nav.password": "パスワード変更",
    "nav.media": "ボイスメール・録音",
    "nav.settings": "設定",
    "nav.monitor": "リアルタイムモニター", "nav.reports": "レポート",
    "login.user": "ユーザーID", "login.password": "パスワード", "login.submit": "ログイン",
    "login.bad": "ユーザーIDまたはパスワードが違います。",
    "login.locked": "ログインに続けて失敗したため、ロックされています。{m}分後にお試しください。",
    "password.title": "パスワード変更",
    "password.forced": "パスワードは他の人が設定したものです。続ける前にご自身のパスワードに変更してください。",
    "password.policy": "10～20文字で、英大文字・英小文字・数字をすべて含めてください。",
    "password.current": "現在のパスワード", "password.new": "新しいパスワード", "password.repeat": "新しいパスワード（確認）",
    "password.submit": "変更する", "password.mismatch": "確認用のパスワードが一致しません。",
    "dashboard.title": "ダッシュボード", "dashboard.version": "ファームウェア", "dashboard.uptime": "稼働時間",
    "dashboard.registrations": "登録中の電話機", "dashboard.calls": "通話中",
    "users.title": "ユーザーリスト", "users.id": "ユーザーID", "users.name": "ユーザー名", "users.extension": "内線番号",
    "users.role": "権限", "users.session": "ログイン", "users.create": "新規ユーザー", "users.password": "初期パスワード",
    "users.add": "登録", "users.roles": "権限設定", "users.permissions": "許可", "users.count": "人数",
    "users.delete": "削除", "users.logout": "強制ログアウト", "users.confirm": "本当に削除してよろしいでしょうか?",
    "users.created": "登録しました", "users.deleted": "削除しました", "users.online": "ログイン中",
    "error.generic": "エラーが発生しました（{s}）。",
    "nav.phonebook": "電話帳", "nav.campaigns": "キャンペーン", "nav.lists": "着信拒否・発信規制", "nav.history": "通話履歴",
    "nav.system": "システム管理", "nav.crm": "CRM",
    "pop.title": "着信", "pop.caller": "発信者番号", "pop.none": "登録された顧客はいません",
    "pop.open": "外部ページを開く", "pop.close": "閉じる",
  },
  en: {
    "common.loading": "Loading…",
    "nav.dashboard": "Dashboard", "nav.users": "Users", "nav.logout": "Log out", "nav.password": "Change password",
    "nav.media": "Voicemail & recordings",
    "nav.settings": "Settings",
    "nav.monitor": "Live monitor", "nav.reports": "Reports",
    "login.user": "User ID", "login.password": "Password", "login.submit": "Log in",
    "login.bad": "Wrong user ID or password.",
    "login.locked": "Locked after repeated failures. Try again in {m} min.",
    "password.title": "Change your password",
    "password.forced": "Your password was set by someone else. Choose your own before you continue.",
    "password.policy": "10–20 characters with upper-case and lower-case letters and digits.",
    "password.current": "Current password", "password.new": "New password", "password.repeat": "New password again",
    "password.submit": "Change password", "password.mismatch": "The two new passwords differ.",
    "dashboard.title": "Dashboard", "dashboard.version": "Firmware", "dashboard.uptime": "Uptime",
    "dashboard.registrations": "Registered phones", "dashboard.calls": "Active calls",
    "users.title": "Users", "users.id": "User ID", "users.name": "Name", "users.extension": "Extension",
    "users.role": "Role", "users.session": "Session", "users.create": "New user", "users.password": "Initial password",
    "users.add": "Add", "users.roles": "Roles", "users.permissions": "Permissions", "users.count": "Users",
    "users.delete": "Delete", "users.logout": "Force logout", "users.confirm": "Delete this user?",
    "users.created": "Saved", "users.deleted": "Deleted", "users.online": "logged in",
    "error.generic": "Something went wrong ({s}).",
    "nav.phonebook": "Phonebook", "nav.campaigns": "Campaigns", "nav.lists": "Block lists", "nav.history": "Call history",
    "nav.system": "System", "nav.crm": "CRM",
    "pop.title": "Incoming call", "pop.caller": "Caller", "pop.none": "No customer has this number",
    "pop.open": "Open the pop-up page", "pop.close": "Close",
  },
};

function lang() {
  const saved = localStorage.getItem("hakoden.lang");
  if (saved === "ja" || saved === "en") return saved;
  return (navigator.language || "ja").toLowerCase().startsWith("ja") ? "ja" : "en";
}

function t(key, vars) {
  let s = (TEXT[lang()] || TEXT.ja)[key] || TEXT.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace("{" + k + "}", String(v));
  return s;
}

function translate() {
  document.documentElement.lang = lang();
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.querySelectorAll("[data-lang-toggle]").forEach((b) => { b.textContent = lang() === "ja" ? "English" : "日本語"; });
}

// One navigation for every page: each page has an empty <nav> in its header, filled here, so a
// page is added to the menu in one place. `session()` then hides what the user may not open.
const NAV = [
  ["dashboard.html", "nav.dashboard", null],
  ["monitor.html", "nav.monitor", "monitor_view"],
  ["reports.html", "nav.reports", "reports_view"],
  ["history.html", "nav.history", "history_view"],
  ["media.html", "nav.media", null],
  ["crm.html", "nav.crm", "crm_view"],
  ["phonebook.html", "nav.phonebook", "phonebook_view"],
  ["campaigns.html", "nav.campaigns", "campaign_view"],
  ["lists.html", "nav.lists", "settings_edit"],
  ["users.html", "nav.users", "users_view"],
  ["settings.html", "nav.settings", "settings_edit"],
  ["system.html", "nav.system", "system_edit"],
];

function fillNav() {
  const here = window.location.pathname.split("/").pop() || "dashboard.html";
  document.querySelectorAll("header nav").forEach((nav) => {
    nav.textContent = "";
    for (const [href, key, needs] of NAV) {
      const a = document.createElement("a");
      a.href = href;
      a.dataset.i18n = key;
      a.textContent = t(key);
      if (needs) a.dataset.needs = needs;
      if (href === here) a.setAttribute("aria-current", "page");
      nav.appendChild(a);
    }
  });
}
fillNav();

let csrf = null;

// Calls the JSON API; resolves to {status, body}. Never throws for HTTP errors.
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch("/api/v1" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await r.json(); } catch (_) { data = null; }
  return { status: r.status, body: data };
}

function go(page) { window.location.replace(page); }

function showErrors(form, errors) {
  form.querySelectorAll("[data-error-for]").forEach((p) => { p.textContent = ""; });
  for (const [field, msg] of Object.entries(errors || {})) {
    const p = form.querySelector('[data-error-for="' + field + '"]');
    if (p) p.textContent = msg; else formError(form, msg);
  }
}

function formError(form, msg) {
  const p = form.querySelector("#form-error") || document.getElementById("form-error");
  if (p) p.textContent = msg;
}

// Loads the session; sends the user to login or the forced password change as needed.
async function session(allowForced) {
  const r = await api("GET", "/me");
  if (r.status === 401) { go("login.html"); return null; }
  if (r.status !== 200 || !r.body) { go("login.html"); return null; }
  csrf = r.body.csrf_token;
  if (r.body.user.must_change_password && !allowForced) { go("password.html"); return null; }
  const who = document.getElementById("who");
  if (who) who.textContent = r.body.user.name + " (" + r.body.user.role + ")";
  document.querySelectorAll("[data-needs]").forEach((el) => {
    el.hidden = !r.body.permissions.includes(el.dataset.needs);
  });
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", async () => { await api("POST", "/logout"); go("login.html"); });
  if (r.body.user.extension && r.body.permissions.includes("crm_view")) screenPop();
  return r.body;
}

// The screen pop (CRM自動検索 / 着信ポップアップ): on every page of a user with an extension, a
// stream of the phones of that extension starting to ring; each ring shows a panel with the
// caller's number, the customers saved with it (links to their pages) and the DID's pop-up
// URL. EventSource reconnects by itself when the server ends a stream (every 2 minutes).
function screenPop() {
  const panel = document.createElement("aside");
  panel.id = "screen-pop";
  panel.className = "screen-pop";
  panel.hidden = true;
  panel.setAttribute("role", "alert");
  document.body.appendChild(panel);
  const es = new EventSource("/api/v1/crm/screen-pop/stream");
  es.addEventListener("ready", () => { document.body.dataset.screenPop = "ready"; });
  es.addEventListener("error", () => { document.body.dataset.screenPop = "reconnecting"; });
  es.addEventListener("ringing", (ev) => {
    let p;
    try { p = JSON.parse(ev.data); } catch (_) { return; }
    panel.replaceChildren();
    const h = document.createElement("h2");
    h.textContent = t("pop.title") + ": " + p.caller;
    panel.appendChild(h);
    const list = document.createElement("ul");
    for (const c of p.customers || []) {
      const li = document.createElement("li");
      const a = document.createElement("a");
      a.href = c.url; a.className = "pop-customer";
      a.textContent = c.ref + " " + c.name + (c.code ? " (" + c.code + ")" : "");
      li.appendChild(a);
      list.appendChild(li);
    }
    if (!(p.customers || []).length) {
      const li = document.createElement("li"); li.textContent = t("pop.none"); list.appendChild(li);
    }
    panel.appendChild(list);
    if (p.popup_url && /^https?:\/\//i.test(p.popup_url)) {
      const a = document.createElement("a");
      a.href = p.popup_url; a.target = "_blank"; a.rel = "noopener noreferrer"; a.id = "pop-url";
      a.textContent = t("pop.open");
      a.title = p.popup_url;
      panel.appendChild(a);
    }
    const close = document.createElement("button");
    close.type = "button"; close.className = "small"; close.textContent = t("pop.close");
    close.addEventListener("click", () => { panel.hidden = true; });
    panel.appendChild(close);
    panel.hidden = false;
  });
}

function duration(s) {
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return (d ? d + "d " : "") + h + "h " + m + "m";
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

const PAGES = {
  async index() {
    const r = await api("GET", "/me");
    if (r.status !== 200) return go("login.html");
    go(r.body.user.must_change_password ? "password.html" : "dashboard.html");
  },

  async login() {
    const form = document.getElementById("login-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      showErrors(form, {});
      formError(form, "");
      const r = await api("POST", "/login", { user: form.user.value.trim(), password: form.password.value });
      if (r.status === 200) {
        csrf = r.body.csrf_token;
        return go(r.body.user.must_change_password ? "password.html" : "dashboard.html");
      }
      if (r.status === 422) return showErrors(form, r.body.errors);
      if (r.status === 423) return formError(form, t("login.locked", { m: Math.ceil(r.body.retry_after_s / 60) }));
      if (r.status === 401) return formError(form, t("login.bad"));
      formError(form, t("error.generic", { s: r.status }));
    });
  },

  async password() {
    const me = await session(true);
    if (!me) return;
    document.getElementById("forced").hidden = !me.user.must_change_password;
    const form = document.getElementById("password-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const cur = document.getElementById("current_password").value;
      const nw = document.getElementById("new_password").value;
      if (nw !== document.getElementById("repeat_password").value) {
        return showErrors(form, { repeat_password: t("password.mismatch") });
      }
      showErrors(form, {});
      const r = await api("POST", "/me/password", { current_password: cur, new_password: nw });
      if (r.status === 200) return go("dashboard.html");
      if (r.status === 422) return showErrors(form, r.body.errors);
      if (r.status === 401) return go("login.html");
      formError(form, t("error.generic", { s: r.status }));
    });
  },

  async dashboard() {
    if (!(await session(false))) return;
    const show = (v, id) => { document.getElementById(id).textContent = v === null || v === undefined ? "–" : v; };
    const refresh = async () => {
      const r = await api("GET", "/dashboard");
      if (r.status === 401) return go("login.html");
      if (r.status !== 200) return;
      show(r.body.version, "version");
      show(duration(r.body.uptime_s), "uptime");
      show(r.body.registrations, "registrations");
      show(r.body.active_calls, "calls");
      if (window.dashboardExtra) window.dashboardExtra(r.body);
    };
    await refresh();
    setInterval(refresh, 5000);
  },

  async users() {
    const me = await session(false);
    if (!me) return;
    const may = (p) => me.permissions.includes(p);
    const load = async () => {
      const [users, roles, sessions] = await Promise.all([
        api("GET", "/users"), api("GET", "/roles"),
        may("sessions_view") ? api("GET", "/sessions") : Promise.resolve({ status: 0, body: { sessions: [] } }),
      ]);
      if (users.status === 401) return go("login.html");
      if (users.status !== 200) return formError(document, t("error.generic", { s: users.status }));
      const online = new Set((sessions.body && sessions.body.sessions || []).map((s) => s.user));
      const tbody = document.querySelector("#users-table tbody");
      tbody.replaceChildren();
      for (const u of users.body.users) {
        const tr = document.createElement("tr");
        cell(tr, u.id); cell(tr, u.name); cell(tr, u.extension || ""); cell(tr, u.role);
        cell(tr, online.has(u.id) ? t("users.online") : "");
        const actions = cell(tr, "");
        if (online.has(u.id) && may("sessions_logout") && u.id !== me.user.id) {
          const b = document.createElement("button");
          b.className = "small"; b.textContent = t("users.logout");
          b.addEventListener("click", async () => { await api("DELETE", "/sessions/" + encodeURIComponent(u.id)); load(); });
          actions.appendChild(b);
        }
        if (may("users_edit") && u.id !== me.user.id) {
          const b = document.createElement("button");
          b.className = "small"; b.textContent = t("users.delete");
          b.addEventListener("click", async () => {
            if (!window.confirm(t("users.confirm"))) return;
            const r = await api("DELETE", "/users/" + encodeURIComponent(u.id));
            if (r.status === 422) window.alert(Object.values(r.body.errors).join("\n"));
            load();
          });
          actions.appendChild(b);
        }
        tbody.appendChild(tr);
      }
      const select = document.getElementById("u-role");
      const rbody = document.querySelector("#roles-table tbody");
      select.replaceChildren(); rbody.replaceChildren();
      for (const r of (roles.body && roles.body.roles) || []) {
        const o = document.createElement("option");
        o.value = r.name; o.textContent = r.name; select.appendChild(o);
        const tr = document.createElement("tr");
        cell(tr, r.name); cell(tr, r.permissions.join(", "), "wrap"); cell(tr, String(r.users));
        rbody.appendChild(tr);
      }
    };
    const form = document.getElementById("user-form");
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      showErrors(form, {});
      formError(form, "");
      const v = (id) => document.getElementById(id).value;
      const r = await api("POST", "/users", {
        id: v("u-id").trim(), name: v("u-name").trim(), role: v("u-role"),
        extension: v("u-extension").trim() || null, password: v("u-password"),
      });
      if (r.status === 201) { form.reset(); formError(form, t("users.created")); return load(); }
      if (r.status === 422 || r.status === 409) return showErrors(form, r.body.errors);
      formError(form, t("error.generic", { s: r.status }));
    });
    await load();
  },
};

document.addEventListener("DOMContentLoaded", () => {
  translate();
  document.querySelectorAll("[data-lang-toggle]").forEach((b) => b.addEventListener("click", () => {
    localStorage.setItem("hakoden.lang", lang() === "ja" ? "en" : "ja");
    translate();
  }));
  const page = PAGES[document.body.dataset.page];
  if (page) page();
});
