/**
 * Runs every program in docs/examples as a user would: compiled by tsc with
 * docs/examples/tsconfig.json into a temp dir, then started with node as a child process whose
 * NATS_URL points at a harness nats-server (never a server on 4222). Each test checks what the
 * program prints, how it exits, and what the server says about the consumer afterwards.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pullMessages } from "../../src/index.js";
import {
  consumerInfo,
  createConsumer,
  createStream,
  NatsServer,
  publishN,
} from "../harness/index.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const EXAMPLES = join(ROOT, "docs", "examples");
const TSC = join(ROOT, "node_modules", "typescript", "bin", "tsc");
const TESTED = ["callback", "next", "shared-workers", "v2", "worker"];

let server: NatsServer;
let outDir: string;
const children = new Set<ChildProcess>();
let counter = 0;

beforeAll(async () => {
  outDir = mkdtempSync(join(tmpdir(), "jsiter-examples-"));
  await promisify(execFile)(
    process.execPath,
    [TSC, "-p", join(EXAMPLES, "tsconfig.json"), "--outDir", outDir],
    { cwd: ROOT },
  );
  // The compiled programs resolve nats.js from the repository's node_modules, as ES modules.
  symlinkSync(join(ROOT, "node_modules"), join(outDir, "node_modules"), "dir");
  writeFileSync(join(outDir, "package.json"), '{ "type": "module" }\n');
  server = await NatsServer.start();
}, 180_000);

afterEach(() => {
  // A program that is still running failed its test; end it by its own pid.
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      process.kill(child.pid, "SIGKILL");
    }
  }
  children.clear();
});

afterAll(async () => {
  await server?.dispose();
  if (outDir) rmSync(outDir, { recursive: true, force: true });
});

/** A fresh stream with a durable explicit-ack pull consumer `c`, and `count` messages in it. */
async function backlog(count: number, config: Record<string, unknown> = {}) {
  const stream = `EX${++counter}`;
  await createStream(server.url, stream);
  await createConsumer(server.url, stream, "c", config);
  if (count > 0) await publishN(server.url, `${stream}.x`, count);
  return { stream, consumer: "c" };
}

interface Program {
  /** Every line printed on stdout so far. */
  lines: string[];
  stderr: string[];
  /** Resolves once `count` stdout lines match `re`; rejects after `ms`. */
  waitFor(re: RegExp, count?: number, ms?: number): Promise<void>;
  signal(sig: NodeJS.Signals): void;
  /** Resolves how the program ended; rejects (and kills it) if it is still running after `ms`. */
  exit(ms?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the compiled example `name` with the server's URL and `env`. */
function start(name: string, env: Record<string, string>): Program {
  const file = join(outDir, "docs", "examples", `${name}.js`);
  const child = spawn(process.execPath, [file], {
    cwd: outDir,
    env: { ...process.env, NATS_URL: server.url, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  const lines: string[] = [];
  const stderr: string[] = [];
  let waiters: (() => void)[] = [];
  const collect = (into: string[]) => {
    let rest = "";
    return (chunk: Buffer) => {
      const parts = (rest + chunk.toString("utf8")).split("\n");
      rest = parts.pop() ?? "";
      into.push(...parts);
      for (const w of waiters) w();
    };
  };
  child.stdout.on("data", collect(lines));
  child.stderr.on("data", collect(stderr));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // "close": the process ended and its output was read to the end
    child.once("close", (code, signal) => resolve({ code, signal })),
  );
  const describe = () =>
    `${name}: stdout:\n${lines.slice(-30).join("\n")}\nstderr:\n${stderr.join("\n")}`;
  return {
    lines,
    stderr,
    waitFor(re, count = 1, ms = 15_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (lines.filter((l) => re.test(l)).length >= count) {
            done();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${count} line(s) matching ${re} within ${ms} ms\n${describe()}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== check);
        };
        waiters.push(check);
        check();
        void exited.then(check);
      });
    },
    signal(sig) {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, sig);
    },
    exit(ms = 30_000) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          if (child.pid !== undefined && child.exitCode === null)
            process.kill(child.pid, "SIGKILL");
          reject(new Error(`still running after ${ms} ms\n${describe()}`));
        }, ms);
      });
      return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    },
  };
}

/** Polls consumer info until `pred` holds (acks are processed by the server asynchronously). */
async function settledInfo(
  stream: string,
  consumer: string,
  pred: (ci: Awaited<ReturnType<typeof consumerInfo>>) => boolean,
  ms = 10_000,
) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ci = await consumerInfo(server.url, stream, consumer);
    if (pred(ci) || Date.now() > deadline) return ci;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("docs/examples", () => {
  it("every example program is run by this file", () => {
    const programs = readdirSync(EXAMPLES)
      .filter((f) => f.endsWith(".ts"))
      .map((f) => f.slice(0, -3))
      .sort();
    expect(programs).toEqual(TESTED);
  });

  it("worker: SIGTERM mid-backlog drains, acks everything it was sent, exits 0", async () => {
    const total = 100;
    const { stream, consumer } = await backlog(total);
    const p = start("worker", { STREAM: stream, CONSUMER: consumer, WORK_MS: "20" });
    await p.waitFor(/^handled \d+$/, 5);
    p.signal("SIGTERM");
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines).toContain("SIGTERM: draining");
    const done = p.lines.find((l) => l.startsWith("done: handled "));
    const handled = Number(/^done: handled (\d+)/.exec(done ?? "")?.[1]);
    expect(handled).toBeGreaterThanOrEqual(5);
    expect(handled).toBeLessThan(total); // it stopped early …
    expect(p.lines.filter((l) => /^handled \d+$/.test(l))).toHaveLength(handled);
    expect(done).toContain('"naked":0,"dropped":0,"pending":0');
    // … and lost nothing: every message the server delivered was handled and acked, once.
    const ci = await settledInfo(stream, consumer, (c) => c.num_ack_pending === 0);
    expect(ci.num_ack_pending).toBe(0);
    expect(ci.num_redelivered).toBe(0);
    expect(ci.delivered.consumer_seq).toBe(handled);
    expect(ci.num_pending).toBe(total - handled);
  });

  it("worker: a second SIGTERM closes at once and NAKs the buffer (nothing waits for ack_wait)", async () => {
    const total = 100;
    // ack_wait 60 s: only NAKs can make num_ack_pending 0 within the test.
    const { stream, consumer } = await backlog(total, { ack_wait: 60_000_000_000 });
    const p = start("worker", { STREAM: stream, CONSUMER: consumer, WORK_MS: "300" });
    await p.waitFor(/^handled \d+$/, 1);
    p.signal("SIGTERM");
    await p.waitFor(/^SIGTERM: draining$/);
    p.signal("SIGTERM");
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines).toContain("SIGTERM again: closing now, NAKing what is buffered");
    const done = p.lines.find((l) => l.startsWith("done: handled ")) ?? "";
    const counters = JSON.parse(done.slice(done.indexOf("{"))) as Record<string, number>;
    expect(counters.naked).toBeGreaterThan(0);
    expect(counters.received).toBe(counters.processed! + counters.naked!);
    // The NAKed messages are redelivered at once (ack_wait is 60 s), to the next reader.
    const nc = await connect({ servers: server.url });
    try {
      const again = pullMessages(nc, stream, consumer, { max_messages: 100 });
      const first: number[] = [];
      for (let i = 0; i < counters.naked!; i++) {
        const m = await again.next({ timeout: 5_000 });
        first.push(m.info.deliveryCount);
        m.ack();
      }
      await again.close();
      expect(first).toEqual(Array(counters.naked).fill(2));
    } finally {
      await nc.close();
    }
  });

  it("shared-workers: 3 workers on one consumer handle 200 messages once each, then exit 0", async () => {
    const total = 200;
    const { stream, consumer } = await backlog(total);
    const p = start("shared-workers", {
      STREAM: stream,
      CONSUMER: consumer,
      WORKERS: "3",
      WORK_MS: "2",
      EXAMPLE_MAX: String(total),
    });
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    const summary = JSON.parse(p.lines.find((l) => l.startsWith("{")) ?? "null") as {
      handled: number;
      perWorker: number[];
      duplicates: number;
    };
    expect(summary.handled).toBe(total);
    expect(summary.duplicates).toBe(0);
    expect(summary.perWorker).toHaveLength(3);
    for (const n of summary.perWorker) expect(n).toBeGreaterThan(0);
    const ci = await settledInfo(stream, consumer, (c) => c.num_ack_pending === 0);
    expect(ci).toMatchObject({ num_pending: 0, num_ack_pending: 0, num_redelivered: 0 });
  });

  it("next: reads the backlog, reports a timeout, then an abort on SIGTERM, then closed; exits 0", async () => {
    const { stream, consumer } = await backlog(3);
    const p = start("next", { STREAM: stream, CONSUMER: consumer, NEXT_TIMEOUT_MS: "300" });
    await p.waitFor(/^waiting for a message/);
    p.signal("SIGTERM");
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines.filter((l) => l.startsWith("message "))).toEqual([
      "message 1: 0",
      "message 2: 1",
      "message 3: 2",
    ]);
    expect(p.lines).toContain("timeout: no message within 300 ms after 3; still open");
    expect(p.lines).toContain("aborted: that next() only; the iterator is still open");
    expect(p.lines).toContain("closed: next() rejects MsgIteratorClosedError");
    const ci = await settledInfo(stream, consumer, (c) => c.num_ack_pending === 0);
    expect(ci).toMatchObject({ num_pending: 0, num_ack_pending: 0 });
  });

  it("next: ABORT_AFTER_MS aborts the wait without a signal", async () => {
    const { stream, consumer } = await backlog(0);
    const p = start("next", {
      STREAM: stream,
      CONSUMER: consumer,
      NEXT_TIMEOUT_MS: "200",
      ABORT_AFTER_MS: "300",
    });
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines).toContain("timeout: no message within 200 ms after 0; still open");
    expect(p.lines).toContain("aborted: that next() only; the iterator is still open");
  });

  it("callback: an async callback handles 100 messages one at a time, drains, exits 0", async () => {
    const total = 100;
    const { stream, consumer } = await backlog(total);
    const p = start("callback", {
      STREAM: stream,
      CONSUMER: consumer,
      EXAMPLE_MAX: String(total),
    });
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines).toContain(`done: handled ${total}, at most 1 callback(s) at once`);
    const ci = await settledInfo(stream, consumer, (c) => c.num_ack_pending === 0);
    expect(ci).toMatchObject({ num_pending: 0, num_ack_pending: 0, num_redelivered: 0 });
  });

  it("v2: the nats v2 package consumes 50 messages, drains, exits 0", async () => {
    const total = 50;
    const { stream, consumer } = await backlog(total);
    const p = start("v2", { STREAM: stream, CONSUMER: consumer, EXAMPLE_MAX: String(total) });
    expect(await p.exit()).toEqual({ code: 0, signal: null });
    expect(p.lines.filter((l) => l.startsWith("message "))).toHaveLength(total);
    expect(p.lines).toContain(`done: handled ${total}`);
    const ci = await settledInfo(stream, consumer, (c) => c.num_ack_pending === 0);
    expect(ci).toMatchObject({ num_pending: 0, num_ack_pending: 0, num_redelivered: 0 });
  });
});
