/**
 * Errors of jetstream-iter. Each class has a stable `name` and `code` (match on `code`, not on
 * the message), keeps what caused it in `cause`, and says below whether it ends the iterator.
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
}

/** The object given to `consume()` is not a nats.js pull consumer. Thrown before any I/O. */
export class InvalidConsumerError extends TypeError {
  override readonly name = "InvalidConsumerError";
  readonly code = ErrorCode.InvalidConsumer;
}

/**
 * The server said the consumer was deleted (409 "Consumer Deleted"). Ends the iterator when
 * `abort_on_missing_resource` is set; otherwise it is only notified and the iterator waits for
 * the consumer to exist again.
 */
export class ConsumerDeletedError extends Error {
  override readonly name = "ConsumerDeletedError";
  readonly code = ErrorCode.ConsumerDeleted;
  constructor(
    readonly stream: string,
    readonly consumer: string,
    readonly description = "Consumer Deleted",
  ) {
    super(`consumer ${stream}/${consumer} was deleted (${description})`);
  }
}

/**
 * Consumer info says the consumer does not exist. Ends the iterator only with
 * `abort_on_missing_resource`.
 */
export class ConsumerNotFoundError extends Error {
  override readonly name = "ConsumerNotFoundError";
  readonly code = ErrorCode.ConsumerNotFound;
  constructor(
    readonly stream: string,
    readonly consumer: string,
  ) {
    super(`consumer ${stream}/${consumer} not found`);
  }
}

/** Consumer info says the stream does not exist. Ends the iterator only with `abort_on_missing_resource`. */
export class StreamNotFoundError extends Error {
  override readonly name = "StreamNotFoundError";
  readonly code = ErrorCode.StreamNotFound;
  constructor(readonly stream: string) {
    super(`stream ${stream} not found`);
  }
}

/**
 * The connection closed because of a failure (nats.js's `closed()` resolved an Error, kept in
 * `cause`). Ends the iterator; `for await` throws it once the iterator is empty. A connection
 * the application closed (`nc.close()`, `nc.drain()`) ends the iterator without an error.
 */
export class ConnectionClosedError extends Error {
  override readonly name = "ConnectionClosedError";
  readonly code = ErrorCode.ConnectionClosed;
  constructor(cause?: unknown) {
    super(
      cause instanceof Error ? `connection closed: ${cause.message}` : "connection closed",
      cause === undefined ? undefined : { cause },
    );
  }
}

/**
 * A terminal status from the server for our pull requests: 400 Bad Request, 409 "Consumer is
 * push based", and other statuses that no retry can fix. Ends the iterator.
 */
export class JetStreamStatusError extends Error {
  override readonly name = "JetStreamStatusError";
  readonly code = ErrorCode.JetStreamStatus;
  constructor(
    readonly status: number,
    readonly description: string,
  ) {
    super(`JetStream status ${status}: ${description}`);
  }
}

/**
 * `next()` or `for await` was used on a `Messages` created with a `callback`: in callback mode
 * the library hands messages to the callback only. Does not end the iterator.
 */
export class CallbackModeError extends Error {
  override readonly name = "CallbackModeError";
  readonly code = ErrorCode.CallbackMode;
  constructor() {
    super("messages are delivered to the callback; next() and for await are not available");
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
