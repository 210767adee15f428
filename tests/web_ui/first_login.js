// First login of the seeded admin in headless Chromium: login page -> forced password change ->
// dashboard showing the firmware version; then the users page. Run by tests/web_ui.rs, which
// starts the box and passes: BASE_URL, ADMIN_PASSWORD, NEW_PASSWORD, VERSION, OUT_DIR (screenshots),
// USER_DATA_DIR (a fresh Chromium profile). Exits non-zero with a message on the first failure.
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
// Every wait is bounded: a broken page fails the test instead of hanging it.
const STEP_MS = 15000;

(async () => {
  const { context, page, shot } = await open({ stepMs: STEP_MS });
  try {
    await page.goto(BASE + "/");
    await page.waitForURL("**/login.html");
    await page.waitForSelector("text=ユーザーID");
    await shot("01-login-ja");
    await page.fill("#user", "admin");
    await page.fill("#password", "Wrong12345x");
    await page.click("#login-submit");
    await page.waitForSelector("#form-error:has-text('ユーザーIDまたはパスワードが違います')");
    await page.fill("#password", env("ADMIN_PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/password.html");
    await page.waitForSelector("#forced:visible");
    await shot("02-forced-change");
    // A weak password is refused by the server with a field message.
    await page.fill("#current_password", env("ADMIN_PASSWORD"));
    await page.fill("#new_password", "weakpassword");
    await page.fill("#repeat_password", "weakpassword");
    await page.click("#password-submit");
    await page.waitForSelector("[data-error-for='new_password']:not(:empty)");
    await shot("03-policy-refused");
    await page.fill("#new_password", env("NEW_PASSWORD"));
    await page.fill("#repeat_password", env("NEW_PASSWORD"));
    await page.click("#password-submit");
    await page.waitForURL("**/dashboard.html");
    await page.waitForSelector("#version:has-text('" + env("VERSION") + "')");
    await page.waitForSelector("#registrations:has-text('0')");
    await shot("04-dashboard");
    await page.click("[data-lang-toggle]");
    await page.waitForSelector("text=Registered phones");
    await shot("05-dashboard-en");
    await page.click("a[href='users.html']");
    await page.waitForURL("**/users.html");
    await page.waitForSelector("#users-table td:has-text('admin')");
    await page.fill("#u-id", "op1");
    await page.fill("#u-name", "オペレーター1");
    await page.fill("#u-extension", "201");
    await page.selectOption("#u-role", "agent");
    await page.fill("#u-password", "short");
    await page.click("#user-form button[type=submit]");
    await page.waitForSelector("[data-error-for='password']:not(:empty)");
    await page.fill("#u-password", env("NEW_PASSWORD"));
    await page.click("#user-form button[type=submit]");
    await page.waitForSelector("#users-table td:has-text('op1')");
    await shot("06-users");
    console.log("web ui flow passed");
    await context.close();
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error("web ui flow failed at " + page.url() + ": " + (e && e.stack || e));
    await context.close().catch(() => {});
    process.exit(1);
  }
})();
