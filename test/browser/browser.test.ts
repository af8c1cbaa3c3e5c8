/**
 * The library in a real browser: headless Chromium (Debian's `chromium`, driven by
 * playwright-core) loads a page served from 127.0.0.1 whose script — this library and nats.js v3
 * bundled by esbuild for the browser (page.ts) — connects over WebSocket to a nats-server the
 * harness started with a `websocket { no_tls: true }` listener, consumes a stream, acks, drains
 * and reports `lost 0`. The Node side then checks on the server that every message was delivered
 * and acked.
 *
 * The bundle is made from src/ (esbuild compiles the TypeScript itself), not from dist/: the test
 * needs no `npm run build` first, and checks the same source every other test checks. esbuild
 * with platform "browser" also fails the bundle on any `node:` import.
 *
 * Without Chromium the test is skipped, with the reason, unless CI is set: in CI it fails.
 */
import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consumerInfo,
  createConsumer,
  createStream,
  NatsServer,
  publishN,
} from "../harness/index.js";
import type { PageResult } from "./result.js";

const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const IN_CI = Boolean(process.env.CI) && process.env.CI !== "false" && process.env.CI !== "0";
const missing = existsSync(CHROMIUM)
  ? undefined
  : `no Chromium at ${CHROMIUM} (install Debian's: apt-get install chromium; or set CHROMIUM_BIN)`;

/** The flags that work on this kind of machine (a closed network, root, no GPU). */
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

const COUNT = 1000;

if (missing && IN_CI) {
  describe("the library in headless Chromium", () => {
    it("needs Chromium: CI must run the browser test, not skip it", () => {
      throw new Error(`CI is set and there is ${missing}. .ci/run installs it.`);
    });
  });
} else if (missing) {
  console.warn(`test/browser: skipped: ${missing}`);
}

describe.skipIf(missing !== undefined)(
  `the library in headless Chromium over WebSocket${missing ? ` (skipped: ${missing})` : ""}`,
  () => {
    let server: NatsServer;
    let http: Server;
    let browser: Browser;
    let pageUrl: string;

    beforeAll(async () => {
      server = await NatsServer.start({ websocket: true });
      const bundle = await build({
        entryPoints: [fileURLToPath(new URL("./page.ts", import.meta.url))],
        bundle: true,
        format: "esm",
        platform: "browser",
        target: "es2022",
        write: false,
        logLevel: "silent",
      });
      const script = bundle.outputFiles[0]!.text;
      const html =
        '<!doctype html><html><head><meta charset="utf-8"><title>jetstream-iter</title></head>' +
        '<body><script type="module" src="/page.js"></script></body></html>';
      http = createServer((req, res) => {
        const path = (req.url ?? "/").split("?")[0];
        if (path === "/") {
          res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
        } else if (path === "/page.js") {
          res.writeHead(200, { "content-type": "text/javascript; charset=utf-8" }).end(script);
        } else if (path === "/favicon.ico") {
          res.writeHead(204).end();
        } else {
          res.writeHead(404).end();
        }
      });
      await new Promise<void>((resolve, reject) => {
        http.once("error", reject);
        http.listen(0, "127.0.0.1", () => resolve());
      });
      pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`;
      // Playwright gives each launch a fresh, temporary --user-data-dir of its own.
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        timeout: 30_000,
      });
    });

    afterAll(async () => {
      await browser?.close();
      if (http) await new Promise<void>((resolve) => http.close(() => resolve()));
      await server?.dispose();
    });

    it(`a page consumes ${COUNT} messages over WebSocket, acks, drains and reports lost 0; the server has them all acked`, async () => {
      const stream = "BROWSER";
      const consumer = "page";
      await createStream(server.url, stream);
      await createConsumer(server.url, stream, consumer);
      await publishN(server.url, `${stream}.x`, COUNT);

      const page = await browser.newPage();
      const pageErrors: string[] = [];
      const consoleLines: string[] = [];
      page.on("pageerror", (err) => pageErrors.push(`${err.name}: ${err.message}`));
      page.on("console", (msg) => consoleLines.push(`${msg.type()}: ${msg.text()}`));
      try {
        const q = new URLSearchParams({
          ws: server.wsUrl!,
          stream,
          consumer,
          count: String(COUNT),
        });
        await page.goto(`${pageUrl}?${q}`);
        // (Both functions run in the page: Playwright sends their source.)
        await page.waitForFunction(
          () => (globalThis as { __result?: PageResult }).__result !== undefined,
          undefined,
          { timeout: 30_000 },
        );
        const result = await page.evaluate(
          () => (globalThis as { __result?: PageResult }).__result as PageResult,
        );
        const context = `page result ${JSON.stringify(result, null, 1)}\nconsole:\n${consoleLines.join("\n")}`;

        expect(result.failure, context).toBeUndefined();
        expect(pageErrors, context).toEqual([]);
        expect(result.errors, context).toEqual([]);
        expect(consoleLines, context).toContain(`log: lost 0`);
        expect(result.lost, context).toBe(0);
        expect(result.received, context).toBe(COUNT);
        expect(result.duplicates, context).toBe(0);
        expect(result.drainVerdict, context).toBe("undefined");
        expect(result.counters, context).toMatchObject({
          received: COUNT,
          processed: COUNT,
          naked: 0,
          dropped: 0,
        });
        // Acks leave in batches, and before the next task (the timer queued before the first).
        expect(result.firstAckBeforeTimer, context).toBe(true);
        expect(result.ackFrames, context).toBeGreaterThan(0);
        expect(result.ackFrames, context).toBeLessThan(COUNT / 4);
        // The connection closed by the page under an open iterator: it ends, without an error.
        expect(result.closedWithConnection, context).toBe("undefined");
      } finally {
        await page.close();
      }

      const ci = await consumerInfo(server.url, stream, consumer);
      expect(ci.num_pending).toBe(0);
      expect(ci.num_ack_pending).toBe(0);
      expect(ci.num_redelivered).toBe(0);
      expect(ci.delivered.stream_seq).toBe(COUNT);
      expect(ci.ack_floor.stream_seq).toBe(COUNT);
    });
  },
);
