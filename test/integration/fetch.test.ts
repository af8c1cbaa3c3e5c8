/**
 * fetchMessages() and nextMessage() of a durable pull consumer against a real nats-server: every
 * way a batch ends (complete, the server's 408, missed heartbeats, close/break/abort, a missing
 * consumer) and every fate of a message (handed out, NAKed back, never lost), and wrapConsumer().
 */

import type { ConsumerNotification } from "@nats-io/jetstream";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { NatsConnection as NatsConnectionV2 } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AbortError,
  ConsumerNotFoundError,
  fetchMessages,
  HeartbeatsMissedError,
  InvalidOptionError,
  Messages,
  nextMessage,
  wrapConsumer,
} from "../../src/index.js";
import { consumerInfo, NatsServer, publishN } from "../harness/index.js";
import { freshConsumer, until, v2, v3, v3Consumer, within } from "./fixture.js";

let server: NatsServer;
let nc: NatsConnection;
let nc2: NatsConnectionV2;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await v3(server);
  nc2 = await v2(server);
});

afterAll(async () => {
  await nc?.close();
  await nc2?.close();
  await server?.dispose();
});

async function fixture(count: number, config: Record<string, unknown> = {}) {
  const f = await freshConsumer(server, config);
  if (count > 0) await publishN(server.url, f.subject, count);
  return { ...f, c: await v3Consumer(nc, f.stream, f.consumer) };
}

describe("fetchMessages()", () => {
  it("a complete batch: max_messages received, the iterator ends at once without waiting for expires", async () => {
    const f = await fixture(25);
    const batch = await fetchMessages(f.c, { max_messages: 10, expires: 30_000 });
    const got: string[] = [];
    const t0 = Date.now();
    for await (const m of batch) {
      got.push(m.string());
      m.ack();
    }
    expect(got).toEqual(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    expect(Date.now() - t0).toBeLessThan(10_000); // not the 30 s expiry
    expect(await batch.closed()).toBeUndefined();
    await nc.flush();
    const ci = await consumerInfo(server.url, f.stream, f.consumer);
    expect(ci.num_pending).toBe(15);
    expect(ci.num_waiting).toBe(0);
  });

  it("a short batch ends at the server's 408; a message published late, within expires, is delivered", async () => {
    const f = await fixture(3);
    const batch = await fetchMessages(f.c, { max_messages: 10, expires: 2000 });
    const got: string[] = [];
    const late = (async () => {
      await until(() => got.length === 3, 5000, "the first three");
      await publishN(server.url, f.subject, 1, { payload: () => "late" });
    })();
    for await (const m of batch) {
      got.push(m.string());
      m.ack();
    }
    await late;
    expect(got).toEqual(["0", "1", "2", "late"]);
  });

  it("an empty stream: the batch ends empty at the server's 408, and status() ends with it", async () => {
    const f = await fixture(0);
    const batch = await fetchMessages(f.c, { max_messages: 5, expires: 1000 });
    const notes: ConsumerNotification[] = [];
    const watching = (async () => {
      for await (const n of batch.status()) notes.push(n);
    })();
    let n = 0;
    for await (const _m of batch) n++;
    expect(n).toBe(0);
    await within(watching, 2000, "status() ends with the batch");
    expect(batch.getReceived()).toBe(0);
  });

  it("max_bytes: the batch ends when the next message does not fit (409 Message Size Exceeds MaxBytes)", async () => {
    const f = await fixture(0);
    await publishN(server.url, f.subject, 10, { payload: () => "x".repeat(1024) });
    const batch = await fetchMessages(f.c, { max_messages: 100, max_bytes: 3000, expires: 5000 });
    let n = 0;
    for await (const m of batch) {
      n++;
      m.ack();
    }
    expect(n).toBe(2);
  });

  it("close() mid-batch NAKs what was not handed out: it is redelivered at once", async () => {
    const f = await fixture(10);
    const batch = await fetchMessages(f.c, { max_messages: 10, expires: 5000 });
    const first: string[] = [];
    for await (const m of batch) {
      first.push(m.string());
      m.ack();
      if (first.length === 3) await batch.close();
    }
    const c = batch.counters();
    expect(c.processed).toBe(3);
    expect(c.received).toBe(c.processed + c.naked + c.dropped);
    // the rest come back at once (NAK), not after ack_wait
    const rest = await fetchMessages(f.c, { max_messages: 7, expires: 5000 });
    const second: string[] = [];
    for await (const m of rest) {
      second.push(m.string());
      m.ack();
    }
    expect([...first, ...second].sort((a, b) => Number(a) - Number(b))).toEqual(
      Array.from({ length: 10 }, (_, i) => String(i)),
    );
  });

  it("drain() mid-batch hands out what the server already sent", async () => {
    const f = await fixture(10);
    const batch = await fetchMessages(f.c, { max_messages: 10, expires: 5000 });
    let n = 0;
    for await (const m of batch) {
      m.ack();
      if (++n === 1) await batch.drain();
    }
    expect(n).toBe(batch.getReceived());
    expect(batch.counters().naked).toBe(0);
  });

  it("missed heartbeats end the batch with HeartbeatsMissedError (server hung)", async () => {
    const own = await NatsServer.start();
    const conn = await v3(own, { maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    try {
      const f = await freshConsumer(own);
      const c = await v3Consumer(conn, f.stream, f.consumer);
      const batch = await fetchMessages(c, {
        max_messages: 5,
        expires: 10_000,
        idle_heartbeat: 500,
      });
      own.pause();
      const ended = (async () => {
        for await (const _m of batch) {
          // none
        }
      })();
      const err = await within(
        ended.then(
          () => undefined,
          (e: unknown) => e,
        ),
        10_000,
        "the batch ends",
      );
      expect(err).toBeInstanceOf(HeartbeatsMissedError);
      expect((err as Error).message).toMatch(/^heartbeats missed/);
      expect(await batch.closed()).toBeInstanceOf(HeartbeatsMissedError);
    } finally {
      own.resume();
      await conn.close();
      await own.dispose();
    }
  });

  it("a missing consumer ends the batch with ConsumerNotFoundError", async () => {
    const f = await fixture(0);
    const c = await v3Consumer(nc, f.stream, f.consumer);
    await c.delete();
    const batch = await fetchMessages(c, { max_messages: 5, expires: 5000 });
    await expect(
      (async () => {
        for await (const _m of batch) {
          // none
        }
      })(),
    ).rejects.toBeInstanceOf(ConsumerNotFoundError);
  });

  it("options are checked before any I/O: consume-only options are refused", async () => {
    const f = await fixture(0);
    await expect(fetchMessages(f.c, { threshold_messages: 5 } as never)).rejects.toBeInstanceOf(
      InvalidOptionError,
    );
    await expect(fetchMessages(f.c, { expires: 10 })).rejects.toThrow(/expires/);
  });

  it("v2: a v2 consumer's fetch has v2 message and status shapes", async () => {
    const f = await freshConsumer(server);
    await publishN(server.url, f.subject, 2);
    const c = await nc2.jetstream().consumers.get(f.stream, f.consumer);
    const batch = await fetchMessages(c, { max_messages: 2, expires: 2000 });
    const got: string[] = [];
    for await (const m of batch) {
      got.push(m.string());
      m.ack();
    }
    expect(got).toEqual(["0", "1"]);
  });
});

describe("nextMessage()", () => {
  it("one message, then null once the stream is empty (at expires)", async () => {
    const f = await fixture(1);
    const m = await nextMessage(f.c, { expires: 1000 });
    expect(m?.string()).toBe("0");
    m!.ack();
    expect(await nextMessage(f.c, { expires: 1000 })).toBeNull();
  });

  it("abort before a message: AbortError; a message published after the abort is not lost (NAKed back, next call gets it)", async () => {
    const f = await fixture(0, { ack_wait: 60_000_000_000 });
    const ac = new AbortController();
    const pending = nextMessage(f.c, { expires: 5000, signal: ac.signal });
    await until(
      async () => (await consumerInfo(server.url, f.stream, f.consumer)).num_waiting === 1,
      5000,
      "the pull is waiting",
    );
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    await publishN(server.url, f.subject, 1, { payload: () => "after" });
    // With ack_wait 60 s, only a NAK (or no delivery at all) makes it available within 5 s.
    const m = await nextMessage(f.c, { expires: 5000 });
    expect(m?.string()).toBe("after");
    m!.ack();
  });

  it("an already-aborted signal rejects before any I/O", async () => {
    const f = await fixture(1);
    await expect(nextMessage(f.c, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(
      AbortError,
    );
    const ci = await consumerInfo(server.url, f.stream, f.consumer);
    expect(ci.num_waiting).toBe(0);
  });

  it("a v2 consumer", async () => {
    const f = await freshConsumer(server);
    await publishN(server.url, f.subject, 1);
    const c = await nc2.jetstream().consumers.get(f.stream, f.consumer);
    const m = await nextMessage(c, { expires: 1000 });
    expect(m?.string()).toBe("0");
    m!.ack();
  });
});

describe("wrapConsumer()", () => {
  it("consume, fetch and next are ours; info() and the rest pass through to nats.js", async () => {
    const f = await fixture(3);
    const w = wrapConsumer(f.c);
    const info = await w.info();
    expect(info.name).toBe(f.consumer);
    const m = await w.next({ expires: 1000 });
    expect(m?.string()).toBe("0");
    m!.ack();
    const batch = await w.fetch({ max_messages: 1, expires: 1000 });
    expect(batch).toBeInstanceOf(Messages);
    for await (const x of batch) x.ack();
    const messages = await w.consume({ max_messages: 5 });
    expect(messages).toBeInstanceOf(Messages);
    for await (const x of messages) {
      x.ack();
      break;
    }
    expect(w.isPullConsumer()).toBe(true);
  });

  it("a wrapped ordered consumer shares the ordered state with the consumer it wraps", async () => {
    const f = await freshConsumer(server);
    await publishN(server.url, f.subject, 3);
    const oc = await jetstream(nc).consumers.get(f.stream);
    const w = wrapConsumer(oc);
    expect((await w.next({ expires: 1000 }))?.seq).toBe(1);
    expect((await nextMessage(oc, { expires: 1000 }))?.seq).toBe(2);
    expect((await w.next({ expires: 1000 }))?.seq).toBe(3);
  });
});
