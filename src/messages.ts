/**
 * Messages: the iterator the user holds. One ordered lifecycle, declared here:
 *
 *   open ──drain() / stop() / terminal server status──▶ draining ──fence done──▶ closed
 *   open | draining ──close() / break / abort / callback error / connection closed──▶ closed
 *   closed ──channel empty, engine gone, no callback running──▶ done
 *
 * Phases are ordered (open < draining < closed < done) and only move forward; every transition
 * is a small synchronous idempotent function guarded by that order. A harsher end cuts a gentler
 * one in progress: close() or an abort during a drain's fence shortens the fence to close()'s
 * bound, a closed connection ends it at once. Entering `closed` puts the end item into the
 * channel: that is the one termination signal, and a pending `next()` settles only through the
 * channel. `closed()` resolves at `done`: the channel is empty (handed out, or discarded), the
 * engine has removed its subscriptions, listeners and timers, every callback handed a message
 * has settled, and the acks they queued have left.
 */
import { AckQueue } from "./acks.js";
import { Channel, type End, isEnd } from "./channel.js";
import type { NatsConnectionLike } from "./connection.js";
import { PullEngine } from "./engine.js";
import {
  AbortError,
  CallbackModeError,
  MsgIteratorClosedError,
  NextTimeoutError,
} from "./errors.js";
import type { JsMsg } from "./jsmsg.js";
import { type Notification, Notifier, toV2, type V2Status } from "./notifications.js";
import { type ResolvedOptions, resolveDrainTimeout, resolveNextOptions } from "./options.js";
import type { OrderedSpec, OrderedState } from "./ordered.js";

/**
 * The lifecycle phase: `open`, `draining` (no more pulls; the unsubscribe fence is out),
 * `closed` (the end item is in the channel; buffered messages may still be handed out) or `done`
 * (nothing is left: `closed()` has resolved).
 */
export type Phase = "open" | "draining" | "closed" | "done";

const RANK: Record<Phase, number> = { open: 0, draining: 1, closed: 2, done: 3 };

/** How long `drain()` waits for the server to confirm its unsubscribe by default, ms. */
export const DEFAULT_DRAIN_TIMEOUT = 5_000;

/**
 * How long `close()` waits for the server to confirm its unsubscribe, at most, ms (messages that
 * arrive meanwhile are NAKed). A fence already running (a `drain()`) is shortened to this.
 */
export const CLOSE_FENCE_TIMEOUT = 1_000;

/** Which nats.js generation's shapes `status()` returns. */
export type Flavor = "v3" | "v2";

export interface MessagesInit {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  /** JetStream API prefix (`$JS.API`, `$JS.<domain>.API`). */
  prefix: string;
  /** JetStream API timeout, ms: consumer info and the default of `ackAck()`. */
  apiTimeout: number;
  opts: ResolvedOptions<unknown>;
  flavor: Flavor;
  /** An ordered consumer (ordered.ts); `consumer` is then its name prefix. */
  ordered?: OrderedSpec;
  /** One batch (`fetchMessages()`): the iterator closes when the batch is complete. */
  fetch?: boolean;
}

export interface NextOptions {
  /** Aborts this call only (rejects AbortError); never loses a message. */
  signal?: AbortSignal;
  /** Milliseconds to wait; then rejects NextTimeoutError and the iterator stays open. */
  timeout?: number;
}

/** What a message left the iterator as; used by tests to prove nothing is lost or doubled. */
export interface Counters {
  /** Data messages that arrived for us. */
  received: number;
  /** Handed to the user (next, for await, callback). */
  processed: number;
  /**
   * NAKed by the library (close, break, abort, or arriving with no request to account them; what
   * arrives after close() is NAKed once the unsubscribe is done, and counted at once). For
   * an ordered consumer (ack none) nothing is sent: the message is discarded, and a later
   * iterator of the same consumer starts after the last message handed out.
   */
  naked: number;
  /** Dropped because the connection ended (could not be NAKed; the server redelivers them). */
  dropped: number;
  /** Buffered, not yet handed out. */
  pending: number;
}

/**
 * A promise resolved from outside, made only when someone asks for it: most iterators never call
 * drain() or close() or closed(), and three eager deferreds (promise, resolver, closure) cost
 * each iterator ~0.4 KB of heap. Once made, the same promise is returned; made after the value is
 * known, it is already resolved with it: either way, `then` callbacks run as with a native
 * deferred.
 */
class Deferred<T> {
  private made: Promise<T> | undefined;
  private resolver: ((v: T) => void) | undefined;
  private settled = false;
  private value: T | undefined;

  get promise(): Promise<T> {
    if (!this.made) {
      this.made = this.settled
        ? Promise.resolve(this.value as T)
        : new Promise<T>((r) => {
            this.resolver = r;
          });
    }
    return this.made;
  }

  /** The first call wins, as with a native promise's resolve. */
  resolve(v: T): void {
    if (this.settled) return;
    this.settled = true;
    this.value = v;
    this.resolver?.(v);
    this.resolver = undefined;
  }
}

function deferred<T>(): Deferred<T> {
  return new Deferred<T>();
}

/** Whether `r` is a promise-like that must be awaited (a callback's result). */
function isThenable(r: unknown): r is PromiseLike<unknown> {
  return (
    r !== null &&
    (typeof r === "object" || typeof r === "function") &&
    typeof (r as PromiseLike<unknown>).then === "function"
  );
}

/**
 * A JetStream pull consumer's messages: `next()`, `for await`, or a callback. `M` is the message
 * type and `S` what `status()` returns, as the nats.js generation in use has them.
 */
export class Messages<M = JsMsg, S = AsyncIterable<Notification>> implements AsyncIterable<M> {
  private phase: Phase = "open";
  private readonly channel: Channel<JsMsg>;
  private readonly engine: PullEngine;
  private readonly notifier = new Notifier();
  private readonly opts: ResolvedOptions<unknown>;
  private readonly flavor: Flavor;
  /** The error that ends the iterator, once known; the first one wins. */
  private terminal: Error | undefined;
  /** The engine removed its subscriptions, listeners and timers. */
  private engineClosed = false;
  /** A callback (callback mode) is running: `done` waits for it to settle. */
  private callbackRunning = false;
  /** Resolves when the channel gets its end item: what `drain()` resolves. */
  private readonly channelClosed = deferred<void>();
  /** Resolves at closed + empty + engine gone (not waiting for a running callback): `close()`. */
  private readonly quiet = deferred<void | Error>();
  /** Resolves at `done`: `closed()`. */
  private readonly done = deferred<void | Error>();
  private readonly counts = { received: 0, processed: 0, naked: 0, dropped: 0 };
  private detachSignal: (() => void) | undefined;
  /** Acks of this iterator's messages, published once per turn (acks.ts). */
  private readonly acks: AckQueue;
  /** Arrived after the channel closed, before the engine did: NAKed once it has. */
  private readonly arrivedClosed: JsMsg[] = [];
  /** An ordered consumer's shared state: the last message handed out is recorded there. */
  private readonly ordered: OrderedState | undefined;

  /** @internal Use `consume()` or `pullMessages()`. */
  constructor(init: MessagesInit) {
    this.opts = init.opts;
    this.ordered = init.ordered?.state;
    this.acks = new AckQueue(init.nc);
    this.flavor = init.flavor;
    this.channel = new Channel<JsMsg>(
      () => this.engine.maybePull(),
      () => this.maybeDone(),
      // The end is handed out: the code after the loop (often nc.close()) finds every ack sent,
      // and, when the fence is done (nothing more can arrive), may consume the same ordered
      // consumer again at once. (After close(), its fence still out, that waits for done.)
      () => {
        this.acks.flush();
        if (this.engineClosed) this.engine.release();
      },
    );
    this.engine = new PullEngine(
      {
        nc: init.nc,
        stream: init.stream,
        consumer: init.consumer,
        prefix: init.prefix,
        opts: init.opts,
        apiTimeout: init.apiTimeout,
        acks: this.acks,
        ordered: init.ordered,
        fetch: init.fetch,
        flavor: init.flavor,
      },
      {
        held: this.channel,
        deliver: (m, bytes) => {
          this.counts.received++;
          if (this.channel.push(m, bytes)) return;
          // Closed: back to the server — once our unsubscribe is done, so that the server does
          // not hand it straight back to our own request (on a cluster, one still young and
          // served without interest: a NAK loop that leaves messages in flight at the UNSUB).
          if (this.engineClosed) {
            this.disposeOf(m, "nak");
            this.acks.flush();
          } else {
            // Counted as NAKed now; its NAK leaves when the engine is closed.
            this.counts.naked++;
            this.arrivedClosed.push(m);
          }
        },
        reject: (m, reason) => {
          this.counts.received++;
          this.disposeOf(m, "nak");
          this.acks.flush();
          this.notify({ type: "debug", code: 0, description: `NAKed message: ${reason}` });
        },
        notify: (n) => this.notify(n),
        drop: () => this.discardBuffer("lost"),
        end: (kind: "terminal" | "lost", why?: Error | Promise<Error | undefined>) => {
          if (kind === "terminal") this.toDraining(why as Error, DEFAULT_DRAIN_TIMEOUT);
          else if (RANK[this.phase] < RANK.closed) this.toClosed(why, "lost");
          else this.lateVerdict(why);
        },
        // A fetch's batch is complete: no request is open, so there is nothing to fence, unless
        // the engine only infers it (the expiry watch): then drain behind a fence.
        complete: (fenced) => this.toDraining(undefined, fenced ? DEFAULT_DRAIN_TIMEOUT : 0),
      },
    );
    const signal = init.opts.signal;
    if (signal) {
      const onAbort = () => void this.close();
      signal.addEventListener("abort", onAbort, { once: true });
      this.detachSignal = () => signal.removeEventListener("abort", onAbort);
    }
    this.engine.start();
    const callback = init.opts.callback;
    if (callback) void this.runCallbacks(callback as (m: M) => unknown);
  }

  // ── transitions ──────────────────────────────────────────────────────────────────────────

  /**
   * Advances state to draining: no more pulls; fence the subscription, then close (keeping the
   * buffer). `flow` (drain() and stop(), not a terminal status or a fetch's end): while messages
   * are arriving for the open requests, keep listening until they stop (see the engine's flowing()).
   */
  private toDraining(error: Error | undefined, timeoutMs: number, flow = false): void {
    if (this.phase !== "open") return;
    this.phase = "draining";
    // The error that ends the iterator is known now; a close() during the fence keeps it.
    this.terminal = error;
    this.engine.stopPulling();
    // The fence may first hold for a young request (a cluster or domain) or while messages are
    // still arriving (flow), within `timeoutMs`.
    void this.engine.close(timeoutMs, timeoutMs - 1, flow).then(() => {
      // The fence is done: nothing more can arrive, so the end may release an ordered consumer.
      this.engineClosed = true;
      this.toClosed(undefined, "keep");
    });
  }

  /**
   * Advances state to closed: no more pulls; the channel gets its end item. `keep` leaves the
   * buffer to be handed out; `nak` NAKs it (redelivered at once); `lost` drops it (the connection
   * is gone). A verdict that is still coming (a lost connection) closes the channel when it
   * arrives; nothing gentler can change it meanwhile, as the phase has already moved.
   */
  private toClosed(
    verdict: Error | undefined | Promise<Error | undefined>,
    buffer: "keep" | "nak" | "lost",
  ): void {
    if (RANK[this.phase] >= RANK.closed) return;
    this.phase = "closed";
    this.engine.stopPulling();
    // Unsubscribe first, NAK after: the server handles the UNSUB before the NAKs, so it does
    // not hand the NAKed messages straight back to our own open request. (nats-server < 2.10.14
    // can then hold one NAKed message until ack_wait: docs/faults.md, "A known nats-server 2.9
    // bug".) On a server that may serve a young request without interest (a cluster, a domain:
    // engine.ts youngHoldMs) the unsubscribe waits until our newest request is 2 s old, and what
    // arrives meanwhile is NAKed after it. A fence already out (drain) is shortened to close()'s
    // bound, or ended for a connection that is gone.
    const nak = buffer === "nak";
    const engineClosed = this.engine.close(nak ? CLOSE_FENCE_TIMEOUT : 0, nak ? Infinity : 0);
    if (buffer !== "keep") this.discardBuffer(buffer);
    if (verdict instanceof Promise) void verdict.then((e) => this.closeChannel(e));
    else this.closeChannel(verdict);
    // The acks of this turn leave now, not at its end: the caller may close the connection next.
    this.acks.flush();
    void engineClosed.then(() => {
      this.engineClosed = true;
      this.discardArrivedClosed("nak");
      this.maybeDone();
    });
  }

  /**
   * The connection ended after the iterator closed, with a drained buffer still being handed
   * out: it is dropped now. A failure is then still the iterator's verdict when none was given:
   * the end item carries it unless it was already handed out, and `closed()` resolves it.
   */
  private lateVerdict(verdict: Error | undefined | Promise<Error | undefined>): void {
    // Nothing buffered: the end the iterator already had stands (close(), a finished drain).
    if (this.channel.size === 0) return;
    const apply = (error: Error | undefined) => {
      if (!error || this.terminal) return;
      this.terminal = error;
      this.channel.fail(error);
    };
    if (!(verdict instanceof Promise)) {
      apply(verdict);
      return;
    }
    // Until the verdict is known, a take waits rather than getting an end without it, and done
    // waits too (maybeDone checks the channel's hold).
    this.channel.hold();
    void verdict.then((e) => {
      apply(e);
      this.channel.release();
      this.maybeDone();
    });
  }

  /** Puts the end item into the channel, with the error that ended the iterator. Idempotent. */
  private closeChannel(error: Error | undefined): void {
    this.terminal ??= error;
    this.channel.close(this.terminal);
    this.channelClosed.resolve();
    this.maybeDone();
  }

  /**
   * Advances state to done when closed, empty, the engine gone and no callback running:
   * `closed()` resolves. (`close()` resolves without waiting for a running callback, so that it
   * can be awaited inside one.) Idempotent.
   */
  private maybeDone(): void {
    if (this.phase !== "closed" || !this.engineClosed) return;
    if (!this.channel.closed || this.channel.held || this.channel.size > 0) return;
    this.acks.flush();
    this.quiet.resolve(this.terminal);
    if (this.callbackRunning) return;
    this.phase = "done";
    this.acks.flush();
    this.acks.direct = true;
    this.engine.dispose();
    this.releaseSignal();
    this.notifier.end();
    this.done.resolve(this.terminal);
  }

  /**
   * Messages that arrived after the channel closed (already counted as NAKed): their NAKs leave
   * once the engine is closed; a lost connection drops them instead.
   */
  private discardArrivedClosed(how: "nak" | "lost"): void {
    const late = this.arrivedClosed.splice(0);
    for (const m of late) {
      if (how === "lost") {
        this.counts.naked--;
        this.counts.dropped++;
      } else if (!this.ordered && !m.isAcked) {
        m.nak();
      }
    }
    if (late.length > 0) this.acks.flush();
  }

  private discardBuffer(how: "nak" | "lost"): void {
    if (how === "lost") this.discardArrivedClosed("lost");
    for (const m of this.channel.discard()) this.disposeOf(m, how);
    // The library's own NAKs leave at once, not at the end of the turn.
    this.acks.flush();
  }

  private disposeOf(m: JsMsg, how: "nak" | "lost"): void {
    if (how === "nak" && !m.isAcked) {
      // Ack none: the server would ignore a NAK.
      if (!this.ordered) m.nak();
      this.counts.naked++;
    } else {
      this.counts.dropped++;
    }
  }

  private releaseSignal(): void {
    this.detachSignal?.();
    this.detachSignal = undefined;
  }

  private notify(n: Notification): void {
    this.notifier.notify(n);
  }

  // ── handing messages out ─────────────────────────────────────────────────────────────────

  private handOut(m: JsMsg): M {
    if (this.counts.processed++ === 0) this.notifier.began();
    // m.seq, not m.info: the sequence scanned on delivery, without parsing the subject again
    if (this.ordered) this.ordered.position = m.seq;
    return m as unknown as M;
  }

  private closedError(end: End): MsgIteratorClosedError {
    return new MsgIteratorClosedError(end.error);
  }

  /**
   * Resolves the next message. Rejects `MsgIteratorClosedError` once the iterator is closed and
   * empty (its `cause` is the error that ended it, if any); `AbortError` when `signal` aborts
   * this call; `NextTimeoutError` after `timeout` ms. Neither abort nor timeout ends the
   * iterator or loses a message: one that arrives later goes to the next call. Works the same
   * while draining (buffered messages are still handed out). Rejects `CallbackModeError` in
   * callback mode.
   */
  next(opts?: NextOptions): Promise<M> {
    if (this.opts.callback) return Promise.reject(new CallbackModeError());
    let o: NextOptions;
    try {
      o = resolveNextOptions(opts);
    } catch (err) {
      return Promise.reject(err);
    }
    const { signal, timeout } = o;
    if (signal?.aborted) return Promise.reject(new AbortError());
    const ready = this.channel.tryTake();
    if (ready !== undefined) {
      return isEnd(ready)
        ? Promise.reject(this.closedError(ready))
        : Promise.resolve(this.handOut(ready));
    }
    return new Promise<M>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      const waiter = (item: JsMsg | End) => {
        cleanup();
        if (isEnd(item)) reject(this.closedError(item));
        else resolve(this.handOut(item));
      };
      const onAbort = () => {
        if (this.channel.cancel(waiter)) {
          cleanup();
          reject(new AbortError());
        }
      };
      this.channel.take(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          if (this.channel.cancel(waiter)) {
            cleanup();
            reject(new NextTimeoutError(timeout));
          }
        }, timeout);
      }
    });
  }

  /**
   * `for await`: yields every message; ends when the iterator is closed and empty, throwing
   * only the error that ended it (a terminal failure, or the error given to `stop(err)`).
   * `break` (or a throw in the loop body) closes it as `close()` does. Throws
   * `CallbackModeError` in callback mode.
   */
  [Symbol.asyncIterator](): AsyncIterator<M> {
    if (this.opts.callback) throw new CallbackModeError();
    const finished: IteratorReturnResult<undefined> = { done: true, value: undefined };
    const result = (item: JsMsg | End): IteratorResult<M> => {
      if (!isEnd(item)) return { done: false, value: this.handOut(item) };
      if (item.error) throw item.error;
      return finished;
    };
    return {
      next: () => {
        const ready = this.channel.tryTake();
        if (ready !== undefined) {
          try {
            return Promise.resolve(result(ready));
          } catch (err) {
            return Promise.reject(err);
          }
        }
        return new Promise((resolve, reject) => {
          this.channel.take((item) => {
            try {
              resolve(result(item));
            } catch (err) {
              reject(err);
            }
          });
        });
      },
      return: () => this.close().then(() => finished),
    };
  }

  private async runCallbacks(callback: (m: M) => unknown): Promise<void> {
    for (;;) {
      // A message belongs to the callback from the moment it leaves the channel: `done` waits
      // from then until the callback settles (taking the last item may itself reach maybeDone).
      this.callbackRunning = true;
      let item: JsMsg | End | M | undefined = this.channel.tryTake();
      if (item !== undefined && !isEnd(item)) item = this.handOut(item);
      if (item === undefined) {
        this.callbackRunning = false;
        item = await new Promise<M | End>(
          (resolve) =>
            void this.channel.take((i) => {
              if (isEnd(i)) return resolve(i);
              this.callbackRunning = true;
              resolve(this.handOut(i));
            }),
        );
      }
      if (isEnd(item)) {
        this.callbackRunning = false;
        this.maybeDone();
        return;
      }
      try {
        const r = callback(item as M);
        if (isThenable(r)) await r;
      } catch (err) {
        // Ends the iterator with that error — also one already closed (after drain()) whose
        // buffer the callback was still working through: what is left is NAKed.
        const error = err instanceof Error ? err : new Error(String(err));
        this.terminal ??= error;
        this.callbackRunning = false;
        this.toClosed(error, "nak");
        this.discardBuffer("nak");
        this.maybeDone();
        return;
      }
      this.callbackRunning = false;
      // The last callback may settle after the channel emptied: done waits for it.
      this.maybeDone();
    }
  }

  // ── ending ───────────────────────────────────────────────────────────────────────────────

  /**
   * Graceful end: no new pulls; unsubscribes behind a fence (PING/PONG, at most `timeout` ms,
   * default 5 000) so every message the server already sent arrives; then closes. While
   * messages are still arriving it first keeps listening until the open pull requests are
   * complete or 100 ms pass without a message (at most 1 s, and half of `timeout`). Buffered
   * messages are still handed out after it resolves. Resolves once the iterator is closed (the
   * end item is in the channel) — safe to await inside the loop. A harsher end during the fence
   * (`close()`, an abort, the connection closing) cuts it short, and this promise resolves then.
   * Idempotent (later calls resolve together with the first; their `timeout` is ignored); on an
   * iterator already closed it resolves at once. Never loses a message.
   */
  drain(opts?: { timeout?: number }): Promise<void> {
    let timeout: number;
    try {
      timeout = resolveDrainTimeout(opts, DEFAULT_DRAIN_TIMEOUT);
    } catch (err) {
      return Promise.reject(err);
    }
    this.toDraining(undefined, timeout, true);
    return this.channelClosed.promise;
  }

  /**
   * nats.js-compatible stop: `drain()` without returning its promise. With `err`, the loop
   * throws `err` (and `next()` rejects with it as `cause`) after the buffer is handed out.
   * Idempotent; does nothing once draining or closed.
   */
  stop(err?: Error): void {
    this.toDraining(err, DEFAULT_DRAIN_TIMEOUT, true);
  }

  /**
   * Immediate end: closes now; buffered messages never handed out are NAKed (redelivered at
   * once), and so is any that arrives while the server confirms the unsubscribe (at most
   * {@link CLOSE_FENCE_TIMEOUT} ms; at once on a closed connection). On a server in a cluster or
   * a JetStream domain, the unsubscribe first waits until the newest pull request is 2 s old
   * (at most ~2.1 s; nats-server 2.9 serves a younger request without checking that anyone
   * listens: docs/faults.md, "Topologies"); what arrives meanwhile is NAKed too. Cuts a `drain()`
   * in progress: its fence is shortened to the same bound, and what is still buffered is NAKed.
   * Resolves `undefined`, or the error that ended the iterator, once it is closed, empty and its
   * subscriptions are gone — without waiting for a callback still running (so it can be awaited
   * inside one; `closed()` waits for that too, and resolves the callback's error if it then
   * throws, where `close()` has already resolved). Never rejects; safe inside the loop and on an
   * iterator never iterated; idempotent.
   */
  close(): Promise<void | Error> {
    this.toClosed(undefined, "nak");
    this.discardBuffer("nak");
    return this.quiet.promise;
  }

  /**
   * Resolves once the work is done: closed, nothing left buffered (handed out or discarded), the
   * subscriptions, listeners and timers gone, every callback handed a message settled (callback
   * mode), and the acks queued until then handed to the connection. Resolves `undefined` for an
   * ordinary end and the Error for a failure (connection lost, terminal status, a callback that
   * threw or rejected — also the last one — `stop(err)`). Never rejects. After `drain()` it waits
   * until the buffer is handed out (or `close()` or an abort NAKs the rest).
   */
  closed(): Promise<void | Error> {
    return this.done.promise;
  }

  /** As `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ── observing ────────────────────────────────────────────────────────────────────────────

  /**
   * Notifications from now on (heartbeats missed, consumer deleted, limits, debug, …) until the
   * iterator is done; the first listener, made before any message was handed out, also gets
   * the newest 32 made before it (the first pull's `next`, as nats.js v3). nats.js v3 shape
   * (`AsyncIterable<ConsumerNotification>`), or for a v2 consumer
   * `Promise<AsyncIterable<{ type, data }>>` as v2 has it.
   */
  status(): S {
    if (this.flavor === "v2") {
      return Promise.resolve(this.notifier.listen<V2Status>(toV2)) as S;
    }
    return this.notifier.listen() as S;
  }

  /** Messages handed to the user so far. */
  getProcessed(): number {
    return this.counts.processed;
  }

  /** Messages buffered and not yet handed out. */
  getPending(): number {
    return this.channel.size;
  }

  /** Data messages received from the server so far. */
  getReceived(): number {
    return this.counts.received;
  }

  /** Where every received message went; `received = processed + naked + dropped + pending`. */
  counters(): Counters {
    return { ...this.counts, pending: this.channel.size };
  }

  /** The lifecycle phase: `open`, `draining`, `closed` or `done` (see {@link Phase}). */
  get state(): Phase {
    return this.phase;
  }

  /**
   * Present only so the type is assignable to nats v2's `ConsumerMessages` (which extends its
   * internal `Dispatcher`). Messages come only from the server: calling it throws.
   */
  push(_value: M): void {
    throw new TypeError("Messages.push(): messages come only from the server");
  }
}
