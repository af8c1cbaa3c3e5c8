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
   * fault. Milliseconds; default `expires / 2` clamped to [500, 30 000]; at most `expires / 2` (nats-server refuses more).
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

/** An integer in [min, max], else an error that states the whole rule. */
function intIn(name: string, v: unknown, min: number, max: number, unit: string, why = ""): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new InvalidOptionError(name, v, `an integer number of ${unit} ${range}${why}`);
  }
  return v;
}

/** Options of nats.js v3's ConsumeOptions that need priority groups (nats-server >= 2.11). */
const UNSUPPORTED = new Set(["group", "priority", "min_pending", "min_ack_pending"]);

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
export function resolveOptions<M>(
  opts: unknown,
  known: ReadonlySet<string> = KNOWN,
): ResolvedOptions<M> {
  if (opts === undefined || opts === null) opts = {};
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new InvalidOptionError("options", opts, "an object or undefined");
  }
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (UNSUPPORTED.has(key)) {
      throw new InvalidOptionError(key, o[key], "no value: priority groups are not supported");
    }
    if (!known.has(key)) {
      throw InvalidOptionError.unknown(key, o[key], [...known]);
    }
  }
  const has = (k: string) => o[k] !== undefined;
  const MAX = Number.MAX_SAFE_INTEGER;

  const max_messages = has("max_messages")
    ? intIn("max_messages", o.max_messages, 1, MAX, "messages")
    : DEFAULT_MAX_MESSAGES;
  const max_bytes = has("max_bytes") ? intIn("max_bytes", o.max_bytes, 0, MAX, "bytes") : 0;
  const expires = has("expires")
    ? intIn("expires", o.expires, MIN_EXPIRES, MAX_DURATION, "milliseconds")
    : DEFAULT_EXPIRES;
  let idle_heartbeat: number;
  if (has("idle_heartbeat")) {
    idle_heartbeat = intIn(
      "idle_heartbeat",
      o.idle_heartbeat,
      MIN_IDLE_HEARTBEAT,
      MAX_IDLE_HEARTBEAT,
      "milliseconds",
    );
    // nats-server refuses a pull whose heartbeat is more than half its expiry (400 "heartbeat
    // value too large"), which would end the iterator: say so before any I/O.
    if (idle_heartbeat * 2 > expires) {
      throw new InvalidOptionError(
        "idle_heartbeat",
        idle_heartbeat,
        `milliseconds at most half of expires (${expires}), i.e. <= ${Math.floor(expires / 2)}`,
      );
    }
  } else {
    idle_heartbeat = Math.min(MAX_IDLE_HEARTBEAT, Math.max(MIN_IDLE_HEARTBEAT, expires / 2));
  }
  // Re-pull when what is held falls to the threshold; it must be below the maximum or no pull
  // would ever have room. Defaults: 75 % (nats.js), kept below the maximum.
  const threshold_messages = has("threshold_messages")
    ? intIn(
        "threshold_messages",
        o.threshold_messages,
        0,
        max_messages - 1,
        "messages",
        `, less than max_messages (${max_messages})`,
      )
    : Math.min(max_messages - 1, Math.max(1, Math.round(max_messages * 0.75)));
  if (has("threshold_bytes") && max_bytes === 0) {
    throw new InvalidOptionError("threshold_bytes", o.threshold_bytes, "max_bytes to be set too");
  }
  const threshold_bytes = has("threshold_bytes")
    ? intIn(
        "threshold_bytes",
        o.threshold_bytes,
        0,
        max_bytes - 1,
        "bytes",
        `, less than max_bytes (${max_bytes})`,
      )
    : Math.max(0, Math.min(max_bytes - 1, Math.round(max_bytes * 0.75)));
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
  if (o.timeout !== undefined) {
    out.timeout = intIn("timeout", o.timeout, 1, MAX_DURATION, "milliseconds");
  }
  return out;
}

/** Validates the options of `drain()`. */
export function resolveDrainTimeout(opts: unknown, fallback: number): number {
  if (opts === undefined || opts === null) return fallback;
  if (typeof opts !== "object") throw new InvalidOptionError("drain options", opts, "an object");
  const t = (opts as Record<string, unknown>).timeout;
  return t === undefined ? fallback : intIn("timeout", t, 1, MAX_DURATION, "milliseconds");
}

/** Options of `fetchMessages()`: nats.js's `FetchOptions`, plus `signal`. */
export interface FetchOptions {
  /** Messages in the batch, at most. Messages; default 100. */
  max_messages?: number;
  /**
   * Bytes in the batch, at most, counted as the server does (subject, reply, headers, payload).
   * Bytes; default 0 = no byte limit. May be set with `max_messages`.
   */
  max_bytes?: number;
  /**
   * How long the server keeps the request open waiting for the batch to fill; then it ends the
   * batch (its 408: there is no client timer). Milliseconds; default 30 000; at least 1 000.
   */
  expires?: number;
  /**
   * Interval of the server's idle heartbeats while the request is open; two missed ones end the
   * batch with `HeartbeatsMissedError`. Milliseconds; default `expires / 2` clamped to
   * [500, 30 000]; at most `expires / 2`.
   */
  idle_heartbeat?: number;
  /**
   * Accepted for nats.js; a fetch ends with an error on a missing consumer or stream in any case
   * (an ordered consumer's missing server consumer is re-created; only its stream ends it).
   */
  abort_on_missing_resource?: boolean;
  /** Never look the consumer up (no consumer-info requests). Default false. Not for ordered consumers. */
  bind?: boolean;
  /** Aborting it closes the batch as `close()` does: what arrives later is NAKed. */
  signal?: AbortSignal;
}

/** Options of `nextMessage()`: nats.js's `NextOptions`, plus `signal`. */
export interface NextMessageOptions {
  /** How long the server waits for a message; then `nextMessage()` resolves null. Milliseconds; default 30 000; at least 1 000. */
  expires?: number;
  /** Interval of the server's idle heartbeats. Milliseconds; default `expires / 2` clamped to [500, 30 000]. */
  idle_heartbeat?: number;
  /** Never look the consumer up (no consumer-info requests). Default false. Not for ordered consumers. */
  bind?: boolean;
  /**
   * Aborting it rejects `nextMessage()` with `AbortError`; a message that arrives after the abort
   * is NAKed (redelivered) once the unsubscribe is confirmed, never delivered to nobody.
   */
  signal?: AbortSignal;
}

const FETCH_KNOWN: ReadonlySet<string> = new Set([
  "max_messages",
  "max_bytes",
  "expires",
  "idle_heartbeat",
  "abort_on_missing_resource",
  "bind",
  "signal",
]);
const NEXT_KNOWN: ReadonlySet<string> = new Set(["expires", "idle_heartbeat", "bind", "signal"]);

/** Validates `fetchMessages()` options (as {@link resolveOptions}, with fetch's option names). */
export function resolveFetchOptions(opts: unknown): ResolvedOptions<unknown> {
  return resolveOptions(opts, FETCH_KNOWN);
}

/** Validates `nextMessage()` options: a fetch of one message. */
export function resolveNextMessageOptions(opts: unknown): ResolvedOptions<unknown> {
  const o = resolveOptions(opts, NEXT_KNOWN);
  return { ...o, max_messages: 1, threshold_messages: 0 };
}
