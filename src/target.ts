/**
 * What the library reads from a nats.js consumer object (v3's `PullConsumerImpl`, v2's
 * `PullConsumerImpl` / `OrderedPullConsumerImpl`): the connection, the API prefix and timeout,
 * the stream, and either the consumer's name or, for an ordered consumer, how to build its chain.
 * Everything here is synchronous and does no I/O.
 */
import { isNatsConnectionLike, type NatsConnectionLike } from "./connection.js";
import { InvalidConsumerError } from "./errors.js";
import type { Flavor } from "./messages.js";
import type { OrderedSpec, OrderedState } from "./ordered.js";

export const DEFAULT_API_PREFIX = "$JS.API";
export const DEFAULT_API_TIMEOUT = 5_000;

export interface Target {
  nc: NatsConnectionLike;
  stream: string;
  /** The consumer's name; for an ordered consumer, its name prefix. */
  consumer: string;
  prefix: string;
  apiTimeout: number;
  flavor: Flavor;
  ordered?: OrderedSpec;
}

/** Ordered consumers' shared state, per nats.js consumer object (see ordered.ts). */
const states = new WeakMap<object, OrderedState>();

/** Inactive threshold of an ordered consumer when the user sets none (as nats.js): 5 minutes. */
const ORDERED_INACTIVE_MS = 5 * 60 * 1000;
const NANOS_PER_MS = 1_000_000;

interface ConsumerShape {
  api?: { nc?: unknown; prefix?: unknown; timeout?: unknown };
  stream?: unknown;
  name?: unknown;
  _info?: {
    name?: unknown;
    config?: Record<string, unknown>;
    delivered?: { stream_seq?: unknown };
  };
  ordered?: unknown;
  opts?: { name_prefix?: unknown };
  cursor?: unknown;
  namePrefix?: unknown;
  serial?: unknown;
  consumerOpts?: Record<string, unknown>;
  isPullConsumer?: () => boolean;
}

/** What a consumer made by `wrapConsumer()` answers with the nats.js consumer it wraps. */
export const WRAPPED = Symbol("jetstream-iter.wrapped");

/** The nats.js consumer itself, also for one made by `wrapConsumer()`. */
export function unwrap(c: unknown): unknown {
  return typeof c === "object" && c !== null ? ((c as { [WRAPPED]?: unknown })[WRAPPED] ?? c) : c;
}

/** Reads a nats.js pull consumer (durable, named or ordered; v3 or v2). Throws InvalidConsumerError. */
export function readConsumer(consumer: unknown, call: string): Target {
  const c = unwrap(consumer);
  try {
    return read(c);
  } catch (err) {
    if (err instanceof InvalidConsumerError) err.message = `${call}: ${err.message}`;
    throw err;
  }
}

function read(c: unknown): Target {
  if (typeof c !== "object" || c === null) {
    throw new InvalidConsumerError(`expected a nats.js pull consumer, got ${String(c)}`);
  }
  const x = c as ConsumerShape;
  const flavor: Flavor = typeof x.isPullConsumer === "function" ? "v3" : "v2";
  if (flavor === "v3" && x.isPullConsumer?.() === false) {
    throw new InvalidConsumerError(
      "this is a push consumer; jetstream-iter consumes pull consumers",
    );
  }
  const nc = x.api?.nc;
  if (!isNatsConnectionLike(nc)) {
    throw new InvalidConsumerError(
      "expected a nats.js pull consumer (no connection found on consumer.api.nc)",
    );
  }
  if (typeof x.stream !== "string" || !x.stream) {
    throw new InvalidConsumerError("expected a nats.js pull consumer (no stream name found)");
  }
  const prefix = typeof x.api?.prefix === "string" ? x.api.prefix : DEFAULT_API_PREFIX;
  const timeout = x.api?.timeout;
  const apiTimeout = typeof timeout === "number" && timeout > 0 ? timeout : DEFAULT_API_TIMEOUT;
  const base = { nc, stream: x.stream, prefix, apiTimeout, flavor };
  if (flavor === "v3" && x.ordered === true) {
    const ordered = readOrderedV3(x, x.stream);
    return { ...base, consumer: ordered.namePrefix, ordered };
  }
  if (flavor === "v2" && x.cursor !== undefined) {
    if (typeof x.namePrefix !== "string") {
      throw new InvalidConsumerError("expected a nats v2 ordered consumer (no name prefix found)");
    }
    const ordered = readOrderedV2(x, x.stream, x.namePrefix);
    return { ...base, consumer: ordered.namePrefix, ordered };
  }
  const name = x._info?.name ?? x.name;
  if (typeof name !== "string" || !name) {
    throw new InvalidConsumerError("expected a nats.js pull consumer (no consumer name found)");
  }
  return { ...base, consumer: name };
}

/** Keys of a consumer config that say where it starts, or name it: set per consumer of a chain. */
const START_KEYS = ["deliver_policy", "opt_start_seq", "opt_start_time"];
const OWN_KEYS = ["name", "durable_name", "metadata", ...START_KEYS];

/** The settings every consumer of an ordered chain has, whatever the user asked. */
const ORDERED_FIXED = { ack_policy: "none", max_deliver: 1, mem_storage: true, num_replicas: 1 };

/**
 * v3: `consumers.get(stream, opts?)` already created the chain's first consumer (`_info`,
 * named `<name_prefix>_1`); its config carries the user's options as the server took them.
 */
function readOrderedV3(x: ConsumerShape, stream: string): OrderedSpec {
  const info = x._info;
  const config = info?.config;
  const prefix = x.opts?.name_prefix;
  if (!config || typeof info?.name !== "string" || typeof prefix !== "string") {
    throw new InvalidConsumerError(
      "expected a nats.js v3 ordered consumer (no consumer info or name prefix found)",
    );
  }
  const state = stateOf(x, () => {
    const first = info.delivered?.stream_seq;
    const known = typeof first === "number" && config.deliver_policy !== "last_per_subject";
    return {
      serial: typeof x.serial === "number" ? x.serial : 1,
      // Where the first consumer starts (its delivered stream sequence), unless that is not a
      // position in the stream (last_per_subject).
      position: known ? (first as number) : undefined,
      resume: {
        name: info.name as string,
        deliverSeq: 0,
        streamSeq: typeof first === "number" ? first : 0,
        known,
      },
      busy: false,
    };
  });
  const base: Record<string, unknown> = {};
  const start: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (START_KEYS.includes(k)) start[k] = v;
    else if (!OWN_KEYS.includes(k)) base[k] = v;
  }
  base.inactive_threshold ??= ORDERED_INACTIVE_MS * NANOS_PER_MS;
  return { stream, namePrefix: prefix, base: { ...base, ...ORDERED_FIXED }, start, state };
}

/**
 * v2: `consumers.get(stream, opts?)` created nothing yet; its `OrderedConsumerOptions` (v2
 * spells the filter `filterSubjects`) say what the chain is.
 */
function readOrderedV2(x: ConsumerShape, stream: string, namePrefix: string): OrderedSpec {
  const o = x.consumerOpts ?? {};
  const base: Record<string, unknown> = { ...ORDERED_FIXED };
  const threshold = typeof o.inactive_threshold === "number" ? o.inactive_threshold : 0;
  base.inactive_threshold = (threshold > 0 ? threshold : ORDERED_INACTIVE_MS) * NANOS_PER_MS;
  const filter = o.filterSubjects ?? o.filter_subjects;
  if (Array.isArray(filter)) base.filter_subjects = filter;
  else if (typeof filter === "string") base.filter_subject = filter;
  if (o.headers_only === true) base.headers_only = true;
  if (typeof o.replay_policy === "string") base.replay_policy = o.replay_policy;
  const start: Record<string, unknown> = {};
  const policy = typeof o.deliver_policy === "string" ? o.deliver_policy : undefined;
  if (typeof o.opt_start_time === "string" && o.opt_start_time) {
    start.deliver_policy = "by_start_time";
    start.opt_start_time = o.opt_start_time;
  } else if (policy && policy !== "by_start_sequence") {
    start.deliver_policy = policy;
  } else {
    start.deliver_policy = "by_start_sequence";
    start.opt_start_seq =
      typeof o.opt_start_seq === "number" && o.opt_start_seq > 0 ? o.opt_start_seq : 1;
  }
  // The server needs a filter for last_per_subject (before 2.10).
  if (start.deliver_policy === "last_per_subject" && filter === undefined) {
    base.filter_subject = ">";
  }
  const state = stateOf(x, () => ({
    serial: typeof x.serial === "number" ? x.serial : 0,
    position: undefined,
    resume: undefined,
    busy: false,
  }));
  return { stream, namePrefix, base, start, state };
}

function stateOf(x: object, init: () => OrderedState): OrderedState {
  let s = states.get(x);
  if (!s) {
    s = init();
    states.set(x, s);
  }
  return s;
}
