/**
 * Shared setup of the compatibility suite: one real nats-server per file (the harness's), a
 * fresh v3 connection per test (closed after it), unique stream names, and a few readings of
 * nats.js connection internals that both implementations share (subscriptions, status
 * listeners), since both speak over the same nats.js connection.
 */

import { AsyncLocalStorage } from "node:async_hooks";
import {
  AckPolicy,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, beforeEach, it as vitestIt } from "vitest";
import { NatsServer } from "../harness/index.js";
import type { Impl } from "./impls.js";

export { until, within } from "../integration/fixture.js";

export interface Env {
  server: NatsServer;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

let counter = 0;

/** A stream name no other test of this run uses. */
export function uniqueName(prefix = "S"): string {
  return `${prefix}${++counter}_${process.pid}`;
}

/**
 * Starts one nats-server for the file. Every test gets its own connection (closed after it),
 * read with `env()`: tests of a file run concurrently (`describe.concurrent`), so the current
 * test's connection is found through AsyncLocalStorage, not a shared variable. Connections made
 * with `connectExtra()` are closed after the test too. Tests must be declared with `it` from
 * this module, which sets that up.
 */
export function useServer(): {
  env(): Env;
  connectExtra(opts?: Record<string, unknown>): Promise<NatsConnection>;
} {
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
    server = undefined;
  });
  return {
    env() {
      const e = scope.getStore();
      if (!e) throw new Error("no test is running (declare tests with `it` from helpers.ts)");
      return e;
    },
    async connectExtra(opts = {}) {
      const e = scope.getStore();
      if (!e || !server) throw new Error("no test is running");
      const nc = await connect({ servers: server.url, ...opts });
      e.extra.push(nc);
      return nc;
    },
  };
}

let server: NatsServer | undefined;
const scope = new AsyncLocalStorage<Env & { extra: NatsConnection[] }>();

/** Runs `fn` with a fresh connection of its own as `env()`; closes every connection after it. */
function withEnv(fn: () => unknown): () => Promise<void> {
  return async () => {
    if (!server) throw new Error("useServer() was not called in this file");
    const nc = await connect({ servers: server.url });
    const e = { server, nc, js: jetstream(nc), jsm: await jetstreamManager(nc), extra: [] };
    try {
      await scope.run(e, fn);
    } finally {
      await Promise.all(
        [nc, ...e.extra].map((c) => (c.isClosed() ? undefined : c.close().catch(() => {}))),
      );
    }
  };
}

type Body = () => unknown;

/** vitest's `it`, with the test's own connection as `env()` (see useServer). */
export const it = Object.assign((name: string, fn: Body) => vitestIt(name, withEnv(fn)), {
  skip: (name: string, fn: Body) => vitestIt.skip(name, withEnv(fn)),
  skipIf: (cond: boolean) => (name: string, fn: Body) => vitestIt.skipIf(cond)(name, withEnv(fn)),
});

/** Skips every test of `impl`'s block while it is not available (ours before `wrapConsumer`). */
export function skipUnavailable(impl: Impl): void {
  beforeEach((ctx) => {
    if (!impl.available) ctx.skip("wrapConsumer is not exported from src/index.ts yet");
  });
}

/** A stream `name` capturing `subjects` (default `<name>.*`). */
export async function addStream(
  jsm: JetStreamManager,
  name = uniqueName(),
  config: Partial<StreamConfig> = {},
): Promise<{ stream: string; subj: string }> {
  await jsm.streams.add({ name, subjects: [`${name}.*`], ...config });
  return { stream: name, subj: `${name}.A` };
}

/** A durable pull consumer `name` on `stream` (explicit acks unless `config` says otherwise). */
export async function addDurable(
  jsm: JetStreamManager,
  stream: string,
  name: string,
  config: Partial<ConsumerConfig> = {},
): Promise<void> {
  await jsm.consumers.add(stream, {
    durable_name: name,
    ack_policy: AckPolicy.Explicit,
    ...config,
  });
}

/** Publishes `n` messages to `subj` (payload: the index, as nats.js's tests fill streams). */
export async function publish(js: JetStreamClient, subj: string, n: number): Promise<void> {
  const acks = [];
  for (let i = 0; i < n; i++) acks.push(js.publish(subj, `${i}`));
  await Promise.all(acks);
}

interface ProtocolInternals {
  protocol: {
    subscriptions: { size(): number; all(): Subscription[] };
    listeners: unknown[];
  };
  _resub(s: Subscription, subject: string): void;
}

const internals = (nc: NatsConnection) => nc as unknown as ProtocolInternals;

/** How many subscriptions the connection holds (nats.js's internal table). */
export function subscriptionCount(nc: NatsConnection): number {
  return internals(nc).protocol.subscriptions.size();
}

/** The connection's subscriptions right now, to tell later which ones are new. */
export function subscriptionsNow(nc: NatsConnection): Set<Subscription> {
  return new Set(internals(nc).protocol.subscriptions.all());
}

/** Status listeners registered on the connection's protocol (nats.js internals). */
export function protocolListenerCount(nc: NatsConnection): number {
  return internals(nc).protocol.listeners.length;
}

/**
 * Moves every subscription made since `before` to a subject nobody publishes to, so the pull's
 * messages and heartbeats stop arriving: what nats.js's own tests do with `_resub(iter.sub, …)`,
 * done on the connection so that it works whichever library made the subscription.
 */
export function starveNewSubscriptions(nc: NatsConnection, before: Set<Subscription>): number {
  let n = 0;
  for (const s of internals(nc).protocol.subscriptions.all()) {
    if (before.has(s)) continue;
    internals(nc)._resub(s, `starved.${uniqueName("x")}`);
    n++;
  }
  return n;
}

/** Collects a Messages' notifications in the background (v3 shape: `{ type, … }`). */
export function collectStatus<N extends { type: string }>(
  status: AsyncIterable<N>,
  onEach?: (n: N, all: N[]) => boolean | undefined,
): { all: N[]; done: Promise<void> } {
  const all: N[] = [];
  const done = (async () => {
    for await (const n of status) {
      all.push(n);
      if (onEach?.(n, all)) break;
    }
  })();
  return { all, done };
}

/** Drains an async iterable, returning what it yielded; rejects with what the loop threw. */
export async function drainAll<T>(iter: AsyncIterable<T>, each?: (m: T) => void): Promise<T[]> {
  const out: T[] = [];
  for await (const m of iter) {
    out.push(m);
    each?.(m);
  }
  return out;
}

/**
 * What `p` rejects with, its handlers attached at once (so a rejection that comes while the
 * test awaits something else is never "unhandled"). Rejects if `p` resolves or hangs past `ms`.
 */
export function rejectionOf(p: Promise<unknown>, ms = 10_000, what = "promise"): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return new Promise<unknown>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    p.then(
      (v) => reject(new Error(`${what} resolved (${String(v)}) instead of rejecting`)),
      (e) => resolve(e),
    );
  }).finally(() => clearTimeout(timer));
}

/** Calls `fn` so that a synchronous throw becomes a rejection (nats.js throws some errors). */
export function attempt<T>(fn: () => T | Promise<T>): Promise<T> {
  return (async () => fn())();
}
