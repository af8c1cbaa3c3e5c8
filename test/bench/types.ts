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

export type Job = ThroughputJob | DrainJob | SlowJob;

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

export type Result = ThroughputResult | DrainResult | SlowResult;
