/**
 * The pull engine: speaks the JetStream pull protocol for one iterator.
 *
 * - Buffered (held by the iterator) plus requested-and-not-received never exceeds
 *   `max_messages` / `max_bytes`; a request is published for the room left when what is held
 *   falls to the threshold. Usually one request is open; a second only while the server reports
 *   a backlog larger than what is requested (never with `max_bytes`). Data belongs to the oldest
 *   open request: the server serves them in order.
 * - Requests reply to `<inbox>.<n>` of the current inbox generation (src/inboxes.ts), so a status
 *   names the request it is about. A fault that may have left a request alive on the server moves
 *   to a new generation; data still arriving on an old one is NAKed, never buffered.
 * - Every method here is synchronous; promises (flush, drain, consumer info) re-check state when
 *   they settle and change nothing if the world moved on.
 */

import type { AckQueue } from "./acks.js";
import {
  type MsgLike,
  msgSize,
  type NatsConnectionLike,
  newInbox,
  onConnectionClosed,
  type StatusIteratorLike,
  serverAtLeast,
} from "./connection.js";
import {
  ConnectionClosedError,
  ConsumerDeletedError,
  ConsumerNotFoundError,
  JetStreamStatusError,
  StreamNotFoundError,
} from "./errors.js";
import { type Generation, Inboxes } from "./inboxes.js";
import { type AckTarget, JsMsg, scanAckReply } from "./jsmsg.js";
import { ConsumerLookup, type LookupResult } from "./lookup.js";
import type { Notification, PullRequest } from "./notifications.js";
import type { ResolvedOptions } from "./options.js";

/** What the engine needs from the iterator that owns it. */
export interface EngineHost {
  /** Messages (`size`) and bytes buffered, not yet handed out: the channel itself. */
  readonly held: { readonly size: number; readonly bytes: number };
  /** A data message of the open request, already accounted: buffer it (or NAK it if closed). */
  deliver(msg: JsMsg, bytes: number): void;
  /** A data message that must not be buffered (its request is gone): NAK it. */
  reject(msg: JsMsg, reason: string): void;
  notify(n: Notification): void;
  /** The connection is gone: drop what is buffered (it can be neither acked nor NAKed). */
  drop(): void;
  /**
   * The consumer must end: `terminal` for a server status no retry can fix (fence, hand out
   * the buffer, then end with `error`); `lost` when the connection or our subscription ended
   * (nothing more can be acked or fenced).
   */
  end(kind: "terminal" | "lost", error?: Error): void;
}

export interface EngineConfig {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  /** JetStream API prefix, e.g. `$JS.API` or `$JS.<domain>.API`. */
  prefix: string;
  opts: ResolvedOptions<unknown>;
  /** Timeout of JetStream API requests (consumer info) and the default of `ackAck()`, ms. */
  apiTimeout: number;
  /** The iterator's outgoing acks (acks.ts): the messages it makes queue their acks there. */
  acks: AckQueue;
}

interface OpenRequest {
  /** The reply subject the request was published with. */
  readonly id: string;
  msgs: number;
  bytes: number;
}

const NANOS_PER_MS = 1_000_000;
const RETRY_BASE_MS = 50;
/**
 * Shortest time a retired inbox keeps listening, ms, whatever `expires` is. A new consumer leader
 * sends 409 Leadership Change to the requests open on the dead one, and a nats-server election
 * takes seconds (Raft election timeouts of 4–9 s, after the loss is noticed): the 409 can come
 * after the request's own `expires`, and it is the earliest sign that pulls work again.
 */
const RETIRED_LISTEN_MIN_MS = 15_000;
/** Backoff cap after 409 Exceeded MaxWaiting, ms. */
const MAX_WAITING_RETRY_MS = 200;
const enc = new TextEncoder();

export class PullEngine {
  private running = true;
  private readonly inboxes: Inboxes;
  private reqSeq = 0;
  /**
   * Open pull requests, oldest first: the server serves them in this order, so a data message
   * belongs to the first. More than one is open only while the server has a backlog.
   */
  private requests: OpenRequest[] = [];
  /** Messages the server still had for the consumer after the last delivery (ack subject). */
  private backlog = 0;
  private connected = true;
  private lastActivity = 0;
  /** Something arrived on the current generation since the open request was published. */
  private requestLive = false;
  private hbTimer: ReturnType<typeof setTimeout> | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAttempt = 0;
  /** The flush that checks a silent server after missed heartbeats; undefined when none. */
  private probe: object | undefined;
  private readonly lookup: ConsumerLookup;
  private notFound = 0;
  private statusIter: StatusIteratorLike | undefined;
  private unwatchClosed: (() => void) | undefined;
  private finished: Promise<void> | undefined;
  private readonly pullSubject: string;
  private readonly ackTarget: AckTarget;
  private readonly hbLimit: number;

  constructor(
    private readonly cfg: EngineConfig,
    private readonly host: EngineHost,
  ) {
    this.inboxes = new Inboxes(
      cfg.nc,
      newInbox(cfg.nc),
      {
        message: (g, err, msg) => this.onMessage(g, err, msg),
        closedByConnection: () => this.onSubscriptionLost(),
      },
      cfg.opts.idle_heartbeat,
      Math.max(cfg.opts.expires, RETIRED_LISTEN_MIN_MS),
    );
    this.pullSubject = `${cfg.prefix}.CONSUMER.MSG.NEXT.${cfg.stream}.${cfg.consumer}`;
    this.hbLimit = 2 * cfg.opts.idle_heartbeat;
    this.lookup = new ConsumerLookup({
      nc: cfg.nc,
      subject: `${cfg.prefix}.CONSUMER.INFO.${cfg.stream}.${cfg.consumer}`,
      timeout: Math.min(cfg.apiTimeout, Math.max(250, cfg.opts.idle_heartbeat / 2)),
      interval: Math.max(100, cfg.opts.idle_heartbeat / 4),
      retry: () => this.running && this.connected && !this.hasLife(),
      answered: (result, afterOutage) => this.onLookup(result, afterOutage),
    });
    this.ackTarget = {
      nc: cfg.nc,
      acks: cfg.acks,
      ackTimeout: cfg.apiTimeout,
      // nats-server 2.9 treats `+TERM <reason>` as no ack at all: send plain +TERM there.
      termReason: serverAtLeast(cfg.nc.info?.version, 2, 10),
    };
  }

  /** Subscribes, watches the connection, and publishes the first pull. */
  start(): void {
    this.unwatchClosed = onConnectionClosed(this.cfg.nc, (err) => this.connectionEnded(err));
    this.watchStatus();
    this.subscribe();
    this.maybePull();
  }

  /** Publishes a pull request if one is due. Idempotent; call it whenever what is held drops. */
  maybePull(): void {
    if (!this.running || !this.connected || this.retryTimer || this.probe) return;
    const g = this.inboxes.current;
    if (!g) return;
    const o = this.cfg.opts;
    const held = this.host.held;
    let outMsgs = 0;
    let outBytes = 0;
    for (const r of this.requests) {
      outMsgs += r.msgs;
      outBytes += r.bytes > 0 ? r.bytes : 0;
    }
    // What is held counts buffered plus requested-and-not-received: the bound never moves.
    if (held.size + outMsgs > o.threshold_messages) return;
    if (o.max_bytes > 0 && held.bytes + outBytes > o.threshold_bytes) return;
    // Another request while one is open only helps when the server has more than is already
    // requested; a caught-up consumer keeps one request waiting for new messages. With
    // max_bytes, one at a time: the server may end a request early when the next message does
    // not fit its bytes, so which request a message belongs to would be ambiguous.
    if (this.requests.length > 0 && (o.max_bytes > 0 || this.backlog <= outMsgs)) return;
    const batch = o.max_messages - held.size - outMsgs;
    const maxBytes = o.max_bytes > 0 ? o.max_bytes - held.bytes - outBytes : 0;
    if (batch <= 0 || (o.max_bytes > 0 && maxBytes <= 0)) return;
    const id = `${g.inbox}.${++this.reqSeq}`;
    const body: PullRequest = {
      batch,
      expires: o.expires * NANOS_PER_MS,
      idle_heartbeat: o.idle_heartbeat * NANOS_PER_MS,
    };
    if (maxBytes > 0) body.max_bytes = maxBytes;
    const request: OpenRequest = { id, msgs: batch, bytes: maxBytes };
    this.requests.push(request);
    this.lastActivity = Date.now();
    this.requestLive = false;
    try {
      this.cfg.nc.publish(this.pullSubject, enc.encode(JSON.stringify(body)), { reply: id });
    } catch (err) {
      // The connection refuses publishes (closed or draining): its closed() ends us.
      this.endRequest(request);
      this.host.notify({ type: "debug", code: 0, description: `pull not sent: ${String(err)}` });
      return;
    }
    this.host.notify({ type: "next", options: body });
    this.ensureMonitor();
  }

  /** No more pull requests, ever. Idempotent. */
  stopPulling(): void {
    this.running = false;
    this.clearTimers();
  }

  /**
   * Unsubscribes every inbox behind a fence (UNSUB, then PING/PONG) so that every message the
   * server sent before the unsubscribe is delivered, bounded by `timeoutMs`; then removes every
   * listener and timer. `timeoutMs` 0 (or a disconnected / closed connection) skips the fence.
   * Resolves when nothing of ours is left on the connection. Idempotent: later calls return
   * the first call's promise.
   */
  close(timeoutMs: number): Promise<void> {
    if (this.finished) return this.finished;
    this.stopPulling();
    const fence = timeoutMs > 0 && this.connected && !this.cfg.nc.isClosed();
    this.finished = this.inboxes.closeAll(fence ? timeoutMs : 0).then(() => {
      this.statusIter?.stop?.();
      this.statusIter = undefined;
      this.unwatchClosed?.();
      this.unwatchClosed = undefined;
    });
    return this.finished;
  }

  /** Subscribes a new current inbox generation (see inboxes.ts). */
  private subscribe(): void {
    try {
      this.inboxes.open();
    } catch (err) {
      // On a closed connection, its closed() decides how we end (an app close is graceful).
      if (!this.cfg.nc.isClosed()) this.host.end("lost", new ConnectionClosedError(err));
    }
  }

  /** Moves to a new inbox generation after a fault; the open request is forgotten. */
  private rotate(how: "retire" | "drop"): void {
    this.requests = [];
    try {
      this.inboxes.replace(how);
    } catch (err) {
      if (!this.cfg.nc.isClosed()) this.host.end("lost", new ConnectionClosedError(err));
    }
  }

  /**
   * The connection closed our subscription (nc.drain(), nc.close(), lost for good), not us.
   * Nothing buffered can be acked or NAKed any more: drop it now. How we end is decided when
   * the connection's closed() settles, which nats.js does right after closing subscriptions.
   */
  private onSubscriptionLost(): void {
    this.stopPulling();
    this.host.drop();
  }

  /**
   * The connection closed. nats.js resolves closed() without an error when a connection with
   * reconnects off loses its server; only the earlier `disconnect` status tells that from
   * `nc.close()`. Statuses reach us through microtask chains (v2 relays them twice), so decide
   * once those have run.
   */
  private connectionEnded(err: Error | undefined): void {
    this.onSubscriptionLost();
    setImmediate(() => {
      const cause =
        err ?? (this.connected ? undefined : new Error("disconnected and not reconnected"));
      this.host.end("lost", cause ? new ConnectionClosedError(cause) : undefined);
    });
  }

  private onMessage(g: Generation, err: Error | null, msg: MsgLike): void {
    if (err) {
      if (g === this.inboxes.current && !g.fencing) this.host.end("terminal", err);
      return;
    }
    if (msg.reply) this.onData(g, msg, msg.reply);
    else this.onStatus(g, msg);
  }

  private onData(g: Generation, msg: MsgLike, reply: string): void {
    const pending = scanAckReply(reply, this.cfg.stream, this.cfg.consumer);
    if (typeof pending === "string") {
      this.debug(`dropped inbox message: ${pending}`);
      return;
    }
    const m = new JsMsg(msg, reply, this.ackTarget);
    const req = this.requests[0];
    if (g !== this.inboxes.current || !req) {
      // A retired request is alive after all (a hung server came back): cut its interest.
      if (g !== this.inboxes.current) this.inboxes.letGo(g);
      this.host.reject(m, "no open pull request for it");
      return;
    }
    this.inboxes.releaseRetired();
    this.requestLive = true;
    const size = msgSize(msg);
    this.lastActivity = Date.now();
    this.retryAttempt = 0;
    this.backlog = pending;
    req.msgs--;
    if (req.bytes > 0) req.bytes -= size;
    if (req.msgs <= 0 || (this.cfg.opts.max_bytes > 0 && req.bytes <= 0)) this.requests.shift();
    this.host.deliver(m, size);
    this.maybePull();
  }

  private onStatus(g: Generation, msg: MsgLike): void {
    const h = msg.headers;
    const code = h?.code ?? 0;
    if (!h || !code) {
      this.debug("dropped inbox message: no reply subject and no status");
      return;
    }
    const description = h.description ?? "";
    if (g !== this.inboxes.current) {
      this.onRetiredStatus(g, code, description);
      return;
    }
    this.inboxes.releaseRetired();
    this.requestLive = true;
    this.lastActivity = Date.now();
    const req = this.requests.find((r) => r.id === msg.subject);
    const d = description.toLowerCase();
    switch (code) {
      case 100:
        if (d.startsWith("idle heartbeat")) {
          this.host.notify({
            type: "heartbeat",
            lastConsumerSequence: toInt(h.get("Nats-Last-Consumer")),
            lastStreamSequence: toInt(h.get("Nats-Last-Stream")),
          });
        } else {
          this.host.notify({ type: "debug", code, description });
        }
        return;
      case 404:
      case 408:
        if (!req) {
          this.debug(`ignored status ${code} of a finished request`);
          return;
        }
        this.release(req, h.get("Nats-Pending-Messages"), h.get("Nats-Pending-Bytes"));
        this.maybePull();
        return;
      case 409:
        this.on409(req, code, description, d);
        return;
      case 400:
        this.host.end("terminal", new JetStreamStatusError(code, description));
        return;
      case 503:
        this.host.notify({ type: "no_responders", code });
        if (!req) return;
        this.endRequest(req);
        this.checkConsumer();
        this.retryLater();
        return;
      default:
        this.host.notify({ type: "debug", code, description });
    }
  }

  /**
   * A status for a generation a fault retired. 409 Leadership Change means a new consumer
   * leader is up, and the pull we sent meanwhile (while there was no leader) was lost: pull
   * again now, on a new generation, instead of waiting out heartbeats. Any status shows the old
   * request's fate is known: stop listening to it.
   */
  private onRetiredStatus(g: Generation, code: number, description: string): void {
    this.inboxes.letGo(g);
    if (code === 409 && description.toLowerCase() === "leadership change") {
      this.host.notify({ type: "debug", code, description });
      if (this.running && this.connected && !this.hasLife()) {
        this.probe = undefined; // a heartbeat probe in flight has nothing left to decide
        // The open request may have reached the new leader: drop its inbox so it is not served.
        this.rotate("drop");
        this.maybePull();
      }
      return;
    }
    this.debug(`ignored status ${code} of a previous inbox`);
  }

  /** Whether the open request (if any) has shown life since it was published. */
  private hasLife(): boolean {
    return this.requests.length === 0 || this.requestLive;
  }

  private on409(req: OpenRequest | undefined, code: number, description: string, d: string): void {
    const o = this.cfg.opts;
    if (d === "consumer deleted") {
      this.host.notify({ type: "consumer_deleted", code, description });
      if (o.abort_on_missing_resource) {
        const err = new ConsumerDeletedError(this.cfg.stream, this.cfg.consumer, description);
        this.host.end("terminal", err);
        return;
      }
      if (req) {
        this.endRequest(req);
        this.retryLater();
      }
      return;
    }
    if (d.startsWith("consumer is push based")) {
      this.host.end("terminal", new JetStreamStatusError(code, description));
      return;
    }
    if (d.startsWith("exceeded max") || d.startsWith("message size exceeds maxbytes")) {
      this.host.notify({ type: "exceeded_limits", code, description });
      if (!req) return;
      this.endRequest(req);
      // A request cut short because the buffer took most of max_bytes re-pulls as usual; a
      // message larger than max_bytes, or a server limit, backs off.
      if (d.startsWith("message size") && this.host.held.bytes > 0) this.maybePull();
      // Max waiting is contention: the slot frees when another client's request completes,
      // often within milliseconds, so keep trying often. The other limits are configuration.
      else this.retryLater(d.startsWith("exceeded maxwaiting") ? MAX_WAITING_RETRY_MS : undefined);
      return;
    }
    if (d === "leadership change") {
      this.host.notify({ type: "debug", code, description });
      if (!req) return;
      this.endRequest(req);
      this.retryLater();
      return;
    }
    this.host.notify({ type: "debug", code, description });
  }

  /** An open request is over (its status said so, or it was never sent). */
  private endRequest(req: OpenRequest): void {
    const i = this.requests.indexOf(req);
    if (i >= 0) this.requests.splice(i, 1);
  }

  /** An open request ended; the server says how much of it was left undelivered. */
  private release(req: OpenRequest, pendingMsgs: string, pendingBytes: string): void {
    const messagesLeft = toInt(pendingMsgs);
    const bytesLeft = toInt(pendingBytes);
    this.endRequest(req);
    if (messagesLeft > 0 || bytesLeft > 0) {
      this.host.notify({ type: "discard", messagesLeft, bytesLeft });
    }
  }

  /** Re-pulls after a backoff: 50 ms doubling, capped at `capMs` (≤ `idle_heartbeat`), with jitter. */
  private retryLater(capMs = this.cfg.opts.idle_heartbeat): void {
    if (this.retryTimer || !this.running) return;
    const cap = Math.min(capMs, this.cfg.opts.idle_heartbeat);
    const delay = Math.min(cap, RETRY_BASE_MS * 2 ** Math.min(this.retryAttempt, 16));
    this.retryAttempt++;
    this.retryTimer = setTimeout(
      () => {
        this.retryTimer = undefined;
        this.maybePull();
      },
      Math.round(delay * (0.75 + Math.random() * 0.25)),
    );
  }

  private ensureMonitor(): void {
    if (this.hbTimer || !this.running || this.requests.length === 0 || !this.connected) return;
    if (this.probe) return;
    const wait = Math.max(1, this.hbLimit - (Date.now() - this.lastActivity));
    this.hbTimer = setTimeout(this.checkHeartbeats, wait);
  }

  private readonly checkHeartbeats = (): void => {
    this.hbTimer = undefined;
    if (!this.running || this.requests.length === 0 || !this.connected || this.probe) return;
    if (Date.now() - this.lastActivity < this.hbLimit) {
      this.ensureMonitor();
      return;
    }
    this.missedHeartbeats();
  };

  /**
   * Two heartbeat intervals of silence on an open request. Notify; then PING the server: if it
   * answers and the request is still silent, the request is gone (restart, failover): move to a
   * new inbox and pull again. If the server does not answer (hung), nothing is stacked: we wait
   * for it (or for the connection to drop, which re-pulls on reconnect).
   */
  private missedHeartbeats(): void {
    this.host.notify({ type: "heartbeats_missed", count: 2 });
    const probe = {};
    this.probe = probe;
    const silentSince = this.lastActivity;
    this.checkConsumer();
    this.cfg.nc.flush().then(
      () => {
        if (this.probe !== probe) return;
        this.probe = undefined;
        if (!this.running) return;
        if (this.lastActivity !== silentSince && this.requests.length > 0) {
          this.ensureMonitor();
          return;
        }
        this.rotate("retire");
        this.maybePull();
      },
      () => {
        if (this.probe === probe) this.probe = undefined;
      },
    );
  }

  /**
   * Looks the consumer up (unless `bind`): tells a deleted consumer or stream from a fault, and
   * keeps asking while the open request shows no life. The first answer after unanswered
   * requests means the consumer has a leader again: the pulls sent meanwhile were lost, so pull
   * again at once.
   */
  private checkConsumer(): void {
    if (this.cfg.opts.bind || !this.running) return;
    this.lookup.check();
  }

  private onLookup(result: LookupResult, afterOutage: boolean): void {
    if (!this.running) return;
    const abort = this.cfg.opts.abort_on_missing_resource;
    const { stream: s, consumer: c } = this.cfg;
    if (result === "consumer_not_found") {
      this.host.notify({ type: "consumer_not_found", name: c, stream: s, count: ++this.notFound });
      if (abort) this.host.end("terminal", new ConsumerNotFoundError(s, c));
      return;
    }
    if (result === "stream_not_found") {
      this.host.notify({ type: "stream_not_found", name: s });
      if (abort) this.host.end("terminal", new StreamNotFoundError(s));
      return;
    }
    this.notFound = 0;
    if (afterOutage && this.connected && !this.hasLife()) {
      this.probe = undefined;
      this.rotate("drop");
      this.maybePull();
    }
  }

  private watchStatus(): void {
    let iter: StatusIteratorLike;
    try {
      iter = this.cfg.nc.status();
    } catch {
      return;
    }
    this.statusIter = iter;
    (async () => {
      for await (const s of iter) {
        if (s.type === "disconnect") {
          this.connected = false;
        } else if (s.type === "reconnect") {
          this.connected = true;
          if (!this.running) continue;
          // Requests on the old server may or may not have survived: pull on a fresh inbox, and
          // drop the old one so a survivor is never served alongside the new request.
          this.rotate("drop");
          this.maybePull();
        }
      }
    })().catch(() => {});
  }

  private clearTimers(): void {
    this.lookup.cancel();
    clearTimeout(this.hbTimer);
    clearTimeout(this.retryTimer);
    this.hbTimer = undefined;
    this.retryTimer = undefined;
    this.probe = undefined;
  }

  private debug(description: string): void {
    this.host.notify({ type: "debug", code: 0, description });
  }

  /** Test hook: the open request and live generations, for invariant checks. */
  snapshot(): { request: { msgs: number; bytes: number } | undefined; generations: number } {
    const r = this.requests;
    return {
      request:
        r.length === 0
          ? undefined
          : {
              msgs: r.reduce((n, x) => n + x.msgs, 0),
              bytes: r.reduce((n, x) => n + Math.max(0, x.bytes), 0),
            },
      generations: this.inboxes.size,
    };
  }
}

function toInt(s: string | undefined): number {
  const n = Number.parseInt(s ?? "", 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}
