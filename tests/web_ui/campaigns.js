// The campaigns page in headless Chromium. Run by tests/web_ui_campaigns.rs, which starts the
// box with campaign CAMPAIGN (off, results 1 and 2) and passes BASE_URL, USER, PASSWORD,
// CAMPAIGN, OUT_DIR, USER_DATA_DIR. Every wait is on the DOM (bounded).
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const C = env("CAMPAIGN");

(async () => {
  const { context, page, shot } = await open({ stepMs: 20000 });
  page.on("pageerror", (e) => console.error("page error: " + e.message));
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", env("USER"));
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.click("header nav a[href='campaigns.html']");
    await page.waitForSelector("#cp-table tr[data-campaign='" + C + "']");
    await page.click("#cp-table tr[data-campaign='" + C + "']");
    await page.waitForSelector("#list-section:visible");
    // A bad number is a field message; a good one is listed.
    await page.fill("#a-number", "03-abc");
    await page.click("#add-form button[type='submit']");
    await page.waitForSelector("[data-error-for='number']:not(:empty)");
    await page.fill("#a-number", "0311110001");
    await page.fill("#a-name", "山田 太郎");
    await page.click("#add-form button[type='submit']");
    await page.waitForSelector("#entries tr[data-entry='1'] td:has-text('山田 太郎')");
    await shot("01-list");
    // Result 1 from the list; the statistics show the campaign's result columns (an entry
    // never dialled has no last dial, so no row counts it).
    await page.selectOption("#entries tr[data-entry='1'] select", "1");
    await page.waitForSelector("#entries tr[data-entry='1'] td:has-text('成約')");
    await page.selectOption("#s-unit", "agent");
    await page.click("#stats-form button[type='submit']");
    await page.waitForSelector("#stats th:has-text('成約')");
    await shot("02-result-and-stats");
    await page.click("[data-lang-toggle]");
    await page.waitForSelector("h1:has-text('Campaigns')");
    await shot("03-english");
    console.log("campaigns flow ok");
  } catch (e) {
    console.error(e && e.stack || String(e));
    await shot("99-failure").catch(() => {});
    await context.close();
    process.exit(1);
  }
  await context.close();
})();
