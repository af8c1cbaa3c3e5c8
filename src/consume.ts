/**
 * Entry points: `consume(consumer, opts)`, `fetchMessages(consumer, opts)` and
 * `nextMessage(consumer, opts)` for a nats.js pull consumer (v3 or v2; durable, named or ordered),
 * `wrapConsumer(consumer)` to hand such a consumer around with those three in place of its own,
 * and `pullMessages(nc, stream, consumer, opts)` for a bare connection of either generation.
 */
import { isNatsConnectionLike, type NatsConnectionLike } from "./connection.js";
import {
  AbortError,
  ConnectionClosedError,
  InvalidConsumerError,
  InvalidOptionError,
  MsgIteratorClosedError,
} from "./errors.js";
import type { JsMsg } from "./jsmsg.js";
import { Messages } from "./messages.js";
import type { Notification } from "./notifications.js";
import {
  type ConsumeOptions,
  type FetchOptions,
  type NextMessageOptions,
  type ResolvedOptions,
  resolveFetchOptions,
  resolveNextMessageOptions,
  resolveOptions,
} from "./options.js";
import {
  DEFAULT_API_PREFIX,
  DEFAULT_API_TIMEOUT,
  readConsumer,
  type Target,
  WRAPPED,
} from "./target.js";

/**
 * What `consume()` reads from a nats.js pull consumer (`PullConsumerImpl` of v3 and v2 has
 * these fields). Typed loosely so both generations' `Consumer` types are accepted.
 */
export interface PullConsumerLike {
  next(...args: never[]): Promise<unknown>;
  consume(...args: never[]): Promise<unknown>;
}

/** The message type a consumer's own `next()` resolves: v3's or v2's `JsMsg`. */
export type MsgOf<C> = C extends { next(...args: never[]): Promise<infer R> }
  ? Exclude<R, null | undefined>
  : JsMsg;

/** What the consumer's own `consume()` result returns from `status()`, in that generation's shape. */
export type StatusOf<C> = C extends { consume(...args: never[]): Promise<infer CM> }
  ? CM extends { status(): infer S }
    ? S
    : AsyncIterable<Notification>
  : AsyncIterable<Notification>;

/** The `Messages` that `consume(c)` resolves: assignable to that generation's `ConsumerMessages`. */
export type MessagesOf<C> = Messages<MsgOf<C>, StatusOf<C>>;

function start<M, S>(t: Target, opts: ResolvedOptions<unknown>, fetch = false): Messages<M, S> {
  if (opts.signal?.aborted) throw new AbortError();
  if (t.nc.isClosed()) throw new ConnectionClosedError();
  return new Messages<M, S>({ ...t, opts, fetch });
}

/** Reads `consumer` and checks what an ordered one does not allow. No I/O. */
function target(consumer: unknown, opts: ResolvedOptions<unknown>, call: string): Target {
  const t = readConsumer(consumer, call);
  if (t.ordered) {
    if (opts.bind) {
      throw new InvalidOptionError(
        "bind",
        opts.bind,
        "false or unset: an ordered consumer creates its own server consumers",
      );
    }
    if (t.ordered.state.busy) {
      throw new InvalidConsumerError(
        `${call}: this ordered consumer is already being consumed: one consume(), fetch or next at a time (as in nats.js)`,
      );
    }
  }
  return t;
}

/**
 * Starts consuming a nats.js pull consumer — `jetstream(nc).consumers.get(stream, name)` of
 * `@nats-io/jetstream` v3, or `nc.jetstream().consumers.get(stream, name)` of `nats` v2, or an
 * ordered consumer (`consumers.get(stream)` / `consumers.get(stream, orderedOpts)`) of either —
 * with nats.js's `ConsumeOptions` (plus `signal`). Drop-in for `await consumer.consume(opts)`.
 *
 * An ordered consumer is consumed through a chain of ephemeral consumers that the library
 * re-creates from the next stream sequence after any gap or fault: the loop sees every message
 * once, in order (docs/guide.md, "Ordered consumers").
 *
 * Resolves the `Messages`, typed as that generation's `ConsumerMessages`. Rejects, before any
 * I/O, with `InvalidOptionError` for a bad option (also `bind` with an ordered consumer),
 * `InvalidConsumerError` for something that is not a pull consumer or an ordered consumer already
 * being consumed, `AbortError` if `signal` is already aborted, and `ConnectionClosedError` if
 * the connection is closed.
 */
export async function consume<C extends PullConsumerLike>(
  consumer: C,
  opts?: ConsumeOptions<MsgOf<C>>,
): Promise<MessagesOf<C>> {
  const resolved = resolveOptions<unknown>(opts);
  return start<MsgOf<C>, StatusOf<C>>(target(consumer, resolved, "consume()"), resolved);
}

/**
 * Fetches one batch: drop-in for `await consumer.fetch(opts)`. Resolves a `Messages` (the same
 * iterator as `consume()`: `for await`, `next()`, `drain()`, `close()`, `status()`) that ends
 * when the batch is complete — `max_messages` (and/or `max_bytes`) received, or the server ended
 * the request (its 408 at `expires`: no client timer, so nothing that arrives in time is lost; or,
 * when the server removed the expired request without its 408, a PING up to 2 s later finds it
 * so).
 * One request is open at a time; after a fault (reconnect, leadership change) only what the batch
 * still lacks is asked for again, with a new `expires`. It ends with an error, after handing out
 * what it holds, when heartbeats are missed ({@link HeartbeatsMissedError}), the consumer or stream
 * is missing (for an ordered consumer: the stream; its consumer is re-created), the server refuses
 * the request, or an ordered consumer's server consumer cannot be created
 * ({@link OrderedConsumerError}). `close()` / `break` / an abort NAK what was not handed out (an
 * ordered consumer has nothing to NAK: the next fetch starts after the last message handed out).
 *
 * Rejects, before any I/O, as {@link consume} does.
 */
export async function fetchMessages<C extends PullConsumerLike>(
  consumer: C,
  opts?: FetchOptions,
): Promise<MessagesOf<C>> {
  const resolved = resolveFetchOptions(opts);
  return start<MsgOf<C>, StatusOf<C>>(
    target(consumer, resolved, "fetchMessages()"),
    resolved,
    true,
  );
}

/**
 * One message, or `null` when none came within `expires` (default 30 000 ms): drop-in for
 * `await consumer.next(opts)`. A fetch of one message; settles once that fetch is done (its
 * subscription removed). Rejects with the error that ended the fetch (missed heartbeats, a
 * missing consumer or stream, a refused request, a lost connection), and with `AbortError` when
 * `signal` aborts before a message was handed over: a message that arrives after the abort is
 * NAKed (once the unsubscribe is confirmed: within a second, on a cluster or domain up to ~2.1 s
 * more first while the pull is younger than 2 s), never delivered to nobody.
 * Validation errors reject before any I/O.
 */
export async function nextMessage<C extends PullConsumerLike>(
  consumer: C,
  opts?: NextMessageOptions,
): Promise<MsgOf<C> | null> {
  const resolved = resolveNextMessageOptions(opts);
  const batch = start<MsgOf<C>, unknown>(
    target(consumer, resolved, "nextMessage()"),
    resolved,
    true,
  );
  let msg: MsgOf<C> | null = null;
  let failure: unknown;
  try {
    msg = await batch.next();
  } catch (err) {
    failure = err instanceof MsgIteratorClosedError ? err.cause : err;
  }
  const aborted = msg === null && resolved.signal?.aborted === true;
  // Its subscription gone before the caller goes on: calls in a row never overlap.
  await batch.closed();
  if (failure !== undefined) throw failure;
  if (aborted) throw new AbortError();
  return msg;
}

/**
 * The consumer, with `consume`, `fetch` and `next` replaced by this library's
 * ({@link consume}, {@link fetchMessages}, {@link nextMessage}); everything else (`info`,
 * `delete`, …) is the nats.js consumer's own. For apps that hand the consumer around: one line
 * where it is acquired. Typed as the consumer given (assignable to that generation's `Consumer`).
 * Throws `InvalidConsumerError` at once for something that is not a nats.js pull consumer.
 */
export function wrapConsumer<C extends PullConsumerLike>(consumer: C): C {
  readConsumer(consumer, "wrapConsumer()");
  const own: Record<PropertyKey, unknown> = {
    consume: (opts?: ConsumeOptions<MsgOf<C>>) => consume(consumer, opts),
    fetch: (opts?: FetchOptions) => fetchMessages(consumer, opts),
    next: (opts?: NextMessageOptions) => nextMessage(consumer, opts),
    [WRAPPED]: consumer,
  };
  return new Proxy(consumer, {
    get(t, prop) {
      if (Object.hasOwn(own, prop)) return own[prop];
      const v: unknown = Reflect.get(t, prop, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
}

/** Options of `pullMessages()`: `ConsumeOptions` plus where the JetStream API lives. */
export interface PullMessagesOptions extends ConsumeOptions<JsMsg> {
  /** JetStream API prefix. Default `$JS.API` (or `$JS.<domain>.API` with `domain`). */
  api_prefix?: string;
  /** JetStream domain; sets the API prefix to `$JS.<domain>.API`. Default: none. */
  domain?: string;
  /** Timeout of JetStream API requests and the default of `ackAck()`. Milliseconds; default 5 000. */
  api_timeout?: number;
}

/**
 * Starts consuming `stream`/`consumer` (a durable pull consumer that exists) over a bare NATS
 * connection of either generation (nats v2 or @nats-io/transport-* v3). Returns the `Messages`
 * at once; the first pull is already on its way. Throws, before any I/O, `InvalidOptionError`
 * for a bad argument, `AbortError` if `signal` is already aborted, `ConnectionClosedError` if
 * the connection is closed.
 */
export function pullMessages(
  nc: NatsConnectionLike,
  stream: string,
  consumer: string,
  opts: PullMessagesOptions | null = {},
): Messages<JsMsg, AsyncIterable<Notification>> {
  if (!isNatsConnectionLike(nc)) throw new InvalidOptionError("nc", nc, "a NATS connection");
  checkName("stream", stream);
  checkName("consumer", consumer);
  if (opts === null) opts = {};
  if (typeof opts !== "object" || Array.isArray(opts)) {
    throw new InvalidOptionError("options", opts, "an object or undefined");
  }
  const { api_prefix, domain, api_timeout, ...rest } = opts;
  if (api_prefix !== undefined && domain !== undefined) {
    throw new InvalidOptionError("domain", domain, "either api_prefix or domain, not both");
  }
  if (
    api_prefix !== undefined &&
    (typeof api_prefix !== "string" || !/^[^\s*>]+$/.test(api_prefix))
  ) {
    throw new InvalidOptionError("api_prefix", api_prefix, "a subject prefix such as $JS.API");
  }
  if (domain !== undefined && (typeof domain !== "string" || !/^[^\s.*>]+$/.test(domain))) {
    throw new InvalidOptionError(
      "domain",
      domain,
      "a JetStream domain name (no dots, spaces or wildcards)",
    );
  }
  if (
    api_timeout !== undefined &&
    (typeof api_timeout !== "number" || !Number.isInteger(api_timeout) || api_timeout < 1)
  ) {
    throw new InvalidOptionError(
      "api_timeout",
      api_timeout,
      "an integer number of milliseconds >= 1",
    );
  }
  const resolved = resolveOptions<unknown>(rest);
  const prefix = api_prefix ?? (domain ? `$JS.${domain}.API` : DEFAULT_API_PREFIX);
  return start(
    { nc, stream, consumer, prefix, apiTimeout: api_timeout ?? DEFAULT_API_TIMEOUT, flavor: "v3" },
    resolved,
  );
}

function checkName(what: string, v: unknown): asserts v is string {
  if (typeof v !== "string" || v.length === 0 || /[\s.*>]/.test(v)) {
    throw new InvalidOptionError(what, v, "a non-empty name without dots, spaces or wildcards");
  }
}
