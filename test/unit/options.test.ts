/**
 * Options: every invalid option is an `InvalidOptionError` thrown before any I/O (proved on a
 * fake connection that counts every call), and the defaults are nats.js's, observed in the pull
 * requests the library publishes.
 */
import { afterEach, describe, expect, it } from "vitest";
import type {
  MsgLike,
  NatsConnectionLike,
  StatusIteratorLike,
  SubscribeOptionsLike,
  SubscriptionLike,
} from "../../src/connection.js";
import {
  AbortError,
  type ConsumeOptions,
  consume,
  ErrorCode,
  InvalidConsumerError,
  InvalidOptionError,
  isAbortError,
  type Messages,
  NextTimeoutError,
  type PullMessagesOptions,
  type PullRequest,
  pullMessages,
} from "../../src/index.js";

// ── a fake connection that counts every call ─────────────────────────────────────────────────

interface Published {
  subject: string;
  body: string;
  reply: string | undefined;
}

class FakeSub implements SubscriptionLike {
  private open = true;
  private resolveClosed!: () => void;
  readonly closed = new Promise<void>((r) => {
    this.resolveClosed = r;
  });
  constructor(
    readonly subject: string,
    readonly callback: SubscribeOptionsLike["callback"],
  ) {}
  unsubscribe(): void {
    this.open = false;
    this.resolveClosed();
  }
  async drain(): Promise<void> {
    this.unsubscribe();
  }
  isClosed(): boolean {
    return !this.open;
  }
  getSubject(): string {
    return this.subject;
  }
}

class FakeConnection implements NatsConnectionLike {
  readonly calls = { subscribe: 0, publish: 0, request: 0, flush: 0, status: 0, closed: 0 };
  readonly published: Published[] = [];
  readonly subs: FakeSub[] = [];
  readonly info = { version: "2.9.10" };
  private resolveClosed!: (v: void | Error) => void;
  private readonly whenClosed = new Promise<void | Error>((r) => {
    this.resolveClosed = r;
  });
  private stopped = false;

  subscribe(subject: string, opts: SubscribeOptionsLike): SubscriptionLike {
    this.calls.subscribe++;
    const sub = new FakeSub(subject, opts.callback);
    this.subs.push(sub);
    return sub;
  }
  publish(subject: string, payload?: Uint8Array, opts?: { reply?: string }): void {
    this.calls.publish++;
    this.published.push({
      subject,
      body: new TextDecoder().decode(payload ?? new Uint8Array()),
      reply: opts?.reply,
    });
  }
  request(): Promise<MsgLike> {
    this.calls.request++;
    return new Promise<MsgLike>(() => {});
  }
  async flush(): Promise<void> {
    this.calls.flush++;
  }
  status(): StatusIteratorLike {
    this.calls.status++;
    let stop!: () => void;
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    return {
      stop: () => stop(),
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<{ type: string }>> => {
          await stopped;
          return { done: true, value: undefined };
        },
      }),
    };
  }
  closed(): Promise<void | Error> {
    this.calls.closed++;
    return this.whenClosed;
  }
  isClosed(): boolean {
    return this.stopped;
  }
  close(): void {
    this.stopped = true;
    this.resolveClosed();
  }

  /** Total calls that would touch the network or register anything on the connection. */
  get io(): number {
    const c = this.calls;
    return c.subscribe + c.publish + c.request + c.flush + c.status + c.closed;
  }

  /** The pull requests published so far (the `$JS.API.CONSUMER.MSG.NEXT.…` ones). */
  pulls(): (PullRequest & { subject: string; reply: string | undefined })[] {
    return this.published
      .filter((p) => p.subject.startsWith("$JS.API.CONSUMER.MSG.NEXT."))
      .map((p) => ({ ...(JSON.parse(p.body) as PullRequest), subject: p.subject, reply: p.reply }));
  }

  /** Delivers one JetStream data message of `S`/`C` to the reply subject of the last pull. */
  deliver(seq: number, size = 10): void {
    const last = this.pulls().at(-1);
    const sub = this.subs.at(-1);
    if (!last?.reply || !sub) throw new Error("no pull to answer");
    const msg: MsgLike = {
      subject: last.reply,
      reply: `$JS.ACK.S.C.1.${seq}.${seq}.${Date.now()}000000.0`,
      data: new TextEncoder().encode(String(seq)),
      sid: 1,
      size: () => size,
    };
    sub.callback(null, msg);
  }
}

/** A v3-shaped pull consumer (what `consume()` reads of `PullConsumerImpl`) on `nc`. */
function fakeConsumer(nc: NatsConnectionLike, extra: Record<string, unknown> = {}) {
  return {
    api: { nc, prefix: "$JS.API", timeout: 5_000 },
    stream: "S",
    name: "C",
    _info: { name: "C" },
    isPullConsumer: () => true,
    next: async (): Promise<null> => null,
    consume: async (): Promise<unknown> => ({}),
    ...extra,
  };
}

// ── helpers ──────────────────────────────────────────────────────────────────────────────────

const opened: Messages[] = [];
afterEach(async () => {
  for (const m of opened.splice(0)) await m.close();
});

function open(nc: FakeConnection, opts?: PullMessagesOptions): Messages {
  const m = pullMessages(nc, "S", "C", opts);
  opened.push(m);
  return m;
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw, nothing was thrown");
}

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error("expected a rejection, the promise resolved");
}

/** Asserts `err` is the InvalidOptionError for `option`, naming the value and what is expected. */
function expectInvalid(err: unknown, option: string, shown: string, expected: RegExp): void {
  expect(err).toBeInstanceOf(InvalidOptionError);
  expect(err).toBeInstanceOf(TypeError);
  const e = err as InvalidOptionError;
  expect(e.name).toBe("InvalidOptionError");
  expect(e.code).toBe("JSITER_INVALID_OPTION");
  expect(e.code).toBe(ErrorCode.InvalidOption);
  expect(e.option).toBe(option);
  expect(e.message).toContain(option);
  // An unknown name is about the name, not the value (shown "").
  if (shown) expect(e.message).toContain(`got ${shown}`);
  else expect(e.message).not.toMatch(/ got /);
  expect(e.message).toMatch(/expected/);
  expect(e.message).toMatch(expected);
}

// ── invalid options ──────────────────────────────────────────────────────────────────────────

interface Case {
  what: string;
  opts: unknown;
  option: string;
  /** How the value appears in the message. */
  shown: string;
  expected: RegExp;
}

const FN = () => {};
const INT_1_UP = /an integer number of \w+ (>= 1\b|from 1 to)/;

const cases: Case[] = [
  {
    what: "max_messages 0",
    opts: { max_messages: 0 },
    option: "max_messages",
    shown: "0",
    expected: INT_1_UP,
  },
  {
    what: "max_messages -1",
    opts: { max_messages: -1 },
    option: "max_messages",
    shown: "-1",
    expected: INT_1_UP,
  },
  {
    what: "max_messages 1.5",
    opts: { max_messages: 1.5 },
    option: "max_messages",
    shown: "1.5",
    expected: INT_1_UP,
  },
  {
    what: 'max_messages "10"',
    opts: { max_messages: "10" },
    option: "max_messages",
    shown: '"10"',
    expected: INT_1_UP,
  },
  {
    what: "max_messages NaN",
    opts: { max_messages: Number.NaN },
    option: "max_messages",
    shown: "NaN",
    expected: INT_1_UP,
  },
  {
    what: "max_messages Infinity",
    opts: { max_messages: Number.POSITIVE_INFINITY },
    option: "max_messages",
    shown: "Infinity",
    expected: INT_1_UP,
  },
  {
    what: "max_bytes -1",
    opts: { max_bytes: -1 },
    option: "max_bytes",
    shown: "-1",
    expected: /an integer number of \w+ (>= 0|from 0 to)/,
  },
  {
    what: "max_bytes 1.5",
    opts: { max_bytes: 1.5 },
    option: "max_bytes",
    shown: "1.5",
    expected: /an integer number of \w+ (>= 0|from 0 to)/,
  },
  {
    what: "expires 999",
    opts: { expires: 999 },
    option: "expires",
    shown: "999",
    expected: /(>= |from )1000\b/,
  },
  {
    what: 'expires "x"',
    opts: { expires: "x" },
    option: "expires",
    shown: '"x"',
    expected: /integer/,
  },
  {
    what: "idle_heartbeat 100",
    opts: { idle_heartbeat: 100 },
    option: "idle_heartbeat",
    shown: "100",
    expected: /from 500 to 30000/,
  },
  {
    what: "idle_heartbeat = expires",
    opts: { expires: 4_000, idle_heartbeat: 4_000 },
    option: "idle_heartbeat",
    shown: "4000",
    expected: /at most half of expires \(4000\), i\.e\. <= 2000/,
  },
  {
    what: "idle_heartbeat > expires",
    opts: { expires: 2_000, idle_heartbeat: 5_000 },
    option: "idle_heartbeat",
    shown: "5000",
    expected: /at most half of expires \(2000\)/,
  },
  {
    what: "idle_heartbeat more than half of expires (the server answers 400 heartbeat value too large)",
    opts: { expires: 2_000, idle_heartbeat: 1_500 },
    option: "idle_heartbeat",
    shown: "1500",
    expected: /at most half of expires \(2000\), i\.e\. <= 1000/,
  },
  {
    what: "idle_heartbeat = default expires",
    opts: { idle_heartbeat: 30_000 },
    option: "idle_heartbeat",
    shown: "30000",
    expected: /at most half of expires \(30000\)/,
  },
  {
    what: "idle_heartbeat > 30000",
    opts: { expires: 120_000, idle_heartbeat: 30_001 },
    option: "idle_heartbeat",
    shown: "30001",
    expected: /from 500 to 30000/,
  },
  {
    what: "threshold_messages = max_messages",
    opts: { max_messages: 10, threshold_messages: 10 },
    option: "threshold_messages",
    shown: "10",
    expected: /less than max_messages \(10\)/,
  },
  {
    what: "threshold_messages > max_messages",
    opts: { max_messages: 10, threshold_messages: 11 },
    option: "threshold_messages",
    shown: "11",
    expected: /less than max_messages \(10\)/,
  },
  {
    what: "threshold_messages = default max_messages",
    opts: { threshold_messages: 100 },
    option: "threshold_messages",
    shown: "100",
    expected: /less than max_messages \(100\)/,
  },
  {
    what: "threshold_messages -1",
    opts: { threshold_messages: -1 },
    option: "threshold_messages",
    shown: "-1",
    expected: /an integer number of \w+ (>= 0|from 0 to)/,
  },
  {
    what: "threshold_bytes without max_bytes",
    opts: { threshold_bytes: 100 },
    option: "threshold_bytes",
    shown: "100",
    expected: /max_bytes/,
  },
  {
    what: "threshold_bytes with max_bytes 0",
    opts: { max_bytes: 0, threshold_bytes: 1 },
    option: "threshold_bytes",
    shown: "1",
    expected: /max_bytes/,
  },
  {
    what: "threshold_bytes = max_bytes",
    opts: { max_bytes: 1_000, threshold_bytes: 1_000 },
    option: "threshold_bytes",
    shown: "1000",
    expected: /less than max_bytes \(1000\)/,
  },
  {
    what: "threshold_bytes > max_bytes",
    opts: { max_bytes: 1_000, threshold_bytes: 5_000 },
    option: "threshold_bytes",
    shown: "5000",
    expected: /less than max_bytes \(1000\)/,
  },
  {
    what: "callback a string",
    opts: { callback: "x" },
    option: "callback",
    shown: '"x"',
    expected: /a function/,
  },
  {
    what: "callback an object",
    opts: { callback: {} },
    option: "callback",
    shown: "{}",
    expected: /a function/,
  },
  {
    what: 'abort_on_missing_resource "yes"',
    opts: { abort_on_missing_resource: "yes" },
    option: "abort_on_missing_resource",
    shown: '"yes"',
    expected: /a boolean/,
  },
  {
    what: "abort_on_missing_resource 1",
    opts: { abort_on_missing_resource: 1 },
    option: "abort_on_missing_resource",
    shown: "1",
    expected: /a boolean/,
  },
  { what: "bind 1", opts: { bind: 1 }, option: "bind", shown: "1", expected: /a boolean/ },
  {
    what: 'bind "true"',
    opts: { bind: "true" },
    option: "bind",
    shown: '"true"',
    expected: /a boolean/,
  },
  {
    what: "signal {}",
    opts: { signal: {} },
    option: "signal",
    shown: "{}",
    expected: /an AbortSignal/,
  },
  {
    what: "signal true",
    opts: { signal: true },
    option: "signal",
    shown: "true",
    expected: /an AbortSignal/,
  },
  {
    what: "signal a function",
    opts: { signal: FN },
    option: "signal",
    shown: "a function",
    expected: /an AbortSignal/,
  },
  {
    what: "an unknown option",
    opts: { max_msgs: 10 },
    option: "max_msgs",
    shown: "",
    expected:
      /^unknown option max_msgs \(did you mean max_messages\?\); expected one of max_messages, /,
  },
  {
    what: "a misspelt option",
    opts: { idle_hearbeat: 1000 },
    option: "idle_hearbeat",
    shown: "",
    expected: /^unknown option idle_hearbeat \(did you mean idle_heartbeat\?\)/,
  },
  {
    what: "a nats.js v2 JetStream option",
    opts: { max_messages: 5, batch: 5 },
    option: "batch",
    shown: "",
    expected: /^unknown option batch; expected one of /,
  },
  { what: "options a string", opts: "x", option: "options", shown: '"x"', expected: /an object/ },
  { what: "options a number", opts: 42, option: "options", shown: "42", expected: /an object/ },
  {
    what: "options a function",
    opts: FN,
    option: "options",
    shown: "a function",
    expected: /an object/,
  },
  { what: "options an array", opts: [], option: "options", shown: "[]", expected: /an object/ },
];

describe("an invalid option to pullMessages() throws InvalidOptionError before any I/O", () => {
  it.each(cases)("$what", ({ opts, option, shown, expected }) => {
    const nc = new FakeConnection();
    const err = thrownBy(() => pullMessages(nc, "S", "C", opts as PullMessagesOptions));
    expectInvalid(err, option, shown, expected);
    expect(nc.calls).toEqual({
      subscribe: 0,
      publish: 0,
      request: 0,
      flush: 0,
      status: 0,
      closed: 0,
    });
  });
});

describe("an invalid option to consume() rejects InvalidOptionError before any I/O", () => {
  it.each(cases)("$what", async ({ opts, option, shown, expected }) => {
    const nc = new FakeConnection();
    const p = consume(fakeConsumer(nc), opts as ConsumeOptions);
    const err = await rejectionOf(p);
    expectInvalid(err, option, shown, expected);
    expect(nc.io).toBe(0);
  });

  it("rejects (a promise) rather than throwing synchronously", async () => {
    const nc = new FakeConnection();
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = consume(fakeConsumer(nc), { max_messages: 0 });
    }).not.toThrow();
    await expect(p).rejects.toBeInstanceOf(InvalidOptionError);
  });

  it("rejects a bad option even with an already-aborted signal, and an aborted signal with good options", async () => {
    const nc = new FakeConnection();
    await expect(
      consume(fakeConsumer(nc), { max_messages: -1, signal: AbortSignal.abort() }),
    ).rejects.toBeInstanceOf(InvalidOptionError);
    expect(nc.io).toBe(0);
  });
});

describe("the message states the real valid range", () => {
  // `expires` must be >= 1000 and `idle_heartbeat` from 500 to 30000: a message for a value of
  // the wrong type (or 0) should say so, not "an integer from 1 to 2147483647", which includes
  // values that are rejected too.
  it.each([
    { opts: { expires: 0 }, option: "expires", shown: "0", expected: /1000/ },
    { opts: { expires: "x" }, option: "expires", shown: '"x"', expected: /1000/ },
    {
      opts: { idle_heartbeat: "x" },
      option: "idle_heartbeat",
      shown: '"x"',
      expected: /500 to 30000/,
    },
    {
      opts: { expires: 60_000, idle_heartbeat: 99_999_999_999 },
      option: "idle_heartbeat",
      shown: "99999999999",
      expected: /500 to 30000/,
    },
  ])("$option $shown", ({ opts, option, shown, expected }) => {
    const nc = new FakeConnection();
    expectInvalid(
      thrownBy(() => pullMessages(nc, "S", "C", opts as PullMessagesOptions)),
      option,
      shown,
      expected,
    );
    expect(nc.io).toBe(0);
  });
});

describe("edge cases that must be rejected too", () => {
  it("threshold_messages above max_messages 1", () => {
    // With max_messages 1 the default threshold equals max_messages (and must be accepted),
    // but an explicit threshold above it is as meaningless as with any other max_messages.
    const nc = new FakeConnection();
    const err = thrownBy(() =>
      pullMessages(nc, "S", "C", { max_messages: 1, threshold_messages: 2 }),
    );
    expectInvalid(err, "threshold_messages", "2", /less than max_messages \(1\)|max_messages/);
    expect(nc.io).toBe(0);
  });
});

describe("edge values that are valid", () => {
  it.each([
    { max_messages: 1 },
    { max_messages: 1, threshold_messages: 0 },
    { threshold_messages: 0 },
    { max_messages: 10, threshold_messages: 9 },
    { expires: 1_000 },
    { expires: 1_000, idle_heartbeat: 500 },
    { expires: 60_000, idle_heartbeat: 30_000 },
    { max_bytes: 0 },
    { max_bytes: 1 },
    { max_bytes: 2 },
    { max_bytes: 3 },
    { max_bytes: 1_000, threshold_bytes: 0 },
    { max_bytes: 1_000, threshold_bytes: 999, max_messages: 5, threshold_messages: 4 },
    { abort_on_missing_resource: true, bind: false },
    { abort_on_missing_resource: false, bind: true },
    { callback: FN },
    { signal: new AbortController().signal },
    { max_messages: undefined, expires: undefined, signal: undefined },
    {},
  ] as PullMessagesOptions[])("%j", (opts) => {
    const nc = new FakeConnection();
    const m = open(nc, opts);
    expect(m.state).toBe("open");
    expect(nc.pulls()).toHaveLength(1);
  });

  it("consume(c) and consume(c, undefined) are valid", async () => {
    const nc = new FakeConnection();
    const a = await consume(fakeConsumer(nc));
    const b = await consume(fakeConsumer(nc), undefined);
    opened.push(a as unknown as Messages, b as unknown as Messages);
    expect(nc.pulls()).toHaveLength(2);
  });
});

describe("next() and drain() options", () => {
  const nextCases = [
    { what: "timeout 0", opts: { timeout: 0 }, option: "timeout", shown: "0", expected: INT_1_UP },
    {
      what: "timeout -5",
      opts: { timeout: -5 },
      option: "timeout",
      shown: "-5",
      expected: INT_1_UP,
    },
    {
      what: "timeout 1.5",
      opts: { timeout: 1.5 },
      option: "timeout",
      shown: "1.5",
      expected: INT_1_UP,
    },
    {
      what: 'timeout "1s"',
      opts: { timeout: "1s" },
      option: "timeout",
      shown: '"1s"',
      expected: INT_1_UP,
    },
    {
      what: "timeout NaN",
      opts: { timeout: Number.NaN },
      option: "timeout",
      shown: "NaN",
      expected: INT_1_UP,
    },
    {
      what: "signal {}",
      opts: { signal: {} },
      option: "signal",
      shown: "{}",
      expected: /an AbortSignal/,
    },
    {
      what: 'signal "x"',
      opts: { signal: "x" },
      option: "signal",
      shown: '"x"',
      expected: /an AbortSignal/,
    },
    {
      what: "options a number",
      opts: 5,
      option: "next options",
      shown: "5",
      expected: /an object/,
    },
  ];

  it.each(nextCases)("next($what) rejects InvalidOptionError; nothing else happens", async (c) => {
    const nc = new FakeConnection();
    const m = open(nc);
    const before = { ...nc.calls };
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = m.next(c.opts as never);
    }).not.toThrow();
    expectInvalid(await rejectionOf(p!), c.option, c.shown, c.expected);
    expect(nc.calls).toEqual(before);
    expect(m.state).toBe("open");
    // The iterator is unharmed: a message still reaches the next call.
    nc.deliver(1);
    const msg = await m.next({ timeout: 1_000 });
    expect(msg.seq).toBe(1);
  });

  const drainCases = [
    {
      what: "timeout -1",
      opts: { timeout: -1 },
      option: "timeout",
      shown: "-1",
      expected: INT_1_UP,
    },
    { what: "timeout 0", opts: { timeout: 0 }, option: "timeout", shown: "0", expected: INT_1_UP },
    {
      what: 'timeout "5s"',
      opts: { timeout: "5s" },
      option: "timeout",
      shown: '"5s"',
      expected: INT_1_UP,
    },
    {
      what: "options a string",
      opts: "soon",
      option: "drain options",
      shown: '"soon"',
      expected: /an object/,
    },
  ];

  it.each(drainCases)("drain($what) rejects InvalidOptionError and does not drain", async (c) => {
    const nc = new FakeConnection();
    const m = open(nc);
    const before = { ...nc.calls };
    let p: Promise<unknown> | undefined;
    expect(() => {
      p = m.drain(c.opts as never);
    }).not.toThrow();
    expectInvalid(await rejectionOf(p!), c.option, c.shown, c.expected);
    expect(nc.calls).toEqual(before);
    expect(m.state).toBe("open");
    expect(nc.subs.every((s) => !s.isClosed())).toBe(true);
  });

  it("next({ signal, timeout }) and drain({ timeout }) with valid values are accepted", async () => {
    const nc = new FakeConnection();
    const m = open(nc);
    nc.deliver(1);
    const msg = await m.next({ signal: new AbortController().signal, timeout: 1_000 });
    expect(msg.seq).toBe(1);
    await m.drain({ timeout: 100 });
    expect(["closed", "done"]).toContain(m.state); // done at once when nothing is left buffered
  });
});

// ── defaults, observed in the pull requests ─────────────────────────────────────────────────

const NS = 1_000_000;

describe("defaults are nats.js's", () => {
  it("first pull: batch 100, expires 30 s, idle_heartbeat 15 s (ns), no max_bytes", () => {
    const nc = new FakeConnection();
    open(nc);
    const pulls = nc.pulls();
    expect(pulls).toHaveLength(1);
    const [first] = pulls;
    expect(first).toEqual({
      subject: "$JS.API.CONSUMER.MSG.NEXT.S.C",
      reply: expect.stringMatching(/^_INBOX\./),
      batch: 100,
      expires: 30_000 * NS,
      idle_heartbeat: 15_000 * NS,
    });
    expect(first).not.toHaveProperty("max_bytes");
    // The reply subject is under the subscribed inbox.
    const sub = nc.subs[0]!;
    expect(sub.getSubject().endsWith(".*")).toBe(true);
    expect(first!.reply!.startsWith(sub.getSubject().slice(0, -1))).toBe(true);
  });

  it("consume() publishes the same first pull as pullMessages()", async () => {
    const nc = new FakeConnection();
    const m = await consume(fakeConsumer(nc));
    opened.push(m as unknown as Messages);
    expect(nc.pulls()).toEqual([
      expect.objectContaining({ batch: 100, expires: 30_000 * NS, idle_heartbeat: 15_000 * NS }),
    ]);
  });

  it.each([
    { expires: 4_000, idle_heartbeat: 2_000 },
    { expires: 1_000, idle_heartbeat: 500 },
    { expires: 1_200, idle_heartbeat: 600 },
    { expires: 60_000, idle_heartbeat: 30_000 },
    { expires: 120_000, idle_heartbeat: 30_000 },
  ])("expires $expires → idle_heartbeat $idle_heartbeat ms", ({ expires, idle_heartbeat }) => {
    const nc = new FakeConnection();
    open(nc, { expires });
    expect(nc.pulls()[0]).toMatchObject({
      expires: expires * NS,
      idle_heartbeat: idle_heartbeat * NS,
    });
  });

  it("explicit values are sent as given", () => {
    const nc = new FakeConnection();
    open(nc, { max_messages: 7, expires: 5_000, idle_heartbeat: 1_000, max_bytes: 4_096 });
    expect(nc.pulls()[0]).toMatchObject({
      batch: 7,
      expires: 5_000 * NS,
      idle_heartbeat: 1_000 * NS,
      max_bytes: 4_096,
    });
  });

  it("threshold_messages defaults to 75 % of max_messages", async () => {
    const nc = new FakeConnection();
    const m = open(nc);
    for (let i = 1; i <= 100; i++) nc.deliver(i);
    expect(m.getPending()).toBe(100);
    expect(nc.pulls()).toHaveLength(1);
    for (let i = 1; i <= 24; i++) await m.next();
    // 76 held > 75: no pull yet.
    expect(nc.pulls()).toHaveLength(1);
    await m.next();
    // 75 held: re-pull what makes it 100 again.
    expect(nc.pulls()).toHaveLength(2);
    expect(nc.pulls()[1]).toMatchObject({ batch: 25 });
  });

  it("threshold_messages as given", async () => {
    const nc = new FakeConnection();
    const m = open(nc, { max_messages: 10, threshold_messages: 2 });
    for (let i = 1; i <= 10; i++) nc.deliver(i);
    for (let i = 1; i <= 7; i++) await m.next();
    expect(nc.pulls()).toHaveLength(1);
    await m.next();
    expect(nc.pulls()).toHaveLength(2);
    expect(nc.pulls()[1]).toMatchObject({ batch: 8 });
  });

  it("threshold_bytes defaults to 75 % of max_bytes", async () => {
    const nc = new FakeConnection();
    const m = open(nc, { max_bytes: 1_000 });
    expect(nc.pulls()[0]).toMatchObject({ batch: 100, max_bytes: 1_000 });
    for (let i = 1; i <= 10; i++) nc.deliver(i, 100);
    expect(m.getPending()).toBe(10);
    await m.next();
    await m.next();
    // 800 bytes held > 750: no pull yet.
    expect(nc.pulls()).toHaveLength(1);
    await m.next();
    // 700 bytes held: re-pull up to 1000 bytes.
    expect(nc.pulls()).toHaveLength(2);
    expect(nc.pulls()[1]).toMatchObject({ batch: 93, max_bytes: 300 });
  });
});

// ── consume() of something that is not a pull consumer; an aborted signal ───────────────────

describe("consume() checks its consumer before any I/O", () => {
  const nc = new FakeConnection();
  it.each([
    { what: "undefined", c: undefined },
    { what: "null", c: null },
    { what: "a number", c: 42 },
    { what: "a string", c: "S/C" },
    { what: "an empty object", c: {} },
    { what: "a connection", c: nc },
    { what: "a push consumer", c: fakeConsumer(nc, { isPullConsumer: () => false }) },
    { what: "a v3 ordered consumer without its info", c: fakeConsumer(nc, { ordered: true }) },
    {
      what: "a v2 ordered consumer without its name prefix",
      c: fakeConsumer(nc, { cursor: { stream_seq: 0 }, isPullConsumer: undefined }),
    },
    { what: "a consumer without connection", c: fakeConsumer(nc, { api: {} }) },
    { what: "a consumer without stream", c: fakeConsumer(nc, { stream: undefined }) },
    {
      what: "a consumer without name",
      c: fakeConsumer(nc, { name: undefined, _info: undefined }),
    },
  ])("$what rejects InvalidConsumerError", async ({ c }) => {
    const err = await rejectionOf(consume(c as never));
    expect(err).toBeInstanceOf(InvalidConsumerError);
    expect(err).toBeInstanceOf(TypeError);
    const e = err as InvalidConsumerError;
    expect(e.name).toBe("InvalidConsumerError");
    expect(e.code).toBe("JSITER_INVALID_CONSUMER");
    expect(e.message).toMatch(/consume\(\)/);
    expect(nc.io).toBe(0);
  });
});

describe("an already-aborted signal", () => {
  it("consume(c, { signal }) rejects an AbortError and subscribes nothing", async () => {
    const nc = new FakeConnection();
    const err = await rejectionOf(consume(fakeConsumer(nc), { signal: AbortSignal.abort() }));
    expect(isAbortError(err)).toBe(true);
    expect(err).not.toBeInstanceOf(InvalidOptionError);
    expect(nc.io).toBe(0);
  });

  it("pullMessages(…, { signal }) throws an AbortError and subscribes nothing", () => {
    const nc = new FakeConnection();
    const err = thrownBy(() => pullMessages(nc, "S", "C", { signal: AbortSignal.abort() }));
    expect(isAbortError(err)).toBe(true);
    expect(nc.io).toBe(0);
  });

  it("the AbortError has a stable name and code; isAbortError knows it, DOM aborts, and nothing else", () => {
    const err = new AbortError();
    expect(err).toBeInstanceOf(Error);
    // abort-controller-x's isAbortError goes by this name too
    expect(err.name).toBe("AbortError");
    expect(err.code).toBe(ErrorCode.Aborted);
    expect(isAbortError(err)).toBe(true);
    expect(isAbortError(new DOMException("stopped", "AbortError"))).toBe(true);
    expect(isAbortError(new Error("AbortError"))).toBe(false);
    expect(isAbortError(new NextTimeoutError(5))).toBe(false);
    expect(isAbortError(null)).toBe(false);
    expect(isAbortError("AbortError")).toBe(false);
  });

  it("a signal aborted after consume() resolved closes the iterator", async () => {
    const nc = new FakeConnection();
    const ac = new AbortController();
    const m = await consume(fakeConsumer(nc), { signal: ac.signal });
    opened.push(m as unknown as Messages);
    expect(nc.calls.subscribe).toBe(1);
    ac.abort();
    await expect(m.closed()).resolves.toBeUndefined();
    expect(m.state).toBe("done");
    expect(nc.subs.every((s) => s.isClosed())).toBe(true);
  });
});
