// The extensions settings page in headless Chromium: the admin logs in, opens the extensions
// page, adds extension 250 with a bad number first (the server's field error is shown next to
// the field), then correctly; a phone then registers with it (tests/web_ui_config.rs runs SIPp
// once 250 exists) and the dashboard counts it. Env: BASE_URL, ADMIN_PASSWORD (already
// changed, no forced change), EXT_PASSWORD, OUT_DIR, USER_DATA_DIR.
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
// Every wait is bounded: a broken page fails the test instead of hanging it. The dashboard
// refreshes every 5 s and the phone registers meanwhile, hence the longer last wait.
const STEP_MS = 15000;
const REGISTERED_MS = 60000;

(async () => {
  const { context, page, shot } = await open({ stepMs: STEP_MS });
  page.on("dialog", (d) => d.accept());
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", "admin");
    await page.fill("#password", env("ADMIN_PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.click("a[href='settings.html']");
    await page.waitForURL("**/settings.html");
    await page.waitForSelector("button[data-edit='201']");
    await shot("01-extensions");
    await page.click("#add");
    await page.fill("#f-number", "25x");
    await page.fill("#f-name", "新しい内線");
    await page.click("#generate-password");
    const generated = await page.inputValue("#f-password");
    if (generated.length < 12) throw new Error("generated password too short: " + generated);
    await page.click("#save");
    await page.waitForSelector("[data-error-for='number']:not(:empty)");
    await shot("02-field-error");
    await page.fill("#f-number", "250");
    await page.fill("#f-password", env("EXT_PASSWORD"));
    await page.click("#save");
    await page.waitForSelector("button[data-edit='250']");
    await page.waitForSelector("#notice:not([hidden])");
    await shot("03-created");
    console.log("extension 250 created");
    await page.click("a[href='dashboard.html']");
    await page.waitForURL("**/dashboard.html");
    await page.waitForSelector("#registrations:has-text('1')", { timeout: REGISTERED_MS });
    await shot("04-dashboard-registered");
    console.log("web ui extension flow passed");
    await context.close();
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error("web ui extension flow failed at " + page.url() + ": " + (e && e.stack || e));
    await context.close().catch(() => {});
    process.exit(1);
  }
})();
