// Voicemail & recordings page and the dashboard's alarms in headless Chromium. Run by
// tests/web_ui_media.rs, which seeds one G.711 recording, configures a trunk at a dead port and
// passes: BASE_URL, PASSWORD (the admin's, already changed), RECORDING (its id DAY/FILE),
// OUT_DIR (screenshots), USER_DATA_DIR. Exits non-zero with a message on the first failure.
"use strict";
const { env, open } = require("./browser");

const BASE = env("BASE_URL");
const OUT = env("OUT_DIR");
const STEP_MS = 15000;

(async () => {
  const { context, page, shot } = await open({ extraArgs: ["--autoplay-policy=no-user-gesture-required"], stepMs: STEP_MS });
  try {
    await page.goto(BASE + "/login.html");
    await page.fill("#user", "admin");
    await page.fill("#password", env("PASSWORD"));
    await page.click("#login-submit");
    await page.waitForURL("**/dashboard.html");
    // The trunk at a dead port is down and its alarm is listed (the page refreshes itself).
    await page.waitForSelector("#alarms-table tr[data-key='trunk:provider']");
    await page.waitForSelector("#trunks-table td:has-text('provider')");
    await page.waitForSelector("#storage:has-text('%')");
    await shot("01-dashboard-alarm");

    await page.click("a[href='media.html']");
    await page.waitForURL("**/media.html");
    const row = "#rec-table tr[data-id='" + env("RECORDING") + "']";
    await page.waitForSelector(row);
    await shot("02-recordings");
    // Play it: the audio element must reach canplay (the WAV streams with Range from the box).
    const ready = page.evaluate(() => new Promise((resolve, reject) => {
      const a = document.getElementById("player");
      a.addEventListener("canplay", () => resolve(true), { once: true });
      a.addEventListener("error", () => reject(new Error("audio error " + (a.error && a.error.code))), { once: true });
    }));
    await page.click(row + " button[data-play]");
    await Promise.race([ready, new Promise((_, rej) => setTimeout(() => rej(new Error("no canplay")), STEP_MS))]);
    const src = await page.evaluate(() => document.getElementById("player").currentSrc);
    if (!src.includes(env("RECORDING"))) throw new Error("played " + src);
    await shot("03-playing");
    // A bad search shows the server's field message.
    await page.fill("#rec-extension", "x");
    await page.click("#rec-form button[type=submit]");
    await page.waitForSelector("#rec-form [data-errors]:has-text('extension')");
    await shot("04-field-error");
    console.log("media flow ok");
  } catch (e) {
    console.error("FAILED: " + (e && e.stack || e));
    try { await shot("99-failure"); } catch (_) { /* the page may be gone */ }
    await context.close();
    process.exit(1);
  }
  await context.close();
})();
