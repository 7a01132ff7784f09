// The dashboard in a real browser: Debian's Chromium, headless, driven by
// Playwright. Run by tests/integration/test_dashboard.c, which starts
// usher-api on a seeded database and checks the database afterwards.
// Environment: USHER_URL (http://127.0.0.1:PORT), USHER_TOKEN (admin),
// USHER_DEAD_JOB (the id of a dead job), USHER_QUEUE (a queue to pause),
// USHER_SCREENSHOT (where to save the page).
import { chromium } from "playwright-core";

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = need("USHER_URL"), tok = need("USHER_TOKEN");
const deadJob = need("USHER_DEAD_JOB"), queue = need("USHER_QUEUE");
const shot = need("USHER_SCREENSHOT");
const timeout = 30000;

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
let failed = false;
try {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (req) => {
    if (!req.url().startsWith(url)) external.push(req.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  await page.goto(url + "/dashboard");
  await page.fill("#token", tok);
  await page.click("#login button[type=submit]");

  // The seeded queues are listed.
  const row = page.locator(`#queues tr[data-queue="${queue}"]`);
  await row.waitFor({ timeout });
  // The dead job is listed; Retry takes it off the dead list.
  const dead = page.locator(`#dead tr[data-job="${deadJob}"]`);
  await dead.waitFor({ timeout });
  await dead.locator("button[data-action=retry]").click();
  await dead.waitFor({ state: "detached", timeout });

  // Pause, then resume, the queue.
  await row.locator("button[data-action=pause]").click();
  await page.locator(`#queues tr.paused[data-queue="${queue}"]`).waitFor({ timeout });
  await page.locator(`#queues tr[data-queue="${queue}"] button[data-action=resume]`).click();
  await page.locator(`#queues tr[data-queue="${queue}"]:not(.paused)`).waitFor({ timeout });

  await page.screenshot({ path: shot, fullPage: true });
  if (external.length) throw new Error("requests left the server: " + external.join(", "));
  if (errors.length) throw new Error("page errors: " + errors.join("; "));
  // The token is in the session only, never in local storage.
  const stored = await page.evaluate(() => [sessionStorage.length, localStorage.length]);
  if (stored[0] !== 1 || stored[1] !== 0) throw new Error("token storage: " + stored);
  console.log("dashboard: ok");
} catch (e) {
  failed = true;
  console.error("dashboard: " + e.message);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
