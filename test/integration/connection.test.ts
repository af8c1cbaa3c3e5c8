/**
 * The connection ending under a busy iterator: closed or drained by the application (a graceful
 * end), or lost for good (a terminal error).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectionClosedError, consume, MsgIteratorClosedError } from "../../src/index.js";
import { NatsServer } from "../harness/index.js";
import { freshConsumer, publishN, until, v3, v3Consumer, within } from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});

describe("connection closed by the application", () => {
  it("nc.close() with messages buffered: the loop ends without throwing", async () => {
    const nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 50);
    const messages = await consume(await v3Consumer(nc, stream, consumer), { max_messages: 50 });
    await until(() => messages.getPending() === 50, 5000, "50 buffered");
    let n = 0;
    const loop = (async () => {
      for await (const m of messages) {
        m.ack();
        if (++n === 2) await nc.close();
      }
    })();
    await expect(within(loop, 5000, "loop")).resolves.toBeUndefined();
    expect(n).toBe(2);
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    // the buffered rest could not be acked or NAKed: dropped, and counted
    expect(messages.counters()).toMatchObject({
      received: 50,
      processed: 2,
      dropped: 48,
      pending: 0,
    });
    await expect(messages.next()).rejects.toBeInstanceOf(MsgIteratorClosedError);
  });

  it("nc.drain() with a busy buffer: the loop ends without throwing", async () => {
    const nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 300);
    const messages = await consume(await v3Consumer(nc, stream, consumer), { max_messages: 100 });
    let n = 0;
    const loop = (async () => {
      for await (const m of messages) {
        m.ack();
        if (++n === 10) void nc.drain();
        await new Promise((r) => setImmediate(r));
      }
    })();
    await expect(within(loop, 10_000, "loop")).resolves.toBeUndefined();
    expect(n).toBeGreaterThanOrEqual(10);
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    const c = messages.counters();
    expect(c.received).toBe(c.processed + c.naked + c.dropped);
    expect(c.pending).toBe(0);
  });
});

describe("connection lost for good", () => {
  it("server killed, no reconnect: the loop throws ConnectionClosedError; next() rejects with it as cause", async () => {
    const own = await NatsServer.start();
    try {
      const nc = await v3(own, { reconnect: false });
      const { stream, consumer, subject } = await freshConsumer(own);
      await publishN(own.url, subject, 5);
      const messages = await consume(await v3Consumer(nc, stream, consumer));
      let n = 0;
      // the handler is attached at once: the loop rejects while the test awaits the kill
      const loop = (async () => {
        for await (const m of messages) {
          m.ack();
          n++;
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => n === 5, 5000, "5 consumed");
      await own.kill();
      const err = await within(loop, 10_000, "loop");
      expect(err).toBeInstanceOf(ConnectionClosedError);
      const closed = await within(messages.closed(), 5000, "closed()");
      expect(closed).toBe(err);
      const next = await messages.next().catch((e: unknown) => e);
      expect(next).toBeInstanceOf(MsgIteratorClosedError);
      expect((next as MsgIteratorClosedError).cause).toBe(err);
    } finally {
      await own.dispose();
    }
  });
});
