/**
 * One run of one fault: a fresh fixture, a steady publisher, both clients consuming (each in its
 * own process, on its own durable of the same stream), the fault, and what it cost each client.
 *
 * - resume: the time from the fault's reference point (per fault: the kill, the SIGCONT, the
 *   cluster being back, …) to the first delivery of a message the publisher first tried after
 *   the fault; `null` when that did not happen within {@link DEADLINE_MS} of the reference.
 * - lost: ids the server acked to the publisher that the client never received, counted at
 *   the later of the deadline and {@link GRACE_MS} after the publisher stopped.
 * - duplicates: deliveries of an id the client had already received.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  type ChildMessage,
  CLIENTS,
  type Client,
  type ClientJob,
  CONNECTION,
  payloadFor,
} from "./types.js";

const here = dirname(fileURLToPath(import.meta.url));

/** How long after its reference point a client has to resume (and to consume what was acked). */
export const DEADLINE_MS = 60_000;
/** After the publisher stops, how long a client that resumed has to catch up before counting lost. */
export const GRACE_MS = 15_000;
/** ack_wait of every durable: what a fault leaves un-acked comes back after this. */
export const ACK_WAIT_MS = 3_000;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, checking every `every` ms; false after `ms`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  every = 20,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(every);
  }
}

/** Like {@link until}, but throws `what` on timeout. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  ms: number,
  what: string,
): Promise<void> {
  if (!(await until(cond, ms))) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export interface Fixture {
  stream: string;
  subject: string;
  /** Each client's durable on `stream`. */
  consumers: Record<Client, string>;
  /** Where the clients connect (in this order when `noRandomize`). */
  clientServers: string[];
  noRandomize: boolean;
  domain?: string;
  publisherServers: string[];
  payloadBytes: number;
  /** The publisher's pause between publishes, ms. */
  publishEveryMs: number;
  /** Messages (ids 0 … backlog-1) already in the stream when the clients start. */
  backlog: number;
  consumeOptions: Record<string, number>;
  /** Deliveries each client must have had before the fault. */
  warmup: number;
  /** Removes the stream (and whatever else the fixture made). */
  cleanup(): Promise<void>;
}

/** What the fault did, as absolute times (Date.now()). */
export interface Provoked {
  /** When the fault happened, per client; a client missing here was not hit (e.g. never cut). */
  fault: Partial<Record<Client, number>>;
  /** Where its resume time counts from, per client. */
  ref: Partial<Record<Client, number>>;
  /** When the service was back (what "back" means is the scenario's), if measured. */
  back?: number;
}

export interface Topology {
  dispose(): Promise<void>;
}

export interface Ctx {
  clients: Map<Client, ClientProc>;
  publisher: Publisher;
  log(s: string): void;
}

export interface Scenario<T extends Topology = Topology> {
  id: string;
  /** The row's name in the table. */
  label: string;
  /** What the resume time counts from. */
  from: string;
  /** What "back" means for this fault, if measured. */
  back?: string;
  /** Scenarios with the same key share one started topology (in a row). */
  topology: string;
  /** Runs in the full form, if not the default. */
  runs?: number;
  start(): Promise<T>;
  fixture(topo: T, run: number): Promise<Fixture>;
  provoke(topo: T, fx: Fixture, ctx: Ctx): Promise<Provoked>;
  /** After the measurement: bring back what the fault took away (restart a node…). */
  heal?(topo: T, fx: Fixture, ctx: Ctx): Promise<void>;
}

/** Publishes numbered messages (msgID = stream-id, so a retried publish is stored once). */
export class Publisher {
  readonly acked = new Set<number>();
  /** When each id was first tried, ms. */
  readonly firstTried = new Map<number, number>();
  private readonly ackedAt = new Map<number, number>();
  private stopped = false;
  private done: Promise<void> = Promise.resolve();
  private nc: NatsConnection | undefined;

  private constructor(private readonly fx: Fixture) {
    for (let id = 0; id < fx.backlog; id++) this.firstTried.set(id, 0);
  }

  /** Publishes the backlog (if any) and starts the steady load. */
  static async start(fx: Fixture): Promise<Publisher> {
    const p = new Publisher(fx);
    p.nc = await connect({ servers: fx.publisherServers, ...CONNECTION });
    const js = jetstream(p.nc, { timeout: 1000 });
    for (let start = 0; start < fx.backlog; start += 64) {
      const end = Math.min(fx.backlog, start + 64);
      const acks = [];
      for (let id = start; id < end; id++) {
        acks.push(js.publish(fx.subject, payloadFor(id, fx.payloadBytes), { msgID: `${id}` }));
      }
      await Promise.all(acks);
      for (let id = start; id < end; id++) p.acked.add(id);
    }
    p.done = p.loop(js);
    return p;
  }

  private async loop(js: ReturnType<typeof jetstream>): Promise<void> {
    for (let id = this.fx.backlog; !this.stopped; id++) {
      this.firstTried.set(id, Date.now());
      while (!this.stopped) {
        try {
          await js.publish(this.fx.subject, payloadFor(id, this.fx.payloadBytes), {
            msgID: `${id}`,
            timeout: 1000,
          });
          this.acked.add(id);
          this.ackedAt.set(id, Date.now());
          break;
        } catch {
          await sleep(20);
        }
      }
      await sleep(this.fx.publishEveryMs);
    }
  }

  /** When the server first acked a message first tried after `t`, if it has. */
  firstAckAfter(t: number): number | undefined {
    let best: number | undefined;
    for (const [id, tried] of this.firstTried) {
      if (tried <= t) continue;
      const a = this.ackedAt.get(id);
      if (a !== undefined && (best === undefined || a < best)) best = a;
    }
    return best;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
    await this.nc?.close().catch(() => {});
  }
}

/** A client process (child.ts) and what it reported. */
export class ClientProc {
  /** Deliveries in order: id and time. */
  readonly deliveries: { id: number; t: number }[] = [];
  readonly seen = new Set<number>();
  readonly events: { t: number; what: string }[] = [];
  ended: { t: number; error?: string } | undefined;
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  private readonly readyP: Promise<void>;
  stderr = "";

  constructor(readonly job: ClientJob) {
    this.child = spawn(process.execPath, [join(here, "child.js"), JSON.stringify(job)], {
      stdio: ["ignore", "ignore", "pipe", "ipc"],
    });
    live.add(this.child);
    this.child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      this.stderr += d;
    });
    this.exited = new Promise((r) =>
      this.child.once("exit", () => {
        live.delete(this.child);
        r();
      }),
    );
    this.readyP = new Promise((resolve, reject) => {
      this.child.on("message", (m: ChildMessage) => {
        switch (m.type) {
          case "ready":
            resolve();
            break;
          case "deliveries":
            for (let i = 0; i < m.d.length; i += 2) {
              const id = m.d[i]!;
              this.deliveries.push({ id, t: m.d[i + 1]! });
              this.seen.add(id);
            }
            break;
          case "event":
            this.events.push({ t: m.t, what: m.what });
            break;
          case "ended":
            this.ended = { t: m.t, ...(m.error ? { error: m.error } : {}) };
            this.events.push({ t: m.t, what: `loop ended${m.error ? `: ${m.error}` : ""}` });
            break;
        }
      });
      void this.exited.then(() =>
        reject(new Error(`${job.client} process exited: ${this.stderr.trim()}`)),
      );
    });
    this.readyP.catch(() => {});
  }

  ready(): Promise<void> {
    return this.readyP;
  }

  /** The first delivery of an id first tried after `t`. */
  resumedAfter(t: number, firstTried: Map<number, number>): { id: number; t: number } | undefined {
    return this.deliveries.find((d) => (firstTried.get(d.id) ?? 0) > t);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.send({ type: "stop" });
    const t = setTimeout(() => this.child.kill("SIGKILL"), 3000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Every client process still running, for a last-resort kill at exit. */
export const live = new Set<ChildProcess>();

export interface ClientResult {
  client: Client;
  /** ms from the reference point to the first delivery of a message tried after the fault. */
  resumeMs: number | null;
  /** ms from the fault to the reference point (e.g. kill → cluster back). */
  refAfterFaultMs: number | null;
  lost: number;
  duplicates: number;
  consumed: number;
  acked: number;
  /** The loop ended (it never should). */
  ended?: string;
  /** Connection events and notifications from 1 s before the fault to 1 s after the resume (or the deadline), ms from the reference. */
  events: string[];
}

export interface RunResult {
  scenario: string;
  run: number;
  /** ms from the fault to the service being back, if measured. */
  backMs: number | null;
  clients: ClientResult[];
}

/** One run of `sc` on `topo`, both clients at once (the order they start in alternates). */
export async function runOnce<T extends Topology>(
  sc: Scenario<T>,
  topo: T,
  run: number,
  log: (s: string) => void,
): Promise<RunResult> {
  const fx = await sc.fixture(topo, run);
  const clients = new Map<Client, ClientProc>();
  let publisher: Publisher | undefined;
  try {
    publisher = await Publisher.start(fx);
    const pub = publisher;
    const order = run % 2 === 0 ? [...CLIENTS] : [...CLIENTS].reverse();
    for (const client of order) {
      clients.set(
        client,
        new ClientProc({
          client,
          servers: fx.clientServers,
          noRandomize: fx.noRandomize,
          ...(fx.domain ? { domain: fx.domain } : {}),
          stream: fx.stream,
          consumer: fx.consumers[client],
          consumeOptions: fx.consumeOptions,
        }),
      );
    }
    await Promise.all([...clients.values()].map((c) => c.ready()));
    await waitFor(
      () => [...clients.values()].every((c) => c.deliveries.length >= fx.warmup),
      30_000,
      `${fx.warmup} deliveries to each client before the fault`,
    );
    const ctx: Ctx = { clients, publisher: pub, log };
    const provoking = Date.now();
    const p = await sc.provoke(topo, fx, ctx);
    const refOf = (c: Client) => p.ref[c] ?? p.fault[c];
    const resumeOf = (c: Client) => {
      const f = p.fault[c];
      return f === undefined ? undefined : clients.get(c)!.resumedAfter(f, pub.firstTried);
    };
    const lastRef = Math.max(...CLIENTS.map((c) => refOf(c) ?? Date.now()));
    await until(
      () => CLIENTS.every((c) => p.fault[c] === undefined || resumeOf(c) !== undefined),
      lastRef + DEADLINE_MS - Date.now(),
      50,
    );
    if (sc.heal) await sc.heal(topo, fx, ctx);
    await sleep(500); // a little load after the resume (and the heal)
    await pub.stop();
    const stoppedAt = Date.now();
    const acked = [...pub.acked];
    const caughtUp = (c: ClientProc) => acked.every((id) => c.seen.has(id));
    await until(
      () => [...clients.values()].every(caughtUp),
      Math.max(lastRef + DEADLINE_MS, stoppedAt + GRACE_MS) - Date.now(),
      50,
    );
    // Whatever is caught up by now (a resume at the deadline gets GRACE_MS more)
    const results: ClientResult[] = [];
    for (const client of CLIENTS) {
      const c = clients.get(client)!;
      const fault = p.fault[client];
      const ref = refOf(client);
      const r = resumeOf(client);
      const resumeMs = r && ref !== undefined && r.t - ref <= DEADLINE_MS ? r.t - ref : null;
      const end = r ? r.t + 1000 : (ref ?? Date.now()) + DEADLINE_MS;
      const from = Math.min(provoking, fault ?? provoking, ref ?? provoking) - 1000;
      results.push({
        client,
        resumeMs,
        refAfterFaultMs: fault !== undefined && ref !== undefined ? ref - fault : null,
        lost: acked.filter((id) => !c.seen.has(id)).length,
        duplicates: c.deliveries.length - c.seen.size,
        consumed: c.seen.size,
        acked: acked.length,
        ...(c.ended ? { ended: c.ended.error ?? "without an error" } : {}),
        events: c.events
          .filter((e) => e.t >= from && e.t <= end)
          .map((e) => `${e.t - (ref ?? 0) >= 0 ? "+" : ""}${e.t - (ref ?? 0)} ms ${e.what}`),
      });
    }
    const firstRef = Math.min(
      ...CLIENTS.map((c) => Math.min(p.ref[c] ?? Infinity, p.fault[c] ?? Infinity)),
    );
    return {
      scenario: sc.id,
      run,
      backMs: p.back !== undefined && Number.isFinite(firstRef) ? p.back - firstRef : null,
      clients: results,
    };
  } finally {
    await publisher?.stop().catch(() => {});
    await Promise.all([...clients.values()].map((c) => c.stop()));
    await fx.cleanup().catch((err: unknown) => log(`  cleanup failed: ${String(err)}`));
  }
}
