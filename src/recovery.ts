/**
 * Recovery: how the engine finds out that its open pull requests are gone without a word, and
 * when to pull again. The signals, from the earliest:
 *
 * - a reconnect: requests on the old server may or may not have survived: drop the old inbox
 *   (a survivor loses interest and is never served, so nothing is stacked on the new pull) and
 *   pull at once; and look the consumer up at once, urgently: if the node we were on led the
 *   consumer, the cluster is electing a new leader and that pull is lost (2.9.10 answers neither
 *   pulls nor info while there is none, and the new leader's 409 Leadership Change goes to the
 *   dropped inbox). The first answer after unanswered lookups pulls again — about a second after
 *   the election, not two heartbeats after it;
 * - 409 Leadership Change on a retired inbox: a new consumer leader is up, and a pull sent while
 *   there was none was lost: pull again at once;
 * - consumer info answered after unanswered lookups: the consumer has a leader again (or a hung
 *   server came back): pull at once;
 * - the newest request still counted open after its `expires`, with no change (no life, no
 *   status, no pull) over a grace and a PING's round trip: nats-server removes a request whose
 *   `expires` has passed without its 408 when a message is ready for it before its expiry timer
 *   runs (2.9.10 consumer.go nextWaiting; a probe saw it in 5 of 20 tries with a message queued
 *   across the expiry). The PONG does not strictly follow a 408 (that goes through the stream's
 *   send queue, and in a cluster across a route; the PONG is written by our connection's read
 *   loop): the grace covers that. Then what is still counted is taken as ended: retire the inbox
 *   and pull again, `expires` + grace + a round trip after the newest pull rather than two
 *   heartbeats after the last sign of life. Taken wrongly (a 408 later than the grace, a request
 *   the server read late), that costs a new inbox and NAKs, for an ordered consumer a
 *   re-created server consumer, and ends a fetch behind a fence;
 * - missed heartbeats: once the newest request has had two intervals to show life, look the
 *   consumer up (a deleted consumer or stream is reported, and with `abort_on_missing_resource`
 *   ends the iterator) and, unless that lookup goes unanswered, PING the server. A PONG that
 *   comes while nothing changed (same generation, no request published, no life) proves the
 *   silent requests lost: retire their inbox and pull again. No PONG (hung server): nothing is
 *   stacked; the next interval asks again.
 *
 * Every promise here re-checks the engine's state when it settles and changes nothing if the
 * world moved on; nothing is held back while one is out.
 */
import type { NatsConnectionLike } from "./connection.js";
import { ConsumerNotFoundError, StreamNotFoundError } from "./errors.js";
import { ConsumerLookup, type LookupConfig, type LookupResult } from "./lookup.js";
import type { Notification } from "./notifications.js";
import { classifyStatus } from "./statuses.js";

/**
 * The expiry watch's grace after a request's `expires`, ms: `idle_heartbeat` / 4 within
 * 250–1000 on a lone server. It covers the server's expiry timer running late and the 408 waiting
 * in the stream's send queue, which the PONG (written by the client's own read loop) can overtake.
 * Where the 408 may also cross a route or a leafnode link (a cluster, a domain, an API prefix):
 * `idle_heartbeat` / 2 within 500–2000.
 */
function expiryGrace(idleHeartbeat: number, routed: boolean): number {
  return routed
    ? Math.min(2_000, Math.max(500, idleHeartbeat / 2))
    : Math.min(1_000, Math.max(250, idleHeartbeat / 4));
}

/** setTimeout's longest delay, ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A monotonic clock, ms: the expiry watch's deadlines must not move with the wall clock. */
export const clock = (): number => performance.now();

/** The expiry watch's timer callback: one function for every Recovery (no closure each). */
function expiryDue(r: Recovery): void {
  r.checkExpired();
}

/**
 * What recovery reads from and asks of the engine. Methods only: the engine itself implements it
 * (one per iterator, so no host object or closures of its own; see engine.ts).
 */
export interface RecoveryHost {
  /** Still pulling (open, not stopped). */
  isRunning(): boolean;
  /** The connection is up. */
  isConnected(): boolean;
  /** When the newest request was published (Date.now()). */
  lastPullAt(): number;
  /** How long the server has shown no life on the current generation, ms. */
  silentFor(): number;
  /** Whether the server showed life since the newest request was published (or none is open). */
  heardSincePull(): boolean;
  /** Requests the ledger counts as open. */
  openRequests(): number;
  /** The newest request the ledger counts as open (id, and when it was published: `clock()`). */
  newestOpen(): { readonly id: string; readonly at: number } | undefined;
  /** A token of the pull state: it changes with the generation, a request published, or life. */
  epoch(): string;
  /**
   * `$JS.API.CONSUMER.INFO.<stream>.<consumer>` with the API prefix, for the consumer pulled from
   * now; undefined while an ordered consumer is being re-created.
   */
  infoSubject(): string | undefined;
  /** Consumer info says the server has `n` messages not yet delivered to the consumer. */
  pendingOnServer(n: number): void;
  /**
   * The open requests ended on the server without a word (the expiry watch): pull again on a new
   * inbox, or end a fetch as its 408 would have.
   */
  expiredSilently(): void;
  /** Moves to a new inbox generation (the current one retired or dropped) and pulls again. */
  repull(how: "retire" | "drop"): void;
  notify(n: Notification): void;
  end(error: Error): void;
}

export interface RecoveryConfig {
  nc: NatsConnectionLike;
  stream: string;
  consumer: string;
  /** `idle_heartbeat`, ms. */
  idleHeartbeat: number;
  /** `expires` of every request, ms. */
  expires: number;
  /** A server whose statuses may cross a route or a leafnode link (see engine.ts `routed`). */
  routed: boolean;
  /** JetStream API timeout, ms. */
  apiTimeout: number;
  /** Never look the consumer up. */
  bind: boolean;
  abortOnMissingResource: boolean;
  /**
   * An ordered consumer: one found missing is re-created (`repull("drop")` moves to a new one),
   * whatever `abortOnMissingResource` says; only a missing stream ends it.
   */
  ordered: boolean;
}

/**
 * Recovery is itself its lookup's config (LookupConfig): an object of its own, with a closure per
 * operation, cost each iterator ~0.25 KB of heap.
 */
export class Recovery implements LookupConfig {
  private readonly lookup: ConsumerLookup;
  private notFound = 0;
  /** The expiry watch's one timer: for the newest open request's expiry, or a grace after a look. */
  private expiryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The pull state (`epoch`) at the watch's last look. */
  private lookedAt = "";
  /** How long after its `expires` a request's 408 has to arrive before the watch PINGs, ms. */
  private readonly expiryGrace: number;
  /** @internal LookupConfig */
  readonly nc: NatsConnectionLike;
  /** @internal LookupConfig: how long one consumer info request waits, ms. */
  readonly timeout: number;
  /** @internal LookupConfig: pause between an unanswered request and the next, ms. */
  readonly interval: number;

  constructor(
    private readonly cfg: RecoveryConfig,
    private readonly host: RecoveryHost,
  ) {
    this.nc = cfg.nc;
    this.timeout = Math.min(cfg.apiTimeout, Math.max(250, cfg.idleHeartbeat / 2));
    this.interval = Math.max(100, cfg.idleHeartbeat / 4);
    this.expiryGrace = expiryGrace(cfg.idleHeartbeat, cfg.routed);
    this.lookup = new ConsumerLookup(this);
  }

  /** @internal LookupConfig: the consumer info subject now. */
  subject(): string | undefined {
    return this.host.infoSubject();
  }

  /** @internal LookupConfig: keep asking after an unanswered request while the fault lasts. */
  retry(): boolean {
    const h = this.host;
    return h.isRunning() && h.isConnected() && !h.heardSincePull();
  }

  /** @internal LookupConfig: an answer to consumer info. */
  answered(result: LookupResult, afterOutage: boolean, numPending?: number): void {
    if (numPending !== undefined) this.host.pendingOnServer(numPending);
    this.onLookup(result, afterOutage);
  }

  /** No more lookups or expiry checks; their timers are cleared. Idempotent. */
  stop(): void {
    this.lookup.cancel();
    clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /** A request was published at `at` (`clock()` ms): the expiry watch arms if it is idle. */
  pulled(at: number): void {
    if (this.expiryTimer === undefined && this.host.isRunning()) {
      this.armIn(at + this.cfg.expires - clock());
    }
  }

  private armIn(ms: number): void {
    // An `expires` near 2^31 - 1 ms would overflow the timer, which then fires at once.
    this.expiryTimer = setTimeout(expiryDue, Math.min(Math.max(0, ms), MAX_TIMER_MS), this);
  }

  /**
   * @internal The expiry watch's timer: a look at the newest open request. Once it is past its
   * `expires`, every open request is past its own. A first look notes the pull state (`epoch`:
   * the generation, the requests published, the server's signs of life); a look a grace later
   * that finds it unchanged PINGs; if it is still unchanged at the PONG, what is still counted
   * ended without a word — removed by the server, or (an older request beside the newest)
   * completed unseen: the ledger keeps totals. Then the inbox is retired and a pull goes out (a
   * fetch ends behind a fence) — unless the server has been silent for two heartbeat intervals:
   * that silence is the heartbeat monitor's to report and handle. Any change on the way (life, a
   * status, a pull): look again a grace later. The PONG re-arms the watch; a pull arms it when it
   * is idle.
   */
  checkExpired(): void {
    this.expiryTimer = undefined;
    const h = this.host;
    if (!h.isRunning()) return;
    const newest = h.newestOpen();
    if (newest === undefined) return;
    const due = newest.at + this.cfg.expires - clock();
    if (due > 0) {
      this.armIn(due);
      return;
    }
    const epoch = h.epoch();
    if (epoch !== this.lookedAt) {
      this.lookedAt = epoch;
      this.armIn(this.expiryGrace);
      return;
    }
    // Disconnected: the reconnect pulls again on a new inbox (and arms the watch).
    if (!h.isConnected()) return;
    // No timer while the PING is out: its PONG re-arms the watch (a pull meanwhile arms it for
    // the new request's expiry).
    this.cfg.nc.flush().then(
      () => {
        if (!h.isRunning() || !h.isConnected()) return;
        if (h.epoch() !== epoch || h.newestOpen()?.id !== newest.id) {
          if (this.expiryTimer === undefined) this.armIn(this.expiryGrace);
          return;
        }
        // Silent for two heartbeat intervals already: not a request that just expired but a
        // silence the heartbeat monitor reports and handles (a fetch ends with
        // HeartbeatsMissedError, as in nats.js).
        if (h.silentFor() < 2 * this.cfg.idleHeartbeat) {
          h.notify({
            type: "debug",
            code: 0,
            description: `pull request ${newest.id} still open ${Math.round(clock() - newest.at)} ms after it was published (expires ${this.cfg.expires} ms), with no 408 and no sign of life from ${this.expiryGrace} ms before a PING to its PONG: taken as ended by the server without a word`,
          });
          h.expiredSilently();
        }
      },
      () => {},
    );
  }

  /**
   * Looks the consumer up (unless `bind`): tells a deleted consumer or stream from a fault, and
   * keeps asking while the open request shows no life.
   */
  checkConsumer(): void {
    if (this.cfg.bind || !this.host.isRunning()) return;
    this.lookup.check();
  }

  /** The connection is back. */
  reconnected(): void {
    if (!this.host.isRunning()) return;
    this.host.repull("drop");
    if (!this.cfg.bind) this.lookup.check(true);
  }

  /**
   * A status on a retired inbox. 409 Leadership Change: a new consumer leader is up; unless the
   * current request already showed life, pull again on a new inbox (the current one dropped:
   * its request may have reached the new leader and must not be served beside the new one).
   * Returns false for any other status (the caller ignores it).
   */
  retiredStatus(code: number, description: string): boolean {
    if (classifyStatus(code, description).kind !== "leadership") return false;
    this.host.notify({ type: "debug", code, description });
    const h = this.host;
    if (h.isRunning() && h.isConnected() && !h.heardSincePull()) h.repull("drop");
    return true;
  }

  /** The heartbeat monitor reports `count` silent intervals (2, 3, …). */
  missed(count: number): void {
    const h = this.host;
    h.notify({ type: "heartbeats_missed", count });
    if (Date.now() - h.lastPullAt() < 2 * this.cfg.idleHeartbeat) return;
    this.checkConsumer();
    // While consumer info goes unanswered the consumer has no leader (or the server is hung):
    // a pull now would be lost too. The lookup's first answer pulls at once (onLookup).
    if (this.lookup.inOutage) return;
    // What the PONG is about: this generation, these requests, this silence.
    const epoch = h.epoch();
    this.cfg.nc.flush().then(
      () => {
        if (!h.isRunning() || !h.isConnected() || h.epoch() !== epoch || h.openRequests() === 0)
          return;
        h.notify({
          type: "debug",
          code: 0,
          description: `heartbeats_missed(${count}): the server answers, the open requests are silent: pulling again on a new inbox`,
        });
        h.repull("retire");
      },
      () => {},
    );
  }

  private onLookup(result: LookupResult, afterOutage: boolean): void {
    const h = this.host;
    if (!h.isRunning()) return;
    const { stream: s, consumer: c, abortOnMissingResource: abort } = this.cfg;
    if (result === "consumer_not_found") {
      h.notify({ type: "consumer_not_found", name: c, stream: s, count: ++this.notFound });
      if (this.cfg.ordered) h.repull("drop");
      else if (abort) h.end(new ConsumerNotFoundError(s, c));
      return;
    }
    if (result === "stream_not_found") {
      h.notify({ type: "stream_not_found", name: s });
      if (abort) h.end(new StreamNotFoundError(s));
      return;
    }
    this.notFound = 0;
    if (afterOutage && h.isConnected() && !h.heardSincePull()) {
      h.notify({
        type: "debug",
        code: 0,
        description: "consumer info answered again after unanswered requests: pulling again",
      });
      h.repull("drop");
    }
  }
}
