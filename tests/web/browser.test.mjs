// The web page (tools/web) in headless Chromium, through the local grpc-web proxy, against the
// real services (run by with_stack.sh): list, create from a prompt, the run's progress live
// from WatchRun, the fragment's preview, a follow-up, the versions (a diff, a restore, a
// download), errors.
// The page is served at http://localhost:3000 (an origin Envoy's CORS policy lists) by the test
// itself, so every call it makes is a real cross-origin grpc-web request with its CORS preflight.
// Writes a screenshot to $QAI_WEB_SCREENSHOT (default: build/web/screenshot.png), and one of the
// versions beside it (screenshot-versions.png), and prints their paths.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync, mkdirSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { join, extname, dirname } from "node:path";

const require = createRequire(import.meta.url);
const { chromium } = require(`${process.env.QAI_WEB_TOOLS}/node_modules/playwright-core`);
const proxy = process.env.QAI_WEB_PROXY;
const site = process.env.QAI_WEB_SITE;
const screenshot = process.env.QAI_WEB_SCREENSHOT ?? join(site, "..", "screenshot.png");
const RUN_TIMEOUT = 90_000;

const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };
let browser;

// A page whose document comes from ORIGIN (served from the built site by the test), pointed at
// the proxy with TOKEN; console errors and failed requests are collected.
async function openPage(origin, token) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // The page's document comes from the test, not from a loopback socket, so Chromium counts it
  // as public and asks before it calls the proxy on 127.0.0.1 (Local Network Access): the
  // user's "allow", as when the page and Envoy are served from one network.
  await context.grantPermissions(["local-network-access"]);
  await context.route(`${origin}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    const file = join(site, path === "/" ? "index.html" : path);
    if (!existsSync(file)) return route.fulfill({ status: 404, body: "" });
    return route.fulfill({ status: 200, contentType: TYPES[extname(file)] ?? "application/octet-stream", body: readFileSync(file) });
  });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  const query = new URLSearchParams({ api: proxy, token });
  await page.goto(`${origin}/?${query}`);
  return { page, problems, close: () => context.close() };
}

// Creates a project from the page's form with PROMPT and NAME.
async function createProject(page, prompt, name) {
  await page.fill("#prompt", prompt);
  await page.fill("#display-name", name);
  await page.click("#create button[type=submit]");
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.QAI_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  await browser?.close();
});

test("a project from a prompt: live progress, then its preview; a follow-up refines it", { timeout: 4 * RUN_TIMEOUT }, async () => {
  const { page, problems, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    // A new user: connected, no projects yet, no error.
    await page.waitForFunction(() => document.getElementById("projects") !== null);
    await page.waitForTimeout(300);
    assert.equal(await page.locator("#projects li").count(), 0);
    assert.equal(await page.locator("#error").isHidden(), true, await page.locator("#error").textContent());

    // The builtin model's [[sleep 5]] makes the run's check take 5 s, so its progress is seen
    // while it runs, not only after.
    await createProject(page, "Build a landing page for a bakery with a menu and opening hours [[sleep 5]]", "Bakery");
    await page.locator("#projects li", { hasText: "Bakery" }).waitFor();
    await page.locator("#progress li", { hasText: "iteration 1" }).first().waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#progress li", { hasText: "→ " }).first().waitFor({ timeout: RUN_TIMEOUT });
    // Live: tool calls are on the page while the run is still running.
    assert.equal(await page.locator("#run-state").textContent(), "running");
    assert.equal(await page.locator("#progress li.end").count(), 0);

    await page.locator("#progress li.end", { hasText: "succeeded" }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#run-state", { hasText: "succeeded" }).waitFor();
    const progress = await page.locator("#progress li").allTextContents();
    for (const expected of [/^queued$/, /^started \(attempt 1\)$/, /^iteration 1$/, /^→ /, /^← .* exit 0/, /^files: /, /^succeeded$/]) {
      assert.ok(progress.some((line) => expected.test(line)), `progress has ${expected}: ${progress.join(" | ")}`);
    }

    // The result: the agent's message in the conversation and the fragment's preview.
    await page.locator("#conversation li.assistant").waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#preview-pane").waitFor({ state: "visible" });
    const url = await page.locator("#preview").getAttribute("src");
    assert.match(url, /^http:\/\/localhost:\d+\//);
    assert.equal(await page.locator("#preview-link").textContent(), url);
    const preview = page.frameLocator("#preview");
    await preview.locator("h1").waitFor({ timeout: 10_000 });
    assert.match(await preview.locator("body").innerText(), /bakery/i);
    assert.ok((await page.locator("#files li").count()) >= 1, "the fragment lists its files");
    assert.notEqual(await page.locator("#fragment-title").textContent(), "");

    assert.equal(await page.locator("#error").isHidden(), true, await page.locator("#error").textContent());
    assert.match(await page.locator("#projects li.selected small").textContent(), /· succeeded$/);
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);

    // A follow-up prompt starts a second run on the same project and a second preview.
    await page.fill("#follow-up-prompt", "Add a section with customer reviews");
    await page.click("#follow-up button[type=submit]");
    await page.locator("#progress li.end", { hasText: "succeeded" }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#conversation li.assistant").nth(1).waitFor({ timeout: RUN_TIMEOUT });
    assert.equal(await page.locator("#conversation li").count(), 4);
    const second = await page.locator("#preview").getAttribute("src");
    assert.notEqual(second, url, "the follow-up's fragment is a new preview");
    await preview.locator("body", { hasText: /review/i }).waitFor({ timeout: 10_000 });

    // A bad prompt: the service's field error, shown by the page.
    await page.fill("#prompt", "   ");
    await page.click("#create button[type=submit]");
    await page.locator("#error").waitFor({ state: "visible" });
    const error = await page.locator("#error").textContent();
    assert.match(error, /InvalidArgument|INVALID_ARGUMENT/i);
    assert.match(error, /initial_prompt/);

    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("a reload lists the projects from the server and shows the latest preview", async () => {
  const { page, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    const item = page.locator("#projects li", { hasText: "Bakery" });
    await item.waitFor();
    // The list shows each project's latest run (Project.latest_run, kept by the orchestrator).
    assert.match(await item.locator("small").textContent(), /· succeeded$/);
    await item.click();
    await page.locator("#conversation li").nth(3).waitFor();
    await page.locator("#preview-pane").waitFor({ state: "visible" });
    await page.frameLocator("#preview").locator("body", { hasText: /review/i }).waitFor({ timeout: 10_000 });
  } finally {
    await close();
  }
});

// Polls `read` until it returns `want` (or the timeout passes), and returns what it read last.
async function readUntil(read, want, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  let value = await read();
  while (value !== want && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    value = await read();
  }
  return value;
}

test("the versions beside the conversation: a diff, and a restore that brings the first page back", { timeout: 4 * RUN_TIMEOUT }, async () => {
  const { page, problems, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    const preview = page.frameLocator("#preview");
    const pageText = () => preview.locator("body").innerText();
    const versions = page.locator("#versions li");
    const version = (n) => page.locator(`#versions li[data-number="${n}"]`);

    // Version 1: the builtin model's page for the prompt.
    await createProject(page, "Build a landing page for a toy shop", "Toy Shop");
    await version(1).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#conversation li.assistant").waitFor({ timeout: RUN_TIMEOUT });
    await preview.locator("h1", { hasText: /toy shop/i }).waitFor({ timeout: 10_000 });
    const v1Text = await pageText();
    const v1Url = await page.locator("#preview").getAttribute("src");
    assert.equal(await versions.count(), 1);
    assert.doesNotMatch(v1Text, /review/i);

    // Version 2: a follow-up adds a reviews section to the page.
    await page.fill("#follow-up-prompt", "Add a section with customer reviews");
    await page.click("#follow-up button[type=submit]");
    await version(2).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#conversation li.assistant").nth(1).waitFor({ timeout: RUN_TIMEOUT });
    await preview.locator("body", { hasText: /review/i }).waitFor({ timeout: 10_000 });
    const v2Text = await pageText();
    const v2Url = await page.locator("#preview").getAttribute("src");
    assert.notEqual(v2Url, v1Url);
    assert.deepEqual(await versions.evaluateAll((items) => items.map((li) => li.dataset.number)), ["2", "1"], "newest first");
    assert.match(await version(2).locator("small").textContent(), /web-user/, "the author");
    assert.equal(await version(2).locator("a", { hasText: "preview" }).getAttribute("href"), v2Url);

    // Its diff against version 1: index.html modified, the reviews among the added lines.
    await version(2).locator("button", { hasText: "Diff" }).click();
    await page.locator("#diff-pane").waitFor({ state: "visible" });
    assert.equal(await page.locator("#diff-title").textContent(), "Version 2 against 1");
    const index = page.locator('#diff-files li[data-path="index.html"]');
    assert.match(await index.locator("small").textContent(), /^modified · \d+ → \d+ bytes$/);
    const added = await index.locator("pre.diff span.add").allTextContents();
    assert.ok(added.some((line) => /^\+.*review/i.test(line)), `an added line names the reviews: ${added.join(" | ")}`);
    assert.ok((await index.locator("pre.diff span.hunk").count()) >= 1, "the hunk headers");
    // The page's markup in the diff is text on this page, not elements of it.
    assert.ok(added.some((line) => line.includes('<section id="testimonials"')), added.join(" | "));
    assert.equal(await page.locator("#diff-pane section, #diff-pane blockquote, #diff-pane a").count(), 0);
    // Version 1 has nothing before it: its files, all added.
    await version(1).locator("button", { hasText: "Diff" }).click();
    await page.locator("#diff-title", { hasText: "Version 1: its files" }).waitFor();
    assert.match(await index.locator("small").textContent(), /^added · \d+ bytes$/);
    assert.equal(await index.locator("pre").count(), 0);

    // Restore version 1: a run of its own, followed on the page, making version 3 from it.
    await version(1).locator("button", { hasText: "Restore" }).click();
    await version(3).waitFor({ timeout: RUN_TIMEOUT });
    assert.match(await version(3).locator("small").textContent(), / · restored from 1$/);
    assert.deepEqual(await versions.evaluateAll((items) => items.map((li) => li.dataset.number)), ["3", "2", "1"]);
    await page.locator("#run-state", { hasText: "succeeded" }).waitFor();
    assert.ok((await page.locator("#progress li.end", { hasText: "succeeded" }).count()) === 1);
    await page.locator("#conversation li.assistant", { hasText: "Restored version 1." }).waitFor({ timeout: RUN_TIMEOUT });

    // The preview is version 3's, and it is version 1's page again, not version 2's.
    const v3Url = await version(3).locator("a", { hasText: "preview" }).getAttribute("href");
    assert.ok(![v1Url, v2Url].includes(v3Url), "a preview of its own");
    assert.equal(await readUntil(() => page.locator("#preview").getAttribute("src"), v3Url), v3Url);
    assert.equal(await readUntil(pageText, v1Text), v1Text, "the preview shows version 1's page");
    assert.notEqual(v1Text, v2Text);

    // Version 3 downloaded: the browser saves a .zip named after the project and the version,
    // and Debian's unzip finds version 1's page in it, without version 2's reviews.
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      version(3).locator("button", { hasText: "Download" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "toy-shop-v3.zip");
    const saved = join(dirname(screenshot), "toy-shop-v3.zip");
    await download.saveAs(saved);
    const html = execFileSync("unzip", ["-p", saved, "toy-shop-v3/index.html"]).toString();
    assert.match(html, /<html/i);
    assert.doesNotMatch(html, /review/i, "version 1's page, not version 2's");

    assert.equal(await page.locator("#error").isHidden(), true, await page.locator("#error").textContent());
    const shot = screenshot.replace(/\.png$/, "") + "-versions.png";
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    assert.deepEqual(problems, []);
  } finally {
    await close();
  }
});

test("a prompt past the cap on active runs is refused with the cap's reason", { timeout: 2 * RUN_TIMEOUT }, async () => {
  const { page, problems, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    await createProject(page, "Build a page for a florist [[sleep 3]]", "Florist");
    await page.locator("#progress li", { hasText: "iteration 1" }).first().waitFor({ timeout: RUN_TIMEOUT });
    // with_stack.sh allows one active run per project: a follow-up now is over the cap.
    await page.fill("#follow-up-prompt", "Add a gallery");
    await page.click("#follow-up button[type=submit]");
    await page.locator("#error").waitFor({ state: "visible" });
    const error = await page.locator("#error").textContent();
    assert.match(error, /ResourceExhausted|RESOURCE_EXHAUSTED/i);
    assert.match(error, /QAI_RUN_MAX_ACTIVE_PER_PROJECT/);
    assert.match(error, /project:[0-9a-f-]{36}: /); // the QuotaFailure's subject, from grpc-status-details-bin
    await page.locator("#progress li.end", { hasText: "succeeded" }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#conversation li.assistant").waitFor({ timeout: RUN_TIMEOUT });
    assert.equal(await page.locator("#conversation li").count(), 2, "the refused prompt was not stored");
    assert.deepEqual(problems.filter((p) => !/429|Failed to load resource/.test(p)), []);
  } finally {
    await close();
  }
});

// Every event of the run shown once, in order, none missed: the progress entries' sequences
// (data-first, data-last) run 1, 2, 3, ... without a gap.
async function assertEverySequenceOnce(page) {
  const sequences = await page.locator("#progress li").evaluateAll(
    (items) => items.map((li) => [Number(li.dataset.first), Number(li.dataset.last)]));
  assert.equal(sequences[0][0], 1);
  for (let i = 1; i < sequences.length; i++) {
    assert.equal(sequences[i][0], sequences[i - 1][1] + 1, `entry ${i}: ${JSON.stringify(sequences)}`);
  }
}

test("a watch outlives a dropped connection and a restart of the orchestrator", { timeout: 2 * RUN_TIMEOUT }, async () => {
  const { page, problems, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    // The first WatchRun's connection is reset, as a proxy or a network dropping it would.
    let resets = 0;
    const watchUrl = "**/qai.orchestrator.v1.AgentOrchestrator/WatchRun";
    await page.route(watchUrl, async (route) => {
      if (route.request().method() !== "POST") return route.continue();
      resets++;
      await route.abort("connectionreset");
      await page.unroute(watchUrl);
    });
    await createProject(page, "Build a page for a tea house [[sleep 5]]", "Tea House");
    await page.locator("#progress li", { hasText: "→ " }).first().waitFor({ timeout: RUN_TIMEOUT });
    assert.equal(resets, 1);

    // While the check runs: the orchestrator stops (SIGTERM hands its run back to the queue and
    // ends its watches with UNAVAILABLE) and starts again; the page reconnects after its last
    // event and follows the run to its end on the new process.
    assert.equal(await page.locator("#run-state").textContent(), "running");
    execFileSync(process.env.QAI_WEB_ORCHESTRATOR, ["restart", "KILL"], { stdio: "inherit" });
    await page.locator("#progress li.end", { hasText: "succeeded" }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#run-state", { hasText: "succeeded" }).waitFor();
    await page.locator("#conversation li.assistant").waitFor({ timeout: RUN_TIMEOUT });
    await page.frameLocator("#preview").locator("body", { hasText: /tea house/i }).waitFor({ timeout: 10_000 });

    const progress = await page.locator("#progress li").allTextContents();
    assert.equal(progress.filter((line) => /^started \(attempt \d+\)$/.test(line)).length, 2,
      `started once per process: ${progress.join(" | ")}`);
    await assertEverySequenceOnce(page);
    assert.equal(await page.locator("#error").isHidden(), true, await page.locator("#error").textContent());
    // What the browser logs for the reset and the refused reconnects, and nothing else.
    assert.deepEqual(problems.filter((p) => !/Failed to load resource|ERR_CONNECTION_RESET/.test(p)), []);
  } finally {
    await close();
  }
});

test("a watch outlives its orchestrator being killed mid-run", { timeout: 2 * RUN_TIMEOUT }, async () => {
  const { page, problems, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_TOKEN);
  try {
    await createProject(page, "Build a page for a cheese shop [[sleep 5]]", "Cheese Shop");
    await page.locator("#progress li", { hasText: "→ " }).first().waitFor({ timeout: RUN_TIMEOUT });

    // SIGKILL: the run's worker dies with it and its watch's stream breaks (the proxy says
    // UNAVAILABLE). The page reconnects to the new process, which takes the run over once its
    // lease lapses (QAI_RUN_LEASE, 5 s here) and finishes it.
    execFileSync(process.env.QAI_WEB_ORCHESTRATOR, ["restart", "KILL"], { stdio: "inherit" });
    await page.locator("#progress li.end", { hasText: "succeeded" }).waitFor({ timeout: RUN_TIMEOUT });
    await page.locator("#run-state", { hasText: "succeeded" }).waitFor();
    await page.frameLocator("#preview").locator("body", { hasText: /cheese shop/i }).waitFor({ timeout: 10_000 });

    const progress = await page.locator("#progress li").allTextContents();
    assert.ok(progress.some((line) => /^retrying \(attempt 1\): its worker stopped answering$/.test(line)), `the lapsed lease is retried: ${progress.join(" | ")}`);
    assert.ok(progress.includes("started (attempt 2)"), progress.join(" | "));
    await assertEverySequenceOnce(page);
    assert.equal(await page.locator("#error").isHidden(), true, await page.locator("#error").textContent());
    assert.deepEqual(problems.filter((p) => !/Failed to load resource/.test(p)), []);
  } finally {
    await close();
  }
});

test("another user sees none of it", async () => {
  const { page, close } = await openPage("http://localhost:3000", process.env.QAI_WEB_OTHER_TOKEN);
  try {
    await page.waitForTimeout(500);
    assert.equal(await page.locator("#projects li").count(), 0);
    assert.equal(await page.locator("#error").isHidden(), true);
  } finally {
    await close();
  }
});

test("a page from an origin Envoy does not list is refused by CORS", async () => {
  const { page, problems, close } = await openPage("http://localhost:4000", process.env.QAI_WEB_TOKEN);
  try {
    await page.locator("#error").waitFor({ state: "visible" });
    assert.equal(await page.locator("#projects li").count(), 0);
    assert.ok(problems.some((p) => /CORS|Access-Control-Allow-Origin/i.test(p)), problems.join("\n"));
  } finally {
    await close();
  }
});
