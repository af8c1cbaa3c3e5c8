/**
 * The fake server model (test/unit/fake-nc.ts, `nc.jetstream()`) against a real nats-server:
 * each scenario is written once against a small {@link Driver} and run twice, on a real server
 * (a raw @nats-io/transport-node connection publishing pull requests itself) and on the fake
 * with its manual clock. The traces must be identical; where they differ the real server is
 * right and the fake is wrong.
 *
 * Trace: per subscription, in arrival order, each data message (stream sequence, consumer
 * sequence, delivery count, size as nats.js counts it; `pending` only where it is
 * deterministic) and each status (code, description lower-cased, Nats-Pending-Messages,
 * Nats-Pending-Bytes, Nats-Last-Consumer, Nats-Last-Stream, and the request it names). Inbox
 * names and timestamps are normalised away.
 *
 * Timing: requests expire in 400–1300 ms; a scenario ends on an event (usually the 408 of the
 * request that expires last, which proves that no earlier request still had something to say),
 * waited for with a deadline. Deadlines and heartbeats are at least 200 ms apart, so a loaded
 * machine does not change the order of what the real server does.
 */
import { jetstream } from "@nats-io/jetstream";
import type { Msg, NatsConnection, Subscription } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HeadersLike } from "../../src/connection.js";
import { createConsumer, createStream, NatsServer } from "../harness/index.js";
import { FakeNatsConnection, type FakeSubscription, settle } from "../unit/fake-nc.js";

const MS = 1_000_000;
const enc = new TextEncoder();

/** Consumer limits a scenario sets (consumer config on the server, options of the fake). */
interface Limits {
  maxWaiting?: number;
  maxRequestBatch?: number;
  /** ms */
  maxRequestExpires?: number;
  maxRequestMaxBytes?: number;
  maxAckPending?: number;
  /** ms */
  ackWait?: number;
}

/** One message as a subscription callback sees it (nats.js v3 `Msg` or the fake's). */
interface Seen {
  readonly subject: string;
  readonly reply?: string | undefined;
  readonly headers?: HeadersLike | undefined;
  size?(): number;
}

/** Per subscription name: the events, in arrival order. */
type Trace = Record<string, string[]>;

/** What a scenario can do, on either server. Names are logical subjects under a private inbox. */
interface Driver {
  /** The stream (messages are published to `<stream>.x`). */
  readonly stream: string;
  readonly trace: Trace;
  /** Subscribes `<inbox>.<name>` (`name` may end in a wildcard); its messages go to trace[name]. */
  subscribe(name: string): Promise<void>;
  unsubscribe(name: string): Promise<void>;
  /** Publishes a pull request replying to `<inbox>.<reply>`; `body` JSON-encoded unless a string. */
  pull(reply: string, body: Record<string, unknown> | string): Promise<void>;
  /** Publishes messages to the stream, one after another: a count (payload "xx") or payloads. */
  publish(what: number | string[]): Promise<void>;
  /** Publishes `payload` to the ack subject of the last delivery of stream sequence `seq`. */
  ack(seq: number, payload: string): Promise<void>;
  /** Lets time pass (real or fake) until `cond` holds; fails after `ms`. */
  until(cond: () => boolean, ms: number, what: string): Promise<void>;
  /**
   * Lets `ms` pass. Never a condition: only for letting the server's consumer goroutine finish
   * the sweep it runs asynchronously after a request or a delivery, before interest changes.
   */
  pause(ms: number): Promise<void>;
}

interface Scenario {
  readonly name: string;
  readonly limits?: Limits;
  /** The `pending` token of ack subjects is deterministic here (messages stored before pulls). */
  readonly comparePending?: boolean;
  run(d: Driver): Promise<void>;
  /** What 2.9.10 did (sizes left out): a statement of fact, checked on the real server. */
  readonly expected?: Trace;
}

// ── the trace ────────────────────────────────────────────────────────────────────────────────

function record(
  trace: Trace,
  name: string,
  inbox: string,
  m: Seen,
  replies: Map<number, string>,
  comparePending: boolean,
): void {
  const events = trace[name] ?? [];
  trace[name] = events;
  const h = m.headers;
  const code = h?.code ?? 0;
  if (!m.reply && h && code > 0) {
    const parts = [`${code} ${(h.description ?? "").toLowerCase()}`];
    for (const [k, short] of [
      ["Nats-Pending-Messages", "pm"],
      ["Nats-Pending-Bytes", "pb"],
      ["Nats-Last-Consumer", "lc"],
      ["Nats-Last-Stream", "ls"],
    ] as const) {
      const v = h.get(k);
      if (v !== "") parts.push(`${short}=${v}`);
    }
    parts.push(
      `@${m.subject.startsWith(`${inbox}.`) ? m.subject.slice(inbox.length + 1) : m.subject}`,
    );
    events.push(parts.join(" "));
    return;
  }
  if (!m.reply?.startsWith("$JS.ACK.")) {
    events.push(`other ${m.subject}`);
    return;
  }
  // $JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending> (2.9.10: 9 tokens)
  const t = m.reply.split(".");
  const [dc, sseq, dseq, , pending] = t.slice(-5);
  replies.set(Number(sseq), m.reply);
  const size = typeof m.size === "function" ? m.size() : -1;
  events.push(
    `#${sseq} dseq=${dseq} dc=${dc} size=${size}${comparePending ? ` pending=${pending}` : ""}`,
  );
}

function has(trace: Trace, name: string, prefix: string, count = 1): boolean {
  return (trace[name] ?? []).filter((e) => e.startsWith(prefix)).length >= count;
}

function total(trace: Trace, prefix: string): number {
  return Object.values(trace)
    .flat()
    .filter((e) => e.startsWith(prefix)).length;
}

/** The expiry deadline in nanoseconds. */
const exp = (ms: number) => ms * MS;

// ── the real server ──────────────────────────────────────────────────────────────────────────

let server: NatsServer;
let streams = 0;

async function realDriver(
  scenario: Scenario,
): Promise<{ driver: Driver; close: () => Promise<void> }> {
  const stream = `DIFF${++streams}`;
  const l = scenario.limits ?? {};
  await createStream(server.url, stream);
  await createConsumer(server.url, stream, "c", {
    ...(l.maxWaiting !== undefined ? { max_waiting: l.maxWaiting } : {}),
    ...(l.maxRequestBatch !== undefined ? { max_batch: l.maxRequestBatch } : {}),
    ...(l.maxRequestExpires !== undefined ? { max_expires: l.maxRequestExpires * MS } : {}),
    ...(l.maxRequestMaxBytes !== undefined ? { max_bytes: l.maxRequestMaxBytes } : {}),
    ...(l.maxAckPending !== undefined ? { max_ack_pending: l.maxAckPending } : {}),
    ...(l.ackWait !== undefined ? { ack_wait: l.ackWait * MS } : {}),
  });
  const nc: NatsConnection = await connect({ servers: server.url });
  const js = jetstream(nc);
  const inbox = `_INBOX.${nc.info?.client_id ?? 0}_${stream}`;
  const trace: Trace = {};
  const replies = new Map<number, string>();
  const subs = new Map<string, Subscription>();
  const driver: Driver = {
    stream,
    trace,
    async subscribe(name) {
      subs.set(
        name,
        nc.subscribe(`${inbox}.${name}`, {
          callback: (_err, m: Msg) =>
            record(trace, name, inbox, m as Seen, replies, scenario.comparePending === true),
        }),
      );
      await nc.flush();
    },
    async unsubscribe(name) {
      subs.get(name)?.unsubscribe();
      subs.delete(name);
      await nc.flush();
    },
    async pull(reply, body) {
      const payload = typeof body === "string" ? body : JSON.stringify(body);
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.c`, payload, { reply: `${inbox}.${reply}` });
      await nc.flush();
    },
    async publish(what) {
      const payloads = typeof what === "number" ? Array<string>(what).fill("xx") : what;
      for (const p of payloads) await js.publish(`${stream}.x`, p);
    },
    async ack(seq, payload) {
      const reply = replies.get(seq);
      if (!reply) throw new Error(`no delivery of #${seq} to ack`);
      nc.publish(reply, payload);
      await nc.flush();
    },
    async until(cond, ms, what) {
      const deadline = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > deadline) {
          throw new Error(`real server: no ${what} within ${ms} ms: ${JSON.stringify(trace)}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async pause(ms) {
      await new Promise((r) => setTimeout(r, ms));
    },
  };
  return { driver, close: () => nc.close() };
}

// ── the fake ─────────────────────────────────────────────────────────────────────────────────

function fakeDriver(scenario: Scenario, stream: string): Driver {
  const l = scenario.limits ?? {};
  const nc = new FakeNatsConnection();
  const js = nc.jetstream({
    stream,
    consumer: "c",
    subject: `${stream}.x`,
    clock: "manual",
    ...l,
  });
  const inbox = "_INBOX.fake";
  const trace: Trace = {};
  const replies = new Map<number, string>();
  const subs = new Map<string, FakeSubscription>();
  return {
    stream,
    trace,
    async subscribe(name) {
      const sub = nc.subscribe(`${inbox}.${name}`, {
        callback: (_err, m) =>
          record(trace, name, inbox, m, replies, scenario.comparePending === true),
      });
      subs.set(name, sub as FakeSubscription);
      await settle();
    },
    async unsubscribe(name) {
      subs.get(name)?.unsubscribe();
      subs.delete(name);
      await settle();
    },
    async pull(reply, body) {
      const payload = typeof body === "string" ? body : JSON.stringify(body);
      nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${stream}.c`, enc.encode(payload), {
        reply: `${inbox}.${reply}`,
      });
      await settle();
    },
    async publish(what) {
      js.publish(typeof what === "number" ? Array<string>(what).fill("xx") : what);
      await settle();
    },
    async ack(seq, payload) {
      const reply = replies.get(seq);
      if (!reply) throw new Error(`no delivery of #${seq} to ack`);
      nc.publish(reply, enc.encode(payload));
      await settle();
    },
    async until(cond, ms, what) {
      for (let waited = 0; !cond(); waited += 10) {
        if (waited > ms) {
          throw new Error(`fake: no ${what} within ${ms} ms: ${JSON.stringify(trace)}`);
        }
        js.advance(10);
        await settle();
      }
    },
    async pause(ms) {
      js.advance(ms);
      await settle();
    },
  };
}

// ── scenarios ────────────────────────────────────────────────────────────────────────────────

const DEADLINE = 3_000;

const scenarios: Scenario[] = [
  {
    name: "A (batch 5) and B (batch 2) waiting, 6 messages: served round robin, not FIFO",
    async run(d) {
      await d.subscribe("A");
      await d.subscribe("B");
      await d.pull("A", { batch: 5, expires: exp(1000) });
      await d.pull("B", { batch: 2, expires: exp(700) });
      await d.publish(6);
      await d.until(() => has(d.trace, "A", "408"), DEADLINE, "408 for A");
    },
    expected: {
      A: [
        "#1 dseq=1 dc=1",
        "#3 dseq=3 dc=1",
        "#5 dseq=5 dc=1",
        "#6 dseq=6 dc=1",
        "408 request timeout pm=1 pb=0 @A",
      ],
      B: ["#2 dseq=2 dc=1", "#4 dseq=4 dc=1"],
    },
  },
  {
    name: "three requests (batch 3, 1, 4), 7 messages: a finished request leaves the rotation",
    async run(d) {
      for (const n of ["A", "B", "C"]) await d.subscribe(n);
      await d.pull("A", { batch: 3, expires: exp(800) });
      await d.pull("B", { batch: 1, expires: exp(800) });
      await d.pull("C", { batch: 4, expires: exp(1000) });
      await d.publish(7);
      await d.until(() => has(d.trace, "C", "408"), DEADLINE, "408 for C");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#4 dseq=4 dc=1", "#6 dseq=6 dc=1"],
      B: ["#2 dseq=2 dc=1"],
      C: ["#3 dseq=3 dc=1", "#5 dseq=5 dc=1", "#7 dseq=7 dc=1", "408 request timeout pm=1 pb=0 @C"],
    },
  },
  {
    name: "a request that arrives later joins the back of the rotation",
    async run(d) {
      for (const n of ["A", "B", "C"]) await d.subscribe(n);
      await d.pull("A", { batch: 3, expires: exp(900) });
      await d.pull("B", { batch: 1, expires: exp(900) });
      await d.publish(2);
      await d.until(() => total(d.trace, "#") === 2, DEADLINE, "2 messages");
      await d.pull("C", { batch: 4, expires: exp(1000) });
      await d.publish(5);
      await d.until(() => has(d.trace, "C", "408"), DEADLINE, "408 for C");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#3 dseq=3 dc=1", "#5 dseq=5 dc=1"],
      B: ["#2 dseq=2 dc=1"],
      C: ["#4 dseq=4 dc=1", "#6 dseq=6 dc=1", "#7 dseq=7 dc=1", "408 request timeout pm=1 pb=0 @C"],
    },
  },
  {
    name: "expiry after a partial delivery: 408 with what is left of batch and max_bytes",
    async run(d) {
      await d.subscribe("A");
      await d.pull("A", { batch: 5, max_bytes: 1000, expires: exp(500) });
      await d.publish(2);
      await d.until(() => has(d.trace, "A", "408"), DEADLINE, "408 for A");
    },
  },
  {
    name: "max_bytes cut: 409 with pending headers, and the message goes to the next request",
    async run(d) {
      await d.subscribe("A");
      await d.subscribe("B");
      // Each message is ~150 bytes as the server counts them: two fit in 400, not three.
      await d.pull("A", { batch: 5, max_bytes: 400, expires: exp(900) });
      await d.pull("B", { batch: 5, expires: exp(1000) });
      await d.publish(Array<string>(5).fill("p".repeat(100)));
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
  },
  {
    name: "max_bytes used up exactly: that message is the request's last, no status",
    async run(d) {
      await d.subscribe("A");
      await d.subscribe("B");
      // A gets #1 and #3; each is subject + ack subject + payload, as the server counts it.
      const size = (seq: number, dseq: number) =>
        `${d.stream}.x`.length +
        `$JS.ACK.${d.stream}.c.1.${seq}.${dseq}.${"1".repeat(19)}.0`.length +
        "xx".length;
      await d.pull("A", { batch: 5, max_bytes: size(1, 1) + size(3, 3), expires: exp(700) });
      await d.pull("B", { batch: 3, expires: exp(900) });
      await d.publish(4);
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#3 dseq=3 dc=1"],
      B: ["#2 dseq=2 dc=1", "#4 dseq=4 dc=1", "408 request timeout pm=1 pb=0 @B"],
    },
  },
  {
    name: "a request whose inbox unsubscribed before messages came is never served, no status",
    async run(d) {
      await d.subscribe("A");
      await d.subscribe("B");
      await d.pull("A", { batch: 2, expires: exp(600) });
      await d.pull("B", { batch: 3, expires: exp(900) });
      await d.unsubscribe("A");
      await d.publish(2);
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
    expected: {
      B: ["#1 dseq=1 dc=1", "#2 dseq=2 dc=1", "408 request timeout pm=1 pb=0 @B"],
    },
  },
  {
    name: "a lost interest is noticed lazily: re-subscribed before the server looked, it is served; once looked at, gone",
    async run(d) {
      await d.subscribe("A");
      await d.pull("A", { batch: 2, expires: exp(1000) });
      // The server sweeps the queue on its consumer goroutine after each request: let it.
      await d.pause(50);
      await d.unsubscribe("A");
      await d.subscribe("A");
      await d.publish(1);
      await d.until(() => has(d.trace, "A", "#"), DEADLINE, "a message for A");
      await d.pause(50);
      await d.unsubscribe("A");
      await d.subscribe("B");
      await d.pull("B", { batch: 3, expires: exp(1300) });
      // A is at the head without interest: the next message drops it and goes to B. (The sweep
      // after B's arrival may drop it before; that runs asynchronously on the real server.)
      await d.publish(1);
      await d.until(() => has(d.trace, "B", "#"), DEADLINE, "a message for B");
      await d.subscribe("A");
      await d.publish(1);
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
    expected: {
      A: ["#1 dseq=1 dc=1"],
      B: ["#2 dseq=2 dc=1", "#3 dseq=3 dc=1", "408 request timeout pm=1 pb=0 @B"],
    },
  },
  {
    name: "an old (retired) inbox still subscribed: its request keeps its place, gets data and its 408",
    async run(d) {
      await d.subscribe("old.*");
      await d.pull("old.1", { batch: 5, expires: exp(700) });
      await d.publish(1);
      await d.until(() => has(d.trace, "old.*", "#"), DEADLINE, "a message on the old inbox");
      await d.subscribe("new.*");
      await d.pull("new.1", { batch: 3, expires: exp(1000) });
      await d.publish(3);
      await d.until(() => has(d.trace, "new.*", "408"), DEADLINE, "408 on the new inbox");
    },
    expected: {
      "old.*": [
        "#1 dseq=1 dc=1",
        "#2 dseq=2 dc=1",
        "#4 dseq=4 dc=1",
        "408 request timeout pm=2 pb=0 @old.1",
      ],
      "new.*": ["#3 dseq=3 dc=1", "408 request timeout pm=2 pb=0 @new.1"],
    },
  },
  {
    name: "max_waiting 2: a third request is refused; one without interest is swept to make room",
    limits: { maxWaiting: 2 },
    async run(d) {
      for (const n of ["A", "B", "C", "D"]) await d.subscribe(n);
      await d.pull("A", { batch: 2, expires: exp(1000) });
      await d.pull("B", { batch: 2, expires: exp(1000) });
      await d.pull("C", { batch: 2, expires: exp(1000) });
      await d.unsubscribe("A");
      await d.pull("D", { batch: 2, expires: exp(1000) });
      await d.publish(4);
      await d.until(
        () => total(d.trace, "#") === 4 && has(d.trace, "C", "409"),
        DEADLINE,
        "4 messages and C's 409",
      );
    },
    expected: {
      B: ["#1 dseq=1 dc=1", "#3 dseq=3 dc=1"],
      C: ["409 exceeded maxwaiting @C"],
      D: ["#2 dseq=2 dc=1", "#4 dseq=4 dc=1"],
    },
  },
  {
    name: "refusals before queuing: request limits of the consumer, bad requests",
    limits: { maxRequestBatch: 10, maxRequestExpires: 2000, maxRequestMaxBytes: 1000 },
    async run(d) {
      for (const n of ["A", "B", "C", "D", "E"]) await d.subscribe(n);
      await d.pull("A", { batch: 11, expires: exp(500) });
      await d.pull("B", { batch: 1, expires: exp(2500) });
      await d.pull("C", { batch: 1, max_bytes: 1001, expires: exp(500) });
      await d.pull("D", { batch: 1, expires: exp(400), idle_heartbeat: exp(300) });
      await d.pull("E", '{"batch":"x"}');
      await d.until(() => total(d.trace, "4") === 5, DEADLINE, "5 refusals");
    },
    expected: {
      A: ["409 exceeded maxrequestbatch of 10 @A"],
      B: ["409 exceeded maxrequestexpires of 2s @B"],
      C: ["409 exceeded maxrequestmaxbytes of 1000 @C"],
      D: ["400 bad request - heartbeat value too large @D"],
      E: [
        "400 bad request - json: cannot unmarshal string into go struct field jsapiconsumergetnextrequest.batch of type int @E",
      ],
    },
  },
  {
    name: "idle heartbeats with the last consumer and stream sequences, then the 408",
    async run(d) {
      await d.publish(2);
      await d.subscribe("A");
      await d.pull("A", { batch: 2, expires: exp(400) });
      await d.until(() => total(d.trace, "#") === 2, DEADLINE, "2 messages");
      await d.subscribe("H");
      await d.pull("H", { batch: 3, expires: exp(1000), idle_heartbeat: exp(400) });
      await d.until(() => has(d.trace, "H", "408"), DEADLINE, "408 for H");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#2 dseq=2 dc=1"],
      H: [
        "100 idle heartbeat lc=2 ls=2 @H",
        "100 idle heartbeat lc=2 ls=2 @H",
        "408 request timeout pm=3 pb=0 @H",
      ],
    },
  },
  {
    name: "a backlog: the pending token counts what is left in the stream",
    comparePending: true,
    async run(d) {
      await d.publish(5);
      await d.subscribe("A");
      await d.pull("A", { batch: 3, expires: exp(500) });
      await d.until(() => total(d.trace, "#") === 3, DEADLINE, "3 messages");
      await d.subscribe("B");
      await d.pull("B", { batch: 5, expires: exp(500) });
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
    expected: {
      A: ["#1 dseq=1 dc=1 pending=4", "#2 dseq=2 dc=1 pending=3", "#3 dseq=3 dc=1 pending=2"],
      B: [
        "#4 dseq=4 dc=1 pending=1",
        "#5 dseq=5 dc=1 pending=0",
        "408 request timeout pm=3 pb=0 @B",
      ],
    },
  },
  {
    name: "no batch and batch 0: one message each, then the request is gone without a status",
    async run(d) {
      for (const n of ["A", "B", "C"]) await d.subscribe(n);
      await d.pull("A", { expires: exp(500) });
      await d.pull("B", { batch: 0, expires: exp(500) });
      await d.publish(3);
      await d.pull("C", { batch: 2, expires: exp(700) });
      await d.until(() => has(d.trace, "C", "408"), DEADLINE, "408 for C");
    },
    expected: {
      A: ["#1 dseq=1 dc=1"],
      B: ["#2 dseq=2 dc=1"],
      C: ["#3 dseq=3 dc=1", "408 request timeout pm=1 pb=0 @C"],
    },
  },
  {
    name: "acks: max_ack_pending stalls delivery, an ack frees it, a NAK is redelivered first",
    limits: { maxAckPending: 2 },
    async run(d) {
      await d.subscribe("A");
      await d.pull("A", { batch: 5, expires: exp(800) });
      await d.publish(4);
      await d.until(() => total(d.trace, "#") === 2, DEADLINE, "2 messages");
      await d.ack(1, "+ACK");
      await d.until(() => total(d.trace, "#") === 3, DEADLINE, "a 3rd message");
      await d.ack(2, "-NAK");
      await d.until(() => total(d.trace, "#") === 4, DEADLINE, "the redelivery");
      await d.until(() => has(d.trace, "A", "408"), DEADLINE, "408 for A");
    },
    expected: {
      A: [
        "#1 dseq=1 dc=1",
        "#2 dseq=2 dc=1",
        "#3 dseq=3 dc=1",
        "#2 dseq=4 dc=2",
        "408 request timeout pm=1 pb=0 @A",
      ],
    },
  },
  {
    name: "2.9.10: a NAK'd message that finds no request with interest waits for ack_wait, and the one before it goes out again as new",
    limits: { ackWait: 600 },
    async run(d) {
      await d.subscribe("A");
      await d.pull("A", { batch: 5, expires: exp(1300) });
      await d.publish(2);
      await d.until(() => total(d.trace, "#") === 2, DEADLINE, "2 messages");
      await d.unsubscribe("A");
      await d.ack(1, "-NAK");
      // Acks are processed on a goroutine of their own: let the redelivery attempt happen.
      await d.pause(100);
      await d.subscribe("B");
      await d.pull("B", { batch: 5, expires: exp(1000) });
      await d.until(() => has(d.trace, "B", "408"), DEADLINE, "408 for B");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#2 dseq=2 dc=1"],
      B: ["#2 dseq=3 dc=1", "#1 dseq=4 dc=3", "#2 dseq=5 dc=2", "408 request timeout pm=2 pb=0 @B"],
    },
  },
  {
    name: "no_wait: what there is, then 408 at once; nothing there: 404",
    async run(d) {
      await d.publish(2);
      await d.subscribe("A");
      await d.pull("A", { batch: 3, no_wait: true });
      await d.until(() => has(d.trace, "A", "408"), DEADLINE, "408 for A");
      await d.subscribe("B");
      await d.pull("B", { batch: 1, no_wait: true });
      await d.until(() => has(d.trace, "B", "404"), DEADLINE, "404 for B");
    },
    expected: {
      A: ["#1 dseq=1 dc=1", "#2 dseq=2 dc=1", "408 request timeout pm=1 pb=0 @A"],
      B: ["404 no messages @B"],
    },
  },
];

// ── the test ─────────────────────────────────────────────────────────────────────────────────

const withoutSizes = (t: Trace): Trace =>
  Object.fromEntries(
    Object.entries(t).map(([k, v]) => [k, v.map((e) => e.replace(/ size=\d+/, ""))]),
  );

describe("the fake server model against nats-server", () => {
  beforeAll(async () => {
    server = await NatsServer.start();
  });
  afterAll(async () => {
    await server?.dispose();
  });

  for (const scenario of scenarios) {
    it(scenario.name, async () => {
      const real = await realDriver(scenario);
      try {
        await scenario.run(real.driver);
      } finally {
        await real.close();
      }
      const fake = fakeDriver(scenario, real.driver.stream);
      await scenario.run(fake);
      expect(fake.trace).toEqual(real.driver.trace);
      if (scenario.expected) expect(withoutSizes(real.driver.trace)).toEqual(scenario.expected);
    });
  }
});
