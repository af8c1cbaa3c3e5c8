/**
 * Property test: random interleavings of user calls, stream messages, every status the engine
 * knows (faults included), hostile inbox traffic, consumer-info answers, connection events,
 * callbacks and time, then a close. Whatever the order:
 *
 * - every `next()` (and every callback) settles, and `closed()` resolves;
 * - nothing is handed out twice, nothing that was never sent, nothing after the end;
 * - buffered + what the server may still send on live requests (in flight included, retired
 *   inboxes still subscribed included) never exceeds `max_messages` (nor `max_bytes` when set);
 * - `received = processed + naked + dropped + pending`, checked against what reached the inbox;
 * - in callback mode two callbacks never run at once;
 * - the iterator leaves `open` only for a reason the contract names, terminal statuses always
 *   end it, and it ends with the error the contract says (and never loses that error);
 * - after `closed()`: no live subscription, status listener, timer or abort listener;
 *
 * and the contract items of issue 10, each checked as the run goes:
 *
 * - (1) the server serves the open requests round robin: a status the server sent to one of the
 *   engine's requests of the current inbox is never "for a request that is not open", a stream
 *   message it sent there is never refused, and the engine never stalls: open, connected,
 *   nothing buffered, messages waiting in the stream and no request of its own open on the
 *   server, it pulls within one heartbeat interval (a request it still counts open then is a
 *   phantom, and a failure, unless the server dropped one without a word); a request the server
 *   removed at its expiry without a 408 (op `expiryRace`) must be found within RACE_STALL of
 *   that (or of the last thing that reached the inbox) when flushes are answered at once;
 * - (3) callback mode: `closed()` resolves only once every callback handed a message has
 *   settled, and a callback's throw or rejection (also the last one, after `drain()`) is what
 *   it resolves;
 * - (4) an abort of the consume signal before `done` closes the iterator: closed or done,
 *   nothing left buffered, and `closed()` resolves without a `close()`;
 * - (5) a harsher end cuts a fence: `close()` or an abort settles every pending `drain()` /
 *   `close()` within CLOSE_FENCE_TIMEOUT of fake time (flushes held or not); once the
 *   connection has closed, they settle without the clock moving;
 * - (6) a connection lost for good ends with ConnectionClosedError, even when `drain()` is
 *   called right after `nc.close()` (op `ncCloseThenDrain`);
 * - (7) `heartbeats_missed` counts up within a silence: each count is 2 or the previous + 1.
 *
 * The server is test/unit/fake-nc.ts's FakeJetStreamServer (`nc.jetstream()`), the model of
 * nats-server 2.9.10 that test/integration/differential.test.ts checks against a real one: ops
 * publish to the stream, and the model serves the open pull requests round robin, drops a
 * request whose inbox lost interest when it next looks at it, sends heartbeats, 408s with
 * `Nats-Pending-*` when a request expires on the fake clock, 409 Message Size Exceeds MaxBytes
 * with pending headers, refuses what the consumer's limits forbid (409 Exceeded Max…), and
 * processes the engine's acks and NAKs (redeliveries, max_ack_pending, ack_wait). What the model
 * does not do, the test does as 2.9.10 would: refusals (400, 409 push based, 503, 409 Exceeded…)
 * only to a request the server has sent nothing to (it refuses on arrival), 409 Leadership Change
 * / Consumer Deleted to every waiting request, which the server then forgets, and `forget`: the
 * server loses its waiting requests without a word (a restart, a leader gone) — the one fault
 * only missed heartbeats reveal. Hostile traffic stays: stream messages on old inboxes,
 * garbage, statuses for requests that are not open; a status that claims to end a request
 * carries the pending counts 2.9.10 would send. And `expiryRace`: messages published at a
 * waiting request's expiry before the server's expiry timer runs (the model's
 * `publishAtExpiry`), so that nextWaiting removes the request without a 408 — what the engine's
 * expiry watch is for.
 *
 * Ops run one at a time, each followed by its promise chains; a `pair` runs two in the same
 * synchronous turn, for races. Each run replays exactly (the engine's jitter is pinned).
 */
import fc from "fast-check";
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { MsgLike, SubscriptionLike } from "../../src/connection.js";
import { pullMessages } from "../../src/consume.js";
import { FLOW_QUIET_MS, type PullEngine } from "../../src/engine.js";
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
import { CLOSE_FENCE_TIMEOUT } from "../../src/messages.js";
import type { Notification } from "../../src/notifications.js";
import {
  type CountedSignal,
  countedSignal,
  type FakeJetStreamServer,
  FakeNatsConnection,
  type FakeSubscription,
  type PullRecord,
  settle,
  statusHeaders,
  subjectMatches,
  tick,
  type WaitingRequest,
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
  /** `k` next() calls in one synchronous turn: a fast loop going through its buffer. */
  | { t: "nextMany"; k: number }
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
  /**
   * `old: false`: `n` messages published to the stream (the server model serves them);
   * `sizes[k]` (with max_bytes) is roughly the k-th message's size on the wire, 0 = small.
   * `old: true`: `n` messages of ours sent straight to an inbox the engine replaced (hostile:
   * they must be NAKed, never buffered); `domain`: with the 11-token ack subject.
   */
  | { t: "data"; n: number; old: boolean; sizes: number[]; domain: boolean }
  /**
   * A status from the server. Refusals go to a waiting request the server sent nothing to;
   * 409 Leadership Change / Consumer Deleted to every waiting request (then forgotten); 404,
   * 408 and 409 Message Size (which the model sends itself, at the right time) to a request of
   * the current inbox that is not open; the rest to a waiting request of the current inbox, and
   * with `ends` an unknown status makes the server forget that request.
   */
  | { t: "status"; kind: StatusKind; variant: number; ends: boolean }
  /** A status addressed to a request the server no longer has, or to a non-request of an inbox. */
  | { t: "statusOld"; kind: StatusKind; variant: number; pick: number }
  | { t: "hostile"; kind: HostileKind }
  | { t: "setInfo"; kind: InfoKind }
  | { t: "answerInfo"; kind: InfoKind }
  /**
   * Another worker on the same consumer publishes `requests` pulls of `batch` (and acks what it
   * gets): the server serves them and the engine's round robin, and the stream runs dry under
   * the engine.
   */
  | { t: "rival"; batch: number; requests: number }
  /** The subscription's callback gets an error (nats.js: permissions violation), then maybe closes. */
  | { t: "subError"; close: boolean }
  /** The server forgets every waiting request without a word (restart, leader lost). */
  | { t: "forget" }
  /**
   * The expiry race (2.9.10 nextWaiting): the clock moves to the expiry of the current inbox's
   * waiting request that expires first (else of any waiting request) and `n` messages are
   * published there before the server's expiry timer runs: the request is removed without a
   * 408, the messages wait for the next pull. Nothing when no request waits.
   */
  | { t: "expiryRace"; n: number }
  | { t: "disconnect" }
  | { t: "reconnect" }
  | { t: "ncClose"; error: boolean; closedFirst: boolean }
  /** `nc.close()`, then `messages.drain()` in the same synchronous turn. */
  | { t: "ncCloseThenDrain"; error: boolean; closedFirst: boolean }
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
  {
    arbitrary: fc.integer({ min: 2, max: 8 }).map((k): Op => ({ t: "nextMany", k })),
    weight: 14,
  },
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
    weight: 2,
  },
  { arbitrary: c({ t: "stop" }), weight: 1 },
  { arbitrary: c({ t: "stopErr" }), weight: 1 },
  { arbitrary: c({ t: "close" }), weight: 1 },
  { arbitrary: c({ t: "break" }), weight: 1 },
  { arbitrary: c({ t: "abortConsume" }), weight: 2 },
  {
    arbitrary: fc
      .record({
        n: fc.integer({ min: 1, max: 8 }),
        old: fc.oneof({ arbitrary: fc.constant(false), weight: 5 }, fc.constant(true)),
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
  { arbitrary: c({ t: "forget" }), weight: 4 },
  {
    arbitrary: fc.integer({ min: 1, max: 3 }).map((n): Op => ({ t: "expiryRace", n })),
    weight: 4,
  },
  {
    arbitrary: fc
      .record({ batch: fc.integer({ min: 1, max: 4 }), requests: fc.integer({ min: 1, max: 4 }) })
      .map((r): Op => ({ t: "rival", ...r })),
    weight: 8,
  },
  { arbitrary: c({ t: "disconnect" }), weight: 6 },
  { arbitrary: c({ t: "reconnect" }), weight: 9 },
  {
    arbitrary: fc
      .record({ error: fc.boolean(), closedFirst: fc.boolean() })
      .map((r): Op => ({ t: "ncClose", ...r })),
    weight: 1,
  },
  {
    arbitrary: fc
      .record({ error: fc.boolean(), closedFirst: fc.boolean() })
      .map((r): Op => ({ t: "ncCloseThenDrain", ...r })),
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
      fc.oneof(...singleOps).filter((o) => o.t !== "advance" && o.t !== "expiryRace"),
      fc.oneof(...singleOps).filter((o) => o.t !== "advance" && o.t !== "expiryRace"),
    )
    .map(([a, b]): Op => ({ t: "pair", a, b })),
  weight: 15,
});

/** Iterator mode, or callback mode with a sync callback, an async one, or one held by the test. */
type Mode = "iter" | "sync" | "async" | "held";

/** The consumer as the server model has it (FakeJetStreamOptions). */
interface ServerConfig {
  maxWaiting: number;
  /** 0: no limit. */
  maxRequestBatch: number;
  /** ms; 0: no limit (the engine asks for 5 s). */
  maxRequestExpires: number;
  /** 0: no limit. */
  maxRequestMaxBytes: number;
  maxAckPending: number;
  /** ms */
  ackWait: number;
  ackTokens: 9 | 11;
}

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
  /** Every message handed out is acked at once (the server model then forgets it). */
  ack: boolean;
  /** At the end, let a draining iterator finish its fence before the final close(). */
  finalWait: boolean;
  /** What Math.random returns (the engine's backoff jitter), so a run replays exactly. */
  jitter: number;
  server: ServerConfig;
}

const serverArb: fc.Arbitrary<ServerConfig> = fc.record({
  maxWaiting: fc.oneof(
    { arbitrary: fc.constant(512), weight: 6 },
    { arbitrary: fc.constantFrom(1, 2), weight: 1 },
  ),
  maxRequestBatch: fc.oneof(
    { arbitrary: fc.constant(0), weight: 6 },
    { arbitrary: fc.integer({ min: 1, max: 4 }), weight: 1 },
  ),
  maxRequestExpires: fc.oneof(
    { arbitrary: fc.constant(0), weight: 15 },
    { arbitrary: fc.constant(1_000), weight: 1 },
  ),
  maxRequestMaxBytes: fc.oneof(
    { arbitrary: fc.constant(0), weight: 6 },
    { arbitrary: fc.integer({ min: 50, max: 800 }), weight: 1 },
  ),
  // a small max_ack_pending holds requests waiting with a backlog: the engine opens a second
  // one, and both are served round robin when acks free the server
  maxAckPending: fc.oneof(
    { arbitrary: fc.constant(1_000), weight: 1 },
    { arbitrary: fc.integer({ min: 1, max: 6 }), weight: 1 },
  ),
  ackWait: fc.constantFrom(30_000, 3_000),
  ackTokens: fc.constantFrom<9 | 11>(9, 11),
});

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
  ack: fc.boolean(),
  finalWait: fc.boolean(),
  jitter: fc.double({ min: 0, max: 0.999, noNaN: true }),
  server: serverArb,
});

const SERVER: ServerConfig = {
  maxWaiting: 512,
  maxRequestBatch: 0,
  maxRequestExpires: 0,
  maxRequestMaxBytes: 0,
  maxAckPending: 1_000,
  ackWait: 30_000,
  ackTokens: 9,
};

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
  ack: false,
  finalWait: true,
  jitter: 0.5,
  server: SERVER,
};

// ── statuses ─────────────────────────────────────────────────────────────────────────────────

interface StatusSpec {
  code: number | undefined;
  description: string | undefined;
  values: Record<string, string>;
  /** The notification type the engine must emit when it reaches the current inbox. */
  note?: Notification["type"];
  /** Terminal by the contract: the error the iterator must end with. */
  terminal?: (e: unknown) => boolean;
  terminalName?: string;
}

/** Statuses with which nats-server refuses a request on arrival, before serving it anything. */
const REFUSALS: ReadonlySet<StatusKind> = new Set([
  "maxWaiting",
  "exceeded",
  "pushBased",
  "badRequest",
  "noResponders",
]);

/** Statuses that end a request saying what it had left (`Nats-Pending-*`). */
const WITH_PENDING: ReadonlySet<StatusKind> = new Set(["msgSize", "s404", "s408"]);

/** Statuses a consumer leader (or a deleted consumer) sends to every waiting request. */
const TO_ALL_WAITING: ReadonlySet<StatusKind> = new Set(["leadership", "deleted"]);

function statusSpec(
  kind: StatusKind,
  variant: number,
  p: PullRecord | undefined,
  cfg: Config,
): StatusSpec {
  const pick = <T>(xs: readonly T[]): T => xs[variant % xs.length] as T;
  // what the request had left, as nats-server says it (consumer.go: wr.n, wr.b)
  const left: Record<string, string> = {
    "Nats-Pending-Messages": String(p ? Math.max(0, p.body.batch - p.delivered) : 0),
    "Nats-Pending-Bytes": String(
      p?.body.max_bytes === undefined ? 0 : Math.max(0, p.body.max_bytes - p.deliveredBytes),
    ),
  };
  const s = (
    code: number | undefined,
    description: string | undefined,
    rest: Partial<StatusSpec> = {},
  ): StatusSpec => ({ code, description, values: {}, ...rest });
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
      return s(409, "Message Size Exceeds MaxBytes", { note: "exceeded_limits", values: left });
    case "leadership":
      return s(409, "Leadership Change", { note: "debug" });
    case "pushBased":
      return s(409, "Consumer is push based", {
        terminal: (e) => e instanceof JetStreamStatusError && e.status === 409,
        terminalName: "JetStreamStatusError(409)",
      });
    case "unknown409":
      return s(409, pick(["Something Unheard Of", "Server Shutdown", ""]), { note: "debug" });
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
      return s(pick([418, 500, 201, 999, 1]), "Whatever This Is", { note: "debug" });
    case "heartbeat":
      return s(100, "Idle Heartbeat", {
        values: { "Nats-Last-Consumer": "3", "Nats-Last-Stream": "7" },
        note: "heartbeat",
      });
    case "hbOdd":
      return pick<StatusSpec>([
        s(100, "Idle Heartbeat", { note: "heartbeat" }),
        s(100, "Idle Heartbeat", {
          values: { "Nats-Last-Consumer": "abc", "Nats-Last-Stream": "-4" },
          note: "heartbeat",
        }),
        s(100, "FlowControl Request", { note: "debug" }),
        s(100, undefined, { note: "debug" }),
        s(100, "idle heartbeat", {
          values: { "Nats-Last-Consumer": "99999999999999999999999", "Nats-Last-Stream": "1.5" },
          note: "heartbeat",
        }),
      ]);
    case "noCode":
      return pick<StatusSpec>([s(undefined, "Idle Heartbeat"), s(0, "Bad Request")]);
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
  /** Item 5: a harsher end came; by then (fake clock) it must have settled. */
  deadline?: number;
}

/** A reason the iterator may leave `open` (or be closed while draining), and the end it implies. */
interface Why {
  what: string;
  /** "none": ends without an error; "conn": decided by how the connection closed. */
  end: "none" | "conn" | ((e: unknown) => boolean);
}

const RANK = { open: 0, draining: 1, closed: 2, done: 3 } as const;
const IDLE_HEARTBEAT = 1_000;
/**
 * Item 1 after the expiry race (op `expiryRace`): how long the engine may go without a pull once
 * the server removed its request at `expires` without a 408, counted from then or from the last
 * thing that reached the current inbox, ms. The expiry watch looks at the expiry, PINGs a grace
 * (idle_heartbeat / 4 = 250 ms here) later if nothing changed, and pulls at the PONG; a sign of
 * life on the way makes it look once more: at most two graces. The heartbeat monitor alone (what
 * found this loss before the watch) needs two silent intervals: at least a second after the
 * expiry (the last heartbeat came a second before it), two after the last sign of life. The one
 * heartbeat interval of the other stalls cannot tell the two apart.
 */
const RACE_STALL = IDLE_HEARTBEAT / 2;
/** The calls whose promise a harsher end must settle (item 5). */
const ENDINGS: ReadonlySet<string> = new Set([
  "drain",
  "close",
  "iter.return",
  "asyncDispose",
  "final close",
]);

/** Who puts a message on the wire: the server model, the test playing the server, or garbage. */
type Origin = "model" | "server" | "hostile" | "oldData";

function describeErr(e: unknown): string {
  if (e === undefined) return "undefined";
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** The ack subject of a message sent straight to an old inbox: 9 tokens, or 12 with a domain. */
function ackReply(seq: number, domain = false): string {
  const pending = seq % 3 === 0 ? 0 : (seq * 7) % 40;
  const rest = `S.C.1.${seq}.${seq}.${1_700_000_000_000_000_000n + BigInt(seq)}.${pending}`;
  return domain ? `$JS.ACK.hub.ACCHASH.${rest}.r4nd0m` : `$JS.ACK.${rest}`;
}

/** How often each contract item was put to the test (INTERLEAVINGS_STATS=1 prints them). */
const STATS = new Map<string, number>();
const stat = (what: string) => STATS.set(what, (STATS.get(what) ?? 0) + 1);

/** Pull requests published at one instant of the fake clock beyond which they are a storm. */
const STORM = 200;

/** Roughly the wire size of a model message without payload (subject + 9-token ack subject). */
const MODEL_OVERHEAD = 48;

/** What a run leaves for a fixed scenario to look at (the property ignores it). */
interface Run {
  nc: FakeNatsConnection;
  js: FakeJetStreamServer;
  /** When each of the engine's pulls was published (fake clock), in order. */
  pulledAt: number[];
}

async function runScenario(cfg: Config, ops: Op[]): Promise<Run> {
  vi.clearAllTimers();
  const random = vi.spyOn(Math, "random").mockReturnValue(cfg.jitter);
  try {
    return await scenario(cfg, ops);
  } finally {
    random.mockRestore();
  }
}

async function scenario(cfg: Config, ops: Op[]): Promise<Run> {
  const nc = new FakeNatsConnection({ flushMode: cfg.hold ? "hold" : "auto" });
  const sv = cfg.server;
  const js = nc.jetstream({
    maxWaiting: sv.maxWaiting,
    maxRequestBatch: sv.maxRequestBatch,
    maxRequestExpires: sv.maxRequestExpires,
    maxRequestMaxBytes: sv.maxRequestMaxBytes,
    maxAckPending: sv.maxAckPending,
    ackWait: sv.ackWait,
    ackTokens: sv.ackTokens,
    ...(sv.ackTokens === 11 ? { domain: "hub" } : {}),
  });
  const consumeSignal = cfg.withSignal ? countedSignal() : undefined;
  const max = cfg.maxMessages;
  const maxBytes = cfg.maxBytes;
  const callbackMode = cfg.mode !== "iter";
  const problems: string[] = [];
  const problem = (s: string) => {
    if (problems.length < 20) problems.push(s);
  };
  /** The connection stopped delivering to the engine (a pull storm was cut: the run fails). */
  let severed = false;
  let m: Messages | undefined;
  const heldBytes = (): number =>
    m ? (m as unknown as { channel: { bytes: number } }).channel.bytes : 0;

  // ── the server's view ──

  /** The rival worker's inbox (op "rival"): not the engine's. */
  const isRival = (subject: string): boolean => subject.startsWith("_RIVAL.");
  const ourPulls = (): PullRecord[] => nc.pulls.filter((p) => !isRival(p.reply));
  const ourSubs = (): FakeSubscription[] => nc.subscriptions.filter((s) => !isRival(s.subject));
  let rival: SubscriptionLike | undefined;
  const subOf = (reply: string): FakeSubscription | undefined =>
    nc.subscriptions.find((s) => subjectMatches(s.subject, reply));
  /** The engine's current inbox generation: its newest subscription. */
  const currentSub = (): FakeSubscription | undefined => ourSubs().pop();
  const inboxOf = (s: FakeSubscription): string => s.subject.slice(0, -2);
  const onCurrent = (subject: string): boolean => {
    const cur = currentSub();
    return cur !== undefined && cur.state !== "closed" && subjectMatches(cur.subject, subject);
  };
  /** The request the server still serves: not ended, room left, and its inbox subscribed. */
  const serverLive = (p: PullRecord): boolean =>
    !p.done &&
    p.delivered < p.body.batch &&
    (p.body.max_bytes === undefined || p.deliveredBytes < p.body.max_bytes) &&
    subOf(p.reply)?.state === "open";
  /** A request that had all it asked for (the server ends it without a word). */
  const completed = (p: PullRecord): boolean =>
    p.delivered >= p.body.batch ||
    (p.body.max_bytes !== undefined && p.deliveredBytes >= p.body.max_bytes);
  /** The model's waiting queue, head first (`waiting` is the queue itself). */
  const waiting = (): WaitingRequest[] => js.waiting as WaitingRequest[];
  /**
   * nats-server ends request `wr`: out of the waiting queue (what consumer.go does for a leader
   * change, a deleted consumer, a refusal on arrival). The model has no call for it.
   */
  const serverEnds = (wr: WaitingRequest) => {
    const q = waiting();
    const i = q.indexOf(wr);
    if (i >= 0) q.splice(i, 1);
    if (wr.pull) wr.pull.done = true;
  };
  /** Replies of messages that reached (or are reaching) the connection. */
  const arrived = new Set<string>();
  /**
   * Stream messages the model sent to a subscribed inbox that have not reached it yet. (What is
   * on its way to an inbox the engine already unsubscribed is NAKed when it arrives: the engine
   * let that request go.)
   */
  const inFlightData = () =>
    nc.isClosed()
      ? []
      : js.sent.filter(
          (e) =>
            e.kind === "data" &&
            e.delivered === undefined &&
            !isRival(e.to) &&
            !arrived.has(e.reply) &&
            subOf(e.to)?.state === "open",
        );

  /** Buffered + what the server may still send, from its waiting requests and what is in flight. */
  const flow = (where: string) => {
    const held = m ? m.getPending() : 0;
    const bytes = heldBytes();
    let reqMsgs = 0;
    let reqBytes = 0;
    for (const p of ourPulls()) {
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
    for (const e of inFlightData()) {
      reqMsgs++;
      if (e.kind === "data") reqBytes += e.size;
    }
    if (held + reqMsgs > max) {
      problem(`${where}: buffered ${held} + requested ${reqMsgs} > max_messages ${max}`);
    }
    if (maxBytes > 0 && bytes + reqBytes > maxBytes) {
      problem(`${where}: buffered ${bytes} B + requested ${reqBytes} B > max_bytes ${maxBytes}`);
    }
  };

  let instant = { at: Number.NaN, pulls: 0 };
  /** The engine's pulls the server removed at their expiry without a 408 (the expiry race). */
  const raced = (): Set<PullRecord | undefined> => new Set(js.expiredAtMessage.map((w) => w.pull));
  /** When each of the engine's pulls was published (fake clock). */
  const pulledAt = new Map<PullRecord, number>();
  nc.onPull = (p) => {
    if (isRival(p.reply)) return;
    pulledAt.set(p, Date.now());
    if (Date.now() === instant.at) instant.pulls++;
    else instant = { at: Date.now(), pulls: 1 };
    if (instant.pulls > STORM && !severed) {
      // a pull storm (the fake server answers at once: it would never end): cut it, nothing
      // reaches the engine any more, and say what the server answers
      severed = true;
      problem(
        `${instant.pulls} pull requests at one instant (last ${JSON.stringify(p.body)}, buffered ${m?.getPending()} / ${heldBytes()} B); the server's last answer: ${JSON.stringify(js.sent[js.sent.length - 1])}`,
      );
    }
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
  let ncClosedSeen = false;
  void nc.closed().then((err) => {
    connFailed = err instanceof Error;
    ncClosedSeen = true;
  });
  let whys: Why[] = [];
  /** A cause that may end the iterator with an error was named (for the callback-error check). */
  let errorCauseNamed = false;
  const why = (w: Why) => {
    if (w.end !== "none") errorCauseNamed = true;
    whys.push(w);
  };
  let mustEnd: string | undefined;
  let mustClose: string | undefined;
  let firstEnd: Why[] | undefined;
  const later: Why[] = [];
  /** Checks to run once the current op has settled. */
  let afterOp: (() => void)[] = [];

  /**
   * Causes that may end the iterator at any later step: the lookup that start() makes (its
   * answer arrives a few microtasks after construction, or when a held request is answered).
   */
  const carried: Why[] = [];
  let infoKind: InfoKind = cfg.info;
  /**
   * Whether the newest consumer-info request is held. Only the newest request's answer must act:
   * an urgent lookup (after a reconnect) supersedes one already out, whose answer is then old and
   * ignored (lookup.ts).
   */
  let newestInfoHeld = false;
  const infoAnswer = (kind: Exclude<InfoKind, "hold">, current = true): string | Error => {
    const lookFor = (cls: "consumer" | "stream") => {
      if (!cfg.abort) return;
      const w: Why = {
        what: `consumer info: ${cls} not found`,
        end: (e) =>
          cls === "consumer"
            ? e instanceof ConsumerNotFoundError
            : e instanceof StreamNotFoundError,
      };
      errorCauseNamed = true;
      if (m === undefined) carried.push(w);
      else whys.push(w);
      if (m?.state === "open" && !ncClosing && current) {
        mustEnd ??= `consumer info: ${cls} not found`;
      }
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
    newestInfoHeld = infoKind === "hold";
    return infoKind === "hold" ? "hold" : infoAnswer(infoKind);
  };

  // ── what reached the inbox, and what was handed out (messages are known by their reply) ──

  const pendings: Pending[] = [];
  const nextSignals: CountedSignal[] = [];
  const toAbort: CountedSignal[] = [];
  const sizeOf = new Map<string, number>();
  /** Messages of ours that reached a subscription (the engine must count each as received). */
  const accepted = new Set<string>();
  /** Messages of ours sent straight to an old inbox: never to be handed out. */
  const sentToOld = new Set<string>();
  const handed = new Set<string>();
  const endCauses: { what: string; cause: unknown }[] = [];
  /** Replies of requests a status ended, as the server says it (the model's, or the test's). */
  const endedLoudly = new Set<string>();
  let reportedClosed = false;
  let oldSeq = 900_000;
  const done = { settled: false, value: undefined as unknown };

  const onMsg = (what: string, msg: JsMsg) => {
    const r = msg.reply;
    if (handed.has(r)) problem(`${what}: ${r} handed out twice`);
    handed.add(r);
    if (!sizeOf.has(r)) problem(`${what}: ${r} was never sent as ours`);
    if (sentToOld.has(r)) problem(`${what}: ${r} arrived on an old inbox, yet was handed out`);
    if (reportedClosed) problem(`${what}: ${r} handed out after the end`);
    if (cfg.ack) msg.ack();
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
  /** The first error a callback threw, and whether a cause with an error came before it. */
  let firstCbError: { error: Error; afterErrorCause: boolean } | undefined;
  let autoRelease = false;
  const heldCallbacks: (() => void)[] = [];
  const callbackError = (idx: number): Error => {
    const e = new Error(`callback ${idx} failed`);
    cbThrew = true;
    firstCbError ??= { error: e, afterErrorCause: errorCauseNamed };
    if (m && RANK[m.state] >= RANK.closed) stat("item 3: a callback threw, iterator closed");
    why({ what: `callback ${idx} threw`, end: (x) => x === e });
    if (m && m.state !== "closed") mustClose ??= `callback ${idx} threw`;
    return e;
  };
  const callback = (msg: JsMsg): void | Promise<void> => {
    const idx = cbCalls++;
    if (cbRunning > 0) problem(`callback ${idx} started while another one runs`);
    if (cbThrew) problem(`callback ${idx} called after a callback threw`);
    // item 3: nothing is handed to a callback once closed() has resolved
    if (m?.state === "done" || done.settled) problem(`callback ${idx} called after closed()`);
    onMsg("callback", msg);
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
        // item 3: closed() resolves only once every callback handed a message has settled
        if (m?.state === "done") problem(`callback ${idx} still running when closed() resolved`);
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
  // item 3, as the user sees it: when closed() resolves, no callback is running
  void msgs.closed().then(() => {
    if (cbRunning > 0) problem(`closed() resolved with ${cbRunning} callback(s) running`);
  });
  const notes: Notification[] = [];
  let statusEnded = false;
  void (async () => {
    for await (const n of msgs.status()) notes.push(n);
    statusEnded = true;
  })();

  // ── what reaches the inbox, and what the engine says about it at that moment ──

  let origin: Origin = "model";
  const as = <T>(o: Origin, fn: () => T): T => {
    const prev = origin;
    origin = o;
    try {
      return fn();
    } finally {
      origin = prev;
    }
  };
  /** The message being handed to the engine's subscription, while it is. */
  let routing: { origin: Origin; subject: string; current: boolean } | undefined;
  // Notifications are seen synchronously, so that each is tied to the message that caused it.
  const notifier = (msgs as unknown as { notifier: { notify(n: Notification): void } }).notifier;
  const notify = notifier.notify.bind(notifier);
  notifier.notify = (n: Notification) => {
    const r = routing;
    if (r && (r.origin === "model" || r.origin === "server") && r.current && n.type === "debug") {
      // item 1: the server serves requests round robin; the engine must keep up with that
      if (n.description.includes("for a request that is not open")) {
        problem(`item 1: ${r.origin} status to ${r.subject}: "${n.description}"`);
      }
      if (n.description.includes("no open request accounts for it")) {
        problem(`item 1: ${r.origin} message to ${r.subject} refused: "${n.description}"`);
      }
    }
    notify(n);
  };

  const route = nc.route.bind(nc);
  nc.route = (subject: string, msg: Omit<MsgLike, "sid">): boolean => {
    if (severed) return false;
    const o = origin;
    const ours = msg.reply !== undefined && (o === "model" || o === "oldData") && !isRival(subject);
    if (ours && msg.reply) arrived.add(msg.reply);
    const before = msgs.counters();
    const prev = routing;
    const current = onCurrent(subject);
    routing = { origin: o, subject, current };
    let delivered: boolean;
    try {
      delivered = route(subject, msg);
    } finally {
      routing = prev;
    }
    // a sign of life in a stall after the expiry race (not what answers the pull that ends it)
    if (delivered && current && stall?.race && ourPulls().length === stall.pulls) {
      stall.life = Date.now();
    }
    const now = msgs.counters();
    if (ours && msg.reply) {
      const reply = msg.reply;
      const to = o === "model" ? nc.pulls.find((p) => p.reply === subject) : undefined;
      if (to && ourPulls().some((p) => p.index < to.index && onCurrent(p.reply) && !p.done)) {
        stat("item 1: a message served before an older request of the inbox (round robin)");
      }
      sizeOf.set(reply, msg.size?.() ?? subject.length + reply.length + msg.data.length);
      if (delivered) accepted.add(reply);
      if (o === "oldData") sentToOld.add(reply);
      if (now.received !== before.received + (delivered ? 1 : 0)) {
        problem(`${o} message ${reply}: received went ${before.received} -> ${now.received}`);
      }
      if (o === "oldData" && delivered && now.naked !== before.naked + 1) {
        problem(`message ${reply} on an old inbox was not NAKed at once`);
      }
      check(`${o} message ${reply}`, false);
    } else if (now.received !== before.received) {
      problem(`${o} ${msg.reply ? "message" : "status"} to ${subject}: counted as received`);
    }
    if (!msg.reply && delivered && (o === "model" || o === "server")) {
      const code = msg.headers?.code ?? 0;
      if (code !== 100 && routing === undefined && onCurrent(subject)) {
        stat(`item 1: ${o} status ${code} on the current inbox`);
      }
      if (code !== 0 && code !== 100) endedLoudly.add(subject);
    }
    return delivered;
  };

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

  /** At rest (promise chains run): the counters agree with what reached the inbox. */
  const audit = (where: string) => {
    const k = msgs.counters();
    const naked = new Set<string>();
    // After close(), what arrives before the unsubscribe is done is counted as NAKed at once and
    // NAKed when it is done (messages.ts arrivedClosed): such a NAK is owed, not missing.
    const owed = (msgs as unknown as { arrivedClosed: { reply: string }[] }).arrivedClosed;
    for (const m of owed) naked.add(m.reply);
    for (const p of nc.naks()) {
      if (!sizeOf.has(p.subject)) {
        problem(`${where}: NAK to ${p.subject}, not a message of ours`);
        continue;
      }
      if (!accepted.has(p.subject)) problem(`${where}: NAK of ${p.subject}, never received`);
      if (handed.has(p.subject)) problem(`${where}: NAK of ${p.subject}, which was handed out`);
      naked.add(p.subject);
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
      for (const r of accepted) {
        if (!handed.has(r) && !naked.has(r)) bytes += sizeOf.get(r) ?? 0;
      }
      if (bytes !== heldBytes()) {
        problem(`${where}: buffer holds ${heldBytes()} B, the messages in it ${bytes} B`);
      }
    }
  };

  /**
   * Item 1, at rest: open, connected, nothing buffered, messages in the stream, and no request of
   * the current inbox open on the server (nor anything in flight to it). A request the engine
   * still counts as open then is a phantom (complete or ended on the server, still counted),
   * unless the server dropped one of the current inbox's requests without a word (`forget`, an
   * unknown status that ends it): only missed heartbeats can tell that. And a pull must go out
   * within one heartbeat interval (a backoff is capped at that). The newest request of the inbox
   * removed at its expiry without a 408 (`expiryRace`), and no other silent loss: the expiry
   * watch must pull within RACE_STALL (flushes answered at once). `stall.race` is such a stall, `stall.life` when
   * something (any origin) last reached the current inbox during it.
   */
  let stall: { since: number; pulls: number; race: boolean; life?: number } | undefined;
  const stallFrom = (st: { since: number; life?: number }): number =>
    Math.max(st.since, st.life ?? st.since);
  const stallBound = (st: { race: boolean }) => (st.race ? RACE_STALL : IDLE_HEARTBEAT);
  const stallCheck = (where: string) => {
    if (stall && ourPulls().length !== stall.pulls) {
      // the stall ended with a pull (maybe in the middle of an advance): when?
      const first = ourPulls()[stall.pulls];
      const at = first ? (pulledAt.get(first) ?? Date.now()) : Date.now();
      const waited = at - stallFrom(stall);
      if (waited > stallBound(stall)) {
        problem(
          `${where}: item 1: stalled${stall.race ? " after the expiry race" : ""}: nothing requested from the server, ${js.numPending} in the stream, no pull for ${waited} ms (then #${first?.index} ${JSON.stringify(first?.body)})`,
        );
      }
      stall = undefined;
    }
    const cur = currentSub();
    const idle =
      msgs.state === "open" &&
      nc.connected &&
      !nc.isClosed() &&
      msgs.getPending() === 0 &&
      js.numPending > 0 &&
      cur !== undefined &&
      cur.state === "open" &&
      !waiting().some((w) => subjectMatches(cur.subject, w.reply)) &&
      !js.sent.some((e) => e.delivered === undefined && subjectMatches(cur.subject, e.to)) &&
      !ourPulls().some((p) => !p.done && subjectMatches(cur.subject, p.reply));
    if (!idle || !cur) {
      stall = undefined;
      return;
    }
    const mine = ourPulls().filter((p) => subjectMatches(cur.subject, p.reply));
    const lost = mine.filter((p) => p.done && !completed(p) && !endedLoudly.has(p.reply));
    const silent = lost.length > 0;
    // Every silent loss the expiry race's, the newest request of the inbox among them: the
    // expiry watch, which looks at the newest request counted open, finds that fast. (A newer
    // request that completed hides it: the ledger keeps totals, it cannot tell which of them is
    // still open, and the newer one's expiry or missed heartbeats find it. Flushes held by the
    // test hold the watch's PING, as any other. Either way, as for other silent losses, no bound.)
    const newest = mine[mine.length - 1];
    const raceOnly =
      silent &&
      !cfg.hold &&
      newest !== undefined &&
      raced().has(newest) &&
      lost.every((p) => raced().has(p));
    const counted = engine.snapshot().request;
    const phantom = () =>
      `${where}: item 1: phantom: the engine counts a request open (${counted?.msgs} message(s) outstanding), the server has none of ${inboxOf(cur)} (pulls ${mine.map((p) => `#${p.index} ${p.delivered}/${p.body.batch}${endedLoudly.has(p.reply) ? " ended" : ""}`).join(", ")}), ${js.numPending} in the stream`;
    if (counted && silent) {
      stat(raceOnly ? "item 1: idle, expiry race" : "item 1: idle, silent loss");
    } else if (counted && counted.msgs > 0) {
      stat("item 1: idle, phantom");
      problem(phantom());
    } else if (counted) {
      // nothing outstanding, yet a request counted open
      stat("item 1: idle, phantom with nothing outstanding");
      problem(phantom());
    } else {
      stat("item 1: idle, no request counted");
    }
    // (other silent losses: only missed heartbeats can tell, and those may wait for a lookup)
    if (counted && silent && !raceOnly) {
      stall = undefined;
      return;
    }
    const race = counted !== undefined && raceOnly;
    if (!stall || stall.race !== race) {
      stall = { since: Date.now(), pulls: ourPulls().length, race };
    } else if (Date.now() - stallFrom(stall) > stallBound(stall)) {
      problem(
        `${where}: item 1: stalled${race ? " after the expiry race" : ""}: nothing requested from the server, ${js.numPending} in the stream, no pull for ${Date.now() - stallFrom(stall)} ms`,
      );
      stall = undefined;
    }
  };

  /** Item 5: a harsher end (close(), break, abort): every pending drain()/close() has 1 s. */
  const cut = (was: Messages["state"]) => {
    if (was === "draining") {
      stat(`item 5: harsher end during a drain fence${cfg.hold ? " (held)" : ""}`);
    }
    const at = Date.now() + CLOSE_FENCE_TIMEOUT;
    for (const p of pendings) {
      if (!p.settled && ENDINGS.has(p.what)) p.deadline = Math.min(p.deadline ?? at, at);
    }
  };
  const endingsPending = () =>
    pendings.filter((p) => !p.settled && ENDINGS.has(p.what)).map((p) => p.what);
  /** The consume signal was aborted before `done` (item 4: closed() resolves without close()). */
  let abortedBeforeDone = false;

  /** Whether the first step after the connection closed was looked at (for the stats). */
  let ncClosedChecked = false;
  let pendingAtClose = 0;
  /** Runs one op: before/after states, the reasons it may end the iterator, and the checks. */
  const step = async (where: string, body: () => void | Promise<void>) => {
    whys = [...carried, ...(ncClosing ? [{ what: "connection closed", end: "conn" } as Why] : [])];
    mustEnd = undefined;
    mustClose = undefined;
    afterOp = [];
    const before = msgs.state;
    const bufferedBefore = msgs.getPending();
    await body();
    if (!ncClosedChecked) pendingAtClose = endingsPending().length;
    await settle(2);
    if (ncClosedSeen) {
      // item 5: once the connection has closed, every drain()/close() settles without the
      // clock moving (what is due now may run: a macrotask the verdict waits for)
      const t0 = Date.now();
      await vi.advanceTimersByTimeAsync(0);
      await settle(2);
      if (Date.now() !== t0) problem(`${where}: the clock moved`);
      const left = endingsPending();
      if (left.length > 0) {
        problem(`${where}: item 5: the connection closed, yet ${left.join(", ")} pending`);
      }
      if (!ncClosedChecked) {
        ncClosedChecked = true;
        if (pendingAtClose > 0) stat("item 5: drain()/close() pending as the connection closed");
      }
    }
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
    for (const f of afterOp) f();
    check(where);
    audit(where);
    for (const p of pendings) {
      if (p.settled || p.deadline === undefined || Date.now() < p.deadline) continue;
      problem(`${where}: item 5: ${p.what} pending ${CLOSE_FENCE_TIMEOUT} ms after close()/abort`);
      p.deadline = undefined;
    }
    stallCheck(where);
    if (waiting().filter((w) => onCurrent(w.reply)).length >= 2) {
      stat("item 1: two requests of the inbox waiting on the server");
    }
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
  const sendStatus = (subject: string, spec: StatusSpec, o: Origin) => {
    const toCurrent = onCurrent(subject);
    const wasOpen = msgs.state === "open";
    const notesBefore = notes.length;
    as(o, () => statusTo(subject, spec));
    if (!toCurrent) return;
    if (spec.terminal) {
      why({ what: `status ${spec.code} ${spec.description}`, end: spec.terminal });
      if (wasOpen) mustEnd ??= `terminal status ${spec.code} ${spec.description}`;
    }
    if (wasOpen && spec.note) {
      const note = spec.note;
      // notifications reach the listener through a promise: look once the op has settled
      afterOp.push(() => {
        if (!notes.slice(notesBefore).some((n) => n.type === note)) {
          problem(`status ${spec.code} ${spec.description}: no ${note} notification`);
        }
      });
    }
  };

  /** Requests waiting on the server, those of the current inbox first. */
  const waitingOurs = (): WaitingRequest[] => {
    const q = waiting().filter((w) => !isRival(w.reply));
    return [...q.filter((w) => onCurrent(w.reply)), ...q.filter((w) => !onCurrent(w.reply))];
  };
  /** The server sent nothing to it yet (no message, no heartbeat): it can still refuse it. */
  const untouched = (reply: string): boolean =>
    !js.sent.some((e) => e.to === reply) && !endedLoudly.has(reply);

  /** Something the model sent to `reply` has not reached the connection yet. */
  const inFlightTo = (reply: string): boolean =>
    js.sent.some((e) => e.to === reply && e.delivered === undefined);
  /** Requests of the current inbox the server no longer has (nothing of it still in flight). */
  const notOpenOnCurrent = (): PullRecord[] =>
    ourPulls().filter((p) => p.done && onCurrent(p.reply) && !inFlightTo(p.reply));

  const inputsOf = (n: number, sizes: number[]) =>
    Array.from({ length: n }, (_, k) => {
      const size = maxBytes > 0 ? (sizes[k] ?? 0) : 0;
      return size > 0 ? "x".repeat(Math.max(0, size - MODEL_OVERHEAD)) : `m${k}`;
    });
  const publish = (n: number, sizes: number[]) => {
    js.publish(inputsOf(n, sizes));
  };

  /** Op `expiryRace`: `n` messages at a waiting request's expiry, before the server's sweep. */
  const expiryRace = async (n: number) => {
    const ours = waiting()
      .filter((w) => onCurrent(w.reply) && w.expires !== 0)
      .sort((x, y) => x.expires - y.expires)[0];
    const before = js.expiredAtMessage.length;
    const at = js.publishAtExpiry(inputsOf(n, []), ours?.reply);
    if (at === undefined) return;
    await tick(Math.max(0, at - Date.now()));
    const removed = js.expiredAtMessage.slice(before);
    if (removed.some((w) => w.pull && !isRival(w.reply) && onCurrent(w.reply))) {
      stat("expiry race: a request of the current inbox removed without a 408");
    } else if (removed.length > 0) {
      stat("expiry race: another request removed without a 408");
    }
  };

  const sendOld = (n: number, domain: boolean) => {
    const cur = currentSub();
    const olds = ourSubs().filter((s) => s !== cur && s.state !== "closed");
    const sub = olds[olds.length - 1];
    if (!sub) return;
    const req = ourPulls()
      .filter((p) => subjectMatches(sub.subject, p.reply))
      .pop();
    const to = req?.reply ?? `${inboxOf(sub)}.1`;
    for (let k = 0; k < n; k++) {
      const seq = ++oldSeq;
      as("oldData", () => nc.sendData(to, { seq, reply: ackReply(seq, domain) }));
    }
  };

  const hostile = (kind: HostileKind) => {
    const cur = currentSub();
    const subject =
      waitingOurs().find((w) => onCurrent(w.reply))?.reply ??
      (cur ? `${inboxOf(cur)}.0` : "_INBOX.none.0");
    const seq = ++oldSeq;
    as("hostile", () => {
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
    });
  };

  const serverStatus = (op: Extract<Op, { t: "status" }>) => {
    const cur = currentSub();
    const nowhere = cur ? `${inboxOf(cur)}.0` : "_INBOX.none.0";
    if (REFUSALS.has(op.kind)) {
      // nats-server refuses a request on arrival: only one it has sent nothing to
      const wr = waitingOurs().find((w) => untouched(w.reply));
      if (!wr) return;
      serverEnds(wr);
      sendStatus(wr.reply, statusSpec(op.kind, op.variant, wr.pull, cfg), "server");
      return;
    }
    if (TO_ALL_WAITING.has(op.kind)) {
      const all = [...waiting()];
      if (all.length === 0) {
        sendStatus(nowhere, statusSpec(op.kind, op.variant, undefined, cfg), "hostile");
        return;
      }
      for (const wr of all) serverEnds(wr);
      for (const wr of all) {
        sendStatus(wr.reply, statusSpec(op.kind, op.variant, wr.pull, cfg), "server");
      }
      return;
    }
    if (WITH_PENDING.has(op.kind)) {
      // the model sends these itself when they are due; here: a request that is not open
      const olds = notOpenOnCurrent();
      const p = olds[op.variant % Math.max(1, olds.length)];
      sendStatus(p?.reply ?? nowhere, statusSpec(op.kind, op.variant, p, cfg), "hostile");
      return;
    }
    const wr = waitingOurs().find((w) => onCurrent(w.reply));
    // an unknown status the server ends a request with: gone without a word the engine knows
    if (wr && op.ends && (op.kind === "unknown409" || op.kind === "unknownCode")) serverEnds(wr);
    sendStatus(wr?.reply ?? nowhere, statusSpec(op.kind, op.variant, wr?.pull, cfg), "hostile");
  };

  const staleStatus = (op: Extract<Op, { t: "statusOld" }>) => {
    // (not one with a status of the server still in flight: that one would say it first)
    const olds = ourPulls().filter(
      (p) => p.done && !inFlightTo(p.reply) && (!REFUSALS.has(op.kind) || p.delivered === 0),
    );
    const target = olds.length > 0 ? olds[op.pick % olds.length] : undefined;
    const cur = currentSub();
    const subject = target?.reply ?? (cur ? `${inboxOf(cur)}.999` : "_INBOX.none.0");
    sendStatus(subject, statusSpec(op.kind, op.variant, target, cfg), "hostile");
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

  const closeConnection = (error: boolean, closedFirst: boolean): void => {
    if (!ncClosing) {
      ncClosing = true;
      why({ what: "connection closed", end: "conn" });
    }
    void nc.close(error ? new Error("connection failed") : undefined, {
      order: closedFirst ? "closed-first" : "nats",
    });
  };

  const run = async (op: Op) => {
    switch (op.t) {
      case "next":
        if (nextLike()) break;
        watch("next", msgs.next(), (msg) => onMsg("next", msg));
        break;
      case "nextMany":
        for (let i = 0; i < op.k; i++) {
          if (nextLike()) continue;
          watch("next", msgs.next(), (msg) => onMsg("next", msg));
        }
        break;
      case "nextSignal": {
        if (nextLike()) break;
        const s = countedSignal();
        nextSignals.push(s);
        toAbort.push(s);
        watch("next(signal)", msgs.next({ signal: s.signal }), (msg) => onMsg("next", msg));
        break;
      }
      case "abortNext":
        toAbort.shift()?.controller.abort();
        break;
      case "nextTimeout":
        if (nextLike()) break;
        watch("next(timeout)", msgs.next({ timeout: op.ms }), (msg) => onMsg("next", msg));
        break;
      case "iterNext":
        if (nextLike() || !iter) break;
        watch("iter.next", iter.next(), (r) => {
          if (r.done) {
            reportedClosed = true;
            endCauses.push({ what: "iter.next done", cause: undefined });
          } else onMsg("iter.next", r.value);
        });
        break;
      case "drain":
        why({ what: "drain()", end: "none" });
        watch("drain", msgs.drain(op.timeout === undefined ? undefined : { timeout: op.timeout }));
        break;
      case "stop":
        why({ what: "stop()", end: "none" });
        msgs.stop();
        break;
      case "stopErr": {
        const e = new Error("stopped by the test");
        why({ what: "stop(err)", end: (x) => x === e });
        msgs.stop(e);
        break;
      }
      case "close": {
        why({ what: "close()", end: "none" });
        const was = msgs.state;
        watch("close", msgs.close());
        cut(was);
        break;
      }
      case "break": {
        why({ what: "break", end: "none" });
        const was = msgs.state;
        if (iter) watch<unknown>("iter.return", iter.return?.() ?? Promise.resolve());
        else watch("asyncDispose", msgs[Symbol.asyncDispose]());
        cut(was);
        break;
      }
      case "abortConsume": {
        why({ what: "signal abort", end: "none" });
        if (!consumeSignal || consumeSignal.signal.aborted) break;
        const before = msgs.state;
        const buffered = msgs.getPending();
        consumeSignal.controller.abort();
        cut(before);
        if (before === "done") break;
        stat(`item 4: abort while ${before}${buffered > 0 ? " with a buffer" : ""}`);
        // item 4: in any phase before done, an abort closes the iterator and NAKs the buffer
        abortedBeforeDone = true;
        afterOp.push(() => {
          if (RANK[msgs.state] < RANK.closed) {
            problem(`item 4: abort while ${before} left the iterator ${msgs.state}`);
          }
          if (msgs.getPending() !== 0) {
            problem(`item 4: abort while ${before} left ${msgs.getPending()} buffered`);
          }
        });
        break;
      }
      case "data":
        if (op.old) sendOld(op.n, op.domain);
        else publish(op.n, op.sizes);
        break;
      case "status":
        serverStatus(op);
        break;
      case "statusOld":
        staleStatus(op);
        break;
      case "hostile":
        hostile(op.kind);
        break;
      case "setInfo":
        infoKind = op.kind;
        break;
      case "answerInfo":
        if (op.kind !== "hold") {
          const kind = op.kind;
          const held = nc.heldRequests.length;
          let i = 0;
          // Answered oldest first; only the last of them can be the newest request.
          nc.answerHeldRequests(() => infoAnswer(kind, ++i === held && newestInfoHeld));
        }
        break;
      case "subError": {
        const sub = currentSub();
        if (!sub || sub.state === "closed") break;
        const e = new Error("Permissions Violation for Subscription");
        const wasOpen = msgs.state === "open";
        sub.deliverError(e);
        why({ what: "subscription error", end: (x) => x === e });
        if (wasOpen) mustEnd ??= "a subscription error";
        if (op.close) sub.markClosed();
        break;
      }
      case "rival": {
        if (nc.isClosed()) break;
        rival ??= nc.subscribe("_RIVAL.*", {
          callback: (_err, msg) => {
            if (msg.reply && !nc.isClosed())
              nc.publish(msg.reply, new TextEncoder().encode("+ACK"));
          },
        });
        const body = new TextEncoder().encode(
          JSON.stringify({ batch: op.batch, expires: 5_000 * 1_000_000 }),
        );
        for (let k = 0; k < op.requests; k++) {
          nc.publish("$JS.API.CONSUMER.MSG.NEXT.S.C", body, { reply: `_RIVAL.${nc.pulls.length}` });
        }
        break;
      }
      case "forget":
        for (const wr of [...waiting()]) serverEnds(wr);
        break;
      case "expiryRace":
        await expiryRace(op.n);
        break;
      case "disconnect":
        if (!nc.isClosed()) nc.disconnect();
        break;
      case "reconnect":
        if (!nc.isClosed() && !nc.connected) nc.reconnect();
        break;
      case "ncClose":
        closeConnection(op.error, op.closedFirst);
        break;
      case "ncCloseThenDrain":
        if (msgs.state === "open" && (op.error || !nc.connected) && !ncClosing) {
          stat("item 6: connection lost for good, then drain()");
        }
        // item 6: the drain() comes after the close: a connection lost for good still ends the
        // iterator with ConnectionClosedError (so drain() is not a cause of its own here)
        closeConnection(op.error, op.closedFirst);
        watch("drain", msgs.drain());
        break;
      case "ncDrain":
        if (!ncClosing) {
          ncClosing = true;
          why({ what: "connection drained", end: "conn" });
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
  if (abortedBeforeDone) {
    // item 4: an abort ends it all without a close(), even with the server not answering
    for (let i = 0; i < 2 && !done.settled; i++) {
      await step(`end: after the abort ${i}`, () => tick(CLOSE_FENCE_TIMEOUT));
    }
    if (!done.settled) problem(`item 4: the consume signal was aborted, yet closed() is pending`);
  }
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
    why({ what: "final close()", end: "none" });
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
  const lost = connFailed || !nc.connected;
  const resolve = (w: Why): "none" | ((e: unknown) => boolean) =>
    w.end !== "conn" ? w.end : lost ? (e: unknown) => e instanceof ConnectionClosedError : "none";
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
  // item 3: a callback's error is what closed() resolves, unless an error came first
  if (firstCbError && !firstCbError.afterErrorCause && E !== firstCbError.error) {
    problem(
      `item 3: a callback threw ${firstCbError.error.message}; closed() resolved ${describeErr(E)}`,
    );
  }
  for (const { what, cause } of endCauses) {
    if (cause !== E)
      problem(`${what} ended with ${describeErr(cause)}, closed() with ${describeErr(E)}`);
  }
  let lastMissed: number | undefined;
  for (const n of notes) {
    if (
      n.type === "heartbeat" &&
      ![n.lastConsumerSequence, n.lastStreamSequence].every((x) => Number.isFinite(x) && x >= 0)
    ) {
      problem(`heartbeat notification ${JSON.stringify(n)}`);
    }
    if (n.type === "heartbeats_missed") {
      stat(n.count === 2 ? "item 7: heartbeats_missed 2" : "item 7: heartbeats_missed 3+");
      // item 7: 2 at the start of a silence, then one more per interval
      if (n.count !== 2 && n.count !== (lastMissed ?? Number.NaN) + 1) {
        problem(`item 7: heartbeats_missed ${n.count} after ${lastMissed ?? "none"}`);
      }
      lastMissed = n.count;
    }
  }

  rival?.unsubscribe();
  expect(problems, problems.join("\n")).toEqual([]);
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
  // the server model's own timers (ack_wait, requests of inboxes it has not looked at) go with it
  js.dispose();
  expect(vi.getTimerCount(), "pending timers").toBe(0);
  expect(consumeSignal?.live() ?? 0, "consume signal listeners").toBe(0);
  expect(
    nextSignals.map((s) => s.live()).reduce((a, b) => a + b, 0),
    "next() signal listeners",
  ).toBe(0);
  const nakSubjects = nc.naks().map((p) => p.subject);
  expect(new Set(nakSubjects).size, "a message NAKed twice").toBe(nakSubjects.length);
  return { nc, js, pulledAt: ourPulls().map((p) => pulledAt.get(p) ?? Number.NaN) };
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.clearAllTimers();
  vi.useRealTimers();
});

afterAll(() => {
  if (!process.env.INTERLEAVINGS_STATS) return;
  const lines = [...STATS].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${v}\t${k}`);
  console.log(`interleavings, how often each item was tested:\n${lines.join("\n")}`);
});

const NUM_RUNS = Number(process.env.INTERLEAVINGS_RUNS ?? 10_000);
const SEED = process.env.INTERLEAVINGS_SEED ? Number(process.env.INTERLEAVINGS_SEED) : undefined;

describe("interleavings", () => {
  it("10,000 schedules of every call, message, status, fault and callback on the 2.9.10 server model: nothing hangs, doubles, leaks, overflows or stalls", async () => {
    await fc.assert(
      fc.asyncProperty(
        configArb,
        fc.array(opArb, { maxLength: 40, size: "max" }),
        async (cfg, ops) => {
          await runScenario(cfg, ops);
        },
      ),
      { numRuns: NUM_RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
  }, 240_000);

  it("a fixed nasty sequence: next pending, rotation fence out, drain, connection error, close", async () => {
    // (the server model sends heartbeats: it forgets its requests first, so that the missed
    // heartbeats rotate the inbox as the old fake's silence did)
    await runScenario({ ...BASE, maxMessages: 3, hold: true, withSignal: true }, [
      { t: "nextSignal" },
      { t: "data", n: 2, old: false, sizes: [0, 0, 0, 0], domain: false },
      { t: "forget" },
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
    // (max_bytes 150, not 60: the model's messages have their real size, ~50 B, so two fit)
    await runScenario({ ...BASE, maxMessages: 2, maxBytes: 150, mode: "held", throwAt: [0] }, [
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
      { t: "advance", ms: 2_000 }, // the server drops the request: its inbox has no interest
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
    // (`forget`: the server model heartbeats its requests; a lost leader forgets them)
    await runScenario({ ...BASE, maxMessages: 1 }, [
      { t: "forget" },
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
      { t: "forget" },
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
      { t: "forget" },
      { t: "advance", ms: 2_000 },
      {
        t: "pair",
        a: { t: "answerFlushes" },
        b: { t: "ncClose", error: false, closedFirst: false },
      },
    ]);
  });

  // ── the server serves round robin (item 1) ──

  it("round robin: two requests wait behind max_ack_pending, acks free the server, it serves them interleaved; the first one's 408 is for a request still open", async () => {
    // max_ack_pending 2: request A (batch 4) gets 2 and waits with 2 left, the stream still
    // holding 4. A fast loop takes both (and acks them): the engine pulls B and C (batch 1
    // each: the server reports a backlog). The acks free the server, which serves A, B and C
    // round robin: A gets 1 more (1 left), B 1. An engine that took the messages for A's
    // (FIFO) would count A complete and B open: A's 408 then "for a request that is not open",
    // and B a phantom. (A ledger mutated back to FIFO fails here.)
    await runScenario(
      { ...BASE, maxMessages: 4, ack: true, server: { ...SERVER, maxAckPending: 2 } },
      [
        { t: "data", n: 6, old: false, sizes: [0, 0, 0, 0, 0, 0, 0, 0], domain: false },
        { t: "nextMany", k: 2 },
        { t: "advance", ms: 5_000 },
        { t: "advance", ms: 5_000 },
      ],
    );
  });

  // ── the expiry race (item 1) ──

  it("regression (expiry watch): a request the server removed at its expiry without a 408 is found within RACE_STALL, not two heartbeats later", async () => {
    // The one request (batch 3, expires 5 s, heartbeats every second) waits on an empty stream.
    // At its expiry a message is published before the server's expiry timer runs: nextWaiting
    // removes the request, no 408, and the message stays in the stream. The expiry watch looked
    // at the expiry, PINGs 250 ms later and pulls on a new inbox at the PONG, which gets the
    // message. Without the watch the heartbeat monitor pulled after two silent intervals, a
    // second after the expiry: item 1 fails ("stalled after the expiry race").
    const run = await runScenario({ ...BASE }, [
      { t: "expiryRace", n: 1 },
      { t: "advance", ms: 1_000 },
      { t: "next" },
    ]);
    const [first, second] = run.nc.pulls;
    expect(run.js.expiredAtMessage.map((w) => w.pull)).toEqual([first]);
    expect(run.js.sent.filter((e) => e.to === first?.reply).map((e) => e.kind)).toEqual([
      "status", // heartbeats at 1, 2, 3 and 4 s; nothing at the expiry
      "status",
      "status",
      "status",
    ]);
    expect(run.js.sent.some((e) => e.kind === "status" && e.code === 408)).toBe(false);
    expect(second?.reply.split(".").slice(0, -1)).not.toEqual(first?.reply.split(".").slice(0, -1));
    expect(second?.delivered).toBe(1);
    const [t0, t1] = run.pulledAt;
    expect((t1 ?? Number.NaN) - (t0 ?? Number.NaN)).toBe(5_000 + 250);
  });

  // ── bugs in src/ the property found ──

  it("regression (fixed in 7e30e2c; found by this property on the honest server): after stop(err) the callback for the last buffered message ran after closed() resolved", async () => {
    // max_messages 1: callback 0 holds message 1, message 2 is buffered; stop(err) closes the
    // iterator keeping it. Once callback 0 settled, the pump's tryTake() of message 2 emptied
    // the closed channel, and maybeDone() ran before callbackRunning was set: done.
    await runScenario({ ...BASE, maxMessages: 1, mode: "held", finalWait: false, jitter: 0 }, [
      { t: "data", n: 2, old: false, sizes: [1, 1, 0, 0, 0, 1, 1, 1], domain: false },
      { t: "stopErr" },
    ]);
  });

  it("regression (fixed in 7e30e2c): closed() resolves only once the callback handed the last buffered message has settled", async () => {
    const nc = new FakeNatsConnection();
    const js = nc.jetstream();
    const log: string[] = [];
    let release!: () => void;
    const messages = pullMessages(nc, "S", "C", {
      max_messages: 2,
      callback: async (msg) => {
        log.push(`start ${msg.seq}`);
        if (msg.seq === 1) await new Promise<void>((r) => (release = r));
        else await new Promise<void>((r) => setTimeout(r, 10));
        log.push(`end ${msg.seq}`);
      },
    });
    void messages.closed().then(() => log.push("closed()"));
    js.publish(2); // callback 1 holds message 1; message 2 is buffered
    await tick(FLOW_QUIET_MS); // the flow stopped: drain() does not hold for it
    await messages.drain(); // closed, keeping message 2
    await tick();
    release();
    await tick(10);
    js.dispose();
    // (it was: start 1, end 1, start 2, closed(), end 2)
    expect(log).toEqual(["start 1", "end 1", "start 2", "end 2", "closed()"]);
  });

  it("regression (fixed in 3389a6d; found by this property on the honest server): 409 Message Size Exceeds MaxBytes with bytes buffered re-pulled at once for the same room: a pull storm", async () => {
    // max_bytes 62, messages of 47 B: the first request (batch 2, 62 B) takes message 1 and
    // has 15 B left: 409 for message 2. The buffer holds 47 B (<= the threshold, 47): it
    // pulled batch 1 with max_bytes 15, which message 2 does not fit either: 409, pull, 409, …
    // one pull per round trip until the buffer drained (here, the fake answering at once,
    // more than 200 at one instant before the test cut the connection).
    await runScenario({ ...BASE, maxMessages: 2, maxBytes: 62, finalWait: false, jitter: 0 }, [
      { t: "data", n: 2, old: false, sizes: [1, 1, 0, 1, 1, 250, 1, 1], domain: false },
    ]);
  });

  // found by the property on the honest fake, fixed in src/ledger.ts (refused() forgets the
  // requests that completed silently once nothing is outstanding)

  it("regression (refused zombie, shrunk): a refusal must not leave a request complete on the server counted open", async () => {
    // max_ack_pending 2: request A (batch 2) gets 2, the third message waits. The callback
    // takes message 1: the engine pulls B (batch 1; backlog 2 > outstanding 1). B waits. A
    // refusal of B (409 Exceeded MaxRequestBatch, as on arrival) releases its batch: nothing is
    // outstanding, so A, complete on the server, must be forgotten (as ended() does).
    await runScenario(
      {
        ...BASE,
        maxMessages: 2,
        mode: "async",
        finalWait: false,
        jitter: 0,
        server: { ...SERVER, maxAckPending: 2 },
      },
      [
        { t: "data", n: 3, old: false, sizes: [1, 1, 1, 250, 1, 1, 1, 250], domain: false },
        { t: "status", kind: "exceeded", variant: 0, ends: false },
      ],
    );
  });

  it("regression (refused zombie): no phantom holds the next pull back until heartbeats are missed while a message waits", async () => {
    // A (batch 2) and a rival's request wait; 3 messages: A, the rival, A (A complete, the
    // last message's backlog 0). On message 1 the engine pulled B (backlog 2 > 1). B is refused
    // (409 Exceeded MaxWaiting). Counted open with 0 outstanding, A would hold the next pull
    // back (no backlog): a message published then waited ~2 s (two idle heartbeats).
    await runScenario({ ...BASE, maxMessages: 2 }, [
      { t: "rival", batch: 1, requests: 1 },
      { t: "next" },
      { t: "data", n: 3, old: false, sizes: [0, 0, 0, 0, 0, 0, 0, 0], domain: false },
      { t: "next" },
      { t: "status", kind: "maxWaiting", variant: 0, ends: false },
      { t: "advance", ms: 100 },
      { t: "data", n: 1, old: false, sizes: [0, 0, 0, 0, 0, 0, 0, 0], domain: false },
      { t: "advance", ms: 999 },
      { t: "advance", ms: 999 },
    ]);
  });
});
