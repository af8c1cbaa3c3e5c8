/**
 * The channel: the one queue through which messages reach the user.
 *
 * It holds items in order and ends with one end item. `close()` appends the end item, once
 * (idempotent); after it, every take that finds the queue empty gets the end item (unless the
 * end is held back until its error is known: then the take waits, see `hold()`). A consumer
 * that waits registers a waiter; `push()` hands the item straight to the oldest waiter, and a
 * waiter that was cancelled first is gone from the list, so an item is never given to a waiter
 * nobody listens to (cancel-safe: a cancelled wait loses nothing).
 */

/** The last item of every channel: "closed", with the error that ended it, if any. */
export interface End {
  readonly end: true;
  readonly error: Error | undefined;
}

/** Receives one item: a value, or the end item. Called synchronously, at most once. */
export type Waiter<T> = (item: T | End) => void;

export class Channel<T> {
  private items: (T | undefined)[] = [];
  private weights: number[] = [];
  private head = 0;
  private weight = 0;
  private endItem: End | undefined;
  /** The end item was handed out at least once: its error can no longer change. */
  private endHandedOut = false;
  /** The end item is held back until its error is known (see {@link hold}). */
  private endHeld = false;
  private waiters: Waiter<T>[] = [];

  /**
   * @param onTake called after an item left the channel (taken or handed to a waiter), with it
   * @param onEmptyAfterEnd called once when the channel is closed and holds no more items
   * @param onEnd called each time the end item is handed out (taken, or given to a waiter)
   */
  constructor(
    private readonly onTake: (item: T, weight: number) => void = () => {},
    private readonly onEmptyAfterEnd: () => void = () => {},
    private readonly onEnd: () => void = () => {},
  ) {}

  /** Items waiting to be taken (the end item is not counted). */
  get size(): number {
    return this.items.length - this.head;
  }

  /** Sum of the weights of the items waiting (bytes, for the engine's accounting). */
  get bytes(): number {
    return this.weight;
  }

  /** The end item is held back until its error is known (see {@link hold}). */
  get held(): boolean {
    return this.endHeld;
  }

  get closed(): boolean {
    return this.endItem !== undefined;
  }

  /**
   * Adds an item, or hands it to the oldest waiter. Returns false (and keeps nothing) when the
   * channel is already closed: the caller still owns the item.
   */
  push(item: T, weight = 0): boolean {
    if (this.endItem) return false;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.onTake(item, weight);
      waiter(item);
      return true;
    }
    this.items.push(item);
    this.weights.push(weight);
    this.weight += weight;
    return true;
  }

  /** Takes the next item without waiting: a value, the end item, or undefined when empty and open. */
  tryTake(): T | End | undefined {
    if (this.head < this.items.length) {
      const item = this.items[this.head] as T;
      const weight = this.weights[this.head] ?? 0;
      this.items[this.head] = undefined;
      this.head++;
      this.weight -= weight;
      if (this.head === this.items.length) {
        this.items = [];
        this.weights = [];
        this.head = 0;
      } else if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head);
        this.weights = this.weights.slice(this.head);
        this.head = 0;
      }
      this.onTake(item, weight);
      if (this.endItem && this.size === 0) this.onEmptyAfterEnd();
      return item;
    }
    if (!this.endItem || this.endHeld) return undefined;
    this.endHandedOut = true;
    this.onEnd();
    return this.endItem;
  }

  /**
   * Takes the next item, waiting if needed: the waiter is called (synchronously, once) with the
   * item, or at once when one is available. Returns the waiter so it can be cancelled.
   */
  take(waiter: Waiter<T>): Waiter<T> {
    const item = this.tryTake();
    if (item !== undefined) waiter(item);
    else this.waiters.push(waiter);
    return waiter;
  }

  /** Removes a waiter that has not been served. True if it was still waiting (so it gets nothing). */
  cancel(waiter: Waiter<T>): boolean {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return false;
    this.waiters.splice(i, 1);
    return true;
  }

  /**
   * Closes the channel with the end item `{ error }`, once; later calls do nothing and return
   * false. Items still waiting stay, to be taken before the end item.
   */
  close(error: Error | undefined): boolean {
    if (this.endItem) return false;
    const end: End = { end: true, error };
    this.endItem = end;
    // Waiters only exist while the channel is empty: all of them get the end item.
    const waiters = this.waiters;
    this.waiters = [];
    if (waiters.length > 0) {
      this.endHandedOut = true;
      this.onEnd();
    }
    for (const w of waiters) w(end);
    if (this.size === 0) this.onEmptyAfterEnd();
    return true;
  }

  /**
   * Holds the end item back (takers wait) until {@link release}: the error it must carry is
   * still to come. Only while nobody has been handed the end yet.
   */
  hold(): void {
    if (this.endItem && !this.endHandedOut) this.endHeld = true;
  }

  /** Ends {@link hold}: the waiters that came meanwhile get the end item now. Idempotent. */
  release(): void {
    if (!this.endHeld) return;
    this.endHeld = false;
    const end = this.endItem;
    const waiters = this.waiters;
    this.waiters = [];
    if (!end || waiters.length === 0) return;
    this.endHandedOut = true;
    this.onEnd();
    for (const w of waiters) w(end);
  }

  /**
   * Gives the end item `error` when it has none and nobody has been handed it yet (a failure
   * that comes after a graceful close, while the buffer is still being handed out). Returns
   * whether it did.
   */
  fail(error: Error): boolean {
    if (!this.endItem || this.endItem.error || this.endHandedOut) return false;
    this.endItem = { end: true, error };
    return true;
  }

  /**
   * Removes every item still waiting and returns them (the caller disposes of them); onTake is
   * not called for them. On a closed channel this makes it empty.
   */
  discard(): T[] {
    if (this.size === 0) return [];
    const discarded = this.items.slice(this.head) as T[];
    this.items = [];
    this.weights = [];
    this.head = 0;
    this.weight = 0;
    if (this.endItem) this.onEmptyAfterEnd();
    return discarded;
  }
}

export function isEnd(item: unknown): item is End {
  return typeof item === "object" && item !== null && (item as End).end === true;
}
