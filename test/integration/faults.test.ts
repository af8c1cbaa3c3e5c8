/**
 * Faults against real servers (DESIGN.md §3 "Faults"): hostile inboxes, deleted consumers and
 * streams, server limits, a hung server, restarts under load, a connection lost for good.
 * Each test names its scenario.
 */
import type { ConsumerNotification } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { headers } from "@nats-io/nats-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConnectionClosedError,
  ConsumerDeletedError,
  consume,
  MsgIteratorClosedError,
  type Notification,
} from "../../src/index.js";
import { createConsumer, jsmOn, NatsServer } from "../harness/index.js";
import { freshConsumer, observePulls, publishN, until, v3, v3Consumer, within } from "./fixture.js";

let server: NatsServer;

beforeAll(async () => {
  // room for the 1 MiB hostile payload
  server = await NatsServer.start({ config: "max_payload: 2MB" });
});
afterAll(async () => {
  await server?.dispose();
});

/** Collects notifications until the iterator is done. */
function collect<N extends Notification | ConsumerNotification>(messages: {
  status(): AsyncIterable<N>;
}) {
  const seen: N[] = [];
  const done = (async () => {
    for await (const n of messages.status()) seen.push(n);
  })();
  return { seen, done };
}

describe("hostile inbox", () => {
  it("garbage published to the iterator's inbox is dropped with a debug notification; real messages still arrive exactly once", async () => {
    const nc = await v3(server);
    const evil = await v3(server);
    const observer = await observePulls(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      const messages = await consume(await v3Consumer(nc, stream, consumer), { max_messages: 10 });
      const notes = collect(messages);
      await until(() => observer.events.some((e) => e.kind === "pull"), 5000, "a pull request");
      const inbox = observer.events.find((e) => e.kind === "pull")?.reply;
      expect(inbox).toMatch(/^_INBOX\./);
      const to = inbox!;
      const hdr = (code: number, description: string, extra: Record<string, string> = {}) => {
        const h = headers(code, description);
        for (const [k, v] of Object.entries(extra)) h.set(k, v);
        return h;
      };
      evil.publish(to, "plain, no reply");
      evil.publish(to, "wrong reply", { reply: "some.other.subject" });
      // nats-server 2.9.10 does not forward a client's message whose reply subject starts with
      // $JS.ACK (observed), so malformed ack subjects are proven in test/unit (parseAckReply,
      // engine); here they must at least do no harm.
      evil.publish(to, "too few tokens", { reply: "$JS.ACK.a.b.c" });
      evil.publish(to, "non-numeric", { reply: `$JS.ACK.${stream}.${consumer}.x.y.z.w.v` });
      evil.publish(to, "another consumer", { reply: "$JS.ACK.OTHER.other.1.1.1.1.0" });
      evil.publish(to, "", { headers: hdr(499, "Who Knows") });
      evil.publish(to, "", { headers: hdr(409, "Something New") });
      evil.publish(to, "", {
        headers: hdr(100, "Idle Heartbeat", {
          "Nats-Last-Consumer": "abc",
          "Nats-Last-Stream": "-1",
        }),
      });
      evil.publish(to, new Uint8Array(0));
      evil.publish(to, new Uint8Array(1024 * 1024));
      await evil.flush();
      await publishN(server.url, subject, 50);
      const seqs: number[] = [];
      for await (const m of messages) {
        seqs.push(m.seq);
        m.ack();
        if (seqs.length === 50) await messages.drain();
      }
      await within(notes.done, 5000, "status end");
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      const debug = notes.seen.filter((n) => n.type === "debug").map((n) => n.description);
      // no reply (plain, empty, 1 MiB), a reply that is not $JS.ACK, two unknown statuses
      expect(debug.filter((d) => d.includes("no reply subject and no status"))).toHaveLength(3);
      expect(debug.filter((d) => d.includes("not $JS.ACK"))).toHaveLength(1);
      // server statuses' descriptions in lower case, as nats.js reports them
      expect(debug).toContain("who knows");
      expect(debug).toContain("something new");
      expect(notes.seen.some((n) => n.type === "heartbeat" && n.lastConsumerSequence === 0)).toBe(
        true,
      );
      expect(messages.counters()).toMatchObject({ received: 50, processed: 50, naked: 0 });
    } finally {
      await observer.close();
      await evil.close();
      await nc.close();
    }
  });
});

describe("consumer or stream deleted", () => {
  it("consumer deleted with abort_on_missing_resource: the loop ends with ConsumerDeletedError within a second", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 3);
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        abort_on_missing_resource: true,
      });
      let n = 0;
      const loop = (async () => {
        for await (const m of messages) {
          m.ack();
          n++;
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => n === 3, 5000, "3 consumed");
      const t0 = Date.now();
      await jsmOn(server.url, (jsm) => jsm.consumers.delete(stream, consumer));
      const err = await within(loop, 5000, "loop end");
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(err).toBeInstanceOf(ConsumerDeletedError);
      const next = await messages.next().catch((e: unknown) => e);
      expect(next).toBeInstanceOf(MsgIteratorClosedError);
      expect((next as Error).cause).toBe(err);
      expect(await messages.closed()).toBe(err);
    } finally {
      await nc.close();
    }
  });

  it("stream deleted with abort_on_missing_resource: the loop ends with an error within a second", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer } = await freshConsumer(server);
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        abort_on_missing_resource: true,
      });
      const loop = (async () => {
        for await (const m of messages) m.ack();
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      await nc.flush();
      const t0 = Date.now();
      await jsmOn(server.url, (jsm) => jsm.streams.delete(stream));
      const err = await within(loop, 5000, "loop end");
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(err).toBeInstanceOf(Error);
      expect(await messages.closed()).toBe(err);
    } finally {
      await nc.close();
    }
  });

  it("consumer deleted without abort_on_missing_resource: notified, and resumes within 2 x idle_heartbeat once recreated", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      const idle_heartbeat = 1000;
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        expires: 4000,
        idle_heartbeat,
      });
      const notes = collect(messages);
      await nc.flush();
      await jsmOn(server.url, (jsm) => jsm.consumers.delete(stream, consumer));
      await until(
        () => notes.seen.some((n) => n.type === "consumer_deleted"),
        5000,
        "consumer_deleted notification",
      );
      await createConsumer(server.url, stream, consumer);
      const t0 = Date.now();
      await publishN(server.url, subject, 1);
      const m = await within(messages.next(), 10_000, "a message after recreation");
      expect(Date.now() - t0).toBeLessThan(2 * idle_heartbeat);
      expect(m.seq).toBe(1);
      m.ack();
      await messages.close();
      await notes.done;
    } finally {
      await nc.close();
    }
  });
});

describe("server limits", () => {
  it("max_waiting 1 with two iterators on a backlog: 409 Exceeded MaxWaiting is notified and retried, both keep receiving", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server, { max_waiting: 1 });
      await publishN(server.url, subject, 2000);
      const c = await v3Consumer(nc, stream, consumer);
      const opts = { max_messages: 20, expires: 2000, idle_heartbeat: 1000 };
      const a = await consume(c, opts);
      const b = await consume(c, opts);
      const notesA = collect(a);
      const notesB = collect(b);
      const got = { a: 0, b: 0 };
      const halves: { a: number; b: number }[] = [];
      const run = async (it: typeof a, k: "a" | "b") => {
        for await (const m of it) {
          await new Promise((r) => setTimeout(r, 1)); // a body that takes a millisecond
          m.ack();
          got[k]++;
          if (got.a + got.b === 1000) halves.push({ ...got });
          if (got.a + got.b === 2000) halves.push({ ...got });
        }
      };
      const loops = Promise.all([run(a, "a"), run(b, "b")]);
      await until(() => got.a + got.b === 2000, 20_000, "the backlog consumed");
      await Promise.all([a.drain(), b.drain()]);
      await within(loops, 5000, "loops end");
      // each iterator received in the first half and in the second half of the backlog
      const [first, all] = halves as [{ a: number; b: number }, { a: number; b: number }];
      expect(first.a).toBeGreaterThan(0);
      expect(first.b).toBeGreaterThan(0);
      expect(all.a - first.a).toBeGreaterThan(0);
      expect(all.b - first.b).toBeGreaterThan(0);
      const limited = [...notesA.seen, ...notesB.seen].filter(
        (n) => n.type === "exceeded_limits" && /maxwaiting/i.test(n.description),
      );
      expect(limited.length).toBeGreaterThan(0);
      console.info(`max_waiting 1: a=${all.a} b=${all.b}, ${limited.length} x Exceeded MaxWaiting`);
    } finally {
      await nc.close();
    }
  }, 30_000);

  it("a message larger than max_bytes: exceeded_limits, and the iterator stays responsive", async () => {
    const nc = await v3(server);
    try {
      const { stream, consumer, subject } = await freshConsumer(server);
      await publishN(server.url, subject, 1, { payload: () => new Uint8Array(4096) });
      const messages = await consume(await v3Consumer(nc, stream, consumer), {
        max_bytes: 1024,
        expires: 2000,
        idle_heartbeat: 1000,
      });
      const notes = collect(messages);
      // It keeps retrying (with backoff; the backoff itself is proven with fake timers in
      // test/unit) instead of stalling until heartbeats are missed.
      await until(
        () => notes.seen.filter((n) => n.type === "exceeded_limits").length >= 3,
        10_000,
        "three exceeded_limits notifications",
      );
      expect(messages.state).toBe("open");
      await within(messages.drain(), 5000, "drain()");
      await within(messages.closed(), 5000, "closed()");
    } finally {
      await nc.close();
    }
  });
});

describe("connection lost for good", () => {
  it("maxReconnectAttempts 0 and the server killed: ConnectionClosedError as the loop's error, next()'s cause and closed()'s value", async () => {
    const own = await NatsServer.start();
    try {
      const nc: NatsConnection = await v3(own, { maxReconnectAttempts: 0 });
      const { stream, consumer, subject } = await freshConsumer(own);
      await publishN(own.url, subject, 3);
      const messages = await consume(await v3Consumer(nc, stream, consumer));
      let n = 0;
      const loop = (async () => {
        for await (const m of messages) {
          m.ack();
          n++;
        }
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      await until(() => n === 3, 5000, "3 consumed");
      await own.kill();
      const err = await within(loop, 10_000, "loop end");
      expect(err).toBeInstanceOf(ConnectionClosedError);
      expect(await within(messages.closed(), 5000, "closed()")).toBe(err);
      const next = await messages.next().catch((e: unknown) => e);
      expect(next).toBeInstanceOf(MsgIteratorClosedError);
      expect((next as Error).cause).toBe(err);
    } finally {
      await own.dispose();
    }
  });
});
