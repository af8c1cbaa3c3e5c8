/**
 * Notifications: what `status()` yields. The shapes and type names are nats.js v3's
 * `ConsumerNotification`; {@link toV2} maps them to nats v2's `{ type, data }`.
 */

export type Notification =
  | { type: "heartbeats_missed"; count: number }
  | { type: "consumer_not_found"; name: string; stream: string; count: number }
  | { type: "stream_not_found"; name: string; consumerCreateFails?: number }
  | { type: "consumer_deleted"; code: number; description: string }
  | { type: "exceeded_limits"; code: number; description: string }
  | { type: "no_responders"; code: number }
  | { type: "debug"; code: number; description: string }
  | { type: "discard"; messagesLeft: number; bytesLeft: number }
  | { type: "next"; options: PullRequest }
  | { type: "reset"; name: string }
  | { type: "ordered_consumer_recreated"; name: string }
  | { type: "heartbeat"; lastConsumerSequence: number; lastStreamSequence: number };

/** The body of a pull request, as sent (durations in nanoseconds). */
export interface PullRequest {
  batch: number;
  max_bytes?: number;
  expires: number;
  idle_heartbeat: number;
}

/** nats v2's status shape. */
export interface V2Status {
  type: string;
  data: unknown;
}

/**
 * A notification as nats.js v3 emits it, made from the engine's: a server status's description
 * lowercased ("unknown" when empty, "no responders" for 503), as nats.js reads it; a `next`
 * carries the pull request in nats.js's key order with `max_bytes` 0 when there is no byte limit
 * (the request on the wire leaves it out). The library's own `debug` notes (code 0) are kept.
 */
export function toV3(n: Notification): Notification {
  switch (n.type) {
    case "debug":
    case "consumer_deleted":
    case "exceeded_limits":
      return n.code === 0 ? n : { ...n, description: statusDescription(n.code, n.description) };
    case "next": {
      const { batch, max_bytes = 0, idle_heartbeat, expires } = n.options;
      return { type: "next", options: { batch, max_bytes, idle_heartbeat, expires } };
    }
    default:
      return n;
  }
}

function statusDescription(code: number, description: string): string {
  return description.toLowerCase() || (code === 503 ? "no responders" : "unknown");
}

/**
 * Maps a (v3-shaped, {@link toV3}) notification to nats v2's `{ type, data }`, or undefined for
 * one nats v2 never emits: idle heartbeats, and the `debug` of a 404/408 (v2 reports a request
 * that ended with `Nats-Pending-*` as `discard` only, and nats-server always sends them there).
 * v2 has no `exceeded_limits`: it is `debug`.
 */
export function toV2(n: Notification): V2Status | undefined {
  switch (n.type) {
    case "heartbeats_missed":
      return { type: n.type, data: n.count };
    case "consumer_not_found":
      return { type: n.type, data: n.count };
    case "stream_not_found":
      return { type: n.type, data: n.consumerCreateFails ?? 1 };
    case "consumer_deleted":
      return { type: n.type, data: `${n.code} ${n.description}` };
    case "debug":
      if (n.code === 404 || n.code === 408) return undefined;
      return { type: "debug", data: `${n.code} ${n.description}` };
    case "exceeded_limits":
      return { type: "debug", data: `${n.code} ${n.description}` };
    case "no_responders":
      return { type: n.type, data: `${n.code} No Responders` };
    case "discard":
      return { type: n.type, data: { msgsLeft: n.messagesLeft, bytesLeft: n.bytesLeft } };
    case "next":
      return { type: n.type, data: n.options };
    case "reset":
    case "ordered_consumer_recreated":
      return { type: n.type, data: n.name };
    case "heartbeat":
      return undefined;
  }
}

/**
 * How many notifications made before anyone listened the first `status()` listener receives
 * (the newest ones), while no message has been handed out yet: the first pull's `next` is
 * published by `consume()` itself, before a listener can exist, while nats.js v3 emits it when
 * iteration begins.
 */
export const BACKLOG_LIMIT = 32;

/** One reader of notifications: an async iterable that ends when the iterator closes. */
class Listener<T> implements AsyncIterableIterator<T> {
  private queue: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  constructor(
    private readonly map: (n: Notification) => T | undefined,
    private readonly detach: (l: Listener<T>) => void,
  ) {}

  push(n: Notification): void {
    if (this.done) return;
    const value = this.map(n);
    if (value === undefined) return;
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w({ value, done: false });
    } else {
      this.queue.push(value);
    }
  }

  /** Ends this listener: queued notifications are still read, then it is done. */
  end(): void {
    if (this.done) return;
    this.done = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<T>> {
    const value = this.queue.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.done) return Promise.resolve({ value: undefined, done: true });
    if (this.waiting) return Promise.reject(new Error("status(): one next() at a time"));
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.queue = [];
    this.end();
    this.detach(this);
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return this;
  }
}

/**
 * Fans notifications out to every listener; ends them all when the iterator is done. Until the
 * first listener attaches or the first message is handed out ({@link Notifier.began}), the
 * newest {@link BACKLOG_LIMIT} notifications are kept, and that listener receives them first;
 * later listeners see notifications from the moment they attach.
 */
export class Notifier {
  /** Made by the first listen(): most iterators never have a listener (saves ~0.1 KB each). */
  private listeners: Set<Listener<unknown>> | undefined;
  private ended = false;
  /**
   * Notifications nobody has listened to yet; undefined once a listener attached, a message was
   * handed out, or at the end. The first is held in an array of its own size (push() on an empty
   * one reserves 17 slots).
   */
  private backlog: Notification[] | undefined = [];

  /**
   * Iteration has begun (a message was handed out): from now on nothing is kept for a listener
   * yet to come, which hears only what follows it, as with nats.js. Kept, the backlog held the
   * newest 32 notifications (mostly each pull's `next`) for the whole life of every iterator
   * nobody listened to (~4 KB each). Idempotent.
   */
  began(): void {
    this.backlog = undefined;
  }

  /** A new listener receiving every notification from now on, in nats.js v3's shape. */
  listen(): AsyncIterableIterator<Notification>;
  /** The same, mapped; notifications `map` maps to undefined are skipped. */
  listen<T>(map: (n: Notification) => T | undefined): AsyncIterableIterator<T>;
  listen<T>(map?: (n: Notification) => T | undefined): AsyncIterableIterator<T | Notification> {
    const l = new Listener<T | Notification>(map ?? ((n) => n), (x) =>
      this.listeners?.delete(x as Listener<unknown>),
    );
    const backlog = this.backlog;
    this.backlog = undefined;
    if (backlog) for (const n of backlog) l.push(n);
    if (this.ended) l.end();
    else {
      this.listeners ??= new Set();
      this.listeners.add(l as Listener<unknown>);
    }
    return l;
  }

  get size(): number {
    return this.listeners?.size ?? 0;
  }

  /** Notifications held for the first listener (tests: proof that the backlog stays bounded). */
  get backlogSize(): number {
    return this.backlog?.length ?? 0;
  }

  notify(engineNote: Notification): void {
    const backlog = this.backlog;
    if (!backlog && !this.listeners?.size) return;
    const n = toV3(engineNote);
    if (backlog) {
      if (backlog.length === 0) {
        this.backlog = [n];
        return;
      }
      backlog.push(n);
      if (backlog.length > BACKLOG_LIMIT) backlog.shift();
      return;
    }
    if (this.listeners) for (const l of this.listeners) l.push(n);
  }

  /** Ends every listener (they finish reading what is queued) and forgets them. Idempotent. */
  end(): void {
    this.ended = true;
    this.backlog = undefined;
    if (this.listeners) for (const l of this.listeners) l.end();
    this.listeners?.clear();
  }
}
