// The TLS example's page in headless Debian Chromium: the page over
// HTTPS, and its WebSocket over wss:// — over HTTP/2 (RFC 8441's extended
// CONNECT), since the page came over HTTP/2 and the server allows it.
// Run by run.sh, which starts `examples/tls --self-signed` and sets
// TLS_URL. Exits 1 if any check failed.

import { chromium } from "playwright-core";
import { checks } from "./checks.mjs";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.env.TLS_URL;
if (!url) throw new Error("set TLS_URL (run.sh does)");

const { check, failures, passed } = checks();

const profile = mkdtempSync(join(tmpdir(), "wsroute-tls-chromium-"));
process.on("exit", () => rmSync(profile, { recursive: true, force: true }));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  // The certificate is self-signed, made at the server's start.
  ignoreHTTPSErrors: true,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

try {
  const page = await context.newPage();
  await page.goto(url);
  const protocol = await page.evaluate(
    () => performance.getEntriesByType("navigation")[0].nextHopProtocol,
  );
  check("the page came over HTTP/2 (ALPN h2)", protocol === "h2", `nextHopProtocol ${protocol}`);
  const log = page.locator("#log");
  try {
    await page.waitForFunction(
      () => document.getElementById("log").textContent.includes("closed"),
      null,
      { timeout: 5000 },
    );
  } catch {
    // Reported by the checks below.
  }
  const lines = (await log.textContent()).trim().split("\n");
  console.log(`  page log: ${JSON.stringify(lines)}`);
  check("the wss:// WebSocket opened", lines[0] === "open", lines[0]);
  check(
    "the WebSocket came over HTTP/2 (extended CONNECT)",
    lines.includes("got: over HTTP/2.0"),
    lines.find((l) => l.startsWith("got: over")),
  );
  check("the message came back", lines.includes("got: hello over TLS"));
  // The server answers the page's close with its code (RFC 6455 §5.5.1).
  check("closed cleanly with the page's code", lines.at(-1) === "closed 1000 clean", lines.at(-1));
} finally {
  await context.close();
}

console.log(`tls: ${passed()} checks passed, ${failures.length} failed`);
if (failures.length) {
  for (const f of failures) console.log(`  failed: ${f}`);
  process.exit(1);
}
