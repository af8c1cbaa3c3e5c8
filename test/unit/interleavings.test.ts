/**
 * Property test: random interleavings of user calls, server messages, every status the engine
 * knows (faults included), hostile inbox traffic, consumer-info answers, connection events,
 * callbacks and time, then a close. Whatever the order:
 *
 * - every `next()` (and every callback) settles, and `closed()` resolves;
 * - nothing is handed out twice, nothing that was never sent, nothing after the end;
 * - buffered + requested-and-not-received never exceeds `max_messages` (nor `max_bytes` when
 *   set), computed from the pull bodies the fake server saw and what it delivered;
 * - `received = processed + naked + dropped + pending`, checked against what the fake saw;
 * - in callback mode two callbacks never run at once;
 * - the iterator leaves `open` only for a reason the contract names, terminal statuses always
 *   end it, and it ends with the error the contract says (and never loses that error);
 * - after `closed()`: no live subscription, status listener, timer or abort listener.
 *
 * Ops run one at a time, each followed by its promise chains; a `pair` runs two in the same
 * synchronous turn, for races. Each run replays exactly (the engine's jitter is pinned).
 *
 * The fake server is faithful where the contract depends on it: it delivers at most `batch`
 * messages and `max_bytes` bytes to a request, answers a message that does not fit the
 * request's bytes with 409 "Message Size Exceeds MaxBytes", drops a request whose inbox was
 * unsubscribed (messages already in flight still arrive), and counts a request silent for two
 * heartbeat intervals as lost when the engine gives up on it (a live one would have sent
 * heartbeats).
 */
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { pullMessages } from "../../src/consume.js";
import type { PullEngine } from "../../src/engine.js";
import {
  CallbackModeError,
  ConnectionClosedError,
  ConsumerDeletedError,
  ConsumerNotFoundError,
  JetStreamStatusError,
  MsgIteratorClosedError,
  StreamNotFoundError,
} from "../../src/errors.js";
import type { JsMsg } from "../../src/jsmsg.js";
import type { Notification } from "../../src/notifications.js";
import {
  type CountedSignal,
  countedSignal,
  FakeNatsConnection,
  type FakeSubscription,
  type PullRecord,
  settle,
  statusHeaders,
  subjectMatches,
  tick,
} from "./fake-nc.js";

type Messages = ReturnType<typeof pullMessages>;

// ── the vocabulary ───────────────────────────────────────────────────────────────────────────

const STATUS_KINDS = [
  "deleted",
  "maxWaiting",
  "exceeded",
  "msgSize",
  "leadership",
  "pushBased",
  "unknown409",
  "badRequest",
  "noResponders",
  "s404",
  "s408",
  "unknownCode",
  "heartbeat",
  "hbOdd",
  "noCode",
] as const;
type StatusKind = (typeof STATUS_KINDS)[number];

/** Inbox traffic that is not ours: never received, never handed out, never thrown. */
const HOSTILE_KINDS = [
  "notAck",
  "fewTokens",
  "otherConsumer",
  "otherStream",
  "nonNumeric",
  "zeroDelivered",
  "bare",
] as const;
type HostileKind = (typeof HOSTILE_KINDS)[number];

/** How the fake answers the consumer-info lookup (`$JS.API.CONSUMER.INFO.S.C`). */
const INFO_KINDS = [
  "ok",
  "consumerNotFound",
  "streamNotFound",
  "hold",
  "reject",
  "garbage",
] as const;
type InfoKind = (typeof INFO_KINDS)[number];

type Op =
  | { t: "next" }
  | { t: "nextSignal" }
  | { t: "abortNext" }
  | { t: "nextTimeout"; ms: number }
  | { t: "iterNext" }
  | { t: "drain"; timeout?: number }
  | { t: "stop" }
  | { t: "stopErr" }
  | { t: "close" }
  | { t: "break" }
  | { t: "abortConsume" }
  /** `n` data messages to the open request (`old`: to an older one still in flight); sizes 0 = computed. */
  | { t: "data"; n: number; old: boolean; sizes: number[]; domain: boolean }
  /** A status to the open request (or, if none, to the current inbox); `ends`: the server ends it. */
  | { t: "status"; kind: StatusKind; variant: number; ends: boolean }
  /** A status addressed to an older request / an older inbox. */
  | { t: "statusOld"; kind: StatusKind; variant: number; pick: number }
  | { t: "hostile"; kind: HostileKind }
  | { t: "setInfo"; kind: InfoKind }
  | { t: "answerInfo"; kind: InfoKind }
  /** The subscription's callback gets an error (nats.js: permissions violation), then maybe closes. */
  | { t: "subError"; close: boolean }
  | { t: "disconnect" }
  | { t: "reconnect" }
  | { t: "ncClose"; error: boolean; closedFirst: boolean }
  | { t: "ncDrain" }
  | { t: "advance"; ms: number }
  | { t: "answerFlushes" }
  | { t: "pair"; a: Op; b: Op };

const c = <T extends Op>(op: T) => fc.constant<Op>(op);

/** Terminal statuses are rarer, so that most schedules go on long after them. */
const statusKindArb = fc.oneof(
  ...STATUS_KINDS.map((k) => ({
    arbitrary: fc.constant(k),
    weight: k === "pushBased" || k === "badRequest" ? 1 : k === "deleted" ? 2 : 3,
  })),
);

const singleOps: fc.WeightedArbitrary<Op>[] = [
  { arbitrary: c({ t: "next" }), weight: 24 },
  { arbitrary: c({ t: "nextSignal" }), weight: 6 },
  { arbitrary: c({ t: "abortNext" }), weight: 6 },
  {
    arbitrary: fc.constantFrom(50, 500, 3_000).map((ms): Op => ({ t: "nextTimeout", ms })),
    weight: 6,
  },
  { arbitrary: c({ t: "iterNext" }), weight: 15 },
  {
    arbitrary: fc
      .option(fc.constantFrom(100, 1_000, 20_000), { nil: undefined })
      .map((timeout): Op => (timeout === undefined ? { t: "drain" } : { t: "drain", timeout })),
    weight: 1,
  },
  { arbitrary: c({ t: "stop" }), weight: 1 },
  { arbitrary: c({ t: "stopErr" }), weight: 1 },
  { arbitrary: c({ t: "close" }), weight: 1 },
  { arbitrary: c({ t: "break" }), weight: 1 },
  { arbitrary: c({ t: "abortConsume" }), weight: 1 },
  {
    arbitrary: fc
      .record({
        n: fc.integer({ min: 1, max: 8 }),
        old: fc.boolean(),
        domain: fc.boolean(),
        sizes: fc.array(
          fc.oneof(
            { arbitrary: fc.constant(0), weight: 1 },
            { arbitrary: fc.integer({ min: 1, max: 250 }), weight: 4 },
            { arbitrary: fc.integer({ min: 250, max: 2_000 }), weight: 1 },
          ),
          { minLength: 8, maxLength: 8 },
        ),
      })
      .map((r): Op => ({ t: "data", ...r })),
    weight: 48,
  },
  {
    arbitrary: fc
      .record({ kind: statusKindArb, variant: fc.nat({ max: 4 }), ends: fc.boolean() })
      .map((r): Op => ({ t: "status", ...r })),
    weight: 30,
  },
  {
    arbitrary: fc
      .record({ kind: statusKindArb, variant: fc.nat({ max: 4 }), pick: fc.nat({ max: 7 }) })
      .map((r): Op => ({ t: "statusOld", ...r })),
    weight: 9,
  },
  {
    arbitrary: fc.constantFrom(...HOSTILE_KINDS).map((kind): Op => ({ t: "hostile", kind })),
    weight: 6,
  },
  {
    arbitrary: fc.constantFrom(...INFO_KINDS).map((kind): Op => ({ t: "setInfo", kind })),
    weight: 6,
  },
  {
    arbitrary: fc.constantFrom(...INFO_KINDS).map((kind): Op => ({ t: "answerInfo", kind })),
    weight: 6,
  },
  { arbitrary: fc.boolean().map((close): Op => ({ t: "subError", close })), weight: 1 },
  { arbitrary: c({ t: "disconnect" }), weight: 6 },
  { arbitrary: c({ t: "reconnect" }), weight: 9 },
  {
    arbitrary: fc
      .record({ error: fc.boolean(), closedFirst: fc.boolean() })
      .map((r): Op => ({ t: "ncClose", ...r })),
    weight: 1,
  },
  { arbitrary: c({ t: "ncDrain" }), weight: 1 },
  {
    arbitrary: fc
      .constantFrom(1, 40, 100, 999, 1_000, 2_000, 5_000)
      .map((ms): Op => ({ t: "advance", ms })),
    weight: 27,
  },
  { arbitrary: c({ t: "answerFlushes" }), weight: 12 },
];

/** Two ops in the same synchronous turn (no promise chain runs between them): races. */
const opArb: fc.Arbitrary<Op> = fc.oneof(...singleOps, {
  arbitrary: fc
    .tuple(
      fc.oneof(...singleOps).filter((o) => o.t !== "advance"),
      fc.oneof(...singleOps).filter((o) => o.t !== "advance"),
    )
    .map(([a, b]): Op => ({ t: "pair", a, b })),
  weight: 15,
});

/** Iterator mode, or callback mode with a sync callback, an async one, or one held by the test. */
type Mode = "iter" | "sync" | "async" | "held";

interface Config {
  maxMessages: number;
  /** 0: no byte limit. */
  maxBytes: number;
  /** Taken modulo max_messages / max_bytes; undefined: the default. */
  thresholdMessages?: number | undefined;
  thresholdBytes?: number | undefined;
  /** Flushes and drain fences wait for `answerFlushes` (else answered at once). */
  hold: boolean;
  withSignal: boolean;
  abort: boolean;
  bind: boolean;
  /** How consumer info is answered until a `setInfo`. */
  info: InfoKind;
  mode: Mode;
  /** Callback calls (0-based) that throw (sync modes) or reject (async modes). */
  throwAt: number[];
  /** At the end, let a draining iterator finish its fence before the final close(). */
  finalWait: boolean;
  /** What Math.random returns (the engine's backoff jitter), so a run replays exactly. */
  jitter: number;
}

const configArb: fc.Arbitrary<Config> = fc.record({
  maxMessages: fc.integer({ min: 1, max: 8 }),
  maxBytes: fc.oneof(fc.constant(0), fc.integer({ min: 60, max: 1_500 })),
  thresholdMessages: fc.option(fc.nat({ max: 100 }), { nil: undefined }),
  thresholdBytes: fc.option(fc.nat({ max: 2_000 }), { nil: undefined }),
  hold: fc.boolean(),
  withSignal: fc.boolean(),
  abort: fc.boolean(),
  bind: fc.boolean(),
  info: fc.constantFrom(...INFO_KINDS),
  mode: fc.constantFrom<Mode>("iter", "iter", "iter", "sync", "async", "held"),
  throwAt: fc.array(fc.nat({ max: 12 }), { maxLength: 2 }),
  finalWait: fc.boolean(),
  jitter: fc.double({ min: 0, max: 0.999, noNaN: true }),
});

const BASE: Config = {
  maxMessages: 3,
  maxBytes: 0,
  hold: false,
  withSignal: false,
  abort: false,
  bind: false,
  info: "ok",
  mode: "iter",
  throwAt: [],
  finalWait: true,
  jitter: 0.5,
};

// ── statuses ─────────────────────────────────────────────────────────────────────────────────

interface StatusSpec {
  code: number | undefined;
  description: string | undefined;
  values: Record<string, string>;
  /** The server ends the request it is addressed to. */
  ends: boolean;
  /** The notification type the engine must emit when it reaches the current inbox. */
  note?: Notification["type"];
  /** Terminal by the contract: the error the iterator must end with. */
  terminal?: (e: unknown) => boolean;
  terminalName?: string;
}

/** Statuses with which nats-server refuses a request before serving it anything. */
const REFUSALS: ReadonlySet<StatusKind> = new Set([
  "maxWaiting",
  "exceeded",
  "pushBased",
  "badRequest",
  "noResponders",
]);

function statusSpec(
  kind: StatusKind,
  variant: number,
  p: PullRecord | undefined,
  ends: boolean,
  cfg: Config,
): StatusSpec {
  const pick = <T>(xs: readonly T[]): T => xs[variant % xs.length] as T;
  const left: Record<string, string> = p
    ? {
        "Nats-Pending-Messages": String(Math.max(0, p.body.batch - p.delivered)),
        "Nats-Pending-Bytes": String(
          p.body.max_bytes === undefined ? 0 : Math.max(0, p.body.max_bytes - p.deliveredBytes),
        ),
      }
    : {};
  const s = (
    code: number | undefined,
    description: string | undefined,
    rest: Partial<StatusSpec> = {},
  ): StatusSpec => ({ code, description, values: {}, ends: true, ...rest });
  switch (kind) {
    case "deleted":
      return s(409, pick(["Consumer Deleted", "consumer deleted"]), {
        note: "consumer_deleted",
        ...(cfg.abort
          ? {
              terminal: (e) =>
                e instanceof ConsumerDeletedError && e.stream === "S" && e.consumer === "C",
              terminalName: "ConsumerDeletedError",
            }
          : {}),
      });
    case "maxWaiting":
      return s(409, "Exceeded MaxWaiting", { note: "exceeded_limits" });
    case "exceeded":
      return s(
        409,
        pick([
          "Exceeded MaxRequestBatch of 2",
          "Exceeded MaxRequestExpires of 1s",
          "Exceeded MaxRequestMaxBytes of 10",
        ]),
        { note: "exceeded_limits" },
      );
    case "msgSize":
      // nats-server says what the request had left (consumer.go nextWaiting)
      return s(409, "Message Size Exceeds MaxBytes", { note: "exceeded_limits", values: left });
    case "leadership":
      return s(409, "Leadership Change", { note: "debug" });
    case "pushBased":
      return s(409, "Consumer is push based", {
        terminal: (e) => e instanceof JetStreamStatusError && e.status === 409,
        terminalName: "JetStreamStatusError(409)",
      });
    case "unknown409":
      return s(409, pick(["Something Unheard Of", "Server Shutdown", ""]), { ends, note: "debug" });
    case "badRequest":
      return s(400, pick(["Bad Request", "Bad Request - invalid batch"]), {
        terminal: (e) => e instanceof JetStreamStatusError && e.status === 400,
        terminalName: "JetStreamStatusError(400)",
      });
    case "noResponders":
      return s(503, pick(["", "No Responders"]), { note: "no_responders" });
    case "s404":
      return s(404, "No Messages", { values: left });
    case "s408":
      return s(408, "Request Timeout", { values: left });
    case "unknownCode":
      return s(pick([418, 500, 201, 999, 1]), "Whatever This Is", { ends, note: "debug" });
    case "heartbeat":
      return s(100, "Idle Heartbeat", {
        values: { "Nats-Last-Consumer": "3", "Nats-Last-Stream": "7" },
        ends: false,
        note: "heartbeat",
      });
    case "hbOdd":
      return pick<StatusSpec>([
        s(100, "Idle Heartbeat", { ends: false, note: "heartbeat" }),
        s(100, "Idle Heartbeat", {
          values: { "Nats-Last-Consumer": "abc", "Nats-Last-Stream": "-4" },
          ends: false,
          note: "heartbeat",
        }),
        s(100, "FlowControl Request", { ends: false, note: "debug" }),
        s(100, undefined, { ends: false, note: "debug" }),
        s(100, "idle heartbeat", {
          values: { "Nats-Last-Consumer": "99999999999999999999999", "Nats-Last-Stream": "1.5" },
          ends: false,
          note: "heartbeat",
        }),
      ]);
    case "noCode":
      return pick<StatusSpec>([
        s(undefined, "Idle Heartbeat", { ends: false }),
        s(0, "Bad Request", { ends: false }),
      ]);
  }
}

const INFO_OK = JSON.stringify({
  type: "io.nats.jetstream.api.v1.consumer_info_response",
  stream_name: "S",
  name: "C",
});
const INFO_CONSUMER_NOT_FOUND = JSON.stringify({
  error: { code: 404, err_code: 10014, description: "consumer not found" },
});
const INFO_STREAM_NOT_FOUND = JSON.stringify({
  error: { code: 404, err_code: 10059, description: "stream not found" },
});

// ── one run ──────────────────────────────────────────────────────────────────────────────────

interface Pending {
  what: string;
  settled: boolean;
}

/** A reason the iterator may leave `open` (or be closed while draining), and the end it implies. */
interface Why {
  what: string;
  /** "none": ends without an error; "conn": decided by how the connection closed. */
  end: "none" | "conn" | ((e: unknown) => boolean);
}

const RANK = { open: 0, draining: 1, closed: 2, done: 3 } as const;
const IDLE_HEARTBEAT = 1_000;

function describeErr(e: unknown): string {
  if (e === undefined) return "undefined";
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** The ack subject of our message `seq`: 9 tokens, or the 12-token layout with a domain. */
function ackReply(seq: number, domain = false): string {
  // the server's backlog after this message: sometimes none, sometimes more than is requested
  // (which lets the engine keep more than one request open)
  const pending = seq % 3 === 0 ? 0 : (seq * 7) % 40;
  const rest = `S.C.1.${seq}.${seq}.${1_700_000_000_000_000_000n + BigInt(seq)}.${pending}`;
  return domain ? `$JS.ACK.hub.ACCHASH.${rest}.r4nd0m` : `$JS.ACK.${rest}`;
}

async function runScenario(cfg: Config, ops: Op[]): Promise<void> {
  vi.clearAllTimers();
  const random = vi.spyOn(Math, "random").mockReturnValue(cfg.jitter);
  try {
    await scenario(cfg, ops);
  } finally {
    random.mockRestore();
  }
}

async function scenario(cfg: Config, ops: Op[]): Promise<void> {
  const nc = new FakeNatsConnection({ flushMode: cfg.hold ? "hold" : "auto" });
  const consumeSignal = cfg.withSignal ? countedSignal() : undefined;
  const max = cfg.maxMessages;
  const maxBytes = cfg.maxBytes;
  const callbackMode = cfg.mode !== "iter";
  const problems: string[] = [];
  const problem = (s: string) => {
    if (problems.length < 20) problems.push(s);
  };
  let m: Messages | undefined;
  const heldBytes = (): number =>
    m ? (m as unknown as { channel: { bytes: number } }).channel.bytes : 0;

  // ── the fake server's view ──

  const subOf = (p: PullRecord): FakeSubscription | undefined =>
    nc.subscriptions.find((s) => subjectMatches(s.subject, p.reply));
  const currentSub = (): FakeSubscription | undefined =>
    nc.subscriptions[nc.subscriptions.length - 1];
  const inboxOf = (s: FakeSubscription): string => s.subject.slice(0, -2);
  /** The server still serves it: not ended, room left, and its inbox still subscribed. */
  const serverLive = (p: PullRecord): boolean =>
    !p.done &&
    p.delivered < p.body.batch &&
    (p.body.max_bytes === undefined || p.deliveredBytes < p.body.max_bytes) &&
    subOf(p)?.state === "open";
  /** The request the server serves next: the oldest one still live (requests are FIFO). */
  const livePull = (): PullRecord | undefined => {
    for (const p of nc.pulls) if (serverLive(p)) return p;
    return undefined;
  };

  /** Buffered + requested-and-not-received, from the pull bodies and deliveries the server saw. */
  const flow = (where: string) => {
    const held = m ? m.getPending() : 0;
    const bytes = heldBytes();
    let reqMsgs = 0;
    let reqBytes = 0;
    for (const p of nc.pulls) {
      if (!serverLive(p)) continue;
      reqMsgs += p.body.batch - p.delivered;
      if (maxBytes > 0) {
        if (p.body.max_bytes === undefined) {
          problem(`${where}: pull #${p.index} has no max_bytes (limit ${maxBytes})`);
        } else {
          reqBytes += p.body.max_bytes - p.deliveredBytes;
        }
      }
    }
    if (held + reqMsgs > max) {
      problem(`${where}: buffered ${held} + requested ${reqMsgs} > max_messages ${max}`);
    }
    if (maxBytes > 0 && bytes + reqBytes > maxBytes) {
      problem(`${where}: buffered ${bytes} B + requested ${reqBytes} B > max_bytes ${maxBytes}`);
    }
  };

  /** When the server last sent something for a pull (or got it), in fake time. */
  const activity = new Map<PullRecord, number>();
  const touch = (subject: string) => {
    const p = nc.pulls.find((x) => x.reply === subject);
    if (p) activity.set(p, Date.now());
  };
  // A live request gets a heartbeat every idle_heartbeat; this fake sends one only when an op
  // says so. So when the engine moves to a new inbox, a request silent for two intervals can
  // only be one the server lost (restart, new leader): it no longer counts as requested. One
  // with recent traffic (a reconnect right after a pull) may well still be waiting.
  nc.onSubscribe = () => {
    for (const p of nc.pulls) {
      if (serverLive(p) && Date.now() - (activity.get(p) ?? 0) >= 2 * IDLE_HEARTBEAT) {
        p.done = true;
      }
    }
  };

  nc.onPull = (p) => {
    activity.set(p, Date.now());
    if (p.stream !== "S" || p.consumer !== "C") problem(`pull for ${p.subject}`);
    if (m && m.state !== "open") problem(`pull #${p.index} published while ${m.state}`);
    if (!Number.isInteger(p.body.batch) || p.body.batch < 1) {
      problem(`pull #${p.index} with batch ${p.body.batch}`);
    }
    if (p.body.max_bytes !== undefined && !(p.body.max_bytes > 0)) {
      problem(`pull #${p.index} with max_bytes ${p.body.max_bytes}`);
    }
    flow(`pull #${p.index} ${JSON.stringify(p.body)}`);
  };

  // ── reasons, and what each op must do ──

  let ncClosing = false;
  let connFailed = false;
  void nc.closed().then((err) => {
    connFailed = err instanceof Error;
  });
  let whys: Why[] = [];
  let mustEnd: string | undefined;
  let mustClose: string | undefined;
  let firstEnd: Why[] | undefined;
  const later: Why[] = [];

  /**
   * Causes that may end the iterator at any later step: the lookup that start() makes (its
   * answer arrives a few microtasks after construction, or when a held request is answered).
   */
  const carried: Why[] = [];
  let infoKind: InfoKind = cfg.info;
  const infoAnswer = (kind: Exclude<InfoKind, "hold">): string | Error => {
    const lookFor = (cls: "consumer" | "stream") => {
      if (!cfg.abort) return;
      const why: Why = {
        what: `consumer info: ${cls} not found`,
        end: (e) =>
          cls === "consumer"
            ? e instanceof ConsumerNotFoundError
            : e instanceof StreamNotFoundError,
      };
      if (m === undefined) carried.push(why);
      else whys.push(why);
      if (m?.state === "open" && !ncClosing) mustEnd ??= `consumer info: ${cls} not found`;
    };
    switch (kind) {
      case "ok":
        return INFO_OK;
      case "consumerNotFound":
        lookFor("consumer");
        return INFO_CONSUMER_NOT_FOUND;
      case "streamNotFound":
        lookFor("stream");
        return INFO_STREAM_NOT_FOUND;
      case "reject":
        return new Error("timeout");
      case "garbage":
        return "{not json";
    }
  };
  nc.requestHandler = (subject) => {
    if (subject !== "$JS.API.CONSUMER.INFO.S.C") problem(`request to ${subject}`);
    if (cfg.bind) problem("consumer info looked up with bind");
    if (m && m.state !== "open") problem(`consumer info looked up while ${m.state}`);
    return infoKind === "hold" ? "hold" : infoAnswer(infoKind);
  };

  // ── what was handed out ──

  const pendings: Pending[] = [];
  const nextSignals: CountedSignal[] = [];
  const toAbort: CountedSignal[] = [];
  const sizeOf = new Map<number, number>();
  const seqOfReply = new Map<string, number>();
  const accepted = new Set<number>();
  const handed = new Set<number>();
  const endCauses: { what: string; cause: unknown }[] = [];
  let reportedClosed = false;
  let seqCounter = 0;
  const done = { settled: false, value: undefined as unknown };

  const onMsg = (what: string, seq: number) => {
    if (handed.has(seq)) problem(`${what}: seq ${seq} handed out twice`);
    handed.add(seq);
    if (!sizeOf.has(seq)) problem(`${what}: seq ${seq} was never sent as ours`);
    if (reportedClosed) problem(`${what}: seq ${seq} handed out after the end`);
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
        if (err instanceof MsgIteratorClosedError) {
          reportedClosed = true;
          endCauses.push({ what, cause: err.cause });
        } else if (what === "iter.next") {
          // an iterator throws the error that ended it, once empty
          reportedClosed = true;
          endCauses.push({ what, cause: err });
        }
      },
    );
  };

  // ── callback mode ──

  let cbRunning = 0;
  let cbCalls = 0;
  let cbThrew = false;
  let autoRelease = false;
  const heldCallbacks: (() => void)[] = [];
  const callbackError = (idx: number): Error => {
    const e = new Error(`callback ${idx} failed`);
    cbThrew = true;
    whys.push({ what: `callback ${idx} threw`, end: (x) => x === e });
    if (m && m.state !== "closed") mustClose ??= `callback ${idx} threw`;
    return e;
  };
  const callback = (msg: JsMsg): void | Promise<void> => {
    const idx = cbCalls++;
    if (cbRunning > 0) problem(`callback ${idx} started while another one runs`);
    if (cbThrew) problem(`callback ${idx} called after a callback threw`);
    if (done.settled) problem(`callback ${idx} called after closed() resolved`);
    onMsg("callback", msg.seq);
    const fails = cfg.throwAt.includes(idx);
    if (cfg.mode === "sync" || (fails && idx % 2 === 0 && cfg.mode === "async")) {
      // a sync callback, or an async-looking one that throws before returning a promise
      if (fails) throw callbackError(idx);
      return;
    }
    cbRunning++;
    return (async () => {
      try {
        if (cfg.mode === "held" && !autoRelease) {
          await new Promise<void>((resolve) => heldCallbacks.push(resolve));
        } else {
          await Promise.resolve();
          await Promise.resolve();
        }
        if (fails) throw callbackError(idx);
      } finally {
        cbRunning--;
      }
    })();
  };

  // ── start ──

  const t = (n: number | undefined, of: number) => (n === undefined ? undefined : n % of);
  m = pullMessages(nc, "S", "C", {
    max_messages: max,
    ...(maxBytes > 0 ? { max_bytes: maxBytes } : {}),
    threshold_messages: t(cfg.thresholdMessages, max),
    ...(maxBytes > 0 ? { threshold_bytes: t(cfg.thresholdBytes, maxBytes) } : {}),
    expires: 5_000,
    idle_heartbeat: IDLE_HEARTBEAT,
    signal: consumeSignal?.signal,
    abort_on_missing_resource: cfg.abort,
    bind: cfg.bind,
    callback: callbackMode ? callback : undefined,
  });
  const msgs: Messages = m;
  const engine = (msgs as unknown as { engine: PullEngine }).engine;
  let iter: AsyncIterator<JsMsg> | undefined;
  if (callbackMode) {
    try {
      msgs[Symbol.asyncIterator]();
      problem("for await in callback mode did not throw");
    } catch (e) {
      if (!(e instanceof CallbackModeError)) problem(`for await in callback mode: ${e}`);
    }
  } else {
    iter = msgs[Symbol.asyncIterator]();
  }
  const notes: Notification[] = [];
  let statusEnded = false;
  void (async () => {
    for await (const n of msgs.status()) notes.push(n);
    statusEnded = true;
  })();

  // ── invariants ──

  let lastRank = 0;
  const check = (where: string, atRest = true) => {
    const k = msgs.counters();
    // In callback mode a message handed to the callback pump reaches the callback (and is
    // counted as processed) a microtask later: between ops, nothing may be in that gap.
    const gap = k.received - (k.processed + k.naked + k.dropped + k.pending);
    if (gap !== 0 && (atRest || !callbackMode || gap !== 1)) {
      problem(`${where}: counters ${JSON.stringify(k)}`);
    }
    flow(where);
    // the engine's own view must keep the limits too
    const req = engine.snapshot().request;
    if (req && k.pending + req.msgs > max) {
      problem(`${where}: engine: held ${k.pending} + requested ${req.msgs} > ${max}`);
    }
    if (req && maxBytes > 0 && heldBytes() + req.bytes > maxBytes) {
      problem(`${where}: engine: held ${heldBytes()} B + requested ${req.bytes} B > ${maxBytes}`);
    }
    const rank = RANK[msgs.state];
    if (rank < lastRank) problem(`${where}: state went back to ${msgs.state}`);
    lastRank = rank;
  };

  /** At rest (promise chains run): the counters agree with what the fake server saw. */
  const audit = (where: string) => {
    const k = msgs.counters();
    const naked = new Set<number>();
    for (const p of nc.naks()) {
      const seq = seqOfReply.get(p.subject);
      if (seq === undefined) {
        problem(`${where}: NAK to ${p.subject}, not a message of ours`);
        continue;
      }
      if (!accepted.has(seq)) problem(`${where}: NAK of seq ${seq}, never received`);
      if (handed.has(seq)) problem(`${where}: NAK of seq ${seq}, which was handed out`);
      naked.add(seq);
    }
    if (accepted.size !== k.received) {
      problem(`${where}: ${accepted.size} delivered to our inbox, received ${k.received}`);
    }
    if (handed.size !== k.processed) {
      problem(`${where}: ${handed.size} handed out, processed ${k.processed}`);
    }
    if (naked.size !== k.naked) problem(`${where}: ${naked.size} NAKs sent, naked ${k.naked}`);
    if (k.dropped > 0) {
      if (k.pending !== 0) problem(`${where}: dropped ${k.dropped} yet ${k.pending} buffered`);
    } else {
      let bytes = 0;
      for (const seq of accepted) {
        if (!handed.has(seq) && !naked.has(seq)) bytes += sizeOf.get(seq) ?? 0;
      }
      if (bytes !== heldBytes()) {
        problem(`${where}: buffer holds ${heldBytes()} B, the messages in it ${bytes} B`);
      }
    }
  };

  /** Runs one op: before/after states, the reasons it may end the iterator, and the checks. */
  const step = async (where: string, body: () => void | Promise<void>) => {
    whys = [...carried, ...(ncClosing ? [{ what: "connection closed", end: "conn" } as Why] : [])];
    mustEnd = undefined;
    mustClose = undefined;
    const before = msgs.state;
    const bufferedBefore = msgs.getPending();
    await body();
    await settle(2);
    const after = msgs.state;
    if (before === "open" && after !== "open") {
      if (whys.length === 0) problem(`${where}: left open (now ${after}) with no cause`);
      firstEnd = whys.length > 0 ? [...whys] : [{ what: "no cause", end: "none" }];
    }
    if (before === "draining" && RANK[after] >= RANK.closed) later.push(...whys);
    // a callback that throws while the callbacks still work through a closed iterator's
    // buffer ends it with its error too (when nothing else set one)
    // (and so does a connection that fails while a drained buffer is still being handed out:
    // the buffer is dropped, and the end says why)
    if (RANK[before] >= RANK.closed) {
      later.push(
        ...whys.filter(
          (w) => w.what.startsWith("callback") || (w.end === "conn" && bufferedBefore > 0),
        ),
      );
    }
    if (mustEnd && after === "open") problem(`${where}: ${mustEnd} did not end the iterator`);
    if (mustClose && RANK[after] < RANK.closed) {
      problem(`${where}: ${mustClose} did not close the iterator (${after})`);
    }
    check(where);
    audit(where);
  };

  // ── server actions ──

  const statusTo = (subject: string, spec: StatusSpec): boolean =>
    nc.route(subject, {
      subject,
      reply: undefined,
      data: new Uint8Array(),
      headers: statusHeaders(spec.code, spec.description, spec.values),
    });

  /** Sends a status; a terminal one reaching the current inbox must end an open iterator. */
  const sendStatus = (subject: string, target: PullRecord | undefined, spec: StatusSpec) => {
    const cur = currentSub();
    const toCurrent =
      cur !== undefined && cur.state !== "closed" && subjectMatches(cur.subject, subject);
    const wasOpen = msgs.state === "open";
    const notesBefore = notes.length;
    if (target && spec.ends) target.done = true;
    // a status with a code is the server speaking about that request (garbage is not)
    if (spec.code) touch(subject);
    statusTo(subject, spec);
    if (!toCurrent) return;
    if (spec.terminal) {
      whys.push({ what: `status ${spec.code} ${spec.description}`, end: spec.terminal });
      if (wasOpen) mustEnd ??= `terminal status ${spec.code} ${spec.description}`;
    }
    if (wasOpen && spec.note) {
      const note = spec.note;
      // notifications reach the listener through a promise: look once the op has settled
      void settle(1).then(() => {
        if (!notes.slice(notesBefore).some((n) => n.type === note)) {
          problem(`status ${spec.code} ${spec.description}: no ${note} notification`);
        }
      });
    }
  };

  const sendOurData = (target: PullRecord, size: number, domain: boolean): boolean => {
    const seq = ++seqCounter;
    const reply = ackReply(seq, domain);
    const data = `m${seq}`;
    const bytes = size > 0 ? size : `events.${seq}`.length + reply.length + data.length;
    if (
      target.body.max_bytes !== undefined &&
      bytes > target.body.max_bytes - target.deliveredBytes
    ) {
      // the server never exceeds a request's max_bytes: it ends the request instead
      sendStatus(target.reply, target, statusSpec("msgSize", 0, target, true, cfg));
      return false;
    }
    sizeOf.set(seq, bytes);
    seqOfReply.set(reply, seq);
    activity.set(target, Date.now());
    const receivedBefore = msgs.counters().received;
    const sent = nc.sendData(target, { seq, data, reply, ...(size > 0 ? { size } : {}) });
    if (sent.delivered) accepted.add(seq);
    const receivedNow = msgs.counters().received;
    if (receivedNow !== receivedBefore + (sent.delivered ? 1 : 0)) {
      problem(`data seq ${seq}: received went ${receivedBefore} -> ${receivedNow}`);
    }
    return true;
  };

  const hostile = (kind: HostileKind) => {
    const cur = currentSub();
    const subject = livePull()?.reply ?? (cur ? `${inboxOf(cur)}.0` : "_INBOX.none.0");
    const seq = ++seqCounter;
    const before = msgs.counters().received;
    switch (kind) {
      case "notAck":
        nc.sendData(subject, { seq, reply: `_INBOX.elsewhere.${seq}` });
        break;
      case "fewTokens":
        nc.sendData(subject, { seq, reply: `$JS.ACK.S.C.1.${seq}` });
        break;
      case "otherConsumer":
        nc.sendData(subject, { seq, consumer: "OTHER" });
        break;
      case "otherStream":
        nc.sendData(subject, { seq, stream: "T" });
        break;
      case "nonNumeric":
        nc.sendData(subject, { seq, reply: `$JS.ACK.S.C.x.${seq}.${seq}.1.0` });
        break;
      case "zeroDelivered":
        nc.sendData(subject, { seq, reply: `$JS.ACK.S.C.0.${seq}.${seq}.1.0` });
        break;
      case "bare":
        nc.route(subject, {
          subject,
          reply: undefined,
          data: new TextEncoder().encode("hello"),
          headers: undefined,
        });
        break;
    }
    if (msgs.counters().received !== before) problem(`hostile ${kind}: counted as received`);
  };

  // ── the ops ──

  let checkedCallbackNext = false;
  const nextLike = (): boolean => {
    if (!callbackMode) return false;
    if (!checkedCallbackNext) {
      checkedCallbackNext = true;
      msgs.next().then(
        () => problem("next() in callback mode resolved"),
        (e: unknown) => {
          if (!(e instanceof CallbackModeError)) problem(`next() in callback mode: ${e}`);
        },
      );
    }
    heldCallbacks.shift()?.();
    return true;
  };

  const run = async (op: Op) => {
    switch (op.t) {
      case "next":
        if (nextLike()) break;
        watch("next", msgs.next(), (msg) => onMsg("next", msg.seq));
        break;
      case "nextSignal": {
        if (nextLike()) break;
        const s = countedSignal();
        nextSignals.push(s);
        toAbort.push(s);
        watch("next(signal)", msgs.next({ signal: s.signal }), (msg) => onMsg("next", msg.seq));
        break;
      }
      case "abortNext":
        toAbort.shift()?.controller.abort();
        break;
      case "nextTimeout":
        if (nextLike()) break;
        watch("next(timeout)", msgs.next({ timeout: op.ms }), (msg) => onMsg("next", msg.seq));
        break;
      case "iterNext":
        if (nextLike() || !iter) break;
        watch("iter.next", iter.next(), (r) => {
          if (r.done) {
            reportedClosed = true;
            endCauses.push({ what: "iter.next done", cause: undefined });
          } else onMsg("iter.next", r.value.seq);
        });
        break;
      case "drain":
        whys.push({ what: "drain()", end: "none" });
        watch("drain", msgs.drain(op.timeout === undefined ? undefined : { timeout: op.timeout }));
        break;
      case "stop":
        whys.push({ what: "stop()", end: "none" });
        msgs.stop();
        break;
      case "stopErr": {
        const e = new Error("stopped by the test");
        whys.push({ what: "stop(err)", end: (x) => x === e });
        msgs.stop(e);
        break;
      }
      case "close":
        whys.push({ what: "close()", end: "none" });
        watch("close", msgs.close());
        break;
      case "break":
        whys.push({ what: "break", end: "none" });
        if (iter) watch<unknown>("iter.return", iter.return?.() ?? Promise.resolve());
        else watch("asyncDispose", msgs[Symbol.asyncDispose]());
        break;
      case "abortConsume":
        whys.push({ what: "signal abort", end: "none" });
        consumeSignal?.controller.abort();
        break;
      case "data": {
        const live = livePull();
        let target = live;
        if (op.old) {
          // a request of an earlier inbox generation (the server serves one inbox's requests
          // in order, so a later request of the live one never gets data before it)
          const liveSub = live ? subOf(live) : undefined;
          const older = nc.pulls.filter(
            (p) =>
              p !== live &&
              (liveSub === undefined || subOf(p) !== liveSub) &&
              !p.done &&
              p.delivered < p.body.batch &&
              (p.body.max_bytes === undefined || p.deliveredBytes < p.body.max_bytes) &&
              subOf(p)?.state !== "closed",
          );
          target = older[older.length - 1] ?? live;
        }
        for (let k = 0; k < op.n && target; k++) {
          if (target.done || target.delivered >= target.body.batch) break;
          if (!sendOurData(target, maxBytes > 0 ? (op.sizes[k] ?? 0) : 0, op.domain)) break;
          check(`data (message ${k})`, false);
        }
        break;
      }
      case "status": {
        let live = livePull();
        // nats-server refuses a request when it arrives, before serving it anything: a refusal
        // goes to a request that received nothing, or is not sent.
        if (live && REFUSALS.has(op.kind)) {
          live = nc.pulls.find((p) => serverLive(p) && p.delivered === 0);
          if (!live) break;
        }
        const cur = currentSub();
        const subject = live?.reply ?? (cur ? `${inboxOf(cur)}.0` : "_INBOX.none.0");
        sendStatus(subject, live, statusSpec(op.kind, op.variant, live, op.ends, cfg));
        break;
      }
      case "statusOld": {
        const live = livePull();
        // (a refusal only ever goes to a request that received nothing: see "status")
        const olds = nc.pulls.filter(
          (p) => p !== live && (!REFUSALS.has(op.kind) || p.delivered === 0),
        );
        const target = olds.length > 0 ? olds[op.pick % olds.length] : undefined;
        const cur = currentSub();
        const subject = target?.reply ?? (cur ? `${inboxOf(cur)}.999` : "_INBOX.none.0");
        sendStatus(subject, target, statusSpec(op.kind, op.variant, target, true, cfg));
        break;
      }
      case "hostile":
        hostile(op.kind);
        break;
      case "setInfo":
        infoKind = op.kind;
        break;
      case "answerInfo":
        if (op.kind !== "hold") {
          const kind = op.kind;
          nc.answerHeldRequests(() => infoAnswer(kind));
        }
        break;
      case "subError": {
        const sub = currentSub();
        if (!sub || sub.state === "closed") break;
        const e = new Error("Permissions Violation for Subscription");
        const wasOpen = msgs.state === "open";
        sub.deliverError(e);
        whys.push({ what: "subscription error", end: (x) => x === e });
        if (wasOpen) mustEnd ??= "a subscription error";
        if (op.close) sub.markClosed();
        break;
      }
      case "disconnect":
        if (!nc.isClosed()) nc.disconnect();
        break;
      case "reconnect":
        if (!nc.isClosed() && !nc.connected) nc.reconnect();
        break;
      case "ncClose":
        if (!ncClosing) {
          ncClosing = true;
          whys.push({ what: "connection closed", end: "conn" });
        }
        void nc.close(op.error ? new Error("connection failed") : undefined, {
          order: op.closedFirst ? "closed-first" : "nats",
        });
        break;
      case "ncDrain":
        if (!ncClosing) {
          ncClosing = true;
          whys.push({ what: "connection drained", end: "conn" });
        }
        void nc.drainConnection();
        break;
      case "advance":
        await tick(op.ms);
        break;
      case "answerFlushes":
        nc.answerFlushes();
        break;
      case "pair": {
        // both start before any promise chain runs (neither awaits before its first effect)
        const a = run(op.a);
        const b = run(op.b);
        await Promise.all([a, b]);
        break;
      }
    }
  };

  for (const [i, op] of ops.entries()) {
    await step(`op ${i} ${JSON.stringify(op)}`, () => run(op));
  }

  // ── the end: let what is due run, maybe let a drain finish, then close ──

  void msgs.closed().then((v) => {
    done.settled = true;
    done.value = v;
    reportedClosed = true;
  });
  await step("end: due timers", () => tick());
  if (cfg.finalWait) {
    for (let i = 0; i < 8 && msgs.state === "draining"; i++) {
      await step(`end: fence ${i}`, async () => {
        nc.answerFlushes();
        await tick(1_000);
      });
    }
  }
  autoRelease = true;
  await step("end: release callbacks", () => {
    for (const r of heldCallbacks.splice(0)) r();
  });
  if (callbackMode && msgs.state === "closed") {
    // the callbacks take what is left: closed() must resolve without a close()
    for (let i = 0; i < 3 && !done.settled; i++) {
      await step(`end: callbacks empty the buffer ${i}`, async () => {
        nc.answerFlushes();
        await tick(5_000);
      });
    }
    if (!done.settled) {
      problem(
        `callback mode: closed with ${msgs.getPending()} buffered, yet closed() is pending (callback threw: ${cbThrew})`,
      );
    }
  }
  await step("final close", () => {
    whys.push({ what: "final close()", end: "none" });
    watch("final close", msgs.close());
  });
  for (let i = 0; i < 20 && !done.settled; i++) {
    await step(`end: wait ${i}`, async () => {
      for (const r of heldCallbacks.splice(0)) r();
      await tick(5_000);
    });
  }
  // lookups still unanswered are answered now: nothing may change any more
  nc.answerHeldRequests(INFO_CONSUMER_NOT_FOUND);
  await step("end: late answers", () => tick());

  // ── the verdict ──

  const E = done.value;
  const resolve = (w: Why): "none" | ((e: unknown) => boolean) =>
    w.end !== "conn"
      ? w.end
      : connFailed || !nc.connected
        ? (e: unknown) => e instanceof ConnectionClosedError
        : "none";
  const first = (firstEnd ?? [{ what: "final close()", end: "none" }]).map((w) => ({
    what: w.what,
    end: resolve(w),
  }));
  const allowed = [...first, ...later.map((w) => ({ what: w.what, end: resolve(w) }))];
  if (first.every((w) => w.end !== "none") && E === undefined) {
    problem(
      `ended by ${first.map((w) => w.what).join(" / ")}, yet closed() resolved undefined (the error was lost)`,
    );
  } else if (!allowed.some((w) => (w.end === "none" ? E === undefined : w.end(E)))) {
    problem(
      `closed() resolved ${describeErr(E)}; the causes were ${allowed.map((w) => w.what).join(", ")}`,
    );
  }
  for (const { what, cause } of endCauses) {
    if (cause !== E)
      problem(`${what} ended with ${describeErr(cause)}, closed() with ${describeErr(E)}`);
  }
  for (const n of notes) {
    if (
      n.type === "heartbeat" &&
      ![n.lastConsumerSequence, n.lastStreamSequence].every((x) => Number.isFinite(x) && x >= 0)
    ) {
      problem(`heartbeat notification ${JSON.stringify(n)}`);
    }
  }

  expect(problems).toEqual([]);
  expect(done.settled, "closed() resolves").toBe(true);
  expect(msgs.state).toBe("done");
  expect(pendings.filter((p) => !p.settled).map((p) => p.what)).toEqual([]);
  expect(cbRunning, "callbacks still running").toBe(0);
  const k = msgs.counters();
  expect(k.pending).toBe(0);
  expect(k.received).toBe(k.processed + k.naked + k.dropped);
  expect(k.processed).toBe(handed.size);
  expect(nc.liveSubscriptions, "live subscriptions").toBe(0);
  expect(nc.liveStatusListeners, "status listeners").toBe(0);
  expect(statusEnded, "status() iterator ended").toBe(true);
  expect(vi.getTimerCount(), "pending timers").toBe(0);
  expect(consumeSignal?.live() ?? 0, "consume signal listeners").toBe(0);
  expect(
    nextSignals.map((s) => s.live()).reduce((a, b) => a + b, 0),
    "next() signal listeners",
  ).toBe(0);
  const nakSubjects = nc.naks().map((p) => p.subject);
  expect(new Set(nakSubjects).size, "a message NAKed twice").toBe(nakSubjects.length);
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

describe("interleavings", () => {
  it("10,000 schedules of every call, message, status, fault and callback: nothing hangs, doubles, leaks or overflows", async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(opArb, { maxLength: 40, size: "max" }),
        async (cfg, ops) => {
          await runScenario(cfg, ops);
        },
      ),
      { numRuns: 10_000 },
    );
  }, 120_000);

  it("a fixed nasty sequence: next pending, rotation fence out, drain, connection error, close", async () => {
    await runScenario({ ...BASE, maxMessages: 3, hold: true, withSignal: true }, [
      { t: "nextSignal" },
      { t: "data", n: 2, old: false, sizes: [0, 0, 0, 0], domain: false },
      { t: "advance", ms: 2_000 },
      { t: "answerFlushes" },
      { t: "data", n: 2, old: true, sizes: [0, 0, 0, 0], domain: false },
      { t: "drain" },
      { t: "next" },
      { t: "iterNext" },
      { t: "ncClose", error: true, closedFirst: false },
      { t: "next" },
    ]);
  });

  // ── counterexamples the property found (each fails while the bug is in src/) ──

  it("regression: close() during the fence of a terminal status loses the terminal error", async () => {
    // 400 Bad Request is terminal: draining, fence held by the server; then close().
    // closed() must still resolve the JetStreamStatusError (the contract: closed() resolves the
    // error that ended the iterator; for await throws a terminal failure).
    await runScenario({ ...BASE, hold: true }, [
      { t: "status", kind: "badRequest", variant: 0, ends: true },
      { t: "close" },
    ]);
  });

  it("regression: a subscription error, then the final close() during its fence, loses the error (shrunk)", async () => {
    await runScenario({ ...BASE, maxMessages: 1, maxBytes: 60, hold: true, finalWait: false }, [
      { t: "subError", close: false },
    ]);
  });

  it("regression: a callback that throws after drain() strands the buffer and closed() never resolves", async () => {
    // drain() closes the iterator keeping 1 buffered message; callback 0 (held) then throws:
    // toClosed() does nothing (already closed), the pump stops, the buffer is neither handed
    // out nor NAKed, and closed() stays pending until someone calls close().
    await runScenario({ ...BASE, maxMessages: 2, mode: "held", throwAt: [0] }, [
      { t: "data", n: 2, old: false, sizes: [0, 0, 0, 0, 0, 0, 0, 0], domain: false },
      { t: "drain" },
      { t: "next" }, // callback mode: releases callback 0, which rejects
    ]);
  });

  it("regression: a callback that throws after a terminal status strands the buffer (shrunk)", async () => {
    await runScenario({ ...BASE, maxMessages: 2, maxBytes: 60, mode: "held", throwAt: [0] }, [
      { t: "data", n: 2, old: false, sizes: [1, 1, 1, 1, 1, 1, 1, 1], domain: false },
      { t: "subError", close: false },
    ]);
  });

  it("regression (fixed in 3eff3c3): a rotation's fence timer outlived closed() when closed while disconnected", async () => {
    // reconnect rotates the inbox: the old one is fenced with a 1 s timer (the fence is held);
    // disconnect; close() unsubscribes everything at once (no fence while disconnected) and
    // closed() resolves, but the rotation's fence timer is still pending.
    await runScenario({ ...BASE, maxMessages: 1, hold: true }, [
      { t: "disconnect" },
      { t: "advance", ms: 2_000 }, // the first request is silent long enough to count as lost
      { t: "reconnect" },
      { t: "disconnect" },
      { t: "close" },
    ]);
  });

  it("regression (retired inboxes): after a reconnect the retired inbox keeps a request the server may still serve, and a new pull is stacked on it", async () => {
    // The pull was published a moment ago; the client reconnects (to the same server, or to
    // another node while the consumer leader keeps its waiting requests). The old inbox stays
    // subscribed (retired, up to expires), so the old request is still served, and the engine
    // publishes a new one on the new inbox: requested 1 + 1 > max_messages 1. Before 84366a8
    // the old inbox was unsubscribed at once, and the server drops a request without interest.
    await runScenario({ ...BASE, maxMessages: 1 }, [{ t: "disconnect" }, { t: "reconnect" }]);
  });

  it("regression (retired inboxes): a 409 Leadership Change on a retired inbox stacks a pull on one that may be alive", async () => {
    // Missed heartbeats: pull #1 on a new inbox, the first one retired. Then a 409 Leadership
    // Change for the first request: the engine pulls again at once (#2, a third inbox) because
    // #1 has shown no life yet — but #1 was published a moment ago and its inbox (now retired)
    // is still subscribed: requested 1 + 1 > max_messages 1.
    await runScenario({ ...BASE, maxMessages: 1 }, [
      { t: "advance", ms: 2_000 },
      { t: "statusOld", kind: "leadership", variant: 0, pick: 0 },
    ]);
  });

  it("regression (retired inboxes): a retired inbox's timer outlives closed() when the connection closes", async () => {
    // Missed heartbeats (2 s, PING answered): new inbox, the old one retired with a timer of
    // `expires`. nc.close(): the connection closes both subscriptions, so neither is in the
    // engine's live set when close() runs, and nothing clears the retire timer: closed()
    // resolves with a 5 s timer pending (30 s with the default expires).
    await runScenario({ ...BASE, maxMessages: 1 }, [
      { t: "advance", ms: 2_000 },
      { t: "ncClose", error: false, closedFirst: false },
    ]);
  });

  it("regression: nc.close() by the application right after a reconnect ends with ConnectionClosedError", async () => {
    // The reconnect status is handled after the close: rotate() subscribes on the closed
    // connection, subscribe() throws, and that is taken for a lost connection. The contract:
    // a connection closed by the application is a graceful end.
    await runScenario({ ...BASE, maxMessages: 1 }, [
      { t: "disconnect" },
      { t: "pair", a: { t: "reconnect" }, b: { t: "ncClose", error: false, closedFirst: false } },
    ]);
  });

  it("regression: nc.close() by the application as the missed-heartbeat probe is answered ends with ConnectionClosedError", async () => {
    await runScenario({ ...BASE, maxMessages: 1, maxBytes: 60, hold: true }, [
      { t: "advance", ms: 2_000 },
      {
        t: "pair",
        a: { t: "answerFlushes" },
        b: { t: "ncClose", error: false, closedFirst: false },
      },
    ]);
  });
});
