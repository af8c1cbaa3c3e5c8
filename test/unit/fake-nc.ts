/**
 * A scripted, in-memory NATS connection for unit tests. It implements the library's
 * `NatsConnectionLike` and lets a test play the server: see every publish (pull requests parsed),
 * answer a pull with data or status messages, hold or answer flushes (and with them every
 * subscription's drain fence), push connection status events, and close the connection the way
 * nats.js does (subscriptions first, then `closed()`), with or without an error.
 *
 * Nothing here uses timers, so it behaves the same under `vi.useFakeTimers()`.
 */
import { vi } from "vitest";
import type {
  ConnectionStatusLike,
  HeadersLike,
  MsgLike,
  NatsConnectionLike,
  StatusIteratorLike,
  SubscribeOptionsLike,
  SubscriptionLike,
} from "../../src/connection.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** The real setImmediate, captured before any test fakes the timers. */
const realSetImmediate = globalThis.setImmediate;

/**
 * Lets every pending promise chain run (a few real macrotask turns). Fake timers are not
 * touched: a `setTimeout`/`setImmediate` of the code under test only runs with {@link tick}.
 */
export async function settle(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) {
    await new Promise<void>((resolve) => realSetImmediate(resolve));
  }
}

/** Settles, advances the fake clock by `ms` (0: runs what is due now, e.g. setImmediate), settles. */
export async function tick(ms = 0): Promise<void> {
  await settle();
  await vi.advanceTimersByTimeAsync(ms);
  await settle();
}

export interface Published {
  readonly subject: string;
  readonly payload: string;
  readonly reply: string | undefined;
  /** The connection was closed: publish threw (as nats.js does). */
  readonly refused: boolean;
  /** Published while the fake was disconnected (nats.js would buffer it). */
  readonly whileDisconnected: boolean;
}

/** The body of a pull request as published (durations in nanoseconds). */
export interface PullBody {
  batch: number;
  expires?: number;
  idle_heartbeat?: number;
  max_bytes?: number;
  no_wait?: boolean;
  [k: string]: unknown;
}

/** A pull request (`$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`) seen by the fake server. */
export interface PullRecord {
  /** 0-based position among the pulls. */
  readonly index: number;
  readonly subject: string;
  readonly stream: string;
  readonly consumer: string;
  /** The reply subject: where data and statuses for this request go. */
  readonly reply: string;
  readonly body: PullBody;
  /** Index of this publish in `published`. */
  readonly publishIndex: number;
  /** Data messages the fake delivered to this request so far. */
  delivered: number;
  /** Bytes (as sized by `sendData`) delivered to this request so far. */
  deliveredBytes: number;
  /** The test ended this request server-side (408/409/… sent, or marked). */
  done: boolean;
}

export interface DataOptions {
  /** Stream sequence; default: the next of a counter shared by the fake (1, 2, 3 …). */
  seq?: number;
  /** Delivery count (1 = first delivery). Default 1. */
  delivered?: number;
  /** Delivery (consumer) sequence; default = seq. */
  dseq?: number;
  /** Messages pending after this one. Default 0. */
  pending?: number;
  /** Timestamp in ns. Default a fixed value derived from seq. */
  ts?: string;
  stream?: string;
  consumer?: string;
  /** The message's own subject (stream subject). Default `events.<seq>`. */
  subject?: string;
  data?: string | Uint8Array;
  /** Size reported by `msg.size()`; default none (the library computes one). */
  size?: number;
  /** Replaces the whole reply (ack) subject: for hostile messages. */
  reply?: string;
}

export interface SentData {
  /** A live subscription received it. */
  readonly delivered: boolean;
  readonly seq: number;
  /** Its reply (ack) subject. */
  readonly reply: string;
}

export interface StatusHeaders extends HeadersLike {
  readonly code?: number;
  readonly description?: string;
  readonly values: Record<string, string>;
}

export function statusHeaders(
  code: number | undefined,
  description: string | undefined,
  values: Record<string, string> = {},
): StatusHeaders {
  return {
    code,
    description,
    values,
    get(key: string): string {
      return values[key] ?? "";
    },
  };
}

export interface CloseOptions {
  /**
   * "nats" (default): as nats.js does it: every subscription closes first, the status listeners
   * stop, then `closed()` resolves a few microtasks later. "closed-first": `closed()` resolves
   * before the subscriptions close.
   */
  order?: "nats" | "closed-first";
}

type Deferred<T> = {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
};

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** NATS subject matching with `*` and `>`. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === ">") return s.length > i;
    if (i >= s.length) return false;
    if (t !== "*" && t !== s[i]) return false;
  }
  return p.length === s.length;
}

export class FakeSubscription implements SubscriptionLike {
  state: "open" | "draining" | "closed" = "open";
  unsubscribeCalls = 0;
  drainCalls = 0;
  /** Messages handed to the callback. */
  received = 0;
  readonly closed: Promise<void>;
  private readonly closedDeferred = deferred<void>();
  private drained: Promise<void> | undefined;

  constructor(
    private readonly nc: FakeNatsConnection,
    readonly sid: number,
    readonly subject: string,
    private readonly callback: SubscribeOptionsLike["callback"],
  ) {
    this.closed = this.closedDeferred.promise;
  }

  unsubscribe(_max?: number): void {
    this.unsubscribeCalls++;
    this.markClosed();
  }

  /** UNSUB now; resolves (and closes the subscription) once the fence's PONG is answered. */
  drain(): Promise<void> {
    this.drainCalls++;
    if (this.nc.isClosed()) return Promise.reject(new Error("closed connection"));
    if (this.state === "closed") {
      return Promise.reject(new Error("subscription is already closed"));
    }
    if (!this.drained) {
      this.state = "draining";
      const done = () => this.markClosed();
      this.drained = this.nc.fence().then(done, done);
    }
    return this.drained;
  }

  isClosed(): boolean {
    return this.state === "closed";
  }

  getSubject(): string {
    return this.subject;
  }

  /** Hands `msg` to the callback unless closed (a draining subscription still receives). */
  deliver(msg: MsgLike): boolean {
    if (this.state === "closed") return false;
    this.received++;
    this.callback(null, msg);
    return true;
  }

  /** Hands an error to the callback (as nats.js does for e.g. a permissions violation). */
  deliverError(err: Error): void {
    if (this.state === "closed") return;
    this.callback(err, { subject: this.subject, data: new Uint8Array(), sid: this.sid });
  }

  /** Closed locally (unsubscribe, drain finished, connection closed). Idempotent. */
  markClosed(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.closedDeferred.resolve();
  }
}

export class FakeStatusIterator implements StatusIteratorLike, AsyncIterator<ConnectionStatusLike> {
  stopped = false;
  private queue: ConnectionStatusLike[] = [];
  private waiting: ((r: IteratorResult<ConnectionStatusLike>) => void) | undefined;

  push(s: ConnectionStatusLike): void {
    if (this.stopped) return;
    const w = this.waiting;
    if (w) {
      this.waiting = undefined;
      w({ value: s, done: false });
    } else {
      this.queue.push(s);
    }
  }

  stop(_err?: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<ConnectionStatusLike>> {
    const v = this.queue.shift();
    if (v !== undefined) return Promise.resolve({ value: v, done: false });
    if (this.stopped) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  return(): Promise<IteratorResult<ConnectionStatusLike>> {
    this.queue = [];
    this.stop();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<ConnectionStatusLike> {
    return this;
  }
}

export interface RequestRecord {
  readonly subject: string;
  readonly payload: string;
  readonly timeout: number | undefined;
}

/**
 * Answers `nc.request()`: a JSON payload to respond with, an Error to reject with,
 * "hang" to leave the promise pending for ever, or "hold" to keep it until the test calls
 * {@link FakeNatsConnection.answerHeldRequests} (or the connection closes, which rejects it).
 */
export type RequestHandler = (subject: string, payload: string) => string | Error | "hang" | "hold";

/** A `request()` whose answer the test gives later (see {@link RequestHandler}). */
export interface HeldRequest {
  readonly subject: string;
  readonly payload: string;
  settle(answer: string | Error): void;
}

export interface FakeOptions {
  /** "auto" (default): flushes and drain fences are answered at once; "hold": the test answers. */
  flushMode?: "auto" | "hold";
  /** Server version in `nc.info`. Default "2.9.10". */
  version?: string;
  inboxPrefix?: string;
}

const PULL_RE = /\.CONSUMER\.MSG\.NEXT\.([^.]+)\.([^.]+)$/;

export class FakeNatsConnection implements NatsConnectionLike {
  readonly info: { version: string };
  readonly options: { inboxPrefix: string };
  flushMode: "auto" | "hold";

  /** Every publish, in order (including refused ones, marked). */
  readonly published: Published[] = [];
  /** Every pull request published, in order. */
  readonly pulls: PullRecord[] = [];
  /** Every subscription ever made, in order. */
  readonly subscriptions: FakeSubscription[] = [];
  /** Every status iterator ever handed out. */
  readonly statusIterators: FakeStatusIterator[] = [];
  /** Every `request()` (consumer info, ackAck). */
  readonly requests: RequestRecord[] = [];
  /** Calls of `nc.flush()` (not counting subscription drain fences). */
  flushCalls = 0;
  /** Drain fences requested (one per subscription drain). */
  fenceCalls = 0;
  connected = true;

  /** Requests answered "hold" by the handler, oldest first, not yet answered. */
  heldRequests: HeldRequest[] = [];
  /** Answers `request()`. Default: an empty (successful) JSON response. */
  requestHandler: RequestHandler = () => "{}";
  /** Called after every pull request is recorded (for invariant checks). */
  onPull: ((p: PullRecord) => void) | undefined;
  /** Called when a subscription is made, before it is returned (for server-side bookkeeping). */
  onSubscribe: ((s: FakeSubscription) => void) | undefined;

  private sid = 0;
  private seq = 0;
  private closedFlag = false;
  private closing = false;
  private readonly closedDeferred = deferred<void | Error>();
  private pendingFlushes: Deferred<void>[] = [];

  constructor(opts: FakeOptions = {}) {
    this.flushMode = opts.flushMode ?? "auto";
    this.info = { version: opts.version ?? "2.9.10" };
    this.options = { inboxPrefix: opts.inboxPrefix ?? "_INBOX" };
  }

  // ── NatsConnectionLike ───────────────────────────────────────────────────────────────────

  subscribe(subject: string, opts: SubscribeOptionsLike): SubscriptionLike {
    if (this.closedFlag) throw new Error("closed connection");
    const sub = new FakeSubscription(this, ++this.sid, subject, opts.callback);
    this.onSubscribe?.(sub);
    this.subscriptions.push(sub);
    return sub;
  }

  publish(subject: string, payload?: Uint8Array, opts?: { reply?: string }): void {
    const text = payload ? dec.decode(payload) : "";
    const refused = this.closedFlag;
    this.published.push({
      subject,
      payload: text,
      reply: opts?.reply,
      refused,
      whileDisconnected: !this.connected,
    });
    if (refused) throw new Error("closed connection");
    const m = PULL_RE.exec(subject);
    if (m) {
      const rec: PullRecord = {
        index: this.pulls.length,
        subject,
        stream: m[1] ?? "",
        consumer: m[2] ?? "",
        reply: opts?.reply ?? "",
        body: JSON.parse(text) as PullBody,
        publishIndex: this.published.length - 1,
        delivered: 0,
        deliveredBytes: 0,
        done: false,
      };
      this.pulls.push(rec);
      this.onPull?.(rec);
    }
  }

  request(subject: string, payload?: Uint8Array, opts?: { timeout: number }): Promise<MsgLike> {
    const text = payload ? dec.decode(payload) : "";
    this.requests.push({ subject, payload: text, timeout: opts?.timeout });
    if (this.closedFlag) return Promise.reject(new Error("closed connection"));
    const answer = this.requestHandler(subject, text);
    if (answer === "hang") return new Promise<MsgLike>(() => {});
    if (answer === "hold") {
      const d = deferred<MsgLike>();
      this.heldRequests.push({
        subject,
        payload: text,
        settle: (a) => {
          if (a instanceof Error) d.reject(a);
          else d.resolve({ subject: "_INBOX.reply", data: enc.encode(a), sid: 0 });
        },
      });
      return d.promise;
    }
    if (answer instanceof Error) return Promise.reject(answer);
    return Promise.resolve({ subject: "_INBOX.reply", data: enc.encode(answer), sid: 0 });
  }

  /**
   * Answers every held request (oldest first) with `answer`: a JSON payload, an Error to reject
   * with, or a function choosing one per request. Returns how many were answered.
   */
  answerHeldRequests(answer: string | Error | ((r: HeldRequest) => string | Error)): number {
    const all = this.heldRequests;
    this.heldRequests = [];
    for (const r of all) r.settle(typeof answer === "function" ? answer(r) : answer);
    return all.length;
  }

  flush(): Promise<void> {
    this.flushCalls++;
    return this.fence();
  }

  status(): StatusIteratorLike {
    const it = new FakeStatusIterator();
    if (this.closedFlag) it.stop();
    this.statusIterators.push(it);
    return it;
  }

  closed(): Promise<void | Error> {
    return this.closedDeferred.promise;
  }

  isClosed(): boolean {
    return this.closedFlag;
  }

  // ── flushes and fences ───────────────────────────────────────────────────────────────────

  /** A PING/PONG: answered at once in "auto" mode, else when the test calls answerFlushes(). */
  fence(): Promise<void> {
    if (this.closedFlag) return Promise.reject(new Error("closed connection"));
    if (this.flushMode === "auto") return Promise.resolve();
    const d = deferred<void>();
    this.pendingFlushes.push(d);
    return d.promise;
  }

  /** Flushes (and drain fences) waiting for their PONG. */
  get pendingFlushCount(): number {
    return this.pendingFlushes.length;
  }

  /** The server answers every PING sent so far. */
  answerFlushes(): void {
    const all = this.pendingFlushes;
    this.pendingFlushes = [];
    for (const d of all) d.resolve();
  }

  /** Every PING sent so far fails (e.g. the connection dropped). */
  failFlushes(err: Error = new Error("flush failed")): void {
    const all = this.pendingFlushes;
    this.pendingFlushes = [];
    for (const d of all) d.reject(err);
  }

  // ── the server side ──────────────────────────────────────────────────────────────────────

  /** Subscriptions not closed. */
  get liveSubscriptions(): number {
    return this.subscriptions.filter((s) => s.state !== "closed").length;
  }

  /** Status iterators not stopped. */
  get liveStatusListeners(): number {
    return this.statusIterators.filter((s) => !s.stopped).length;
  }

  lastPull(): PullRecord {
    const p = this.pulls[this.pulls.length - 1];
    if (!p) throw new Error("no pull request was published");
    return p;
  }

  /** The most recent pull the fake server still serves (not done, batch not exhausted). */
  openPull(): PullRecord | undefined {
    for (let i = this.pulls.length - 1; i >= 0; i--) {
      const p = this.pulls[i];
      if (p && !p.done && p.delivered < p.body.batch) return p;
    }
    return undefined;
  }

  /** Publishes that went to `$JS.ACK…` subjects with a payload starting `-NAK`. */
  naks(): Published[] {
    return this.published.filter((p) => p.subject.startsWith("$JS.ACK.") && p.payload === "-NAK");
  }

  /** Publishes to `$JS.ACK…` subjects (acks of any kind). */
  acks(): Published[] {
    return this.published.filter((p) => p.subject.startsWith("$JS.ACK."));
  }

  /** Delivers `msg` to every live subscription matching `subject`. True if any got it. */
  route(subject: string, msg: Omit<MsgLike, "sid">): boolean {
    let any = false;
    for (const s of [...this.subscriptions]) {
      if (s.state === "closed" || !subjectMatches(s.subject, subject)) continue;
      any = s.deliver({ ...msg, sid: s.sid }) || any;
    }
    return any;
  }

  /** A JetStream data message for the pull request `to` (or a reply subject). */
  sendData(to: PullRecord | string, o: DataOptions = {}): SentData {
    const seq = o.seq ?? ++this.seq;
    if (o.seq !== undefined && o.seq > this.seq) this.seq = o.seq;
    const delivered = o.delivered ?? 1;
    const dseq = o.dseq ?? seq;
    const ts = o.ts ?? `${1_700_000_000_000_000_000n + BigInt(seq)}`;
    const reply =
      o.reply ??
      `$JS.ACK.${o.stream ?? "S"}.${o.consumer ?? "C"}.${delivered}.${seq}.${dseq}.${ts}.${o.pending ?? 0}`;
    const subject = o.subject ?? `events.${seq}`;
    const data =
      typeof o.data === "string" ? enc.encode(o.data) : (o.data ?? enc.encode(`m${seq}`));
    const target = typeof to === "string" ? to : to.reply;
    const msg: Omit<MsgLike, "sid"> = { subject, reply, data, headers: undefined };
    const size = o.size;
    const sized =
      size === undefined
        ? msg
        : {
            ...msg,
            size: () => size,
          };
    if (typeof to !== "string") {
      to.delivered++;
      to.deliveredBytes += size ?? subject.length + reply.length + data.length;
    }
    return { delivered: this.route(target, sized), seq, reply };
  }

  /** A status message (no reply, status headers) for the pull request `to` (or a subject). */
  sendStatus(
    to: PullRecord | string,
    code: number,
    description: string,
    values: Record<string, string> = {},
  ): boolean {
    const target = typeof to === "string" ? to : to.reply;
    return this.route(target, {
      subject: target,
      reply: undefined,
      data: new Uint8Array(),
      headers: statusHeaders(code, description, values),
    });
  }

  sendHeartbeat(to: PullRecord | string, lastConsumer = 0, lastStream = 0): boolean {
    return this.sendStatus(to, 100, "Idle Heartbeat", {
      "Nats-Last-Consumer": String(lastConsumer),
      "Nats-Last-Stream": String(lastStream),
    });
  }

  /** 408 Request Timeout: the request expired with this much undelivered. Marks it done. */
  send408(to: PullRecord, pendingMessages?: number, pendingBytes?: number): boolean {
    to.done = true;
    const values: Record<string, string> = {};
    values["Nats-Pending-Messages"] = String(pendingMessages ?? to.body.batch - to.delivered);
    values["Nats-Pending-Bytes"] = String(pendingBytes ?? 0);
    return this.sendStatus(to, 408, "Request Timeout", values);
  }

  /** A terminal-for-the-request status (409, 400, 503, …); marks the request done. */
  endPull(to: PullRecord, code: number, description: string): boolean {
    to.done = true;
    return this.sendStatus(to, code, description);
  }

  // ── the connection ───────────────────────────────────────────────────────────────────────

  /** Pushes a status event (`{ type }`) to every live status iterator. */
  emitStatus(type: string): void {
    for (const it of this.statusIterators) it.push({ type });
  }

  disconnect(): void {
    this.connected = false;
    this.emitStatus("disconnect");
  }

  reconnect(): void {
    this.connected = true;
    this.emitStatus("reconnect");
  }

  /**
   * Closes the connection: `err` undefined is an application close (`nc.close()`), an Error a
   * failure. See {@link CloseOptions} for the order. Pending flushes reject. Idempotent.
   */
  async close(err?: Error, opts: CloseOptions = {}): Promise<void> {
    if (this.closing) return this.closed().then(() => {});
    this.closing = true;
    if (opts.order === "closed-first") {
      this.closedFlag = true;
      this.closedDeferred.resolve(err);
      await Promise.resolve();
    }
    for (const s of this.subscriptions) s.markClosed();
    for (const it of this.statusIterators) {
      it.push({ type: "close" });
      it.stop();
    }
    this.closedFlag = true;
    this.failFlushes(new Error("closed connection"));
    this.answerHeldRequests(new Error("closed connection"));
    // nats.js awaits the status listeners and the socket before resolving closed().
    await Promise.resolve();
    await Promise.resolve();
    this.closedDeferred.resolve(err);
  }

  /**
   * `nc.drain()` by the application: every subscription drains (behind a fence), then the
   * connection closes without an error.
   */
  async drainConnection(): Promise<void> {
    if (this.closing) return;
    const subs = this.subscriptions.filter((s) => s.state !== "closed");
    await Promise.all(subs.map((s) => s.drain().catch(() => {})));
    await this.close();
  }
}

/**
 * An AbortSignal that counts its "abort" listeners: `live` is how many are registered now
 * (a `once` listener leaves when the signal fires).
 */
export interface CountedSignal {
  readonly controller: AbortController;
  readonly signal: AbortSignal;
  /** "abort" listeners currently registered. */
  live(): number;
  /** addEventListener("abort") calls so far. */
  adds(): number;
}

type AddArgs = Parameters<AbortSignal["addEventListener"]>;
type RemoveArgs = Parameters<AbortSignal["removeEventListener"]>;

export function countedSignal(): CountedSignal {
  const controller = new AbortController();
  const signal = controller.signal;
  const listeners = new Map<unknown, { once: boolean }>();
  let adds = 0;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  // Observe the event first so `once` listeners can be forgotten when it fires.
  add("abort", () => {
    for (const [l, o] of [...listeners]) if (o.once) listeners.delete(l);
  });
  Object.defineProperty(signal, "addEventListener", {
    configurable: true,
    value: (...[type, listener, options]: AddArgs) => {
      if (type === "abort" && listener) {
        adds++;
        if (!listeners.has(listener) && !signal.aborted) {
          listeners.set(listener, { once: typeof options === "object" && options.once === true });
        }
      }
      add(type, listener, options);
    },
  });
  Object.defineProperty(signal, "removeEventListener", {
    configurable: true,
    value: (...[type, listener, options]: RemoveArgs) => {
      if (type === "abort" && listener) listeners.delete(listener);
      remove(type, listener, options);
    },
  });
  return { controller, signal, live: () => listeners.size, adds: () => adds };
}
