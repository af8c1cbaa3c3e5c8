/**
 * Outgoing acks of one iterator, published together at the end of the event-loop turn they
 * were made in.
 *
 * Why: nats.js's connection flushes its outbound buffer in a microtask whenever a publish finds
 * it empty, and a `for await` loop yields between messages, so an `ack()` per message becomes a
 * socket write per message: half of a fast loop's CPU (see docs/benchmarks.md). Queuing the
 * acks and publishing them from one `process.nextTick` callback puts every ack of a turn (a loop
 * running over its buffer runs in one turn) into the outbound buffer at once: one write.
 *
 * When an ack leaves the process (the contract, docs/design.md "Acks"):
 * - at the end of the turn it was made in: after the microtasks of that turn, before any timer,
 *   I/O callback or signal handler runs;
 * - earlier when the iterator flushes: before `next()` or `for await` reports the end (so the
 *   code after the loop, typically `nc.close()`, finds every ack in nats.js's buffer), with the
 *   NAKs of `close()` and its own NAKs, before `ackAck()` and `next(subj)`, and when `closed()`
 *   resolves.
 * An ack followed by `nc.close()` in the same turn, with none of these in between, is not sent
 * with nats.js v2 (its close() refuses publishes at once; v3's yields first): the server then
 * redelivers that message after `ack_wait` (a duplicate, never a loss).
 */
import type { NatsConnectionLike } from "./connection.js";

/** Runs `fn` once the current turn's microtasks are done (Node, Bun, Deno's node compat). */
const afterMicrotasks: (fn: () => void) => void =
  typeof process !== "undefined" && typeof process.nextTick === "function"
    ? (fn) => process.nextTick(fn)
    : (fn) => void setTimeout(fn, 0);

export class AckQueue {
  /** Pairs of subject and payload, flat: no object per ack. */
  private readonly queued: (string | Uint8Array)[] = [];
  private readonly onTurnEnd = (): void => this.flush();

  constructor(private readonly nc: Pick<NatsConnectionLike, "publish">) {}

  /** Queues one ack (fire-and-forget: never throws). */
  send(subject: string, payload: Uint8Array): void {
    // The first ack since the queue was last emptied schedules the flush. (After an early
    // flush() a turn may schedule two; the second finds nothing to send.)
    if (this.queued.length === 0) afterMicrotasks(this.onTurnEnd);
    this.queued.push(subject, payload);
  }

  /** Acks queued and not yet handed to the connection. */
  get size(): number {
    return this.queued.length / 2;
  }

  /**
   * Publishes every queued ack now, in the order they were made. Idempotent; never throws. An
   * ack the connection refuses (closed, or draining past its last flush) is dropped: the server
   * redelivers that message after `ack_wait`.
   */
  flush(): void {
    const q = this.queued;
    if (q.length === 0) return;
    for (let i = 0; i < q.length; i += 2) {
      try {
        this.nc.publish(q[i] as string, q[i + 1] as Uint8Array);
      } catch {
        // Closed or draining: this one cannot be sent. Acks never throw into the user's loop.
      }
    }
    q.length = 0;
  }
}
