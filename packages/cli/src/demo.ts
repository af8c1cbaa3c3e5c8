/**
 * `jetstream-iter demo`: publish N messages to a fresh stream, consume them with K workers
 * (`for await` loops that ack), and on Ctrl-C — or once every message is acked — drain every
 * worker and print what happened: published, consumed, acked, redelivered, and lost, which
 * must be 0. `--chaos` restarts the (embedded) server half-way through.
 *
 * lost = messages the server acknowledged to the publisher that no worker acked and that the
 * server no longer holds for the consumer. A complete run waits until every published message
 * was acked; an interrupted one asks the server what it still holds.
 */
import type { Consumer, JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { consume, type MessagesOf } from "jetstream-iter";
import { EmbeddedServer } from "./embedded.js";
import { CliError, EXIT_FAILURE, EXIT_OK, oneLine, UsageError } from "./errors.js";
import { count, duration, rate } from "./format.js";
import { connectTo, isNotFound, loadNats, manager, type NatsClient } from "./nats.js";
import { Progress, RateMeter } from "./progress.js";
import { aborted, Interrupts } from "./signals.js";

export interface DemoOptions {
  /** Messages to publish. */
  messages: number;
  /** Concurrent `for await` workers. */
  workers: number;
  /** Payload size, bytes. */
  payload: number;
  /** Restart the embedded server once, half-way through consuming. */
  chaos: boolean;
  /** An existing server to use instead of an embedded one. */
  server: string[] | undefined;
  /** Stream name (created; must not exist). */
  stream: string;
  /** The consumer's ack_wait, ms: how soon the server redelivers what was never acked. */
  ackWait: number;
  /** Each worker's `max_messages`. */
  maxMessages: number;
  /** Simulated processing time per message, ms (0: ack at once). */
  workMs: number;
  /** Print the report as JSON on stdout. */
  json: boolean;
}

export const DEMO_DEFAULTS = {
  messages: 100_000,
  workers: 4,
  payload: 32,
  stream: "DEMO",
  ackWaitSeconds: 5,
  maxMessages: 256,
  workMs: 0,
} as const;

const CONSUMER = "workers";
/** Publishes in flight at once. */
const PUBLISH_WINDOW = 512;

export interface DemoReport {
  server: string;
  embedded: boolean;
  stream: string;
  consumer: string;
  workers: number;
  requested: number;
  published: number;
  publishFailed: number;
  consumed: number;
  acked: number;
  ackedUnique: number;
  redelivered: number;
  /** What the server still holds for the consumer (num_pending + num_ack_pending); null if unknown. */
  notConsumed: number | null;
  /**
   * Published messages no worker acked that the server no longer holds for the consumer. When
   * the server could not be asked (`notConsumed` null), every published message not acked.
   */
  lost: number;
  drainMs: number[];
  workerErrors: string[];
  restarts: number;
  serverDownMs: number | null;
  /** How the run ended: every message acked, Ctrl-C/SIGTERM, no progress, every worker failed. */
  end: "complete" | "interrupted" | "stalled" | "workers-ended" | "chaos-failed";
  publishMs: number;
  consumeMs: number;
  totalMs: number;
}

/** Which stream sequences were published (acknowledged by the server) and which were acked. */
class Ledger {
  private pub = new Uint8Array(1024);
  private ack = new Uint8Array(1024);
  published = 0;
  ackedUnique = 0;

  private room(seq: number): void {
    if (seq < this.pub.length) return;
    let size = this.pub.length;
    while (size <= seq) size *= 2;
    const pub = new Uint8Array(size);
    pub.set(this.pub);
    const ack = new Uint8Array(size);
    ack.set(this.ack);
    this.pub = pub;
    this.ack = ack;
  }

  markPublished(seq: number): void {
    this.room(seq);
    if (this.pub[seq]) return;
    this.pub[seq] = 1;
    this.published++;
    if (this.ack[seq]) this.ackedUnique++;
  }

  /** True when this acks a published message for the first time. */
  markAcked(seq: number): boolean {
    this.room(seq);
    if (this.ack[seq]) return false;
    this.ack[seq] = 1;
    if (!this.pub[seq]) return false;
    this.ackedUnique++;
    return true;
  }

  get complete(): boolean {
    return this.ackedUnique >= this.published;
  }
}

type DemoMessages = MessagesOf<Consumer>;

/** One `for await` loop that acks every message. */
class Worker {
  consumed = 0;
  acked = 0;
  redelivered = 0;
  error: Error | undefined;
  drainMs: number | undefined;
  private messages: DemoMessages | undefined;
  private done: Promise<void> = Promise.resolve();

  constructor(
    readonly id: number,
    private readonly workMs: number,
    private readonly onAck: (seq: number) => void,
  ) {}

  async start(consumer: Consumer, maxMessages: number): Promise<void> {
    const messages = await consume(consumer, { max_messages: maxMessages });
    this.messages = messages;
    this.done = this.loop(messages);
  }

  /** Resolves when the loop has ended. */
  get ended(): Promise<void> {
    return this.done;
  }

  private async loop(messages: DemoMessages): Promise<void> {
    try {
      for await (const m of messages) {
        this.consumed++;
        if (m.redelivered) this.redelivered++;
        if (this.workMs > 0) await new Promise((r) => setTimeout(r, this.workMs));
        m.ack();
        this.acked++;
        this.onAck(m.seq);
      }
    } catch (err) {
      this.error = err instanceof Error ? err : new Error(String(err));
    }
  }

  /** `drain()`, then waits for the loop to hand out what it holds and end; times both. */
  async drain(): Promise<void> {
    const t0 = performance.now();
    await this.messages?.drain().catch(() => {});
    await this.done;
    this.drainMs = performance.now() - t0;
  }
}

export async function runDemo(opts: DemoOptions): Promise<number> {
  if (opts.chaos && opts.server) {
    throw new UsageError(
      "--chaos restarts the embedded nats-server; it cannot be used with --server",
    );
  }
  const progress = new Progress();
  const say = (line: string) => progress.log(line);
  const interrupts = new Interrupts("stopping: draining every worker", say).install();
  interrupts.onForce(() => progress.stop());
  let embedded: EmbeddedServer | undefined;
  let nc: NatsConnection | undefined;
  let removeStream: (() => Promise<void>) | undefined;
  try {
    const nats = await loadNats();
    let servers: string[];
    if (opts.server) {
      servers = opts.server;
    } else {
      embedded = await EmbeddedServer.start(interrupts);
      servers = [embedded.url];
      const version = embedded.version ? ` ${embedded.version}` : "";
      say(
        `embedded nats-server${version} pid ${embedded.pid} on ${embedded.url} (store ${embedded.server.storeDir})`,
      );
    }
    nc = await connectTo(nats, servers, { name: "jetstream-iter demo" });
    watchConnection(nc, say);
    const jsm = await manager(nats, nc, servers);
    await setUp(jsm, opts, servers, say);
    if (!embedded) {
      // On a server of the user's: remove what the demo created, whatever the outcome.
      const conn = nc;
      removeStream = async () => {
        if (conn.isClosed()) return;
        await jsm.streams.delete(opts.stream).then(
          () => say(`removed the stream ${opts.stream} the demo created`),
          (err: unknown) =>
            say(
              `could not remove the stream ${opts.stream}: ${oneLine(err)} (nats stream rm ${opts.stream})`,
            ),
        );
      };
    }
    const report = await new DemoRun(
      nats,
      nc,
      jsm,
      opts,
      servers,
      embedded,
      interrupts,
      progress,
    ).run();
    progress.stop();
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(formatReport(report));
    const failed =
      report.lost > 0 || report.workerErrors.length > 0 || report.end === "chaos-failed";
    return failed ? EXIT_FAILURE : EXIT_OK;
  } finally {
    progress.stop();
    await removeStream?.().catch(() => {});
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    if (embedded) await embedded.shutdown();
    interrupts.uninstall();
  }
}

/** Says when the connection drops and comes back (the chaos restart, a flaky server). */
function watchConnection(nc: NatsConnection, say: (line: string) => void): void {
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") say("connection: lost the server, reconnecting");
      else if (s.type === "reconnect") say("connection: reconnected");
    }
  })().catch(() => {});
}

/** How the demo marks the streams it creates (their description). */
const DEMO_MARK = "created by jetstream-iter demo";

/**
 * Creates the stream and the durable pull consumer. A stream of that name that an earlier demo
 * left (an interrupted run: it carries the demo's mark) is removed first; any other one is left
 * alone and the demo refuses to run.
 */
async function setUp(
  jsm: JetStreamManager,
  opts: DemoOptions,
  servers: string[],
  say: (line: string) => void,
): Promise<void> {
  const existing = await jsm.streams.info(opts.stream).then(
    (si) => si,
    (err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw new CliError(`cannot read stream ${opts.stream}: ${oneLine(err)}`);
    },
  );
  if (existing && existing.config.description === DEMO_MARK) {
    say(`removing the stream ${opts.stream} an earlier demo left behind`);
    await jsm.streams.delete(opts.stream);
  } else if (existing) {
    throw new CliError(
      `stream ${opts.stream} already exists on ${servers.join(", ")} and was not created by the demo; the demo only uses a stream it creates. Choose another name with --stream NAME.`,
    );
  }
  try {
    await jsm.streams.add({
      name: opts.stream,
      subjects: [`${opts.stream}.>`],
      description: DEMO_MARK,
    });
    await jsm.consumers.add(opts.stream, {
      durable_name: CONSUMER,
      ack_policy: "explicit",
      ack_wait: opts.ackWait * 1_000_000,
      max_ack_pending: Math.max(1_000, opts.workers * opts.maxMessages * 2),
    });
  } catch (err) {
    throw new CliError(`cannot create stream ${opts.stream}: ${oneLine(err)}`);
  }
}

class DemoRun {
  private readonly ledger = new Ledger();
  private readonly workers: Worker[] = [];
  private publishFailed = 0;
  private lastPublishError: unknown;
  private lastProgress = performance.now();
  private chaos: Promise<void> | undefined;
  private serverDownMs: number | null = null;
  private restarts = 0;
  private finish: (end: DemoReport["end"]) => void = () => {};
  private readonly finished: Promise<DemoReport["end"]>;

  constructor(
    private readonly nats: NatsClient,
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly opts: DemoOptions,
    private readonly servers: string[],
    private readonly embedded: EmbeddedServer | undefined,
    private readonly interrupts: Interrupts,
    private readonly progress: Progress,
  ) {
    this.finished = new Promise((resolve) => {
      this.finish = resolve;
    });
  }

  private say(line: string): void {
    this.progress.log(line);
  }

  async run(): Promise<DemoReport> {
    const t0 = performance.now();
    const js = this.nats.jetstream.jetstream(this.nc, { timeout: 10_000 });
    await this.publish(js);
    const publishMs = performance.now() - t0;
    if (this.publishFailed > 0) {
      this.say(
        `publish: ${count(this.publishFailed)} not acknowledged by the server (${oneLine(this.lastPublishError)}); they do not count as published`,
      );
    }

    const t1 = performance.now();
    const end = await this.consume(js);
    const consumeMs = performance.now() - t1;

    const notConsumed = await this.serverStillHolds();
    const ledger = this.ledger;
    const missing = ledger.published - ledger.ackedUnique;
    const lost = Math.max(0, missing - (notConsumed ?? 0));
    const sum = (f: (w: Worker) => number) => this.workers.reduce((a, w) => a + f(w), 0);
    return {
      server: this.servers.join(","),
      embedded: this.embedded !== undefined,
      stream: this.opts.stream,
      consumer: CONSUMER,
      workers: this.workers.length,
      requested: this.opts.messages,
      published: ledger.published,
      publishFailed: this.publishFailed,
      consumed: sum((w) => w.consumed),
      acked: sum((w) => w.acked),
      ackedUnique: ledger.ackedUnique,
      redelivered: sum((w) => w.redelivered),
      notConsumed,
      lost,
      drainMs: this.workers.map((w) => Math.round((w.drainMs ?? 0) * 10) / 10),
      workerErrors: this.workers.flatMap((w) => (w.error ? [`w${w.id}: ${oneLine(w.error)}`] : [])),
      restarts: this.restarts,
      serverDownMs: this.serverDownMs === null ? null : Math.round(this.serverDownMs),
      end,
      publishMs: Math.round(publishMs),
      consumeMs: Math.round(consumeMs),
      totalMs: Math.round(performance.now() - t0),
    };
  }

  // ── publishing ─────────────────────────────────────────────────────────────────────────────

  private async publish(js: JetStreamClient): Promise<void> {
    const n = this.opts.messages;
    const subject = `${this.opts.stream}.events`;
    const signal = this.interrupts.signal;
    const enc = new TextEncoder();
    const size = this.opts.payload;
    const payload = (i: number) => {
      const data = new Uint8Array(size).fill(0x2e);
      data.set(enc.encode(String(i)).subarray(0, size));
      return data;
    };
    const meter = new RateMeter();
    const phase = this.progress.phase("publish", n, () => ({
      value: this.ledger.published,
      detail: `${count(this.ledger.published)}/${count(n)} · ${count(meter.sample(this.ledger.published))} msg/s`,
    }));
    let next = 0;
    let inFlight = 0;
    await new Promise<void>((resolve) => {
      const pump = () => {
        while (inFlight < PUBLISH_WINDOW && next < n && !signal.aborted) {
          const i = next++;
          inFlight++;
          js.publish(subject, payload(i))
            .then(
              (ack) => this.ledger.markPublished(ack.seq),
              (err: unknown) => {
                this.publishFailed++;
                this.lastPublishError = err;
              },
            )
            .finally(() => {
              inFlight--;
              pump();
            });
        }
        if (inFlight === 0 && (next >= n || signal.aborted)) resolve();
      };
      pump();
    });
    phase.stop();
  }

  // ── consuming ──────────────────────────────────────────────────────────────────────────────

  private onAck = (seq: number): void => {
    if (!this.ledger.markAcked(seq)) return;
    this.lastProgress = performance.now();
    if (this.ledger.complete) this.finish("complete");
    this.maybeChaos();
  };

  private maybeChaos(): void {
    const embedded = this.embedded;
    if (!this.opts.chaos || !embedded || this.chaos) return;
    if (this.ledger.ackedUnique * 2 < this.ledger.published) return;
    this.chaos = (async () => {
      const before = embedded.pid;
      this.say(
        `chaos: restarting nats-server (pid ${before}) with ${count(this.ledger.ackedUnique)} of ${count(this.ledger.published)} acked`,
      );
      const t = performance.now();
      await embedded.restart();
      this.serverDownMs = performance.now() - t;
      this.restarts++;
      this.lastProgress = performance.now();
      this.say(
        `chaos: nats-server is back as pid ${embedded.pid} after ${duration(this.serverDownMs)}`,
      );
    })().catch((err: unknown) => {
      this.say(`chaos: restarting nats-server failed: ${oneLine(err)}`);
      this.finish("chaos-failed");
    });
  }

  private async consume(js: JetStreamClient): Promise<DemoReport["end"]> {
    const signal = this.interrupts.signal;
    if (signal.aborted) return "interrupted";
    if (this.ledger.complete) return "complete";
    const consumer = await js.consumers.get(this.opts.stream, CONSUMER);
    for (let i = 1; i <= this.opts.workers; i++) {
      const w = new Worker(i, this.opts.workMs, this.onAck);
      await w.start(consumer, this.opts.maxMessages);
      this.workers.push(w);
    }
    this.say(
      `consume: ${this.workers.length} workers (for await … m.ack()), max_messages ${this.opts.maxMessages} each`,
    );
    const consumedMeter = new RateMeter();
    const total = this.ledger.published;
    const phase = this.progress.phase("consume", total, (wide) => {
      const consumed = this.workers.reduce((a, w) => a + w.consumed, 0);
      const acked = this.workers.reduce((a, w) => a + w.acked, 0);
      const redelivered = this.workers.reduce((a, w) => a + w.redelivered, 0);
      return {
        value: this.ledger.ackedUnique,
        detail: `${count(consumedMeter.sample(consumed))}${wide ? " consumed" : ""}/s · acked ${count(acked)}${wide ? ` (${count(this.ledger.ackedUnique)}/${count(total)} unique)` : ""} · redelivered ${count(redelivered)}`,
      };
    });

    // No new unique ack for this long means something is stuck: stop and report.
    const stallMs = Math.max(20_000, 4 * this.opts.ackWait);
    const watchdog = setInterval(() => {
      if (this.chaos && this.serverDownMs === null) return; // restart in progress
      if (performance.now() - this.lastProgress > stallMs) {
        this.say(`no message acked for ${duration(stallMs)}: stopping`);
        this.finish("stalled");
      }
    }, 500);
    void aborted(signal).then(() => this.finish("interrupted"));
    void Promise.all(this.workers.map((w) => w.ended)).then(() => this.finish("workers-ended"));

    const end = await this.finished;
    clearInterval(watchdog);
    phase.stop();
    if (end === "complete") this.say(`consume: all ${count(total)} messages acked`);
    if (this.chaos) await this.chaos;

    this.say(`drain: draining ${this.workers.length} workers`);
    await Promise.all(this.workers.map((w) => w.drain()));
    return end;
  }

  /** num_pending + num_ack_pending after the workers' acks reached the server; null if unknown. */
  private async serverStillHolds(): Promise<number | null> {
    try {
      await Promise.race([
        this.nc.flush(),
        new Promise((_, reject) => setTimeout(() => reject(new Error("flush timeout")), 5_000)),
      ]);
      const ci = await this.jsm.consumers.info(this.opts.stream, CONSUMER);
      return ci.num_pending + ci.num_ack_pending;
    } catch (err) {
      this.say(`could not read the consumer's state from the server: ${oneLine(err)}`);
      return null;
    }
  }
}

export function formatReport(r: DemoReport): string {
  const n = (v: number) => count(v).padStart(12);
  const lines = [
    "",
    "jetstream-iter demo: final report",
    `  server         ${r.embedded ? "embedded " : ""}${r.server}${r.restarts > 0 ? ` (restarted ${r.restarts}×, down ${duration(r.serverDownMs ?? 0)})` : ""}`,
    `  stream         ${r.stream}, durable pull consumer "${r.consumer}", ${r.workers} workers`,
    `  published   ${n(r.published)}   acknowledged by the server${r.publishFailed > 0 ? ` (${count(r.publishFailed)} more not acknowledged)` : ""}`,
    `  consumed    ${n(r.consumed)}   handed to the workers, redeliveries included`,
    `  acked       ${n(r.acked)}`,
    `  acked-unique${n(r.ackedUnique)}   distinct published messages acked`,
    `  redelivered ${n(r.redelivered)}`,
  ];
  if (r.end !== "complete") {
    lines.push(
      `  not consumed${r.notConsumed === null ? "     unknown".padStart(12) : n(r.notConsumed)}   still held by the server for the consumer`,
    );
  }
  const unverified =
    r.notConsumed === null && r.lost > 0 ? " (the server could not be asked what it holds)" : "";
  lines.push(
    `  lost        ${n(r.lost)}   published, never acked, and gone from the consumer (must be 0)${unverified}`,
    `  drain time     ${r.drainMs.map((ms, i) => `w${i + 1} ${duration(ms)}`).join(" · ") || "no workers ran"}`,
    `  time           publish ${duration(r.publishMs)} (${count(rate(r.published, r.publishMs))} msg/s) · consume ${duration(r.consumeMs)} (${count(rate(r.consumed, r.consumeMs))} msg/s) · total ${duration(r.totalMs)}`,
  );
  for (const e of r.workerErrors) lines.push(`  worker error   ${e}`);
  const how: Record<DemoReport["end"], string> = {
    complete: "every published message was acked",
    interrupted: "interrupted; every worker drained",
    stalled: "stopped: no progress",
    "workers-ended": "every worker ended by itself",
    "chaos-failed": "the chaos restart failed",
  };
  lines.push(
    `  result         ${r.lost === 0 && r.workerErrors.length === 0 && r.end !== "chaos-failed" ? "OK" : "FAILED"}: ${how[r.end]}, ${count(r.lost)} lost`,
    "",
  );
  return lines.join("\n");
}
