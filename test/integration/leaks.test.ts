/**
 * Nothing of ours outlives `closed()`: no subscription on the connection, no status listener,
 * no timer, no listener on a signal we were given — for every way of ending.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { consume, fetchMessages, type Messages, nextMessage } from "../../src/index.js";
import { NatsServer } from "../harness/index.js";
import {
  activeTimers,
  freshConsumer,
  publishN,
  statusListeners,
  subjectsOf,
  until,
  v2,
  v3,
  v3Consumer,
  within,
} from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

/**
 * The connection's subscriptions that are the iterator's: its inboxes are
 * `<prefix>.<id>.<generation>.*` (nats.js's own request inbox is `<prefix>.<id>.*`).
 */
function ours(nc: Parameters<typeof subjectsOf>[0]): string[] {
  return subjectsOf(nc).filter((s) => /^_INBOX\.[A-Za-z0-9]+\.\d+\.\*$/.test(s));
}

/** An AbortSignal that counts the listeners added to and removed from it. */
function countingSignal() {
  const ac = new AbortController();
  const signal = ac.signal;
  const counts = { added: 0, removed: 0 };
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<typeof add>) => {
    counts.added++;
    add(...args);
  }) as typeof signal.addEventListener;
  signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    counts.removed++;
    remove(...args);
  }) as typeof signal.removeEventListener;
  return { ac, signal, counts };
}

type Ending = "drain" | "close" | "break" | "stop" | "abort" | "next-timeout-then-close";

async function exercise(
  messages: Messages<{ ack(): void }, unknown>,
  how: Ending,
  consumeAbort: AbortController,
) {
  const next = countingSignal();
  // a next() with a signal that is served by a message, and one that times out
  const first = await messages.next({ signal: next.signal, timeout: 5000 });
  first.ack();
  if (how === "next-timeout-then-close") {
    await messages.next({ timeout: 20 }).catch(() => {});
    await messages.close();
  } else if (how === "drain") {
    await messages.drain();
    for await (const m of messages as AsyncIterable<{ ack(): void }>) m.ack();
  } else if (how === "stop") {
    messages.stop();
    for await (const m of messages as AsyncIterable<{ ack(): void }>) m.ack();
  } else if (how === "close") {
    await messages.close();
  } else if (how === "abort") {
    consumeAbort.abort();
  } else {
    for await (const m of messages as AsyncIterable<{ ack(): void }>) {
      m.ack();
      break;
    }
  }
  await within(messages.closed(), 5000, `closed() after ${how}`);
  return next.counts;
}

describe("no leaks after closed()", () => {
  for (const how of [
    "drain",
    "close",
    "break",
    "stop",
    "abort",
    "next-timeout-then-close",
  ] as const) {
    it(`v3, ended by ${how}: no subscription, status listener, timer or signal listener left`, async () => {
      const nc: NatsConnection = await v3(server);
      try {
        const { stream, consumer, subject } = await freshConsumer(server);
        await publishN(server.url, subject, 20);
        const c = await v3Consumer(nc, stream, consumer);
        await nc.flush();
        expect(ours(nc)).toEqual([]);
        const listeners = statusListeners(nc);
        const timers = activeTimers();
        const consumeSignal = countingSignal();
        const messages = await consume(c, {
          max_messages: 5,
          signal: consumeSignal.signal,
        });
        const status = messages.status();
        expect(ours(nc)).toHaveLength(1);
        // the one status listener the iterator added (nats.js may add and drop its own meanwhile)
        const added = statusListeners(nc).filter((l) => !listeners.includes(l));
        expect(added).toHaveLength(1);
        const nextCounts = await exercise(messages, how, consumeSignal.ac);
        expect(ours(nc)).toEqual([]);
        expect(statusListeners(nc).filter((l) => added.includes(l))).toEqual([]);
        // nats.js may finish a timer of its own meanwhile, never start one for us
        expect(activeTimers()).toBeLessThanOrEqual(timers);
        expect(nextCounts.added).toBe(1);
        expect(nextCounts.removed).toBe(1);
        expect(consumeSignal.counts.added).toBe(1);
        expect(consumeSignal.counts.removed).toBe(1);
        // the status() listener ended with the iterator: reading it to the end finishes
        const seen: string[] = [];
        await within(
          (async () => {
            for await (const n of status) seen.push(n.type);
          })(),
          1000,
          "status() end",
        );
        expect(seen).toContain("next");
      } finally {
        await nc.close();
      }
    });
  }

  it("v2, ended by drain: no subscription, status listener or timer left", async () => {
    const nc = await v2(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 20);
      const c = await nc.jetstream().consumers.get(stream, consumer);
      await nc.flush();
      expect(ours(nc)).toEqual([]);
      const listeners = statusListeners(nc);
      const timers = activeTimers();
      const messages = await consume(c, {
        max_messages: 5,
      });
      expect(ours(nc)).toHaveLength(1);
      const added = statusListeners(nc).filter((l) => !listeners.includes(l));
      expect(added).toHaveLength(1);
      const m = await messages.next();
      m.ack();
      await messages.drain();
      for await (const x of messages) x.ack();
      await within(messages.closed(), 5000, "closed()");
      expect(ours(nc)).toEqual([]);
      expect(statusListeners(nc).filter((l) => added.includes(l))).toEqual([]);
      // nats.js may finish a timer of its own meanwhile, never start one for us
      expect(activeTimers()).toBeLessThanOrEqual(timers);
    } finally {
      await nc.close();
    }
  });
});

describe("no leaks after closed(): ordered consumers, fetch and next", () => {
  for (const how of ["drain", "close", "break", "abort"] as const) {
    it(`ordered v3, ended by ${how}: no subscription, status listener, timer or signal listener left`, async () => {
      const nc: NatsConnection = await v3(server);
      try {
        const { stream, subject } = await freshConsumer(server);
        await publishN(server.url, subject, 20);
        const oc = await jetstream(nc).consumers.get(stream);
        await nc.flush();
        const listeners = statusListeners(nc);
        const timers = activeTimers();
        const consumeSignal = countingSignal();
        const messages = await consume(oc, { max_messages: 5, signal: consumeSignal.signal });
        expect(ours(nc)).toHaveLength(1);
        const added = statusListeners(nc).filter((l) => !listeners.includes(l));
        await exercise(messages, how, consumeSignal.ac);
        expect(ours(nc)).toEqual([]);
        expect(statusListeners(nc).filter((l) => added.includes(l))).toEqual([]);
        // a best-effort delete of a consumer left behind may still await its answer (nats.js's
        // request timer): it settles, and nothing of ours remains
        await until(() => activeTimers() <= timers, 5000, "timers back to where they were");
        expect(consumeSignal.counts.removed).toBe(consumeSignal.counts.added);
      } finally {
        await nc.close();
      }
    });
  }

  for (const how of ["complete", "408", "close"] as const) {
    it(`fetchMessages() ended by ${how}: no subscription, status listener or timer left`, async () => {
      const nc: NatsConnection = await v3(server);
      try {
        const { stream, consumer, subject } = await freshConsumer(server);
        await publishN(server.url, subject, 3);
        const c = await v3Consumer(nc, stream, consumer);
        await nc.flush();
        const listeners = statusListeners(nc);
        const timers = activeTimers();
        const batch = await fetchMessages(c, {
          max_messages: how === "complete" ? 3 : 10,
          expires: 1000,
        });
        const added = statusListeners(nc).filter((l) => !listeners.includes(l));
        expect(added).toHaveLength(1);
        for await (const m of batch) {
          m.ack();
          if (how === "close") await batch.close();
        }
        await within(batch.closed(), 5000, "closed()");
        expect(ours(nc)).toEqual([]);
        expect(statusListeners(nc).filter((l) => added.includes(l))).toEqual([]);
        await until(() => activeTimers() <= timers, 5000, "timers back to where they were");
      } finally {
        await nc.close();
      }
    });
  }

  it("nextMessage() with a signal, served and expired: no subscription, timer or signal listener left", async () => {
    const nc: NatsConnection = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 1);
      const c = await v3Consumer(nc, stream, consumer);
      await nc.flush();
      const timers = activeTimers();
      const s = countingSignal();
      const m = await nextMessage(c, { expires: 1000, signal: s.signal });
      m?.ack();
      expect(await nextMessage(c, { expires: 1000, signal: s.signal })).toBeNull();
      expect(ours(nc)).toEqual([]);
      expect(s.counts.added).toBe(2);
      expect(s.counts.removed).toBe(2);
      await until(() => activeTimers() <= timers, 5000, "timers back to where they were");
    } finally {
      await nc.close();
    }
  });
});
