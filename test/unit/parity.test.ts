/**
 * Parity with nats.js where users can observe it, without a server: the notifications' shapes
 * (v3 and v2), the backlog that lets the first `status()` listener see the first pull, and the
 * names, messages and fields of the errors. The same against a real server and nats.js itself:
 * test/integration/parity.test.ts.
 */
import { describe, expect, it } from "vitest";
import { pullMessages } from "../../src/consume.js";
import {
  CallbackModeError,
  ConnectionClosedError,
  ConsumerDeletedError,
  ConsumerNotFoundError,
  ErrorCode,
  JetStreamStatusError,
  StreamNotFoundError,
} from "../../src/errors.js";
import {
  BACKLOG_LIMIT,
  type Notification,
  Notifier,
  toV2,
  toV3,
  type V2Status,
} from "../../src/notifications.js";
import { FakeNatsConnection } from "./fake-nc.js";

const NEXT: Notification = {
  type: "next",
  options: { batch: 10, expires: 30e9, idle_heartbeat: 15e9 },
};

async function take<T>(it: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

describe("notifications have nats.js's shapes", () => {
  it("v3: a server status's description is lower case, as nats.js reads it; ours (code 0) kept", () => {
    expect(toV3({ type: "debug", code: 408, description: "Request Timeout" })).toEqual({
      type: "debug",
      code: 408,
      description: "request timeout",
    });
    expect(toV3({ type: "consumer_deleted", code: 409, description: "Consumer Deleted" })).toEqual({
      type: "consumer_deleted",
      code: 409,
      description: "consumer deleted",
    });
    expect(
      toV3({ type: "exceeded_limits", code: 409, description: "Exceeded MaxWaiting" }),
    ).toEqual({ type: "exceeded_limits", code: 409, description: "exceeded maxwaiting" });
    expect(toV3({ type: "debug", code: 409, description: "" })).toMatchObject({
      description: "unknown",
    });
    const ours: Notification = { type: "debug", code: 0, description: "NAKed message: Why" };
    expect(toV3(ours)).toEqual(ours);
  });

  it("v3: next carries nats.js's pull options, in its key order, max_bytes 0 when unset", () => {
    const n = toV3(NEXT) as Extract<Notification, { type: "next" }>;
    expect(Object.entries(n.options)).toEqual([
      ["batch", 10],
      ["max_bytes", 0],
      ["idle_heartbeat", 15e9],
      ["expires", 30e9],
    ]);
    const withBytes = toV3({ ...NEXT, options: { ...NEXT.options, max_bytes: 1024 } });
    expect(withBytes).toMatchObject({ options: { max_bytes: 1024 } });
  });

  it("v2: { type, data } as nats 2.29; heartbeats and 404/408 debug are not emitted", () => {
    const v2 = (n: Notification): V2Status | undefined => toV2(toV3(n));
    expect(v2({ type: "debug", code: 408, description: "Request Timeout" })).toBeUndefined();
    expect(v2({ type: "debug", code: 404, description: "No Messages" })).toBeUndefined();
    expect(
      v2({ type: "heartbeat", lastConsumerSequence: 1, lastStreamSequence: 2 }),
    ).toBeUndefined();
    expect(v2({ type: "consumer_deleted", code: 409, description: "Consumer Deleted" })).toEqual({
      type: "consumer_deleted",
      data: "409 consumer deleted",
    });
    expect(v2({ type: "exceeded_limits", code: 409, description: "Exceeded MaxWaiting" })).toEqual({
      type: "debug",
      data: "409 exceeded maxwaiting",
    });
    expect(v2({ type: "discard", messagesLeft: 3, bytesLeft: 0 })).toEqual({
      type: "discard",
      data: { msgsLeft: 3, bytesLeft: 0 },
    });
    expect(v2(NEXT)).toEqual({
      type: "next",
      data: { batch: 10, max_bytes: 0, idle_heartbeat: 15e9, expires: 30e9 },
    });
    expect(v2({ type: "heartbeats_missed", count: 2 })).toEqual({
      type: "heartbeats_missed",
      data: 2,
    });
  });
});

describe("Notifier: the first listener gets what came before it", () => {
  it("the first listener receives the notifications made before it, then the live ones", async () => {
    const n = new Notifier();
    n.notify(NEXT);
    const first = n.listen();
    n.notify({ type: "heartbeats_missed", count: 2 });
    const second = n.listen(); // from now on only
    n.notify({ type: "heartbeats_missed", count: 3 });
    expect((await take(first, 3)).map((x) => x.type)).toEqual([
      "next",
      "heartbeats_missed",
      "heartbeats_missed",
    ]);
    expect(await take(second, 1)).toEqual([{ type: "heartbeats_missed", count: 3 }]);
    n.end();
    expect(await first.next()).toEqual({ value: undefined, done: true });
  });

  it("the backlog is bounded (the newest kept), held only until a listener or the end", () => {
    const n = new Notifier();
    for (let i = 1; i <= BACKLOG_LIMIT * 3; i++) n.notify({ type: "heartbeats_missed", count: i });
    expect(n.backlogSize).toBe(BACKLOG_LIMIT);
    const l = n.listen();
    expect(n.backlogSize).toBe(0);
    void l.return?.();
    n.notify({ type: "heartbeats_missed", count: 0 });
    expect(n.backlogSize).toBe(0); // a listener came and went: no backlog any more
    const m = new Notifier();
    m.notify(NEXT);
    m.end();
    expect(m.backlogSize).toBe(0);
  });

  it("a mapped listener skips what the map drops (v2: heartbeats), backlog included", async () => {
    const n = new Notifier();
    n.notify({ type: "heartbeat", lastConsumerSequence: 1, lastStreamSequence: 1 });
    n.notify(NEXT);
    const l = n.listen(toV2);
    n.notify({ type: "heartbeat", lastConsumerSequence: 2, lastStreamSequence: 2 });
    n.notify({ type: "heartbeats_missed", count: 2 });
    n.end();
    const seen: V2Status[] = [];
    for await (const x of l) seen.push(x);
    expect(seen.map((x) => x.type)).toEqual(["next", "heartbeats_missed"]);
  });

  it("once a message was handed out, nothing is kept for a listener yet to come (nats.js: it hears what follows it)", async () => {
    const n = new Notifier();
    n.notify(NEXT);
    n.began();
    expect(n.backlogSize).toBe(0);
    for (let i = 0; i < BACKLOG_LIMIT; i++) n.notify(NEXT);
    expect(n.backlogSize).toBe(0);
    const l = n.listen();
    n.notify({ type: "heartbeats_missed", count: 2 });
    n.end();
    expect(await take(l, 5)).toEqual([{ type: "heartbeats_missed", count: 2 }]);
  });

  it("an iterator nobody listens to keeps no backlog once its first message is handed out, and a listener made then hears the pulls after it", async () => {
    const nc = new FakeNatsConnection();
    const messages = pullMessages(nc, "S", "C", { max_messages: 10, expires: 10_000 });
    const notifier = (messages as unknown as { notifier: Notifier }).notifier;
    expect(notifier.backlogSize).toBe(1); // the first pull's next, for a listener to come
    const first = nc.lastPull();
    for (let i = 0; i < 10; i++) nc.sendData(first);
    await messages.next(); // 9 held, above the threshold (8): no pull yet
    expect(nc.pulls).toHaveLength(1);
    expect(notifier.backlogSize).toBe(0);
    const notes = messages.status();
    await messages.next(); // 8 held: the next pull
    expect(nc.pulls).toHaveLength(2);
    await messages.close();
    const seen: Notification[] = [];
    for await (const x of notes) seen.push(x);
    expect(seen.map((x) => x.type)).toEqual(["next"]);
  });

  it("a listener made after the end is done at once", async () => {
    const n = new Notifier();
    n.notify(NEXT);
    n.end();
    expect(await n.listen().next()).toEqual({ value: undefined, done: true });
  });
});

describe("errors carry what nats.js users match on", () => {
  it("consumer not found: v3's name and message, status 404, apiError() and v2's api_error", () => {
    const e = new ConsumerNotFoundError("S", "C");
    expect(e.name).toBe("ConsumerNotFoundError"); // = @nats-io/jetstream's
    expect(e.message).toBe("consumer not found"); // = both generations'
    expect(e.code).toBe(ErrorCode.ConsumerNotFound); // ours, stable
    expect(e.status).toBe(404); // = v3's
    expect(e.apiError()).toEqual({ code: 404, err_code: 10014, description: "consumer not found" });
    expect(e.api_error).toEqual(e.apiError()); // = v2's
    expect([e.stream, e.consumer]).toEqual(["S", "C"]);
  });

  it("stream not found: v3's name and message, status 404, err_code 10059", () => {
    const e = new StreamNotFoundError("S");
    expect([e.name, e.message, e.status, e.code]).toEqual([
      "StreamNotFoundError",
      "stream not found",
      404,
      ErrorCode.StreamNotFound,
    ]);
    expect(e.apiError().err_code).toBe(10059);
    expect(e.api_error.err_code).toBe(10059);
  });

  it("consumer deleted: nats.js's message and status 409; the server's description kept", () => {
    const e = new ConsumerDeletedError("S", "C", "Consumer Deleted");
    expect([e.name, e.message, e.status, e.code, e.description]).toEqual([
      "ConsumerDeletedError",
      "consumer deleted",
      409,
      ErrorCode.ConsumerDeleted,
      "Consumer Deleted",
    ]);
  });

  it("a terminal status: v3's name, nats.js's lower-case message, the status in status", () => {
    const e = new JetStreamStatusError(400, "Bad Request");
    expect([e.name, e.message, e.status, e.code, e.description]).toEqual([
      "JetStreamStatusError",
      "bad request",
      400,
      ErrorCode.JetStreamStatus,
      "Bad Request",
    ]);
  });

  it("connection closed: v2's message; the reason stays in cause", () => {
    const why = new Error("connection refused");
    const e = new ConnectionClosedError(why);
    expect([e.name, e.message, e.code]).toEqual([
      "ConnectionClosedError",
      "connection closed",
      ErrorCode.ConnectionClosed,
    ]);
    expect(e.cause).toBe(why);
    expect(new ConnectionClosedError().message).toBe("connection closed");
  });

  it("callback mode: v3's message for iterating a consumer that has a callback", () => {
    expect(new CallbackModeError().message).toBe(
      "iterator cannot be used when a callback is registered",
    );
  });
});
