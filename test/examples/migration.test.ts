/**
 * The rows of docs/migration.md that no other test proves by name, against a real nats-server:
 * priority-group options are refused, `push()` throws, callback mode refuses `next()` and
 * `for await`, and `await using` closes the iterator as `close()` does.
 */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  CallbackModeError,
  type ConsumeOptions,
  type Counters,
  consume,
  InvalidOptionError,
} from "../../src/index.js";
import { createConsumer, createStream, NatsServer, publishN } from "../harness/index.js";

let server: NatsServer;
let nc: NatsConnection | undefined;
let counter = 0;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterEach(async () => {
  await nc?.close();
  nc = undefined;
});
afterAll(async () => {
  await server?.dispose();
});

async function fresh(count: number, config: Record<string, unknown> = {}) {
  const stream = `MIG${++counter}`;
  await createStream(server.url, stream);
  await createConsumer(server.url, stream, "c", config);
  if (count > 0) await publishN(server.url, `${stream}.x`, count);
  nc = await connect({ servers: server.url });
  return jetstream(nc).consumers.get(stream, "c");
}

/** Waits until `cond()` holds, checking every 20 ms; throws after `ms`. */
async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("migration from nats.js consume()", () => {
  it.each([
    ["group", { group: "g" }],
    ["priority", { priority: 1 }],
    ["min_pending", { min_pending: 10 }],
    ["min_ack_pending", { min_ack_pending: 10 }],
  ])(
    "priority-group option %s: InvalidOptionError naming it, nothing subscribed",
    async (option, opts) => {
      const c = await fresh(0);
      // nats.js keeps its subscriptions in protocol.subscriptions
      const subscriptions = (nc as unknown as { protocol: { subscriptions: { size(): number } } })
        .protocol.subscriptions;
      const subs = subscriptions.size();
      const err = await consume(c, opts as ConsumeOptions).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidOptionError);
      expect((err as InvalidOptionError).option).toBe(option);
      expect((err as InvalidOptionError).message).toMatch(/priority groups are not supported/);
      expect(subscriptions.size()).toBe(subs);
    },
  );

  it("push() throws a TypeError: messages come only from the server", async () => {
    const c = await fresh(1);
    const messages = await consume(c);
    const m = await messages.next({ timeout: 5_000 });
    expect(() => messages.push(m)).toThrow(TypeError);
    expect(messages.counters()).toMatchObject({ received: 1, processed: 1, pending: 0 });
    m.ack();
    expect(await messages.close()).toBeUndefined();
  });

  it("callback mode: next() rejects and for await throws CallbackModeError; the callback still gets every message", async () => {
    const c = await fresh(5);
    const seen: number[] = [];
    const messages = await consume(c, {
      callback: (m) => {
        seen.push(m.seq);
        m.ack();
      },
    });
    await expect(messages.next()).rejects.toBeInstanceOf(CallbackModeError);
    expect(() => messages[Symbol.asyncIterator]()).toThrow(CallbackModeError);
    await until(() => seen.length === 5);
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    expect(messages.state).toBe("open");
    await messages.drain();
    expect(await messages.closed()).toBeUndefined();
  });

  it("await using: leaving the block closes the iterator like close(), NAKing what is buffered", async () => {
    const c = await fresh(10, { ack_wait: 60_000_000_000 });
    let held: { readonly state: string; counters(): Counters; closed(): Promise<void | Error> };
    {
      await using messages = await consume(c, { max_messages: 10 });
      held = messages;
      await until(() => messages.getReceived() === 10);
      const m = await messages.next();
      m.ack();
      expect(messages.state).toBe("open");
    } // leaving the block awaits messages[Symbol.asyncDispose]()
    expect(held.state).toBe("done");
    expect(await held.closed()).toBeUndefined();
    expect(held.counters()).toMatchObject({ received: 10, processed: 1, naked: 9, pending: 0 });
    // NAKed, so redelivered at once (ack_wait is 60 s)
    const again = await consume(c, { max_messages: 10 });
    const redelivered = await again.next({ timeout: 5_000 });
    expect(redelivered.info.deliveryCount).toBe(2);
    redelivered.ack();
    await again.close();
  });
});
