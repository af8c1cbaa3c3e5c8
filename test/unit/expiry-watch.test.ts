/**
 * Recovery's expiry watch (src/recovery.ts): nats-server removes a pull request whose `expires`
 * has passed without its 408 when a message is ready for it before its expiry timer runs (a
 * real-server probe of this is in test/integration/silent-expiry.test.ts). Heartbeats stop with
 * it, and a ledger that still counts it holds the next pull back. The watch PINGs once the
 * newest open request is past its `expires` plus a grace (idle_heartbeat / 4 within 250–1000 ms),
 * and retires the inbox if the PONG finds that request still counted.
 * Fake timers; heartbeats are sent by hand so that the heartbeat monitor stays quiet.
 */
import type { Consumer } from "@nats-io/jetstream";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { fetchMessages, type PullMessagesOptions, pullMessages } from "../../src/consume.js";
import type { Notification } from "../../src/notifications.js";
import { Recovery } from "../../src/recovery.js";
import { FakeNatsConnection, type FakeOptions, type PullRecord, settle, tick } from "./fake-nc.js";

const FETCH = { expires: 10_000, idle_heartbeat: 1_000 };
const OPTS: PullMessagesOptions = { ...FETCH, max_messages: 10 };

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

function start(opts: PullMessagesOptions = {}, fake: FakeOptions = {}) {
  const nc = new FakeNatsConnection(fake);
  const messages = pullMessages(nc, "S", "C", { ...OPTS, ...opts });
  const notes: Notification[] = [];
  void (async () => {
    for await (const n of messages.status()) notes.push(n);
  })();
  const watchNotes = () =>
    notes.filter((n) => n.type === "debug" && /without a word/.test(n.description));
  return { nc, messages, notes, watchNotes };
}

/**
 * `ms` ms of a request's life, with a heartbeat to `to` every `every` ms but at its end (2.9.10
 * checks a request's expiry before it sends a heartbeat): the request shows life while it lives.
 */
async function heartbeats(nc: FakeNatsConnection, to: PullRecord, ms: number, every = 1_000) {
  for (let t = every; t <= ms; t += every) {
    await tick(every);
    if (t < ms) nc.sendHeartbeat(to);
  }
}

/**
 * Two requests open: p1 gets 6 of its 10 (the server reporting a backlog) and shows life for
 * `lifeMs` (heartbeats every `every` ms); the loop then takes 5, so held 1 + outstanding 4 is at
 * `threshold_messages` 5 and a second request, p2, goes out (start with that threshold).
 */
async function twoRequests(
  { nc, messages }: ReturnType<typeof start>,
  lifeMs: number,
  every = 1_000,
): Promise<{ p1: PullRecord; p2: PullRecord }> {
  const p1 = nc.lastPull();
  for (let i = 0; i < 6; i++) nc.sendData(p1, { pending: 50 });
  if (lifeMs > 0) {
    await heartbeats(nc, p1, lifeMs, every);
    nc.sendHeartbeat(p1);
  }
  for (let i = 0; i < 5; i++) await messages.next();
  await settle();
  expect(nc.pulls).toHaveLength(2);
  return { p1, p2: nc.lastPull() };
}

const inboxOf = (reply: string) => reply.slice(0, reply.lastIndexOf("."));

/** close(), the fence on the fake clock, and nothing of the iterator left. */
async function shutdown({ nc, messages }: ReturnType<typeof start>) {
  let closed = false;
  void messages.closed().then(() => {
    closed = true;
  });
  void messages.close();
  for (let i = 0; i < 10 && !closed; i++) await tick(5_000);
  expect(closed).toBe(true);
  await tick();
  expect(nc.liveSubscriptions).toBe(0);
  expect(nc.liveStatusListeners).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
}

/**
 * fetchMessages() over the scripted connection (a stand-in for what it reads of a nats.js v3
 * pull consumer, src/target.ts), with its notifications, the subjects handed out and how it
 * ended (`"running"`, `undefined` for a clean end, or the error).
 */
async function fetchOver(
  nc: FakeNatsConnection,
  opts: { max_messages: number; expires: number; idle_heartbeat?: number },
) {
  const consumer = {
    isPullConsumer: () => true,
    api: { nc },
    stream: "S",
    name: "C",
    next: () => Promise.resolve(null),
    consume: () => Promise.reject(new Error("not used")),
  };
  const batch = await fetchMessages(consumer as unknown as Consumer, opts);
  const run = { notes: [] as Notification[], got: [] as string[], ended: "running" as unknown };
  void (async () => {
    for await (const n of batch.status()) run.notes.push(n as Notification);
  })();
  void (async () => {
    for await (const m of batch) run.got.push(m.subject);
  })().then(
    () => {
      run.ended = undefined;
    },
    (e: unknown) => {
      run.ended = e;
    },
  );
  return run;
}

describe("expiry watch", () => {
  it("no 408 at expires (the server removed the request without a word): a PING 250 ms after it, and at the PONG a pull on a new inbox", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, watchNotes } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000);
    await tick(249);
    expect(nc.flushCalls).toBe(0);
    await tick(1);
    expect(nc.flushCalls).toBe(1);
    // nothing moves before the PONG
    await settle();
    expect(nc.pulls).toHaveLength(1);
    nc.answerFlushes();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    expect(inboxOf(p2.reply)).not.toBe(inboxOf(p1.reply));
    expect(p2.body.batch).toBe(10);
    expect(watchNotes()).toHaveLength(1);
    expect(ctx.notes.filter((n) => n.type === "heartbeats_missed")).toEqual([]);
    await shutdown(ctx);
  });

  it("the 408 comes before the PONG: same inbox, one pull more, no retire", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, watchNotes } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    // the server's expiry timer ran late: its 408 is ahead of the PONG
    nc.send408(p1, 10);
    await settle();
    expect(nc.pulls).toHaveLength(2);
    nc.answerFlushes();
    await settle();
    expect(nc.pulls).toHaveLength(2);
    expect(nc.subscriptions).toHaveLength(1);
    expect(inboxOf(nc.lastPull().reply)).toBe(inboxOf(p1.reply));
    expect(watchNotes()).toEqual([]);
    await shutdown(ctx);
  });

  it("two requests, the older past its expires, the newest not yet: no PING until the newest is (the older may have completed unseen)", async () => {
    const ctx = start({ threshold_messages: 5 }, { flushMode: "hold" });
    const { nc, watchNotes } = ctx;
    const { p2 } = await twoRequests(ctx, 3_000);
    // p1's expires passes at 10 s: p2 (published at 3 s) lives until 13 s
    await heartbeats(nc, p2, 10_000);
    expect(nc.flushCalls).toBe(0);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toHaveLength(1);
    expect(nc.pulls).toHaveLength(3);
    expect(inboxOf(nc.lastPull().reply)).not.toBe(inboxOf(p2.reply));
    await shutdown(ctx);
  });

  it("a pull published before the PONG: the PONG retires nothing (the newest request is new)", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages, watchNotes } = ctx;
    const p1 = nc.lastPull();
    // 8 buffered, 2 outstanding, a backlog on the server; the request then goes silent past
    // its expires
    for (let i = 0; i < 8; i++) nc.sendData(p1, { pending: 50 });
    await heartbeats(nc, p1, 10_000);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    // the loop takes 7: held 1 + outstanding 2 is below the threshold and the server has more
    // than that: a new pull before the PONG
    for (let i = 0; i < 7; i++) await messages.next();
    await settle();
    const pulls = nc.pulls.length;
    expect(pulls).toBeGreaterThan(1);
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toEqual([]);
    expect(nc.subscriptions).toHaveLength(1);
    expect(nc.pulls).toHaveLength(pulls);
    await shutdown(ctx);
  });

  it("the PONG never comes (a hung server): one PING, none more until the next pull", async () => {
    const ctx = start({ idle_heartbeat: 5_000, expires: 10_000 }, { flushMode: "hold" });
    const { nc } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000, 2_000);
    await tick(1_250);
    expect(nc.flushCalls).toBe(1);
    // the heartbeat monitor PINGs on its own schedule; the watch adds nothing more
    const before = nc.flushCalls;
    await tick(60_000);
    expect(nc.flushCalls - before).toBe(
      ctx.notes.filter((n) => n.type === "heartbeats_missed").length,
    );
    expect(nc.pulls).toHaveLength(1);
    await shutdown(ctx);
  });

  it("default options (expires 30 s, idle_heartbeat 15 s): the grace is 1 s", async () => {
    const ctx = start({ expires: undefined, idle_heartbeat: undefined }, { flushMode: "auto" });
    const { nc, watchNotes } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 30_000, 15_000);
    await tick(999);
    expect(nc.pulls).toHaveLength(1);
    await tick(1);
    await settle();
    expect(nc.pulls).toHaveLength(2);
    expect(watchNotes()).toHaveLength(1);
    await shutdown(ctx);
  });

  it("life on the newest request between the PING and the PONG: no retire then; a grace later, silent again, it is retired", async () => {
    const ctx = start({}, { flushMode: "hold" });
    const { nc, messages, watchNotes } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    // the server read the request late: it is alive, and a message of it comes before the PONG
    nc.sendData(p1);
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toEqual([]);
    expect(nc.subscriptions).toHaveLength(1);
    expect(messages.getPending()).toBe(1);
    // a look a grace later notes the change; one more grace, silent: PING; the PONG retires it
    await tick(499);
    expect(nc.flushCalls).toBe(1);
    await tick(1);
    expect(nc.flushCalls).toBe(2);
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toHaveLength(1);
    expect(nc.subscriptions).toHaveLength(2);
    await shutdown(ctx);
  });

  it("the newest request's 408 between the PING and the PONG while an older one is still counted: the watch looks again, and retires the older", async () => {
    const ctx = start({ threshold_messages: 5 }, { flushMode: "hold" });
    const { nc, watchNotes } = ctx;
    const { p1, p2 } = await twoRequests(ctx, 0);
    await heartbeats(nc, p2, 10_000);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    // p2's 408 releases 2 of its batch: p1 (4 outstanding in all, then 2) is still counted
    expect(p2.body.batch).toBeGreaterThan(2);
    nc.send408(p2, 2);
    await settle();
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toEqual([]);
    // p1 is the newest now, long past its expires: a look a grace later, a PING a grace after
    await tick(499);
    expect(nc.flushCalls).toBe(1);
    await tick(1);
    expect(nc.flushCalls).toBe(2);
    nc.answerFlushes();
    await settle();
    expect(watchNotes()).toHaveLength(1);
    expect(inboxOf(nc.lastPull().reply)).not.toBe(inboxOf(p1.reply));
    await shutdown(ctx);
  });

  it("expires near 2^31 - 1 ms: the watch's timer is clamped, not fired at once over and over", async () => {
    const spy = vi.spyOn(Recovery.prototype, "checkExpired");
    const ctx = start({ expires: 2 ** 31 - 1, idle_heartbeat: 30_000 });
    await tick(1_000);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
    await shutdown(ctx);
  });

  it("a fetch whose request was removed without a word ends, as its 408 would have, behind a fence: a message the server still sends before the fence's PONG is handed out, not lost", async () => {
    const nc = new FakeNatsConnection({ flushMode: "hold" });
    const run = await fetchOver(nc, { max_messages: 10, ...FETCH });
    const { notes, got } = run;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    nc.answerFlushes();
    await settle();
    expect(
      notes.filter((n) => n.type === "debug" && /without a word/.test(n.description)),
    ).toHaveLength(1);
    expect(nc.pulls).toHaveLength(1); // the batch is over: nothing more is asked for
    // the server read the request late: a message of it, after the UNSUB, before its PONG
    const late = nc.sendData(p1);
    expect(late.delivered).toBe(true);
    nc.answerFlushes();
    await settle();
    expect(run.ended).toBeUndefined();
    expect(got).toHaveLength(1);
    expect(nc.naks()).toEqual([]);
    expect(nc.liveSubscriptions).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("consumer info unanswered (no consumer leader): the watch still pulls again on a new inbox (a pull lost to a consumer without a leader costs nothing; the lookup's first answer pulls again too)", async () => {
    const ctx = start();
    const { nc, watchNotes } = ctx;
    let leader = true;
    nc.requestHandler = () => (leader ? "{}" : new Error("TIMEOUT"));
    await settle(); // the first lookup is answered: lookups work on this connection
    leader = false;
    nc.endPull(nc.lastPull(), 503, "No Responders"); // a lookup, unanswered: an outage
    await tick(1_000);
    expect(nc.pulls).toHaveLength(2);
    const p2 = nc.lastPull();
    await heartbeats(nc, p2, 10_000);
    await tick(250);
    await settle();
    expect(watchNotes()).toHaveLength(1);
    expect(nc.pulls).toHaveLength(3);
    expect(inboxOf(nc.lastPull().reply)).not.toBe(inboxOf(p2.reply));
    await shutdown(ctx);
  });

  it("the wall clock jumps forward an hour: the watch keeps to its monotonic clock (no PING before the newest request's expires)", async () => {
    const ctx = start({ threshold_messages: 5 }, { flushMode: "hold" });
    const { nc } = ctx;
    const { p2 } = await twoRequests(ctx, 3_000, 500);
    vi.setSystemTime(Date.now() + 3_600_000);
    // p1's expiry (10 s) wakes the watch; p2 (published at 3 s) lives until 13 s
    await heartbeats(nc, p2, 10_000, 500);
    expect(nc.flushCalls).toBe(0);
    await tick(250);
    expect(nc.flushCalls).toBe(1);
    await shutdown(ctx);
  });

  it("on a server in a cluster (statuses may cross a route): the grace is idle_heartbeat / 2, at least 500 ms", async () => {
    const ctx = start({}, { flushMode: "hold", cluster: "c" });
    const { nc } = ctx;
    const p1 = nc.lastPull();
    await heartbeats(nc, p1, 10_000);
    await tick(499);
    expect(nc.flushCalls).toBe(0);
    await tick(1);
    expect(nc.flushCalls).toBe(1);
    await shutdown(ctx);
  });

  it("a fetch whose subscription hears nothing after its first message (expires 1000, idle_heartbeat 500): heartbeats are missed before the watch's PONG, so the batch ends with HeartbeatsMissedError, as in nats.js, not as at a 408", async () => {
    const nc = new FakeNatsConnection();
    const run = await fetchOver(nc, { max_messages: 10, expires: 1_000 });
    // the message 100 ms after the pull: the monitor's second missed interval is at 1500 ms,
    // after the watch's PONG (1250 ms), which finds the server silent for 1150 ms ≥ 2 × 500
    await tick(100);
    nc.sendData(nc.lastPull());
    await tick(2_000);
    await settle();
    expect(run.got).toHaveLength(1);
    expect((run.ended as Error).name).toBe("HeartbeatsMissedError");
    expect(
      run.notes.filter((n) => n.type === "debug" && /without a word/.test(n.description)),
    ).toEqual([]);
    await tick(5_000);
    expect(nc.liveSubscriptions).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});
