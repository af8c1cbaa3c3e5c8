/**
 * Errors of jetstream-iter. Each class has a stable `name` and `code` (match on `code`), keeps
 * what caused it in `cause`, and says below whether it ends the iterator.
 *
 * Where nats.js (`@nats-io/jetstream` 3.4 or `nats` 2.29) ends a consumer with an error for the
 * same reason, the `message` is nats.js's (e.g. "consumer not found", "consumer deleted"), and
 * the error also carries nats.js's other observable fields under their names (`status`,
 * `api_error`, `apiError()`), so code that matched nats.js's errors on those keeps working.
 * `code` cannot be both: it stays ours (nats.js's `code` is a number in v3 and a string in v2).
 * docs/migration.md, "Parity", lists what matches and what cannot.
 *
 * Aborts reject with {@link AbortError}, whose `name` is "AbortError" as in abort-controller-x
 * and the DOM; recognise them with {@link isAbortError} (this one or abort-controller-x's: both
 * go by the name).
 */

/** Stable codes of the errors below. */
export const ErrorCode = {
  IteratorClosed: "JSITER_ITERATOR_CLOSED",
  NextTimeout: "JSITER_NEXT_TIMEOUT",
  InvalidOption: "JSITER_INVALID_OPTION",
  InvalidConsumer: "JSITER_INVALID_CONSUMER",
  ConsumerDeleted: "JSITER_CONSUMER_DELETED",
  ConsumerNotFound: "JSITER_CONSUMER_NOT_FOUND",
  StreamNotFound: "JSITER_STREAM_NOT_FOUND",
  ConnectionClosed: "JSITER_CONNECTION_CLOSED",
  JetStreamStatus: "JSITER_JETSTREAM_STATUS",
  CallbackMode: "JSITER_CALLBACK_MODE",
  Aborted: "JSITER_ABORTED",
  HeartbeatsMissed: "JSITER_HEARTBEATS_MISSED",
  OrderedConsumer: "JSITER_ORDERED_CONSUMER",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The call was aborted by its `signal`: `next({ signal })` (that call only: the iterator stays
 * open and the message goes to the next call) or `consume(c, { signal })` with a signal already
 * aborted (nothing was created). Does not end the iterator; an abort of `consume()`'s signal
 * later on closes it as `close()` does, without an error, in any phase until the iterator is
 * done (also during a `drain()`: the fence is cut short and what is buffered is NAKed).
 */
export class AbortError extends Error {
  override readonly name = "AbortError";
  readonly code = ErrorCode.Aborted;
  constructor(message = "The operation has been aborted") {
    super(message);
  }
}

/**
 * True for any abort error: this library's `AbortError`, abort-controller-x's, and a DOM one
 * (`fetch` aborted, say). The reason of `AbortSignal.timeout()` is a `TimeoutError`, not one.
 */
export function isAbortError(error: unknown): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    (error as { name?: unknown }).name === "AbortError"
  );
}

/**
 * `next()` was called on an iterator that is closed and has nothing left to hand out.
 * This is how the iterator says "done"; `cause` is the error that ended it, if any.
 * Not a failure in itself; it is the end.
 */
export class MsgIteratorClosedError extends Error {
  override readonly name = "MsgIteratorClosedError";
  readonly code = ErrorCode.IteratorClosed;
  constructor(cause?: Error) {
    super(
      cause ? `message iterator is closed: ${cause.message}` : "message iterator is closed",
      cause ? { cause } : undefined,
    );
  }
}

/** `next({ timeout })` saw no message in time. Does not end the iterator: call `next()` again. */
export class NextTimeoutError extends Error {
  override readonly name = "NextTimeoutError";
  readonly code = ErrorCode.NextTimeout;
  constructor(readonly timeout: number) {
    super(`no message within ${timeout} ms`);
  }
}

/**
 * An option has a value the library cannot use. Thrown before any I/O, so nothing was created.
 * `option` names it and `value` is what was given.
 */
export class InvalidOptionError extends TypeError {
  override readonly name = "InvalidOptionError";
  readonly code = ErrorCode.InvalidOption;
  constructor(
    readonly option: string,
    readonly value: unknown,
    expected: string,
  ) {
    super(`option ${option}: expected ${expected}, got ${describe(value)}`);
  }

  /**
   * An option name that is not known: the message names it, suggests the closest known name
   * (a misspelling is the usual cause) and lists the known ones; the value is beside the point.
   */
  static unknown(option: string, value: unknown, known: readonly string[]): InvalidOptionError {
    const e = new InvalidOptionError(option, value, "");
    const close = closest(option, known);
    e.message =
      `unknown option ${option}${close ? ` (did you mean ${close}?)` : ""}; ` +
      `expected one of ${known.join(", ")}`;
    return e;
  }
}

/** The known name nearest to `name` (edit distance at most half its length, or 3), if any. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(3, Math.floor(name.length / 2)) + 1;
  for (const k of known) {
    const d = editDistance(name.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** The object given to `consume()` is not a nats.js pull consumer. Thrown before any I/O. */
export class InvalidConsumerError extends TypeError {
  override readonly name = "InvalidConsumerError";
  readonly code = ErrorCode.InvalidConsumer;
}

/** A JetStream API error as the server sends it (nats.js's `ApiError`). */
export interface ApiError {
  /** HTTP-like status, e.g. 404. */
  code: number;
  /** JetStream error code, e.g. 10014 (consumer not found). */
  err_code: number;
  description: string;
}

/**
 * The server said the consumer was deleted (409 "Consumer Deleted"). Ends the iterator when
 * `abort_on_missing_resource` is set; otherwise it is only notified and the iterator waits for
 * the consumer to exist again. The message is nats.js's ("consumer deleted"), `status` is 409
 * (nats.js: a `JetStreamStatusError` in v3, a `NatsError` with code "409" in v2).
 */
export class ConsumerDeletedError extends Error {
  override readonly name = "ConsumerDeletedError";
  readonly code = ErrorCode.ConsumerDeleted;
  /** The status code, as nats.js's status errors carry it. */
  readonly status = 409;
  constructor(
    readonly stream: string,
    readonly consumer: string,
    /** The description as the server sent it. */
    readonly description = "Consumer Deleted",
  ) {
    super("consumer deleted");
  }
}

/**
 * Consumer info says the consumer does not exist. Ends the iterator only with
 * `abort_on_missing_resource`. Named, worded and shaped as nats.js v3's `ConsumerNotFoundError`
 * ("consumer not found", `status` 404, `apiError()`; its `code` 10014 is `apiError().err_code`)
 * and with v2's `api_error`.
 */
export class ConsumerNotFoundError extends Error {
  override readonly name = "ConsumerNotFoundError";
  readonly code = ErrorCode.ConsumerNotFound;
  readonly status = 404;
  /** The server's error (nats v2's `NatsError.api_error`). */
  readonly api_error: ApiError = { code: 404, err_code: 10014, description: "consumer not found" };
  constructor(
    readonly stream: string,
    readonly consumer: string,
  ) {
    super("consumer not found");
  }
  /** A copy of the server's error (nats.js v3's `JetStreamApiError.apiError()`). */
  apiError(): ApiError {
    return { ...this.api_error };
  }
}

/**
 * Consumer info says the stream does not exist. Ends the iterator only with
 * `abort_on_missing_resource`. Named, worded and shaped as nats.js v3's `StreamNotFoundError`
 * ("stream not found", `status` 404, `apiError()` with `err_code` 10059) and with v2's `api_error`.
 */
export class StreamNotFoundError extends Error {
  override readonly name = "StreamNotFoundError";
  readonly code = ErrorCode.StreamNotFound;
  readonly status = 404;
  /** The server's error (nats v2's `NatsError.api_error`). */
  readonly api_error: ApiError = { code: 404, err_code: 10059, description: "stream not found" };
  constructor(readonly stream: string) {
    super("stream not found");
  }
  /** A copy of the server's error (nats.js v3's `JetStreamApiError.apiError()`). */
  apiError(): ApiError {
    return { ...this.api_error };
  }
}

/**
 * The connection closed because of a failure (nats.js's `closed()` resolved an Error, kept in
 * `cause`), or `consume()` was given a closed connection. Ends the iterator; `for await` throws
 * it once the iterator is empty. A connection the application closed (`nc.close()`,
 * `nc.drain()`) ends the iterator without an error. The message is "connection closed", as nats
 * v2's (v3's `ClosedConnectionError` says "closed connection").
 */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
  readonly code = ErrorCode.ConnectionClosed;
  constructor(cause?: unknown) {
    // nats v2's wording (its NatsError CONNECTION_CLOSED); the reason is in `cause`
    super("connection closed", cause === undefined ? undefined : { cause });
  }
}

/**
 * A terminal status from the server for our pull requests: 400 Bad Request, 409 "Consumer is
 * push based", and other statuses that no retry can fix. Ends the iterator. Named as nats.js
 * v3's error for the same statuses, and worded as nats.js (both generations): the message is
 * the server's description in lower case (e.g. "bad request"). nats.js v3's `code` (the
 * status, a number) is `status` here.
 */
export class JetStreamStatusError extends Error {
  override readonly name = "JetStreamStatusError";
  readonly code = ErrorCode.JetStreamStatus;
  constructor(
    readonly status: number,
    /** The description as the server sent it. */
    readonly description: string,
  ) {
    super(description.toLowerCase() || "unknown");
  }
}

/**
 * `next()` or `for await` was used on a `Messages` created with a `callback`: in callback mode
 * the library hands messages to the callback only. Does not end the iterator. Worded as nats.js
 * v3's `InvalidOperationError` for the same mistake.
 */
export class CallbackModeError extends Error {
  override readonly name = "CallbackModeError";
  readonly code = ErrorCode.CallbackMode;
  constructor() {
    // nats.js v3's wording for iterating a consumer that has a callback
    super("iterator cannot be used when a callback is registered");
  }
}

/**
 * A `fetchMessages()` / `nextMessage()` request showed no life for two heartbeat intervals (no
 * message, no heartbeat, no status): the server or the route to it is gone. Ends that fetch, as
 * nats.js v3's fetch does (its message starts the same: "heartbeats missed"); what was already
 * buffered is handed out first. `consume()` never ends for this: it recovers.
 */
export class HeartbeatsMissedError extends Error {
  override readonly name = "HeartbeatsMissedError";
  readonly code = ErrorCode.HeartbeatsMissed;
  constructor(
    readonly count: number,
    readonly idleHeartbeat: number,
  ) {
    super(`heartbeats missed: ${count} × ${idleHeartbeat} ms without a heartbeat or message`);
  }
}

/**
 * An ordered consumer's next server consumer could not be created: the server refused its config
 * (`status` 4xx: a filter that matches no subject, the stream's consumer limit, …), or a fetch
 * got no answer several times in a row. Ends the iterator (after what it holds is handed out).
 */
export class OrderedConsumerError extends Error {
  override readonly name = "OrderedConsumerError";
  readonly code = ErrorCode.OrderedConsumer;
  constructor(
    readonly stream: string,
    readonly consumer: string,
    readonly status: number,
    readonly description: string,
  ) {
    super(`ordered consumer ${stream}/${consumer} could not be created: ${description}`);
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (value === null || typeof value !== "object") return String(value);
  try {
    return JSON.stringify(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
