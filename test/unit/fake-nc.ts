/**
 * A scripted, in-memory NATS connection for unit tests. It implements the library's
 * `NatsConnectionLike` and lets a test play the server: see every publish (pull requests parsed),
 * answer a pull with data or status messages, hold or answer flushes (and with them every
 * subscription's drain fence), push connection status events, and close the connection the way
 * nats.js does (subscriptions first, then `closed()`), with or without an error.
 *
 * Nothing here uses timers, so it behaves the same under `vi.useFakeTimers()`.
 *
 * For tests that would rather not script the server by hand, {@link FakeNatsConnection.jetstream}
 * attaches a {@link FakeJetStreamServer}: a model of how nats-server 2.9.10 serves pull requests
 * (waiting queue, round robin, max_bytes, expiry, heartbeats, refusals, acks), checked against a
 * real server by test/integration/differential.test.ts. Its timers (only in its default "timers"
 * clock) are `setTimeout`s, so `vi.advanceTimersByTime()` drives it.
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
  /** The cluster name in `nc.info` (a clustered server). Default: none. */
  cluster?: string;
  inboxPrefix?: string;
}

const PULL_RE = /\.CONSUMER\.MSG\.NEXT\.([^.]+)\.([^.]+)$/;

export class FakeNatsConnection implements NatsConnectionLike {
  readonly info: { version: string; cluster?: string };
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
  /** Server models attached with {@link jetstream}, by stream and consumer. */
  private readonly servers = new Map<string, FakeJetStreamServer>();
  /** Publishes made while disconnected that a server model will see on reconnect. */
  private buffered: {
    subject: string;
    payload: string;
    reply: string | undefined;
    pull?: PullRecord;
  }[] = [];
  private closedFlag = false;
  private closing = false;
  private readonly closedDeferred = deferred<void | Error>();
  private pendingFlushes: Deferred<void>[] = [];

  constructor(opts: FakeOptions = {}) {
    this.flushMode = opts.flushMode ?? "auto";
    this.info = { version: opts.version ?? "2.9.10", cluster: opts.cluster };
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
    let rec: PullRecord | undefined;
    if (m) {
      const stream = m[1] ?? "";
      const consumer = m[2] ?? "";
      rec = {
        index: this.pulls.length,
        subject,
        stream,
        consumer,
        reply: opts?.reply ?? "",
        body: this.servers.has(serverKey(stream, consumer))
          ? pullBodyOf(text)
          : (JSON.parse(text) as PullBody),
        publishIndex: this.published.length - 1,
        delivered: 0,
        deliveredBytes: 0,
        done: false,
      };
      this.pulls.push(rec);
      this.onPull?.(rec);
    }
    this.toServers(subject, text, opts?.reply, rec);
  }

  /**
   * Attaches a model of nats-server serving the pull consumer `stream`/`consumer` (see
   * {@link FakeJetStreamServer}): from now on the pull requests and acks published for it are
   * served by the model instead of by the test. Other pulls stay scripted as before.
   */
  jetstream(opts: FakeJetStreamOptions = {}): FakeJetStreamServer {
    const server = new FakeJetStreamServer(this, opts);
    const key = serverKey(server.stream, server.consumer);
    if (this.servers.has(key)) {
      throw new Error(`a server model for ${server.stream}/${server.consumer} is already attached`);
    }
    this.servers.set(key, server);
    return server;
  }

  /** The server model attached for `stream`/`consumer`, if any. */
  jetstreamServer(stream = "S", consumer = "C"): FakeJetStreamServer | undefined {
    return this.servers.get(serverKey(stream, consumer));
  }

  /** Hands a publish to the server models (buffered while disconnected, as nats.js does). */
  private toServers(
    subject: string,
    payload: string,
    reply: string | undefined,
    pull: PullRecord | undefined,
  ): void {
    if (this.servers.size === 0) return;
    if (!this.connected) {
      this.buffered.push({ subject, payload, reply, ...(pull ? { pull } : {}) });
      return;
    }
    for (const server of this.servers.values()) server.receive(subject, payload, reply, pull);
  }

  /** Whether the server sees interest in `subject`: an open subscription, while connected. */
  hasInterest(subject: string): boolean {
    if (!this.connected || this.closedFlag) return false;
    return this.subscriptions.some((s) => s.state === "open" && subjectMatches(s.subject, subject));
  }

  /** Messages the server models sent that have not reached the subscriptions yet. */
  private get inFlight(): boolean {
    for (const server of this.servers.values()) if (server.inFlight > 0) return true;
    return false;
  }

  /** Delivers what the server models sent so far (a PONG comes after it). */
  private deliverInFlight(): void {
    for (const server of this.servers.values()) server.deliverOutbox();
  }

  request(subject: string, payload?: Uint8Array, opts?: { timeout: number }): Promise<MsgLike> {
    const text = payload ? dec.decode(payload) : "";
    this.requests.push({ subject, payload: text, timeout: opts?.timeout });
    if (this.closedFlag) return Promise.reject(new Error("closed connection"));
    // An ack sent as a request (double ack) reaches the server model too; the answer stays the
    // handler's.
    if (subject.startsWith("$JS.ACK.")) this.toServers(subject, text, undefined, undefined);
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
    if (this.flushMode === "auto") {
      if (!this.inFlight) return Promise.resolve();
      // The PONG comes after every message a server model sent before the PING.
      return new Promise<void>((resolve) =>
        realSetImmediate(() => {
          this.deliverInFlight();
          resolve();
        }),
      );
    }
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
    this.deliverInFlight();
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
    // nats.js sends what it buffered while disconnected once it is connected again.
    const buffered = this.buffered;
    this.buffered = [];
    for (const p of buffered) this.toServers(p.subject, p.payload, p.reply, p.pull);
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
    for (const server of this.servers.values()) server.connectionClosed();
    this.buffered = [];
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

// ── a model of nats-server serving pull requests ──────────────────────────────────────────────

function serverKey(stream: string, consumer: string): string {
  return `${stream}\u0000${consumer}`;
}

/** A pull request body as nats-server reads it (JSON, a bare batch number, or empty: batch 1). */
function pullBodyOf(text: string): PullBody {
  const t = text.trim();
  if (t.startsWith("{")) {
    try {
      const v: unknown = JSON.parse(t);
      if (v && typeof v === "object" && !Array.isArray(v)) return v as PullBody;
    } catch {
      // the server answers 400; the record keeps a placeholder
    }
    return { batch: 1 };
  }
  return { batch: /^[+-]?\d+$/.test(t) ? Number(t) : 1 };
}

/** Go's `time.Duration.String()` of `ns` nanoseconds ("2s", "1.5s", "500ms", "1m0s"). */
export function goDuration(ns: number): string {
  if (ns === 0) return "0s";
  const sign = ns < 0 ? "-" : "";
  let u = Math.abs(Math.round(ns));
  const frac = (v: number, unit: number): string => {
    const whole = Math.floor(v / unit);
    const rest = v % unit;
    if (rest === 0) return String(whole);
    const digits = String(unit).length - 1;
    return `${whole}.${String(rest).padStart(digits, "0").replace(/0+$/, "")}`;
  };
  if (u < 1_000) return `${sign}${u}ns`;
  if (u < 1_000_000) return `${sign}${frac(u, 1_000)}µs`;
  if (u < 1_000_000_000) return `${sign}${frac(u, 1_000_000)}ms`;
  const h = Math.floor(u / 3_600_000_000_000);
  u -= h * 3_600_000_000_000;
  const m = Math.floor(u / 60_000_000_000);
  u -= m * 60_000_000_000;
  const s = `${frac(u, 1_000_000_000)}s`;
  if (h > 0) return `${sign}${h}h${m}m${s}`;
  if (m > 0) return `${sign}${m}m${s}`;
  return `${sign}${s}`;
}

export interface FakeJetStreamOptions {
  /** Default "S" (the name the library's unit tests use). */
  stream?: string;
  /** Default "C". */
  consumer?: string;
  /** Subject of a published message that does not name one. Default `events.<seq>`. */
  subject?: string | ((seq: number) => string);
  /**
   * "timers" (default): the clock is `Date.now()` and deadlines are `setTimeout`s, so
   * `vi.advanceTimersByTime()` (or real time) drives expiry, heartbeats and ack_wait.
   * "manual": the clock starts at `Date.now()` and moves only with {@link FakeJetStreamServer.advance};
   * no timer is ever set.
   */
  clock?: "timers" | "manual";
  /** Consumer `max_waiting`: open requests at most. Default 512 (the server's default). */
  maxWaiting?: number;
  /** Consumer `max_batch`; 0 (default) = no limit. */
  maxRequestBatch?: number;
  /** Consumer `max_expires`, milliseconds; 0 (default) = no limit. */
  maxRequestExpires?: number;
  /** Consumer `max_bytes`; 0 (default) = no limit. */
  maxRequestMaxBytes?: number;
  /** Default "explicit". */
  ackPolicy?: "explicit" | "all" | "none";
  /** Consumer `max_ack_pending`. Default 1000 (the server's default with acks); -1 = no limit. */
  maxAckPending?: number;
  /** Consumer `ack_wait`, milliseconds. Default 30 000. */
  ackWait?: number;
  /** Consumer `max_deliver`; -1 (default) = no limit. */
  maxDeliver?: number;
  /**
   * Ack subject layout: 9 tokens (default, what 2.9.10 sends:
   * `$JS.ACK.<stream>.<consumer>.<dc>.<sseq>.<dseq>.<ts>.<pending>`) or 11 tokens (2.10+:
   * `$JS.ACK.<domain>.<account hash>.<stream>.…`, `_` for no domain).
   */
  ackTokens?: 9 | 11;
  /** JetStream domain in 11-token ack subjects. Default none (`_`). */
  domain?: string;
}

/** A message in the model's stream. */
export interface StoredMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  /** Header values (none: undefined). */
  readonly headers: Record<string, string> | undefined;
  /** Length of the header block as sent (`NATS/1.0\r\n…\r\n\r\n`), 0 without headers. */
  readonly headerBytes: number;
  /** Stream timestamp, nanoseconds since the epoch (19 digits). */
  readonly ts: string;
}

/** A message for {@link FakeJetStreamServer.publish}: a payload, or subject/data/headers. */
export type PublishInput =
  | string
  | Uint8Array
  | { subject?: string; data?: string | Uint8Array; headers?: Record<string, string> };

/** An open pull request in the model's waiting queue (nats-server's `waitingRequest`). */
export interface WaitingRequest {
  readonly reply: string;
  /** Messages still to deliver (`n`). */
  n: number;
  /** Messages delivered (`d`). */
  d: number;
  /** Bytes still allowed (`b`); 0 = no max_bytes. */
  b: number;
  /** When it expires on the model's clock (ms); 0 = never. */
  readonly expires: number;
  readonly received: number;
  /** Idle heartbeat interval, ms; 0 = none. */
  readonly hb: number;
  /** When the next heartbeat is due (ms); 0 = none. */
  hbt: number;
  readonly noWait: boolean;
  /** The connection's record of the request, when it came through `publish()`. */
  readonly pull: PullRecord | undefined;
}

/** Something the model sent to the client, in order. */
export type ServerSent =
  | {
      readonly kind: "data";
      readonly to: string;
      readonly seq: number;
      readonly dseq: number;
      readonly dc: number;
      readonly pending: number;
      readonly reply: string;
      readonly size: number;
      /** Set when it reached the connection: whether a subscription received it. */
      delivered?: boolean;
    }
  | {
      readonly kind: "status";
      readonly to: string;
      readonly code: number;
      readonly description: string;
      readonly headers: Record<string, string>;
      delivered?: boolean;
    };

interface PendingAck {
  /** Consumer sequence of the first delivery. */
  readonly dseq: number;
  /** Delivered (or last redelivered, or last +WPI) at, on the model's clock. */
  ts: number;
}

const NS_PER_MS = 1_000_000;

/**
 * A model of nats-server 2.9.10 serving one pull consumer (server/consumer.go: waitQueue,
 * nextWaiting, processWaiting, processNextMsgRequest, loopAndGatherMsgs, getNextMsg, acks),
 * attached to a {@link FakeNatsConnection} with `nc.jetstream()`. The test publishes to the
 * stream with {@link publish}; pull requests and acks arrive from whatever the code under test
 * publishes on the connection.
 *
 * - Open requests wait in a queue; the head gets the next message; a request with messages left
 *   then goes to the back when others wait (round robin); one that has its batch is removed,
 *   silently.
 * - max_bytes: a message that fits is counted against the head's bytes (landing on exactly 0
 *   makes it the last); one that does not fit ends the head with `409 Message Size Exceeds
 *   MaxBytes` (`Nats-Pending-Messages`, `Nats-Pending-Bytes`) and goes to the next request.
 * - A request without interest (no open subscription matches its reply subject, or the
 *   connection is down) is dropped silently when the server next looks at it: when it is at the
 *   head for a message, or at the next sweep (after every delivery burst, at every deadline,
 *   before refusing a request for a full queue). Nothing else removes it: unsubscribing and
 *   subscribing again before the next look keeps it alive, as on the real server.
 * - Expiry: `408 Request Timeout` with pending headers. Heartbeats: `100 Idle Heartbeat` with
 *   `Nats-Last-Consumer`/`Nats-Last-Stream` to each request with interest once its interval
 *   passes without a message.
 * - The expiry race (opt-in, {@link publishAtExpiry}): a message ready for a request whose
 *   `expires` has just passed, before the consumer's expiry timer has run the sweep. nextWaiting
 *   finds the request expired and removes it without a 408 (and without a message: the message
 *   goes to the next request, or stays in the stream for the next pull), as 2.9.10 does. The
 *   model's sweep otherwise runs at every deadline on time, so only that call makes a publish win
 *   the race; the requests removed so are logged in {@link expiredAtMessage}.
 * - Refusals before queuing: 400 Bad Request (body not understood, heartbeat over half of
 *   expires), 409 Exceeded MaxRequestBatch/MaxRequestExpires/MaxRequestMaxBytes/MaxWaiting.
 *   no_wait is served as 2.9.10 does (404 No Messages, 408 Requests Pending).
 * - Acks: +ACK, +TERM, -NAK (redelivered first, with the delivery count up; a delay as 2.9.10
 *   does it, through ack_wait), +WPI, +NXT; max_ack_pending stalls delivery; ack_wait redelivers.
 *
 * What it sends reaches the subscriptions in a later macrotask when it answers the code under
 * test (a publish never calls back into its caller), and at once when the test acts
 * ({@link publish}, {@link advance}, a timer firing); a flush's PONG comes after it either way.
 * Every message it sends is logged in {@link sent}.
 *
 * 2.9.10's quirks are kept where they show on the wire: a redelivery that finds no request
 * with interest is lost until ack_wait and re-sends the message before the stream cursor as
 * new (see `loop`).
 *
 * Not modelled: clustering and leader changes (use `sendStatus`), consumer deletion, flow
 * control, filter subjects, stream limits, backoff, the account-export `408 Interest Expired`,
 * the consumer's pending count drifting after that redelivery quirk (the `pending` token here
 * is always the stream messages after the cursor), `-NAK <duration>` (only the JSON delay),
 * and a race of the real server: a message handed to a reply whose UNSUB is in flight
 * (`didNotDeliver`). The sweep the real server runs after a request or a delivery is
 * asynchronous (its consumer goroutine); here it runs at once, and its expiry timer never runs
 * late unless {@link publishAtExpiry} says so.
 */
export class FakeJetStreamServer {
  readonly stream: string;
  readonly consumer: string;
  /** The stream: messages[seq - 1]. */
  readonly messages: StoredMessage[] = [];
  /** Everything sent to the client, in order. */
  readonly sent: ServerSent[] = [];
  /** Acks the server processed (payloads as published), in order. */
  readonly acks: { readonly subject: string; readonly payload: string }[] = [];
  /**
   * Requests nextWaiting found expired at a message and removed without a 408, in order (the
   * expiry race, see {@link publishAtExpiry}).
   */
  readonly expiredAtMessage: WaitingRequest[] = [];

  private readonly manual: boolean;
  private clockMs: number;
  private readonly subjectOf: (seq: number) => string;
  private readonly maxWaiting: number;
  private readonly maxRequestBatch: number;
  private readonly maxRequestExpiresNs: number;
  private readonly maxRequestMaxBytes: number;
  private readonly ackPolicy: "explicit" | "all" | "none";
  private readonly maxAckPending: number;
  private readonly ackWait: number;
  private readonly maxDeliver: number;
  private readonly ackPrefix: string;

  private queue: WaitingRequest[] = [];
  /** Next stream sequence to deliver (o.sseq). */
  private sseq = 1;
  /** Next consumer (delivery) sequence (o.dseq). */
  private dseq = 1;
  private readonly pendingAcks = new Map<number, PendingAck>();
  /** Redelivery queue (o.rdq), stream sequences. */
  private rdq: number[] = [];
  /** Redeliveries so far per stream sequence (o.rdc). */
  private readonly rdc = new Map<number, number>();
  private outbox: { to: string; msg: Omit<MsgLike, "sid">; entry: ServerSent }[] = [];
  /** >0 while answering the client (its publish is on the stack). */
  private depth = 0;
  private deliveryScheduled = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The next deadline (expiry, heartbeat, ack_wait) on the model's clock; 0 = none. */
  private wakeAt = 0;
  /** The expiry race armed by {@link publishAtExpiry}: what is published at `at`, first. */
  private race: { at: number; what: number | readonly PublishInput[] } | undefined;
  private disposed = false;

  constructor(
    private readonly nc: FakeNatsConnection,
    opts: FakeJetStreamOptions = {},
  ) {
    this.stream = opts.stream ?? "S";
    this.consumer = opts.consumer ?? "C";
    const subject = opts.subject ?? ((seq: number) => `events.${seq}`);
    this.subjectOf = typeof subject === "string" ? () => subject : subject;
    this.manual = opts.clock === "manual";
    this.clockMs = Date.now();
    this.maxWaiting = opts.maxWaiting ?? 512;
    this.maxRequestBatch = opts.maxRequestBatch ?? 0;
    this.maxRequestExpiresNs = (opts.maxRequestExpires ?? 0) * NS_PER_MS;
    this.maxRequestMaxBytes = opts.maxRequestMaxBytes ?? 0;
    this.ackPolicy = opts.ackPolicy ?? "explicit";
    this.maxAckPending = this.ackPolicy === "none" ? -1 : (opts.maxAckPending ?? 1000);
    this.ackWait = opts.ackWait ?? 30_000;
    this.maxDeliver = opts.maxDeliver ?? -1;
    this.ackPrefix =
      opts.ackTokens === 11
        ? `$JS.ACK.${opts.domain ?? "_"}.ACCOUNTHASH.${this.stream}.${this.consumer}`
        : `$JS.ACK.${this.stream}.${this.consumer}`;
  }

  // ── what the test does ─────────────────────────────────────────────────────────────────

  /** The model's clock, milliseconds. */
  now(): number {
    return this.manual ? this.clockMs : Date.now();
  }

  /**
   * Stores messages in the stream and serves the waiting requests. `what`: a count (payloads
   * `m<seq>`), or one entry per message. Returns the stream sequences.
   */
  publish(what: number | readonly PublishInput[]): number[] {
    const seqs = this.store(what);
    this.act(() => {
      if (this.queue.length > 0) this.loop();
    });
    return seqs;
  }

  /**
   * The expiry race of 2.9.10: a message becomes ready for a request whose `expires` has just
   * passed, before the consumer's expiry timer has run the sweep (processWaiting). nextWaiting
   * finds the request expired and removes it without a 408 and without a message; the message
   * goes to the next request with interest, or stays in the stream for the next pull.
   *
   * Arms it: at the expiry of the waiting request for `reply` (default: the one that expires
   * first), `what` (as for {@link publish}) is stored and served before anything else due then
   * (the sweep, heartbeats, ack_wait). That moment comes with the clock: the model's timer
   * (`vi.advanceTimersByTime`) or {@link advance}. Returns it on the model's clock, or undefined
   * (nothing armed, nothing published) when no such request waits with an `expires`. A second
   * call replaces a race not yet run. Whatever removes the request first (its batch served, its
   * interest lost, the test ending it) leaves a plain publish at that moment. Disarmed by
   * {@link dispose} and by the connection closing.
   */
  publishAtExpiry(what: number | readonly PublishInput[], reply?: string): number | undefined {
    if (this.disposed) return undefined;
    let target: WaitingRequest | undefined;
    for (const wr of this.queue) {
      if (wr.expires === 0 || (reply !== undefined && wr.reply !== reply)) continue;
      if (!target || wr.expires < target.expires) target = wr;
    }
    if (!target) return undefined;
    this.race = { at: target.expires, what: typeof what === "number" ? what : [...what] };
    this.schedule();
    return target.expires;
  }

  /** Appends messages to the stream (see {@link publish}); returns their sequences. */
  private store(what: number | readonly PublishInput[]): number[] {
    const inputs: PublishInput[] =
      typeof what === "number"
        ? Array.from({ length: what }, (_, i) => `m${this.messages.length + i + 1}`)
        : [...what];
    const seqs: number[] = [];
    for (const input of inputs) {
      const seq = this.messages.length + 1;
      const o = typeof input === "string" || input instanceof Uint8Array ? { data: input } : input;
      const data = typeof o.data === "string" ? enc.encode(o.data) : (o.data ?? new Uint8Array());
      const headers = o.headers;
      let headerBytes = 0;
      if (headers) {
        headerBytes = "NATS/1.0\r\n".length + 2;
        for (const [k, v] of Object.entries(headers)) headerBytes += k.length + v.length + 4;
      }
      this.messages.push({
        seq,
        subject: o.subject ?? this.subjectOf(seq),
        data,
        headers,
        headerBytes,
        ts: this.timestamp(),
      });
      seqs.push(seq);
    }
    return seqs;
  }

  /**
   * "manual" clock: moves it forward by `ms`, running every deadline on the way (expiry,
   * heartbeats, ack_wait) at its time.
   */
  advance(ms: number): void {
    if (!this.manual)
      throw new Error('advance() is for clock "manual"; use vi.advanceTimersByTime');
    const target = this.clockMs + ms;
    this.act(() => {
      for (let guard = 0; this.wakeAt > 0 && this.wakeAt <= target && !this.disposed; guard++) {
        if (guard > 1_000_000) throw new Error("advance(): deadlines do not move forward");
        this.clockMs = Math.max(this.clockMs, this.wakeAt);
        this.wake();
      }
      this.clockMs = target;
    });
  }

  /** The open requests, head first. */
  get waiting(): readonly WaitingRequest[] {
    return this.queue;
  }

  /** Messages sent but not yet handed to the subscriptions (they go in a later macrotask). */
  get inFlight(): number {
    return this.outbox.length;
  }

  /** Stream messages not yet delivered (the consumer's num_pending). */
  get numPending(): number {
    return Math.max(0, this.messages.length - this.sseq + 1);
  }

  /** Delivered messages not yet acked (num_ack_pending). */
  get numAckPending(): number {
    return this.pendingAcks.size;
  }

  /** Consumer info as `$JS.API.CONSUMER.INFO` would answer it (the fields tests read). */
  info(): Record<string, unknown> {
    return {
      stream_name: this.stream,
      name: this.consumer,
      config: {
        durable_name: this.consumer,
        ack_policy: this.ackPolicy,
        ack_wait: this.ackWait * NS_PER_MS,
        max_deliver: this.maxDeliver,
        max_waiting: this.maxWaiting,
        max_ack_pending: this.maxAckPending,
      },
      delivered: { consumer_seq: this.dseq - 1, stream_seq: this.sseq - 1 },
      num_ack_pending: this.pendingAcks.size,
      num_redelivered: [...this.rdc.values()].filter((n) => n > 0).length,
      num_waiting: this.queue.length,
      num_pending: this.numPending,
    };
  }

  /** Stops the model: no more timers, requests dropped, nothing more sent. Idempotent. */
  dispose(): void {
    this.disposed = true;
    for (const wr of this.queue) if (wr.pull) wr.pull.done = true;
    this.queue = [];
    this.outbox = [];
    this.race = undefined;
    this.setWake(0);
  }

  /** Hands what was sent to the subscriptions now (in order). */
  deliverOutbox(): void {
    while (this.outbox.length > 0) {
      const o = this.outbox.shift()!;
      const live = this.nc.connected && !this.nc.isClosed();
      o.entry.delivered = live && this.nc.route(o.to, o.msg);
    }
  }

  // ── what the connection hands over ────────────────────────────────────────────────────────

  /** A publish by the client: a pull request or an ack for this consumer, else ignored. */
  receive(subject: string, payload: string, reply: string | undefined, pull?: PullRecord): void {
    if (this.disposed) return;
    const m = PULL_RE.exec(subject);
    const isPull = m !== null && m[1] === this.stream && m[2] === this.consumer;
    const isAck = subject.startsWith(`${this.ackPrefix}.`);
    if (!isPull && !isAck) return;
    this.depth++;
    try {
      if (isPull) this.processNextMsgRequest(reply, payload, pull);
      else this.processAck(subject, payload, reply);
    } finally {
      this.depth--;
    }
    this.afterClient();
  }

  /** The connection closed: every request loses interest; nothing more is sent. */
  connectionClosed(): void {
    for (const wr of this.queue) if (wr.pull) wr.pull.done = true;
    this.queue = [];
    this.outbox = [];
    this.race = undefined;
    // Redeliveries could only go to requests of a later connection: no timer is left behind.
    this.setWake(0);
  }

  // ── the server ─────────────────────────────────────────────────────────────────────────

  /** Runs a server-side action; what it sends goes out at once unless the client is on the stack. */
  private act(fn: () => void): void {
    if (this.disposed) return;
    fn();
    if (this.depth > 0) this.afterClient();
    else this.deliverOutbox();
  }

  private afterClient(): void {
    if (this.outbox.length === 0 || this.deliveryScheduled) return;
    this.deliveryScheduled = true;
    realSetImmediate(() => {
      this.deliveryScheduled = false;
      this.deliverOutbox();
    });
  }

  private timestamp(): string {
    let ms = Math.floor(this.now());
    // Keep 19 digits (a real stream's timestamp) so sizes match even on a clock set near 0.
    if (ms < 1_000_000_000_000) ms += 1_700_000_000_000;
    return (BigInt(ms) * 1_000_000n + BigInt((this.messages.length + 1) % 1_000_000)).toString();
  }

  private send(entry: ServerSent, msg: Omit<MsgLike, "sid">): void {
    this.sent.push(entry);
    this.outbox.push({ to: entry.to, msg, entry });
  }

  private sendStatus(
    to: string,
    code: number,
    description: string,
    values: Record<string, string> = {},
  ): void {
    this.send(
      { kind: "status", to, code, description, headers: values },
      {
        subject: to,
        reply: undefined,
        data: new Uint8Array(),
        headers: statusHeaders(code, description, values),
      },
    );
  }

  private sendPendingStatus(wr: WaitingRequest, code: number, description: string): void {
    this.sendStatus(wr.reply, code, description, {
      "Nats-Pending-Messages": String(wr.n),
      "Nats-Pending-Bytes": String(wr.b),
    });
  }

  private end(wr: WaitingRequest): void {
    const i = this.queue.indexOf(wr);
    if (i >= 0) this.queue.splice(i, 1);
    if (wr.pull) wr.pull.done = true;
  }

  /** processNextMsgRequest: refuse, or queue and serve. */
  private processNextMsgRequest(
    reply: string | undefined,
    payload: string,
    pull?: PullRecord,
  ): void {
    if (!reply) return;
    const refuse = (code: number, description: string) => {
      if (pull) pull.done = true;
      this.sendStatus(reply, code, description);
    };
    const req = parseNextRequest(payload);
    if (typeof req === "string") {
      refuse(400, `Bad Request - ${req}`);
      return;
    }
    if (this.maxRequestBatch > 0 && req.batch > this.maxRequestBatch) {
      refuse(409, `Exceeded MaxRequestBatch of ${this.maxRequestBatch}`);
      return;
    }
    if (
      req.expiresNs !== 0 &&
      this.maxRequestExpiresNs > 0 &&
      req.expiresNs > this.maxRequestExpiresNs
    ) {
      refuse(409, `Exceeded MaxRequestExpires of ${goDuration(this.maxRequestExpiresNs)}`);
      return;
    }
    if (req.maxBytes > 0 && this.maxRequestMaxBytes > 0 && req.maxBytes > this.maxRequestMaxBytes) {
      refuse(409, `Exceeded MaxRequestMaxBytes of ${this.maxRequestMaxBytes}`);
      return;
    }
    if (this.queue.length >= this.maxWaiting) this.processWaiting(false);
    if (req.noWait) {
      const msgsPending = this.numPending + this.rdq.length;
      if (msgsPending === 0 && req.expiresNs === 0) {
        refuse(404, "No Messages");
        return;
      }
      if (msgsPending > 0) {
        const { brp } = this.processWaiting(false);
        if (msgsPending < brp) {
          refuse(408, "Requests Pending");
          return;
        }
      }
    }
    const now = this.now();
    const wr: WaitingRequest = {
      reply,
      n: req.batch,
      d: 0,
      b: req.maxBytes,
      expires: req.expiresNs === 0 ? 0 : now + req.expiresNs / NS_PER_MS,
      received: now,
      hb: req.heartbeatNs / NS_PER_MS,
      hbt: req.heartbeatNs > 0 ? now + req.heartbeatNs / NS_PER_MS : 0,
      noWait: req.noWait,
      pull,
    };
    if (this.queue.length >= this.maxWaiting) {
      refuse(409, "Exceeded MaxWaiting");
      return;
    }
    this.queue.push(wr);
    this.loop();
  }

  /**
   * loopAndGatherMsgs, one pass: while requests wait and a message is available, the head
   * request (per nextWaiting) gets it; then the sweep (processWaiting) and the next deadline.
   */
  private loop(): void {
    let stalled = false;
    while (this.queue.length > 0) {
      const next = this.getNextMsg();
      if (next === "stalled") {
        stalled = true;
        break;
      }
      if (!next) break;
      const { msg, dc } = next;
      const pending = this.numPending;
      const reply = `${this.ackPrefix}.${dc}.${msg.seq}.${this.dseq}.${msg.ts}.${pending}`;
      const size = msg.subject.length + reply.length + msg.headerBytes + msg.data.length;
      const wr = this.nextWaiting(size);
      if (!wr) {
        // Nobody to take it: "we will redo this one", by stepping the stream cursor back. 2.9.10
        // does that for a redelivery too (measured): the redelivery is lost until ack_wait, its
        // delivery count stays up, and the message before the cursor goes out again as a first
        // delivery (dc 1, a new consumer sequence).
        this.sseq--;
        break;
      }
      const now = this.now();
      if (wr.n <= 0) {
        if (wr.pull) wr.pull.done = true;
      } else if (wr.hb > 0) {
        wr.hbt = now + wr.hb;
      }
      const dseq = this.dseq++;
      if (this.ackPolicy !== "none") {
        const p = this.pendingAcks.get(msg.seq);
        if (p) p.ts = now;
        else this.pendingAcks.set(msg.seq, { dseq, ts: now });
      }
      if (wr.pull) {
        wr.pull.delivered++;
        wr.pull.deliveredBytes += size;
      }
      const headers = msg.headers ? statusHeaders(0, "", msg.headers) : undefined;
      this.send(
        { kind: "data", to: wr.reply, seq: msg.seq, dseq, dc, pending, reply, size },
        { subject: msg.subject, reply, data: msg.data, headers, size: () => size },
      );
    }
    this.processWaiting(!stalled);
    this.schedule();
  }

  /** getNextMsg: a redelivery first, else the next stream message unless max_ack_pending stalls. */
  private getNextMsg(): { msg: StoredMessage; dc: number } | "stalled" | undefined {
    while (this.rdq.length > 0) {
      const seq = this.rdq.shift()!;
      const r = (this.rdc.get(seq) ?? 0) + 1;
      this.rdc.set(seq, r);
      const dc = r + 1;
      if (this.maxDeliver > 0 && dc > this.maxDeliver) {
        this.pendingAcks.delete(seq);
        continue;
      }
      const msg = this.messages[seq - 1];
      if (msg) return { msg, dc };
    }
    if (this.maxAckPending > 0 && this.pendingAcks.size >= this.maxAckPending) return "stalled";
    const msg = this.messages[this.sseq - 1];
    if (!msg) return undefined;
    this.sseq++;
    return { msg, dc: 1 };
  }

  /** nextWaiting: the request that gets a message of `sz` bytes (max_bytes, interest, expiry). */
  private nextWaiting(sz: number): WaitingRequest | undefined {
    while (this.queue.length > 0) {
      const wr = this.queue[0]!;
      if (wr.b > 0) {
        if (sz <= wr.b) {
          wr.b -= sz;
          if (wr.b === 0) wr.n = 1;
        } else {
          this.sendPendingStatus(wr, 409, "Message Size Exceeds MaxBytes");
          this.end(wr);
          continue;
        }
      }
      const expired = wr.expires !== 0 && this.now() >= wr.expires;
      if (!expired && this.nc.hasInterest(wr.reply)) return this.pop();
      // expired (a message came before the sweep: no 408) or no interest: removed silently
      if (expired) this.expiredAtMessage.push(wr);
      this.end(wr);
    }
    return undefined;
  }

  /** waitQueue.pop: the head takes one; with more to go it moves to the back if others wait. */
  private pop(): WaitingRequest {
    const wr = this.queue[0]!;
    wr.d++;
    wr.n--;
    if (wr.n > 0 && this.queue.length > 1) {
      this.queue.shift();
      this.queue.push(wr);
    } else if (wr.n <= 0) {
      this.queue.shift();
    }
    return wr;
  }

  /**
   * processWaiting: expires (408), drops requests without interest (silently), sends due
   * heartbeats. Returns the next deadline among requests with interest and their batch total.
   */
  private processWaiting(eos: boolean): { fexp: number; brp: number } {
    const now = this.now();
    let fexp = 0;
    let brp = 0;
    for (const wr of [...this.queue]) {
      if ((eos && wr.noWait && wr.d > 0) || (wr.expires !== 0 && now >= wr.expires)) {
        this.sendPendingStatus(wr, 408, "Request Timeout");
        this.end(wr);
        continue;
      }
      if (!this.nc.hasInterest(wr.reply)) {
        this.end(wr);
        continue;
      }
      brp += wr.n;
      if (wr.hbt !== 0) {
        if (now >= wr.hbt) {
          this.sendStatus(wr.reply, 100, "Idle Heartbeat", {
            "Nats-Last-Consumer": String(this.dseq - 1),
            "Nats-Last-Stream": String(this.sseq - 1),
          });
          wr.hbt = now + wr.hb;
        }
        if (fexp === 0 || wr.hbt < fexp) fexp = wr.hbt;
      }
      if (wr.expires !== 0 && (fexp === 0 || wr.expires < fexp)) fexp = wr.expires;
    }
    this.waitFexp = fexp;
    return { fexp, brp };
  }

  /** The sweep's deadline from the last processWaiting. */
  private waitFexp = 0;

  /** The earliest ack_wait deadline of a pending message not queued for redelivery; 0 = none. */
  private nextAckDeadline(): number {
    let next = 0;
    for (const [seq, p] of this.pendingAcks) {
      if (this.rdq.includes(seq)) continue;
      const t = p.ts + this.ackWait;
      if (next === 0 || t < next) next = t;
    }
    return next;
  }

  private schedule(): void {
    let at = this.waitFexp;
    for (const d of [this.nextAckDeadline(), this.race?.at ?? 0]) {
      if (d !== 0 && (at === 0 || d < at)) at = d;
    }
    this.setWake(at);
  }

  private setWake(at: number): void {
    this.wakeAt = at;
    if (this.manual) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (at === 0 || this.disposed) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.act(() => this.wake());
      },
      Math.max(0, at - this.now()),
    );
  }

  /**
   * A deadline passed: the expiry race's publish first (served before the sweep: nextWaiting
   * removes the expired head without a 408), then ack_wait redeliveries, the sweep, and serving
   * what that freed.
   */
  private wake(): void {
    const now = this.now();
    const race = this.race;
    if (race && now >= race.at) {
      this.race = undefined;
      this.store(race.what);
      if (this.queue.length > 0) this.loop();
    }
    const expired: number[] = [];
    for (const [seq, p] of this.pendingAcks) {
      if (!this.rdq.includes(seq) && now - p.ts >= this.ackWait) expired.push(seq);
    }
    expired.sort((a, b) => a - b);
    this.rdq.push(...expired);
    this.processWaiting(true);
    this.loop();
  }

  /** processAck: +ACK (or empty), +NXT, -NAK [delay], +WPI, +TERM. */
  private processAck(subject: string, payload: string, reply: string | undefined): void {
    this.acks.push({ subject, payload });
    const t = subject.split(".");
    const off = t.length >= 11 ? 2 : 0;
    const sseq = Number(t[5 + off]);
    const body = payload;
    if (body === "" || body === "+ACK" || body === "+OK" || body === "+TERM") {
      this.processAckMsg(sseq);
    } else if (body.startsWith("+NXT")) {
      this.processAckMsg(sseq);
      if (reply) this.processNextMsgRequest(reply, body.slice(4), undefined);
    } else if (body.startsWith("-NAK")) {
      this.processNak(sseq, body.slice(4).trim());
    } else if (body === "+WPI") {
      const p = this.pendingAcks.get(sseq);
      if (p) p.ts = this.now();
      this.schedule();
    }
  }

  private processAckMsg(sseq: number): void {
    if (this.ackPolicy === "none") return;
    const atLimit = this.maxAckPending > 0 && this.pendingAcks.size >= this.maxAckPending;
    const seqs =
      this.ackPolicy === "all"
        ? [...this.pendingAcks.keys()].filter((s) => s <= sseq)
        : this.pendingAcks.has(sseq)
          ? [sseq]
          : [];
    for (const s of seqs) {
      this.pendingAcks.delete(s);
      this.rdc.delete(s);
      this.rdq = this.rdq.filter((q) => q !== s);
    }
    if (seqs.length > 0 && atLimit) this.loop();
    else this.schedule();
  }

  private processNak(sseq: number, arg: string): void {
    const p = this.pendingAcks.get(sseq);
    if (!p) return;
    if (arg.length > 0) {
      let delayNs: number | undefined;
      if (arg.startsWith("{")) {
        try {
          const d = (JSON.parse(arg) as { delay?: unknown }).delay;
          delayNs = typeof d === "number" ? d : 0;
        } catch {
          delayNs = undefined;
        }
      }
      if (delayNs !== undefined) {
        this.rdq = this.rdq.filter((q) => q !== sseq);
        // 2.9.10: "now - ackWait is expired now, so offset from there".
        p.ts = this.now() - this.ackWait + delayNs / NS_PER_MS;
        this.schedule();
        return;
      }
    }
    if (!this.rdq.includes(sseq)) this.rdq.push(sseq);
    this.loop();
  }
}

interface NextRequest {
  batch: number;
  maxBytes: number;
  expiresNs: number;
  heartbeatNs: number;
  noWait: boolean;
}

/** nextReqFromMsg: the request, or why it is a 400 (Go's wording where it can be matched). */
function parseNextRequest(payload: string): NextRequest | string {
  const t = payload.trim();
  const req: NextRequest = { batch: 1, maxBytes: 0, expiresNs: 0, heartbeatNs: 0, noWait: false };
  if (t.length === 0) return req;
  if (!t.startsWith("{")) {
    if (/^[+-]?\d+$/.test(t)) req.batch = Number(t);
    return req;
  }
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    return "json: cannot unmarshal into Go value of type server.JSApiConsumerGetNextRequest";
  }
  req.batch = 0;
  const fields: Record<string, { key: keyof NextRequest; type: string }> = {
    batch: { key: "batch", type: "int" },
    max_bytes: { key: "maxBytes", type: "int" },
    expires: { key: "expiresNs", type: "time.Duration" },
    idle_heartbeat: { key: "heartbeatNs", type: "time.Duration" },
    no_wait: { key: "noWait", type: "bool" },
  };
  for (const [k, value] of Object.entries(v as Record<string, unknown>)) {
    // encoding/json matches field names case-insensitively
    const f = fields[k.toLowerCase()];
    if (!f || value === null) continue;
    const field = `JSApiConsumerGetNextRequest.${k.toLowerCase()}`;
    const wrong = (what: string) =>
      `json: cannot unmarshal ${what} into Go struct field ${field} of type ${f.type}`;
    if (f.type === "bool") {
      if (typeof value !== "boolean") return wrong(goJsonKind(value));
      req.noWait = value;
    } else {
      if (typeof value !== "number") return wrong(goJsonKind(value));
      if (!Number.isInteger(value)) return wrong(`number ${value}`);
      (req as unknown as Record<string, number>)[f.key] = value;
    }
  }
  if (req.heartbeatNs > 0 && req.heartbeatNs * 2 > req.expiresNs) {
    return "heartbeat value too large";
  }
  return req;
}

function goJsonKind(v: unknown): string {
  if (typeof v === "string") return "string";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return "number";
  if (Array.isArray(v)) return "array";
  return "object";
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
