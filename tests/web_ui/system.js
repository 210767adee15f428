// The system page in headless Chromium: the admin sees that a developer box has no A/B slots
// (the update form hidden), downloads a backup, and uploads it back, which the box checks and
// stages for the next start. Run by tests/web_ui_system.rs with BASE_URL, ADMIN_PASSWORD
// (already changed), OUT_DIR, USER_DATA_DIR. Exits non-zero with a message on the first failure.
"use strict";
const { env, open } = require("./browser");
const fs = require("fs");
const path = require("path");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
const STEP_MS = 15000;

(async () => {
  const { context, page, shot } = await open({ acceptDownloads: true, stepMs: STEP_MS });
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", "admin");
    await page.fill("#password", env("ADMIN_PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.click("a[href='system.html']");
    await page.waitForURL("**/system.html");
    await page.waitForSelector("#last-update:has-text('A/B')");
    if (await page.isVisible("#update-form")) throw new Error("the update form shows on a box without slots");
    await shot("01-system");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click("#backup-form button[type=submit]"),
    ]);
    const backup = path.join(OUT, "backup.hkb");
    await download.saveAs(backup);
    if (fs.statSync(backup).size === 0) throw new Error("the backup is empty");
    await page.setInputFiles("#restore-file", backup);
    await page.click("#restore-form button[type=submit]");
    await page.waitForSelector("#restore-error:has-text('検証しました')");
    await shot("02-restore-staged");
    console.log("system flow ok");
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error("web ui system flow failed at " + page.url() + ": " + e.message);
    process.exitCode = 1;
  } finally {
    await context.close();
  }
})();
