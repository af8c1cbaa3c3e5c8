/**
 * The pull engine and the iterator, through `pullMessages()` over a scripted connection.
 * Fake timers everywhere: heartbeats, backoffs and fences run on the fake clock, no real sleeps.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type PullMessagesOptions, pullMessages } from "../../src/consume.js";
import { FLOW_QUIET_MS, type PullEngine } from "../../src/engine.js";
import {
  AbortError,
  ConnectionClosedError,
  ConsumerDeletedError,
  JetStreamStatusError,
  MsgIteratorClosedError,
  NextTimeoutError,
} from "../../src/errors.js";
import type { Notification } from "../../src/notifications.js";
import {
  countedSignal,
  FakeNatsConnection,
  type FakeOptions,
  type PullRecord,
  settle,
  tick,
} from "./fake-nc.js";

type Messages = ReturnType<typeof pullMessages>;

interface Ctx {
  nc: FakeNatsConnection;
  messages: Messages;
  notes: Notification[];
}

const BASE_OPTS: PullMessagesOptions = { expires: 10_000, idle_heartbeat: 1_000, max_messages: 10 };
const NS = 1_000_000;

function start(opts: PullMessagesOptions = {}, fake: FakeOptions = {}): Ctx {
  const nc = new FakeNatsConnection(fake);
  const messages = pullMessages(nc, "S", "C", { ...BASE_OPTS, ...opts });
  const notes: Notification[] = [];
  void (async () => {
    for await (const n of messages.status()) notes.push(n);
  })();
  return { nc, messages, notes };
}

interface Tracked<T> {
  state: "pending" | "resolved" | "rejected";
  value: T | undefined;
  error: unknown;
  promise: Promise<T>;
}

function track<T>(promise: Promise<T>): Tracked<T> {
  const t: Tracked<T> = { state: "pending", value: undefined, error: undefined, promise };
  promise.then(
    (v) => {
      t.state = "resolved";
      t.value = v;
    },
    (e: unknown) => {
      t.state = "rejected";
      t.error = e;
    },
  );
  return t;
}

interface Collected {
  seqs: number[];
  error: unknown;
  done: boolean;
}

/** Runs a `for await` loop in the background; `body` runs for each message. */
function loop(messages: Messages, body?: (seq: number) => Promise<unknown> | unknown): Collected {
  const c: Collected = { seqs: [], error: undefined, done: false };
  void (async () => {
    try {
      for await (const m of messages) {
        c.seqs.push(m.seq);
        await body?.(m.seq);
      }
    } catch (err) {
      c.error = err;
    } finally {
      c.done = true;
    }
  })();
  return c;
}

function engineOf(messages: Messages): PullEngine {
  return (messages as unknown as { engine: PullEngine }).engine;
}

/** The inbox of a reply subject `<prefix>.<id>.<gen>.<n>`: everything but the last token. */
function inboxOf(reply: string): string {
  return reply.slice(0, reply.lastIndexOf("."));
}

function ofType<T extends Notification["type"]>(
  notes: Notification[],
  type: T,
): Extract<Notification, { type: T }>[] {
  return notes.filter((n): n is Extract<Notification, { type: T }> => n.type === type);
}

/** Asserts nothing of the iterator is left on the connection or the fake clock. */
function expectNothingLeft(ctx: Ctx): void {
  expect(ctx.nc.liveSubscriptions).toBe(0);
  expect(ctx.nc.liveStatusListeners).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
}

/** close(), lets the fence finish on the fake clock, and checks that nothing is left. */
async function shutdown(ctx: Ctx): Promise<void> {
  const done = track(ctx.messages.closed());
  void ctx.messages.close();
  for (let i = 0; i < 10 && done.state === "pending"; i++) await tick(5_000);
  expect(done.state).toBe("resolved");
  await tick();
  expectNothingLeft(ctx);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

describe("pull requests", () => {
  it("the first pull: batch = max_messages, expires and idle_heartbeat in nanoseconds", async () => {
    const ctx = start();
    const { nc } = ctx;
    expect(nc.pulls).toHaveLength(1);
    const p = nc.lastPull();
    expect(p.subject).toBe("$JS.API.CONSUMER.MSG.NEXT.S.C");
    expect(p.body).toEqual({ batch: 10, expires: 10_000 * NS, idle_heartbeat: 1_000 * NS });
    // the reply is on the inbox the iterator subscribed to (one token below it)
    expect(nc.subscriptions).toHaveLength(1);
    expect(nc.subscriptions[0]?.subject).toBe(`${inboxOf(p.reply)}.*`);
    expect(p.reply.startsWith("_INBOX.")).toBe(true);
    await shutdown(ctx);
  });

  it("with max_bytes the body carries max_bytes (both limits together)", async () => {
    const ctx = start({ max_bytes: 4_096, max_messages: 50 });
    expect(ctx.nc.lastPull().body).toEqual({
      batch: 50,
      max_bytes: 4_096,
      expires: 10_000 * NS,
      idle_heartbeat: 1_000 * NS,
    });
    await shutdown(ctx);
  });

  it("defaults: expires 30 s, idle_heartbeat 15 s, batch 100", async () => {
    const nc = new FakeNatsConnection();
    const messages = pullMessages(nc, "S", "C");
    expect(nc.lastPull().body).toEqual({
      batch: 100,
      expires: 30_000 * NS,
      idle_heartbeat: 15_000 * NS,
    });
    await shutdown({ nc, messages, notes: [] });
  });

  it("a domain moves the pull subject to $JS.<domain>.API", async () => {
    const ctx = start({ domain: "hub" });
    expect(ctx.nc.lastPull().subject).toBe("$JS.hub.API.CONSUMER.MSG.NEXT.S.C");
    await shutdown(ctx);
  });
});

describe("flow control", () => {
  it("buffered + requested never exceeds max_messages, and no new pull while a request is open", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const violations: string[] = [];
    nc.onPull = (p) => {
      const held = messages.getPending();
      if (held + p.body.batch > 10) violations.push(`held ${held} + batch ${p.body.batch}`);
    };
    const p1 = nc.lastPull();
    for (let i = 0; i < 5; i++) nc.sendData(p1);
    expect(nc.pulls).toHaveLength(1);
    // taking messages while the request is still open does not pull
    for (let i = 0; i < 5; i++) await messages.next();
    expect(nc.pulls).toHaveLength(1);
    expect(engineOf(messages).snapshot().request?.msgs).toBe(5);
    // the request completes with 5 held: 5 <= threshold (8), so pull the 5 that fit
    for (let i = 0; i < 5; i++) nc.sendData(p1);
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    expect(p2.body.batch).toBe(5);
    for (let i = 0; i < 5; i++) nc.sendData(p2);
    expect(messages.getPending()).toBe(10);
    expect(nc.pulls).toHaveLength(2);
    // a stalled loop body: time passes, nothing is stacked
    await tick(60_000);
    expect(nc.pulls).toHaveLength(2);
    expect(violations).toEqual([]);
    await shutdown(ctx);
  });

  it("re-pulls exactly when what is held falls to the threshold, for what fits", async () => {
    const ctx = start({ threshold_messages: 3 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 10; i++) nc.sendData(p1);
    const pullsAt: number[] = [];
    for (let held = 10; held > 3; held--) {
      expect(nc.pulls).toHaveLength(1);
      await messages.next();
      pullsAt.push(nc.pulls.length);
    }
    // held went 9, 8, … 3: the pull happened at 3 only
    expect(pullsAt).toEqual([1, 1, 1, 1, 1, 1, 2]);
    expect(nc.lastPull().body.batch).toBe(7);
    await shutdown(ctx);
  });

  it("buffered + requested bytes never exceed max_bytes; re-pull at threshold_bytes", async () => {
    const ctx = start({ max_messages: 100, max_bytes: 1_000 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    expect(p1.body.max_bytes).toBe(1_000);
    for (let i = 0; i < 4; i++) nc.sendData(p1, { size: 250 });
    // the request is used up by bytes; 1000 held > 750: no pull
    expect(engineOf(messages).snapshot().request).toBeUndefined();
    expect(nc.pulls).toHaveLength(1);
    await messages.next(); // 750 held
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    expect(p2.body.max_bytes).toBe(250);
    expect(p2.body.batch).toBe(97);
    expect(750 + (p2.body.max_bytes ?? 0)).toBeLessThanOrEqual(1_000);
    await shutdown(ctx);
  });

  it("max_messages caps a byte-limited pull too (both limits set)", async () => {
    const ctx = start({ max_messages: 4, max_bytes: 100_000, threshold_messages: 1 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    expect(p1.body.batch).toBe(4);
    for (let i = 0; i < 4; i++) nc.sendData(p1, { size: 10 });
    expect(engineOf(messages).snapshot().request).toBeUndefined();
    await messages.next();
    await messages.next();
    expect(nc.pulls).toHaveLength(1);
    await messages.next(); // 1 held: threshold
    expect(nc.lastPull().body).toMatchObject({ batch: 3, max_bytes: 100_000 - 10 });
    await shutdown(ctx);
  });

  it("409 Message Size Exceeds MaxBytes after a partly used request: no pull above the byte threshold", async () => {
    const ctx = start({ max_messages: 100, max_bytes: 1_000 });
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 3; i++) nc.sendData(p1, { size: 300 });
    p1.done = true;
    nc.sendStatus(p1, 409, "Message Size Exceeds MaxBytes", {
      "Nats-Pending-Messages": "97",
      "Nats-Pending-Bytes": "100",
    });
    await settle();
    expect(ofType(notes, "exceeded_limits")).toHaveLength(1);
    expect(nc.pulls).toHaveLength(1); // 900 held > 750
    await messages.next(); // 600 held
    expect(nc.pulls).toHaveLength(2);
    expect(nc.lastPull().body.max_bytes).toBe(400);
    await shutdown(ctx);
  });

  it("409 Message Size Exceeds MaxBytes with a message buffered: no new request until the room is larger than the refused one (no pull/409 loop)", async () => {
    const ctx = start({ max_messages: 100, max_bytes: 1_000 });
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1, { size: 300 });
    // the next message (650 B) does not fit the 700 B left
    const refuse = (p: PullRecord, left: number) => {
      p.done = true;
      nc.sendStatus(p, 409, "Message Size Exceeds MaxBytes", {
        "Nats-Pending-Messages": "99",
        "Nats-Pending-Bytes": String(left),
      });
    };
    refuse(p1, 700);
    await tick(5_000);
    // 300 held ≤ threshold 750, but a request for 700 B would be refused again at once
    expect(nc.pulls).toHaveLength(1);
    expect(ofType(notes, "exceeded_limits")).toHaveLength(1);
    await messages.next(); // nothing held: the whole 1 000 B
    expect(nc.pulls).toHaveLength(2);
    expect(nc.lastPull().body.max_bytes).toBe(1_000);
    nc.sendData(nc.lastPull(), { size: 650 });
    expect(messages.getPending()).toBe(1);
    await shutdown(ctx);
  });
});

describe("statuses", () => {
  it.each([
    [408, "Request Timeout"],
    [404, "No Messages"],
  ])("%i with Nats-Pending-Messages releases the request and re-pulls", async (code, desc) => {
    const ctx = start();
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 3; i++) nc.sendData(p1);
    p1.done = true;
    nc.sendStatus(p1, code, desc, { "Nats-Pending-Messages": "7", "Nats-Pending-Bytes": "0" });
    await settle();
    expect(ofType(notes, "discard")).toEqual([{ type: "discard", messagesLeft: 7, bytesLeft: 0 }]);
    expect(nc.pulls).toHaveLength(2);
    expect(nc.lastPull().body.batch).toBe(7); // 3 held
    expect(engineOf(messages).snapshot().request?.msgs).toBe(7);
    // a late copy of the status for the finished request changes nothing
    nc.sendStatus(p1, code, desc, { "Nats-Pending-Messages": "7" });
    await settle();
    expect(nc.pulls).toHaveLength(2);
    await shutdown(ctx);
  });

  it("100 Idle Heartbeat: a heartbeat notification, the request stays open", async () => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    nc.sendHeartbeat(nc.lastPull(), 5, 7);
    await settle();
    expect(ofType(notes, "heartbeat")).toEqual([
      { type: "heartbeat", lastConsumerSequence: 5, lastStreamSequence: 7 },
    ]);
    expect(engineOf(messages).snapshot().request?.msgs).toBe(10);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("409 Exceeded MaxWaiting: exceeded_limits, then a retry after a backoff never longer than idle_heartbeat", async () => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    for (let i = 0; i < 8; i++) {
      const before = nc.pulls.length;
      nc.endPull(nc.lastPull(), 409, "Exceeded MaxWaiting");
      await settle();
      expect(ofType(notes, "exceeded_limits")).toHaveLength(i + 1);
      expect(nc.pulls).toHaveLength(before); // backs off: not at once
      await tick(1_000);
      expect(nc.pulls).toHaveLength(before + 1); // within idle_heartbeat
    }
    expect(ofType(notes, "exceeded_limits")[0]).toEqual({
      type: "exceeded_limits",
      code: 409,
      description: "exceeded maxwaiting", // lower case, as nats.js reads it
    });
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(0);
    expect(messages.state).toBe("open");
    await shutdown(ctx);
  });

  it("409 Leadership Change: re-pull with backoff, without waiting for heartbeats", async () => {
    const ctx = start();
    const { nc, notes } = ctx;
    nc.endPull(nc.lastPull(), 409, "Leadership Change");
    await settle();
    expect(nc.pulls).toHaveLength(1);
    await tick(1_000);
    expect(nc.pulls).toHaveLength(2);
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(0);
    await shutdown(ctx);
  });

  it("409 Consumer Deleted with abort_on_missing_resource: the loop ends with ConsumerDeletedError after the buffer; next() rejects MsgIteratorClosedError caused by it", async () => {
    const ctx = start({ abort_on_missing_resource: true });
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1, { seq: 1 });
    nc.sendData(p1, { seq: 2 });
    nc.endPull(p1, 409, "Consumer Deleted");
    const c = loop(messages);
    await tick();
    expect(c.done).toBe(true);
    expect(c.seqs).toEqual([1, 2]);
    expect(c.error).toBeInstanceOf(ConsumerDeletedError);
    expect(ofType(notes, "consumer_deleted")).toEqual([
      { type: "consumer_deleted", code: 409, description: "consumer deleted" },
    ]);
    const err = await messages.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MsgIteratorClosedError);
    expect((err as Error).cause).toBe(c.error);
    await expect(messages.closed()).resolves.toBe(c.error);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("409 Consumer Deleted without abort_on_missing_resource: notify and retry, stays open", async () => {
    const ctx = start();
    const { nc, messages, notes } = ctx;
    nc.endPull(nc.lastPull(), 409, "Consumer Deleted");
    await settle();
    expect(ofType(notes, "consumer_deleted")).toHaveLength(1);
    await tick(1_000);
    expect(nc.pulls).toHaveLength(2);
    expect(messages.state).toBe("open");
    await shutdown(ctx);
  });

  it.each([
    [400, "Bad Request"],
    [409, "Consumer is push based"],
  ])("%i %s is terminal: the loop throws JetStreamStatusError", async (code, desc) => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    nc.endPull(nc.lastPull(), code, desc);
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(JetStreamStatusError);
    expect((c.error as JetStreamStatusError).status).toBe(code);
    expect(messages.state).toBe("done");
    const err = await messages.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MsgIteratorClosedError);
    expect((err as Error).cause).toBe(c.error);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("503: no_responders, a consumer lookup, then a retry after a backoff", async () => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    nc.endPull(nc.lastPull(), 503, "No Responders");
    await settle();
    expect(ofType(notes, "no_responders")).toEqual([{ type: "no_responders", code: 503 }]);
    expect(nc.requests.map((r) => r.subject)).toContain("$JS.API.CONSUMER.INFO.S.C");
    expect(nc.pulls).toHaveLength(1);
    await tick(1_000);
    expect(nc.pulls).toHaveLength(2);
    expect(messages.state).toBe("open");
    await shutdown(ctx);
  });

  it("an unknown status code: a debug notification and nothing else", async () => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    const p1 = nc.lastPull();
    const published = nc.published.length;
    const notesBefore = notes.length;
    nc.sendStatus(p1, 418, "I'm a teapot");
    await tick(500);
    expect(notes.slice(notesBefore).filter((n) => n.type !== "next")).toEqual([
      { type: "debug", code: 418, description: "i'm a teapot" },
    ]);
    expect(nc.published).toHaveLength(published);
    expect(messages.state).toBe("open");
    // the request is still open: data for it is buffered, not NAKed
    nc.sendData(p1);
    expect(messages.getPending()).toBe(1);
    expect(nc.naks()).toHaveLength(0);
    await shutdown(ctx);
  });
});

describe("hostile inbox messages", () => {
  const replies: [string, string][] = [
    ["a reply that is not $JS.ACK", "foo.bar.baz"],
    ["too few tokens", "$JS.ACK.S.C.1.2.3"],
    ["ten tokens", "$JS.ACK.S.C.1.2.3.4.5.6"],
    ["non-numeric tokens", "$JS.ACK.S.C.x.2.3.4.5"],
    ["a negative-looking token", "$JS.ACK.S.C.1.-2.3.4.5"],
    ["delivery count 0", "$JS.ACK.S.C.0.2.3.4.5"],
    ["an empty stream token", "$JS.ACK..C.1.2.3.4.5"],
    ["another consumer's ack subject", "$JS.ACK.S.OTHER.1.2.3.4.5"],
    ["another stream's ack subject", "$JS.ACK.T.C.1.2.3.4.5"],
  ];

  it.each(replies)("data with %s: debug notification, dropped, never throws", async (_, reply) => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    const p1 = nc.lastPull();
    const published = nc.published.length;
    const notesBefore = notes.length;
    expect(() => nc.sendData(p1, { reply })).not.toThrow();
    await settle();
    // (the first pull's `next`, held for the first listener, may arrive meanwhile)
    const fresh = notes.slice(notesBefore).filter((n) => n.type !== "next");
    expect(fresh).toHaveLength(1);
    expect(fresh[0]?.type).toBe("debug");
    expect(messages.counters()).toEqual({
      received: 0,
      processed: 0,
      naked: 0,
      dropped: 0,
      pending: 0,
    });
    expect(nc.published).toHaveLength(published); // not acked, not NAKed, no pull
    expect(messages.state).toBe("open");
    // the request was not charged for it: a real message still fits and is buffered
    expect(engineOf(messages).snapshot().request?.msgs).toBe(10);
    nc.sendData(p1);
    expect(messages.getPending()).toBe(1);
    await shutdown(ctx);
  });

  it.each([
    ["no reply and no headers", undefined],
    ["status headers without a code", { code: undefined, description: "x", get: () => "" }],
    ["status code 0", { code: 0, description: "", get: () => "" }],
  ])("a message with %s: debug notification, dropped, never throws", async (_, headers) => {
    const ctx = start();
    const { nc, notes, messages } = ctx;
    const p1 = nc.lastPull();
    const published = nc.published.length;
    expect(() =>
      nc.route(p1.reply, { subject: p1.reply, data: new Uint8Array([1, 2]), headers }),
    ).not.toThrow();
    await settle();
    expect(ofType(notes, "debug")).toHaveLength(1);
    expect(nc.published).toHaveLength(published);
    expect(messages.getReceived()).toBe(0);
    expect(messages.state).toBe("open");
    await shutdown(ctx);
  });

  it("a heartbeat with garbage sequence headers does not throw", async () => {
    const ctx = start();
    const { nc, notes } = ctx;
    expect(() =>
      nc.sendStatus(nc.lastPull(), 100, "Idle Heartbeat", {
        "Nats-Last-Consumer": "abc",
        "Nats-Last-Stream": "-4",
      }),
    ).not.toThrow();
    await settle();
    expect(ofType(notes, "heartbeat")).toEqual([
      { type: "heartbeat", lastConsumerSequence: 0, lastStreamSequence: 0 },
    ]);
    await shutdown(ctx);
  });
});

describe("heartbeats", () => {
  it("missed heartbeats: heartbeats_missed, then after the flush answers a pull on a NEW inbox; late data on the old inbox is NAKed, not buffered", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    await tick(1_999);
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(0);
    await tick(1);
    expect(ofType(notes, "heartbeats_missed")).toEqual([{ type: "heartbeats_missed", count: 2 }]);
    expect(nc.flushCalls).toBe(1);
    // the server does not answer: nothing is stacked meanwhile
    await tick(30_000);
    expect(nc.pulls).toHaveLength(1);
    nc.answerFlushes();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    expect(inboxOf(p2.reply)).not.toBe(inboxOf(p1.reply));
    expect(p2.body.batch).toBe(10);
    const [oldSub, newSub] = nc.subscriptions;
    expect(newSub?.subject).toBe(`${inboxOf(p2.reply)}.*`);
    // retired, not unsubscribed: a new consumer leader may still answer the old request
    expect(oldSub?.drainCalls).toBe(0);
    // the old request was alive after all: its data is NAKed, not buffered, and its inbox let go
    const late = nc.sendData(p1);
    expect(late.delivered).toBe(true);
    expect(nc.naks().map((p) => p.subject)).toEqual([late.reply]);
    expect(oldSub?.drainCalls).toBe(1);
    expect(oldSub?.state).toBe("draining"); // fence not answered yet: still receiving
    expect(messages.getPending()).toBe(0);
    expect(messages.counters()).toMatchObject({ received: 1, naked: 1, pending: 0 });
    expect(engineOf(messages).snapshot().request?.msgs).toBe(10);
    // a status of the old inbox is ignored too
    nc.sendStatus(p1, 408, "Request Timeout", { "Nats-Pending-Messages": "9" });
    await settle();
    expect(nc.pulls).toHaveLength(2);
    // the new request works
    nc.sendData(p2);
    expect(messages.getPending()).toBe(1);
    nc.answerFlushes();
    await settle();
    expect(oldSub?.state).toBe("closed");
    expect(nc.liveSubscriptions).toBe(1);
    await shutdown(ctx);
  });

  it("heartbeats_missed counts up while the silence lasts (2, 3, 4 …, once per interval), as nats.js does; life resets it", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, notes } = ctx;
    await tick(4_000);
    expect(ofType(notes, "heartbeats_missed").map((n) => n.count)).toEqual([2, 3, 4]);
    nc.sendHeartbeat(nc.lastPull());
    await tick(1_999);
    expect(ofType(notes, "heartbeats_missed").map((n) => n.count)).toEqual([2, 3, 4]);
    await tick(1);
    expect(ofType(notes, "heartbeats_missed").map((n) => n.count)).toEqual([2, 3, 4, 2]);
    nc.answerFlushes();
    await shutdown(ctx);
  });

  it("missed heartbeats, PING unanswered, then the silent request's 408: a pull goes out at once (the PING holds nothing back)", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc } = ctx;
    const p1 = nc.lastPull();
    await tick(2_000);
    expect(nc.pendingFlushCount).toBeGreaterThan(0);
    nc.send408(p1, 10);
    await settle();
    expect(nc.pulls).toHaveLength(2);
    // the PONG that finally comes proves nothing about the new request: no second pull
    nc.answerFlushes();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    expect(nc.subscriptions).toHaveLength(1);
    await shutdown(ctx);
  });

  it("missed heartbeats, then a second request published before the PONG: the PONG does not retire it", async () => {
    const ctx = start({ max_messages: 10, threshold_messages: 5 }, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    // 6 buffered, 4 outstanding, a backlog on the server: then silence
    for (let i = 0; i < 6; i++) nc.sendData(p1, { pending: 50 });
    await tick(2_000);
    expect(nc.pendingFlushCount).toBeGreaterThan(0);
    expect(nc.pulls).toHaveLength(1);
    // the loop takes 5: held 1 + outstanding 4 is at the threshold, and the server has more
    for (let i = 0; i < 5; i++) await messages.next();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    nc.answerFlushes();
    await settle();
    // the PONG answers a PING sent before the second request: no rotation, nothing stacked
    expect(nc.subscriptions).toHaveLength(1);
    expect(nc.pulls).toHaveLength(2);
    await shutdown(ctx);
  });

  it("consumer info never answered (no permission to read it): missed heartbeats still PING and re-pull, and the lookups stop", async () => {
    const nc = new FakeNatsConnection();
    nc.requestHandler = () => new Error("timeout");
    const messages = pullMessages(nc, "S", "C", BASE_OPTS);
    const ctx: Ctx = { nc, messages, notes: [] };
    await tick(2_000);
    expect(nc.flushCalls).toBe(1);
    expect(nc.pulls).toHaveLength(2);
    const lookups = nc.requests.length;
    await tick(10_000);
    // heartbeats of the new request keep missing: PINGs go on, lookups do not pile up
    expect(nc.requests.length).toBeLessThanOrEqual(lookups + 5);
    expect(nc.pulls.length).toBeGreaterThan(2);
    await shutdown(ctx);
  });

  it("started during an outage (the first lookup unanswered): the first answer pulls at once", async () => {
    const nc = new FakeNatsConnection({ flushMode: "hold" });
    let leader = false;
    nc.requestHandler = () => (leader ? "{}" : new Error("TIMEOUT"));
    const messages = pullMessages(nc, "S", "C", BASE_OPTS);
    const ctx: Ctx = { nc, messages, notes: [] };
    await tick(1_500);
    expect(nc.requests).toHaveLength(1); // no polling where lookups never worked
    leader = true;
    await tick(600); // heartbeats_missed(2): a lookup, answered now
    expect(nc.requests.length).toBeGreaterThanOrEqual(2);
    expect(nc.pulls).toHaveLength(2);
    nc.answerFlushes();
    await shutdown(ctx);
  });

  it("heartbeats keep an open request alive: no heartbeats_missed", async () => {
    const ctx = start({ expires: 30_000 }); // 20 s of heartbeats within its expires
    const { nc, notes } = ctx;
    for (let i = 0; i < 20; i++) {
      await tick(1_000);
      nc.sendHeartbeat(nc.lastPull());
    }
    await settle();
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(0);
    expect(ofType(notes, "heartbeat")).toHaveLength(20);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("missed heartbeats, then data before the flush answers: same inbox, no extra pull", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages, notes } = ctx;
    const p1 = nc.lastPull();
    await tick(2_000);
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(1);
    nc.sendData(p1);
    expect(messages.getPending()).toBe(1);
    nc.answerFlushes();
    await settle();
    expect(nc.pulls).toHaveLength(1);
    expect(nc.subscriptions).toHaveLength(1);
    await shutdown(ctx);
  });

  it("no heartbeat monitoring while disconnected; monitoring resumes after reconnect", async () => {
    const ctx = start();
    const { nc, notes } = ctx;
    nc.disconnect();
    await settle();
    await tick(30_000);
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(0);
    expect(nc.flushCalls).toBe(0);
    expect(nc.pulls).toHaveLength(1);
    nc.reconnect();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    await tick(2_000);
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(1);
    await shutdown(ctx);
  });

  it("reconnect: a re-pull at once, on a new inbox, for what fits", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1);
    nc.sendData(p1);
    nc.disconnect();
    await settle();
    nc.reconnect();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    expect(inboxOf(p2.reply)).not.toBe(inboxOf(p1.reply));
    expect(p2.body.batch).toBe(8);
    expect(messages.getPending()).toBe(2);
    // the old inbox is dropped at once: a request that survived on the server loses interest
    expect(nc.subscriptions[0]?.state).toBe("closed");
    expect(nc.liveSubscriptions).toBe(1);
    await shutdown(ctx);
  });

  it("missed heartbeats, then 409 Leadership Change on the retired inbox: a new pull at once, not after more heartbeats", async () => {
    const ctx = start({}, { flushMode: "auto" });
    const { nc, notes } = ctx;
    const p1 = nc.lastPull();
    await tick(2_000); // two silent intervals: missed
    await settle();
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(1);
    expect(nc.pulls).toHaveLength(2); // the re-pull went out while there was no leader...
    const p2 = nc.lastPull();
    // ...and vanished. The new leader answers the request that was open on the old one:
    nc.sendStatus(p1, 409, "Leadership Change");
    await settle();
    expect(nc.pulls).toHaveLength(3);
    const p3 = nc.lastPull();
    expect(inboxOf(p3.reply)).not.toBe(inboxOf(p2.reply));
    expect(ofType(notes, "heartbeats_missed")).toHaveLength(1);
    expect(ofType(notes, "debug").some((n) => n.code === 409)).toBe(true);
    await shutdown(ctx);
  });

  it("a slow election: 409 Leadership Change on the first retired inbox after its request's expires still brings a pull at once", async () => {
    // expires 5 s, heartbeats 1 s: the consumer leader dies with p1 open, and the new one is
    // elected 8 s later (nats-server 2.9's Raft elections take seconds), after p1's expires.
    const ctx = start({ expires: 5_000 }, { flushMode: "auto" });
    const { nc, notes } = ctx;
    const p1 = nc.lastPull();
    for (let t = 0; t < 8_000; t += 1_000) {
      await tick(1_000);
      await settle();
    }
    expect(ofType(notes, "heartbeats_missed").length).toBeGreaterThanOrEqual(3);
    const before = nc.pulls.length;
    nc.sendStatus(p1, 409, "Leadership Change");
    await settle();
    expect(nc.pulls).toHaveLength(before + 1);
    await shutdown(ctx);
  });

  it("409 Leadership Change on a retired inbox while the new request is alive: no extra pull", async () => {
    const ctx = start({}, { flushMode: "auto" });
    const { nc } = ctx;
    const p1 = nc.lastPull();
    await tick(2_000);
    await settle();
    const p2 = nc.lastPull();
    nc.sendHeartbeat(p2);
    nc.sendStatus(p1, 409, "Leadership Change");
    await settle();
    expect(nc.pulls).toHaveLength(2);
    await shutdown(ctx);
  });

  it("reconnect with the buffer above the threshold: no pull until it falls to it", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 10; i++) nc.sendData(p1);
    nc.disconnect();
    await settle();
    nc.reconnect();
    await settle();
    expect(nc.pulls).toHaveLength(1);
    await messages.next();
    await messages.next();
    expect(nc.pulls).toHaveLength(2);
    expect(nc.lastPull().body.batch).toBe(2);
    await shutdown(ctx);
  });
});

describe("next()", () => {
  it("timeout rejects NextTimeoutError, the iterator stays open, a later message goes to the next call", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const n1 = track(messages.next({ timeout: 500 }));
    await tick(499);
    expect(n1.state).toBe("pending");
    await tick(1);
    expect(n1.state).toBe("rejected");
    expect(n1.error).toBeInstanceOf(NextTimeoutError);
    expect(messages.state).toBe("open");
    nc.sendData(nc.lastPull(), { seq: 42 });
    const m = await messages.next();
    expect(m.seq).toBe(42);
    expect(messages.counters()).toMatchObject({ processed: 1, pending: 0 });
    await shutdown(ctx);
  });

  it("abort rejects AbortError for that call only; a message arriving later goes to the next call", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const ac = new AbortController();
    const n1 = track(messages.next({ signal: ac.signal }));
    const n2 = track(messages.next());
    ac.abort();
    await settle();
    expect(n1.state).toBe("rejected");
    expect(n1.error).toBeInstanceOf(AbortError);
    nc.sendData(nc.lastPull(), { seq: 5 });
    await settle();
    expect(n2.state).toBe("resolved");
    expect(n2.value?.seq).toBe(5);
    await expect(messages.next({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    expect(messages.state).toBe("open");
    await shutdown(ctx);
  });
});

describe("drain() and close() on a server that may serve a young request without interest (cluster, domain)", () => {
  it("drain 500 ms after the pull: listens until it is 2 s old, hands out what arrives meanwhile, then unsubscribes", async () => {
    const ctx = start({}, { cluster: "c1" });
    const { nc, messages } = ctx;
    await tick(500);
    const drained = track(messages.drain());
    await tick(1_000);
    expect(nc.liveSubscriptions).toBe(1); // still listening: the request is 1.5 s old
    nc.sendData(nc.lastPull(), { seq: 77 });
    await tick(700);
    expect(nc.liveSubscriptions).toBe(0); // 2.1 s: unsubscribed (fence answered at once)
    await tick();
    expect(drained.state).toBe("resolved");
    const m = await messages.next();
    expect(m.seq).toBe(77); // what arrived during the hold is handed out
    await shutdown(ctx);
  });

  it("close() during drain's hold: still listens until the request is 2 s old, NAKs what arrives after the unsubscribe, then fences with close()'s 1 s bound", async () => {
    const ctx = start({}, { cluster: "c1", flushMode: "hold" });
    const { nc, messages } = ctx;
    const drained = track(messages.drain({ timeout: 30_000 }));
    await tick(100);
    const closing = track(messages.close());
    await tick();
    expect(drained.state).toBe("resolved"); // the end has come: drain()'s promise is kept
    const sub = nc.subscriptions[0];
    expect(sub?.state).toBe("open"); // the request is 0.1 s old: still listening, no UNSUB
    nc.sendData(nc.lastPull(), { seq: 5 });
    await tick();
    expect(nc.naks()).toHaveLength(0); // not while our young request could get it straight back
    await tick(2_050);
    expect(sub?.state).toBe("draining"); // 2.1 s: UNSUB sent; the PONG never comes
    expect(nc.naks()).toHaveLength(0);
    expect(closing.state).toBe("pending");
    await tick(900);
    expect(closing.state).toBe("pending");
    await tick(200);
    expect(closing.state).toBe("resolved"); // close()'s bound, not drain()'s 30 s
    expect(nc.naks()).toHaveLength(1);
    expect(messages.counters()).toMatchObject({ received: 1, processed: 0, naked: 1 });
    await shutdown(ctx);
  });

  it("an abort during close()'s hold changes nothing (close() already holds); a disconnect ends it at once", async () => {
    const ac = new AbortController();
    const ctx = start({ signal: ac.signal }, { cluster: "c1" });
    const closing = track(ctx.messages.close());
    await tick(100);
    ac.abort();
    await tick();
    expect(closing.state).toBe("pending");
    expect(ctx.nc.liveSubscriptions).toBe(1);
    ctx.nc.disconnect();
    await tick();
    expect(closing.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("drain({ timeout: 1000 }) right after the pull, the PONG never coming: the hold and the fence together stay within 1000 ms", async () => {
    const ctx = start({}, { cluster: "c1", flushMode: "hold" });
    const drained = track(ctx.messages.drain({ timeout: 1_000 }));
    await tick(999);
    expect(drained.state).toBe("pending");
    await tick(2);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("a disconnect during the hold: no fence on a connection that is down; drain() ends at once", async () => {
    const ctx = start({}, { cluster: "c1", flushMode: "hold" });
    const drained = track(ctx.messages.drain());
    await tick(500);
    ctx.nc.disconnect();
    await tick();
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("the open request ends (408) during the hold: nothing is left to wait for; unsubscribed at once", async () => {
    const ctx = start({}, { cluster: "c1" });
    const { nc } = ctx;
    const drained = track(ctx.messages.drain());
    await tick(50);
    expect(nc.liveSubscriptions).toBe(1);
    nc.endPull(nc.lastPull(), 408, "Request Timeout");
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("close() 500 ms after the pull: listens until it is 2 s old; what arrives meanwhile is NAKed once unsubscribed", async () => {
    const ctx = start({}, { cluster: "c1" });
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    await tick(500);
    const closing = track(messages.close());
    await tick();
    expect(nc.naks()).toHaveLength(1); // the buffer: NAKed at once (not at risk: not in flight)
    await tick(1_000);
    expect(nc.liveSubscriptions).toBe(1);
    nc.sendData(nc.lastPull(), { seq: 2 });
    await tick();
    expect(nc.naks()).toHaveLength(1);
    expect(messages.counters()).toMatchObject({ received: 2, naked: 2 });
    await tick(600);
    expect(nc.liveSubscriptions).toBe(0);
    await tick();
    expect(closing.state).toBe("resolved");
    expect(nc.naks()).toHaveLength(2);
    await expect(messages.closed()).resolves.toBeUndefined();
    await shutdown(ctx);
  });

  it("close() right after the pull, the PONG never coming: the hold (2.1 s) does not eat close()'s 1 s fence", async () => {
    const ctx = start({}, { cluster: "c1", flushMode: "hold" });
    const { nc, messages } = ctx;
    const closing = track(messages.close());
    await tick(2_050);
    const sub = nc.subscriptions[0];
    expect(sub?.state).toBe("open");
    await tick(100);
    expect(sub?.state).toBe("draining"); // UNSUB out at 2.1 s
    await tick(900);
    expect(closing.state).toBe("pending"); // still waiting for the PONG: 0.9 s into the fence
    nc.sendData(nc.lastPull(), { seq: 9 }); // sent before the server saw the UNSUB
    await tick(200);
    expect(closing.state).toBe("resolved");
    expect(messages.counters()).toMatchObject({ received: 1, naked: 1 });
    expect(nc.naks()).toHaveLength(1);
    await shutdown(ctx);
  });

  it("a lone server: close() unsubscribes at once", async () => {
    const ctx = start();
    const closing = track(ctx.messages.close());
    await tick();
    expect(ctx.nc.liveSubscriptions).toBe(0);
    expect(closing.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("a lone server (no cluster, no domain, the default API prefix): drain unsubscribes at once", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    await tick(FLOW_QUIET_MS); // the first pull is not recent: drain() does not hold for it
    const drained = track(messages.drain());
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });
});

describe("drain() while messages flow: the server may still route what it decided before the UNSUB", () => {
  // nats-server decides to send a message to a request before its internal queue routes it:
  // an UNSUB (and its PING/PONG fence) can overtake a decided message, which then waits for
  // ack_wait. While a request is open and messages arrive (or a pull went out) within
  // FLOW_QUIET_MS, drain() keeps listening: until the open requests are complete, or
  // FLOW_QUIET_MS without a message, at most 1 s.

  it("messages arriving: the UNSUB waits until the open request is complete; what arrived is handed out", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    await tick(FLOW_QUIET_MS);
    const p1 = nc.lastPull();
    for (let seq = 1; seq <= 4; seq++) nc.sendData(p1, { seq });
    const drained = track(messages.drain());
    await tick(FLOW_QUIET_MS / 2);
    expect(nc.liveSubscriptions).toBe(1);
    expect(drained.state).toBe("pending");
    for (let seq = 5; seq <= 10; seq++) nc.sendData(p1, { seq }); // the request's whole batch
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    const c = loop(messages);
    await tick();
    expect(c.seqs).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(c.done).toBe(true);
    expectNothingLeft(ctx);
  });

  it("messages arriving, the request not complete: the UNSUB goes FLOW_QUIET_MS after the last message", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    await tick(FLOW_QUIET_MS);
    const p1 = nc.lastPull();
    nc.sendData(p1, { seq: 1 });
    const drained = track(messages.drain());
    await tick(FLOW_QUIET_MS - 10);
    nc.sendData(p1, { seq: 2 }); // still flowing: the hold is extended
    await tick(FLOW_QUIET_MS - 10);
    expect(nc.liveSubscriptions).toBe(1);
    await tick(10);
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    const c = loop(messages);
    await tick();
    expect(c.seqs).toEqual([1, 2]);
    expectNothingLeft(ctx);
  });

  it("drain() 90 ms after the last message: the UNSUB goes 10 ms later (the quiet counts from the message, not from the call)", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    await tick(FLOW_QUIET_MS);
    nc.sendData(nc.lastPull(), { seq: 1 });
    await tick(FLOW_QUIET_MS - 10);
    const drained = track(messages.drain());
    await tick(9);
    expect(nc.liveSubscriptions).toBe(1);
    await tick(1);
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("right after a pull, before any message: holds until FLOW_QUIET_MS after the pull (the server may have decided its batch)", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const drained = track(messages.drain()); // the first pull went out at start
    await tick(FLOW_QUIET_MS - 1);
    expect(nc.liveSubscriptions).toBe(1);
    nc.sendData(nc.lastPull(), { seq: 1 }); // decided before the UNSUB, routed late: not lost
    await tick(FLOW_QUIET_MS);
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    const c = loop(messages);
    await tick();
    expect(c.seqs).toEqual([1]);
    expectNothingLeft(ctx);
  });

  it("right after a pull the server has nothing for (consumer info: num_pending 0), no message: drain unsubscribes at once", async () => {
    const nc = new FakeNatsConnection();
    nc.requestHandler = () => JSON.stringify({ config: {}, num_pending: 0 });
    const messages = pullMessages(nc, "S", "C", BASE_OPTS);
    await tick(); // the lookup is answered
    const drained = track(messages.drain());
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await messages.closed();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("a steady trickle: the hold ends after 1 s at most, while messages still come", async () => {
    const ctx = start({ max_messages: 100 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    let seq = 0;
    nc.sendData(p1, { seq: ++seq });
    const drained = track(messages.drain());
    for (let t = 0; t < 950; t += 50) {
      await tick(50);
      nc.sendData(p1, { seq: ++seq });
    }
    expect(nc.liveSubscriptions).toBe(1);
    await tick(50); // 1 s after the call; the trickle goes on
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("drain({ timeout: 1000 }) under a trickle: the hold leaves the fence half of the timeout", async () => {
    const ctx = start({ max_messages: 100 }, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    let seq = 0;
    nc.sendData(p1, { seq: ++seq });
    const drained = track(messages.drain({ timeout: 1_000 }));
    for (let t = 0; t < 450; t += 50) {
      await tick(50);
      nc.sendData(p1, { seq: ++seq });
    }
    const unsubscribing = () => nc.subscriptions.filter((x) => x.drainCalls > 0).length;
    expect(unsubscribing()).toBe(0);
    await tick(50); // 500 ms, the trickle going on: the UNSUB and its fence go out now
    expect(unsubscribing()).toBe(1);
    expect(drained.state).toBe("pending");
    await tick(400);
    nc.answerFlushes(); // the PONG, within the 500 ms left
    await tick();
    expect(drained.state).toBe("resolved");
    expect(nc.liveSubscriptions).toBe(0);
    await shutdown(ctx);
  });

  it("the wall clock stepping back an hour during the hold does not stretch it past its 1 s bound", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    const drained = track(messages.drain());
    await tick(50);
    vi.setSystemTime(Date.now() - 3_600_000); // the wall clock only: the monotonic one goes on
    await tick(950);
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("the wall clock stepping forward an hour during the hold: the fence after it keeps the rest of drain()'s timeout", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    const drained = track(messages.drain());
    await tick(50);
    vi.setSystemTime(Date.now() + 3_600_000); // the wall clock only: the hold's quiet is over
    await tick(60);
    expect(nc.subscriptions.filter((x) => x.drainCalls > 0)).toHaveLength(1); // UNSUB + PING out
    await tick(1_000);
    expect(drained.state).toBe("pending"); // the fence still waits for its PONG
    nc.answerFlushes();
    await tick();
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("stop() holds for the flow as drain() does", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    messages.stop();
    await tick();
    expect(nc.liveSubscriptions).toBe(1);
    await tick(FLOW_QUIET_MS);
    expect(nc.liveSubscriptions).toBe(0);
    await shutdown(ctx);
  });

  it("a message just arrived but no request open (the buffer is full): drain unsubscribes at once", async () => {
    const ctx = start({ max_messages: 2 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1, { seq: 1 });
    nc.sendData(p1, { seq: 2 }); // the request's whole batch: nothing more can be decided for it
    expect(engineOf(messages).ledger.openRequests).toBe(0);
    const drained = track(messages.drain());
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(drained.state).toBe("resolved");
    await shutdown(ctx);
  });

  it("the connection closing during the hold ends it at once (the buffer is dropped, the end says why)", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    const drained = track(messages.drain());
    await tick();
    expect(nc.liveSubscriptions).toBe(1);
    void nc.close(new Error("socket hang up"));
    await tick();
    expect(drained.state).toBe("resolved");
    await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
    expect(messages.counters()).toMatchObject({ received: 1, dropped: 1, pending: 0 });
    expectNothingLeft(ctx);
  });

  it("close() during drain's hold for the flow unsubscribes at once (a harsher end cuts a gentler one)", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    const drained = track(messages.drain());
    await tick();
    expect(nc.liveSubscriptions).toBe(1);
    const closed = track(messages.close());
    await tick();
    expect(nc.liveSubscriptions).toBe(0);
    expect(closed.state).toBe("resolved");
    expect(drained.state).toBe("resolved");
    expect(nc.naks()).toHaveLength(1); // close() gave the buffered message back
    expectNothingLeft(ctx);
  });
});

describe("ending", () => {
  it("next before drain: a next() blocked on an empty stream rejects MsgIteratorClosedError", async () => {
    const ctx = start();
    const { messages } = ctx;
    await tick(FLOW_QUIET_MS); // the first pull is not recent: drain() does not hold for it
    const n = track(messages.next());
    await settle();
    expect(n.state).toBe("pending");
    await messages.drain();
    await settle();
    expect(n.state).toBe("rejected");
    expect(n.error).toBeInstanceOf(MsgIteratorClosedError);
    expect((n.error as Error).cause).toBeUndefined();
    await expect(messages.closed()).resolves.toBeUndefined();
    expectNothingLeft(ctx);
  });

  it("next before drain: a for await loop blocked on an empty stream ends without throwing", async () => {
    const ctx = start();
    const { messages } = ctx;
    await tick(FLOW_QUIET_MS); // the first pull is not recent: drain() does not hold for it
    const c = loop(messages);
    await settle();
    expect(c.done).toBe(false);
    await messages.drain();
    await settle();
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    expect(c.seqs).toEqual([]);
    expectNothingLeft(ctx);
  });

  it("drain before next: next() while the fence is out waits for it, then rejects MsgIteratorClosedError", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    await tick(FLOW_QUIET_MS); // the first pull is not recent: drain() does not hold for it
    const d = track(messages.drain());
    await settle();
    expect(messages.state).toBe("draining");
    const n = track(messages.next());
    await settle();
    expect(n.state).toBe("pending");
    expect(d.state).toBe("pending");
    nc.answerFlushes();
    await settle();
    expect(d.state).toBe("resolved");
    expect(n.state).toBe("rejected");
    expect(n.error).toBeInstanceOf(MsgIteratorClosedError);
    // after closed: rejects at once
    await expect(messages.next()).rejects.toBeInstanceOf(MsgIteratorClosedError);
    expectNothingLeft(ctx);
  });

  it("drain before next, fence never answered: bounded by drain's timeout", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { messages } = ctx;
    const d = track(messages.drain({ timeout: 2_000 }));
    const n = track(messages.next());
    await tick(1_999);
    expect(n.state).toBe("pending");
    await tick(1);
    expect(d.state).toBe("resolved");
    expect(n.state).toBe("rejected");
    expect(n.error).toBeInstanceOf(MsgIteratorClosedError);
    expectNothingLeft(ctx);
  });

  it("drain with messages buffered: they are still handed out after drain resolves", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1, { seq: 1 });
    nc.sendData(p1, { seq: 2 });
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    const d = track(messages.drain());
    await settle();
    // messages the server sent before the UNSUB was processed still arrive behind the fence
    nc.sendData(p1, { seq: 3 });
    nc.answerFlushes();
    await settle();
    expect(d.state).toBe("resolved");
    const c = loop(messages);
    await settle();
    expect(c.seqs).toEqual([1, 2, 3]);
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    expect(nc.naks()).toHaveLength(0);
    expect(messages.counters()).toEqual({
      received: 3,
      processed: 3,
      naked: 0,
      dropped: 0,
      pending: 0,
    });
    await expect(messages.closed()).resolves.toBeUndefined();
    expectNothingLeft(ctx);
  });

  it("await drain() inside the loop body resolves (no deadlock); the loop finishes the buffer", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    for (let seq = 1; seq <= 3; seq++) nc.sendData(p1, { seq });
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    const c = loop(messages, async (seq) => {
      if (seq === 1) await messages.drain();
    });
    await settle();
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    expect(c.seqs).toEqual([1, 2, 3]);
    expectNothingLeft(ctx);
  });

  it("await close() inside the loop body resolves; the rest of the buffer is NAKed", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    const sent = [1, 2, 3].map((seq) => nc.sendData(p1, { seq }));
    const c = loop(messages, async (seq) => {
      if (seq === 1) await messages.close();
    });
    await settle();
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    expect(c.seqs).toEqual([1]);
    expect(nc.naks().map((p) => p.subject)).toEqual([sent[1]?.reply, sent[2]?.reply]);
    expectNothingLeft(ctx);
  });

  it("close() NAKs every buffered, never handed-out message", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    const sent = [1, 2, 3, 4, 5].map((seq) => nc.sendData(p1, { seq }));
    await messages.next();
    await messages.next();
    await expect(messages.close()).resolves.toBeUndefined();
    expect(nc.naks().map((p) => p.subject)).toEqual(sent.slice(2).map((s) => s.reply));
    expect(messages.counters()).toEqual({
      received: 5,
      processed: 2,
      naked: 3,
      dropped: 0,
      pending: 0,
    });
    await expect(messages.next()).rejects.toBeInstanceOf(MsgIteratorClosedError);
    expect(nc.pulls).toHaveLength(1);
    expectNothingLeft(ctx);
  });

  it("close(): a message arriving during the unsubscribe fence is NAKed too", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    nc.sendData(p1);
    const closed = track(messages.close());
    await settle();
    expect(nc.naks()).toHaveLength(1);
    const late = nc.sendData(p1);
    expect(late.delivered).toBe(true);
    expect(messages.counters()).toMatchObject({ received: 2, naked: 2, pending: 0 });
    // Its NAK leaves once the unsubscribe is done, so that the server does not hand it straight
    // back to our own request.
    expect(nc.naks().map((p) => p.subject)).not.toContain(late.reply);
    nc.answerFlushes();
    await settle();
    expect(nc.naks().map((p) => p.subject)).toContain(late.reply);
    expect(closed.state).toBe("resolved");
    expectNothingLeft(ctx);
  });

  it("close() and closed() resolve on an iterator never iterated; close is idempotent", async () => {
    const ctx = start();
    const { messages } = ctx;
    const a = messages.close();
    const b = messages.close();
    await expect(a).resolves.toBeUndefined();
    await expect(b).resolves.toBeUndefined();
    await expect(messages.closed()).resolves.toBeUndefined();
    expect(messages.state).toBe("done");
    expectNothingLeft(ctx);
  });

  it("break out of for await NAKs what is buffered", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    const sent = [1, 2, 3].map((seq) => nc.sendData(p1, { seq }));
    for await (const m of messages) {
      expect(m.seq).toBe(1);
      break;
    }
    expect(nc.naks().map((p) => p.subject)).toEqual([sent[1]?.reply, sent[2]?.reply]);
    await expect(messages.closed()).resolves.toBeUndefined();
    expectNothingLeft(ctx);
  });

  it("abort of the consume signal closes like close(): buffer NAKed, loop ends without throwing", async () => {
    const ac = new AbortController();
    const ctx = start({ signal: ac.signal });
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull());
    const n = track(messages.next());
    const c = loop(messages);
    nc.sendData(nc.lastPull());
    await settle();
    ac.abort();
    await settle();
    expect(n.state).toBe("resolved");
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    expect(messages.state).toBe("done");
    await expect(messages.closed()).resolves.toBeUndefined();
    expect(messages.counters().pending).toBe(0);
    expectNothingLeft(ctx);
  });

  it("stop(err): the loop throws err after the buffer; next() rejects with err as cause", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    nc.sendData(nc.lastPull(), { seq: 2 });
    const err = new Error("shutting down");
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    messages.stop(err);
    await settle();
    const c = loop(messages);
    await settle();
    expect(c.seqs).toEqual([1, 2]);
    expect(c.error).toBe(err);
    const e = await messages.next().catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MsgIteratorClosedError);
    expect((e as Error).cause).toBe(err);
    await expect(messages.closed()).resolves.toBe(err);
    expectNothingLeft(ctx);
  });

  it("connection closed by the application: the loop ends without throwing", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull());
    const c = loop(messages);
    await settle();
    expect(c.seqs).toHaveLength(1);
    nc.sendData(nc.lastPull());
    void nc.close();
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    await expect(messages.closed()).resolves.toBeUndefined();
    const k = messages.counters();
    expect(k.received).toBe(k.processed + k.naked + k.dropped + k.pending);
    expect(k.pending).toBe(0);
    expectNothingLeft(ctx);
  });

  it("connection drained by the application: the loop ends without throwing", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    void nc.drainConnection();
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeUndefined();
    await expect(messages.closed()).resolves.toBeUndefined();
    expectNothingLeft(ctx);
  });

  it("connection closed with an Error (closed() settles first): the loop throws ConnectionClosedError", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    const cause = new Error("stale connection");
    void nc.close(cause, { order: "closed-first" });
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(ConnectionClosedError);
    expect((c.error as Error).cause).toBe(cause);
    await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
    expectNothingLeft(ctx);
  });

  it.each([
    ["closed with an Error", true],
    ["lost with reconnects off (disconnect, then closed without an error)", false],
  ])(
    "drain() done, 3 still buffered, then the connection is %s: the buffer is dropped and the end says why",
    async (_what, withError) => {
      const ctx = start();
      const { nc, messages } = ctx;
      for (let seq = 1; seq <= 3; seq++) nc.sendData(nc.lastPull(), { seq });
      await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
      await messages.drain();
      expect(messages.state).toBe("closed");
      expect(messages.getPending()).toBe(3);
      if (withError) {
        void nc.close(new Error("socket hang up"));
      } else {
        nc.disconnect();
        await settle();
        void nc.close();
      }
      await tick();
      await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
      const err = await messages.next().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MsgIteratorClosedError);
      expect((err as Error).cause).toBeInstanceOf(ConnectionClosedError);
      expect(messages.counters()).toMatchObject({
        received: 3,
        processed: 0,
        dropped: 3,
        pending: 0,
      });
      expectNothingLeft(ctx);
    },
  );

  it("drain() done, 3 buffered, then the connection closes before its disconnect status arrives: a next() asked meanwhile waits for the verdict and gets it as cause", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    for (let seq = 1; seq <= 3; seq++) nc.sendData(nc.lastPull(), { seq });
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    await messages.drain();
    void nc.close(undefined, { order: "closed-first" });
    nc.disconnect();
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(messages.getPending()).toBe(0);
    const next = messages.next().catch((e: unknown) => e); // before the verdict is known
    await tick();
    const err = await next;
    expect(err).toBeInstanceOf(MsgIteratorClosedError);
    expect((err as Error).cause).toBeInstanceOf(ConnectionClosedError);
    await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
    expectNothingLeft(ctx);
  });

  it("connection closed with an Error, subscriptions closing first (nats.js order): the loop throws ConnectionClosedError", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    const cause = new Error("Authorization Violation");
    void nc.close(cause);
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(ConnectionClosedError);
    expect((c.error as Error).cause).toBe(cause);
    await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
    expectNothingLeft(ctx);
  });

  it("connection lost for good (disconnect, then closed without an error, reconnects off): the loop throws ConnectionClosedError", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    nc.disconnect();
    await settle();
    void nc.close();
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(ConnectionClosedError);
    await expect(messages.closed()).resolves.toBeInstanceOf(ConnectionClosedError);
    expectNothingLeft(ctx);
  });

  it("connection lost for good (disconnect, then closed with an Error, nats.js order): ConnectionClosedError keeps that Error as cause", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    const c = loop(messages);
    nc.disconnect();
    await settle();
    const cause = new Error("maximum reconnect attempts exceeded");
    void nc.close(cause);
    await tick();
    expect(c.done).toBe(true);
    expect(c.error).toBeInstanceOf(ConnectionClosedError);
    expect((c.error as Error).cause).toBe(cause);
    expectNothingLeft(ctx);
  });
});

describe("more endings", () => {
  it("an error on the subscription (permissions violation on the inbox) is terminal: the loop throws it after the buffer", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.sendData(nc.lastPull(), { seq: 1 });
    const sub = nc.subscriptions[0];
    const err = new Error("Permissions Violation for Subscription");
    // nats.js: the callback gets the error, then the subscription is closed
    sub?.deliverError(err);
    sub?.markClosed();
    await tick();
    const c = loop(messages);
    await tick();
    expect(c.done).toBe(true);
    expect(c.seqs).toEqual([1]);
    expect(c.error).toBe(err);
    await expect(messages.closed()).resolves.toBe(err);
    expect(nc.pulls).toHaveLength(1);
    expectNothingLeft(ctx);
  });

  it("close() after drain(): what is still buffered is NAKed; both resolve", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const sent = [1, 2, 3].map((seq) => nc.sendData(nc.lastPull(), { seq }));
    await messages.next();
    const d = track(messages.drain());
    await settle();
    expect(messages.state).toBe("draining");
    const c = track(messages.close());
    await settle();
    expect(messages.state).toBe("closed");
    expect(nc.naks().map((p) => p.subject)).toEqual([sent[1]?.reply, sent[2]?.reply]);
    await expect(messages.next()).rejects.toBeInstanceOf(MsgIteratorClosedError);
    nc.answerFlushes();
    await settle();
    expect(d.state).toBe("resolved");
    expect(c.state).toBe("resolved");
    expect(messages.counters()).toEqual({
      received: 3,
      processed: 1,
      naked: 2,
      dropped: 0,
      pending: 0,
    });
    expectNothingLeft(ctx);
  });
});

describe("callback mode", () => {
  it("drain with 3 buffered: closed() waits for the last callback (taken from the closed channel) to settle, and its ack leaves first", async () => {
    const actions: string[] = [];
    const releases: (() => void)[] = [];
    const ctx = start({
      callback: async (m) => {
        actions.push(`start ${m.seq}`);
        await new Promise<void>((r) => releases.push(r));
        m.ack();
        actions.push(`end ${m.seq}`);
      },
    });
    const { nc, messages } = ctx;
    for (let seq = 1; seq <= 3; seq++) nc.sendData(nc.lastPull(), { seq });
    await settle();
    expect(actions).toEqual(["start 1"]);
    const closed = track(messages.closed());
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    await messages.drain();
    for (let i = 0; i < 2; i++) {
      releases.shift()?.();
      await settle();
    }
    expect(actions).toEqual(["start 1", "end 1", "start 2", "end 2", "start 3"]);
    expect(closed.state).toBe("pending");
    releases.shift()?.();
    await settle();
    expect(closed.state).toBe("resolved");
    expect(actions.at(-1)).toBe("end 3");
    expect(nc.acks().filter((p) => p.payload === "+ACK")).toHaveLength(3);
    expectNothingLeft(ctx);
  });

  it("drain while a callback runs and 1 more is buffered; that last one (taken from the closed channel) throws: closed() resolves that error", async () => {
    const boom = new Error("boom in the last callback");
    let release: (() => void) | undefined;
    const ctx = start({
      callback: (m) => {
        if (m.seq === 2) throw boom;
        return new Promise<void>((r) => {
          release = r;
        });
      },
    });
    const { nc, messages } = ctx;
    const closed = track(messages.closed());
    nc.sendData(nc.lastPull(), { seq: 1 });
    nc.sendData(nc.lastPull(), { seq: 2 });
    await settle();
    expect(messages.getPending()).toBe(1);
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    await messages.drain();
    release?.();
    await settle();
    expect(closed.state).toBe("resolved");
    expect(closed.value).toBe(boom);
    expect(messages.counters()).toMatchObject({ received: 2, processed: 2, pending: 0 });
  });
});

describe("no pull after the iterator left open", () => {
  it("drain, then the loop takes the buffer: no pull", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 10; i++) nc.sendData(p1);
    void messages.drain();
    for (let i = 0; i < 10; i++) await messages.next();
    nc.sendStatus(p1, 408, "Request Timeout", { "Nats-Pending-Messages": "0" });
    await tick(20_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("a 408 during drain: no pull", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    void messages.drain();
    await settle();
    nc.send408(nc.lastPull());
    await tick(5_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("a 409 backoff pending, then stop(): the retry never pulls", async () => {
    const ctx = start();
    const { nc, messages } = ctx;
    nc.endPull(nc.lastPull(), 409, "Exceeded MaxWaiting");
    await settle();
    messages.stop();
    await tick(5_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("the missed-heartbeat flush pending, then close(): no pull when it answers", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    await tick(2_000);
    expect(nc.flushCalls).toBe(1);
    void messages.close();
    nc.answerFlushes();
    await tick(5_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("reconnect while draining: no pull", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages } = ctx;
    void messages.drain();
    nc.disconnect();
    await settle();
    nc.reconnect();
    await tick(5_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("abort of the consume signal, then data and a reconnect: no pull", async () => {
    const ac = new AbortController();
    const ctx = start({ signal: ac.signal }, { flushMode: "hold" });
    const { nc } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 10; i++) nc.sendData(p1);
    ac.abort();
    nc.disconnect();
    await settle();
    nc.reconnect();
    await tick(10_000);
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });
});

describe("nothing left behind after closed()", () => {
  const endings: [string, (ctx: Ctx, p: PullRecord) => void | Promise<unknown>][] = [
    ["close()", (ctx) => void ctx.messages.close()],
    ["drain()", (ctx) => void ctx.messages.drain()],
    ["stop()", (ctx) => ctx.messages.stop()],
    ["stop(err)", (ctx) => ctx.messages.stop(new Error("x"))],
    ["400 status", (ctx, p) => void ctx.nc.endPull(p, 400, "Bad Request")],
    ["nc.close()", (ctx) => void ctx.nc.close()],
    ["nc.close(err)", (ctx) => void ctx.nc.close(new Error("boom"))],
    [
      "nc.drain()",
      (ctx) => {
        void ctx.nc.drainConnection();
        ctx.nc.answerFlushes();
      },
    ],
    ["iterator return()", (ctx) => void ctx.messages[Symbol.asyncIterator]().return?.()],
    ["asyncDispose", (ctx) => void ctx.messages[Symbol.asyncDispose]()],
  ];

  it.each(endings)(
    "ending by %s: no subscription, status listener, timer or abort listener",
    async (_, end) => {
      const optSignal = countedSignal();
      const ctx = start({ signal: optSignal.signal }, { flushMode: "hold" });
      const { nc, messages } = ctx;
      expect(optSignal.live()).toBe(1);
      const p1 = nc.lastPull();
      // a next() served by a message
      const s1 = countedSignal();
      const n1 = track(messages.next({ signal: s1.signal }));
      expect(s1.live()).toBe(1);
      nc.sendData(p1);
      await settle();
      expect(n1.state).toBe("resolved");
      expect(s1.live()).toBe(0);
      // a next() aborted
      const s2 = countedSignal();
      const n2 = track(messages.next({ signal: s2.signal }));
      s2.controller.abort();
      await settle();
      expect(n2.state).toBe("rejected");
      expect(s2.live()).toBe(0);
      // a next() timed out
      const n3 = track(messages.next({ timeout: 100 }));
      await tick(100);
      expect(n3.error).toBeInstanceOf(NextTimeoutError);
      // a rotation (missed heartbeats) whose old inbox's fence is still out
      await tick(2_000);
      nc.answerFlushes();
      await settle();
      expect(nc.subscriptions).toHaveLength(2);
      // a next() still waiting, with a signal and a timeout, when the end comes
      const s4 = countedSignal();
      const n4 = track(messages.next({ signal: s4.signal, timeout: 60_000 }));
      nc.sendData(nc.lastPull());
      nc.sendData(nc.lastPull());
      await settle();
      expect(n4.state).toBe("resolved");
      const s5 = countedSignal();
      const n5 = track(messages.next({ signal: s5.signal, timeout: 120_000 }));
      await settle();
      expect(n5.state).toBe("resolved"); // the second buffered message
      const s6 = countedSignal();
      const n6 = track(messages.next({ signal: s6.signal, timeout: 120_000 }));
      await settle();
      expect(n6.state).toBe("pending");
      await end(ctx, nc.lastPull());
      const done = track(messages.closed());
      for (let i = 0; i < 10 && done.state === "pending"; i++) await tick(5_000);
      expect(done.state).toBe("resolved");
      expect(n6.state).not.toBe("pending");
      expect(n6.error).toBeInstanceOf(MsgIteratorClosedError);
      expect(messages.state).toBe("done");
      for (const s of [optSignal, s1, s2, s4, s5, s6]) expect(s.live()).toBe(0);
      expect(nc.liveSubscriptions).toBe(0);
      expect(nc.liveStatusListeners).toBe(0);
      expect(vi.getTimerCount()).toBe(0);
      const k = messages.counters();
      expect(k.received).toBe(k.processed + k.naked + k.dropped + k.pending);
      expect(k.pending).toBe(0);
    },
  );
});

describe("pipelining while the server has a backlog", () => {
  it("a second request goes out while the first is open only when the server reports more pending than is requested", async () => {
    const ctx = start({ max_messages: 10 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    expect(p1.body.batch).toBe(10);
    // caught up: the server has nothing more pending; taking messages frees room, but the open
    // request will take new messages as they come, so nothing is stacked on it
    for (let i = 0; i < 3; i++) nc.sendData(p1, { pending: 0 });
    for (let i = 0; i < 3; i++) await messages.next();
    expect(nc.pulls).toHaveLength(1);
    // a backlog: held 1 + requested 6 ≤ threshold 8, and the server has more than the 6 still
    // requested, so a second request keeps the pipe full
    nc.sendData(p1, { pending: 500 });
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    // never more than max_messages held + requested: 1 held, 6 left on the first, 3 on the second
    expect(p2.body.batch).toBe(3);
    await messages.next();
    // messages go to the oldest request first (the server serves them in order)
    for (let i = 0; i < 6; i++) nc.sendData(p1, { pending: 500 });
    expect(engineOf(messages).snapshot().request?.msgs).toBe(3);
    await shutdown(ctx);
  });

  it("with max_bytes, one request at a time even with a backlog", async () => {
    const ctx = start({ max_messages: 10, max_bytes: 10_000 });
    const { nc, messages } = ctx;
    const p1 = nc.lastPull();
    for (let i = 0; i < 4; i++) nc.sendData(p1, { pending: 500 });
    for (let i = 0; i < 4; i++) await messages.next();
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });
});
