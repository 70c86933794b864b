// The admin page in headless Chromium: sign in, see a dead job, retry it, see it delivered,
// look up a user, see the write in the audit trail. No console error (a Content-Security-
// Policy violation is one), and no cookie ever holds the token.
// Usage: node admin.mjs  (BRIDGE_URL, ADMIN_TOKEN, USER_NAME, CHROMIUM from .ci/browser)
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const base = process.env.BRIDGE_URL;
const token = process.env.ADMIN_TOKEN;
const userName = process.env.USER_NAME;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const failures = [];

// Polls from Node (not inside the page: the page's CSP forbids evaluating strings).
async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) { return; }
    if (Date.now() > deadline) { throw new Error("timed out waiting until " + what); }
    await new Promise((r) => setTimeout(r, 100));
  }
}
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(20000);
  // The wrong token's refused calls are the console errors expected; their messages
  // may come after the page shows the refusal, so 401s are let through until the right
  // token has signed in.
  let signedIn = false;
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (!signedIn && m.text().includes("401")) return;
    failures.push("console: " + m.text());
  });
  page.on("pageerror", (e) => failures.push("page: " + e));
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) { failures.push("an outside request: " + r.url()); }
  });

  const res = await page.goto(base + "/admin");
  assert.equal(res.status(), 200);
  assert.match(res.headers()["content-security-policy"], /default-src 'none'/);

  console.log("sign in with a wrong token: refused");
  await page.fill("#token", "not-the-token");
  await page.click("#sign-in-form button[type=submit]");
  await until("the refusal is shown", async () => (await page.textContent("#sign-in-error")).length > 0);
  assert.equal(await page.isHidden("#app"), true);

  console.log("sign in");
  await page.fill("#token", token);
  await page.click("#sign-in-form button[type=submit]");
  await page.waitForSelector("#app:not([hidden])");
  signedIn = true;

  console.log("see the dead job");
  const dead = page.locator("#dead-jobs tbody tr");
  await dead.first().waitFor();
  assert.equal(await dead.count(), 1);
  assert.match(await dead.first().textContent(), /hook/);
  const hook = page.locator('#connectors tbody tr[data-connector="hook"]');
  assert.equal((await hook.locator("td").nth(3).textContent()).trim(), "1", "the connector shows one dead job");

  console.log("retry it and see it delivered");
  await dead.first().locator("button.retry").click();
  await until("no dead job is left", async () => (await dead.count()) === 0);
  await until("the connector shows a success and no dead job", async () => {
    const cells = await hook.locator("td").allTextContents();
    return cells[3] === "0" && cells[5] !== "never";
  });

  console.log("look up the user");
  await page.fill("#lookup-key", userName);
  await page.click("#lookup-form button[type=submit]");
  await page.waitForSelector("#lookup-result:not([hidden])");
  assert.match(await page.textContent("#lookup-title"), new RegExp(userName.replace(".", "\\.")));
  const state = page.locator('#standing tbody tr[data-connector="hook"] td').nth(2);
  assert.equal((await state.textContent()).trim(), "synced");

  console.log("the audit trail shows the create and the retry");
  const audit = await page.textContent("#audit tbody");
  assert.match(audit, /POST \/scim\/v2\/Users/);
  assert.match(audit, /POST \/admin\/v1\/jobs\/\{id\}\/retry/);

  assert.deepEqual(await context.cookies(), [], "no cookie is ever set");
  const stored = await page.evaluate(() => Object.keys(localStorage));
  assert.deepEqual(stored, [], "the token is not kept beyond the tab");
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("browser: the admin page passed");
