/**
 * Flow control and throughput paths against a real server: a stalled loop body never stacks
 * pulls; 1000 messages through for await, an async callback, and a nats v2 consumer.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { consume } from "../../src/index.js";
import { consumerInfo, NatsServer } from "../harness/index.js";
import {
  freshConsumer,
  observePulls,
  publishN,
  until,
  v2,
  v3,
  v3Consumer,
  within,
} from "./fixture.js";

let server: NatsServer;
let nc: NatsConnection | undefined;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});
afterEach(async () => {
  await nc?.close();
  nc = undefined;
});

/** Messages requested by every pull request the observer saw (`batch` of each body). */
function requested(observer: { events: { kind: string; body: string }[] }): number {
  return observer.events
    .filter((e) => e.kind === "pull")
    .reduce((sum, e) => sum + (JSON.parse(e.body) as { batch: number }).batch, 0);
}

describe("flow control", () => {
  it("a loop body stalled for 5 x idle_heartbeat: buffered + outstanding never exceeds max_messages, one waiting pull at most", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 100);
    const observer = await observePulls(server);
    const idle_heartbeat = 500;
    const messages = await consume(await v3Consumer(nc, stream, consumer), {
      max_messages: 10,
      expires: 5_000,
      idle_heartbeat,
    });
    // No request expires during the test (expires 5 s), so nothing is released by a 408:
    // outstanding = requested - received.
    const held = () => messages.getPending() + requested(observer) - messages.getReceived();
    let maxHeld = 0;
    let maxWaiting = 0;
    let stalls = 0;
    const seqs = new Set<number>();
    for await (const m of messages) {
      seqs.add(m.seq);
      m.ack();
      if (seqs.size === 1) {
        // Stall: the buffer is full, so nothing may be pulled until the body moves on.
        await observer.flush();
        const pullsBefore = observer.events.length;
        const stallUntil = Date.now() + 5 * idle_heartbeat;
        while (Date.now() < stallUntil) {
          maxHeld = Math.max(maxHeld, held());
          maxWaiting = Math.max(
            maxWaiting,
            (await consumerInfo(server.url, stream, consumer)).num_waiting,
          );
          stalls++;
          await new Promise((r) => setTimeout(r, 50));
        }
        await observer.flush();
        expect(observer.events.length).toBe(pullsBefore);
      }
      await observer.flush();
      maxHeld = Math.max(maxHeld, held());
      if (seqs.size === 100) await messages.drain();
    }
    expect(stalls).toBeGreaterThan(5);
    expect(seqs.size).toBe(100);
    expect(maxHeld).toBeLessThanOrEqual(10);
    expect(maxHeld).toBeGreaterThan(0);
    expect(maxWaiting).toBeLessThanOrEqual(1);
    await observer.close();
  }, 30_000);
});

describe("1000 messages", () => {
  it("through for await with acks: counters read 1000/1000, nothing left un-acked", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 1000);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    const seqs = new Set<number>();
    for await (const m of messages) {
      seqs.add(m.seq);
      m.ack();
      if (seqs.size === 1000) await messages.drain();
    }
    expect(seqs.size).toBe(1000);
    expect(messages.getProcessed()).toBe(1000);
    expect(messages.getReceived()).toBe(1000);
    expect(messages.getPending()).toBe(0);
    await nc.flush();
    await until(
      async () => (await consumerInfo(server.url, stream, consumer)).num_ack_pending === 0,
      10_000,
      "all acked",
    );
  });

  it("through an async callback: never two callbacks at once", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 1000);
    let running = 0;
    let maxRunning = 0;
    let n = 0;
    let resolveAll!: () => void;
    const all = new Promise<void>((r) => {
      resolveAll = r;
    });
    const messages = await consume(await v3Consumer(nc, stream, consumer), {
      callback: async (m) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setImmediate(r));
        m.ack();
        running--;
        if (++n === 1000) resolveAll();
      },
    });
    await within(all, 20_000, "1000 callbacks");
    await messages.drain();
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    expect(maxRunning).toBe(1);
    expect(messages.getProcessed()).toBe(1000);
    expect(messages.getReceived()).toBe(1000);
  });

  it("a callback that throws ends the consumer with that error and NAKs the buffer", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 20);
    const boom = new Error("boom");
    let calls = 0;
    const messages = await consume(await v3Consumer(nc, stream, consumer), {
      max_messages: 20,
      callback: (m) => {
        if (++calls === 3) throw boom;
        m.ack();
      },
    });
    expect(await within(messages.closed(), 5000, "closed()")).toBe(boom);
    expect(calls).toBe(3);
    const c = messages.counters();
    expect(c.received).toBe(c.processed + c.naked);
    expect(c.pending).toBe(0);
  });

  it("through a nats v2 consumer: counters read 1000/1000", async () => {
    const nc2 = await v2(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 1000);
      const c = await nc2.jetstream().consumers.get(stream, consumer);
      const messages = await consume(c);
      const statuses = await messages.status();
      const types: string[] = [];
      const notes = (async () => {
        for await (const s of statuses) types.push(s.type);
      })();
      const seqs = new Set<number>();
      for await (const m of messages) {
        seqs.add(m.seq);
        m.ack();
        if (seqs.size === 1000) await messages.drain();
      }
      await within(notes, 5000, "v2 status listener end");
      expect(seqs.size).toBe(1000);
      expect(messages.getProcessed()).toBe(1000);
      expect(messages.getReceived()).toBe(1000);
      expect(types).toContain("next");
      await nc2.flush();
      await until(
        async () => (await consumerInfo(server.url, stream, consumer)).num_ack_pending === 0,
        10_000,
        "all acked",
      );
    } finally {
      await nc2.close();
    }
  });
});
