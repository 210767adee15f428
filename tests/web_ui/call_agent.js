// The live monitor's 内線 ("call the agent") button in headless Chromium. Run by
// tests/web_ui_call_agent.rs, which starts the box with SIPp phones for the supervisor (SUP)
// and the agent (AGENT, logged in and available), and passes BASE_URL, USER, PASSWORD, AGENT,
// SUP, OUT_DIR, USER_DATA_DIR. Every wait is on the DOM (bounded); exits non-zero on failure.
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const AGENT = env("AGENT");
const STEP_MS = 20000;

(async () => {
  const { context, page, shot } = await open({ stepMs: STEP_MS });
  page.on("pageerror", (e) => console.error("page error: " + e.message));
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", env("USER"));
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.goto(BASE + "/monitor.html");
    await page.waitForSelector("#live.on");
    await page.waitForSelector("#operators tr[data-ext='" + AGENT + "'][data-state='available']");
    await page.click("#operators tr[data-ext='" + AGENT + "']");
    await page.waitForSelector("#actions[data-ext='" + AGENT + "']:visible");
    await page.waitForSelector("#act-call:has-text('内線')");
    await shot("01-actions");
    await page.click("#act-call");
    // The box rings the supervisor's phone, then the agent's: the page says so, and the
    // monitor shows the agent on an internal call once both answered.
    await page.waitForSelector("#act-done:has-text('" + env("SUP") + "')");
    await shot("02-ringing-you");
    await page.click("#act-close");
    await page.waitForSelector("#operators tr[data-ext='" + AGENT + "'][data-state='internal_call']");
    await shot("03-agent-on-the-call");
    console.log("call-agent flow ok");
  } catch (e) {
    console.error(e && e.stack || String(e));
    await shot("99-failure").catch(() => {});
    await context.close();
    process.exit(1);
  }
  await context.close();
})();
