/**
 * Property test: random interleavings of user calls, server messages, connection events and
 * time, then a close. Whatever the order, nothing hangs, nothing is handed out twice or after
 * the end, every message is accounted for, the buffer stays bounded and nothing is left behind.
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { pullMessages } from "../../src/consume.js";
import type { PullEngine } from "../../src/engine.js";
import { MsgIteratorClosedError } from "../../src/errors.js";
import { type CountedSignal, countedSignal, FakeNatsConnection, settle, tick } from "./fake-nc.js";

type Messages = ReturnType<typeof pullMessages>;

type Op =
  | { t: "next" }
  | { t: "nextSignal" }
  | { t: "abortNext" }
  | { t: "nextTimeout"; ms: number }
  | { t: "iterNext" }
  | { t: "drain" }
  | { t: "stop" }
  | { t: "stopErr" }
  | { t: "close" }
  | { t: "break" }
  | { t: "abortConsume" }
  | { t: "data"; n: number; old: boolean }
  | { t: "heartbeat" }
  | { t: "s408" }
  | { t: "disconnect" }
  | { t: "reconnect" }
  | { t: "ncClose"; error: boolean }
  | { t: "advance"; ms: number }
  | { t: "answerFlushes" };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.constant<Op>({ t: "next" }), weight: 8 },
  { arbitrary: fc.constant<Op>({ t: "nextSignal" }), weight: 3 },
  { arbitrary: fc.constant<Op>({ t: "abortNext" }), weight: 3 },
  {
    arbitrary: fc.constantFrom(50, 500, 3_000).map((ms): Op => ({ t: "nextTimeout", ms })),
    weight: 3,
  },
  { arbitrary: fc.constant<Op>({ t: "iterNext" }), weight: 6 },
  { arbitrary: fc.constant<Op>({ t: "drain" }), weight: 1 },
  { arbitrary: fc.constant<Op>({ t: "stop" }), weight: 1 },
  { arbitrary: fc.constant<Op>({ t: "stopErr" }), weight: 1 },
  { arbitrary: fc.constant<Op>({ t: "close" }), weight: 1 },
  { arbitrary: fc.constant<Op>({ t: "break" }), weight: 1 },
  { arbitrary: fc.constant<Op>({ t: "abortConsume" }), weight: 1 },
  {
    arbitrary: fc
      .record({ n: fc.integer({ min: 1, max: 4 }), old: fc.boolean() })
      .map(({ n, old }): Op => ({ t: "data", n, old })),
    weight: 16,
  },
  { arbitrary: fc.constant<Op>({ t: "heartbeat" }), weight: 3 },
  { arbitrary: fc.constant<Op>({ t: "s408" }), weight: 4 },
  { arbitrary: fc.constant<Op>({ t: "disconnect" }), weight: 2 },
  { arbitrary: fc.constant<Op>({ t: "reconnect" }), weight: 3 },
  { arbitrary: fc.boolean().map((error): Op => ({ t: "ncClose", error })), weight: 1 },
  {
    arbitrary: fc.constantFrom(1, 100, 999, 1_000, 2_000, 5_000).map(
      (ms): Op => ({
        t: "advance",
        ms,
      }),
    ),
    weight: 8,
  },
  { arbitrary: fc.constant<Op>({ t: "answerFlushes" }), weight: 4 },
);

interface Config {
  maxMessages: number;
  hold: boolean;
  withSignal: boolean;
}

const configArb: fc.Arbitrary<Config> = fc.record({
  maxMessages: fc.integer({ min: 1, max: 8 }),
  hold: fc.boolean(),
  withSignal: fc.boolean(),
});

interface Pending {
  what: string;
  settled: boolean;
}

const RANK = { open: 0, draining: 1, closed: 2 } as const;

async function runScenario(cfg: Config, ops: Op[]): Promise<void> {
  vi.clearAllTimers();
  const nc = new FakeNatsConnection({ flushMode: cfg.hold ? "hold" : "auto" });
  const consumeSignal = cfg.withSignal ? countedSignal() : undefined;
  const max = cfg.maxMessages;
  const problems: string[] = [];
  let messages: Messages | undefined;

  nc.onPull = (p) => {
    if (p.stream !== "S" || p.consumer !== "C") problems.push(`pull for ${p.subject}`);
    const held = messages ? messages.getPending() : 0;
    if (held + p.body.batch > max) {
      problems.push(`pull #${p.index}: held ${held} + batch ${p.body.batch} > ${max}`);
    }
    if (messages && messages.state !== "open") {
      problems.push(`pull #${p.index} published while ${messages.state}`);
    }
  };

  const m = pullMessages(nc, "S", "C", {
    max_messages: max,
    expires: 5_000,
    idle_heartbeat: 1_000,
    signal: consumeSignal?.signal,
  });
  messages = m;
  const engine = (m as unknown as { engine: PullEngine }).engine;
  const iter = m[Symbol.asyncIterator]();

  const pendings: Pending[] = [];
  const nextSignals: CountedSignal[] = [];
  const toAbort: CountedSignal[] = [];
  const sentSeqs = new Set<number>();
  const handed = new Set<number>();
  let reportedClosed = false;
  let handedCount = 0;

  const onMsg = (what: string, seq: number) => {
    handedCount++;
    if (handed.has(seq)) problems.push(`${what}: seq ${seq} handed out twice`);
    handed.add(seq);
    if (!sentSeqs.has(seq)) problems.push(`${what}: seq ${seq} was never sent`);
    if (reportedClosed) problems.push(`${what}: seq ${seq} handed out after the end`);
  };

  const watch = <T>(what: string, p: Promise<T>, onValue?: (v: T) => void) => {
    const rec: Pending = { what, settled: false };
    pendings.push(rec);
    p.then(
      (v) => {
        rec.settled = true;
        onValue?.(v);
      },
      (err: unknown) => {
        rec.settled = true;
        if (err instanceof MsgIteratorClosedError) reportedClosed = true;
        // an iterator throws its terminal error at the end
        if (what === "iter.next" && !(err instanceof MsgIteratorClosedError)) {
          reportedClosed = true;
        }
      },
    );
  };

  let lastRank = 0;
  const check = (where: string) => {
    const k = m.counters();
    if (k.received !== k.processed + k.naked + k.dropped + k.pending) {
      problems.push(`${where}: counters ${JSON.stringify(k)}`);
    }
    const req = engine.snapshot().request;
    const held = m.getPending();
    if (held + (req?.msgs ?? 0) > max) {
      problems.push(`${where}: held ${held} + requested ${req?.msgs} > ${max}`);
    }
    const rank = RANK[m.state];
    if (rank < lastRank) problems.push(`${where}: state went back to ${m.state}`);
    lastRank = rank;
  };

  for (const [i, op] of ops.entries()) {
    const where = `op ${i} ${JSON.stringify(op)}`;
    switch (op.t) {
      case "next":
        watch("next", m.next(), (msg) => onMsg("next", msg.seq));
        break;
      case "nextSignal": {
        const s = countedSignal();
        nextSignals.push(s);
        toAbort.push(s);
        watch("next(signal)", m.next({ signal: s.signal }), (msg) => onMsg("next", msg.seq));
        break;
      }
      case "abortNext":
        toAbort.shift()?.controller.abort();
        break;
      case "nextTimeout":
        watch("next(timeout)", m.next({ timeout: op.ms }), (msg) => onMsg("next", msg.seq));
        break;
      case "iterNext":
        watch("iter.next", iter.next(), (r) => {
          if (r.done) reportedClosed = true;
          else onMsg("iter.next", r.value.seq);
        });
        break;
      case "drain":
        watch("drain", m.drain());
        break;
      case "stop":
        m.stop();
        break;
      case "stopErr":
        m.stop(new Error("stopped by the test"));
        break;
      case "close":
        watch("close", m.close());
        break;
      case "break":
        watch<unknown>("iter.return", iter.return?.() ?? Promise.resolve());
        break;
      case "abortConsume":
        consumeSignal?.controller.abort();
        break;
      case "data": {
        const open = nc.openPull();
        let target = open;
        if (op.old) {
          const older = nc.pulls.filter((p) => p !== open && !p.done && p.delivered < p.body.batch);
          target = older[older.length - 1] ?? open;
        }
        for (let k = 0; k < op.n && target && target.delivered < target.body.batch; k++) {
          const sent = nc.sendData(target);
          sentSeqs.add(sent.seq);
          check(`${where} (message ${k})`);
        }
        break;
      }
      case "heartbeat": {
        const p = nc.openPull();
        if (p) nc.sendHeartbeat(p);
        break;
      }
      case "s408": {
        const p = nc.openPull();
        if (p) nc.send408(p);
        break;
      }
      case "disconnect":
        if (!nc.isClosed()) nc.disconnect();
        break;
      case "reconnect":
        if (!nc.isClosed() && !nc.connected) nc.reconnect();
        break;
      case "ncClose":
        void nc.close(op.error ? new Error("connection failed") : undefined);
        break;
      case "advance":
        await tick(op.ms);
        break;
      case "answerFlushes":
        nc.answerFlushes();
        break;
    }
    await settle(2);
    check(where);
  }

  // The end: close, and let every fence run out on the fake clock.
  const done = { settled: false, value: undefined as unknown };
  void m.closed().then((v) => {
    done.settled = true;
    done.value = v;
  });
  watch("final close", m.close());
  for (let i = 0; i < 20 && !done.settled; i++) await tick(5_000);
  await tick();
  check("after close");

  expect(problems).toEqual([]);
  expect(done.settled, "closed() resolves").toBe(true);
  expect(m.state).toBe("closed");
  expect(pendings.filter((p) => !p.settled).map((p) => p.what)).toEqual([]);
  const k = m.counters();
  expect(k.pending).toBe(0);
  expect(k.received).toBe(k.processed + k.naked + k.dropped);
  expect(k.processed).toBe(handedCount);
  expect(nc.liveSubscriptions, "live subscriptions").toBe(0);
  expect(nc.liveStatusListeners, "status listeners").toBe(0);
  expect(vi.getTimerCount(), "pending timers").toBe(0);
  expect(consumeSignal?.live() ?? 0, "consume signal listeners").toBe(0);
  expect(
    nextSignals.map((s) => s.live()).reduce((a, b) => a + b, 0),
    "next() signal listeners",
  ).toBe(0);
  // a NAK goes only to messages of ours, and never twice to one
  const nakSubjects = nc.naks().map((p) => p.subject);
  expect(new Set(nakSubjects).size).toBe(nakSubjects.length);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

describe("interleavings", () => {
  it("any order of calls, messages, connection events and time: nothing hangs, doubles, leaks or overflows", async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(opArb, { maxLength: 25, size: "max" }),
        async (cfg, ops) => {
          await runScenario(cfg, ops);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("a fixed nasty sequence: next pending, rotation fence out, drain, connection error, close", async () => {
    await runScenario({ maxMessages: 3, hold: true, withSignal: true }, [
      { t: "nextSignal" },
      { t: "data", n: 2, old: false },
      { t: "advance", ms: 2_000 },
      { t: "answerFlushes" },
      { t: "data", n: 2, old: true },
      { t: "drain" },
      { t: "next" },
      { t: "iterNext" },
      { t: "ncClose", error: true },
      { t: "next" },
    ]);
  });
});
