// The dashboard in a real browser: Debian's Chromium, headless, driven by
// Playwright. Run by tests/integration/test_dashboard.c, which starts
// usher-api and a worker on a seeded database and checks the database
// afterwards. Environment: USHER_URL (http://127.0.0.1:PORT), USHER_TOKEN
// (admin), USHER_DEAD_JOB (the id of a dead job), USHER_QUEUE (a queue to
// pause), USHER_SLEEP_JOB and USHER_SLEEP_KIND (a dead job that runs once
// retried, and its kind), USHER_BULK_QUEUE, USHER_BULK_KIND and
// USHER_BULK_COUNT (the available jobs to cancel in bulk: queue, kind, how
// many), USHER_SCREENSHOT (where to save the page).
//
// Every view, and the confirmation dialog, passes axe-core with no serious
// or critical violation; the bulk cancel is done with Tab, typing and Enter
// only.
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const need = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = need("USHER_URL"), tok = need("USHER_TOKEN");
const deadJob = need("USHER_DEAD_JOB"), queue = need("USHER_QUEUE");
const sleepJob = need("USHER_SLEEP_JOB"), sleepKind = need("USHER_SLEEP_KIND");
const bulkQueue = need("USHER_BULK_QUEUE"), bulkKind = need("USHER_BULK_KIND");
const bulkCount = Number(need("USHER_BULK_COUNT"));
const shot = need("USHER_SCREENSHOT");
const timeout = 30000;
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url),
                               "utf8");

// axe-core in the page (evaluated by the DevTools protocol, which the page's
// CSP does not govern), then its serious and critical violations.
async function accessible(page, where) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}) at ${v.nodes.slice(0, 3).map((n) => n.target.join(" "))
        .join(", ")}`);
  });
  if (found.length) throw new Error(`axe on ${where}: ${found.join("; ")}`);
  console.log(`dashboard: axe on ${where}: no serious or critical violation`);
}

// Presses Tab until the focused element matches selector.
async function tabTo(page, selector) {
  for (let i = 0; i < 300; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate((s) => document.activeElement.matches(s), selector)) return;
  }
  throw new Error(`${selector} cannot be reached with Tab`);
}

async function textIs(page, selector, text) {
  await page.waitForFunction(([s, t]) => {
    const el = document.querySelector(s);
    return el && el.textContent.trim() === t;
  }, [selector, text], { timeout });
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const external = [];
  page.on("request", (req) => {
    if (!req.url().startsWith(url)) external.push(req.url());
  });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));

  await page.goto(url + "/dashboard");
  await accessible(page, "the sign-in form");
  await page.fill("#token", tok);
  await page.click("#login button[type=submit]");

  // The seeded queues are listed, with their charts.
  const row = page.locator(`#queues tr[data-queue="${queue}"]`);
  await row.waitFor({ timeout });
  await page.locator(`#charts svg[aria-label^="Queue ${queue},"]`).waitFor({ timeout });
  await page.locator(`#charts svg[aria-label^="Pool sizes: tests"]`).waitFor({ timeout });
  // The dead job is listed; Retry takes it off the dead list.
  const dead = page.locator(`#dead tr[data-job="${deadJob}"]`);
  await dead.waitFor({ timeout });
  await accessible(page, "the overview");
  await dead.locator("button[data-action=retry]").click();
  await dead.waitFor({ state: "detached", timeout });

  // Pause, then resume, the queue.
  await row.locator("button[data-action=pause]").click();
  await page.locator(`#queues tr.paused[data-queue="${queue}"]`).waitFor({ timeout });
  await page.locator(`#queues tr[data-queue="${queue}"] button[data-action=resume]`).click();
  await page.locator(`#queues tr[data-queue="${queue}"]:not(.paused)`).waitFor({ timeout });

  // Find the dead job by kind, open it, retry it and see it run, then go.
  await page.click("#nav a[data-view=jobs]");
  await page.selectOption("#f-state", "dead");
  await page.fill("#f-kind", sleepKind);
  await page.click("#filter button[type=submit]");
  const found = page.locator(`#jobs tr[data-job="${sleepJob}"]`);
  await found.waitFor({ timeout });
  if ((await page.locator("#jobs tbody tr").count()) !== 1) throw new Error("kind filter: not 1 job");
  await accessible(page, "the job list");
  await found.locator("a").click();
  await textIs(page, "#job-state", "dead");
  if ((await page.locator("#attempts tbody tr").count()) !== 1) throw new Error("attempts: not 1");
  await page.locator("#attempts td.error", { hasText: "handler timed out" }).waitFor({ timeout });
  await page.locator("#timeline li", { hasText: "attempt 1 failed after 1.50 s" }).waitFor({ timeout });
  await accessible(page, "the job page");
  await page.click("#job-view button[data-act=retry]");
  await textIs(page, "#confirm-text", `Retry job ${sleepJob}?`);
  await accessible(page, "the confirmation dialog");
  await page.click("#confirm-ok");
  await textIs(page, "#job-state", "running");
  await page.locator("#timeline li", { hasText: "retry by token" }).waitFor({ timeout });
  await textIs(page, "#job-state", "gone");

  // By keyboard alone: the overview, the bulk queue's available jobs, the
  // kind typed in, the set cancelled with its count confirmed.
  await tabTo(page, "#nav a[data-view=overview]");
  await page.keyboard.press("Enter");
  await page.locator(`#queues tr[data-queue="${bulkQueue}"]`).waitFor({ timeout });
  await tabTo(page, `#queues tr[data-queue="${bulkQueue}"] td[data-count=available] a`);
  await page.keyboard.press("Enter");
  await page.locator(`#jobs tr[data-state=available]`).first().waitFor({ timeout });
  await tabTo(page, "#f-kind");
  await page.keyboard.type(bulkKind);
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => document.querySelectorAll("#jobs tbody tr").length === n &&
    [...document.querySelectorAll("#jobs tbody tr td:nth-child(3)")]
      .every((td) => td.textContent === "test.noop"), bulkCount, { timeout });
  await tabTo(page, "[data-bulk=cancel]");
  await page.keyboard.press("Enter");
  const expected = `Cancel ${bulkCount} jobs (available) matching queue ${bulkQueue}, ` +
                   `state available, kind ${bulkKind}?`;
  await textIs(page, "#confirm-text", expected);
  if (!(await page.evaluate(() => document.activeElement.id === "confirm-ok"))) {
    throw new Error("the dialog does not focus Confirm");
  }
  await page.keyboard.press("Enter");
  await textIs(page, "#bulk-result", `Cancelled ${bulkCount} jobs.`);
  await page.locator("#jobs-empty").waitFor({ state: "visible", timeout });

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
