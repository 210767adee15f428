// The phonebook page in headless Chromium: log in, import a Shift_JIS phonebook CSV with one
// bad row, see the Japanese names in the table and the row error under the form; then the
// lists and history pages load. Run by tests/web_ui_phonebook.rs, which starts the box and
// passes: BASE_URL, PASSWORD (the admin's, already changed), CSV (the fixture's path), OUT_DIR
// (screenshots), USER_DATA_DIR. Exits non-zero with a message on the first failure.
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
// Every wait is bounded: a broken page fails the test instead of hanging it.
const STEP_MS = 15000;

(async () => {
  const { context, page, shot } = await open({ stepMs: STEP_MS });
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", "admin");
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    await page.click("a[href='phonebook.html']");
    await page.waitForURL("**/phonebook.html");
    await page.waitForSelector("#count:has-text('0 件')");
    await page.setInputFiles("#i-file", env("CSV"));
    await page.selectOption("#i-encoding", "auto");
    await page.click("#i-submit");
    await page.waitForSelector("#import-result:has-text('3 件を登録しました（shift_jis）')");
    await page.waitForSelector("#import-errors tr:has(td:text-is('4')):has(td:text-is('number1'))");
    await page.waitForSelector("#pb-table td:has-text('山田 太郎')");
    await page.waitForSelector("#pb-table td:has-text('090-1234-5678')");
    await page.waitForSelector("#count:has-text('3 件')");
    await shot("01-phonebook-imported");
    // Search in hiragana finds the katakana reading.
    await page.fill("#q", "すずき");
    await page.click("#search-form button[type=submit]");
    await page.waitForSelector("#count:has-text('1 件')");
    await page.waitForSelector("#pb-table td:has-text('鈴木 花子')");
    await shot("02-phonebook-search");
    // A personal entry through the form; a bad number is shown next to its field.
    await page.selectOption("#e-scope", "personal");
    await page.fill("#e-name", "自分用");
    await page.fill("#e-numbers .pair:first-child .n-number", "abc");
    await page.click("#entry-form button[type=submit]");
    await page.waitForSelector("[data-error-for='numbers.0.number']:not(:empty)");
    await page.fill("#e-numbers .pair:first-child .n-number", "090-0000-1111");
    await page.click("#entry-form button[type=submit]");
    await page.fill("#q", "");
    await page.click("#search-form button[type=submit]");
    await page.waitForSelector("#pb-table td:has-text('自分用')");
    await shot("03-phonebook-personal");
    await page.click("a[href='lists.html']");
    await page.waitForURL("**/lists.html");
    await page.fill("#a-number", "090-9999-8888");
    await page.fill("#a-note", "いたずら");
    await page.click("#add-form button[type=submit]");
    await page.waitForSelector("#ls-table td:has-text('09099998888')");
    await shot("04-lists");
    await page.click("a[href='history.html']");
    await page.waitForURL("**/history.html");
    await page.waitForSelector("#count:has-text('検索結果')");
    await shot("05-history");
    console.log("phonebook ui flow passed");
    await context.close();
  } catch (e) {
    await shot("failure").catch(() => {});
    console.error("phonebook ui flow failed at " + page.url() + ": " + (e && e.stack || e));
    await context.close().catch(() => {});
    process.exit(1);
  }
})();
