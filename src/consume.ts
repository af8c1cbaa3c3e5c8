/**
 * Entry points: `consume(consumer, opts)` for a nats.js pull consumer (v3 or v2), and
 * `pullMessages(nc, stream, consumer, opts)` for a bare connection of either generation.
 */
import { isNatsConnectionLike, type NatsConnectionLike } from "./connection.js";
import {
  AbortError,
  ConnectionClosedError,
  InvalidConsumerError,
  InvalidOptionError,
} from "./errors.js";
import type { JsMsg } from "./jsmsg.js";
import { type Flavor, Messages } from "./messages.js";
import type { Notification } from "./notifications.js";
import { type ConsumeOptions, type ResolvedOptions, resolveOptions } from "./options.js";

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

const DEFAULT_API_PREFIX = "$JS.API";
const DEFAULT_API_TIMEOUT = 5_000;

interface Target {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  prefix: string;
  apiTimeout: number;
  flavor: Flavor;
}

function start<M, S>(t: Target, opts: ResolvedOptions<unknown>): Messages<M, S> {
  if (opts.signal?.aborted) throw new AbortError();
  if (t.nc.isClosed()) throw new ConnectionClosedError();
  return new Messages<M, S>({ ...t, opts });
}

/**
 * Starts consuming a nats.js pull consumer — `jetstream(nc).consumers.get(stream, name)` of
 * `@nats-io/jetstream` v3, or `nc.jetstream().consumers.get(stream, name)` of `nats` v2 — with
 * nats.js's `ConsumeOptions` (plus `signal`). Drop-in for `await consumer.consume(opts)`.
 *
 * Resolves the `Messages`, typed as that generation's `ConsumerMessages`. Rejects, before any
 * I/O, with `InvalidOptionError` for a bad option, `InvalidConsumerError` for something that is
 * not a (non-ordered) pull consumer, `AbortError` if `signal` is already aborted, and
 * `ConnectionClosedError` if the connection is closed.
 */
export async function consume<C extends PullConsumerLike>(
  consumer: C,
  opts?: ConsumeOptions<MsgOf<C>>,
): Promise<MessagesOf<C>> {
  const resolved = resolveOptions<unknown>(opts);
  return start<MsgOf<C>, StatusOf<C>>(readConsumer(consumer), resolved);
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

/** Reads connection, stream, consumer name and API prefix from a nats.js pull consumer. */
function readConsumer(c: unknown): Target {
  if (typeof c !== "object" || c === null) {
    throw new InvalidConsumerError(`consume(): expected a nats.js pull consumer, got ${String(c)}`);
  }
  const x = c as {
    api?: { nc?: unknown; prefix?: unknown; timeout?: unknown };
    stream?: unknown;
    name?: unknown;
    _info?: { name?: unknown };
    ordered?: unknown;
    cursor?: unknown;
    isPullConsumer?: () => boolean;
  };
  const flavor: Flavor = typeof x.isPullConsumer === "function" ? "v3" : "v2";
  if (flavor === "v3" && x.isPullConsumer?.() === false) {
    throw new InvalidConsumerError(
      "consume(): this is a push consumer; jetstream-iter consumes pull consumers",
    );
  }
  if (x.ordered === true || x.cursor !== undefined) {
    throw new InvalidConsumerError(
      "consume(): ordered consumers are not supported; use a durable or named pull consumer",
    );
  }
  const nc = x.api?.nc;
  if (!isNatsConnectionLike(nc)) {
    throw new InvalidConsumerError(
      "consume(): expected a nats.js pull consumer (no connection found on consumer.api.nc)",
    );
  }
  const name = x._info?.name ?? x.name;
  if (typeof x.stream !== "string" || typeof name !== "string" || !x.stream || !name) {
    throw new InvalidConsumerError(
      "consume(): expected a nats.js pull consumer (no stream or consumer name found)",
    );
  }
  const prefix = typeof x.api?.prefix === "string" ? x.api.prefix : DEFAULT_API_PREFIX;
  const timeout = x.api?.timeout;
  const apiTimeout = typeof timeout === "number" && timeout > 0 ? timeout : DEFAULT_API_TIMEOUT;
  return { nc, stream: x.stream, consumer: name, prefix, apiTimeout, flavor };
}
