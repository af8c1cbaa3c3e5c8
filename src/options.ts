/**
 * Options of `consume()` and `pullMessages()`: nats.js's `ConsumeOptions` names and units, plus
 * `signal`. Everything is validated by {@link resolveOptions} before any I/O.
 */
import { InvalidOptionError } from "./errors.js";

/** Called with each message in callback mode; a returned promise is awaited before the next one. */
export type ConsumerCallback<M> = (msg: M) => void | Promise<unknown>;

export interface ConsumeOptions<M = unknown> {
  /**
   * Most messages held at once: buffered locally plus requested from the server and not yet
   * received. Messages; default 100.
   */
  max_messages?: number;
  /**
   * Most bytes held at once (buffered plus requested), counted as the server does (subject,
   * reply, headers and payload). Bytes; default 0 = no byte limit. May be set with `max_messages`.
   */
  max_bytes?: number;
  /** Lifetime of one pull request on the server. Milliseconds; default 30 000; at least 1 000. */
  expires?: number;
  /**
   * Interval of the server's idle heartbeats on an open pull request; two missed ones count as a
   * fault. Milliseconds; default `expires / 2` clamped to [500, 30 000]; must be less than `expires`.
   */
  idle_heartbeat?: number;
  /** Re-pull when messages held fall to this. Messages; default 75 % of `max_messages` (at least 1). */
  threshold_messages?: number;
  /** Re-pull when bytes held fall to this (with `max_bytes`). Bytes; default 75 % of `max_bytes`. */
  threshold_bytes?: number;
  /**
   * Callback mode: messages are handed to this function one at a time instead of to `next()` /
   * `for await`. A returned promise is awaited before the next message; a throw or rejection ends
   * the consumer with that error. Default: none (iterator mode).
   */
  callback?: ConsumerCallback<M>;
  /**
   * End the iterator with an error when the consumer or its stream is deleted. Default false:
   * notify and resume when the consumer exists again.
   */
  abort_on_missing_resource?: boolean;
  /**
   * Never look the consumer up (no consumer-info requests), e.g. when the account may not read
   * consumer info. Default false.
   */
  bind?: boolean;
  /** Aborting it closes the iterator, as `close()` does. */
  signal?: AbortSignal;
}

/** The options after defaults, as the engine uses them. */
export interface ResolvedOptions<M = unknown> {
  max_messages: number;
  max_bytes: number;
  expires: number;
  idle_heartbeat: number;
  threshold_messages: number;
  threshold_bytes: number;
  callback: ConsumerCallback<M> | undefined;
  abort_on_missing_resource: boolean;
  bind: boolean;
  signal: AbortSignal | undefined;
}

export const DEFAULT_MAX_MESSAGES = 100;
export const DEFAULT_EXPIRES = 30_000;
export const MIN_EXPIRES = 1_000;
export const MIN_IDLE_HEARTBEAT = 500;
export const MAX_IDLE_HEARTBEAT = 30_000;
/** The server keeps `expires` in nanoseconds in an int64; stay far below. */
const MAX_DURATION = 2 ** 31 - 1;

const KNOWN = new Set([
  "max_messages",
  "max_bytes",
  "expires",
  "idle_heartbeat",
  "threshold_messages",
  "threshold_bytes",
  "callback",
  "abort_on_missing_resource",
  "bind",
  "signal",
]);

function positiveInt(name: string, v: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) {
    throw new InvalidOptionError(name, v, `an integer from 1 to ${max}`);
  }
  return v;
}

function nonNegativeInt(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new InvalidOptionError(name, v, "an integer >= 0");
  }
  return v;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw new InvalidOptionError(name, v, "a boolean");
  return v;
}

function isAbortSignal(v: unknown): v is AbortSignal {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as AbortSignal).aborted === "boolean" &&
    typeof (v as AbortSignal).addEventListener === "function" &&
    typeof (v as AbortSignal).removeEventListener === "function"
  );
}

/**
 * Validates `opts` and fills in nats.js's defaults. Throws {@link InvalidOptionError} naming the
 * option, the value and what was expected. Does no I/O.
 */
export function resolveOptions<M>(opts: unknown): ResolvedOptions<M> {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new InvalidOptionError("options", opts, "an object or undefined");
  }
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) {
      throw new InvalidOptionError(key, o[key], `no such option (known: ${[...KNOWN].join(", ")})`);
    }
  }
  const has = (k: string) => o[k] !== undefined;

  const max_messages = has("max_messages")
    ? positiveInt("max_messages", o.max_messages)
    : DEFAULT_MAX_MESSAGES;
  const max_bytes = has("max_bytes") ? nonNegativeInt("max_bytes", o.max_bytes) : 0;
  const expires = has("expires")
    ? positiveInt("expires", o.expires, MAX_DURATION)
    : DEFAULT_EXPIRES;
  if (expires < MIN_EXPIRES) {
    throw new InvalidOptionError("expires", expires, `milliseconds >= ${MIN_EXPIRES}`);
  }
  let idle_heartbeat: number;
  if (has("idle_heartbeat")) {
    idle_heartbeat = positiveInt("idle_heartbeat", o.idle_heartbeat, MAX_DURATION);
    if (idle_heartbeat < MIN_IDLE_HEARTBEAT || idle_heartbeat > MAX_IDLE_HEARTBEAT) {
      throw new InvalidOptionError(
        "idle_heartbeat",
        idle_heartbeat,
        `milliseconds from ${MIN_IDLE_HEARTBEAT} to ${MAX_IDLE_HEARTBEAT}`,
      );
    }
    if (idle_heartbeat >= expires) {
      throw new InvalidOptionError(
        "idle_heartbeat",
        idle_heartbeat,
        `milliseconds less than expires (${expires})`,
      );
    }
  } else {
    idle_heartbeat = Math.min(MAX_IDLE_HEARTBEAT, Math.max(MIN_IDLE_HEARTBEAT, expires / 2));
  }
  const threshold_messages = has("threshold_messages")
    ? nonNegativeInt("threshold_messages", o.threshold_messages)
    : Math.max(1, Math.round(max_messages * 0.75));
  if (threshold_messages >= max_messages && max_messages > 1) {
    throw new InvalidOptionError(
      "threshold_messages",
      threshold_messages,
      `an integer less than max_messages (${max_messages})`,
    );
  }
  if (has("threshold_bytes") && max_bytes === 0) {
    throw new InvalidOptionError("threshold_bytes", o.threshold_bytes, "max_bytes to be set too");
  }
  const threshold_bytes = has("threshold_bytes")
    ? nonNegativeInt("threshold_bytes", o.threshold_bytes)
    : Math.round(max_bytes * 0.75);
  if (max_bytes > 0 && threshold_bytes >= max_bytes) {
    throw new InvalidOptionError(
      "threshold_bytes",
      threshold_bytes,
      `an integer less than max_bytes (${max_bytes})`,
    );
  }
  if (has("callback") && typeof o.callback !== "function") {
    throw new InvalidOptionError("callback", o.callback, "a function");
  }
  if (has("signal") && !isAbortSignal(o.signal)) {
    throw new InvalidOptionError("signal", o.signal, "an AbortSignal");
  }
  return {
    max_messages,
    max_bytes,
    expires,
    idle_heartbeat,
    threshold_messages,
    threshold_bytes,
    callback: o.callback as ConsumerCallback<M> | undefined,
    abort_on_missing_resource: has("abort_on_missing_resource")
      ? bool("abort_on_missing_resource", o.abort_on_missing_resource)
      : false,
    bind: has("bind") ? bool("bind", o.bind) : false,
    signal: o.signal as AbortSignal | undefined,
  };
}

/** Validates the options of `next()`. */
export function resolveNextOptions(opts: unknown): { signal?: AbortSignal; timeout?: number } {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object") throw new InvalidOptionError("next options", opts, "an object");
  const o = opts as Record<string, unknown>;
  const out: { signal?: AbortSignal; timeout?: number } = {};
  if (o.signal !== undefined) {
    if (!isAbortSignal(o.signal))
      throw new InvalidOptionError("signal", o.signal, "an AbortSignal");
    out.signal = o.signal;
  }
  if (o.timeout !== undefined) out.timeout = positiveInt("timeout", o.timeout, MAX_DURATION);
  return out;
}

/** Validates the options of `drain()`. */
export function resolveDrainTimeout(opts: unknown, fallback: number): number {
  if (opts === undefined || opts === null) return fallback;
  if (typeof opts !== "object") throw new InvalidOptionError("drain options", opts, "an object");
  const t = (opts as Record<string, unknown>).timeout;
  return t === undefined ? fallback : positiveInt("timeout", t, MAX_DURATION);
}
