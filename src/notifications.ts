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

/** Maps a notification to nats v2's `{ type, data }` (v2 has no `exceeded_limits`: it is `debug`). */
export function toV2(n: Notification): V2Status {
  switch (n.type) {
    case "heartbeats_missed":
      return { type: n.type, data: n.count };
    case "consumer_not_found":
      return { type: n.type, data: n.count };
    case "stream_not_found":
      return { type: n.type, data: n.consumerCreateFails ?? 1 };
    case "consumer_deleted":
      return { type: n.type, data: `${n.code} ${n.description}` };
    case "exceeded_limits":
    case "debug":
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
      return {
        type: "debug",
        data: `100 heartbeat ${n.lastConsumerSequence} ${n.lastStreamSequence}`,
      };
  }
}

/** One reader of notifications: an async iterable that ends when the iterator closes. */
class Listener<T> implements AsyncIterableIterator<T> {
  private queue: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private done = false;

  constructor(
    private readonly map: (n: Notification) => T,
    private readonly detach: (l: Listener<T>) => void,
  ) {}

  push(n: Notification): void {
    if (this.done) return;
    const value = this.map(n);
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

/** Fans notifications out to every listener; ends them all when the iterator is done. */
export class Notifier {
  private listeners = new Set<Listener<unknown>>();
  private ended = false;

  /** A new listener receiving every notification from now on, in nats.js v3's shape. */
  listen(): AsyncIterableIterator<Notification>;
  /** The same, mapped. */
  listen<T>(map: (n: Notification) => T): AsyncIterableIterator<T>;
  listen<T>(map?: (n: Notification) => T): AsyncIterableIterator<T | Notification> {
    const l = new Listener<T | Notification>(map ?? ((n) => n), (x) =>
      this.listeners.delete(x as Listener<unknown>),
    );
    if (this.ended) l.end();
    else this.listeners.add(l as Listener<unknown>);
    return l;
  }

  get size(): number {
    return this.listeners.size;
  }

  notify(n: Notification): void {
    for (const l of this.listeners) l.push(n);
  }

  /** Ends every listener (they finish reading what is queued) and forgets them. Idempotent. */
  end(): void {
    this.ended = true;
    for (const l of this.listeners) l.end();
    this.listeners.clear();
  }
}
