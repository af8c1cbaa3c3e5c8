/**
 * What the bench runner hands a child process (a Job, as JSON in argv[2]) and what the child
 * prints back (one JSON line on stdout).
 */

/** The four contenders: this library, nats.js v3 and v2 `consume()`, a plain core subscription. */
export type Contender = "ours" | "v3" | "v2" | "core";

export const CONTENDERS: readonly Contender[] = ["ours", "v3", "v2", "core"];

export const LABELS: Record<Contender, string> = {
  ours: "jetstream-iter consume()",
  v3: "nats.js v3 consume()",
  v2: "nats.js v2 consume()",
  core: "core subscription (ceiling)",
};

/** Who the client is, without the call (tables where the call is named elsewhere). */
export const NAMES: Record<Contender, string> = {
  ours: "jetstream-iter",
  v3: "nats.js v3",
  v2: "nats.js v2",
  core: "core subscription (ceiling)",
};

interface JobBase {
  contender: Contender;
  /** Server URL, e.g. nats://127.0.0.1:34567. */
  url: string;
  stream: string;
  /** Durable consumer (pull; for `core`, a push consumer delivering to `deliverSubject`). */
  consumer: string;
}

/** `for await` over `messages` pre-published messages; `ack()` each one when `ack`. */
export interface ThroughputJob extends JobBase {
  kind: "throughput";
  messages: number;
  ack: boolean;
  payload: number;
  /** `max_messages` of consume(); 0 for the core subscription. */
  maxMessages: number;
  /** core only: the subject the push consumer delivers to. */
  deliverSubject?: string;
  /** The nats-server's pid: the child reads its CPU time at the same moments as its own. */
  serverPid?: number;
}

/**
 * Drain latency: `trials` times, open an iterator, let it sit idle (a pull open, nothing to
 * deliver) or hold a buffer, then call `drain()` (ours) / `stop()` (nats.js) and time until the
 * `for await` loop ends.
 */
export interface DrainJob extends JobBase {
  kind: "drain";
  mode: "idle" | "buffer";
  trials: number;
  maxMessages: number;
}

/** A loop body that takes `bodyMs` per message: peak local backlog and peak RSS. */
export interface SlowJob extends JobBase {
  kind: "slow";
  messages: number;
  maxMessages: number;
  bodyMs: number;
}

/** A measured run: what latest.json keeps as a run's `job`. */
export type Job = ThroughputJob | DrainJob | SlowJob | LatencyJob | ManyJob | ReplayJob;

/** What a child process can be asked to do: a measured run, or a latency cell's publisher. */
export type ChildJob = Job | PublishJob;

/** Every result carries the child's CPU over its whole life (startup and teardown included). */
export interface ResultBase {
  /** User + system CPU of the whole child process, microseconds. */
  processCpuUs?: number;
}

export interface Usage extends ResultBase {
  /** User + system CPU of the measured interval, microseconds. */
  cpuUs: number;
  /** Peak resident set size of the child process, KiB (`process.resourceUsage().maxRSS`). */
  maxRssKb: number;
}

export interface ThroughputResult extends Usage {
  kind: "throughput";
  messages: number;
  seconds: number;
  msgPerSec: number;
  cpuUsPerMsg: number;
  /** nats-server CPU over the measured interval, microseconds (absent without `serverPid`). */
  serverCpuUs?: number;
}

export interface Stat {
  min: number;
  median: number;
  max: number;
}

export interface DrainResult extends ResultBase {
  kind: "drain";
  /** Milliseconds from `drain()`/`stop()` to the end of the loop, one per trial. */
  latenciesMs: number[];
  /** Trials whose loop had not ended 5 s after the call (not in `latenciesMs`). */
  hung: number;
  /** Trials whose loop threw instead of ending. */
  threw: number;
  /** Over the trials: messages buffered when the call was made (`getPending()`). */
  pendingAtCall: Stat;
  /** Over the trials that ended: messages the loop received after the call. */
  handedOutAfter: Stat;
  maxRssKb: number;
}

export interface SlowResult extends Usage {
  kind: "slow";
  messages: number;
  seconds: number;
  /** Highest `getPending()` seen (sampled at every loop iteration and every millisecond). */
  peakPending: number;
}

export type Result =
  | ThroughputResult
  | DrainResult
  | SlowResult
  | LatencyResult
  | LatencyRawResult
  | PublishResult
  | ManyResult
  | ReplayResult;

// ── latency (latency.ts) ───────────────────────────────────────────────────────────────────

/**
 * The consumer side of a latency cell: start consuming (`core`: subscribe to the push
 * consumer's deliver subject), print a `READY` line once the pull request (or the subscription)
 * is on the server, then take `messages` messages (payload: the publisher's index in its first 4
 * bytes), noting the monotonic time at which the loop body sees each one, acking when `ack`.
 */
export interface LatencyJob extends JobBase {
  kind: "latency";
  /** Messages per second the publisher holds. */
  rate: number;
  messages: number;
  /** The first `warmup` messages are not in the percentiles (JIT, first pulls). */
  warmup: number;
  payload: number;
  ack: boolean;
  /** `max_messages` of consume(); 0 for the core subscription. */
  maxMessages: number;
  deliverSubject?: string;
  serverPid?: number;
  /** Give up (and report what is missing) this long after READY, ms. */
  deadlineMs: number;
}

/**
 * The publisher of a latency cell (its own process): `messages` JetStream publishes of `payload`
 * bytes to `subject` at `rate` per second, in 1 ms ticks, each awaiting its PubAck (not one
 * after the other: the rate sets when each one starts).
 */
export interface PublishJob {
  kind: "publish";
  url: string;
  subject: string;
  rate: number;
  messages: number;
  payload: number;
}

/** What the latency consumer prints: monotonic ms at which the loop body saw index i (or -1). */
export interface LatencyRawResult extends Usage {
  kind: "latency-raw";
  bodyAt: number[];
  /** nats-server CPU from READY to the last message, microseconds. */
  serverCpuUs?: number;
  /** Messages seen, of `messages` (fewer: the deadline passed). */
  received: number;
}

export interface PublishResult extends ResultBase {
  kind: "publish";
  /** Monotonic ms of each `js.publish()` call, and of its PubAck's arrival. */
  sentAt: number[];
  ackedAt: number[];
  /** How far the publisher fell behind its schedule at worst, ms (the rate held if small). */
  behindMaxMs: number;
}

/** Percentiles of one latency distribution, ms. */
export interface Percentiles {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** A latency cell after the runner joined the two sides. */
export interface LatencyResult extends Usage {
  kind: "latency";
  rate: number;
  messages: number;
  received: number;
  /** From the `js.publish()` call to the loop body. */
  fromPublish: Percentiles;
  /** From the PubAck's arrival at the publisher to the loop body (negative: the body was first). */
  fromPubAck: Percentiles;
  /** From the `js.publish()` call to its PubAck (the store's share, the same for every client). */
  pubAck: Percentiles;
  behindMaxMs: number;
  cpuUsPerMsg: number;
  serverCpuUsPerMsg?: number;
  /** CPU of the publisher process, microseconds (subtracted from "other processes"). */
  publisherCpuUs?: number;
}

// ── many iterators (many.ts) ───────────────────────────────────────────────────────────────

/**
 * `n` iterators on one connection, each on its own durable (`<idlePrefix><k>` filtering an
 * empty subject; `<loadPrefix><k>` filtering its share of a pre-published backlog of `messages`
 * messages, spread round robin). Idle phase, then load phase; see many.ts.
 */
export interface ManyJob extends JobBase {
  kind: "many";
  n: number;
  idlePrefix: string;
  loadPrefix: string;
  messages: number;
  payload: number;
  maxMessages: number;
  expires: number;
  /** Idle CPU window, ms (a whole number of `expires` periods). */
  idleWindowMs: number;
  /** Throughput is measured up to this share of the backlog; then all are drained at once. */
  loadFraction: number;
  serverPid?: number;
}

export interface ManyPhase {
  /** Live heap (after a full GC) per iterator over the base before they opened, KiB. */
  heapPerIterKb: number;
  /** RSS per iterator over the base, KiB (coarse: RSS moves in pages and rarely shrinks). */
  rssPerIterKb: number;
  /** From the end call(s) on every iterator at once to the last loop ending, ms. */
  drainAllMs: number;
  /** Loops still running 10 s after the end calls. */
  drainAllLate: number;
  /** Messages the loops received after the end calls (all loops together). */
  handedOutAfter: number;
}

export interface ManyResult extends ResultBase {
  kind: "many";
  n: number;
  /** `consumers.get()` of the n durables (not measured below), ms. */
  lookupMs: number;
  idle: ManyPhase & {
    windowMs: number;
    /** Client CPU per iterator per minute, ms: measured over `windowMs`, scaled to 60 s. */
    cpuMsPerIterPerMin: number;
    serverCpuMsPerIterPerMin?: number;
  };
  load: ManyPhase & {
    /** Messages counted when throughput was taken (`loadFraction` of the backlog). */
    messages: number;
    msgPerSec: number;
    cpuUsPerMsg: number;
    serverCpuUsPerMsg?: number;
  };
  maxRssKb: number;
  /**
   * Set by the runner after the child exited: messages the load durables had delivered but
   * not seen acked (`num_ack_pending`, summed). Left so, they wait for `ack_wait` (30 s).
   */
  unacked?: number;
}

// ── ordered replay and fetch (replay.ts) ───────────────────────────────────────────────────

/**
 * `ordered`: replay the whole stream (`messages`) through an ordered consumer's consume()
 * (`max_messages` = maxMessages). `fetch`: drain a durable (`consumer`, explicit acks) with
 * repeated fetch batches of `maxMessages`, acking each message.
 */
export interface ReplayJob extends JobBase {
  kind: "replay";
  mode: "ordered" | "fetch";
  messages: number;
  payload: number;
  maxMessages: number;
  expires: number;
  serverPid?: number;
}

export interface ReplayResult extends Usage {
  kind: "replay";
  messages: number;
  seconds: number;
  msgPerSec: number;
  cpuUsPerMsg: number;
  serverCpuUs?: number;
  /** fetch: batches it took. */
  batches: number;
}
