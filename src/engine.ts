/**
 * The pull engine: speaks the JetStream pull protocol for one iterator. It coordinates these
 * pieces, each in its own module:
 *
 * - the **ledger** (src/ledger.ts): what the open pull requests may still deliver. Buffered plus
 *   outstanding never exceeds `max_messages` / `max_bytes`; a request is published for the room
 *   left when what is held falls to the threshold. A second request goes out while one is open
 *   only when the server reports a backlog larger than what is outstanding (never with
 *   `max_bytes`). The server serves open requests round robin, so the ledger keeps totals and
 *   never asks which request a message answered.
 * - the **inboxes** (src/inboxes.ts): requests reply to `<inbox>.<n>` of the current inbox
 *   generation, so a status names its request. A fault that may have left a request alive on the
 *   server moves to a new generation; data still arriving on an old one is NAKed, never buffered.
 * - the **status mapping** (src/statuses.ts): code + description → what to do, a pure function.
 * - the **heartbeat monitor** (src/heartbeats.ts): counts missed heartbeats as nats.js does.
 * - **recovery** (src/recovery.ts): what tells that open requests are gone without a word
 *   (reconnect, 409 Leadership Change on a retired inbox, consumer info answered again, a PING
 *   answered while the requests stay silent) and pulling again then.
 * - the **link** (src/link.ts): the connection's statuses and its end, with the verdict.
 * - **delivery** (src/delivery.ts): what a data message must pass before it is buffered (its
 *   generation, its ack subject, the ledger, the ordered chain).
 * - **status handling** (src/status-handling.ts): what each server status does to the ledger,
 *   the fetch, the ordered chain and the retry.
 *
 * What the engine is given and needs from the iterator that owns it is in src/engine-host.ts.
 *
 * Every method here is synchronous; promises (flush, fences, consumer info) re-check state when
 * they settle and change nothing if the world moved on. No flag holds anything back across an
 * await: whether to pull is decided from the ledger and the buffer alone.
 */

import { Backoff } from "./backoff.js";
import { type MsgLike, newInbox, serverAtLeast } from "./connection.js";
import { CutDetector } from "./cuts.js";
import { type DeliveryEngine, handleData } from "./delivery.js";
import type { EngineConfig, EngineHost } from "./engine-host.js";
import { ConnectionClosedError, HeartbeatsMissedError } from "./errors.js";
import { HeartbeatMonitor } from "./heartbeats.js";
import { type Generation, type InboxEvents, Inboxes } from "./inboxes.js";
import { type AckTarget, ackPrefix } from "./jsmsg.js";
import { fetchPull, nextPull, PullLedger } from "./ledger.js";
import { Link, type LinkEvents } from "./link.js";
import type { Notification, PullRequest } from "./notifications.js";
import { OrderedCursor } from "./ordered.js";
import { clock, Recovery, type RecoveryHost } from "./recovery.js";
import { handleStatus, type StatusEngine } from "./status-handling.js";
import { DEFAULT_API_PREFIX } from "./target.js";

export type { EngineConfig, EngineHost } from "./engine-host.js";

const NANOS_PER_MS = 1_000_000;
/** nats-server's default max_payload, when the server's INFO does not say (1 MiB). */
const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** nats-server's defaultGatewayRecentSubExpiration (2 s), plus a margin: see youngHoldMs. */
const YOUNG_REQUEST_MS = 2_100;
/** Messages that arrived this recently count as still arriving at a disconnect (cuts.ts), ms. */
const FLOWING_MS = 1_000;
/**
 * drain()'s flow hold (see flowing()): it ends once no message has arrived (and no pull gone
 * out) for this long, ms…
 */
export const FLOW_QUIET_MS = 100;
/** …and after this long at most (and half of drain()'s timeout), ms. */
const FLOW_HOLD_MAX_MS = 1_000;
/**
 * Shortest time a retired inbox keeps listening, ms, whatever `expires` is. A new consumer leader
 * sends 409 Leadership Change to the requests open on the dead one, and a nats-server election
 * takes seconds (Raft election timeouts of 4–9 s, after the loss is noticed): the 409 can come
 * after the request's own `expires`, and it is the earliest sign that pulls work again.
 */
const RETIRED_LISTEN_MIN_MS = 15_000;
/** Unanswered creations of an ordered consumer after which a fetch ends (with apiTimeout each). */
const ORDERED_FETCH_CREATE_TRIES = 3;
const enc = new TextEncoder();

/**
 * Whether the server may be one with leafnodes or gateways (its INFO names a cluster or a
 * JetStream domain, or the API is reached through a prefix): there a request's statuses may cross
 * a route or a link, and a young request is served without interest (see youngHoldMs).
 */
function routed(nc: EngineConfig["nc"], prefix: string): boolean {
  const info = nc.info;
  return !!(info?.cluster || info?.domain) || prefix !== DEFAULT_API_PREFIX;
}

/**
 * The engine is itself what recovery, delivery and status handling work through (RecoveryHost,
 * DeliveryEngine, StatusEngine), and what its link and inboxes report to (LinkEvents,
 * InboxEvents): host objects of their own cost each iterator a property store
 * and a closure per operation (~2 KB of heap in all). The members those interfaces name are public
 * for them alone (marked @internal); the iterator (messages.ts) uses the others.
 */
export class PullEngine
  implements RecoveryHost, DeliveryEngine, StatusEngine, LinkEvents, InboxEvents
{
  private running = true;
  private readonly link: Link;
  /** @internal */
  readonly inboxes: Inboxes;
  /** @internal */
  readonly ledger = new PullLedger();
  /** @internal */
  readonly monitor: HeartbeatMonitor;
  private reqSeq = 0;
  /** Messages the server still had for the consumer after the last delivery (ack subject). */
  private backlog = 0;
  /** When the newest request was published (Date.now()). */
  private pulledAt = 0;
  /** The monitor's life count when the newest request was published. */
  private lifeAtPull = 0;
  /**
   * Bytes of room the next message needs, at least, after 409 Message Size Exceeds MaxBytes
   * (the room the request had, plus one); 0 once a message arrives.
   */
  private roomNeeded = 0;
  /** Re-pulls after a refusal or a lost request: 50 ms doubling, capped (backoff.ts). */
  private readonly retry = new Backoff();
  /** @internal */
  readonly recovery: Recovery;
  private finished: Promise<void> | undefined;
  /**
   * The hold before the unsubscribe of drain() or close() (see youngHoldMs and flowing). A later
   * close() or abort during it keeps holding for a young request, with its own, shorter bound
   * for the fence after it, and stops holding for the flow; the connection going down or
   * closing, or the last open request ending, proceeds at once.
   */
  private hold:
    | {
        timer: ReturnType<typeof setTimeout> | undefined;
        proceed: (timeoutMs: number) => void;
        /** The fence's share of the bound now (0 when the connection is down). */
        rest: () => number;
        /** The shortest fence bound any end asked for, ms. */
        fenceMax: number;
        /** Holding while messages arrive (drain() only; a later close() stops it). */
        flow: boolean;
        /** Looks again at once: proceeds when nothing holds any more. */
        check: () => void;
      }
    | undefined;
  /** @internal */
  readonly ackTarget: AckTarget;
  /** An ordered consumer's position and current server consumer; undefined for a durable. */
  /** @internal */
  readonly cursor: OrderedCursor | undefined;
  /** A fetch: what its batch has brought so far, and whether the server ended it. */
  /** @internal */
  readonly fetched = { msgs: 0, bytes: 0, ended: false };
  /** Whether the server cut us for what a pull had outstanding (cuts.ts), and the cap since. */
  private readonly cuts = new CutDetector();
  /** When the last data message was accepted (Date.now()), and the server we are on. */
  private lastDataAt = 0;
  /** Data messages accepted and their bytes: their mean size tells whether a drop was a cut. */
  private receivedMsgs = 0;
  private receivedBytes = 0;
  /** Whether `backlog` was ever reported (an ack subject, or consumer info). */
  private backlogKnown = false;
  private serverId: string | undefined;
  /** The ack subject prefix of the consumer last delivered from (delivery.ts, `ackPrefix`). */
  private readonly ackPrefixOf = { consumer: "", prefix: "" };

  constructor(
    /** @internal */
    readonly cfg: EngineConfig,
    /** @internal */
    readonly host: EngineHost,
  ) {
    this.inboxes = new Inboxes(
      cfg.nc,
      newInbox(cfg.nc),
      this,
      cfg.opts.idle_heartbeat,
      Math.max(cfg.opts.expires, RETIRED_LISTEN_MIN_MS),
    );
    this.monitor = new HeartbeatMonitor(cfg.opts.idle_heartbeat, (n) => this.missed(n));
    this.link = new Link(cfg.nc, this);
    if (cfg.ordered) {
      this.cursor = new OrderedCursor(
        {
          nc: cfg.nc,
          prefix: cfg.prefix,
          apiTimeout: cfg.apiTimeout,
          spec: cfg.ordered,
          abortOnMissingStream: cfg.opts.abort_on_missing_resource || cfg.fetch === true,
          giveUpAfter: cfg.fetch ? ORDERED_FETCH_CREATE_TRIES : 0,
        },
        {
          ready: () => {
            this.maybePull();
            this.watchHeartbeats();
          },
          notify: (n) => this.host.notify(n),
          end: (error) => this.host.end("terminal", error),
        },
      );
    }
    // The engine is recovery's host itself (RecoveryHost, below): an object literal with getters
    // here cost every iterator ~1.5 KB (V8 keeps such a literal in dictionary mode, and each of
    // its functions is a closure of its own).
    this.recovery = new Recovery(
      {
        nc: cfg.nc,
        stream: cfg.stream,
        consumer: cfg.consumer,
        idleHeartbeat: cfg.opts.idle_heartbeat,
        expires: cfg.opts.expires,
        routed: routed(cfg.nc, cfg.prefix),
        apiTimeout: cfg.apiTimeout,
        bind: cfg.opts.bind,
        // A fetch is one call: a missing consumer or stream is its answer, as in nats.js.
        abortOnMissingResource: cfg.opts.abort_on_missing_resource || cfg.fetch === true,
        ordered: cfg.ordered !== undefined,
      },
      this,
    );
    this.ackTarget = {
      nc: cfg.nc,
      acks: cfg.acks,
      ackTimeout: cfg.apiTimeout,
      // nats-server 2.9 treats `+TERM <reason>` as no ack at all: send plain +TERM there.
      termReason: serverAtLeast(cfg.nc.info?.version, 2, 10),
      flavor: cfg.flavor,
    };
  }

  /**
   * Subscribes, watches the connection, publishes the first pull and (unless `bind`) looks the
   * consumer up once, so that a misspelt stream or consumer is reported within one API round
   * trip: nats-server 2.9.10 answers a pull for a consumer that does not exist with nothing.
   */
  start(): void {
    this.serverId = this.cfg.nc.info?.server_id;
    this.link.start();
    this.subscribe();
    this.cursor?.start();
    this.maybePull();
    this.recovery.checkConsumer();
  }

  /**
   * The connection is back: if it is back on the same server process after a drop while a pull's
   * messages were flowing, the server cut us for what was outstanding (cuts.ts): ask for less.
   */
  private onReconnected(): void {
    const outstanding = this.ledger.outstandingMessages;
    const serverId = this.cfg.nc.info?.server_id;
    const cap = this.cuts.reconnected(serverId);
    this.serverId = serverId;
    if (cap !== undefined) {
      this.debug(
        `the server closed the connection while messages of a pull were arriving and we are back on the same server (a slow-consumer cut: its max_pending is smaller than what was outstanding, ${outstanding} or fewer messages): at most ${cap} messages are outstanding from now on`,
      );
    }
  }

  /** The server consumer pulls go to; undefined while an ordered one is being re-created. @internal DeliveryEngine */
  consumerName(): string | undefined {
    return this.cursor ? this.cursor.name : this.cfg.consumer;
  }

  /**
   * Publishes a pull request if one is due (`nextPull`, ledger.ts). Idempotent; call it whenever
   * what is held drops.
   */
  maybePull(): void {
    this.endHoldIfIdle();
    if (!this.running || !this.link.connected || this.retry.pending) return;
    const g = this.inboxes.current;
    if (!g || g.fencing) return;
    const consumer = this.consumerName();
    if (consumer === undefined) return;
    const o = this.cfg.opts;
    let next: { batch: number; maxBytes: number } | undefined;
    if (this.cfg.fetch) {
      if (this.fetched.ended) return;
      const f = fetchPull(o, this.fetched, this.ledger, this.cuts.cap);
      if (f === "complete") {
        this.completeFetch();
        return;
      }
      next = f;
    } else {
      next = nextPull(o, this.host.held, this.ledger, this.backlog, this.roomNeeded, this.cuts.cap);
    }
    if (!next) return;
    const { batch, maxBytes } = next;
    const id = [g.inbox, ++this.reqSeq].join("."); // flat (see newInbox); the ledger keeps it
    const body: PullRequest = {
      batch,
      expires: o.expires * NANOS_PER_MS,
      idle_heartbeat: o.idle_heartbeat * NANOS_PER_MS,
    };
    if (maxBytes > 0) body.max_bytes = maxBytes;
    const at = clock();
    this.ledger.opened({ id, msgs: batch, bytes: maxBytes, at });
    try {
      const subject = `${this.cfg.prefix}.CONSUMER.MSG.NEXT.${this.cfg.stream}.${consumer}`;
      this.cfg.nc.publish(subject, enc.encode(JSON.stringify(body)), { reply: id });
    } catch (err) {
      // The connection refuses publishes (closed or draining): its closed() ends us.
      this.ledger.refused(id);
      this.debug(`pull not sent: ${String(err)}`);
      return;
    }
    this.pulledAt = Date.now();
    this.lifeAtPull = this.monitor.lifeCount;
    this.recovery.pulled(at);
    this.host.notify({ type: "next", options: body });
    this.watchHeartbeats();
  }

  /** No more pull requests, ever. Idempotent. */
  stopPulling(): void {
    this.running = false;
    this.cursor?.halt();
    this.recovery.stop();
    this.retry.cancel();
    this.monitor.watch(false);
  }

  /**
   * Unsubscribes every inbox behind a fence (UNSUB, then PING/PONG) so that every message the
   * server sent before the unsubscribe is delivered, bounded by `timeoutMs`, and clears every
   * timer (the connection listeners stay until {@link dispose}). `timeoutMs` 0 (or a
   * disconnected / closed connection) skips the fence. Before it, up to `holdMaxMs`, a hold while
   * the newest open request is young (see {@link youngHoldMs}) and, with `flow` (drain()), while
   * messages are arriving for the open requests (see {@link flowing}). Resolves when no
   * subscription of ours is left. A later call during a hold keeps holding for a young request
   * when it holds too (`holdMaxMs` > 0), with the shorter fence bound of the two after it, stops
   * holding for the flow unless it asks for it too, and ends the hold at once when it does not
   * hold; a later call during a fence shortens it to its own bound (a harsher end cuts a gentler
   * one). Every call resolves with the first.
   */
  close(timeoutMs: number, holdMaxMs = 0, flow = false): Promise<void> {
    this.stopPulling();
    const fence = timeoutMs > 0 && this.link.connected && !this.cfg.nc.isClosed();
    const bound = fence ? timeoutMs : 0;
    if (this.hold) {
      this.hold.fenceMax = Math.min(this.hold.fenceMax, bound);
      // A later end that does not hold (a connection that is gone): unsubscribe now.
      if (holdMaxMs <= 0 || bound === 0) this.hold.proceed(this.hold.rest());
      else if (!flow && this.hold.flow) {
        this.hold.flow = false;
        this.hold.check();
      }
      return this.finished as Promise<void>;
    }
    if (!this.finished && fence && holdMaxMs > 0) {
      const t0 = clock();
      const youngMs = Math.min(this.youngHoldMs(), holdMaxMs);
      // The flow hold leaves the fence at least half of drain()'s timeout.
      const flowMs =
        flow && this.flowing() ? Math.min(FLOW_HOLD_MAX_MS, holdMaxMs, timeoutMs / 2) : 0;
      if (youngMs > 0 || flowMs > 0) {
        this.finished = new Promise<void>((resolve) => {
          const proceed = (t: number) => {
            if (!this.hold) return;
            clearTimeout(this.hold.timer);
            this.hold = undefined;
            void this.inboxes.closeAll(t).then(resolve);
          };
          // How much longer to hold, ms: for a young request until it is old enough; for the
          // flow until no message has come for FLOW_QUIET_MS, within flowMs. The bounds are on
          // the monotonic clock; the time since the last sign (wall clock, as lastDataAt and
          // pulledAt are) is clamped to 0..FLOW_QUIET_MS, so that a step of the wall clock can
          // neither stretch the hold past its bounds nor spin it.
          const left = () => {
            const elapsed = clock() - t0;
            const young = youngMs - elapsed;
            let quiet = 0;
            if (this.hold?.flow && elapsed < flowMs) {
              const since = Math.min(Math.max(Date.now() - this.lastSign(), 0), FLOW_QUIET_MS);
              quiet = Math.min(FLOW_QUIET_MS - since, flowMs - elapsed);
            }
            return Math.max(young, quiet);
          };
          const check = () => {
            if (!this.hold) return;
            clearTimeout(this.hold.timer);
            const ms = left();
            if (ms <= 0) proceed(rest());
            else this.hold.timer = setTimeout(check, ms);
          };
          // What is left of the bound, for the fence; none on a connection that went down.
          // drain()'s timeout bounds its hold and fence together; close()'s hold (holdMaxMs
          // Infinity: bounded by youngHoldMs alone) leaves close()'s whole bound to the fence.
          const deadline = holdMaxMs === Infinity ? Infinity : t0 + timeoutMs;
          const rest = () =>
            this.link.connected && !this.cfg.nc.isClosed()
              ? Math.max(1, Math.min(this.hold?.fenceMax ?? timeoutMs, deadline - clock()))
              : 0;
          this.hold = {
            timer: undefined,
            proceed,
            rest,
            fenceMax: timeoutMs,
            flow: flowMs > 0,
            check,
          };
          check();
        });
        return this.finished;
      }
    }
    const unsubscribed = this.inboxes.closeAll(bound);
    this.finished ??= unsubscribed;
    return this.finished;
  }

  /** A hold is for an open request: once none is (it completed or ended), unsubscribe. */
  private endHoldIfIdle(): void {
    if (this.hold && this.ledger.openRequests === 0) this.hold.proceed(this.hold.rest());
  }

  /**
   * How long drain() and close() keep listening before they unsubscribe, ms. nats-server 2.9 serves a pull
   * request younger than 2 s without checking that anyone listens on its reply when it has
   * leafnodes or gateways enabled (consumer.go nextWaiting, defaultGatewayRecentSubExpiration):
   * what it sends to such a request after our UNSUB would wait for ack_wait. So while the newest
   * open request is that young, on a server that may be one of those (it is in a cluster or a
   * JetStream domain, or the API is reached through a prefix), the inbox listens until the
   * request is 2 s old: what arrives meanwhile is handed out after drain(), and NAKed after
   * close() (once the unsubscribe is done). 0 on a lone server, with no request open, or for an
   * ordered consumer.
   */
  private youngHoldMs(): number {
    // An ordered consumer acks nothing: nothing it misses waits for ack_wait, and the next
    // iterator of it resumes after the last message handed out.
    if (this.ledger.openRequests === 0 || this.cursor) return 0;
    if (!routed(this.cfg.nc, this.cfg.prefix)) return 0;
    return Math.max(0, YOUNG_REQUEST_MS - (Date.now() - this.pulledAt));
  }

  /**
   * Whether drain() holds its unsubscribe for the flow: a request is open, and a message arrived
   * within FLOW_QUIET_MS, or a pull went out within FLOW_QUIET_MS while the server may have
   * messages for it (its backlog is not known to be 0). nats-server decides to send a message to
   * a request (checking that its reply has interest) before the stream's internal queue routes
   * it; under load that queue lags, and a message decided before our UNSUB is routed after it, to
   * nobody: it waits for ack_wait. A PING/PONG fence does not cover that queue. So while messages
   * flow, the inbox keeps listening until the open requests are complete (nothing more can be
   * decided for them), or nothing came for FLOW_QUIET_MS, at most FLOW_HOLD_MAX_MS; what arrives
   * is handed out. A message that arrived is a sign whatever the backlog: a consumer that keeps
   * up with a steady publisher sees a pending count of 0 on every message, and that is the load
   * under which the queue lags. Never for an ordered consumer (it acks nothing), nor for an
   * iterator that neither received nor pulled lately (an idle drain stays immediate).
   */
  private flowing(): boolean {
    if (this.ledger.openRequests === 0 || this.cursor) return false;
    return Date.now() - this.lastSign() < FLOW_QUIET_MS;
  }

  /**
   * When a message last arrived, or a pull that may bring one was last published (not one the
   * server had nothing for: a backlog of 0 known), ms.
   */
  private lastSign(): number {
    const pulled = !this.backlogKnown || this.backlog > 0 ? this.pulledAt : 0;
    return Math.max(this.lastDataAt, pulled);
  }

  /**
   * Stops listening to the connection (its statuses and its end). The iterator calls it once it
   * is done: until then a connection that closes must still drop what is buffered. Idempotent.
   */
  dispose(): void {
    this.stopPulling();
    this.link.stop();
    this.release();
  }

  /**
   * Nothing more will be handed out (the end item was taken, or the iterator is done): an ordered
   * consumer's shared state is released, so that the next iterator of it may start. Idempotent.
   */
  release(): void {
    this.cursor?.finish();
  }

  /** A fetch's batch is complete: stop, and let the iterator close with what it holds. */
  /** @internal StatusEngine */
  completeFetch(fenced = false): void {
    if (this.fetched.ended) return;
    this.fetched.ended = true;
    this.stopPulling();
    this.host.complete(fenced);
  }

  /** The heartbeat monitor reports `count` silent intervals. */
  private missed(count: number): void {
    if (!this.cfg.fetch) {
      this.recovery.missed(count);
      return;
    }
    // A fetch gives up, as nats.js v3's does: the caller fetches again.
    this.host.notify({ type: "heartbeats_missed", count });
    this.host.end("terminal", new HeartbeatsMissedError(count, this.cfg.opts.idle_heartbeat));
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

  /** Moves to a new inbox generation after a fault; its open requests are forgotten. */
  /** @internal DeliveryEngine, StatusEngine */
  rotate(how: "retire" | "drop"): void {
    // Once it stopped pulling, the iterator is unsubscribing: no new inbox, and the ledger keeps
    // counting what the fence may still bring (no pull can follow, so over-counting is harmless
    // and under-counting would NAK messages the drain should hand out).
    if (!this.running) return;
    this.ledger.reset();
    try {
      this.inboxes.replace(how);
    } catch (err) {
      if (!this.cfg.nc.isClosed()) this.host.end("lost", new ConnectionClosedError(err));
    }
    // An ordered consumer cannot go on where messages may have been delivered to an inbox we
    // no longer read: its chain continues on a new consumer from the last message buffered.
    this.cursor?.recreate();
  }

  /**
   * The connection closed our subscription (nc.drain(), nc.close(), lost for good), not us.
   * Nothing buffered can be acked or NAKed any more: drop it now, and end every fence (no PONG
   * can come). How we end is decided when the connection's closed() settles, which nats.js does
   * right after closing subscriptions.
   */
  private onSubscriptionLost(): void {
    this.stopPulling();
    this.host.drop();
    this.hold?.proceed(0);
    void this.inboxes.closeAll(0);
  }

  /** @internal InboxEvents: a message (or a subscription error) on a generation's inbox. */
  message(g: Generation, err: Error | null, msg: MsgLike): void {
    if (err) {
      if (g === this.inboxes.current && !g.fencing) this.host.end("terminal", err);
      return;
    }
    if (msg.reply) handleData(this, g, msg, msg.reply);
    else {
      handleStatus(this, g, msg);
      // Also after the statuses that end the iterator or a fetch, which return before maybePull.
      this.endHoldIfIdle();
    }
  }

  /**
   * Whether the server showed life since the newest request was published (or none is open).
   * @internal RecoveryHost
   */
  heardSincePull(): boolean {
    return this.ledger.openRequests === 0 || this.monitor.lifeCount !== this.lifeAtPull;
  }

  /** Re-pulls after a backoff: 50 ms doubling, capped at `capMs` (≤ `idle_heartbeat`), with jitter. */
  /** @internal StatusEngine */
  retryLater(capMs = this.cfg.opts.idle_heartbeat): void {
    if (!this.running) return;
    this.retry.schedule(Math.min(capMs, this.cfg.opts.idle_heartbeat), () => this.maybePull());
  }

  /** The heartbeat monitor watches while a request is open and the connection is up. */
  /** @internal DeliveryEngine, StatusEngine */
  watchHeartbeats(): void {
    this.monitor.watch(this.running && this.link.connected && this.ledger.openRequests > 0);
  }

  /** @internal DeliveryEngine, StatusEngine */
  debug(description: string): void {
    this.host.notify({ type: "debug", code: 0, description });
  }

  // LinkEvents (link.ts), InboxEvents (inboxes.ts).

  /** @internal LinkEvents: the connection is down. */
  disconnected(): void {
    // No fence on a connection that is down: a drain() holding for a young request stops.
    this.hold?.proceed(0);
    // The server was sending us more: messages of the newest pull were arriving; or none had
    // yet, but the server had more for us (the last ack subject, or consumer info, said so;
    // with no word at all, the pull was just published): it queues a whole batch at once, so
    // a cut can come before the first message.
    const now = Date.now();
    const sending =
      this.lastDataAt >= this.pulledAt
        ? now - this.lastDataAt <= FLOWING_MS
        : this.backlogKnown
          ? this.backlog > 0
          : now - this.pulledAt <= FLOWING_MS;
    this.cuts.disconnected({
      outstanding: this.ledger.outstandingMessages,
      sending,
      meanSize: this.receivedMsgs > 0 ? this.receivedBytes / this.receivedMsgs : 0,
      maxPayload: this.cfg.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD,
      serverId: this.serverId,
    });
    this.watchHeartbeats();
  }

  /** @internal LinkEvents: the connection is back. */
  reconnected(): void {
    this.onReconnected();
    this.recovery.reconnected();
  }

  /** @internal LinkEvents: the connection closed, with its verdict (link.ts). */
  ended(verdict: Error | undefined | Promise<Error | undefined>): void {
    // The verdict first: an iterator already closed (a drained buffer still being handed
    // out) must know a failure is coming before its buffer is dropped.
    this.host.end("lost", verdict);
    this.onSubscriptionLost();
  }

  /** @internal InboxEvents: the connection closed the current generation's subscription. */
  closedByConnection(): void {
    this.onSubscriptionLost();
  }

  // DeliveryEngine (delivery.ts), StatusEngine (status-handling.ts).

  /**
   * @internal `ackPrefix(stream, consumer)` for delivery.ts, made once per consumer: an ordered
   * consumer's name changes when it is re-created, and then the prefix is made anew.
   */
  ackPrefix(consumer: string): string {
    const memo = this.ackPrefixOf;
    if (memo.consumer !== consumer) {
      memo.consumer = consumer;
      memo.prefix = ackPrefix(this.cfg.stream, consumer);
    }
    return memo.prefix;
  }

  /**
   * @internal DeliveryEngine. A message of `size` bytes is accepted: the retry backoff and the
   * room awaited after 409 start over; `pending` (its ack subject) is the server's backlog now.
   */
  accepted(pending: number, size: number): void {
    this.lastDataAt = Date.now();
    this.backlogKnown = true;
    this.receivedMsgs++;
    this.receivedBytes += size;
    this.retry.reset();
    this.roomNeeded = 0;
    this.backlog = pending;
  }

  /** @internal StatusEngine: after 409 Message Size Exceeds MaxBytes, the room the next message needs. */
  needRoom(bytes: number): void {
    this.roomNeeded = bytes;
  }

  // RecoveryHost (recovery.ts): what recovery reads from and asks of the engine.

  /** @internal RecoveryHost */
  isRunning(): boolean {
    return this.running;
  }

  /** @internal RecoveryHost */
  isConnected(): boolean {
    return this.link.connected;
  }

  /** @internal RecoveryHost */
  silentFor(): number {
    return this.monitor.silentFor;
  }

  /** @internal RecoveryHost */
  lastPullAt(): number {
    return this.pulledAt;
  }

  /** @internal RecoveryHost */
  openRequests(): number {
    return this.ledger.openRequests;
  }

  /** @internal RecoveryHost */
  newestOpen(): { readonly id: string; readonly at: number } | undefined {
    return this.ledger.newest();
  }

  /** @internal RecoveryHost */
  epoch(): string {
    return `${this.inboxes.current?.gen}.${this.reqSeq}.${this.monitor.lifeCount}`;
  }

  /** @internal RecoveryHost */
  infoSubject(): string | undefined {
    const name = this.consumerName();
    return name === undefined
      ? undefined
      : `${this.cfg.prefix}.CONSUMER.INFO.${this.cfg.stream}.${name}`;
  }

  /**
   * @internal RecoveryHost. Before any message, consumer info is the only word on the server's
   * backlog (after one, each ack subject's pending count is fresher).
   */
  pendingOnServer(n: number): void {
    if (this.receivedMsgs > 0) return;
    this.backlog = n;
    this.backlogKnown = true;
  }

  /** @internal RecoveryHost */
  expiredSilently(): void {
    // A fetch is one request: its end on the server ends the batch, as its 408 would have; but
    // behind a fence, in case the server read it late and it still sends.
    if (this.cfg.fetch) this.completeFetch(true);
    else this.repull("retire");
  }

  /** @internal RecoveryHost */
  repull(how: "retire" | "drop"): void {
    this.rotate(how);
    this.maybePull();
    this.watchHeartbeats();
  }

  /** @internal RecoveryHost */
  notify(n: Notification): void {
    this.host.notify(n);
  }

  /** @internal RecoveryHost: a terminal end. */
  end(error: Error): void {
    this.host.end("terminal", error);
  }

  /** Test hook: what the ledger counts as outstanding, and the live generations. */
  snapshot(): { request: { msgs: number; bytes: number } | undefined; generations: number } {
    const l = this.ledger;
    return {
      request:
        l.openRequests === 0
          ? undefined
          : { msgs: l.outstandingMessages, bytes: l.outstandingBytes },
      generations: this.inboxes.size,
    };
  }
}
