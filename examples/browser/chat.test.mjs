// The chat example's page, as people use it, in headless Debian Chromium.
// Run by run.sh, which starts the servers and sets CHAT_URL (one node) and
// CHAT_URL_A, CHAT_URL_B (two nodes sharing a Redis). Every check is
// on what the page shows (the DOM, computed visibility, layout); a failed
// step is recorded and the next one starts from fresh pages, so one run
// lists everything that is wrong. Exits 1 if any check failed.

import { chromium } from "playwright-core";
import { checks } from "./checks.mjs";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const url = process.env.CHAT_URL;
if (!url) throw new Error("set CHAT_URL (run.sh does)");
const urlA = process.env.CHAT_URL_A;
const urlB = process.env.CHAT_URL_B;
if (!urlA || !urlB) throw new Error("set CHAT_URL_A and CHAT_URL_B: two nodes with --redis (run.sh does)");
const shots = process.env.SCREENSHOT_DIR || "screenshots";
mkdirSync(shots, { recursive: true });
const LIMIT = 4096; // the route's max_payload in examples/examples/chat/main.rs
const WAIT = 4000;

const { check, failures, passed } = checks();
const screenshots = [];

// A fresh profile, removed however the run ends.
const profile = mkdtempSync(join(tmpdir(), "wsroute-chat-chromium-"));
process.on("exit", () => rmSync(profile, { recursive: true, force: true }));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  viewport: { width: 800, height: 700 },
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

const notFound = [];
const pageErrors = [];
context.on("response", (r) => {
  if (r.status() === 404) notFound.push(r.url());
});

const pages = new Set();
async function user(name, at = url) {
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (e) => pageErrors.push(`${name}: ${e.message}`));
  page.user = name;
  // The 101's headers, as the browser received them (DevTools protocol).
  page.handshakes = [];
  const cdp = await context.newCDPSession(page);
  await cdp.send("Network.enable");
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => page.handshakes.push(e.response));
  pages.add(page);
  await page.goto(at);
  return page;
}
async function closeUser(page) {
  pages.delete(page);
  await page.close();
}

async function shot(page, file, what) {
  const path = join(shots, file);
  await page.screenshot({ path, fullPage: true });
  screenshots.push(`${path}: ${what}`);
}

// Whether a person sees the element: rendered, not display:none.
const visible = (page, sel) =>
  page.$eval(sel, (el) => el.checkVisibility()).catch(() => false);
const lines = (page) => page.$$eval("#log > div", (ds) => ds.map((d) => d.textContent));
const count = async (page, text) => (await lines(page)).filter((l) => l === text).length;
async function waitLine(page, text, times = 1) {
  try {
    await page.waitForFunction(
      ([t, n]) => [...document.querySelectorAll("#log > div")].filter((d) => d.textContent === t).length >= n,
      [text, times], { timeout: WAIT });
    return true;
  } catch {
    return false;
  }
}
// Lets duplicates, if any, arrive before counting.
const settle = () => new Promise((r) => setTimeout(r, 500));
// The visible notice: an element that is shown and says something.
const notice = (page) =>
  page.evaluate(() => {
    const el = document.querySelector("#status, [role=alert]");
    return el && el.checkVisibility() && el.textContent.trim() ? el.textContent.trim() : "";
  });
async function waitNotice(page, re) {
  const end = Date.now() + WAIT;
  let text = "";
  while (Date.now() < end) {
    text = await notice(page);
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  return text;
}
async function joinAs(page, name, room = "") {
  await page.fill("#join input[name=name]", name);
  await page.fill("#join input[name=room]", room);
  await page.click("#join button");
}
async function joined(page) {
  try {
    await page.waitForFunction(() => document.querySelector("#send").checkVisibility() &&
      !document.querySelector("#join").checkVisibility(), null, { timeout: WAIT });
    return true;
  } catch {
    return false;
  }
}
// The room list as the page shows it: ["kitchen 1", "lobby 2"].
const roomList = (page) =>
  page.$$eval("#rooms li", (lis) => lis.map((li) => [...li.children].map((c) => c.textContent).join(" ")));
async function waitRooms(page, want) {
  const end = Date.now() + WAIT;
  let got = [];
  while (Date.now() < end) {
    got = await roomList(page);
    if (JSON.stringify(got) === JSON.stringify(want)) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  page.lastRooms = got;
  return false;
}
async function say(page, text) {
  await page.fill("#send input[name=text]", text);
  await page.click("#send button");
}

let alice, bob;
async function freshPair() {
  for (const p of [...pages]) await closeUser(p);
  alice = await user("alice");
  await joinAs(alice, "alice");
  await joined(alice);
  bob = await user("bob");
  await joinAs(bob, "bob");
  await joined(bob);
  await waitLine(alice, "* bob joined");
}

async function step(title, body) {
  console.log(`\n${title}`);
  try {
    await body();
  } catch (e) {
    check(`${title}: ran to the end`, false, e.message.split("\n")[0]);
    await freshPair().catch(() => {});
  }
}

await step("1. alice and bob join; one form at a time", async () => {
  alice = await user("alice");
  check("before joining: the join form is visible", await visible(alice, "#join"));
  check("before joining: the send form is not visible", !(await visible(alice, "#send")));
  await joinAs(alice, "alice");
  check("alice: after joining, the send form is visible and the join form is not", await joined(alice),
    `join visible: ${await visible(alice, "#join")}, send visible: ${await visible(alice, "#send")}`);
  check("alice sees her own join line", await waitLine(alice, "* alice joined"));
  bob = await user("bob");
  await joinAs(bob, "bob");
  check("bob: after joining, the send form is visible and the join form is not", await joined(bob));
  check("alice sees bob's join line", await waitLine(alice, "* bob joined"));
  check("bob sees his own join line", await waitLine(bob, "* bob joined"));
  await settle();
  check("alice sees bob join exactly once", (await count(alice, "* bob joined")) === 1);
  await shot(alice, "1-alice-and-bob-joined.png", "alice's page after alice and bob joined: log and send form, no join form");
});

await step("2. alice and bob chat both ways; each line arrives once on each page", async () => {
  await say(alice, "hello from alice");
  await say(bob, "hi alice, bob here");
  for (const [page, text] of [[alice, "alice: hello from alice"], [bob, "alice: hello from alice"],
    [alice, "bob: hi alice, bob here"], [bob, "bob: hi alice, bob here"]]) {
    check(`${page.user} sees "${text}"`, await waitLine(page, text));
  }
  await settle();
  for (const page of [alice, bob]) {
    const all = await lines(page);
    const dups = all.filter((l, i) => all.indexOf(l) !== i);
    check(`${page.user}: no line arrived twice`, dups.length === 0, `repeated: ${JSON.stringify(dups)}`);
  }
  await shot(bob, "2-bob-chatting.png", "bob's page: the two messages, once each");

  // permessage-deflate: negotiated on both sockets, and a line long
  // enough to be compressed (the server sends short ones as they are)
  // still arrives whole.
  for (const page of [alice, bob]) {
    const hs = page.handshakes.at(-1);
    const header = hs && Object.entries(hs.headers).find(([k]) => k.toLowerCase() === "sec-websocket-extensions");
    check(`${page.user}: the 101 answers permessage-deflate`, !!header && header[1].startsWith("permessage-deflate"),
      header ? header[1] : `headers: ${JSON.stringify(hs && hs.headers)}`);
    const ext = await page.evaluate(() => ws.extensions);
    check(`${page.user}: the page's socket runs permessage-deflate`, ext.includes("permessage-deflate"), ext);
  }
  const long = ("compressible " + "the quick brown fox jumps over the lazy dog; ".repeat(30)).trim();
  await say(alice, long);
  check("bob gets a long compressed line whole", await waitLine(bob, `alice: ${long}`));
});

await step("3. carol clicks Join three times and submits twice more: one socket", async () => {
  const carol = await user("carol");
  await carol.fill("#join input[name=name]", "carol");
  await carol.click("#join button", { clickCount: 3 });
  await carol.evaluate(() => {
    const f = document.querySelector("#join");
    f.requestSubmit();
    f.requestSubmit();
  });
  check("carol: joined", await joined(carol));
  check("alice sees carol join", await waitLine(alice, "* carol joined"));
  await settle();
  check("alice sees exactly one \"* carol joined\"", (await count(alice, "* carol joined")) === 1,
    `${await count(alice, "* carol joined")} of them`);
  check("carol sees exactly one \"* carol joined\"", (await count(carol, "* carol joined")) === 1,
    `${await count(carol, "* carol joined")} of them`);
  await say(carol, "carol here");
  check("alice gets carol's line", await waitLine(alice, "carol: carol here"));
  await settle();
  check("alice gets carol's line exactly once", (await count(alice, "carol: carol here")) === 1);
  check("carol gets her line exactly once", (await count(carol, "carol: carol here")) === 1);
  await shot(alice, "3-carol-joined-once.png", "alice's page: carol joined once despite five Join submits, her line once");
  await closeUser(carol);
  check("alice sees carol leave once", await waitLine(alice, "* carol left"));
  await settle();
  check("alice sees exactly one \"* carol left\"", (await count(alice, "* carol left")) === 1);
});

await step("4. bob reloads the page, then joins again", async () => {
  const joinsBefore = await count(alice, "* bob joined");
  await bob.reload();
  check("alice sees \"* bob left\"", await waitLine(alice, "* bob left"));
  check("bob's reloaded page shows the join form", await visible(bob, "#join"));
  check("bob's reloaded page hides the send form", !(await visible(bob, "#send")));
  await joinAs(bob, "bob");
  check("bob joined again", await joined(bob));
  check("alice sees bob join again", await waitLine(alice, "* bob joined", joinsBefore + 1));
  await say(bob, "bob is back");
  check("alice gets bob's line", await waitLine(alice, "bob: bob is back"));
  check("bob gets his line", await waitLine(bob, "bob: bob is back"));
  await say(alice, "welcome back");
  check("bob gets alice's line", await waitLine(bob, "alice: welcome back"));
  await settle();
  check("bob gets alice's line exactly once", (await count(bob, "alice: welcome back")) === 1);
  await shot(alice, "4-bob-back.png", "alice's page: bob left on reload, joined again, chat goes on");
});

await step("5. refused names are explained; then a real name joins", async () => {
  const dave = await user("dave");
  await joinAs(dave, "     ");
  const spaces = await waitNotice(dave, /\S/);
  check("a name of spaces: a visible error says why", spaces !== "", "no visible error element with text");
  console.log(`        it says: ${JSON.stringify(spaces)}`);
  check("a name of spaces: the join form is still there, Join enabled",
    (await visible(dave, "#join")) && (await dave.isEnabled("#join button")));
  await shot(dave, "5a-name-of-spaces.png", "dave's page: a name of only spaces, refused with a visible reason");
  // U+0085 is whitespace to Rust's trim, not to JavaScript's: the page lets
  // it through, the server refuses the upgrade.
  await joinAs(dave, "\u0085");
  const server = await waitNotice(dave, /refused/i);
  check("a name only the server refuses: a visible error says the server refused, and why",
    /refused/i.test(server) && /name/i.test(server), JSON.stringify(server));
  console.log(`        it says: ${JSON.stringify(server)}`);
  check("after the server's refusal the join form is there, Join enabled",
    (await visible(dave, "#join")) && (await dave.isEnabled("#join button")));
  await shot(dave, "5b-server-refused.png", "dave's page: the server refused the upgrade, its reason on screen");
  await joinAs(dave, "dave");
  check("dave then joins with a real name", await joined(dave));
  check("alice sees dave join", await waitLine(alice, "* dave joined"));
  check("the error is gone once joined", (await notice(dave)) === "");
  await closeUser(dave);
});

await step("6. over-limit messages are explained before sending; alice stays connected", async () => {
  const input = "#send input[name=text]";
  await alice.fill(input, "a".repeat(5000));
  const typed = await alice.$eval(input, (el) => el.value.length);
  check(`5000 ASCII characters typed: the field keeps at most ${LIMIT}`, typed <= LIMIT, `it kept ${typed}`);
  const note = await alice.evaluate(() => document.body.innerText);
  check(`the page tells the ${LIMIT}-byte limit`, note.includes(`${LIMIT}`));
  await shot(alice, "6a-at-the-limit.png", "alice's page: 5000 characters typed, cut to the 4096-byte limit, which is said under the field");
  await alice.click("#send button");
  const atLimit = `alice: ${"a".repeat(Math.min(typed, LIMIT))}`;
  check("a message of exactly the limit is sent and arrives", await waitLine(bob, atLimit));
  check("alice is still connected", await visible(alice, "#send"));

  // A value that bypasses maxlength (set by a script, an extension).
  await alice.$eval(input, (el) => {
    el.value = "b".repeat(5000);
    el.dispatchEvent(new Event("input"));
  });
  await alice.click("#send button");
  const ascii = await waitNotice(alice, /5000/);
  check("5000 bytes set past maxlength: the page refuses with the size and the limit",
    ascii.includes("5000") && ascii.includes(`${LIMIT}`), JSON.stringify(ascii));
  await settle();
  check("alice is still connected", (await visible(alice, "#send")) && !(await visible(alice, "#join")));

  const euros = "€".repeat(1500); // 1500 UTF-16 units, 4500 UTF-8 bytes
  await alice.fill(input, euros);
  check("1500 × € gets past maxlength (1500 UTF-16 units)",
    (await alice.$eval(input, (el) => el.value.length)) === 1500);
  await alice.click("#send button");
  const multi = await waitNotice(alice, /4500/);
  check("1500 × € (4500 bytes): the page refuses with the size and the limit",
    multi.includes("4500") && multi.includes(`${LIMIT}`), JSON.stringify(multi));
  await shot(alice, "6b-multibyte-over-limit.png", "alice's page: 1500 euro signs (4500 bytes) refused before sending, with the reason");
  await settle();
  check("alice is still connected", (await visible(alice, "#send")) && !(await visible(alice, "#join")));
  check("bob never got the over-limit lines",
    (await lines(bob)).every((l) => !l.startsWith("alice: bbbb") && !l.startsWith("alice: €")));
  await alice.fill(input, "still here");
  await alice.click("#send button");
  check("alice's next short line arrives", await waitLine(bob, "alice: still here"));

  // Past the page: the server closes with 1009, the page says so and lets
  // alice join again.
  await alice.evaluate(() => ws.send("c".repeat(5000)));
  const closed = await waitNotice(alice, /1009/);
  check("a close (1009) is shown on screen with its code", closed.includes("1009"), JSON.stringify(closed));
  check("after the close the join form is back, Join enabled, the send form hidden",
    (await visible(alice, "#join")) && (await alice.isEnabled("#join button")) && !(await visible(alice, "#send")));
  check("bob sees alice leave", await waitLine(bob, "* alice left"));
  await shot(alice, "6c-closed-1009.png", "alice's page: the server's 1009 close shown, the join form back");
  const joinsBefore = await count(bob, "* alice joined");
  await joinAs(alice, "alice");
  check("alice joins again", await joined(alice));
  check("bob sees alice join again", await waitLine(bob, "* alice joined", joinsBefore + 1));
  await say(alice, "back after 1009");
  check("chat works after joining again", await waitLine(bob, "alice: back after 1009"));
});

await step("7. a long unbroken line wraps", async () => {
  const long = "W".repeat(600);
  await say(alice, long);
  check("bob gets the long line", await waitLine(bob, `alice: ${long}`));
  check("alice gets the long line", await waitLine(alice, `alice: ${long}`));
  for (const page of [alice, bob]) {
    const [sw, cw] = await page.$eval("#log", (el) => [el.scrollWidth, el.clientWidth]);
    check(`${page.user}: the log does not scroll sideways (scrollWidth ${sw} <= clientWidth ${cw})`, sw <= cw);
  }
  await shot(bob, "7-long-line-wraps.png", "bob's page: a 600-character word wrapped inside the log");
});

await step("8. rooms: lobby by default, rooms isolated, the room list follows joins and leaves", async () => {
  await freshPair();
  check("alice's page says she is in the lobby", (await alice.textContent("#room")) === "lobby");
  check("alice's room list: lobby with 2 members", await waitRooms(alice, ["lobby 2"]),
    JSON.stringify(alice.lastRooms));
  const erin = await user("erin");
  await joinAs(erin, "erin", "kitchen");
  check("erin: joined the kitchen", await joined(erin));
  check("erin's page says she is in the kitchen", (await erin.textContent("#room")) === "kitchen");
  check("erin sees her own join line", await waitLine(erin, "* erin joined"));
  for (const page of [alice, erin]) {
    check(`${page.user}'s room list: kitchen 1, lobby 2`, await waitRooms(page, ["kitchen 1", "lobby 2"]),
      JSON.stringify(page.lastRooms));
  }
  check("erin's own room is marked in her list",
    (await erin.$eval("#rooms li.current", (li) => li.dataset.room).catch(() => null)) === "kitchen");
  const frank = await user("frank");
  await joinAs(frank, "frank", "kitchen");
  check("frank: joined the kitchen", await joined(frank));
  check("erin sees frank join", await waitLine(erin, "* frank joined"));
  check("bob's room list: kitchen 2, lobby 2", await waitRooms(bob, ["kitchen 2", "lobby 2"]),
    JSON.stringify(bob.lastRooms));
  await say(erin, "anyone in the kitchen?");
  await say(alice, "lobby talk");
  check("frank gets erin's kitchen line", await waitLine(frank, "erin: anyone in the kitchen?"));
  check("bob gets alice's lobby line", await waitLine(bob, "alice: lobby talk"));
  await closeUser(erin);
  check("frank sees erin leave", await waitLine(frank, "* erin left"));
  check("alice's room list: kitchen 1 once erin left", await waitRooms(alice, ["kitchen 1", "lobby 2"]),
    JSON.stringify(alice.lastRooms));
  await settle();
  const leaked = [];
  for (const l of await lines(alice)) if (/erin|frank/.test(l)) leaked.push(`alice: ${l}`);
  for (const l of await lines(bob)) if (/erin|frank/.test(l)) leaked.push(`bob: ${l}`);
  for (const l of await lines(frank)) if (/alice|bob/.test(l)) leaked.push(`frank: ${l}`);
  check("nothing of the kitchen reaches the lobby, nor of the lobby the kitchen", leaked.length === 0,
    JSON.stringify(leaked));
  await shot(frank, "8-rooms.png", "frank's page in the kitchen: erin's line and leave, the room list with both rooms");
  await closeUser(frank);
  check("alice's room list: the kitchen is gone once empty", await waitRooms(alice, ["lobby 2"]),
    JSON.stringify(alice.lastRooms));
  const long = await user("long");
  await long.fill("#join input[name=name]", "long");
  await long.fill("#join input[name=room]", "r".repeat(40));
  check("a room name over 32 characters is cut by the field", (await long.$eval("#join input[name=room]",
    (el) => el.value.length)) === 32);
  await long.$eval("#join input[name=room]", (el) => { el.value = "r".repeat(40); });
  await long.click("#join button");
  const refused = await waitNotice(long, /room/i);
  check("a room name over 32 characters set past maxlength: the server's refusal is shown",
    /refused/i.test(refused) && /32/.test(refused), JSON.stringify(refused));
  await closeUser(long);
});

await step("9. two nodes through Redis: a user on each talk both ways and see the same rooms", async () => {
  for (const p of [...pages]) await closeUser(p);
  const gina = await user("gina", urlA);
  await joinAs(gina, "gina", "bridge");
  check("gina joined on node A", await joined(gina));
  const hank = await user("hank", urlB);
  await joinAs(hank, "hank", "bridge");
  check("hank joined on node B", await joined(hank));
  check("gina (node A) sees hank (node B) join", await waitLine(gina, "* hank joined"));
  const ivy = await user("ivy", urlB);
  await joinAs(ivy, "ivy");
  check("ivy joined the lobby on node B", await joined(ivy));
  await say(gina, "hello from node A");
  await say(hank, "hello from node B");
  for (const [page, text] of [[hank, "gina: hello from node A"], [gina, "hank: hello from node B"],
    [gina, "gina: hello from node A"], [hank, "hank: hello from node B"]]) {
    check(`${page.user} sees "${text}"`, await waitLine(page, text));
  }
  await settle();
  for (const page of [gina, hank]) {
    const all = await lines(page);
    const dups = all.filter((l, i) => all.indexOf(l) !== i);
    check(`${page.user}: no line arrived twice across nodes`, dups.length === 0, JSON.stringify(dups));
  }
  check("ivy (lobby, node B) gets nothing of the bridge",
    (await lines(ivy)).every((l) => !/gina|hank/.test(l)), JSON.stringify(await lines(ivy)));
  for (const page of [gina, hank, ivy]) {
    check(`${page.user}'s room list sums both nodes: bridge 2, lobby 1`,
      await waitRooms(page, ["bridge 2", "lobby 1"]), JSON.stringify(page.lastRooms));
  }
  await shot(gina, "9-two-nodes.png", "gina's page on node A: hank on node B joined and talks; both nodes' rooms");
  await closeUser(hank);
  check("gina (node A) sees hank (node B) leave", await waitLine(gina, "* hank left"));
  check("gina's room list: bridge 1 once hank left node B", await waitRooms(gina, ["bridge 1", "lobby 1"]),
    JSON.stringify(gina.lastRooms));
  for (const p of [...pages]) await closeUser(p);
  alice = await user("alice"); // for step 10, which looks at a page
});

await step("10. no request for /favicon.ico gets a 404", async () => {
  const favicons = notFound.filter((u) => new URL(u).pathname === "/favicon.ico");
  check("no 404 for /favicon.ico among the recorded responses", favicons.length === 0, favicons.join(", "));
  // Chromium fetches the icon outside the page's network events, so also
  // fetch what it would: the declared icon, or /favicon.ico if none.
  const icon = await alice.evaluate(() => document.querySelector("link[rel~=icon]")?.href ?? null);
  const href = icon ?? new URL("/favicon.ico", url).href;
  if (/^https?:/.test(href)) {
    const r = await context.request.get(href);
    check(`the page's icon (${href}) is not a 404`, r.status() !== 404, `status ${r.status()}`);
  } else {
    check(`the page declares an inline icon, so none is requested (${href})`, true);
  }
  check("no other 404 responses", notFound.length === favicons.length, notFound.join(", "));
  check("no JavaScript errors on any page", pageErrors.length === 0, pageErrors.join("; "));
});

await context.close();

console.log("\nscreenshots:");
for (const s of screenshots) console.log(`  ${s}`);
if (failures.length) {
  console.log("\nfailed checks:");
  for (const f of failures) console.log(`  - ${f}`);
}
console.log(`\nbrowser: ${passed()} passed, ${failures.length} failed`);
process.exit(failures.length ? 1 : 0);
