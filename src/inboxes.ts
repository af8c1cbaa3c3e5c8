/**
 * Inbox generations: the subscriptions through which pull responses reach one engine.
 *
 * Each generation has its own inbox `<base>.<gen>`, subscribed as `<base>.<gen>.*`; each pull
 * request gets the reply subject `<base>.<gen>.<n>`. A status names the request it is about by
 * that subject; a data message does not (its subject is the stream's), so a request that may
 * still be alive after a fault is cut off by replacing the generation:
 *
 * - `drop`: the old inbox is unsubscribed at once (behind a fence): a request of it that
 *   survived on the server loses interest and is never served.
 * - `retire`: the old inbox keeps listening until it or the new one shows life, or `retireMs`
 *   passes — a new consumer leader sends 409 Leadership Change to requests open on the old one,
 *   possibly after their `expires` (elections take seconds).
 *
 * Every unsubscribe is fenced: UNSUB, then PING/PONG (nats.js `sub.drain()`), bounded by a
 * timeout, so every message the server sent before the UNSUB is delivered. Every promise here
 * settles and every timer is cleared when it does.
 */
import type { MsgLike, NatsConnectionLike, SubscriptionLike } from "./connection.js";

export interface Generation {
  readonly gen: number;
  /** `<base>.<gen>`; requests reply to `<inbox>.<n>`. */
  readonly inbox: string;
  sub: SubscriptionLike | undefined;
  /** Unsubscribed on purpose (replaced, drained, closed). */
  fencing: boolean;
  /** The fence in progress: settles once the subscription is gone. */
  fence?: Promise<void>;
  /** Ends the fence now (the subscription is cancelled locally). */
  endFence?: () => void;
  /** Set while retired: lets it go when `retireMs` has passed. */
  retireTimer?: ReturnType<typeof setTimeout>;
}

export interface InboxEvents {
  /** A message (or a subscription error) on a generation's inbox. */
  message(g: Generation, err: Error | null, msg: MsgLike): void;
  /** The connection closed the current generation's subscription (nc.drain(), nc.close()…). */
  closedByConnection(g: Generation): void;
}

export class Inboxes {
  private gen = 0;
  /**
   * Generations still subscribed, oldest first (rarely more than two). An array, not a Set: a
   * Set's table cost every iterator ~0.16 KB of heap for its life.
   */
  private live: Generation[] = [];
  current: Generation | undefined;

  constructor(
    private readonly nc: NatsConnectionLike,
    private readonly base: string,
    private readonly events: InboxEvents,
    /** Fence timeout when letting a replaced generation go, ms. */
    private readonly fenceMs: number,
    /** Longest a retired generation keeps listening, ms (`expires`, at least 15 s: engine.ts). */
    private readonly retireMs: number,
  ) {}

  /** Generations still subscribed (the current one and any being let go or retired). */
  get size(): number {
    return this.live.length;
  }

  private forget(g: Generation): void {
    const i = this.live.indexOf(g);
    if (i >= 0) this.live.splice(i, 1);
  }

  /** Subscribes a new current generation. Throws what `subscribe()` threw (closed connection). */
  open(): Generation {
    const g: Generation = {
      gen: ++this.gen,
      // join, not a template literal: a flat string (see newInbox).
      inbox: [this.base, this.gen].join("."),
      sub: undefined,
      fencing: false,
    };
    g.sub = this.nc.subscribe([g.inbox, "*"].join("."), {
      callback: (err, msg) => this.events.message(g, err, msg),
    });
    // A literal when none is live: push() on an empty array reserves 17 slots.
    if (this.live.length === 0) this.live = [g];
    else this.live.push(g);
    this.current = g;
    const onClosed = () => {
      // Closed under a fence (by the connection, say): no PONG will come; the fence ends now.
      g.endFence?.();
      this.forget(g);
      clearTimeout(g.retireTimer);
      if (!g.fencing && g === this.current) this.events.closedByConnection(g);
    };
    g.sub.closed.then(onClosed, onClosed);
    return g;
  }

  /** Opens a new current generation and drops or retires the previous one. */
  replace(how: "retire" | "drop"): void {
    const old = this.current;
    this.open();
    if (!old || old.fencing || old.retireTimer) return;
    if (how === "drop") this.letGo(old);
    else old.retireTimer = setTimeout(() => this.letGo(old), this.retireMs);
  }

  /** Unsubscribes a generation that is not current (behind a fence), now. */
  letGo(g: Generation): void {
    if (g.fencing) return;
    void this.unsubscribe(g, this.fenceMs);
  }

  /** The current generation showed life: let every retired one go. */
  releaseRetired(): void {
    if (this.live.length < 2) return;
    // A copy: letting one go can remove it from `live` at once.
    for (const g of [...this.live]) if (g !== this.current && !g.fencing) this.letGo(g);
  }

  /**
   * Unsubscribes every generation behind a fence of at most `timeoutMs` (0: at once).
   * Resolves when none is left.
   */
  closeAll(timeoutMs: number): Promise<void> {
    return Promise.all([...this.live].map((g) => this.unsubscribe(g, timeoutMs))).then(() => {});
  }

  /**
   * Unsubscribes one generation behind a fence of at most `timeoutMs` (0: at once). A second
   * call on a generation already fencing shortens that fence to `timeoutMs` if it is sooner.
   */
  private unsubscribe(g: Generation, timeoutMs: number): Promise<void> {
    g.fencing = true;
    clearTimeout(g.retireTimer);
    if (g.fence && g.endFence) {
      const end = g.endFence;
      if (timeoutMs <= 0) end();
      else {
        const timer = setTimeout(end, timeoutMs);
        void g.fence.then(() => clearTimeout(timer));
      }
      return g.fence;
    }
    const sub = g.sub;
    if (!sub || sub.isClosed() || timeoutMs <= 0) {
      if (sub && !sub.isClosed()) safely(() => sub.unsubscribe());
      this.forget(g);
      g.fence = Promise.resolve();
      return g.fence;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    g.fence = new Promise<void>((resolve) => {
      const end = () => {
        if (g.endFence !== end) return;
        g.endFence = () => {};
        clearTimeout(timer);
        // After a timed-out fence the UNSUB was sent; stop listening locally too.
        if (!sub.isClosed()) safely(() => sub.unsubscribe());
        this.forget(g);
        resolve();
      };
      g.endFence = end;
      timer = setTimeout(end, timeoutMs);
      // drain() sends the UNSUB now (synchronously) and resolves after the PONG.
      try {
        sub.drain().then(end, end);
      } catch {
        end();
      }
    });
    return g.fence;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // the connection is already closed: nothing left to undo
  }
}
