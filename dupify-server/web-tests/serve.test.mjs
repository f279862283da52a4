// Browser test of dupify-server's web page: starts the server on a free loopback port with
// a fresh data directory and its default model, ingests fixture photos through the v1 API,
// uploads one photo through the page in headless Debian chromium (playwright-core), and asserts
// that the colour swatches, the cut-out and the dupes with per-channel scores and product
// thumbnails appear. The
// screenshot is kept as a test artefact in target/web-tests/serve.png.
//
// Run from the repository root after `scripts/setup.sh` (which installs chromium and this
// folder's node_modules), with the cargo environment of scripts/env.sh:
//   (cd dupify-server/web-tests && npm test)
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CLOTHING = path.join(ROOT, "dupify-core/tests/assets/clothing");
// The server's default model (the pretrained EfficientNet-Lite2 that setup installs, or a
// real CLIP when present): the page as a user first sees it.
const DEFAULT_MODEL = path.join(ROOT, "weights/real/efficientnet-lite2");
const ARTEFACTS = path.join(ROOT, "target/web-tests");

function photo(category) {
  const dir = path.join(CLOTHING, category);
  const file = readdirSync(dir).filter((f) => f.endsWith(".jpg")).sort()[0];
  return path.join(dir, file);
}

/**
 * Starts the server binary named by `DUPIFY_SERVER_BIN` (scripts/test.sh passes the one its
 * Rust tests built, so nothing is compiled again), else `cargo run -p dupify-server`, and
 * resolves with its URL, live key and process.
 */
function startServer(dataDir) {
  const args = ["--port", "0", "--data-dir", dataDir, "--device", "cpu"];
  const bin = process.env.DUPIFY_SERVER_BIN;
  const child = bin
    ? spawn(bin, args, { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] })
    : spawn("cargo", ["run", "-q", "-p", "dupify-server", "--", ...args],
            { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 570_000);
    child.on("exit", (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
    child.stdout.on("data", (chunk) => {
      out += chunk;
      const url = out.match(/^listening: (http:\/\/127\.0\.0\.1:\d+)$/m);
      const key = out.match(/^live key: (fe_live_[A-Za-z0-9]{32})$/m);
      if (url && key && /^web page: /m.test(out)) {
        clearTimeout(timer);
        resolve({ url: url[1], key: key[1], child });
      }
    });
  });
}

async function ingest(url, key, id, file, price) {
  const res = await fetch(`${url}/v1/catalog/products`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-API-Key": key },
    body: JSON.stringify({
      external_id: id, title: `Fixture ${id}`, brand: "Fixture Co", price, currency: "EUR",
      image_base64: readFileSync(file).toString("base64"),
    }),
  });
  const body = await res.json();
  assert.equal(res.status, 201, JSON.stringify(body));
  return body;
}

test("the web page shows swatches, cut-out, attributes and dupes for an uploaded photo", { timeout: 900_000 }, async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: run scripts/setup.sh (installs Debian chromium)`);
  assert.ok(existsSync(path.join(DEFAULT_MODEL, "model.safetensors")),
    `${DEFAULT_MODEL} missing: run scripts/setup.sh`);
  const dataDir = mkdtempSync(path.join(tmpdir(), "dupify-serve-"));
  const profile = mkdtempSync(path.join(tmpdir(), "dupify-chromium-"));
  const { url, key, child } = await startServer(dataDir);
  let browser;
  try {
    const ids = [];
    for (const [i, cat] of ["dress", "shoes", "hat", "pants"].entries()) {
      ids.push((await ingest(url, key, `fx-${cat}`, photo(cat), 20 + 10 * i)).id);
    }

    // A fresh profile directory per run (playwright passes it as --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      viewport: { width: 1200, height: 900 },
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    });
    const page = browser.pages()[0] ?? await browser.newPage();
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    await page.goto(`${url}/#key=${key}`);
    // The key moved from the fragment into the field, and out of the address bar.
    assert.equal(await page.inputValue("#key"), key);
    assert.ok(!page.url().includes(key));

    await page.setInputFiles("#file", photo("dress"));
    await page.waitForSelector("#dupes .dupe", { timeout: 120_000 });
    assert.equal(await page.textContent("#error"), "");

    const swatches = await page.$$eval("#swatches .swatch", (els) =>
      els.map((e) => ({ hex: e.dataset.hex, text: e.textContent })));
    assert.ok(swatches.length >= 1, "no swatches");
    for (const s of swatches) {
      assert.match(s.hex, /^#[0-9a-f]{6}$/);
      assert.match(s.text, /\d+\.\d% · /, `share missing in "${s.text}"`);
    }

    const cut = await page.$eval("#cutout img", (img) =>
      ({ w: img.naturalWidth, h: img.naturalHeight, complete: img.complete }));
    assert.ok(cut.complete && cut.w > 0 && cut.h > 0, `cut-out not rendered: ${JSON.stringify(cut)}`);

    const attrRows = await page.$$eval("#attributes tr", (rows) => rows.length);
    assert.ok(attrRows >= 2, "no attribute rows");

    const dupes = await page.$$eval("#dupes .dupe", (els) => els.map((e) => ({
      id: e.dataset.id,
      channels: [...e.querySelectorAll(".channel")].map((c) => c.dataset.channel),
    })));
    assert.equal(dupes.length, ids.length);
    // The uploaded photo is in the catalog (fx-dress): it is the top dupe, with every channel.
    assert.equal(dupes[0].id, ids[0]);
    assert.deepEqual(dupes[0].channels, ["clip", "shape", "color"]);
    // Every dupe shows its product's picture: the thumbnail the server made from the upload.
    await page.waitForFunction(
      (n) => [...document.querySelectorAll("#dupes .dupe img.thumb")]
        .filter((i) => i.complete && i.naturalWidth > 0).length === n,
      ids.length, { timeout: 60_000 });
    const thumbs = await page.$$eval("#dupes .dupe img.thumb", (els) =>
      els.map((i) => ({ w: i.naturalWidth, h: i.naturalHeight })));
    for (const t of thumbs) assert.ok(Math.max(t.w, t.h) === 256, `thumbnail ${JSON.stringify(t)}`);
    assert.deepEqual(pageErrors, []);

    mkdirSync(ARTEFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTEFACTS, "serve.png"), fullPage: true });
  } finally {
    if (browser) await browser.close();
    child.removeAllListeners("exit");
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGINT");
    await exited;
    rmSync(profile, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  }
});
