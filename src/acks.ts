/**
 * Outgoing acks of one iterator, published together once the loop that made them has moved on:
 * at the end of the run of microtasks they were made in, before the runtime's next task.
 *
 * Why: nats.js's connection flushes its outbound buffer in a microtask whenever a publish finds
 * it empty, and a `for await` loop yields between messages, so an `ack()` per message becomes a
 * socket write per message: half of a fast loop's CPU (see docs/benchmarks.md). Queuing the
 * acks and publishing them together puts every ack of a loop running over its buffer into the
 * outbound buffer at once: one write.
 *
 * How, with nothing but promise microtasks (so the same code runs in Node, Deno, Bun and
 * browsers): the first ack queued schedules a check, a microtask that re-queues itself. Each
 * time it runs, every microtask queued before it has run: one *generation* of the microtask
 * queue has passed, and a promise chain (a `for await` loop's iterations, an awaited handler)
 * has advanced by one step. The queued acks of every iterator are published when
 * {@link IDLE_GENERATIONS} generations in a row have added no ack. A `for await` loop over a
 * buffer acks every 1-3 generations (measured: plain loop 1, an awaited async handler 2, a loop
 * over an async generator wrapping the iterator 3), so its whole run leaves in one batch. The
 * check is itself a microtask, so it always runs before the next task: no timer, I/O callback,
 * message event or signal handler ever runs while an ack is queued.
 *
 * When an ack leaves the process (the contract, docs/design.md "Acks"):
 * - within the turn it was made in: after the microtasks of the loop that made it, at the latest
 *   before the runtime's next task (timer, I/O, event);
 * - earlier when the iterator flushes: before `next()` or `for await` reports the end (so the
 *   code after the loop, typically `nc.close()`, finds every ack in nats.js's buffer), with the
 *   NAKs of `close()` and its own NAKs, before `ackAck()` and `next(subj)`, and when `closed()`
 *   resolves.
 * - at once when it has waited {@link ACK_HOLD_MAX_MS} while its run goes on, when the iterator
 *   is done ({@link AckQueue.direct}), and for `working()`.
 * An ack followed by `nc.close()` within that window, with none of these in between, is not sent
 * with nats.js v2 (its close() refuses publishes at once; v3's closes the iterator's subscription
 * first, which publishes the queue): the server then redelivers that message after `ack_wait` (a
 * duplicate, never a loss).
 */
import type { NatsConnectionLike } from "./connection.js";

/**
 * Microtask generations in a row without a new ack after which the queued acks are published.
 * Loops that ack at most this many generations apart send one batch per turn; a longer gap only
 * splits the batch (a second write), it never delays an ack past the turn.
 */
export const IDLE_GENERATIONS = 16;

/**
 * The longest an ack waits in the queue while the run of microtasks it was made in goes on, ms.
 * A loop body that computes synchronously between awaits (100 ms per message, say) keeps the
 * run going for as long as its buffer lasts: without this bound, the first ack of a 100-message
 * buffer would wait for all 100 bodies, and could outlive `ack_wait`. Checked at every
 * generation and every ack (one `Date.now()` each).
 */
export const ACK_HOLD_MAX_MS = 50;

/** Queues with acks queued since the last end-of-run flush, in the order they queued one. */
const waiting: AckQueue[] = [];
/** Acks queued since the check last ran. */
let queuedSinceCheck = 0;
/** Generations in a row in which no ack was queued. */
let idleGenerations = 0;
let checkScheduled = false;
/** When the oldest ack still queued was queued (Date.now()); 0 with none waiting. */
let oldestAt = 0;

/**
 * Schedules the check: `RESOLVED.then(check)` queues a microtask as `queueMicrotask` does (same
 * queue, same order) for less in Node, where `queueMicrotask` wraps every callback for
 * async_hooks. Measured on a `for await` over 200,000 acks, best of 15: `process.nextTick` 0.19
 * µs per ack, this check 0.29, the same check on `queueMicrotask` 0.43.
 */
const RESOLVED = Promise.resolve();

function check(): void {
  if (queuedSinceCheck > 0) {
    queuedSinceCheck = 0;
    idleGenerations = 0;
  } else {
    idleGenerations++;
  }
  if (idleGenerations < IDLE_GENERATIONS && Date.now() - oldestAt < ACK_HOLD_MAX_MS) {
    RESOLVED.then(check);
    return;
  }
  checkScheduled = false;
  idleGenerations = 0;
  publishWaiting();
}

/** Publishes the queue of every iterator waiting, in the order they queued their first ack. */
function publishWaiting(): void {
  oldestAt = 0;
  // A queue that sends again during this loop is registered anew. endOfRun() never throws (each
  // publish is guarded); the guard here keeps one faulty queue from stranding the others.
  for (const q of waiting.splice(0)) {
    try {
      q.endOfRun();
    } catch {
      // nothing to undo: that queue's acks are dropped, the server redelivers after ack_wait
    }
  }
}

function noteQueued(q: AckQueue, first: boolean): void {
  queuedSinceCheck++;
  if (first) waiting.push(q);
  if (oldestAt === 0) oldestAt = Date.now();
  else if (Date.now() - oldestAt >= ACK_HOLD_MAX_MS) {
    // A run that went on too long (a loop body computing between acks): send what waited.
    publishWaiting();
    return;
  }
  if (!checkScheduled) {
    checkScheduled = true;
    RESOLVED.then(check);
  }
}

export class AckQueue {
  /** Pairs of subject and payload, flat: no object per ack. */
  private readonly queued: (string | Uint8Array)[] = [];
  /** In the module's `waiting` list (until the end of the current run of microtasks). */
  private registered = false;

  constructor(private readonly nc: Pick<NatsConnectionLike, "publish">) {}

  /**
   * Once the iterator is done there is no loop left to batch for: acks made after that (a message
   * of `nextMessage()` or of a finished fetch, acked later) are published at once, so that a
   * `nc.close()` soon after cannot refuse them.
   */
  direct = false;

  /** Queues one ack (fire-and-forget: never throws); published at once when {@link direct}. */
  send(subject: string, payload: Uint8Array): void {
    if (this.direct) {
      this.flush();
      try {
        this.nc.publish(subject, payload);
      } catch {
        // Closed: the server redelivers after ack_wait. Acks never throw into the user's code.
      }
      return;
    }
    const first = !this.registered;
    this.registered = true;
    this.queued.push(subject, payload);
    noteQueued(this, first);
  }

  /** Acks queued and not yet handed to the connection. */
  get size(): number {
    return this.queued.length / 2;
  }

  /** @internal The end of the run of microtasks the acks were made in: publishes them. */
  endOfRun(): void {
    this.registered = false;
    this.flush();
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
