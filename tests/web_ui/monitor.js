// The live monitor and reports in headless Chromium. Run by tests/web_ui_monitor.rs, which
// starts the box and a SIPp agent phone (AGENT, logged in, preparing), places a SIPp caller into
// queue GROUP once the page has made the agent available, and passes BASE_URL, USER, PASSWORD, AGENT, GROUP, OUT_DIR, USER_DATA_DIR.
// Every wait is on the DOM (bounded); exits non-zero with a message on the first failure.
"use strict";
const { env, open } = require("./browser");
const fs = require("fs");
const path = require("path");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
const AGENT = env("AGENT");
const STEP_MS = 20000;

(async () => {
  const { context, page, shot } = await open({ acceptDownloads: true, stepMs: STEP_MS });
  page.on("pageerror", (e) => console.error("page error: " + e.message));
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", env("USER"));
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.goto(BASE + "/monitor.html");
    await page.waitForSelector("#live.on");
    await page.waitForSelector("#operators tr[data-ext='" + AGENT + "'][data-state='preparing']");
    await shot("01-monitor-preparing");
    // An optional column, chosen and remembered for this user.
    await page.click("#columns summary");
    await page.check("#cols-phone input[value='answer_wait_s']");
    await page.waitForSelector("#overall th:has-text('平均応答時間')");
    // The supervisor makes the agent available from the action panel.
    await page.click("#operators tr[data-ext='" + AGENT + "']");
    await page.waitForSelector("#actions[data-ext='" + AGENT + "']:visible");
    await page.selectOption("#act-new-state", "available");
    await page.click("#act-set-state");
    await page.waitForSelector("#act-done:not(:empty)");
    await page.click("#act-close");
    // The test then places a SIPp call into the queue: it waits while the agent's phone rings.
    await page.waitForSelector("#overall td[data-col='waiting']:text-is('1')");
    await page.waitForSelector("#groups tr[data-group='" + env("GROUP") + "'] td[data-col='waiting']:text-is('1')");
    await page.waitForSelector("#operators tr[data-ext='" + AGENT + "'][data-state='ringing']");
    await shot("01-monitor-waiting");
    // The SIPp phone answers: the page shows the agent talking and nobody waiting.
    await page.waitForSelector("#operators tr[data-ext='" + AGENT + "'][data-state='talking']");
    await page.waitForSelector("#overall td[data-col='waiting']:text-is('0')");
    await page.waitForSelector("#overall td[data-col='in_call_in']:text-is('1')");
    await page.waitForSelector("#overall td[data-col='answered']:text-is('1')");
    await shot("02-monitor-talking");
    await page.click("#view-seats6");
    await page.waitForSelector("#seats .seat[data-ext='" + AGENT + "'][data-state='talking']");
    await shot("03-seats");
    // The column choice survives a reload (localStorage, per user).
    await page.reload();
    await page.waitForSelector("#overall th:has-text('平均応答時間')");

    // Today's phone-group report (the form starts on today) and its CSV.
    await page.goto(BASE + "/reports.html");
    await page.waitForSelector("#r-periods input");
    await page.click("#report-form button[type='submit']");
    await page.waitForSelector("#r-result:visible");
    await page.waitForSelector("table.report[data-period='0'] td:text-is('" + env("GROUP") + "')");
    await page.waitForSelector("#r-svg circle");
    await shot("04-report");
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#r-csv")]);
    const file = await download.path();
    const bytes = fs.readFileSync(file);
    if (bytes[0] !== 0xef || bytes[1] !== 0xbb || bytes[2] !== 0xbf) throw new Error("the CSV has no UTF-8 BOM");
    const header = bytes.toString("utf8").replace(/^\uFEFF/, "").split("\r\n")[0];
    if (!header.startsWith("期間,電話グループ名,電話番号,着信数,発信数,応答数")) throw new Error("CSV header: " + header);
    fs.copyFileSync(file, path.join(OUT, "report.csv"));
    // A limit broken in the form comes back as a field message; English and a pie chart.
    await page.click("[data-lang-toggle]");
    await page.selectOption("#r-chart", "pie");
    await page.waitForSelector("#r-svg path");
    await shot("05-report-en-pie");
    await page.selectOption("#r-unit", "hour");
    await page.fill("#r-from-0", "2026-01-01");
    await page.fill("#r-to-0", "2026-03-31");
    await page.click("#report-form button[type='submit']");
    await page.waitForSelector("[data-error-for='periods']:not(:empty)");
    await shot("06-report-limit");
    console.log("monitor flow ok; CSV header: " + header.slice(0, 60));
  } catch (e) {
    console.error(e && e.stack || String(e));
    await shot("99-failure").catch(() => {});
    await context.close();
    process.exit(1);
  }
  await context.close();
})();
