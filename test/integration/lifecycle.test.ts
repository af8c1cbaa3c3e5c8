/**
 * The lifecycle contract (DESIGN.md §3) against a real nats-server: drain, stop, close, break,
 * abort, next({ signal, timeout }). Each test is named after the ordering it exercises.
 */
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  consume,
  isAbortError,
  MsgIteratorClosedError,
  NextTimeoutError,
  pullMessages,
} from "../../src/index.js";
import { consumerInfo, NatsServer } from "../harness/index.js";
import { freshConsumer, observePulls, publishN, until, v3, v3Consumer, within } from "./fixture.js";

let server: NatsServer;
let nc: NatsConnection;

beforeAll(async () => {
  server = await NatsServer.start();
});
afterAll(async () => {
  await server?.dispose();
});
afterEach(async () => {
  await nc?.close();
});

describe("drain", () => {
  it("next() blocked on an empty stream, then drain(): next() rejects MsgIteratorClosedError", async () => {
    nc = await v3(server);
    const { stream, consumer } = await freshConsumer(server);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    const pending = messages.next();
    const drained = messages.drain();
    await expect(within(pending, 5000, "next()")).rejects.toBeInstanceOf(MsgIteratorClosedError);
    await within(drained, 5000, "drain()");
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    expect(messages.state).toBe("done");
  });

  it("for await blocked on an empty stream, then drain(): the loop ends without throwing", async () => {
    nc = await v3(server);
    const { stream, consumer } = await freshConsumer(server);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    const loop = (async () => {
      let n = 0;
      for await (const _m of messages) n++;
      return n;
    })();
    // The loop is parked on the channel; let the first pull go out, then drain.
    await nc.flush();
    await messages.drain();
    expect(await within(loop, 5000, "for await loop")).toBe(0);
  });

  it("drain after 20 of 1000 buffered (max_messages 500, slow body): everything received is yielded, then all acked", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 1000);
    const messages = await consume(await v3Consumer(nc, stream, consumer), { max_messages: 500 });
    const seen = new Set<number>();
    let receivedAtDrain = -1;
    for await (const m of messages) {
      expect(seen.has(m.seq)).toBe(false);
      seen.add(m.seq);
      await new Promise((r) => setImmediate(r)); // a body that yields to the event loop
      m.ack();
      if (seen.size === 20) {
        await messages.drain();
        receivedAtDrain = messages.getReceived();
      }
    }
    // drain() resolved after the fence: nothing more can arrive afterwards.
    expect(receivedAtDrain).toBeGreaterThanOrEqual(20);
    expect(messages.getReceived()).toBe(receivedAtDrain);
    expect(seen.size).toBe(receivedAtDrain);
    expect(messages.counters()).toMatchObject({ naked: 0, dropped: 0, pending: 0 });
    expect(receivedAtDrain).toBeLessThanOrEqual(500);
    await nc.flush();
    await until(
      async () => (await consumerInfo(server.url, stream, consumer)).num_ack_pending === 0,
      10_000,
      "num_ack_pending 0",
    );
    const ci = await consumerInfo(server.url, stream, consumer);
    expect(ci.delivered.consumer_seq).toBe(receivedAtDrain);
  });
});

describe("no pull request after the iterator leaves open", () => {
  for (const how of ["drain", "stop", "close"] as const) {
    it(`${how}() with a buffer being consumed: no pull is published after it`, async () => {
      nc = await v3(server);
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 200);
      const observer = await observePulls(server);
      try {
        const messages = await consume(await v3Consumer(nc, stream, consumer), {
          max_messages: 10,
        });
        let n = 0;
        for await (const m of messages) {
          m.ack();
          if (++n === 3) {
            // The marker and any pull after it leave on the same connection, in order.
            nc.publish("marker.x");
            if (how === "drain") await messages.drain();
            else if (how === "stop") messages.stop();
            else await messages.close();
          }
        }
        // taking the rest of the buffer lowered what is held below the threshold, repeatedly
        if (how === "close") expect(n).toBe(3);
        else expect(n).toBeGreaterThan(3);
        await nc.flush();
        await observer.flush();
        expect(observer.events.filter((e) => e.kind === "pull").length).toBeGreaterThan(0);
        expect(observer.pullsAfterMarker()).toBe(0);
      } finally {
        await observer.close();
      }
    });
  }
});

describe("close", () => {
  it("close() awaited inside the loop body resolves, and closed() too", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    await publishN(server.url, subject, 5);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    let closeResult: unknown = "unset";
    for await (const m of messages) {
      m.ack();
      closeResult = await within(messages.close(), 5000, "close() inside the loop");
    }
    expect(closeResult).toBeUndefined();
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
  });

  it("close() on a never-iterated Messages resolves, and closed() too", async () => {
    nc = await v3(server);
    const { stream, consumer } = await freshConsumer(server);
    const messages = await consume(await v3Consumer(nc, stream, consumer));
    expect(await within(messages.close(), 5000, "close()")).toBeUndefined();
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    await expect(messages.next()).rejects.toBeInstanceOf(MsgIteratorClosedError);
  });

  it("break after message 1 of a 10-message buffer: the other 9 are redelivered at once", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server, { ack_wait: 60_000_000_000 });
    await publishN(server.url, subject, 10);
    const c = await v3Consumer(nc, stream, consumer);
    const messages = await consume(c, { max_messages: 10 });
    // wait until the whole batch is buffered
    await until(() => messages.getReceived() === 10, 5000, "10 buffered");
    for await (const m of messages) {
      m.ack();
      break;
    }
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    expect(messages.counters()).toMatchObject({ received: 10, processed: 1, naked: 9, pending: 0 });

    // ack_wait is 60 s: only a NAK makes them come back within the deadline.
    const again = await consume(c, { max_messages: 10 });
    const redelivered: JsMsg[] = [];
    for await (const m of again) {
      redelivered.push(m);
      m.ack();
      if (redelivered.length === 9) break;
    }
    expect(redelivered.map((m) => m.info.deliveryCount)).toEqual(Array(9).fill(2));
    expect(redelivered.map((m) => m.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
  }, 20_000);
});

describe("next({ signal, timeout })", () => {
  it("abort while waiting rejects AbortError and loses nothing: the next call gets the next message", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    const messages = pullMessages(nc, stream, consumer);
    const ac = new AbortController();
    const first = messages.next({ signal: ac.signal });
    await nc.flush();
    ac.abort();
    const err = await first.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isAbortError(err)).toBe(true);
    expect(messages.state).toBe("open");
    await publishN(server.url, subject, 1);
    const m = await within(messages.next(), 5000, "next() after abort");
    expect(m.seq).toBe(1);
    expect(messages.counters()).toMatchObject({ received: 1, processed: 1 });
    await messages.close();
  });

  it("timeout rejects NextTimeoutError and leaves the iterator open", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server);
    const messages = pullMessages(nc, stream, consumer);
    await expect(messages.next({ timeout: 100 })).rejects.toBeInstanceOf(NextTimeoutError);
    expect(messages.state).toBe("open");
    await publishN(server.url, subject, 1);
    const m = await within(messages.next({ timeout: 5000 }), 6000, "next()");
    expect(m.string()).toBe("0");
    await messages.close();
  });
});

describe("consume(c, { signal })", () => {
  it("abort mid-loop behaves as close(): the loop ends, the buffer is NAKed, closed() resolves", async () => {
    nc = await v3(server);
    const { stream, consumer, subject } = await freshConsumer(server, { ack_wait: 60_000_000_000 });
    await publishN(server.url, subject, 10);
    const ac = new AbortController();
    const c = await v3Consumer(nc, stream, consumer);
    const messages = await consume(c, { max_messages: 10, signal: ac.signal });
    await until(() => messages.getReceived() === 10, 5000, "10 buffered");
    let n = 0;
    for await (const m of messages) {
      m.ack();
      if (++n === 2) ac.abort();
    }
    expect(n).toBe(2);
    expect(await within(messages.closed(), 5000, "closed()")).toBeUndefined();
    expect(messages.counters()).toMatchObject({ received: 10, processed: 2, naked: 8, pending: 0 });
    const again = await consume(c, { max_messages: 10 });
    const m = await within(again.next(), 5000, "redelivery");
    expect(m.info.deliveryCount).toBe(2);
    await again.close();
  });
});
