// Shared by the browser flows (tests/web_ui/*.js): the environment the Rust side passes
// (`common::web::browser_flow`) and one headless Chromium set up like an admin's phone:
// the box's self-signed certificate accepted, Japanese, a 390-px screen.
"use strict";
const { chromium } = require("playwright-core");
const path = require("path");

// A required environment variable; a missing one ends the flow with exit 2.
function env(k) {
  const v = process.env[k];
  if (!v) { console.error("missing env " + k); process.exit(2); }
  return v;
}

// Opens Chromium on USER_DATA_DIR. opts: stepMs (every wait's bound: a broken page fails the
// test instead of hanging it), extraArgs, acceptDownloads. Returns the context, its page and
// `shot(name)`, which saves OUT_DIR/name.png.
async function open(opts = {}) {
  const context = await chromium.launchPersistentContext(env("USER_DATA_DIR"), {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    ignoreHTTPSErrors: true, // the box's first certificate is self-signed
    acceptDownloads: Boolean(opts.acceptDownloads),
    locale: "ja-JP",
    viewport: { width: 390, height: 844 }, // a phone: the pages must work on a small screen
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ...(opts.extraArgs || [])],
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(opts.stepMs || 15000);
  const out = env("OUT_DIR");
  const shot = (name) => page.screenshot({ path: path.join(out, name + ".png"), fullPage: true });
  return { context, page, shot };
}

module.exports = { env, open };
