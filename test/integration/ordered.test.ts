/**
 * Ordered consumers against a real nats-server: every message of the stream once and in order
 * (stream sequences contiguous) across gaps, consumer deletions and server restarts; the same
 * shutdown and bound as the durable path; a later iterator of the same consumer continues after
 * the last message handed out.
 */

import type { ConsumerNotification } from "@nats-io/jetstream";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import type { NatsConnection as NatsConnectionV2 } from "nats";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  consume,
  fetchMessages,
  InvalidOptionError,
  nextMessage,
  OrderedConsumerError,
  StreamNotFoundError,
} from "../../src/index.js";
import { createStream, NatsServer, publishN } from "../harness/index.js";
import { until, v2, v3, within } from "./fixture.js";

let server: NatsServer;
let nc: NatsConnection;
let nc2: NatsConnectionV2;
let counter = 0;

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

/** A stream `O<n>` with `count` messages on `O<n>.x` (payload = index). */
async function stream(count: number): Promise<{ name: string; subject: string }> {
  const name = `O${++counter}_${process.pid}`;
  await createStream(server.url, name);
  if (count > 0) await publishN(server.url, `${name}.x`, count);
  return { name, subject: `${name}.x` };
}

/** The consumers of `name` that exist on the server. */
async function consumerNames(name: string): Promise<string[]> {
  const jsm = await jetstreamManager(nc);
  const out: string[] = [];
  for await (const ci of jsm.consumers.list(name)) out.push(ci.name);
  return out;
}

/** Stream sequences seen, checking order: each must be the previous one + 1. */
function orderChecker(first = 1) {
  const seqs: number[] = [];
  let expected = first;
  return {
    seqs,
    see(seq: number) {
      if (seq !== expected) throw new Error(`stream sequence ${seq}, expected ${expected}`);
      seqs.push(seq);
      expected++;
    },
  };
}

describe("ordered consume(), v3 and v2", () => {
  it("v3: consumers.get(stream) is consumed in order, every message once; drain ends it", async () => {
    const s = await stream(300);
    const oc = await jetstream(nc).consumers.get(s.name);
    const messages = await consume(oc, { max_messages: 50 });
    const order = orderChecker();
    for await (const m of messages) {
      order.see(m.seq);
      expect(m.string()).toBe(String(m.seq - 1));
      if (order.seqs.length === 300) await messages.drain();
    }
    expect(order.seqs).toHaveLength(300);
    expect(await messages.closed()).toBeUndefined();
  });

  it("v2: nc.jetstream().consumers.get(stream) is consumed in order; its consumer is created with ack none, memory storage, one replica", async () => {
    const s = await stream(120);
    const oc = await nc2.jetstream().consumers.get(s.name, { name_prefix: "v2ord" });
    const messages = await consume(oc, { max_messages: 25 });
    const order = orderChecker();
    for await (const m of messages) {
      order.see(m.seq);
      if (order.seqs.length === 120) break;
    }
    const names = await consumerNames(s.name);
    expect(names.some((n) => n.startsWith("v2ord"))).toBe(true);
    const jsm = await jetstreamManager(nc);
    const ci = await jsm.consumers.info(s.name, names.find((n) => n.startsWith("v2ord"))!);
    expect(ci.config).toMatchObject({
      ack_policy: "none",
      mem_storage: true,
      num_replicas: 1,
      max_deliver: 1,
    });
    expect(ci.config.durable_name).toBeUndefined();
  });

  it("the user's options reach the consumer: filter_subjects, deliver_policy, opt_start_seq, inactive_threshold, headers_only", async () => {
    const s = await stream(0);
    await publishN(server.url, `${s.name}.a`, 5);
    await publishN(server.url, `${s.name}.b`, 5);
    const oc = await jetstream(nc).consumers.get(s.name, {
      filter_subjects: `${s.name}.b`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: 8,
      inactive_threshold: 60_000,
      headers_only: true,
    });
    const messages = await consume(oc, { max_messages: 10 });
    const seen: number[] = [];
    for await (const m of messages) {
      seen.push(m.seq);
      expect(m.subject).toBe(`${s.name}.b`);
      expect(m.data.length).toBe(0); // headers only
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([8, 9, 10]);
  });

  it("deliver_policy new: a re-creation before the first message starts where the first consumer did, not at 'new' again", async () => {
    const s = await stream(10);
    const oc = await jetstream(nc).consumers.get(s.name, { deliver_policy: DeliverPolicy.New });
    const messages = await consume(oc, { max_messages: 10, expires: 2000 });
    const notes: ConsumerNotification[] = [];
    void (async () => {
      for await (const n of messages.status()) notes.push(n);
    })();
    // delete the first consumer, publish meanwhile: the new one must still deliver seq 11
    const [first] = await consumerNames(s.name);
    await (await jetstreamManager(nc)).consumers.delete(s.name, first!);
    await publishN(server.url, s.subject, 3);
    const seen: number[] = [];
    for await (const m of messages) {
      seen.push(m.seq);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual([11, 12, 13]);
    expect(notes.some((n) => n.type === "ordered_consumer_recreated")).toBe(true);
  });

  it("bind is refused before any I/O; a second consume() at once is refused", async () => {
    const s = await stream(1);
    const oc = await jetstream(nc).consumers.get(s.name);
    await expect(consume(oc, { bind: true })).rejects.toBeInstanceOf(InvalidOptionError);
    const messages = await consume(oc);
    await expect(consume(oc)).rejects.toThrow(/already being consumed/);
    await messages.close();
    await messages.closed();
    // once done, the consumer may be consumed again
    const again = await consume(oc);
    await again.close();
  });
});

describe("ordered consume() recovers by re-creating from the next stream sequence", () => {
  it("10,000 messages in order, no gap, no duplicate, across 3 SIGKILL restarts and 1 deletion of the underlying consumer", async () => {
    const own = await NatsServer.start();
    const conn = await v3(own, { maxReconnectAttempts: -1, reconnectTimeWait: 50 });
    try {
      const name = `OK_${process.pid}`;
      await createStream(own.url, name);
      await publishN(own.url, `${name}.x`, 10_000, { window: 1000 });
      const oc = await jetstream(conn).consumers.get(name);
      const max_messages = 200;
      const messages = await consume(oc, { max_messages, expires: 5000, idle_heartbeat: 1000 });
      const notes: ConsumerNotification[] = [];
      void (async () => {
        for await (const n of messages.status()) notes.push(n);
      })();
      const order = orderChecker();
      const faults: Record<number, () => Promise<void>> = {
        2000: async () => {
          await own.kill();
          await own.restart();
        },
        4000: async () => {
          await own.kill();
          await own.restart();
        },
        6000: async () => {
          await own.kill();
          await own.restart();
        },
        8000: async () => {
          const jsm = await jetstreamManager(conn);
          for await (const ci of jsm.consumers.list(name))
            await jsm.consumers.delete(name, ci.name);
        },
      };
      let maxPending = 0;
      for await (const m of messages) {
        order.see(m.seq);
        maxPending = Math.max(maxPending, messages.getPending());
        const fault = faults[order.seqs.length];
        if (fault) await fault();
        if (order.seqs.length === 10_000) break;
      }
      expect(order.seqs).toHaveLength(10_000);
      expect(maxPending).toBeLessThanOrEqual(max_messages);
      // each restart and the deletion re-created the consumer at least once
      const recreated = notes.filter((n) => n.type === "ordered_consumer_recreated").length;
      expect(recreated).toBeGreaterThanOrEqual(4);
      const c = messages.counters();
      expect(c.received).toBe(c.processed + c.naked + c.dropped + c.pending);
    } finally {
      await conn.close();
      await own.dispose();
    }
  }, 120_000);

  it("a deleted consumer mid-stream is re-created; a consumer left behind is deleted", async () => {
    const s = await stream(100);
    const oc = await jetstream(nc).consumers.get(s.name, { name_prefix: "del" });
    // Deleted while no request is open, the server says nothing (a pull to a missing consumer
    // is never answered): the second missed heartbeat finds it, so keep the interval short.
    const messages = await consume(oc, { max_messages: 10, expires: 4000, idle_heartbeat: 500 });
    const order = orderChecker();
    for await (const m of messages) {
      order.see(m.seq);
      if (order.seqs.length === 35) {
        const jsm = await jetstreamManager(nc);
        for (const n of await consumerNames(s.name)) await jsm.consumers.delete(s.name, n);
      }
      if (order.seqs.length === 100) break;
    }
    expect(order.seqs).toHaveLength(100);
    // break discarded a buffer? no: it was empty (the stream has 100); only the live one is left
    await until(async () => (await consumerNames(s.name)).length <= 1, 5000, "old consumers gone");
  });
});

describe("ordered consume() recovers: deletions", () => {
  it("a consumer deleted under a waiting pull is re-created at once (default heartbeats)", async () => {
    const s = await stream(2);
    const oc = await jetstream(nc).consumers.get(s.name);
    const messages = await consume(oc); // idle_heartbeat 15 s: waiting it out would take 30 s
    const seen: number[] = [];
    const loop = (async () => {
      for await (const m of messages) {
        seen.push(m.seq);
        if (seen.length === 4) break;
      }
    })();
    await until(() => seen.length === 2, 5000, "the first two");
    const jsm = await jetstreamManager(nc);
    for (const n of await consumerNames(s.name)) await jsm.consumers.delete(s.name, n);
    await publishN(server.url, s.subject, 2);
    await within(loop, 5000, "the two published after the deletion");
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it("abort_on_missing_resource: a deleted consumer is re-created, a deleted stream ends the loop with StreamNotFoundError", async () => {
    const s = await stream(2);
    const oc = await jetstream(nc).consumers.get(s.name);
    const messages = await consume(oc, { abort_on_missing_resource: true });
    const seen: number[] = [];
    const loop = (async () => {
      for await (const m of messages) seen.push(m.seq);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    await until(() => seen.length === 2, 5000, "the first two");
    const jsm = await jetstreamManager(nc);
    for (const n of await consumerNames(s.name)) await jsm.consumers.delete(s.name, n);
    await publishN(server.url, s.subject, 1);
    await until(() => seen.length === 3, 5000, "the one published after the deletion");
    await jsm.streams.delete(s.name);
    const err = await within(loop, 10_000, "the loop ends");
    expect(err).toBeInstanceOf(StreamNotFoundError);
    expect(seen).toEqual([1, 2, 3]);
  });
});

describe("ordered: shutdown and the bound", () => {
  it("drain() mid-stream hands out the buffer; the next consume() continues after it", async () => {
    const s = await stream(200);
    const oc = await jetstream(nc).consumers.get(s.name);
    const order = orderChecker();
    const first = await consume(oc, { max_messages: 30 });
    for await (const m of first) {
      order.see(m.seq);
      if (order.seqs.length === 40) void first.drain();
    }
    expect(order.seqs.length).toBeGreaterThanOrEqual(40);
    const second = await consume(oc, { max_messages: 30 });
    for await (const m of second) {
      order.see(m.seq);
      if (order.seqs.length === 200) break;
    }
    expect(order.seqs).toHaveLength(200);
  });

  it("close() and break mid-stream discard the buffer; the next consume() starts after the last message handed out", async () => {
    const s = await stream(150);
    const oc = await jetstream(nc).consumers.get(s.name);
    const order = orderChecker();
    const a = await consume(oc, { max_messages: 40 });
    for await (const m of a) {
      order.see(m.seq);
      if (order.seqs.length === 10) await a.close();
    }
    expect(a.counters().naked).toBeGreaterThan(0); // a buffer was discarded
    const b = await consume(oc, { max_messages: 40 });
    for await (const m of b) {
      order.see(m.seq);
      if (order.seqs.length === 70) break;
    }
    await b.closed();
    const c = await consume(oc, { max_messages: 40 });
    for await (const m of c) {
      order.see(m.seq);
      if (order.seqs.length === 150) break;
    }
    expect(order.seqs).toHaveLength(150);
  });

  it("a slow loop body keeps the buffer within max_messages", async () => {
    const s = await stream(400);
    const oc = await jetstream(nc).consumers.get(s.name);
    const max_messages = 20;
    const messages = await consume(oc, { max_messages });
    let n = 0;
    let maxPending = 0;
    for await (const _m of messages) {
      maxPending = Math.max(maxPending, messages.getPending());
      if (++n % 50 === 0) await new Promise((r) => setTimeout(r, 50)); // let pulls land
      if (n === 400) break;
    }
    expect(maxPending).toBeGreaterThan(0);
    expect(maxPending).toBeLessThanOrEqual(max_messages);
  });

  it("the connection closing ends the loop; closed() resolves and the consumer is released", async () => {
    const s = await stream(50);
    const conn = await v3(server);
    const oc = await jetstream(conn).consumers.get(s.name);
    const messages = await consume(oc, { max_messages: 10 });
    let n = 0;
    const loop = (async () => {
      for await (const _m of messages) {
        if (++n === 5) await conn.close();
      }
    })();
    await within(loop, 5000, "loop end");
    await within(messages.closed(), 5000, "closed()");
  });
});

describe("ordered fetch and next", () => {
  it("nextMessage() in a row yields the stream in order, on one server consumer", async () => {
    const s = await stream(5);
    const oc = await jetstream(nc).consumers.get(s.name);
    const seqs: number[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await nextMessage(oc, { expires: 1000 });
      seqs.push(m!.seq);
    }
    expect(seqs).toEqual([1, 2, 3, 4, 5]);
    expect(await nextMessage(oc, { expires: 1000 })).toBeNull();
    expect(await consumerNames(s.name)).toHaveLength(1);
  });

  it("fetchMessages() batches continue where the last one ended", async () => {
    const s = await stream(25);
    const oc = await nc2.jetstream().consumers.get(s.name);
    const order = orderChecker();
    for (let i = 0; i < 3; i++) {
      const batch = await fetchMessages(oc, { max_messages: 10, expires: 1000 });
      for await (const m of batch) order.see(m.seq);
    }
    expect(order.seqs).toHaveLength(25);
  });
});

describe("ordered: where the next iterator starts, and when it may", () => {
  it("a consumer re-created after the buffer filled, then close(): the next consume() starts at the first message not handed out", async () => {
    const s = await stream(5);
    const oc = await jetstream(nc).consumers.get(s.name);
    const a = await consume(oc, { max_messages: 10, expires: 10_000 });
    const notes: ConsumerNotification[] = [];
    void (async () => {
      for await (const n of a.status()) notes.push(n);
    })();
    await until(() => a.getPending() === 5, 5000, "5 buffered");
    const jsm = await jetstreamManager(nc);
    for (const n of await consumerNames(s.name)) await jsm.consumers.delete(s.name, n);
    await until(
      () => notes.some((n) => n.type === "ordered_consumer_recreated"),
      5000,
      "re-created",
    );
    await a.close();
    await a.closed();
    const b = await consume(oc, { max_messages: 10 });
    const first = await within(b.next(), 5000, "b's first message");
    await b.close();
    expect(first.seq).toBe(1);
  });

  it("deliver_policy new, nothing handed out, close(): the next consume() starts where the chain started", async () => {
    const s = await stream(10);
    const oc = await jetstream(nc).consumers.get(s.name, { deliver_policy: DeliverPolicy.New });
    await publishN(server.url, s.subject, 5);
    const a = await consume(oc, { max_messages: 10, expires: 5000 });
    await until(() => a.getPending() === 5, 5000, "5 buffered");
    await a.close();
    await a.closed();
    await publishN(server.url, s.subject, 3);
    const b = await consume(oc, { max_messages: 10 });
    const first = await within(b.next(), 5000, "b's first message");
    await b.close();
    expect(first.seq).toBe(11);
  });

  it("a fetch ended by the server's 408 with the loop waiting, then another fetch at once: not refused, no gap", async () => {
    const s = await stream(3);
    const oc = await jetstream(nc).consumers.get(s.name);
    const seen: number[] = [];
    const a = await fetchMessages(oc, { max_messages: 10, expires: 1000 });
    for await (const m of a) seen.push(m.seq);
    await publishN(server.url, s.subject, 1);
    const b = await fetchMessages(oc, { max_messages: 10, expires: 1000 });
    for await (const m of b) seen.push(m.seq);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it("drain() while the loop waits, the loop ends, consume() at once: not refused", async () => {
    const s = await stream(3);
    const oc = await jetstream(nc).consumers.get(s.name);
    const a = await consume(oc, { max_messages: 10 });
    let n = 0;
    for await (const _m of a) {
      if (++n === 3) setTimeout(() => void a.drain(), 100); // the loop is waiting when it lands
    }
    expect(n).toBe(3);
    const again = await consume(oc);
    await again.close();
  });

  it("nextMessage() rejected by a terminal error, then again at once: the same error, not 'already being consumed'", async () => {
    const s = await stream(0);
    const oc = await jetstream(nc).consumers.get(s.name);
    await (await jetstreamManager(nc)).streams.delete(s.name);
    const e1 = await nextMessage(oc, { expires: 1000 }).catch((e: unknown) => e);
    const e2 = await nextMessage(oc, { expires: 1000 }).catch((e: unknown) => e);
    expect(e1).toBeInstanceOf(StreamNotFoundError);
    expect(e2).toBeInstanceOf(StreamNotFoundError);
  });

  it("a config the server refuses (v2 filter matching no subject of the stream): nextMessage() rejects OrderedConsumerError, no hang", async () => {
    const s = await stream(3);
    const oc = await nc2.jetstream().consumers.get(s.name, { filterSubjects: "nomatch.>" });
    const err = await within(
      nextMessage(oc, { expires: 1000 }).catch((e: unknown) => e),
      8000,
      "nextMessage settles",
    );
    expect(err).toBeInstanceOf(OrderedConsumerError);
  });

  it("the stream at max_consumers: an ordered fetch ends with OrderedConsumerError, no hang", async () => {
    const name = `OM${++counter}_${process.pid}`;
    await createStream(server.url, name, { max_consumers: 1 });
    await publishN(server.url, `${name}.x`, 3);
    const jsm = await jetstreamManager(nc);
    await jsm.consumers.add(name, { durable_name: "d", ack_policy: AckPolicy.Explicit });
    const oc = await nc2.jetstream().consumers.get(name);
    const batch = await fetchMessages(oc, { max_messages: 2, expires: 1000 });
    expect(await within(batch.closed(), 8000, "the fetch ends")).toBeInstanceOf(
      OrderedConsumerError,
    );
  });
});
