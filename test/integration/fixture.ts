/**
 * Shared setup for integration tests: one real nats-server per test file, unique stream and
 * consumer names per test, v3 and v2 connections, and small waiting helpers with deadlines.
 */
import { type Consumer, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { connect as connectV2, type NatsConnection as NatsConnectionV2 } from "nats";
import { createConsumer, createStream, type NatsServer, publishN } from "../harness/index.js";

let counter = 0;

/** A fresh stream `S<n>` (subjects `S<n>.>`) with a durable pull consumer `c`. */
export async function freshConsumer(
  server: NatsServer,
  config: Record<string, unknown> = {},
): Promise<{ stream: string; consumer: string; subject: string }> {
  const stream = `S${++counter}_${process.pid}`;
  await createStream(server.url, stream);
  await createConsumer(server.url, stream, "c", config);
  return { stream, consumer: "c", subject: `${stream}.x` };
}

export async function v3(
  server: NatsServer,
  opts: Record<string, unknown> = {},
): Promise<NatsConnection> {
  return connect({ servers: server.url, ...opts });
}

export async function v2(
  server: NatsServer,
  opts: Record<string, unknown> = {},
): Promise<NatsConnectionV2> {
  return connectV2({ servers: server.url, ...opts });
}

export async function v3Consumer(
  nc: NatsConnection,
  stream: string,
  name: string,
): Promise<Consumer> {
  return jetstream(nc).consumers.get(stream, name);
}

/** Waits until `cond()` is true, checking every 20 ms; throws after `ms`. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Rejects if `p` does not settle within `ms`: a hang becomes a failure, not a stuck test. */
export function within<T>(p: Promise<T>, ms = 10_000, what = "promise"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Observes pull requests (`$JS.API.CONSUMER.MSG.NEXT.>`) and markers from a second connection. */
export async function observePulls(server: NatsServer): Promise<{
  events: { kind: "pull" | "marker"; subject: string; body: string; reply?: string }[];
  pullsAfterMarker(): number;
  close(): Promise<void>;
  flush(): Promise<void>;
}> {
  const nc = await connect({ servers: server.url });
  const events: { kind: "pull" | "marker"; subject: string; body: string; reply?: string }[] = [];
  nc.subscribe("$JS.API.CONSUMER.MSG.NEXT.>", {
    callback: (_e, m) => {
      events.push({ kind: "pull", subject: m.subject, body: m.string(), reply: m.reply });
    },
  });
  nc.subscribe("marker.>", {
    callback: (_e, m) => {
      events.push({ kind: "marker", subject: m.subject, body: "" });
    },
  });
  await nc.flush();
  return {
    events,
    pullsAfterMarker() {
      const i = events.findIndex((e) => e.kind === "marker");
      if (i < 0) throw new Error("no marker seen");
      return events.slice(i + 1).filter((e) => e.kind === "pull").length;
    },
    flush: () => nc.flush(),
    close: () => nc.close(),
  };
}

export { publishN };

/** Subscriptions a v3 connection holds, by subject. */
export function subjectsOf(nc: NatsConnection | NatsConnectionV2): string[] {
  // biome-ignore lint/suspicious/noExplicitAny: reading nats.js internals to prove nothing leaks
  const subs = (nc as any).protocol.subscriptions.all() as { subject: string }[];
  return subs.map((s) => s.subject);
}

/** Status listeners registered on a connection (nats.js internals). */
export function statusListeners(nc: NatsConnection | NatsConnectionV2): unknown[] {
  // biome-ignore lint/suspicious/noExplicitAny: reading nats.js internals to prove nothing leaks
  const x = nc as any;
  // v2 relays statuses to its own `listeners`; v3 keeps them on the protocol
  return [...(x.listeners ?? x.protocol.listeners ?? [])];
}

/** Active Node timers (Timeout resources). */
export function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
}
