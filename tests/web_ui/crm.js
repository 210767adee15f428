// The CRM page and the screen pop in headless Chromium. Run by tests/web_ui_crm.rs, which starts
// the box with a trunk whose DID (with a pop-up URL) rings extension 201 and passes: BASE_URL,
// USER (a supervisor bound to 201), PASSWORD, CSV (a Shift_JIS customer file with one bad row),
// CALLER (the number that will call), OUT_DIR, USER_DATA_DIR. Once the page's screen-pop stream
// is live the flow writes OUT_DIR/ready; the test then registers a SIPp phone for 201 and has a
// SIPp provider call the DID from CALLER. Every wait is on the DOM (bounded); exits non-zero
// with a message on the first failure.
"use strict";
const { env, open } = require("./browser");
const fs = require("fs");
const path = require("path");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
const CALLER = env("CALLER");
const STEP_MS = 20000;
// The call comes only after `ready`; the pop must then show. Generous for a loaded CI box.
const POP_MS = 60000;

(async () => {
  const { context, page, shot } = await open({ stepMs: STEP_MS });
  page.on("pageerror", (e) => console.error("page error: " + e.message));
  page.on("dialog", (d) => d.accept());
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", env("USER"));
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.click("a[href='crm.html']");
    await page.waitForURL("**/crm.html");
    await page.waitForSelector("#c-count:has-text('0 件')");

    // A customer through the form: a bad number is named next to its field, then fixed.
    await page.click("#c-new");
    await page.fill("#c-name", "大阪商事");
    await page.fill("#c-phones", "でんわ");
    await page.click("#c-form button[type=submit]");
    await page.waitForSelector("[data-error-for='phones[0]']:not(:empty)");
    const phone = CALLER.slice(0, 2) + "-" + CALLER.slice(2, 6) + "-" + CALLER.slice(6);
    await page.fill("#c-phones", phone);
    await page.click("#c-form button[type=submit]");
    await page.waitForSelector("#c-table td:has-text('大阪商事')");
    await page.waitForSelector("#c-title:has-text('#C1 大阪商事')");
    await shot("01-crm-customer");

    // The Shift_JIS upload: preview, the guessed mapping (name, phone), run; the bad row is
    // reported with its line and field.
    await page.click("[data-tab=upload]");
    await page.setInputFiles("#u-file", env("CSV"));
    await page.click("#u-preview");
    await page.waitForSelector("#u-result:has-text('shift_jis')");
    await page.waitForSelector("#u-table td:has-text('テスト001')");
    await shot("02-crm-upload-mapping");
    await page.click("#u-import");
    await page.waitForSelector("#u-result:has-text('2 件を登録しました')");
    await page.waitForSelector("#u-skipped tr:has(td:text-is('3')):has(td:text-is('phones[0]'))");
    await shot("03-crm-upload-result");

    // Chat to everyone with a customer reference: it becomes a link to the record.
    await page.click("[data-tab=chat]");
    await page.fill("#chat-text", "#C1 から折返し依頼です");
    await page.check("#chat-bold");
    await page.click("#chat-form button[type=submit]");
    await page.waitForSelector("#chat-log a[href='crm.html#customer=1']");
    await shot("04-crm-chat");

    // The screen pop: the stream is live, the test places the call.
    await page.click("[data-tab=customers]");
    await page.waitForSelector("body[data-screen-pop='ready']");
    fs.writeFileSync(path.join(OUT, "ready"), "ready\n");
    await page.waitForSelector("#screen-pop:not([hidden]) a.pop-customer:has-text('大阪商事')", { timeout: POP_MS });
    await page.waitForSelector("#screen-pop h2:has-text('" + CALLER + "')");
    const href = await page.getAttribute("#pop-url", "href");
    if (href !== "https://crm.example/search?tel=" + CALLER) throw new Error("pop-up URL " + href);
    await shot("05-crm-screen-pop");

    // The customer's page from the pop, with the call in its history once the call has ended
    // (the CDR is written at hang-up): reopened until it shows.
    await page.click("#screen-pop a.pop-customer");
    await page.waitForSelector("#c-title:has-text('大阪商事')");
    let shown = false;
    for (let i = 0; i < 30 && !shown; i++) {
      shown = (await page.locator("#c-calls td:has-text('" + CALLER + "')").count()) > 0;
      if (!shown) {
        await page.waitForTimeout(1000);
        await page.evaluate(() => { window.location.hash = ""; window.location.hash = "#customer=1"; });
      }
    }
    if (!shown) throw new Error("the call is not in the customer's history");
    await shot("06-crm-customer-calls");
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error(e && e.stack ? e.stack : String(e));
    await context.close();
    process.exit(1);
  }
  await context.close();
})();
